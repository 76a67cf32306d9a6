import Foundation
import GRDB
import EnergyCore
import HubCore
import Shared

/// The energy tables: devices and their installation history, readings, resets and quarantine.
/// Migrations are named and append-only: a released migration is never edited, only followed.
public enum EnergySchema {
    public static let register: HubDatabase.Schema = { migrator in
        migrator.registerMigration("energy-1-devices-readings-quarantine") { db in
            try db.execute(sql: """
                CREATE TABLE device (
                    id TEXT PRIMARY KEY NOT NULL,
                    kind TEXT NOT NULL CHECK (kind IN ('meter', 'pv')),
                    format TEXT NOT NULL CHECK (format IN ('canonical', 'teleinfo', 'tasmota', 'opendtu'))
                ) STRICT;
                -- Where a device was installed, from a local date. A meter serves its dwelling until the
                -- next meter installed in that dwelling (a replaced box), or until its explicit end.
                CREATE TABLE device_installation (
                    device_id TEXT NOT NULL REFERENCES device(id),
                    since TEXT NOT NULL CHECK (since GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
                    until TEXT CHECK (until IS NULL OR until > since),
                    building_id TEXT NOT NULL REFERENCES building(id),
                    dwelling_id TEXT REFERENCES dwelling(id),
                    PRIMARY KEY (device_id, since)
                ) STRICT;
                CREATE INDEX device_installation_by_dwelling ON device_installation(dwelling_id, since);
                CREATE INDEX device_installation_by_building ON device_installation(building_id, since);
                -- Tariff plan and static allocation share of a dwelling, each from a local date.
                CREATE TABLE dwelling_tariff (
                    dwelling_id TEXT NOT NULL REFERENCES dwelling(id),
                    since TEXT NOT NULL,
                    tariff TEXT NOT NULL,
                    PRIMARY KEY (dwelling_id, since)
                ) STRICT;
                CREATE TABLE dwelling_share (
                    dwelling_id TEXT NOT NULL REFERENCES dwelling(id),
                    since TEXT NOT NULL,
                    share TEXT NOT NULL,
                    PRIMARY KEY (dwelling_id, since)
                ) STRICT;
                -- One row per (device, instant): storage is idempotent. instant and received_at are
                -- UTC milliseconds since 1970; energy_wh is the cumulative index.
                CREATE TABLE reading (
                    device_id TEXT NOT NULL,
                    instant INTEGER NOT NULL,
                    energy_wh INTEGER NOT NULL CHECK (energy_wh >= 0),
                    power_w REAL,
                    segment INTEGER NOT NULL,
                    time_source TEXT NOT NULL CHECK (time_source IN ('device', 'received')),
                    received_at INTEGER NOT NULL,
                    PRIMARY KEY (device_id, instant)
                ) STRICT, WITHOUT ROWID;
                -- A genuine reset of a device's index (meter replaced, rollover): a new segment starts.
                CREATE TABLE device_segment (
                    device_id TEXT NOT NULL,
                    segment INTEGER NOT NULL,
                    starts_at INTEGER NOT NULL,
                    index_before_wh INTEGER NOT NULL,
                    index_after_wh INTEGER NOT NULL,
                    detected_at INTEGER NOT NULL,
                    PRIMARY KEY (device_id, segment)
                ) STRICT;
                -- Every refused message or reading, with the raw payload and why. A refused reading
                -- that a later reset confirmation admits after all gets released_at.
                CREATE TABLE quarantine (
                    id INTEGER PRIMARY KEY,
                    received_at INTEGER NOT NULL,
                    topic TEXT NOT NULL,
                    payload BLOB NOT NULL,
                    reason TEXT NOT NULL,
                    detail TEXT NOT NULL,
                    device_id TEXT,
                    instant INTEGER,
                    energy_wh INTEGER,
                    time_source TEXT,
                    released_at INTEGER
                ) STRICT;
                CREATE INDEX quarantine_by_received ON quarantine(received_at);
                -- Instant ranges of a device whose stored readings changed and whose derived
                -- figures (slots, savings) must be recomputed; written in the ingest transaction,
                -- consumed (and deleted) by whoever keeps those figures.
                CREATE TABLE reading_change (
                    device_id TEXT PRIMARY KEY NOT NULL,
                    from_instant INTEGER NOT NULL,
                    to_instant INTEGER NOT NULL
                ) STRICT;
                CREATE INDEX quarantine_open_candidates ON quarantine(device_id, instant) WHERE reason = 'index_backwards' AND released_at IS NULL;
                """)
        }
        // Issue 12: readings clustered by device made every commit write a 4 KiB page per device
        // for a 60-byte reading. Ingest now appends to `reading_journal` in arrival order (a few
        // pages a batch); `ReadingJournal.fold` moves the journal into `reading_by_device` in large
        // sorted batches. `reading` becomes a view of both, so every reader that asks for "the
        // readings" sees each one exactly once wherever it sits.
        migrator.registerMigration("energy-2-reading-journal") { db in
            try db.execute(sql: """
                ALTER TABLE reading RENAME TO reading_by_device;
                -- Readings as they arrived, not yet folded into reading_by_device. seq is the arrival
                -- order; no index by device: the writer keeps the unfolded readings of each device in
                -- memory, and a reader scans this small table (at most ingest.foldRows rows and a batch).
                CREATE TABLE reading_journal (
                    seq INTEGER PRIMARY KEY,
                    device_id TEXT NOT NULL,
                    instant INTEGER NOT NULL,
                    energy_wh INTEGER NOT NULL CHECK (energy_wh >= 0),
                    power_w REAL,
                    segment INTEGER NOT NULL,
                    time_source TEXT NOT NULL CHECK (time_source IN ('device', 'received')),
                    received_at INTEGER NOT NULL
                ) STRICT;
                -- Every stored reading, folded or not. Queries by device push their conditions into
                -- both arms (the primary key of reading_by_device, a scan of the small journal).
                CREATE VIEW reading AS
                    SELECT device_id, instant, energy_wh, power_w, segment, time_source, received_at FROM reading_by_device
                    UNION ALL
                    SELECT device_id, instant, energy_wh, power_w, segment, time_source, received_at FROM reading_journal;
                """)
        }
        // Issue 12, the read side: a device's readings scanned the whole journal (50,000 unfolded
        // readings of other devices made the readings route 45% slower). An index by device on the
        // journal would dirty a page per device per batch again; instead the journal lists the
        // devices it holds, with the seq of each one's oldest row, written once per device between
        // folds. A reader skips the journal for a device it does not list, and starts at first_seq.
        migrator.registerMigration("energy-3-reading-journal-devices") { db in
            try db.execute(sql: """
                -- Every device with rows in reading_journal, and the seq of its oldest one: a device
                -- with journal rows is always listed, with a first_seq not after its oldest row.
                CREATE TABLE reading_journal_device (
                    device_id TEXT PRIMARY KEY NOT NULL,
                    first_seq INTEGER NOT NULL
                ) STRICT, WITHOUT ROWID;
                -- Counts the folds, so the ingest writer knows when its memory of the devices already
                -- listed is stale (a fold by the savings upkeep or `energy update` rewrites the list).
                CREATE TABLE reading_journal_folds (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    folds INTEGER NOT NULL
                ) STRICT;
                INSERT INTO reading_journal_folds (id, folds) VALUES (1, 0);
                INSERT INTO reading_journal_device (device_id, first_seq) SELECT device_id, MIN(seq) FROM reading_journal GROUP BY device_id;
                """)
        }
        // Issue 14, defect 4: a quarantined payload keeps its first `ingest.quarantinePayloadBytes`
        // bytes, with the size and SHA-256 of the whole. Rows kept whole before are cut the same
        // way (the 4,096 bytes of the default; the space they free is reused by SQLite).
        migrator.registerMigration("energy-4-quarantine-payload-size") { db in
            db.add(function: DatabaseFunction("hub_sha256_hex", argumentCount: 1, pure: true) { values in
                guard let data = Data.fromDatabaseValue(values[0]) else { return nil }
                return QuarantinedPayload.sha256Hex(data)
            })
            try db.execute(sql: """
                ALTER TABLE quarantine ADD COLUMN payload_size INTEGER;
                ALTER TABLE quarantine ADD COLUMN payload_sha256 TEXT;
                UPDATE quarantine SET payload_size = length(payload), payload_sha256 = hub_sha256_hex(payload);
                UPDATE quarantine SET payload = substr(payload, 1, 4096) WHERE length(payload) > 4096;
                """)
        }
    }
}

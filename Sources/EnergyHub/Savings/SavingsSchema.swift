import GRDB
import EnergyCore
import HubCore
import Shared

/// The savings tables: slot figures kept up to date from the readings, daily figures, the
/// buildings' allocation keys and per-slot coefficients, and the queue of what to recompute.
/// Migrations are named and append-only.
public enum SavingsSchema {
    public static let register: HubDatabase.Schema = { migrator in
        migrator.registerMigration("savings-1-slots-days-keys") { db in
            try db.execute(sql: """
                -- What the stored figures were computed with (slot length, prices); a change rebuilds them.
                CREATE TABLE savings_state (
                    name TEXT PRIMARY KEY NOT NULL,
                    value TEXT NOT NULL
                ) STRICT;
                -- A device's energy per slot (slot n starts at n * slot length, UTC). quality: 1 measured,
                -- 2 estimated; a missing slot has no row.
                CREATE TABLE device_slot (
                    device_id TEXT NOT NULL,
                    slot INTEGER NOT NULL,
                    energy_wh INTEGER NOT NULL CHECK (energy_wh >= 0),
                    quality INTEGER NOT NULL CHECK (quality IN (1, 2)),
                    PRIMARY KEY (device_id, slot)
                ) STRICT, WITHOUT ROWID;
                -- A dwelling's consumption, allocated PV and savings (nano-euros) per slot, while a meter
                -- serves it and its consumption is known. quality: its consumption's (1 measured, 2 estimated).
                CREATE TABLE dwelling_slot (
                    building_id TEXT NOT NULL,
                    slot INTEGER NOT NULL,
                    dwelling_id TEXT NOT NULL,
                    consumption_wh INTEGER NOT NULL,
                    allocated_wh INTEGER NOT NULL CHECK (allocated_wh >= 0 AND allocated_wh <= consumption_wh),
                    savings_nano INTEGER NOT NULL,
                    quality INTEGER NOT NULL CHECK (quality IN (1, 2, 3)),
                    PRIMARY KEY (building_id, slot, dwelling_id)
                ) STRICT, WITHOUT ROWID;
                -- A building's production (NULL when unknown), allocation, surplus and its revenue per slot.
                CREATE TABLE building_slot (
                    building_id TEXT NOT NULL,
                    slot INTEGER NOT NULL,
                    production_wh INTEGER,
                    allocated_wh INTEGER NOT NULL,
                    surplus_wh INTEGER NOT NULL CHECK (surplus_wh >= 0),
                    consumption_wh INTEGER NOT NULL,
                    revenue_nano INTEGER NOT NULL,
                    quality INTEGER NOT NULL CHECK (quality IN (1, 2, 3)),
                    PRIMARY KEY (building_id, slot),
                    CHECK (production_wh IS NULL OR allocated_wh + surplus_wh = production_wh)
                ) STRICT, WITHOUT ROWID;
                -- Daily figures (Europe/Paris days). Amounts are exact nano-euros, rounded to cents when shown.
                CREATE TABLE dwelling_day (
                    dwelling_id TEXT NOT NULL,
                    day TEXT NOT NULL,
                    building_id TEXT NOT NULL,
                    consumption_wh INTEGER NOT NULL,
                    allocated_wh INTEGER NOT NULL,
                    savings_nano INTEGER NOT NULL,
                    measured INTEGER NOT NULL,
                    estimated INTEGER NOT NULL,
                    PRIMARY KEY (dwelling_id, day)
                ) STRICT, WITHOUT ROWID;
                CREATE INDEX dwelling_day_by_building ON dwelling_day(building_id, day);
                CREATE TABLE building_day (
                    building_id TEXT NOT NULL,
                    day TEXT NOT NULL,
                    production_wh INTEGER NOT NULL,
                    allocated_wh INTEGER NOT NULL,
                    surplus_wh INTEGER NOT NULL,
                    consumption_wh INTEGER NOT NULL,
                    revenue_nano INTEGER NOT NULL,
                    measured INTEGER NOT NULL,
                    estimated INTEGER NOT NULL,
                    problems TEXT NOT NULL DEFAULT '',
                    PRIMARY KEY (building_id, day)
                ) STRICT, WITHOUT ROWID;
                -- The allocation key of a building from a local date (pro rata before the first row).
                CREATE TABLE building_allocation_key (
                    building_id TEXT NOT NULL REFERENCES building(id),
                    since TEXT NOT NULL CHECK (since GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
                    allocation_key TEXT NOT NULL CHECK (allocation_key IN ('pro_rata', 'static', 'static_redistributed', 'per_slot')),
                    PRIMARY KEY (building_id, since)
                ) STRICT;
                -- The organiser's coefficient of a dwelling in a slot (millionths), for the per_slot key.
                CREATE TABLE allocation_coefficient (
                    building_id TEXT NOT NULL REFERENCES building(id),
                    slot_start INTEGER NOT NULL,
                    dwelling_id TEXT NOT NULL REFERENCES dwelling(id),
                    coefficient INTEGER NOT NULL CHECK (coefficient BETWEEN 0 AND 1000000),
                    PRIMARY KEY (building_id, slot_start, dwelling_id)
                ) STRICT, WITHOUT ROWID;
                -- Instant ranges [from, to) of a building whose allocation must be recomputed: written when
                -- device slots change, and by the triggers below when the registry changes.
                CREATE TABLE savings_dirty (
                    id INTEGER PRIMARY KEY,
                    building_id TEXT NOT NULL,
                    from_instant INTEGER NOT NULL,
                    to_instant INTEGER NOT NULL
                ) STRICT;
                CREATE INDEX savings_dirty_by_building ON savings_dirty(building_id);
                -- Months of a building that staff exported; revised_at is set when a figure of that month
                -- changes afterwards (a late reading, a registry fix).
                CREATE TABLE energy_month_export (
                    building_id TEXT NOT NULL,
                    month TEXT NOT NULL,
                    exported_at INTEGER NOT NULL,
                    revised_at INTEGER,
                    PRIMARY KEY (building_id, month)
                ) STRICT;
                """)
            // Registry changes reach the figures: a day before `since` (UTC) covers any local midnight.
            let far = "253402300800000"
            func from(_ since: String) -> String { "(unixepoch(\(since)) - 86400) * 1000" }
            try db.execute(sql: """
                CREATE TRIGGER savings_installation_insert AFTER INSERT ON device_installation BEGIN
                    INSERT INTO savings_dirty (building_id, from_instant, to_instant) VALUES (NEW.building_id, \(from("NEW.since")), \(far));
                END;
                CREATE TRIGGER savings_installation_update AFTER UPDATE ON device_installation BEGIN
                    INSERT INTO savings_dirty (building_id, from_instant, to_instant) VALUES (OLD.building_id, \(from("MIN(OLD.since, NEW.since)")), \(far));
                    INSERT INTO savings_dirty (building_id, from_instant, to_instant) VALUES (NEW.building_id, \(from("MIN(OLD.since, NEW.since)")), \(far));
                END;
                CREATE TRIGGER savings_installation_delete AFTER DELETE ON device_installation BEGIN
                    INSERT INTO savings_dirty (building_id, from_instant, to_instant) VALUES (OLD.building_id, \(from("OLD.since")), \(far));
                END;
                """)
            for table in ["dwelling_tariff", "dwelling_share"] {
                try db.execute(sql: """
                    CREATE TRIGGER savings_\(table)_insert AFTER INSERT ON \(table) BEGIN
                        INSERT INTO savings_dirty (building_id, from_instant, to_instant)
                        SELECT building_id, \(from("NEW.since")), \(far) FROM dwelling WHERE id = NEW.dwelling_id;
                    END;
                    CREATE TRIGGER savings_\(table)_update AFTER UPDATE ON \(table) BEGIN
                        INSERT INTO savings_dirty (building_id, from_instant, to_instant)
                        SELECT building_id, \(from("MIN(OLD.since, NEW.since)")), \(far) FROM dwelling WHERE id = NEW.dwelling_id;
                    END;
                    CREATE TRIGGER savings_\(table)_delete AFTER DELETE ON \(table) BEGIN
                        INSERT INTO savings_dirty (building_id, from_instant, to_instant)
                        SELECT building_id, \(from("OLD.since")), \(far) FROM dwelling WHERE id = OLD.dwelling_id;
                    END;
                    """)
            }
        }
    }
}

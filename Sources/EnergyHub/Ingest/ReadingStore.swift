import Foundation
import GRDB
import EnergyCore
import HubCore
import Shared

/// The SQLite store, over the hub's GRDB pool.
public struct SQLiteReadingStore: ReadingStore {
    public let database: HubDatabase

    /// Pages in the WAL before a commit checkpoints it into the database file.
    public static let walAutocheckpointPages = 10_000

    public init(database: HubDatabase) { self.database = database }

    /// Readings are clustered by device (the primary key), so a batch from many devices dirties
    /// one leaf page per device. With SQLite's default checkpoint (every 1,000 WAL pages, so every
    /// batch or two) each of those pages is also copied into the database file about once per
    /// batch; checkpointing every 10,000 pages (a WAL of about 40 MB) copies each hot page once for
    /// many batches: the writer's CPU per message drops by about a sixth (`bench ingest`). A larger
    /// page cache was measured too and made no difference. This is a setting of the one write
    /// connection, which the whole hub shares: harmless for its other, small writes.
    public func prepareForIngest() throws {
        try database.writeWithoutTransactionBlocking { db in
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(Self.walAutocheckpointPages)")
        }
    }

    public func write<T>(_ body: (any IngestTransaction) throws -> T) throws -> T {
        try database.writeBlocking { db in try body(SQLiteIngestTransaction(db: db)) }
    }

    public func devices(timeZone: LocalTimeZone) throws -> [String: DeviceInfo] {
        try database.readBlocking { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT d.id, d.kind, d.format, MIN(i.since) AS first_since
                FROM device d JOIN device_installation i ON i.device_id = d.id GROUP BY d.id
                """)
            var devices: [String: DeviceInfo] = [:]
            for row in rows {
                guard let kind = DeviceKind(rawValue: row["kind"]), let format = DeviceFormat(rawValue: row["format"]),
                      let since = LocalDate(parsing: row["first_since"] as String) else { continue }
                let id: String = row["id"]
                devices[id] = DeviceInfo(id: id, kind: kind, format: format, installedFrom: timeZone.startOfDay(since))
            }
            return devices
        }
    }

    public func sequences() throws -> [String: DeviceSequence] {
        try database.readBlocking { db in
            var sequences: [String: DeviceSequence] = [:]
            let latest = try Row.fetchAll(db, sql: """
                SELECT r.device_id, r.instant, r.energy_wh, r.segment FROM reading r
                JOIN (SELECT device_id, MAX(instant) AS instant FROM reading GROUP BY device_id) m
                  ON m.device_id = r.device_id AND m.instant = r.instant
                """)
            for row in latest {
                sequences[row["device_id"]] = DeviceSequence(last: StoredIndex(
                    instant: Instant(millisecondsSince1970: row["instant"]), energy: WattHours(row["energy_wh"]), segment: row["segment"]))
            }
            let held = try Row.fetchAll(db, sql: """
                SELECT id, device_id, instant, energy_wh, time_source, received_at FROM quarantine
                WHERE reason IN ('index_backwards', 'implausible_jump') AND released_at IS NULL AND device_id IS NOT NULL
                  AND instant IS NOT NULL AND energy_wh IS NOT NULL
                ORDER BY device_id, instant
                """)
            for row in held {
                let device: String = row["device_id"]
                guard var sequence = sequences[device], let last = sequence.last else { continue }
                let instant = Instant(millisecondsSince1970: row["instant"])
                guard instant > last.instant else { continue }
                let reading = DecodedReading(instant: instant, energy: WattHours(row["energy_wh"]),
                                             timeSource: TimeSource(rawValue: row["time_source"] ?? "") ?? .device)
                if let previous = sequence.candidates.last, reading.energy < previous.reading.energy { sequence.candidates = [] }
                sequence.hold(ResetCandidate(reading: reading, receivedAt: Instant(millisecondsSince1970: row["received_at"]), quarantineID: row["id"]))
                sequences[device] = sequence
            }
            return sequences
        }
    }

    public func readings(device: String, from: Instant, to: Instant, limit: Int) async throws -> [Reading] {
        try await database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT instant, energy_wh, power_w, segment, time_source, received_at FROM reading
                WHERE device_id = ? AND instant >= ? AND instant < ? ORDER BY instant LIMIT ?
                """, arguments: [device, from.millisecondsSince1970, to.millisecondsSince1970, limit]).map { row in
                Reading(device: device, instant: Instant(millisecondsSince1970: row["instant"]), energy: WattHours(row["energy_wh"]),
                        powerWatts: row["power_w"], segment: row["segment"], timeSource: TimeSource(rawValue: row["time_source"]) ?? .device,
                        receivedAt: Instant(millisecondsSince1970: row["received_at"]))
            }
        }
    }

    public func installationPeriods(device: String) async throws -> [InstallationPeriod] {
        try await database.read { db in try Installations.periods(db, device: device) }
    }

    public func quarantine(since: Instant, afterID: Int64?, limit: Int) async throws -> [QuarantineEntry] {
        try await database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT id, received_at, topic, payload, reason, detail, device_id, instant, energy_wh, time_source, released_at
                FROM quarantine WHERE received_at >= ? AND (received_at > ? OR id > ?) ORDER BY received_at, id LIMIT ?
                """, arguments: [since.millisecondsSince1970, since.millisecondsSince1970, afterID ?? Int64.min, limit]).map { row in
                var reading: DecodedReading?
                if let instant = row["instant"] as Int64?, let energy = row["energy_wh"] as Int64? {
                    reading = DecodedReading(instant: Instant(millisecondsSince1970: instant), energy: WattHours(energy),
                                             timeSource: TimeSource(rawValue: row["time_source"] ?? "") ?? .device)
                }
                let payload: Data = row["payload"]
                return QuarantineEntry(id: row["id"], receivedAt: Instant(millisecondsSince1970: row["received_at"]), topic: row["topic"],
                                       payload: [UInt8](payload), reason: QuarantineReason(rawValue: row["reason"]) ?? .malformedPayload,
                                       detail: row["detail"], device: row["device_id"], reading: reading,
                                       releasedAt: (row["released_at"] as Int64?).map(Instant.init(millisecondsSince1970:)))
            }
        }
    }
}

/// One write transaction on SQLite, with cached prepared statements for the hot path. The two
/// statements run for every reading are looked up once per transaction, not per reading (the
/// lookup hashes the whole SQL text).
final class SQLiteIngestTransaction: IngestTransaction {
    let db: Database
    private var insertStatement: Statement?
    private var markChangedStatement: Statement?

    init(db: Database) { self.db = db }

    private func index(_ sql: String, _ arguments: StatementArguments) throws -> StoredIndex? {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: sql), arguments: arguments) else { return nil }
        return StoredIndex(instant: Instant(millisecondsSince1970: row[0]), energy: WattHours(row[1]), segment: row[2])
    }

    func stored(device: String, at instant: Instant) throws -> StoredIndex? {
        try index("SELECT instant, energy_wh, segment FROM reading WHERE device_id = ? AND instant = ?", [device, instant.millisecondsSince1970])
    }

    func previous(device: String, before instant: Instant) throws -> StoredIndex? {
        try index("SELECT instant, energy_wh, segment FROM reading WHERE device_id = ? AND instant < ? ORDER BY instant DESC LIMIT 1",
                  [device, instant.millisecondsSince1970])
    }

    func next(device: String, after instant: Instant) throws -> StoredIndex? {
        try index("SELECT instant, energy_wh, segment FROM reading WHERE device_id = ? AND instant > ? ORDER BY instant LIMIT 1",
                  [device, instant.millisecondsSince1970])
    }

    func insert(_ reading: Reading) throws -> Bool {
        let statement = try insertStatement ?? db.cachedStatement(sql: """
            INSERT INTO reading (device_id, instant, energy_wh, power_w, segment, time_source, received_at)
            VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device_id, instant) DO NOTHING
            """)
        insertStatement = statement
        try statement.execute(arguments: [reading.device, reading.instant.millisecondsSince1970, reading.energy.value, reading.powerWatts,
                                          reading.segment, reading.timeSource.rawValue, reading.receivedAt.millisecondsSince1970])
        return db.changesCount > 0
    }

    func quarantine(_ entry: QuarantineEntry) throws -> Int64 {
        let statement = try db.cachedStatement(sql: """
            INSERT INTO quarantine (received_at, topic, payload, reason, detail, device_id, instant, energy_wh, time_source)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        try statement.execute(arguments: [entry.receivedAt.millisecondsSince1970, entry.topic, Data(entry.payload), entry.reason.rawValue, entry.detail,
                                          entry.device, entry.reading?.instant.millisecondsSince1970, entry.reading?.energy.value,
                                          entry.reading?.timeSource.rawValue])
        return db.lastInsertedRowID
    }

    func release(quarantineIDs: [Int64], at instant: Instant) throws {
        let statement = try db.cachedStatement(sql: "UPDATE quarantine SET released_at = ? WHERE id = ?")
        for id in quarantineIDs { try statement.execute(arguments: [instant.millisecondsSince1970, id]) }
    }

    func markChanged(device: String, from: Instant, to: Instant) throws {
        let statement = try markChangedStatement ?? db.cachedStatement(sql: """
            INSERT INTO reading_change (device_id, from_instant, to_instant) VALUES (?, ?, ?)
            ON CONFLICT (device_id) DO UPDATE SET from_instant = MIN(from_instant, excluded.from_instant), to_instant = MAX(to_instant, excluded.to_instant)
            """)
        markChangedStatement = statement
        try statement.execute(arguments: [device, from.millisecondsSince1970, to.millisecondsSince1970])
    }

    func recordSegment(_ start: SegmentStart) throws {
        try db.execute(sql: """
            INSERT INTO device_segment (device_id, segment, starts_at, index_before_wh, index_after_wh, detected_at) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (device_id, segment) DO UPDATE SET starts_at = MIN(starts_at, excluded.starts_at)
            """, arguments: [start.device, start.segment, start.startsAt.millisecondsSince1970, start.indexBefore.value, start.indexAfter.value,
                             start.detectedAt.millisecondsSince1970])
    }
}

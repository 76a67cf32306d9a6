import Foundation
import GRDB
import GRDBSQLite
import EnergyCore
import HubCore
import Shared

/// The SQLite store, over the hub's GRDB pool. Ingest appends readings to `reading_journal` in
/// arrival order and folds them into `reading_by_device` in large sorted batches
/// (`ReadingJournal`); readers see both through the `reading` view.
public struct SQLiteReadingStore: ReadingStore {
    public let database: HubDatabase
    /// The unfolded readings this store's writer appended, for the late-reading checks.
    let journal = JournalMirror()
    /// Runs inside each fold's transaction, before its commit (the fold-kill test's pause).
    public var beforeFoldCommit: (@Sendable () -> Void)?

    public init(database: HubDatabase) { self.database = database }

    /// Folds what a previous run left in the journal (after a crash, even mid-fold: the fold is
    /// one transaction, so it starts again from the same journal), so the writer starts with an
    /// empty journal and an exact picture of what is stored.
    public func prepareForIngest() throws {
        // In folds of at most this many (a journal left by a crash during a burst can hold
        // several): each its own transaction, so none writes an outsized WAL.
        while try fold(limit: Self.startFoldRows).remaining > 0 {}
    }

    static let startFoldRows = 100_000

    public func fold(limit: Int?) throws -> FoldReport {
        let report = try database.writeBlocking { db in try ReadingJournal.fold(db, limit: limit, beforeCommit: beforeFoldCommit) }
        // Only this writer appends to the journal, and it is not appending now.
        journal.folded(remaining: report.remaining)
        return report
    }

    public var unfoldedReadings: Int { journal.count }

    public func write<T>(_ body: (any IngestTransaction) throws -> T) throws -> T {
        let transaction = SQLiteIngestTransaction(journal: journal)
        let result = try database.writeBlocking { db in
            transaction.db = db
            defer { transaction.db = nil }
            let result = try body(transaction)
            // The readings still waiting for their insert go in before the commit.
            try transaction.insertPending()
            return result
        }
        // Committed: the appended readings are now in the journal, their devices listed.
        journal.committed(transaction.appended, listed: transaction.listed, sinceFold: transaction.folds)
        return result
    }

    public func devices(timeZone: LocalTimeZone) throws -> [String: DeviceInfo] {
        try database.readBlocking { db in
            var devices: [String: DeviceInfo] = [:]
            for row in try Row.fetchAll(db, sql: Installations.devicesSQL) {
                if let device = DeviceInfo.fromStored(id: row["id"], kind: row["kind"], format: row["format"], firstSince: row["first_since"], timeZone: timeZone) {
                    devices[device.id] = device
                }
            }
            return devices
        }
    }

    public func sequences() throws -> [String: DeviceSequence] {
        try database.readBlocking { db in
            let latest = try Row.fetchAll(db, sql: """
                SELECT r.device_id, r.instant, r.energy_wh, r.segment FROM reading_by_device r
                JOIN (SELECT device_id, MAX(instant) AS instant FROM reading_by_device GROUP BY device_id) m
                  ON m.device_id = r.device_id AND m.instant = r.instant
                UNION ALL
                SELECT j.device_id, j.instant, j.energy_wh, j.segment FROM reading_journal j
                """).map { row in
                // The journal is empty once `prepareForIngest` folded it; should it hold readings
                // (another writer), the latest of each device wins, wherever it is.
                (device: row["device_id"] as String,
                 index: StoredIndex(instant: Instant(millisecondsSince1970: row["instant"]), energy: WattHours(row["energy_wh"]), segment: row["segment"]))
            }
            let held = try Row.fetchAll(db, sql: """
                SELECT id, device_id, instant, energy_wh, time_source, received_at FROM quarantine
                WHERE reason IN ('index_backwards', 'implausible_jump') AND released_at IS NULL AND device_id IS NOT NULL
                  AND instant IS NOT NULL AND energy_wh IS NOT NULL
                ORDER BY device_id, instant
                """).map { row in
                ReadingStoreRows.Held(id: row["id"], device: row["device_id"], instant: row["instant"], energy: row["energy_wh"],
                                      timeSource: row["time_source"], receivedAt: row["received_at"])
            }
            return ReadingStoreRows.sequences(latest: latest, held: held)
        }
    }

    public func readings(device: String, from: Instant, to: Instant, limit: Int) async throws -> [Reading] {
        try await database.read { db in
            // The `reading` view, with the journal read from the device's oldest row on, and not at
            // all when the journal holds none of the device's readings (no first_seq: NULL).
            try Row.fetchAll(db, sql: """
                SELECT instant, energy_wh, power_w, segment, time_source, received_at FROM reading_by_device
                WHERE device_id = ?1 AND instant >= ?2 AND instant < ?3
                UNION ALL
                SELECT instant, energy_wh, power_w, segment, time_source, received_at FROM reading_journal
                WHERE seq >= (SELECT first_seq FROM reading_journal_device WHERE device_id = ?1) AND device_id = ?1 AND instant >= ?2 AND instant < ?3
                ORDER BY instant LIMIT ?4
                """, arguments: [device, from.millisecondsSince1970, to.millisecondsSince1970, limit]).map { row in
                ReadingStoreRows.reading(device: device, instant: row["instant"], energy: row["energy_wh"], power: row["power_w"], segment: row["segment"],
                                         timeSource: row["time_source"], receivedAt: row["received_at"])
            }
        }
    }

    /// SQLite's codes for a file or disk that cannot take a write now, whatever is written: full
    /// (`SQLITE_FULL`; a file size limit is `SQLITE_IOERR`), I/O errors, a read-only or vanished
    /// file, another connection's lock, no memory, a damaged file.
    public func isUnavailable(_ error: any Error) -> Bool {
        guard let error = error as? DatabaseError else { return false }
        switch error.resultCode {
        case .SQLITE_FULL, .SQLITE_IOERR, .SQLITE_READONLY, .SQLITE_CANTOPEN, .SQLITE_BUSY, .SQLITE_LOCKED, .SQLITE_NOMEM,
             .SQLITE_PROTOCOL, .SQLITE_CORRUPT, .SQLITE_NOTADB, .SQLITE_PERM:
            return true
        default:
            return false
        }
    }

    public func installationPeriods(device: String) async throws -> [InstallationPeriod] {
        try await database.read { db in try Installations.periods(db, device: device) }
    }

    public func quarantine(since: Instant, afterID: Int64?, limit: Int) async throws -> [QuarantineEntry] {
        try await database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT id, received_at, topic, payload, payload_size, payload_sha256, reason, detail, device_id, instant, energy_wh, time_source, released_at
                FROM quarantine WHERE received_at >= ? AND (received_at > ? OR id > ?) ORDER BY received_at, id LIMIT ?
                """, arguments: [since.millisecondsSince1970, since.millisecondsSince1970, afterID ?? Int64.min, limit]).map { row in
                ReadingStoreRows.quarantineEntry(id: row["id"], receivedAt: row["received_at"], topic: row["topic"], payload: [UInt8](row["payload"] as Data),
                                                 payloadSize: row["payload_size"], payloadSHA256: row["payload_sha256"], reason: row["reason"], detail: row["detail"],
                                                 device: row["device_id"], instant: row["instant"], energy: row["energy_wh"], timeSource: row["time_source"],
                                                 releasedAt: row["released_at"])
            }
        }
    }
}

/// One write transaction on SQLite, with cached prepared statements for the hot path. Readings
/// are appended to the journal; the checks for late readings look at the folded readings, the
/// writer's unfolded ones (`JournalMirror`) and those appended earlier in this transaction.
final class SQLiteIngestTransaction: IngestTransaction {
    var db: Database!
    let journal: JournalMirror
    /// Readings appended in this transaction: added to `journal` once it commits.
    private(set) var appended = JournalIndex()
    /// The insert of `rowsPerInsert` readings, prepared once per transaction.
    private var fullInsert: Statement?
    private var listStatement: Statement?
    /// The journal's fold count, read at the first append: the writer's list of devices
    /// already in `reading_journal_device` holds since that fold.
    private(set) var folds: Int64?
    private var alreadyListed: Set<String> = []
    /// Devices this transaction listed in `reading_journal_device`.
    private(set) var listed: Set<String> = []

    init(journal: JournalMirror) { self.journal = journal }

    private func index(_ sql: String, _ arguments: StatementArguments) throws -> StoredIndex? {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: sql), arguments: arguments) else { return nil }
        return StoredIndex(instant: Instant(millisecondsSince1970: row[0]), energy: WattHours(row[1]), segment: row[2])
    }

    func stored(device: String, at instant: Instant) throws -> StoredIndex? {
        try appended.stored(device: device, at: instant) ?? journal.stored(device: device, at: instant)
            ?? index("SELECT instant, energy_wh, segment FROM reading_by_device WHERE device_id = ? AND instant = ?", [device, instant.millisecondsSince1970])
    }

    func previous(device: String, before instant: Instant) throws -> StoredIndex? {
        let folded = try index("SELECT instant, energy_wh, segment FROM reading_by_device WHERE device_id = ? AND instant < ? ORDER BY instant DESC LIMIT 1",
                               [device, instant.millisecondsSince1970])
        return [folded, journal.previous(device: device, before: instant), appended.previous(device: device, before: instant)]
            .compactMap { $0 }.max { $0.instant < $1.instant }
    }

    func next(device: String, after instant: Instant) throws -> StoredIndex? {
        let folded = try index("SELECT instant, energy_wh, segment FROM reading_by_device WHERE device_id = ? AND instant > ? ORDER BY instant LIMIT 1",
                               [device, instant.millisecondsSince1970])
        return [folded, journal.next(device: device, after: instant), appended.next(device: device, after: instant)]
            .compactMap { $0 }.min { $0.instant < $1.instant }
    }

    /// SQLite copies the bound text (`SQLITE_TRANSIENT`, a C macro Swift does not import).
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    /// Readings appended and not yet inserted: they go into the journal `rowsPerInsert` at a time,
    /// one statement for all of them (a statement a reading cost the writer alone 3.3 µs a message
    /// against 2.9), and the rest when the transaction ends (`insertPending`). Nothing in the
    /// transaction reads the journal with SQL: its checks look at `appended` and `journal`, kept
    /// as readings are appended.
    private var pending: [Reading] = []
    static let rowsPerInsert = 32

    func append(_ reading: Reading) throws {
        pending.append(reading)
        appended.add(device: reading.device, StoredIndex(instant: reading.instant, energy: reading.energy, segment: reading.segment))
        if pending.count >= Self.rowsPerInsert { try insertPending() }
    }

    /// Inserts the pending readings with one statement, then lists their devices with the seq
    /// each one got (the journal's rowid, given in order: one more than the largest, row after row).
    func insertPending() throws {
        guard !pending.isEmpty else { return }
        let count = pending.count
        let statement: Statement
        if count == Self.rowsPerInsert, let full = fullInsert {
            statement = full
        } else {
            let rows = Array(repeating: "(?, ?, ?, ?, ?, ?, ?)", count: count).joined(separator: ", ")
            statement = try db.cachedStatement(sql: "INSERT INTO reading_journal (device_id, instant, energy_wh, power_w, segment, time_source, received_at) VALUES \(rows)")
            if count == Self.rowsPerInsert { fullInsert = statement }
        }
        // Bound and stepped directly: the writer's hot path (GRDB's arguments cost an array of
        // boxed values per reading). The journal has no trigger and nothing observes it.
        let sqlite = statement.sqliteStatement
        sqlite3_reset(sqlite)
        var code = SQLITE_OK
        for (row, reading) in pending.enumerated() where code == SQLITE_OK {
            let first = Int32(row * 7)
            code = reading.device.withCString { sqlite3_bind_text(sqlite, first + 1, $0, -1, Self.transient) }
            if code == SQLITE_OK { code = sqlite3_bind_int64(sqlite, first + 2, reading.instant.millisecondsSince1970) }
            if code == SQLITE_OK { code = sqlite3_bind_int64(sqlite, first + 3, reading.energy.value) }
            if code == SQLITE_OK { code = reading.powerWatts.map { sqlite3_bind_double(sqlite, first + 4, $0) } ?? sqlite3_bind_null(sqlite, first + 4) }
            if code == SQLITE_OK { code = sqlite3_bind_int64(sqlite, first + 5, Int64(reading.segment)) }
            if code == SQLITE_OK { code = reading.timeSource.rawValue.withCString { sqlite3_bind_text(sqlite, first + 6, $0, -1, Self.transient) } }
            if code == SQLITE_OK { code = sqlite3_bind_int64(sqlite, first + 7, reading.receivedAt.millisecondsSince1970) }
        }
        if code == SQLITE_OK { code = sqlite3_step(sqlite) }
        let lastSeq = sqlite3_last_insert_rowid(db.sqliteConnection)
        sqlite3_reset(sqlite)
        guard code == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)), sql: statement.sql)
        }
        let inserted = pending
        pending.removeAll(keepingCapacity: true)
        for (row, reading) in inserted.enumerated() {
            try list(reading.device, seq: lastSeq - Int64(count - 1 - row))
        }
    }

    /// Lists the device in `reading_journal_device` unless this writer did since the last fold
    /// (the first reading of each device after a fold; the list is kept by the folds).
    private func list(_ device: String, seq: Int64) throws {
        if folds == nil {
            let folds = try Int64.fetchOne(db.cachedStatement(sql: "SELECT folds FROM reading_journal_folds WHERE id = 1")) ?? 0
            self.folds = folds
            alreadyListed = journal.listedDevices(sinceFold: folds)
        }
        guard !alreadyListed.contains(device), !listed.contains(device) else { return }
        let statement = try listStatement ?? db.cachedStatement(sql: "INSERT OR IGNORE INTO reading_journal_device (device_id, first_seq) VALUES (?, ?)")
        listStatement = statement
        try statement.execute(arguments: [device, seq])
        listed.insert(device)
    }

    func quarantine(_ entry: QuarantineEntry) throws -> Int64 {
        let statement = try db.cachedStatement(sql: """
            INSERT INTO quarantine (received_at, topic, payload, payload_size, payload_sha256, reason, detail, device_id, instant, energy_wh, time_source)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        try statement.execute(arguments: [entry.receivedAt.millisecondsSince1970, ReadingStoreRows.storable(entry.topic), Data(entry.payload), entry.payloadSize,
                                          entry.payloadSHA256, entry.reason.rawValue, ReadingStoreRows.storable(entry.detail),
                                          entry.device.map(ReadingStoreRows.storable), entry.reading?.instant.millisecondsSince1970, entry.reading?.energy.value,
                                          entry.reading?.timeSource.rawValue])
        return db.lastInsertedRowID
    }

    func release(quarantineIDs: [Int64], at instant: Instant) throws {
        let statement = try db.cachedStatement(sql: "UPDATE quarantine SET released_at = ? WHERE id = ?")
        for id in quarantineIDs { try statement.execute(arguments: [instant.millisecondsSince1970, id]) }
    }

    func recordSegment(_ start: SegmentStart) throws {
        try db.execute(sql: """
            INSERT INTO device_segment (device_id, segment, starts_at, index_before_wh, index_after_wh, detected_at) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (device_id, segment) DO UPDATE SET starts_at = MIN(starts_at, excluded.starts_at)
            """, arguments: [start.device, start.segment, start.startsAt.millisecondsSince1970, start.indexBefore.value, start.indexAfter.value,
                             start.detectedAt.millisecondsSince1970])
    }
}

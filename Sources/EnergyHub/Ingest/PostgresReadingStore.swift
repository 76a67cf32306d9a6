import Foundation
import EnergyCore
import HubCore
import Logging
import NIOCore
import PostgresNIO
import Shared

/// The PostgreSQL store. `reading` is one table partitioned by UTC month, so there is no journal
/// to fold: a write transaction inserts its batch's readings in one statement (`unnest` of one
/// array per column, idempotent on (device, instant)), which also records the changed ranges in
/// `reading_change_log` (merged into `reading_change` by the savings upkeep), as SQLite's fold does. The ingest writer's synchronous calls go through a
/// connection of its own that blocks the writer's thread (never Swift's pool); the routes' reads
/// go through the pool.
public struct PostgresReadingStore: ReadingStore {
    public let postgres: HubPostgres
    let writer: PostgresWriterConnection

    public init(postgres: HubPostgres) {
        self.postgres = postgres
        self.writer = PostgresWriterConnection(postgres: postgres)
    }

    /// Statements the writer's connection sent (each one a round trip): what a batch costs.
    public var statementsSent: Int { writer.statementsSent }

    /// Closes the writer's connection (it is opened again by the next call).
    @available(*, noasync, message: "waits for the connection to close: call it from the writer's thread")
    public func close() { writer.close() }

    public func write<T>(_ body: (any IngestTransaction) throws -> T) throws -> T {
        let transaction = PostgresIngestTransaction(writer: writer)
        defer { if transaction.lockedDevices { writer.unlockDevices() } }
        let result = try body(transaction)
        try transaction.commit()
        return result
    }

    public func devices(timeZone: LocalTimeZone) throws -> [String: DeviceInfo] {
        var devices: [String: DeviceInfo] = [:]
        for row in try writer.query(PostgresQuery(unsafeSQL: Installations.devicesSQL)) {
            let (id, kind, format, since) = try row.decode((String, String, String, String).self)
            devices[id] = DeviceInfo.fromStored(id: id, kind: kind, format: format, firstSince: since, timeZone: timeZone)
        }
        return devices
    }

    public func sequences() throws -> [String: DeviceSequence] {
        // Every quarantine row written so far is known from here on (see `sharedSequences`).
        writer.knowQuarantine(upTo: try writer.query(PostgresWriterConnection.lastQuarantineID).first?.decode(Int64.self) ?? 0)
        return try PostgresIngestTransaction.storedSequences(of: nil, writer: writer)
    }

    public func readings(device: String, from: Instant, to: Instant, limit: Int) async throws -> [Reading] {
        try await postgres.read { connection in
            let rows = try await connection.query("""
                SELECT instant, energy_wh, power_w, segment, time_source, received_at FROM reading
                WHERE device_id = \(device) AND instant >= \(from.millisecondsSince1970) AND instant < \(to.millisecondsSince1970)
                ORDER BY instant LIMIT \(Int64(limit))
                """, logger: postgres.logger)
            var readings: [Reading] = []
            for try await (instant, energy, power, segment, timeSource, receivedAt) in rows.decode((Int64, Int64, Double?, Int64, String, Int64).self) {
                readings.append(ReadingStoreRows.reading(device: device, instant: instant, energy: energy, power: power, segment: Int(segment),
                                                         timeSource: timeSource, receivedAt: receivedAt))
            }
            return readings
        }
    }

    public func quarantine(since: Instant, afterID: Int64?, limit: Int) async throws -> [QuarantineEntry] {
        try await postgres.read { connection in
            let since = since.millisecondsSince1970
            let rows = try await connection.query("""
                SELECT id, received_at, topic, payload, payload_size, payload_sha256, reason, detail, device_id, instant, energy_wh, time_source, released_at
                FROM quarantine WHERE received_at >= \(since) AND (received_at > \(since) OR id > \(afterID ?? Int64.min))
                ORDER BY received_at, id LIMIT \(Int64(limit))
                """, logger: postgres.logger)
            var entries: [QuarantineEntry] = []
            for try await row in rows {
                let (id, receivedAt, topic, payload, size, sha256, reason, detail, device, instant, energy, timeSource, releasedAt)
                    = try row.decode((Int64, Int64, String, ByteBuffer, Int64?, String?, String, String, String?, Int64?, Int64?, String?, Int64?).self)
                entries.append(ReadingStoreRows.quarantineEntry(id: id, receivedAt: receivedAt, topic: topic, payload: Array(payload.readableBytesView),
                                                                payloadSize: size.map(Int.init), payloadSHA256: sha256, reason: reason, detail: detail,
                                                                device: device, instant: instant, energy: energy, timeSource: timeSource, releasedAt: releasedAt))
            }
            return entries
        }
    }

    public func installationPeriods(device: String) async throws -> [InstallationPeriod] {
        try await postgres.read { connection in try await PostgresInstallations.periods(connection, device: device, logger: postgres.logger) }
    }

    /// The server cannot take writes now (disk full, read-only, shutting down, out of
    /// connections) or the connection was lost: the writer keeps the batch and pauses intake; the
    /// next call opens a new connection.
    public func isUnavailable(_ error: any Error) -> Bool { HubPostgres.isUnavailable(error) }

    public func describe(_ error: any Error) -> String { HubPostgres.describe(error) }

    public func isConflict(_ error: any Error) -> Bool { HubPostgres.isRetryable(error) }

    /// Several hub processes write it.
    public var isShared: Bool { true }
}

/// The ingest writer's own connection to the server, used from the writer's thread only and
/// opened again after it was lost; it also knows the months whose partition of `reading` exists.
final class PostgresWriterConnection: @unchecked Sendable {
    let postgres: HubPostgres
    private let lock = NSLock()
    private var connection: PostgresConnection?
    private var opened = 0
    private var sent = 0
    /// UTC months (`UTCMonth.key`) whose partition exists.
    private var months: Set<Int64> = []
    /// Per device, the last quarantine id this writer knows of (its own rows, or the sequence's
    /// value when it last took the device's lock); `quarantineFloor` for the others.
    private var quarantineKnown: [String: Int64] = [:]
    private var quarantineFloor: Int64 = 0

    /// The quarantine ids handed out so far (the sequence's value; 0 before the first).
    static let lastQuarantineIDSQL = "COALESCE(pg_sequence_last_value(pg_get_serial_sequence('quarantine', 'id')::regclass), 0)"
    static let lastQuarantineID = PostgresQuery(unsafeSQL: "SELECT " + lastQuarantineIDSQL)

    func knowQuarantine(upTo id: Int64) { lock.withLock { quarantineFloor = max(quarantineFloor, id) } }

    func knowQuarantine(of device: String, upTo id: Int64) {
        lock.withLock { quarantineKnown[device] = max(quarantineKnown[device] ?? quarantineFloor, id) }
    }

    func knownQuarantine(of device: String) -> Int64 { lock.withLock { quarantineKnown[device] ?? quarantineFloor } }

    init(postgres: HubPostgres) { self.postgres = postgres }

    deinit { connection.map(Self.closeLater) }

    /// Closes a connection without waiting (its future's variant: the async one would need a task).
    private static func closeLater(_ connection: PostgresConnection) {
        let closing: EventLoopFuture<Void> = connection.close()
        // The connection is kept until its close completes (one released before asserts).
        closing.whenComplete { _ in withExtendedLifetime(connection) {} }
    }

    var statementsSent: Int { lock.withLock { sent } }

    /// Runs one statement and waits for all its rows, on the caller's thread.
    @available(*, noasync, message: "blocks its thread until the server answers: call it from the ingest writer's thread")
    func query(_ query: PostgresQuery) throws -> PostgresQueryResult {
        BlockingAccessGuard.check("PostgreSQL ingest query")
        let connection = try current()
        lock.withLock { sent += 1 }
        do {
            return try connection.query(query, logger: postgres.logger).wait()
        } catch {
            // A lost connection is replaced at the next call (a transaction on it is gone anyway).
            if connection.isClosed || HubPostgres.isUnavailable(error) {
                lock.withLock { if self.connection === connection { self.connection = nil } }
                Self.closeLater(connection)
            }
            throw error
        }
    }

    @available(*, noasync, message: "blocks its thread until connected")
    private func current() throws -> PostgresConnection {
        if let connection = lock.withLock({ self.connection }), !connection.isClosed { return connection }
        let id = lock.withLock { opened += 1; return opened }
        let connection = try postgres.connect(id: id).wait()
        lock.withLock { self.connection = connection }
        return connection
    }

    /// Rolls back the open transaction, unless the connection that held it is gone (and the
    /// transaction with it): no new connection is opened for it.
    @available(*, noasync, message: "blocks its thread until the server answers")
    func rollback() {
        guard let connection = lock.withLock({ self.connection }), !connection.isClosed else { return }
        _ = try? query("ROLLBACK")
    }

    /// Gives back the devices' locks of the last batch (`sharedSequences`), unless the connection
    /// that held them is gone (and its locks with it).
    @available(*, noasync, message: "blocks its thread until the server answers")
    func unlockDevices() {
        guard let connection = lock.withLock({ self.connection }), !connection.isClosed else { return }
        _ = try? query("SELECT pg_advisory_unlock_all()")
    }

    @available(*, noasync, message: "waits for the connection to close")
    func close() {
        let connection = lock.withLock { () -> PostgresConnection? in
            defer { self.connection = nil }
            return self.connection
        }
        let closing: EventLoopFuture<Void>? = connection?.close()
        try? closing?.wait()
    }

    /// Forgets which months' partitions exist: `ensurePartitions` asks again (it creates only
    /// those missing).
    func forgetPartitions() { lock.withLock { months = [] } }

    /// Creates the partitions of the months of `instants` not known to exist, each in a short
    /// transaction of its own (creating one locks `reading` until it commits): before the batch's
    /// transaction, which holds no lock on `reading` yet.
    @available(*, noasync, message: "blocks its thread until the server answers")
    func ensurePartitions(_ instants: [Int64]) throws {
        let known = lock.withLock { months }
        var missing: [Int64: Int64] = [:]
        for instant in instants {
            let key = UTCMonth.key(instant)
            if !known.contains(key), missing[key] == nil { missing[key] = instant }
        }
        for (key, instant) in missing.sorted(by: { $0.key < $1.key }) {
            _ = try query("SELECT reading_partition(\(instant))")
            lock.withLock { _ = months.insert(key) }
        }
    }
}

/// The UTC month of an instant, as year * 12 + month - 1: the partitions of `reading`.
enum UTCMonth {
    static func key(_ milliseconds: Int64) -> Int64 {
        let date = LocalDate(daysSince1970: milliseconds.floorDiv(86_400_000))
        return Int64(date.year) * 12 + Int64(date.month) - 1
    }
}

/// One write transaction on PostgreSQL. The lookups read the committed table (only this writer
/// writes readings) and the readings appended earlier in this transaction; every write is held
/// until `commit`, which sends them between BEGIN and COMMIT: the readings in one statement.
/// Holding them keeps `reading` free of this transaction's locks until the month partitions the
/// batch needs exist.
final class PostgresIngestTransaction: IngestTransaction {
    let writer: PostgresWriterConnection
    /// Readings appended in this transaction (the lookups see them).
    private var appended = JournalIndex()
    private var devices: [String] = []
    private var instants: [Int64] = []
    private var energies: [Int64] = []
    private var powers: [Double] = []
    private var hasPower: [Bool] = []
    private var segments: [Int64] = []
    private var timeSources: [String] = []
    private var receivedAts: [Int64] = []
    private var quarantined: [(id: Int64, entry: QuarantineEntry)] = []
    private var releases: [(ids: [Int64], at: Instant)] = []
    private var segmentStarts: [SegmentStart] = []

    init(writer: PostgresWriterConnection) { self.writer = writer }

    private func index(_ query: PostgresQuery) throws -> StoredIndex? {
        guard let row = try writer.query(query).first else { return nil }
        let (instant, energy, segment) = try row.decode((Int64, Int64, Int64).self)
        return StoredIndex(instant: Instant(millisecondsSince1970: instant), energy: WattHours(energy), segment: Int(segment))
    }

    func stored(device: String, at instant: Instant) throws -> StoredIndex? {
        if let found = appended.stored(device: device, at: instant) { return found }
        if let neighbours = prepared[LateReading(device: device, instant: instant)] { return neighbours.stored }
        return try index("SELECT instant, energy_wh, segment FROM reading WHERE device_id = \(device) AND instant = \(instant.millisecondsSince1970)")
    }

    func previous(device: String, before instant: Instant) throws -> StoredIndex? {
        let table = try prepared[LateReading(device: device, instant: instant)].map(\.previous) ?? index("""
            SELECT instant, energy_wh, segment FROM reading WHERE device_id = \(device) AND instant < \(instant.millisecondsSince1970) ORDER BY instant DESC LIMIT 1
            """)
        return [table, appended.previous(device: device, before: instant)].compactMap { $0 }.max { $0.instant < $1.instant }
    }

    func next(device: String, after instant: Instant) throws -> StoredIndex? {
        let table = try prepared[LateReading(device: device, instant: instant)].map(\.next) ?? index("""
            SELECT instant, energy_wh, segment FROM reading WHERE device_id = \(device) AND instant > \(instant.millisecondsSince1970) ORDER BY instant LIMIT 1
            """)
        return [table, appended.next(device: device, after: instant)].compactMap { $0 }.min { $0.instant < $1.instant }
    }

    /// The stored reading at, before and after each announced late reading, as the table holds
    /// them (this batch's own readings are written at commit, and looked up in `appended`). No
    /// other process writes these devices until the batch ends: it holds their locks.
    private var prepared: [LateReading: (stored: StoredIndex?, previous: StoredIndex?, next: StoredIndex?)] = [:]

    var preparesLookups: Bool { true }

    func prepareLookups(_ readings: [LateReading]) throws {
        guard !readings.isEmpty else { return }
        let neighbour = "SELECT instant, energy_wh, segment FROM reading WHERE device_id = d.device_id AND instant"
        let rows = try writer.query("""
            SELECT d.device_id, d.instant, s.instant, s.energy_wh, s.segment, p.instant, p.energy_wh, p.segment, n.instant, n.energy_wh, n.segment
            FROM unnest(\(readings.map(\.device))::text[], \(readings.map(\.instant.millisecondsSince1970))::bigint[]) AS d(device_id, instant)
            LEFT JOIN LATERAL (\(unescaped: neighbour) = d.instant) s ON true
            LEFT JOIN LATERAL (\(unescaped: neighbour) < d.instant ORDER BY instant DESC LIMIT 1) p ON true
            LEFT JOIN LATERAL (\(unescaped: neighbour) > d.instant ORDER BY instant LIMIT 1) n ON true
            """)
        func index(_ instant: Int64?, _ energy: Int64?, _ segment: Int64?) -> StoredIndex? {
            guard let instant, let energy, let segment else { return nil }
            return StoredIndex(instant: Instant(millisecondsSince1970: instant), energy: WattHours(energy), segment: Int(segment))
        }
        for row in rows {
            let (device, instant, si, se, ss, pi, pe, ps, ni, ne, ns)
                = try row.decode((String, Int64, Int64?, Int64?, Int64?, Int64?, Int64?, Int64?, Int64?, Int64?, Int64?).self)
            prepared[LateReading(device: device, instant: Instant(millisecondsSince1970: instant))] = (index(si, se, ss), index(pi, pe, ps), index(ni, ne, ns))
        }
    }

    func append(_ reading: Reading) throws {
        // The first of one (device, instant) is kept, as ON CONFLICT DO NOTHING keeps the stored one.
        guard appended.stored(device: reading.device, at: reading.instant) == nil else { return }
        appended.add(device: reading.device, StoredIndex(instant: reading.instant, energy: reading.energy, segment: reading.segment))
        devices.append(reading.device)
        instants.append(reading.instant.millisecondsSince1970)
        energies.append(reading.energy.value)
        powers.append(reading.powerWatts ?? 0)
        hasPower.append(reading.powerWatts != nil)
        segments.append(Int64(reading.segment))
        timeSources.append(reading.timeSource.rawValue)
        receivedAts.append(reading.receivedAt.millisecondsSince1970)
    }

    func quarantine(_ entry: QuarantineEntry) throws -> Int64 {
        // The id is taken now (the caller keeps it for a held reading); the row is written at commit.
        guard let row = try writer.query("SELECT nextval(pg_get_serial_sequence('quarantine', 'id'))").first else {
            throw HubError.configuration("the quarantine table has no id sequence: are the energy migrations applied?")
        }
        let id = try row.decode(Int64.self)
        quarantined.append((id, entry))
        if lockedDevices, let device = entry.device {
            writer.knowQuarantine(of: device, upTo: id)
            if [.indexBackwards, .implausibleJump].contains(entry.reason) { heldRowsWritten.insert(device) }
        }
        return id
    }

    func release(quarantineIDs: [Int64], at instant: Instant) throws {
        releases.append((quarantineIDs, instant))
    }

    func recordSegment(_ start: SegmentStart) throws {
        segmentStarts.append(start)
    }

    /// The lock space of the devices' advisory locks (two-key form: this, then the device's hash).
    static let deviceLockSpace: Int32 = 0x4855_4244  // "HUBD"
    /// Whether this batch holds its devices' locks (given back once it ends).
    private(set) var lockedDevices = false

    /// Session-level locks (the batch's writes are sent at commit, after the month partitions they
    /// need exist, so no transaction is open yet), taken in one order by every process so two
    /// batches never wait for each other in a circle. Then one question: which devices did another
    /// process write since this one last knew them (a reading after its latest; a reading held
    /// aside as a possible reset, with a quarantine id it has not seen: ids are handed out under the
    /// device's lock, so another process's come after this one's)? Only those are read again, as
    /// `sequences()` reads every device at start; the others keep what this writer remembers
    /// (which, when it writes alone, is the truth).
    var isShared: Bool { true }

    func sharedSequences(of devices: [String], known: [String: DeviceSequence]) throws -> [String: DeviceSequence]? {
        guard !devices.isEmpty else { return [:] }
        lockedDevices = true
        _ = try writer.query("""
            SELECT pg_advisory_lock(\(Self.deviceLockSpace), h) FROM (SELECT DISTINCT hashtext(d) AS h FROM unnest(\(devices)::text[]) AS d ORDER BY 1) s
            """)
        let afterReading = devices.map { known[$0]?.last?.instant.millisecondsSince1970 ?? Int64.min }
        let afterID = devices.map { writer.knownQuarantine(of: $0) }
        // The readings' partitions before the one a device's latest is in are pruned. The first
        // row is the quarantine ids handed out so far (with no device); then each changed device
        // with its latest reading when that is new.
        var latest: [String: StoredIndex] = [:]
        var heldSince: Set<String> = []
        var lastID: Int64 = 0
        for row in try writer.query("""
            SELECT NULL::text, \(unescaped: PostgresWriterConnection.lastQuarantineIDSQL), NULL::bigint, NULL::bigint, NULL::bigint, false
            UNION ALL
            SELECT * FROM (
                SELECT d.device_id, 0, r.instant, r.energy_wh, r.segment,
                       EXISTS (SELECT 1 FROM quarantine q WHERE q.device_id = d.device_id AND q.id > d.after_id
                               AND q.reason IN ('index_backwards', 'implausible_jump') AND q.released_at IS NULL) AS held
                FROM unnest(\(devices)::text[], \(afterReading)::bigint[], \(afterID)::bigint[]) AS d(device_id, after_reading, after_id)
                LEFT JOIN LATERAL (SELECT instant, energy_wh, segment FROM reading WHERE device_id = d.device_id AND instant > d.after_reading
                                   ORDER BY instant DESC LIMIT 1) r ON true
            ) changed WHERE instant IS NOT NULL OR held
            """) {
            let (device, id, instant, energy, segment, held) = try row.decode((String?, Int64, Int64?, Int64?, Int64?, Bool).self)
            guard let device else { lastID = id; continue }
            if let instant, let energy, let segment {
                latest[device] = StoredIndex(instant: Instant(millisecondsSince1970: instant), energy: WattHours(energy), segment: Int(segment))
            }
            if held { heldSince.insert(device) }
        }
        for device in devices { writer.knowQuarantine(of: device, upTo: lastID) }
        var sequences = Dictionary(uniqueKeysWithValues: devices.compactMap { device in known[device].map { (device, $0) } })
        defer { candidatesAtStart = sequences.mapValues { $0.candidates.map(\.quarantineID) } }
        // A device with only a later reading, and no reading held aside here or since, goes on
        // from that reading; the others are read again whole (their held readings may have
        // changed: `device_candidates`).
        var reread: [String] = []
        for device in Set(latest.keys).union(heldSince).sorted() {
            if let index = latest[device], !heldSince.contains(device), known[device]?.candidates.isEmpty ?? true {
                sequences[device] = DeviceSequence(last: index)
            } else {
                reread.append(device)
            }
        }
        guard !reread.isEmpty else { return sequences }
        let stored = try Self.storedSequences(of: reread, writer: writer)
        for device in reread { sequences[device] = stored[device] }
        return sequences
    }

    /// The sequences as stored of `devices` (every registered device when nil): the latest reading
    /// of each (one index probe per device and month) and the held readings that still count.
    @available(*, noasync, message: "blocks its thread until the server answers")
    static func storedSequences(of devices: [String]?, writer: PostgresWriterConnection) throws -> [String: DeviceSequence] {
        let latestQuery: PostgresQuery
        let heldQuery: PostgresQuery
        let latestSQL = "CROSS JOIN LATERAL (SELECT instant, energy_wh, segment FROM reading WHERE device_id = d.id ORDER BY instant DESC LIMIT 1) r"
        let heldSQL = """
            SELECT id, device_id, instant, energy_wh, time_source, received_at FROM quarantine
            WHERE reason IN ('index_backwards', 'implausible_jump') AND released_at IS NULL AND instant IS NOT NULL AND energy_wh IS NOT NULL
            """
        if let devices {
            latestQuery = "SELECT d.id, r.instant, r.energy_wh, r.segment FROM unnest(\(devices)::text[]) AS d(id) \(unescaped: latestSQL)"
            heldQuery = "\(unescaped: heldSQL) AND device_id = ANY(\(devices)) ORDER BY device_id, instant, id"
        } else {
            latestQuery = "SELECT d.id, r.instant, r.energy_wh, r.segment FROM device d \(unescaped: latestSQL)"
            heldQuery = "\(unescaped: heldSQL) AND device_id IS NOT NULL ORDER BY device_id, instant, id"
        }
        let latest = try writer.query(latestQuery).map { row in
            let (device, instant, energy, segment) = try row.decode((String, Int64, Int64, Int64).self)
            return (device: device, index: StoredIndex(instant: Instant(millisecondsSince1970: instant), energy: WattHours(energy), segment: Int(segment)))
        }
        let held = try writer.query(heldQuery).map { row in
            let (id, device, instant, energy, timeSource, receivedAt) = try row.decode((Int64, String, Int64, Int64, String?, Int64).self)
            return ReadingStoreRows.Held(id: id, device: device, instant: instant, energy: energy, timeSource: timeSource, receivedAt: receivedAt)
        }
        return ReadingStoreRows.sequences(latest: latest, held: try stillHeld(held, devices: devices, writer: writer))
    }

    /// The held readings that still count: those the device's last writer kept
    /// (`device_candidates`), or all of them for a device it never recorded.
    @available(*, noasync, message: "blocks its thread until the server answers")
    static func stillHeld(_ held: [ReadingStoreRows.Held], devices: [String]?, writer: PostgresWriterConnection) throws -> [ReadingStoreRows.Held] {
        guard !held.isEmpty else { return held }
        let rows = try devices.map { devices in
            try writer.query("SELECT device_id, quarantine_ids FROM device_candidates WHERE device_id = ANY(\(devices))")
        } ?? writer.query("SELECT device_id, quarantine_ids FROM device_candidates")
        var kept: [String: Set<Int64>] = [:]
        for row in rows {
            let (device, ids) = try row.decode((String, [Int64]).self)
            kept[device] = Set(ids)
        }
        return held.filter { row in kept[row.device].map { $0.contains(row.id) } ?? true }
    }

    /// The candidates of the batch's devices when it started, to write only those that changed.
    private var candidatesAtStart: [String: [Int64]] = [:]
    private var candidatesChanged: [(device: String, ids: [Int64])] = []
    /// Devices with a quarantine row of a held kind in this batch.
    private var heldRowsWritten: Set<String> = []

    func keepShared(_ sequences: [String: DeviceSequence]) throws {
        for (device, sequence) in sequences.sorted(by: { $0.key < $1.key }) {
            let ids = sequence.candidates.map(\.quarantineID)
            // A row of a held kind written now says nothing of itself: whether it still counts is
            // recorded, even when the list is the same (a reading stored after it dropped it).
            if ids != candidatesAtStart[device] ?? [] || heldRowsWritten.contains(device) { candidatesChanged.append((device, ids)) }
        }
    }

    /// Writes what the body did, in one transaction. Nothing is written when the body threw.
    @available(*, noasync, message: "blocks its thread until the server answers")
    func commit() throws {
        guard !instants.isEmpty || !quarantined.isEmpty || !releases.isEmpty || !segmentStarts.isEmpty || !candidatesChanged.isEmpty else { return }
        try writer.ensurePartitions(instants)
        do {
            if quarantined.isEmpty && releases.isEmpty && segmentStarts.isEmpty && candidatesChanged.isEmpty {
                // Readings alone (nearly every batch): their one statement is its own transaction.
                _ = try writer.query(insertReadings())
            } else {
                try writeTogether()
            }
        } catch {
            // A month's partition this writer knew may have been dropped since (retention, by
            // another process): the batch's next attempt asks for its months' partitions again.
            writer.forgetPartitions()
            throw error
        }
    }

    /// Everything the batch wrote, between BEGIN and COMMIT.
    @available(*, noasync, message: "blocks its thread until the server answers")
    private func writeTogether() throws {
        _ = try writer.query("BEGIN")
        do {
            for (id, entry) in quarantined {
                var payload = ByteBuffer()
                payload.writeBytes(entry.payload)
                _ = try writer.query("""
                    INSERT INTO quarantine (id, received_at, topic, payload, payload_size, payload_sha256, reason, detail, device_id, instant, energy_wh, time_source)
                    VALUES (\(id), \(entry.receivedAt.millisecondsSince1970), \(ReadingStoreRows.storable(entry.topic)), \(payload), \(Int64(entry.payloadSize)),
                            \(entry.payloadSHA256), \(entry.reason.rawValue), \(ReadingStoreRows.storable(entry.detail)), \(entry.device.map(ReadingStoreRows.storable)), \(entry.reading?.instant.millisecondsSince1970),
                            \(entry.reading?.energy.value), \(entry.reading?.timeSource.rawValue))
                    """)
            }
            if !instants.isEmpty { _ = try writer.query(insertReadings()) }
            for (ids, at) in releases where !ids.isEmpty {
                _ = try writer.query("UPDATE quarantine SET released_at = \(at.millisecondsSince1970) WHERE id = ANY(\(ids))")
            }
            for start in segmentStarts {
                _ = try writer.query("""
                    INSERT INTO device_segment (device_id, segment, starts_at, index_before_wh, index_after_wh, detected_at)
                    VALUES (\(start.device), \(Int64(start.segment)), \(start.startsAt.millisecondsSince1970), \(start.indexBefore.value),
                            \(start.indexAfter.value), \(start.detectedAt.millisecondsSince1970))
                    ON CONFLICT (device_id, segment) DO UPDATE SET starts_at = LEAST(device_segment.starts_at, excluded.starts_at)
                    """)
            }
            for (device, ids) in candidatesChanged {
                _ = try writer.query("""
                    INSERT INTO device_candidates (device_id, quarantine_ids) VALUES (\(device), \(ids))
                    ON CONFLICT (device_id) DO UPDATE SET quarantine_ids = excluded.quarantine_ids
                    """)
            }
            _ = try writer.query("COMMIT")
        } catch {
            writer.rollback()
            throw error
        }
    }

    /// The batch's readings in one statement. Its first part records the changed ranges as
    /// SQLite's fold does (`ReadingJournal.fold`): per device, from the stored reading before its
    /// earliest new reading to the one after its latest; both parts see the table as it was
    /// before the statement, so the ranges are computed against the readings stored before.
    private func insertReadings() -> PostgresQuery {
        """
        WITH batch AS (
            SELECT * FROM unnest(\(devices)::text[], \(instants)::bigint[], \(energies)::bigint[], \(powers)::float8[], \(hasPower)::boolean[],
                                 \(segments)::bigint[], \(timeSources)::text[], \(receivedAts)::bigint[])
                AS b(device_id, instant, energy_wh, power_w, has_power, segment, time_source, received_at)
        ), changed AS (
            INSERT INTO reading_change_log (device_id, from_instant, to_instant)
            SELECT j.device_id,
                   COALESCE((SELECT MAX(r.instant) FROM reading r WHERE r.device_id = j.device_id AND r.instant < j.low), j.low),
                   COALESCE((SELECT MIN(r.instant) FROM reading r WHERE r.device_id = j.device_id AND r.instant > j.high), j.high)
            FROM (SELECT device_id, MIN(instant) AS low, MAX(instant) AS high FROM batch GROUP BY device_id) j
        )
        INSERT INTO reading (device_id, instant, energy_wh, power_w, segment, time_source, received_at)
        SELECT device_id, instant, energy_wh, CASE WHEN has_power THEN power_w END, segment, time_source, received_at FROM batch
        ON CONFLICT (device_id, instant) DO NOTHING
        """
    }
}

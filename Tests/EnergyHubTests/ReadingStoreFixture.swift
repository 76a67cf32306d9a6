import Foundation
import GRDB
import HubCore
import HubTestSupport
import PostgresNIO
import Shared
import Testing
@testable import EnergyCore
@testable import EnergyHub

/// The two reading stores the ingest scenarios run through.
enum StoreBackend: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case sqlite, postgres
    var testDescription: String { rawValue }
}

/// A stored reading as both stores give it back.
struct StoredRow: Hashable, Sendable, Comparable {
    var device: String
    var instant: Int64
    var energy: Int64
    var power: Double?
    var segment: Int64
    var timeSource: String
    var receivedAt: Int64

    static func < (a: StoredRow, b: StoredRow) -> Bool { (a.device, a.instant) < (b.device, b.instant) }
}

/// A store of either kind over the registry of `registryCSV`, its processor, and what a test
/// reads back, in one shape for both. The registry is imported into SQLite (`RegistryImporter`)
/// and copied as it is to PostgreSQL (the registry's own PostgreSQL store is not this change's).
/// The processor's synchronous calls run on a thread of their own, as the ingest writer's do.
final class StoreFixture: @unchecked Sendable {
    let backend: StoreBackend
    let registry: HubDatabase
    let postgres: HubPostgres?
    let settings: IngestSettings
    private(set) var store: any ReadingStore
    private(set) var processor: IngestProcessor

    static let migrations = SharedSchema.postgres + EnergySchema.postgres

    private init(_ backend: StoreBackend, registry: HubDatabase, postgres: HubPostgres?, settings: IngestSettings) throws {
        self.backend = backend
        self.registry = registry
        self.postgres = postgres
        self.settings = settings
        store = postgres.map { PostgresReadingStore(postgres: $0) } ?? SQLiteReadingStore(database: registry)
        processor = try IngestProcessor(settings: settings, store: store)
    }

    /// Runs `body` over a new store of `backend` whose processor loaded its state at `now`.
    @discardableResult
    static func run<T: Sendable>(_ backend: StoreBackend, registryCSV: String = TestSupport.samplesRegistryCSV, settings: IngestSettings = IngestSettings(),
                                 at now: Instant, _ body: @escaping @Sendable (StoreFixture) async throws -> T) async throws -> T {
        let database = try TestSupport.database()
        _ = try RegistryImporter(database: database).importCSV(Data(registryCSV.utf8))
        switch backend {
        case .sqlite:
            let fixture = try StoreFixture(backend, registry: database, postgres: nil, settings: settings)
            try await fixture.loadState(at: now)
            return try await body(fixture)
        case .postgres:
            let location = try await PostgresTestServer.database("readings", migrations: migrations)
            return try await HubPostgres(location, maximumConnections: 4).withRunning { postgres in
                let fixture = try StoreFixture(backend, registry: database, postgres: postgres, settings: settings)
                try await fixture.copyRegistry()
                let result: T
                do {
                    try await fixture.loadState(at: now)
                    result = try await body(fixture)
                } catch {
                    await fixture.close()
                    throw error
                }
                await fixture.close()
                return result
            }
        }
    }

    func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T { try await BlockingWork.run(work) }

    func loadState(at now: Instant) async throws {
        let processor = processor
        try await onThread { try processor.loadState(at: now) }
    }

    func process(_ messages: [IncomingMessage]) async throws -> BatchReport {
        let processor = processor
        return try await onThread { try processor.process(messages) }
    }

    /// What SQLite's fold moves; nothing on PostgreSQL (no journal).
    @discardableResult
    func fold() async throws -> FoldReport {
        let processor = processor
        return try await onThread { try processor.fold() }
    }

    /// A new store and processor over the same database, as after a restart of the hub.
    func restart(at now: Instant) async throws {
        await close()
        store = postgres.map { PostgresReadingStore(postgres: $0) } ?? SQLiteReadingStore(database: registry)
        processor = try IngestProcessor(settings: settings, store: store)
        try await loadState(at: now)
    }

    func close() async {
        guard let store = store as? PostgresReadingStore else { return }
        await BlockingWork.run { store.close() }
    }

    /// Imports more of the registry (and copies it to PostgreSQL).
    func importRegistry(_ csv: String) async throws {
        _ = try RegistryImporter(database: registry).importCSV(Data(csv.utf8))
        try await copyRegistry()
    }

    /// Copies the registry's estates, buildings, dwellings, devices and installations to
    /// PostgreSQL (those not there yet), with SQLite's values.
    private func copyRegistry() async throws {
        guard let postgres else { return }
        let (estates, buildings, dwellings, devices, installations) = try await registry.read { db in
            (try String.fetchAll(db, sql: "SELECT id FROM estate"),
             try Row.fetchAll(db, sql: "SELECT id, estate_id FROM building").map { [$0[0] as String, $0[1] as String] },
             try Row.fetchAll(db, sql: "SELECT id, building_id FROM dwelling").map { [$0[0] as String, $0[1] as String] },
             try Row.fetchAll(db, sql: "SELECT id, kind, format FROM device").map { [$0[0] as String, $0[1] as String, $0[2] as String] },
             try Row.fetchAll(db, sql: "SELECT device_id, since, COALESCE(until, ''), building_id, COALESCE(dwelling_id, '') FROM device_installation")
                .map { row in (0..<5).map { index in row[index] as String } })
        }
        func column(_ rows: [[String]], _ index: Int) -> [String] { rows.map { $0[index] } }
        try await postgres.transaction { connection in
            try await connection.query("INSERT INTO estate (id) SELECT * FROM unnest(\(estates)::text[]) ON CONFLICT DO NOTHING", logger: postgres.logger)
            try await connection.query("""
                INSERT INTO building (id, estate_id) SELECT * FROM unnest(\(column(buildings, 0))::text[], \(column(buildings, 1))::text[]) ON CONFLICT DO NOTHING
                """, logger: postgres.logger)
            try await connection.query("""
                INSERT INTO dwelling (id, building_id) SELECT * FROM unnest(\(column(dwellings, 0))::text[], \(column(dwellings, 1))::text[]) ON CONFLICT DO NOTHING
                """, logger: postgres.logger)
            try await connection.query("""
                INSERT INTO device (id, kind, format)
                SELECT * FROM unnest(\(column(devices, 0))::text[], \(column(devices, 1))::text[], \(column(devices, 2))::text[]) ON CONFLICT DO NOTHING
                """, logger: postgres.logger)
            try await connection.query("""
                INSERT INTO device_installation (device_id, since, until, building_id, dwelling_id)
                SELECT d, s, NULLIF(u, ''), b, NULLIF(w, '')
                FROM unnest(\(column(installations, 0))::text[], \(column(installations, 1))::text[], \(column(installations, 2))::text[],
                            \(column(installations, 3))::text[], \(column(installations, 4))::text[]) AS i(d, s, u, b, w)
                ON CONFLICT DO NOTHING
                """, logger: postgres.logger)
        }
    }

    // MARK: Read back

    /// Every stored reading, by device then instant.
    func readings() async throws -> [StoredRow] {
        let sql = "SELECT device_id, instant, energy_wh, power_w, segment, time_source, received_at FROM reading"
        if let postgres {
            return try await postgres.read { connection in
                var rows: [StoredRow] = []
                for try await (device, instant, energy, power, segment, source, received) in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: postgres.logger)
                    .decode((String, Int64, Int64, Double?, Int64, String, Int64).self) {
                    rows.append(StoredRow(device: device, instant: instant, energy: energy, power: power, segment: segment, timeSource: source, receivedAt: received))
                }
                return rows.sorted()
            }
        }
        return try await registry.read { db in
            try Row.fetchAll(db, sql: sql).map {
                StoredRow(device: $0[0], instant: $0[1], energy: $0[2], power: $0[3], segment: $0[4], timeSource: $0[5], receivedAt: $0[6])
            }.sorted()
        }
    }

    /// "device:from-to" of every `reading_change` row, sorted (SQLite's after a fold).
    func changes() async throws -> [String] {
        // PostgreSQL's writer appends to `reading_change_log`, merged by the upkeep: merged here too.
        try await strings(postgres == nil ? "SELECT device_id || ':' || from_instant || '-' || to_instant FROM reading_change" : """
            SELECT device_id || ':' || MIN(from_instant) || '-' || MAX(to_instant) FROM (
                SELECT device_id, from_instant, to_instant FROM reading_change UNION ALL SELECT device_id, from_instant, to_instant FROM reading_change_log) c
            GROUP BY device_id
            """)
    }

    /// "device#segment:startsAt before>after" of every `device_segment` row, sorted.
    func segments() async throws -> [String] {
        try await strings("SELECT device_id || '#' || segment || ':' || starts_at || ' ' || index_before_wh || '>' || index_after_wh FROM device_segment")
    }

    func strings(_ sql: String) async throws -> [String] {
        if let postgres {
            return try await postgres.read { try await $0.column(PostgresQuery(unsafeSQL: sql), as: String.self, logger: postgres.logger) }.sorted()
        }
        return try await registry.read { db in try String.fetchAll(db, sql: sql) }.sorted()
    }

    /// Every quarantine entry, in the store's order (receive time, then id), through the store.
    func quarantine() async throws -> [QuarantineEntry] {
        try await store.quarantine(since: Instant(millisecondsSince1970: 0), afterID: nil, limit: 1_000_000)
    }
}

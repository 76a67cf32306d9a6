import Foundation
import GRDB
import HubCore
import HubTestSupport
import HubTools
import Logging
import PostgresNIO
import Shared
import Testing
@testable import EnergyCore
@testable import EnergyHub

/// Disk used per reading and per dwelling-month of savings figures on both engines, measured
/// through the real stores (deploy/README.md's sizing table quotes it). Minutes of a run, so only
/// with `HUB_BENCH_TESTS=1`:
///   HUB_BENCH_TESTS=1 swift test --skip-build --filter DiskUseBenchTests
/// `HUB_BENCH_DEVICES` and `HUB_BENCH_MINUTES` change the readings' size (1,000 x 1,000).
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["HUB_BENCH_TESTS"] == "1", "HUB_BENCH_TESTS=1 measures disk use"))
struct DiskUseBenchTests {
    static let environment = ProcessInfo.processInfo.environment
    static let devices = Int(environment["HUB_BENCH_DEVICES"] ?? "") ?? 1000
    static let minutes = Int(environment["HUB_BENCH_MINUTES"] ?? "") ?? 1000
    static let logger = Logger(label: "bench.disk", factory: { _ in SwiftLogNoOpLogHandler() })
    static let start = Instant.parseRFC3339("2026-11-02T00:00:00Z")!

    /// Meters of dwellings, 25 to a building, with a PV device per building when `pv`.
    static func registry(dwellings: Int, pv: Bool) -> String {
        var csv = "estate;building;dwelling;device;kind;format;since;tariff\n"
        for building in 0..<(dwellings + 24) / 25 {
            if pv { csv += "E;B\(building);;pv-\(building);pv;canonical;2026-01-01;\n" }
            for dwelling in building * 25..<min(dwellings, building * 25 + 25) {
                csv += "E;B\(building);D\(dwelling);m-\(dwelling);meter;canonical;2026-01-01;edf-bleu-base\n"
            }
        }
        return csv
    }

    /// One message per device per step, as meters publish, with energy and power.
    static func messages(devices: [String], at instant: Instant, step: Int64, index: inout [String: Int64], random: inout SeededGenerator) -> [IncomingMessage] {
        let hour = (instant.millisecondsSince1970 / 3_600_000) % 24
        return devices.map { device in
            let watts: Int64 = device.hasPrefix("pv-") ? ((7...15).contains(hour) ? Int64.random(in: 2_000...12_000, using: &random) : 0)
                                                       : Int64.random(in: 150...2_500, using: &random)
            index[device, default: 1_000_000] += watts * step / 3_600
            let payload = "{\"ts\":\"\(instant.rfc3339)\",\"energy_wh\":\(index[device]!),\"power_w\":\(watts)}"
            return IncomingMessage(topic: "meters/\(device)/reading", payload: Array(payload.utf8), receivedAt: instant.adding(seconds: 2))
        }
    }

    /// Feeds `steps` steps of every device through `processor` (one batch a step), folding as the
    /// ingest writer does every 100,000 readings on SQLite; returns the readings stored.
    static func feed(_ processor: IngestProcessor, devices: [String], from: Instant, steps: Int, step: Int64, sqlite: Bool) async throws -> Int {
        try await BlockingWork.run {
            var index: [String: Int64] = [:]
            var random = SeededGenerator(seed: 11)
            var stored = 0
            var unfolded = 0
            for number in 0..<steps {
                let report = try processor.process(messages(devices: devices, at: from.adding(seconds: Int64(number) * step), step: step, index: &index, random: &random))
                stored += report.stored
                unfolded += report.stored
                if sqlite && unfolded >= 100_000 {
                    _ = try processor.fold()
                    unfolded = 0
                }
            }
            if sqlite { _ = try processor.fold() }
            return stored
        }
    }

    /// SQLite: bytes of every table with its indexes (dbstat), the file and its free pages.
    static func sqliteSizes(_ database: HubDatabase) async throws -> (tables: [String: Int64], file: Int64, free: Int64) {
        _ = try await database.pool.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
        return try await database.read { db in
            var tables: [String: Int64] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT m.tbl_name, SUM(s.pgsize) FROM dbstat s JOIN sqlite_master m ON m.name = s.name GROUP BY m.tbl_name
                """) {
                tables[row[0]] = row[1]
            }
            let pageSize = try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 0
            let free = (try Int64.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0) * pageSize
            let file = (try FileManager.default.attributesOfItem(atPath: database.path)[.size] as? Int64) ?? 0
            return (tables, file, free)
        }
    }

    /// PostgreSQL: bytes of each table with its indexes and TOAST (`pg_total_relation_size`),
    /// a partitioned table's being its partitions'.
    static func postgresSizes(_ postgres: HubPostgres, _ tables: [String]) async throws -> [String: Int64] {
        _ = try await postgres.client.query("VACUUM (ANALYZE)", logger: logger)
        var sizes: [String: Int64] = [:]
        for table in tables {
            sizes[table] = try await postgres.read { try await $0.scalar("""
                SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
                WHERE c.oid = \(table)::regclass OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = \(table)::regclass)
                """, as: Int64.self, logger: logger) } ?? 0
        }
        return sizes
    }

    static func rows(_ postgres: HubPostgres, _ table: String) async throws -> Int64 {
        try await postgres.read { try await $0.scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(table)"), as: Int64.self, logger: logger) } ?? 0
    }

    static func perReading(_ bytes: Int64, _ readings: Int) -> String { String(format: "%.1f", Double(bytes) / Double(max(1, readings))) }

    // MARK: - Readings

    @Test func bytesPerReadingOnSQLite() async throws {
        let database = try TestSupport.database(extraSchemas: [SavingsSchema.register])
        _ = try RegistryImporter(database: database).importCSV(Data(Self.registry(dwellings: Self.devices, pv: false).utf8))
        let before = try await Self.sqliteSizes(database)
        let processor = try IngestProcessor(settings: IngestSettings(), store: SQLiteReadingStore(database: database))
        try await BlockingWork.run { try processor.loadState(at: Self.start) }
        let clock = ContinuousClock.now
        let stored = try await Self.feed(processor, devices: (0..<Self.devices).map { "m-\($0)" }, from: Self.start, steps: Self.minutes, step: 60, sqlite: true)
        let seconds = Double((ContinuousClock.now - clock).components.seconds)
        let after = try await Self.sqliteSizes(database)
        #expect(stored == Self.devices * Self.minutes)
        let grown = after.tables.filter { $0.value != (before.tables[$0.key] ?? 0) }.map { "\($0.key) \($0.value - (before.tables[$0.key] ?? 0))" }.sorted()
        let used = (after.file - after.free) - (before.file - before.free)
        print("""
            DiskUseBenchTests SQLite: \(stored) readings (\(Self.devices) devices x \(Self.minutes) minutes, energy and power) stored and folded in \(Int(seconds)) s
              file \(after.file) bytes, \(after.free) of them free pages; grown by \(used) bytes in use = \(Self.perReading(used, stored)) bytes a reading
              by table (bytes, indexes included): \(grown.joined(separator: ", "))
              reading_by_device: \(Self.perReading(after.tables["reading_by_device"] ?? 0, stored)) bytes a reading
            """)
        #expect(used > 0)
    }

    @Test func bytesPerReadingOnPostgres() async throws {
        let location = try await PostgresTestServer.database("diskuse", migrations: SharedSchema.postgres + EnergySchema.postgres + SavingsSchema.postgres)
        try await HubPostgres(location, maximumConnections: 4, logger: Self.logger).withRunning { postgres in
            let configuration = try EnergySettings().validated()
            _ = try await PostgresRegistryStore(database: postgres, configuration: configuration)
                .importRegistry(csv: Data(Self.registry(dwellings: Self.devices, pv: false).utf8), by: .testStaff)
            let store = PostgresReadingStore(postgres: postgres)
            let processor = try IngestProcessor(settings: IngestSettings(), store: store)
            try await BlockingWork.run { try processor.loadState(at: Self.start) }
            let clock = ContinuousClock.now
            let stored = try await Self.feed(processor, devices: (0..<Self.devices).map { "m-\($0)" }, from: Self.start, steps: Self.minutes, step: 60, sqlite: false)
            let seconds = Double((ContinuousClock.now - clock).components.seconds)
            await BlockingWork.run { store.close() }
            #expect(stored == Self.devices * Self.minutes)
            let sizes = try await Self.postgresSizes(postgres, ["reading", "reading_change", "reading_change_log", "device_segment", "savings_dirty"])
            let database = try await postgres.read { try await $0.scalar("SELECT pg_database_size(current_database())", as: Int64.self, logger: Self.logger) } ?? 0
            print("""
                DiskUseBenchTests PostgreSQL: \(stored) readings (\(Self.devices) devices x \(Self.minutes) minutes, energy and power) stored in \(Int(seconds)) s
                  reading partitions \(sizes["reading"] ?? 0) bytes (indexes included, after VACUUM) = \(Self.perReading(sizes["reading"] ?? 0, stored)) bytes a reading
                  by table: \(sizes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")); the whole database \(database) bytes
                """)
            #expect((sizes["reading"] ?? 0) > 0)
        }
    }

    // MARK: - Savings figures of a month

    static let monthDwellings = 100
    static let october = Instant.parseRFC3339("2026-09-30T22:00:00Z")!
    static let octoberSteps = (31 * 24 + 1) * 6  // every 10 minutes, the repeated hour of 25 October included
    static let afterOctober = Instant.parseRFC3339("2026-11-05T00:00:00Z")!
    static let savingsTables = ["device_slot", "dwelling_slot", "building_slot", "dwelling_day", "building_day"]

    static func report(_ engine: String, rows: [String: Int64], bytes: [String: Int64]) {
        let buildings = Int64((monthDwellings + 24) / 25)
        var lines: [String] = []
        for table in savingsTables {
            let (count, size) = (rows[table] ?? 0, bytes[table] ?? 0)
            lines.append("  \(table): \(count) rows, \(size) bytes (\(count > 0 ? size / count : 0) a row)")
        }
        let dwelling = ["device_slot", "dwelling_slot", "dwelling_day"].map { bytes[$0] ?? 0 }.reduce(0, +)
        let building = ["building_slot", "building_day"].map { bytes[$0] ?? 0 }.reduce(0, +)
        print("DiskUseBenchTests \(engine), savings figures of October 2026 (\(monthDwellings) dwellings, \(buildings) buildings; device_slot holds the PV devices' slots too):\n"
              + lines.joined(separator: "\n")
              + "\n  per dwelling-month (device_slot, dwelling_slot, dwelling_day over \(monthDwellings) dwellings): \(dwelling / Int64(monthDwellings)) bytes;"
              + " per building-month: \(building / buildings) bytes")
    }

    @Test func savingsFiguresPerDwellingMonthOnSQLite() async throws {
        let database = try TestSupport.database(extraSchemas: [SavingsSchema.register])
        let csv = Self.registry(dwellings: Self.monthDwellings, pv: true)
        _ = try RegistryImporter(database: database).importCSV(Data(csv.utf8))
        let devices = try await database.read { db in try String.fetchAll(db, sql: "SELECT id FROM device ORDER BY id") }
        let processor = try IngestProcessor(settings: IngestSettings(), store: SQLiteReadingStore(database: database))
        try await BlockingWork.run { try processor.loadState(at: Self.october) }
        let stored = try await Self.feed(processor, devices: devices, from: Self.october, steps: Self.octoberSteps, step: 600, sqlite: true)
        let configuration = try EnergySettings().validated()
        let upkeep = try await BlockingWork.run { try SavingsUpkeep(database: database, configuration: configuration).bringUpToDate(now: Self.afterOctober) }
        #expect(upkeep.daysRecomputed > 0)
        let sizes = try await Self.sqliteSizes(database)
        var rows: [String: Int64] = [:]
        for table in Self.savingsTables {
            rows[table] = try await database.read { db in try Int64.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)") } ?? 0
        }
        print("DiskUseBenchTests SQLite: \(stored) readings every 10 minutes; reading_by_device \(Self.perReading(sizes.tables["reading_by_device"] ?? 0, stored)) bytes a reading")
        Self.report("SQLite", rows: rows, bytes: sizes.tables)
        #expect((rows["dwelling_day"] ?? 0) >= Int64(Self.monthDwellings) * 31)
    }

    @Test func savingsFiguresPerDwellingMonthOnPostgres() async throws {
        let location = try await PostgresTestServer.database("diskusesavings", migrations: SharedSchema.postgres + EnergySchema.postgres + SavingsSchema.postgres)
        let configuration = try EnergySettings().validated()
        try await HubPostgres(location, maximumConnections: 4, logger: Self.logger).withRunning { postgres in
            _ = try await PostgresRegistryStore(database: postgres, configuration: configuration)
                .importRegistry(csv: Data(Self.registry(dwellings: Self.monthDwellings, pv: true).utf8), by: .testStaff)
            let devices = try await postgres.read { try await $0.column("SELECT id FROM device ORDER BY id", as: String.self, logger: Self.logger) }
            let store = PostgresReadingStore(postgres: postgres)
            let processor = try IngestProcessor(settings: IngestSettings(), store: store)
            try await BlockingWork.run { try processor.loadState(at: Self.october) }
            let stored = try await Self.feed(processor, devices: devices, from: Self.october, steps: Self.octoberSteps, step: 600, sqlite: false)
            await BlockingWork.run { store.close() }
            let upkeep = try await BlockingWork.run {
                try PostgresSavingsUpkeep(location: location, configuration: configuration, logger: Self.logger).bringUpToDate(now: Self.afterOctober)
            }
            #expect(upkeep.daysRecomputed > 0)
            let sizes = try await Self.postgresSizes(postgres, Self.savingsTables + ["reading"])
            var rows: [String: Int64] = [:]
            for table in Self.savingsTables { rows[table] = try await Self.rows(postgres, table) }
            print("DiskUseBenchTests PostgreSQL: \(stored) readings every 10 minutes; reading partitions \(Self.perReading(sizes["reading"] ?? 0, stored)) bytes a reading")
            Self.report("PostgreSQL", rows: rows, bytes: sizes)
            #expect((rows["dwelling_day"] ?? 0) >= Int64(Self.monthDwellings) * 31)
        }
    }
}

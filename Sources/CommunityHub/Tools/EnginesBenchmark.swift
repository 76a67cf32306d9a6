import Foundation
import EnergyCore
import HubCore
import Logging
import PostgresNIO
import Shared
import EnergyHub

/// `community-hub bench engines`: a month's energy figures read from PostgreSQL against SQLite,
/// the baseline, in the same run (issue 11). For each dwelling count, one synthetic registry
/// (estates of `dwellingsPerEstate`, buildings of 40 with PV) goes through each engine's real
/// importer; then a month of daily figures for every dwelling and building, and of slot figures
/// for every building (and, with `dwellingSlots`, every dwelling), is written directly in bulk
/// with one SQL text on both engines: the figures are not computed, their reading is what is
/// measured. Timed, best of `repetitions`: the landlord's month report, one estate's, one
/// building's and one dwelling's, through `EnergyReports` (SQLite's reader pool; a few PostgreSQL
/// connections). Optionally, the upkeep computing one building's month from 10-minute readings.
/// The PostgreSQL database is the bench's own, created on the server `serverURL` names and
/// dropped afterwards.
public enum EnginesBenchmark {
    public struct Options: Sendable {
        public var dwellings = [10_000, 40_000]
        public var dwellingsPerEstate = 2_000
        public var dwellingsPerBuilding = 40
        public var repetitions = 5
        public var dwellingSlots = false
        public var upkeep = false
        /// Days of March the upkeep computes (all 31 for the figure; fewer keep the test short).
        public var upkeepDays = 31
        public var directory: URL
        public var server: PostgresLocation

        public init(directory: URL, server: PostgresLocation) {
            self.directory = directory
            self.server = server
        }
    }

    /// March 2026: 31 local days, one of them 23 hours long (the change to summer time).
    static let first = LocalDate(year: 2026, month: 3, day: 1)!
    static let last = LocalDate(year: 2026, month: 3, day: 31)!

    /// One figure on both engines.
    public struct Timing: Sendable {
        public var what: String
        public var sqlite: Double
        public var postgres: Double
    }

    public static func run(_ options: Options, log: @escaping @Sendable (String) -> Void) async throws {
        log("bench engines: SYNTHETIC registry and figures (figures written in bulk, not computed); PostgreSQL against SQLite in the same run; "
            + "best of \(options.repetitions) runs")
        for count in options.dwellings {
            let timings = try await reports(options, dwellings: count, log: log)
            log(table(timings))
        }
        if options.upkeep {
            log(table([try await upkeep(options, log: log)]))
        }
    }

    static func table(_ timings: [Timing]) -> String {
        EnergyTables.render(["what", "SQLite ms", "PostgreSQL ms", "PostgreSQL / SQLite"], timings.map {
            [$0.what, String(format: "%.1f", $0.sqlite * 1000), String(format: "%.1f", $0.postgres * 1000), String(format: "%.2fx", $0.postgres / max($0.sqlite, 1e-9))]
        })
    }

    // MARK: - The month's reports

    /// Builds the same registry and month on both engines, then times the reports; returns the figures.
    public static func reports(_ options: Options, dwellings: Int, log: @escaping @Sendable (String) -> Void) async throws -> [Timing] {
        let configuration = try EnergySettings().validated()
        let estates = max(1, dwellings / options.dwellingsPerEstate)
        let perEstate = dwellings / estates
        let csv = ReportsBenchmark.registryCSV({
            var shape = ReportsBenchmark.Options(directory: options.directory)
            shape.estates = estates
            shape.dwellingsPerEstate = perEstate
            shape.dwellingsPerBuilding = options.dwellingsPerBuilding
            return shape
        }())
        let total = estates * max(1, perEstate / options.dwellingsPerBuilding) * options.dwellingsPerBuilding
        log("\n\(total) dwellings: \(estates) estates, \(options.dwellingsPerBuilding) dwellings a building, "
            + "March 2026 (\(first) to \(last)): daily figures of every dwelling and building, slot figures of every building\(options.dwellingSlots ? " and dwelling" : "")")

        let path = options.directory.appendingPathComponent("bench-engines-\(total).sqlite").path
        remove(path)
        defer { remove(path) }
        let sqlite = try HubDatabase.open(path: path, schemas: [SharedSchema.register, EnergySchema.register, SavingsSchema.register], synchronous: .normal)
        defer { try? sqlite.close() }
        return try await withBenchDatabase(options.server, label: "engines_\(total)") { location, postgres in
            let staff = Identity(name: "bench", role: .staff)
            var clock = ContinuousClock.now
            _ = try RegistryImporter(database: sqlite).importCSV(Data(csv.utf8))
            let sqliteImport = ContinuousClock.now - clock
            clock = ContinuousClock.now
            _ = try await PostgresRegistryStore(database: postgres, configuration: configuration).importRegistry(csv: Data(csv.utf8), by: staff)
            let postgresImport = ContinuousClock.now - clock
            log("  registry imported: SQLite \(seconds(sqliteImport)) s, PostgreSQL \(seconds(postgresImport)) s")

            let grid = configuration.grid
            let slots = grid.slot(startingAtOrAfter: configuration.zone.startOfDay(first))..<grid.slot(startingAtOrAfter: configuration.zone.startOfDay(last.advanced(by: 1)))
            let days = (0..<31).map { first.advanced(by: $0).description }
            let estateIDs = (0..<estates).map { "E\($0)" }
            clock = ContinuousClock.now
            try await sqlite.write { db in
                for estate in estateIDs { try seed(SQLiteSession(db), estate: estate, days: days, slots: slots, dwellingSlots: options.dwellingSlots) }
            }
            let sqliteSeed = ContinuousClock.now - clock
            clock = ContinuousClock.now
            let logger = postgres.logger
            try await BlockingWork.run {
                let session = try PostgresBlockingSession(location, logger: logger)
                defer { session.close() }
                for estate in estateIDs {
                    try session.transaction { try seed($0, estate: estate, days: days, slots: slots, dwellingSlots: options.dwellingSlots) }
                }
                try session.execute("VACUUM ANALYZE")
            }
            let postgresSeed = ContinuousClock.now - clock
            _ = try await sqlite.write { db in try SQLiteSession(db).execute("ANALYZE") }
            let counts = try await sqlite.read { db in try SQLiteSession(db).rows("SELECT (SELECT COUNT(*) FROM dwelling_day), (SELECT COUNT(*) FROM building_slot), (SELECT COUNT(*) FROM dwelling_slot)") }
            let postgresCounts = try await postgres.read { connection in
                try await connection.rows(sql: "SELECT (SELECT COUNT(*) FROM dwelling_day), (SELECT COUNT(*) FROM building_slot), (SELECT COUNT(*) FROM dwelling_slot)", [], logger: logger)
            }
            guard counts == postgresCounts else { throw HubError.configuration("bench engines: the engines hold different figures: \(counts) vs \(postgresCounts)") }
            let sqliteBytes = ["", "-wal"].reduce(Int64(0)) { $0 + ((try? FileManager.default.attributesOfItem(atPath: path + $1)[.size] as? Int64) ?? 0) }
            let postgresBytes = try await postgres.read { try await $0.scalar("SELECT pg_database_size(current_database())", as: Int64.self, logger: logger) } ?? 0
            log("  figures written in bulk: SQLite \(seconds(sqliteSeed)) s, PostgreSQL \(seconds(postgresSeed)) s; rows (dwelling days, building slots, dwelling slots) \(try counts[0].map { "\(try $0.int64)" }.joined(separator: ", ")); "
                + "database size: SQLite \(sqliteBytes / 1_000_000) MB, PostgreSQL \(postgresBytes / 1_000_000) MB")

            let readers = PostgresReaders(location, connections: 4, logger: logger)
            let engines = [EnergyReports(database: sqlite, configuration: configuration), EnergyReports(reader: readers, configuration: configuration)]
            let now = configuration.zone.startOfDay(last.advanced(by: 1))
            let (estate, building, dwelling) = ("E\(estates / 2)", "E\(estates / 2)-B0", "E\(estates / 2)-B0-D7")
            var times: [[Double]] = []
            var landlords: [LandlordEnergyReport] = [], estateReports: [EstateEnergyReport] = []
            var buildingReports: [BuildingEnergyReport] = [], dwellingReports: [DwellingEnergyReport] = []
            do {
                for reports in engines {
                    times.append([
                        try await bestAsync(options.repetitions) { landlords.append(try await reports.landlord(from: first, to: last, now: now)) },
                        try await bestAsync(options.repetitions) { estateReports.append(try await reports.estate(estate, from: first, to: last, now: now)) },
                        try await bestAsync(options.repetitions) { buildingReports.append(try await reports.building(building, from: first, to: last, now: now)) },
                        try await bestAsync(options.repetitions) { dwellingReports.append(try await reports.dwelling(dwelling, from: first, to: last, now: now)) },
                    ])
                }
            } catch {
                await BlockingWork.run { readers.close() }
                throw error
            }
            await BlockingWork.run { readers.close() }
            // Every run of both engines gave the same report, or the comparison means nothing.
            guard Set(landlords.map { "\($0)" }).count == 1, Set(estateReports.map { "\($0)" }).count == 1,
                  Set(buildingReports.map { "\($0)" }).count == 1, Set(dwellingReports.map { "\($0)" }).count == 1 else {
                throw HubError.configuration("bench engines: the engines' reports differ")
            }
            log("  the same reports from both: \(landlords[0].households.count) households landlord-wide, \(estateReports[0].households.count) in \(estate), "
                + "\(buildingReports[0].productionWh) Wh produced by \(building), \(dwellingReports[0].savingsCents) cents saved by \(dwelling)")
            let labels = ["landlord's month (\(total) dwellings)", "one estate's month (\(perEstate) dwellings)",
                          "one building's month (\(options.dwellingsPerBuilding) dwellings)", "one dwelling's month"]
            return labels.indices.map { Timing(what: labels[$0], sqlite: times[0][$0], postgres: times[1][$0]) }
        }
    }

    /// A month of figures for one estate, the same SQL text on both engines (deterministic values
    /// from the day, the slot and the id's length: nothing random to keep in step).
    static func seed(_ db: any SQLSession, estate: String, days: [String], slots: Range<Int64>, dwellingSlots: Bool) throws {
        let dayValues = "WITH d(n, day) AS (VALUES " + days.enumerated().map { "(\($0.offset), '\($0.element)')" }.joined(separator: ", ") + ") "
        let slotSeries = "WITH RECURSIVE s(slot) AS (SELECT CAST(? AS BIGINT) UNION ALL SELECT slot + 1 FROM s WHERE slot + 1 < ?) "
        try db.execute("""
            INSERT INTO dwelling_day (dwelling_id, day, building_id, consumption_wh, allocated_wh, savings_nano, measured, estimated)
            \(dayValues)SELECT w.id, d.day, w.building_id, 4000 + (d.n * 131 + length(w.id) * 17) % 3000, 1000 + (d.n * 71 + length(w.id)) % 1500,
                CAST(1000 + (d.n * 71 + length(w.id)) % 1500 AS BIGINT) * 150000, 48, 0
            FROM dwelling w JOIN building b ON b.id = w.building_id CROSS JOIN d WHERE b.estate_id = ?
            """, estate)
        try db.execute("""
            INSERT INTO building_day (building_id, day, production_wh, allocated_wh, surplus_wh, consumption_wh, revenue_nano, measured, estimated, problems)
            \(dayValues)SELECT b.id, d.day, 60000 + d.n * 900, 50000 + d.n * 700, 10000 + d.n * 200, 200000 + d.n * 1000, CAST(10000 + d.n * 200 AS BIGINT) * 60000, 48, 0, ''
            FROM building b CROSS JOIN d WHERE b.estate_id = ?
            """, estate)
        try db.execute("""
            INSERT INTO building_slot (building_id, slot, production_wh, allocated_wh, surplus_wh, consumption_wh, revenue_nano, quality)
            \(slotSeries)SELECT b.id, s.slot, (s.slot % 48) * 40, (s.slot % 48) * 30, (s.slot % 48) * 10, 4000 + (s.slot % 48) * 50, (s.slot % 48) * 600000, 1
            FROM building b CROSS JOIN s WHERE b.estate_id = ?
            """, slots.lowerBound, slots.upperBound, estate)
        if dwellingSlots {
            try db.execute("""
                INSERT INTO dwelling_slot (building_id, slot, dwelling_id, consumption_wh, allocated_wh, savings_nano, quality)
                \(slotSeries)SELECT w.building_id, s.slot, w.id, 100 + (s.slot * 7 + length(w.id)) % 200, (100 + (s.slot * 7 + length(w.id)) % 200) / 2,
                    CAST((100 + (s.slot * 7 + length(w.id)) % 200) / 2 AS BIGINT) * 150000, 1
                FROM dwelling w JOIN building b ON b.id = w.building_id CROSS JOIN s WHERE b.estate_id = ?
                """, slots.lowerBound, slots.upperBound, estate)
        }
    }

    // MARK: - The upkeep of one building's month

    /// The upkeep computing one building's month (40 dwellings and its PV, readings every 10
    /// minutes, as ingest leaves them with their `reading_change` rows) from no figures, on both
    /// engines: SQLite's `SavingsUpkeep` against `PostgresSavingsUpkeep`, the same steps.
    public static func upkeep(_ options: Options, log: @escaping @Sendable (String) -> Void) async throws -> Timing {
        let configuration = try EnergySettings().validated()
        var shape = ReportsBenchmark.Options(directory: options.directory)
        shape.estates = 1
        shape.dwellingsPerEstate = options.dwellingsPerBuilding
        shape.dwellingsPerBuilding = options.dwellingsPerBuilding
        let csv = ReportsBenchmark.registryCSV(shape)
        let now = configuration.zone.startOfDay(first.advanced(by: min(31, max(1, options.upkeepDays))))
        let start = configuration.zone.startOfDay(first).millisecondsSince1970
        log("\none building's month computed by the upkeep: \(options.dwellingsPerBuilding) dwellings and PV, readings every 10 minutes, "
            + "March 2026\(options.upkeepDays < 31 ? " (its first \(options.upkeepDays) days)" : "")")

        let path = options.directory.appendingPathComponent("bench-engines-upkeep.sqlite").path
        remove(path)
        defer { remove(path) }
        let sqlite = try HubDatabase.open(path: path, schemas: [SharedSchema.register, EnergySchema.register, SavingsSchema.register], synchronous: .normal)
        defer { try? sqlite.close() }
        _ = try RegistryImporter(database: sqlite).importCSV(Data(csv.utf8))
        let sqliteUpkeep = SavingsUpkeep(database: sqlite, configuration: configuration)
        _ = try await BlockingWork.run { try sqliteUpkeep.bringUpToDate(now: now) }
        let devices = ["pv-E0-B0"] + (0..<options.dwellingsPerBuilding).map { "m-E0-B0-D\($0)" }
        let readings = try await BlockingWork.run {
            try SavingsBenchmark.storeReadings(sqlite, devices: devices.map { ($0, $0.hasPrefix("pv-") ? Int64(options.dwellingsPerBuilding) * 350 : 0) },
                                               start: start, end: now.millisecondsSince1970, step: 600_000)
        }
        let stored = try await sqlite.read { db in
            try SQLiteSession(db).rows("SELECT device_id, instant, energy_wh, segment, time_source, received_at FROM reading_by_device ORDER BY device_id, instant")
        }
        let changes = try await sqlite.read { db in try SQLiteSession(db).rows("SELECT device_id, from_instant, to_instant FROM reading_change") }
        let sqliteStatements = SQLStatementCounter()
        let sqliteStart = ContinuousClock.now
        let sqliteReport = try await BlockingWork.run { try sqliteUpkeep.bringUpToDate(now: now, counter: sqliteStatements) }
        let sqliteTime = SavingsBenchmark.seconds(ContinuousClock.now - sqliteStart)
        let figures = "SELECT (SELECT COUNT(*) FROM device_slot), (SELECT COUNT(*) FROM dwelling_slot), (SELECT COUNT(*) FROM dwelling_day), "
            + "(SELECT CAST(SUM(savings_nano) AS BIGINT) FROM dwelling_day)"
        let sqliteFigures = try await sqlite.read { db in try SQLiteSession(db).rows(figures) }

        return try await withBenchDatabase(options.server, label: "engines_upkeep") { location, postgres in
            _ = try await PostgresRegistryStore(database: postgres, configuration: configuration).importRegistry(csv: Data(csv.utf8), by: Identity(name: "bench", role: .staff))
            let logger = postgres.logger
            let postgresUpkeep = PostgresSavingsUpkeep(location: location, configuration: configuration, logger: logger)
            _ = try await BlockingWork.run { try postgresUpkeep.bringUpToDate(now: now) }
            try await BlockingWork.run {
                let session = try PostgresBlockingSession(location, logger: logger)
                defer { session.close() }
                for instant in [start, now.millisecondsSince1970 - 1] {
                    try session.transaction { _ = try $0.rows("SELECT reading_partition(?)", instant) }
                }
                try session.transaction { db in
                    for batch in stride(from: 0, to: stored.count, by: 1_000) {
                        let rows = stored[batch..<min(stored.count, batch + 1_000)]
                        _ = try db.execute("INSERT INTO reading (device_id, instant, energy_wh, segment, time_source, received_at) VALUES "
                                       + Array(repeating: "(?, ?, ?, ?, ?, ?)", count: rows.count).joined(separator: ", "), rows.flatMap { $0 })
                    }
                    for change in changes { _ = try db.execute("INSERT INTO reading_change (device_id, from_instant, to_instant) VALUES (?, ?, ?)", change) }
                }
                try session.execute("VACUUM ANALYZE")
            }
            let postgresStatements = SQLStatementCounter()
            let postgresStart = ContinuousClock.now
            let postgresReport = try await BlockingWork.run { try postgresUpkeep.bringUpToDate(now: now, counter: postgresStatements) }
            let postgresTime = SavingsBenchmark.seconds(ContinuousClock.now - postgresStart)
            let postgresFigures = try await postgres.read { try await $0.rows(sql: figures, [], logger: logger) }
            guard postgresReport == sqliteReport, postgresFigures == sqliteFigures else {
                throw HubError.configuration("bench engines: the upkeep differs: \(sqliteReport) \(sqliteFigures) vs \(postgresReport) \(postgresFigures)")
            }
            log("  \(readings) readings; the same figures from both: \(sqliteReport.deviceSlotsRecomputed) device slots, \(sqliteReport.buildingSlotsRecomputed) building slots, "
                + "\(sqliteReport.daysRecomputed) days recomputed; statements of each step (the settings' check first): "
                + "SQLite \(sqliteStatements.perStep), PostgreSQL \(postgresStatements.perStep)")
            return Timing(what: "upkeep of one building's month (\(options.dwellingsPerBuilding) dwellings)", sqlite: sqliteTime, postgres: postgresTime)
        }
    }

    // MARK: - Support

    /// Runs `body` with a database of the bench's own on the server, created empty with the hub's
    /// energy migrations and dropped afterwards (even when `body` throws).
    static func withBenchDatabase<T: Sendable>(_ server: PostgresLocation, label: String,
                                               _ body: @Sendable (PostgresLocation, HubPostgres) async throws -> T) async throws -> T {
        let quiet = Logger(label: "bench.postgres", factory: { _ in SwiftLogNoOpLogHandler() })
        let name = "bench_\(label)_\(UInt32.random(in: 0...UInt32.max))"
        // A client runs once: one for the creation, another for the drop.
        try await HubPostgres(server, maximumConnections: 1, logger: quiet).withRunning { admin in
            _ = try await admin.client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"))
        }
        let location = server.with(database: name)
        let result: Result<T, any Error>
        do {
            let database = HubPostgres(location, maximumConnections: 4, logger: quiet)
            result = .success(try await database.withRunning { database in
                try await database.migrate(SharedSchema.postgres + EnergySchema.postgres + SavingsSchema.postgres)
                return try await body(location, database)
            })
        } catch {
            result = .failure(error)
        }
        try await HubPostgres(server, maximumConnections: 1, logger: quiet).withRunning { admin in
            _ = try await admin.client.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"))
        }
        return try result.get()
    }

    static func remove(_ path: String) {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    static func seconds(_ duration: Duration) -> String { String(format: "%.1f", SavingsBenchmark.seconds(duration)) }

    static func bestAsync(_ repetitions: Int, _ body: () async throws -> Void) async throws -> Double {
        try await SavingsBenchmark.bestAsync(repetitions, body)
    }
}

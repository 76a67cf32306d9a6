import Foundation
import GRDB
import HubTestSupport
import HubCore
import HubTools
import Logging
import Shared
import Testing
@testable import EnergyCore
@testable import EnergyHub

/// The savings upkeep on PostgreSQL against SQLite: the same October (its DST change included) of
/// a building and its households, from the same registry and readings, gives the same slot and
/// daily figures in both, to the Wh and the nano-euro.
@Suite struct SavingsPostgresTests {
    static let registry = """
        estate;building;dwelling;device;kind;format;since;tariff;share
        E;B;;pv-1;pv;canonical;2026-06-01;;
        E;B;D1;m-1;meter;canonical;2026-06-01;edf-bleu-hphc 11:00-17:00;0.4
        E;B;D2;m-2;meter;canonical;2026-06-01;;0.35
        E;B;D3;m-3;meter;canonical;2026-06-01;;0.25
        E;C;D4;m-4;meter;canonical;2026-06-01;;1
        """

    /// Every table the upkeep reads, in an order that satisfies the foreign keys.
    static let inputs = ["estate", "building", "dwelling", "device", "device_installation", "dwelling_tariff", "dwelling_share",
                         "building_allocation_key", "allocation_coefficient", "reading_change", "savings_dirty", "energy_month_export", "quarantine"]
    /// Every table it writes, with the columns that order its rows.
    static let outputs = [("device_slot", "device_id, slot"), ("dwelling_slot", "building_id, slot, dwelling_id"), ("building_slot", "building_id, slot"),
                          ("dwelling_day", "dwelling_id, day"), ("building_day", "building_id, day"), ("savings_dirty", "id"), ("reading_change", "device_id"),
                          ("energy_month_export", "building_id, month")]

    /// October 2026 every 10 minutes (a seeded, uneven household load; production by day), with a
    /// hole of five hours in one meter's readings (estimated slots) and the repeated hour of 25 October.
    func october(_ hub: SavingsFixture) throws {
        var random = SeededGenerator(seed: 2026_10)
        let start = SavingsFixture.at("2026-09-30T22:00:00Z")
        let end = SavingsFixture.at("2026-11-01T01:00:00Z")
        var index: [String: Int64] = ["pv-1": 0, "m-1": 10_000, "m-2": 20_000, "m-3": 30_000, "m-4": 40_000]
        var instant = start
        var messages: [IncomingMessage] = []
        while instant < end {
            let hour = (instant.millisecondsSince1970 / 3_600_000) % 24
            for device in index.keys.sorted() {
                if device == "pv-1" {
                    index[device]! += (7...15).contains(hour) ? Int64.random(in: 20...160, using: &random) : 0
                } else {
                    index[device]! += Int64.random(in: 5...90, using: &random)
                }
                if device == "m-2", instant >= SavingsFixture.at("2026-10-12T08:00:00Z"), instant < SavingsFixture.at("2026-10-12T13:00:00Z") { continue }
                let payload = SavingsFixture.canonical(instant, index[device]!)
                messages.append(IncomingMessage(topic: "meters/\(device)/reading", payload: Array(payload.utf8), receivedAt: instant.adding(seconds: 2)))
            }
            instant = instant.adding(seconds: 600)
        }
        for batch in stride(from: 0, to: messages.count, by: 500) {
            _ = try hub.processor.process(Array(messages[batch..<min(batch + 500, messages.count)]))
        }
        _ = try hub.processor.fold()
    }

    /// The same inputs on a new PostgreSQL database: the registry and the readings as the SQLite
    /// hub holds them, and the queues exactly as they are (the PostgreSQL triggers' own rows replaced).
    static func copyToPostgres(_ hub: SavingsFixture, label: String) async throws -> PostgresLocation {
        let location = try await PostgresTestServer.database(label, migrations: SharedSchema.postgres + EnergySchema.postgres + SavingsSchema.postgres)
        let logger = Logger(label: "test.savings.postgres")
        let readings = try await hub.database.read { db in try SQLiteSession(db).rows("SELECT * FROM reading ORDER BY device_id, instant") }
        var tables: [(String, [[SQLValue]])] = []
        for table in inputs {
            tables.append((table, try await hub.database.read { db in try SQLiteSession(db).rows("SELECT * FROM \(table)") }))
        }
        let snapshot = tables
        // The months the readings fall in (a partition each), created before the rows go in.
        let instants = try readings.map { try $0[1].int64 }
        let months = instants.isEmpty ? [] : Array(stride(from: instants.min()!, to: instants.max()!, by: 20 * 86_400_000)) + [instants.max()!]
        try await BlockingWork.run {
            let session = try PostgresBlockingSession(location, logger: logger)
            defer { session.close() }
            try session.transaction { db in
                for instant in months { _ = try db.rows("SELECT reading_partition(?)", instant) }
            }
            try session.transaction { db in
                for (table, rows) in snapshot {
                    if table == "savings_dirty" { try db.execute("DELETE FROM savings_dirty") }
                    for row in rows {
                        _ = try db.execute("INSERT INTO \(table) VALUES (\(Array(repeating: "?", count: row.count).joined(separator: ", ")))", row)
                    }
                }
                for row in readings {
                    _ = try db.execute("INSERT INTO reading VALUES (?, ?, ?, ?, ?, ?, ?)", row)
                }
            }
        }
        return location
    }

    @Test func theSameOctoberGivesTheSameFiguresOnBothEngines() async throws {
        let hub = try SavingsFixture(registry: Self.registry)
        try october(hub)
        // Staff exported October of building B before a late fix: the month is flagged revised on both.
        try await hub.database.write { db in
            try db.execute(sql: "INSERT INTO building_allocation_key (building_id, since, allocation_key) VALUES ('B', '2026-10-15', 'static')")
            try db.execute(sql: "INSERT INTO energy_month_export (building_id, month, exported_at) VALUES ('B', '2026-10', 1)")
        }

        let location = try await Self.copyToPostgres(hub, label: "savings")
        let logger = Logger(label: "test.savings.postgres")
        #expect(try await hub.database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM reading") ?? 0 } > 20_000)

        let now = SavingsFixture.at("2026-11-05T00:00:00Z")
        let fromSQLite = try hub.upkeep.bringUpToDate(now: now)
        let fromPostgres = try await BlockingWork.run {
            try PostgresSavingsUpkeep(location: location, configuration: hub.configuration, logger: logger).bringUpToDate(now: now)
        }
        #expect(fromPostgres == fromSQLite)
        #expect(fromSQLite.daysRecomputed > 31 && fromSQLite.monthsRevised == 1)

        for (table, order) in Self.outputs {
            let sqlite = try await hub.database.read { db in try SQLiteSession(db).rows("SELECT * FROM \(table) ORDER BY \(order)") }
            let postgres = try await BlockingWork.run {
                let session = try PostgresBlockingSession(location, logger: logger)
                defer { session.close() }
                return try session.rows("SELECT * FROM \(table) ORDER BY \(order)")
            }
            #expect(postgres.count == sqlite.count, "\(table): \(postgres.count) rows on PostgreSQL, \(sqlite.count) on SQLite")
            let same = postgres == sqlite
            #expect(same, "\(table) differs: first difference \(zip(postgres, sqlite).first { $0 != $1 }.map { "\($0) vs \($1)" } ?? "in length")")
        }
        // The figures the routes, pages and statements serve, read from each engine: identical, for
        // every role that may read them (the association sees whole months and withheld figures).
        let readers = PostgresReaders(location, connections: 2, logger: logger)
        let postgresReports = EnergyReports(reader: readers, configuration: hub.configuration)
        let (from, to) = (hub.date("2026-10-01"), hub.date("2026-10-31"))
        for identity in [Identity(name: "staff", role: .staff), Identity(name: "asso", role: .association, estate: "E")] {
            #expect(try await postgresReports.building("B", from: from, to: to, now: now, by: identity) == (try await hub.reports.building("B", from: from, to: to, now: now, by: identity)))
            #expect(try await postgresReports.estate("E", from: from, to: to, now: now, by: identity) == (try await hub.reports.estate("E", from: from, to: to, now: now, by: identity)))
            #expect(try await postgresReports.householdShares(building: "B", from: from, to: to, by: identity)
                    == (try await hub.reports.householdShares(building: "B", from: from, to: to, by: identity)))
            #expect(try await postgresReports.deviceHealth(building: "B", from: from, to: to, now: now, by: identity)
                    == (try await hub.reports.deviceHealth(building: "B", from: from, to: to, now: now, by: identity)))
        }
        let staff = Identity(name: "staff", role: .staff)
        for dwelling in ["D1", "D2", "D3", "D4"] {
            #expect(try await postgresReports.dwelling(dwelling, from: from, to: to, now: now, by: staff) == (try await hub.reports.dwelling(dwelling, from: from, to: to, now: now, by: staff)))
        }
        #expect(try await postgresReports.landlord(from: from, to: to, now: now, by: staff) == (try await hub.reports.landlord(from: from, to: to, now: now, by: staff)))
        #expect(try await postgresReports.estates(by: staff) == ["E"])
        // Refusals are the same too: a resident asking for another household, an unknown building.
        let resident = Identity(name: "ana", role: .resident, dwelling: "D2")
        await #expect(throws: HubError.self) { try await postgresReports.dwelling("D1", from: from, to: to, now: now, by: resident) }
        await #expect(throws: HubError.self) { try await postgresReports.building("Z", from: from, to: to, now: now, by: staff) }

        // Not a comparison of nothing: October's savings of D1 and the building's production, in
        // both, from the daily figures the pages and statements read.
        let d1 = try await hub.reports.dwelling("D1", from: from, to: to, now: now)
        #expect(d1.savingsCents > 100 && d1.allocatedWh > 10_000)
        let building = try await postgresReports.building("B", from: from, to: to, now: now, by: staff)
        #expect(building.productionWh > 100_000 && building.slots.estimated > 0 && building.revisedMonths == ["2026-10"])
        await BlockingWork.run { readers.close() }
        #expect(try await hub.database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM dwelling_day WHERE day LIKE '2026-10-%'") } == 4 * 31)
    }
}

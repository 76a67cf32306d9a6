import Foundation
import GRDB
import HubTestSupport
import HubCore
import HubTools
import Logging
import PostgresNIO
import Shared
import Testing
@testable import EnergyCore
@testable import EnergyHub

/// Retention on PostgreSQL against SQLite: the same months of readings, quarantined messages and
/// figures, purged at the same instant, leave the same rows and the same report on both; on
/// PostgreSQL the months wholly past the horizon are partitions dropped, not rows deleted.
@Suite struct RetentionPostgresTests {
    static let registry = """
        estate;building;dwelling;device;kind;format;since;tariff;share
        E;B;;pv-1;pv;canonical;2026-01-01;;
        E;B;D1;m-1;meter;canonical;2026-01-01;;0.6
        E;B;D2;m-2;meter;canonical;2026-01-01;;0.4
        E;C;D4;m-4;meter;canonical;2026-01-01;;1
        """

    /// Every table seeded on PostgreSQL from SQLite, in an order that satisfies the foreign keys.
    static let inputs = ["estate", "building", "dwelling", "device", "device_installation", "dwelling_tariff", "dwelling_share",
                         "building_allocation_key", "allocation_coefficient", "reading_change", "savings_dirty", "quarantine"]
    /// Every table the purge touches, with the columns that order its rows.
    static let compared = [("reading", "device_id, instant"), ("quarantine", "id"), ("allocation_coefficient", "building_id, slot_start, dwelling_id"),
                           ("device_slot", "device_id, slot"), ("dwelling_slot", "building_id, slot, dwelling_id"), ("building_slot", "building_id, slot"),
                           ("dwelling_day", "dwelling_id, day"), ("building_day", "building_id, day")]

    /// On 2026-06-20 (local), 100 days of raw data are kept (from 2026-03-12, that is
    /// 2026-03-11T23:00Z) and 120 days of daily figures (from 2026-02-20).
    static let now = SavingsFixture.at("2026-06-20T10:00:00Z")
    static var configuration: EnergyConfiguration {
        get throws {
            var settings = EnergySettings()
            settings.retention.rawDays = 100
            settings.retention.dailyDays = 120
            return try settings.validated()
        }
    }

    /// January 10 to June 10 every hour (a seeded load; production by day), unknown devices
    /// quarantined now and then, coefficients in February and May; the figures brought up to date.
    static func seeded() throws -> SavingsFixture {
        let hub = try SavingsFixture(registry: registry)
        var random = SeededGenerator(seed: 2026_06)
        var index: [String: Int64] = ["pv-1": 0, "m-1": 10_000, "m-2": 20_000, "m-4": 40_000]
        var instant = SavingsFixture.at("2026-01-10T00:00:00Z")
        let end = SavingsFixture.at("2026-06-10T00:00:00Z")
        var messages: [IncomingMessage] = []
        var hours = 0
        while instant < end {
            let hour = (instant.millisecondsSince1970 / 3_600_000) % 24
            for device in index.keys.sorted() {
                index[device]! += device == "pv-1" ? ((8...16).contains(hour) ? Int64.random(in: 50...400, using: &random) : 0) : Int64.random(in: 20...300, using: &random)
                messages.append(IncomingMessage(topic: "meters/\(device)/reading", payload: Array(SavingsFixture.canonical(instant, index[device]!).utf8),
                                                receivedAt: instant.adding(seconds: 2)))
            }
            if hours % 97 == 0 {
                messages.append(IncomingMessage(topic: "meters/ghost-\(hours)/reading", payload: Array(SavingsFixture.canonical(instant, 5).utf8), receivedAt: instant.adding(seconds: 3)))
            }
            hours += 1
            instant = instant.adding(seconds: 3600)
        }
        for batch in stride(from: 0, to: messages.count, by: 500) {
            _ = try hub.processor.process(Array(messages[batch..<min(batch + 500, messages.count)]))
        }
        _ = try hub.processor.fold()
        try hub.database.writeBlocking { db in
            for (at, coefficient) in [("2026-02-03T10:00:00Z", 600_000), ("2026-05-03T10:00:00Z", 550_000)] {
                let start = SavingsFixture.at(at).millisecondsSince1970
                try db.execute(sql: "INSERT INTO allocation_coefficient (building_id, slot_start, dwelling_id, coefficient) VALUES ('B', ?, 'D1', ?), ('B', ?, 'D2', ?)",
                               arguments: [start, coefficient, start, 1_000_000 - coefficient])
            }
        }
        return hub
    }

    /// A PostgreSQL database holding the same registry, readings and queues as `hub`, its figures
    /// computed by PostgreSQL's own upkeep.
    static func postgresCopy(of hub: SavingsFixture, label: String) async throws -> PostgresLocation {
        let location = try await PostgresTestServer.database(label, migrations: SharedSchema.postgres + EnergySchema.postgres + SavingsSchema.postgres)
        let readings = try await hub.database.read { db in try SQLiteSession(db).rows("SELECT * FROM reading ORDER BY device_id, instant") }
        var tables: [(String, [[SQLValue]])] = []
        for table in inputs {
            tables.append((table, try await hub.database.read { db in try SQLiteSession(db).rows("SELECT * FROM \(table)") }))
        }
        let snapshot = tables
        let logger = Logger(label: "test.retention.postgres")
        try await BlockingWork.run {
            let session = try PostgresBlockingSession(location, logger: logger)
            defer { session.close() }
            for month in 1...6 {
                try session.transaction { db in _ = try db.rows("SELECT reading_partition(?)", SavingsFixture.at("2026-0\(month)-15T00:00:00Z").millisecondsSince1970) }
            }
            try session.transaction { db in
                for (table, rows) in snapshot {
                    if table == "savings_dirty" { try db.execute("DELETE FROM savings_dirty") }
                    for row in rows {
                        _ = try db.execute("INSERT INTO \(table) VALUES (\(Array(repeating: "?", count: row.count).joined(separator: ", ")))", row)
                    }
                }
                for row in readings { _ = try db.execute("INSERT INTO reading VALUES (?, ?, ?, ?, ?, ?, ?)", row) }
                // The copied quarantine ids: the identity goes on after them.
                _ = try db.rows("SELECT setval(pg_get_serial_sequence('quarantine', 'id'), (SELECT MAX(id) FROM quarantine))")
            }
        }
        return location
    }

    static func rows(_ location: PostgresLocation, _ sql: String) async throws -> [[SQLValue]] {
        try await BlockingWork.run {
            let session = try PostgresBlockingSession(location, logger: Logger(label: "test.retention.postgres"))
            defer { session.close() }
            return try session.rows(sql)
        }
    }

    @Test func theSamePurgeLeavesTheSameRowsOnBothEnginesAndDropsWholeMonthsOnPostgres() async throws {
        let hub = try Self.seeded()
        let location = try await Self.postgresCopy(of: hub, label: "retention")
        let upkeepNow = SavingsFixture.at("2026-06-11T00:00:00Z")
        let sqliteUpkeep = try hub.upkeep.bringUpToDate(now: upkeepNow)
        let postgresUpkeep = try await BlockingWork.run { try PostgresSavingsUpkeep(location: location, configuration: hub.configuration).bringUpToDate(now: upkeepNow) }
        #expect(postgresUpkeep == sqliteUpkeep)
        for (table, order) in Self.compared {
            let sqlite = try await hub.database.read { db in try SQLiteSession(db).rows("SELECT * FROM \(table) ORDER BY \(order)") }
            #expect(try await Self.rows(location, "SELECT * FROM \(table) ORDER BY \(order)") == sqlite, "\(table) before the purge")
            #expect(!sqlite.isEmpty, "\(table) is seeded")
        }

        let configuration = try Self.configuration
        let fromSQLite = try await SavingsRetention(database: hub.database, configuration: configuration).purge(now: Self.now)
        let (fromPostgres, partitions, again) = try await HubPostgres(location).withRunning { db in
            let retention = PostgresRetention(database: db, configuration: configuration)
            let report = try await retention.purge(now: Self.now)
            return (report, try await retention.partitions(), try await retention.purge(now: Self.now))
        }
        #expect(fromPostgres == fromSQLite)
        // Not a comparison of nothing: two whole months and ten days of readings of four devices, every hour.
        #expect(fromSQLite.readings > 4 * 24 * (31 - 9 + 28 + 10) - 10)
        #expect(fromSQLite.quarantine > 5 && fromSQLite.slots > 1_000 && fromSQLite.days > 3 * 40)
        #expect(again == SavingsRetention.Report(), "a second run finds nothing more")
        #expect(try await SavingsRetention(database: hub.database, configuration: configuration).purge(now: Self.now) == SavingsRetention.Report())

        for (table, order) in Self.compared {
            let sqlite = try await hub.database.read { db in try SQLiteSession(db).rows("SELECT * FROM \(table) ORDER BY \(order)") }
            let postgres = try await Self.rows(location, "SELECT * FROM \(table) ORDER BY \(order)")
            #expect(postgres.count == sqlite.count, "\(table): \(postgres.count) rows on PostgreSQL, \(sqlite.count) on SQLite")
            #expect(postgres == sqlite, "\(table) differs after the purge")
            #expect(!sqlite.isEmpty, "\(table) keeps its recent rows")
        }
        // What is left starts at the horizons.
        let rawInstant = SavingsFixture.at("2026-03-11T23:00:00Z").millisecondsSince1970
        #expect(try await hub.database.read { db in try Int64.fetchOne(db, sql: "SELECT MIN(instant) FROM reading") } == rawInstant)
        #expect(try await hub.database.read { db in try String.fetchOne(db, sql: "SELECT MIN(day) FROM dwelling_day") } == "2026-02-20")

        // January and February are gone as tables; March (straddling the horizon) onwards remain.
        #expect(partitions.map(\.name) == ["reading_2026_03", "reading_2026_04", "reading_2026_05", "reading_2026_06"])
        #expect(try await Self.rows(location, "SELECT to_regclass('reading_2026_01') IS NULL, to_regclass('reading_2026_02') IS NULL, to_regclass('reading_2026_03') IS NULL")
                == [[.integer(1), .integer(1), .integer(0)]])
        #expect(try await Self.rows(location, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'reading'::regclass") == [[.integer(4)]])
    }

    /// A month whose drop cannot get its lock in time (a long reader of `reading`) is emptied row
    /// by row instead, with the same count; the next run drops the empty table.
    @Test func aMonthWhoseLockWaitsIsEmptiedRowByRowThenDropped() async throws {
        let hub = try Self.seeded()
        let location = try await Self.postgresCopy(of: hub, label: "retention-lock")
        let configuration = try Self.configuration
        let january = try await Self.rows(location, "SELECT count(*) FROM reading_2026_01")
        let sqlite = try await SavingsRetention(database: hub.database, configuration: configuration).purge(now: Self.now)
        try await HubPostgres(location).withRunning { db in
            var retention = PostgresRetention(database: db, configuration: configuration)
            retention.lockTimeout = .milliseconds(200)
            let first = try await db.client.withConnection { reader in
                try await reader.query("BEGIN", logger: db.logger)
                try await reader.query("LOCK TABLE reading IN ACCESS SHARE MODE", logger: db.logger)
                let report = try await retention.purge(now: Self.now)
                try await reader.query("ROLLBACK", logger: db.logger)
                return report
            }
            #expect(first == sqlite)
            let left = try await retention.partitions().map(\.name)
            #expect(left.first == "reading_2026_01", "not dropped while the lock was held")
            #expect(try await db.read { try await $0.scalar("SELECT count(*) FROM reading WHERE instant < \(SavingsFixture.at("2026-03-01T00:00:00Z").millisecondsSince1970)", as: Int64.self, logger: db.logger) } == 0)
            let second = try await retention.purge(now: Self.now)
            #expect(second == SavingsRetention.Report())
            #expect(try await retention.partitions().first?.name == "reading_2026_03")
        }
        #expect(try january[0][0].int64 > 500)
    }

    @Test func partitionBoundsAreReadAsTheServerStatesThem() {
        #expect(PostgresRetention.partition(name: "reading_2026_10", bound: "FOR VALUES FROM ('1790812800000') TO ('1793491200000')")
                == PostgresRetention.Partition(name: "reading_2026_10", from: 1_790_812_800_000, to: 1_793_491_200_000))
        #expect(PostgresRetention.partition(name: "reading_default", bound: "DEFAULT") == nil)
        #expect(PostgresRetention.partition(name: "reading_low", bound: "FOR VALUES FROM (MINVALUE) TO ('0')") == nil)
    }
}

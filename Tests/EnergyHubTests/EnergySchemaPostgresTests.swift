import EnergyHub
import Foundation
import GRDB
import HubCore
import HubTestSupport
import PostgresNIO
import Shared
import Testing

/// The energy and savings tables on a real PostgreSQL server: the month partitions of the
/// readings, and the registry triggers that queue the same savings recomputation as SQLite's.
@Suite struct EnergySchemaPostgresTests {
    static let migrations = SharedSchema.postgres + EnergySchema.postgres + SavingsSchema.postgres

    @Test func readingsGoToTheirMonthsPartitionCreatedOnDemand() async throws {
        let location = try await PostgresTestServer.database("partitions", migrations: Self.migrations)
        try await HubPostgres(location, maximumConnections: 4).withRunning { database in
            let october = Instant.parseRFC3339("2026-10-31T23:30:00Z")!.millisecondsSince1970
            let november = Instant.parseRFC3339("2026-11-01T00:00:00Z")!.millisecondsSince1970
            // Several writers ask for the same month at once: one creates it, none fails.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        try await database.transaction { connection in
                            _ = try await connection.scalar("SELECT reading_partition(\(october))", as: String.self, logger: database.logger)
                            _ = try await connection.scalar("SELECT reading_partition(\(november))", as: String.self, logger: database.logger)
                        }
                    }
                }
                try await group.waitForAll()
            }
            try await database.transaction { connection in
                for (device, at) in [("m1", october), ("m1", november)] {
                    try await connection.query("""
                        INSERT INTO reading (device_id, instant, energy_wh, segment, time_source, received_at)
                        VALUES (\(device), \(at), 1000, 0, 'device', \(at)) ON CONFLICT DO NOTHING
                        """, logger: database.logger)
                }
                // Idempotent on (device, instant).
                try await connection.query("""
                    INSERT INTO reading (device_id, instant, energy_wh, segment, time_source, received_at)
                    VALUES ('m1', \(october), 1000, 0, 'device', \(october)) ON CONFLICT DO NOTHING
                    """, logger: database.logger)
            }
            let partitions = try await database.read { connection in
                try await connection.column("""
                    SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                    WHERE i.inhparent = 'reading'::regclass ORDER BY 1
                    """, as: String.self, logger: database.logger)
            }
            #expect(partitions == ["reading_2026_10", "reading_2026_11"])
            let october31 = try await database.read { try await $0.scalar("SELECT count(*) FROM reading_2026_10", as: Int64.self, logger: database.logger) }
            #expect(october31 == 1)
            // Retention: dropping a month drops its readings and nothing else.
            _ = try await database.transaction { try await $0.query("DROP TABLE reading_2026_10", logger: database.logger) }
            let left = try await database.read { try await $0.scalar("SELECT count(*) FROM reading", as: Int64.self, logger: database.logger) }
            #expect(left == 1)
        }
    }

    @Test func registryChangesQueueTheSameRecomputationAsOnSQLite() async throws {
        let setup = [
            "INSERT INTO estate (id) VALUES ('Outreau')",
            "INSERT INTO building (id, estate_id) VALUES ('OUT-A', 'Outreau'), ('OUT-B', 'Outreau')",
            "INSERT INTO dwelling (id, building_id) VALUES ('OUT-A-01', 'OUT-A')",
            "INSERT INTO device (id, kind, format) VALUES ('m1', 'meter', 'canonical')",
            "INSERT INTO device_installation (device_id, since, building_id, dwelling_id) VALUES ('m1', '2026-10-01', 'OUT-A', 'OUT-A-01')",
            "UPDATE device_installation SET since = '2026-09-15', building_id = 'OUT-B' WHERE device_id = 'm1'",
            "INSERT INTO dwelling_tariff (dwelling_id, since, tariff) VALUES ('OUT-A-01', '2026-10-05', 'base')",
            "UPDATE dwelling_tariff SET since = '2026-10-03'",
            "DELETE FROM dwelling_tariff",
            "INSERT INTO dwelling_share (dwelling_id, since, share) VALUES ('OUT-A-01', '2026-10-07', '1')",
            "DELETE FROM device_installation",
        ]
        let sqlite = try TestSupport.database(extraSchemas: [SavingsSchema.register])
        try await sqlite.write { db in for statement in setup { try db.execute(sql: statement) } }
        let fromSQLite = try await sqlite.read { db in
            try Row.fetchAll(db, sql: "SELECT building_id, from_instant, to_instant FROM savings_dirty ORDER BY id").map {
                "\($0[0] as String) \($0[1] as Int64) \($0[2] as Int64)"
            }
        }
        let location = try await PostgresTestServer.database("savingstriggers", migrations: Self.migrations)
        let fromPostgres = try await HubPostgres(location).withRunning { database in
            try await database.transaction { connection in
                for statement in setup { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: database.logger) }
            }
            return try await database.read { connection in
                var rows: [String] = []
                for try await (building, from, to) in try await connection.query("SELECT building_id, from_instant, to_instant FROM savings_dirty ORDER BY id",
                                                                                  logger: database.logger).decode((String, Int64, Int64).self) {
                    rows.append("\(building) \(from) \(to)")
                }
                return rows
            }
        }
        #expect(fromSQLite.count == 8)
        #expect(fromPostgres == fromSQLite)
    }
}

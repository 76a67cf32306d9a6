import Foundation
import HubTestSupport
import PostgresNIO
import Shared
import Testing
@testable import HubTools

/// `community-hub bench processes` with tiny numbers, so that its code cannot rot: real `serve`
/// processes on a database of the test server, each measurement stored in full, the database dropped.
@Suite struct ProcessesBenchTests {
    @Test func theBenchStoresEveryMessageWithOneThenTwoProcessesAndDropsItsDatabase() async throws {
        let server = try await PostgresTestServer.location()
        let root = try TestSupport.temporaryDirectory("processes-bench")
        let bench = try ProcessesBenchRun(root: root, databaseURL: PostgresTestServer.url(server), executable: HubChild.executable.path,
                                          processes: [1, 2], messages: 2000, devices: 200, rounds: 1)
        defer { bench.mqtt.broker.stop() }
        let rows = try await bench.run()
        #expect(rows.map(\.receiver) == ["null subscriber (plain)", "null subscriber ($share)", "1 hub process (committed)",
                                         "null subscriber ($share)", "2 hub processes (committed)"])
        #expect(rows.allSatisfy { $0.check == "ok" }, "\(rows.map(\.text).joined(separator: "\n"))")
        #expect(rows.allSatisfy { $0.messages == 2000 && $0.seconds > 0 })
        let hubs = rows.filter { $0.processes > 0 }
        #expect(hubs.map(\.memory.count) == [1, 2])
        #expect(hubs.allSatisfy { $0.ratio.map { $0 > 0 } ?? false && $0.memory.allSatisfy { $0.rss > 0 && $0.peak >= $0.rss } })
        let left = try await HubPostgres(server, maximumConnections: 1).withRunning { db in
            try await db.read { try await $0.scalar("SELECT count(*) FROM pg_database WHERE datname = \(bench.database)", as: Int64.self, logger: db.logger) }
        }
        #expect(left == 0, "the benchmark's database is dropped")
    }
}

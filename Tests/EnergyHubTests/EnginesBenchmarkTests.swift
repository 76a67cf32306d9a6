import Foundation
import HubTestSupport
import HubCore
import HubTools
import PostgresNIO
import Shared
import Testing
@testable import EnergyCore
@testable import EnergyHub

/// `bench engines` on a tiny registry, so its code keeps running on both engines (its figures are
/// for a release build, not asserted here): the reports and the upkeep give the same answers on
/// SQLite and PostgreSQL, and the bench's own PostgreSQL databases are dropped afterwards.
@Suite struct EnginesBenchmarkTests {
    @Test func theBenchRunsOnATinyRegistryOnBothEngines() async throws {
        let server = try await PostgresTestServer.location()
        var options = EnginesBenchmark.Options(directory: FileManager.default.temporaryDirectory, server: server)
        options.dwellings = [80]
        options.dwellingsPerEstate = 40
        options.repetitions = 1
        options.dwellingSlots = true
        options.upkeepDays = 3
        let lines = BenchLog()
        let timings = try await EnginesBenchmark.reports(options, dwellings: 80, log: { lines.add($0) })
        #expect(timings.map(\.what) == ["landlord's month (80 dwellings)", "one estate's month (40 dwellings)", "one building's month (40 dwellings)", "one dwelling's month"])
        #expect(timings.allSatisfy { $0.sqlite > 0 && $0.postgres > 0 })
        let upkeep = try await EnginesBenchmark.upkeep(options, log: { lines.add($0) })
        #expect(upkeep.sqlite > 0 && upkeep.postgres > 0)
        let text = lines.text
        // March has 31 local days, one of 23 hours: its slots as the grid counts them.
        let configuration = try EnergySettings().validated()
        let slots = configuration.grid.slot(startingAtOrAfter: configuration.zone.startOfDay(LocalDate(parsing: "2026-04-01")!))
            - configuration.grid.slot(startingAtOrAfter: configuration.zone.startOfDay(LocalDate(parsing: "2026-03-01")!))
        #expect(text.contains("rows (dwelling days, building slots, dwelling slots) \(80 * 31), \(2 * slots), \(80 * slots)"), "\(text)")
        #expect(text.contains("the same reports from both: 80 households landlord-wide, 40 in E1"))
        #expect(text.contains("the same figures from both"))
        #expect(text.contains("3 days recomputed"), "\(text)")
        // No database of the bench is left on the server.
        let left = try await HubPostgres(server, maximumConnections: 1).withRunning { db in
            try await db.read { try await $0.column("SELECT datname FROM pg_database WHERE datname LIKE 'bench_engines_%'", as: String.self, logger: db.logger) }
        }
        #expect(left == [])
    }
}

/// The bench's log lines, gathered from its @Sendable logger.
final class BenchLog: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []

    func add(_ line: String) { lock.withLock { lines.append(line) } }
    var text: String { lock.withLock { lines.joined(separator: "\n") } }
}

import Foundation
import HubCore
import HubTestSupport
import Shared
import Testing

/// Failed logins counted in memory (one process on its SQLite file) and in the server database
/// (several processes on PostgreSQL): the same rule either way, and on PostgreSQL the processes
/// share one count, so three processes give a guesser no more attempts than one.
@Suite struct LoginFailuresTests {
    static let now = Instant.parseRFC3339("2026-11-30T10:00:00Z")!

    enum Counts: String, CaseIterable, CustomTestStringConvertible {
        case memory, postgres
        var testDescription: String { rawValue }
    }

    /// Runs `body` with `processes` guards over one set of counts of `kind`: the same memory
    /// (one process), or one database each guard reaches through its own pool (as processes do).
    func withGuards(_ kind: Counts, processes: Int, _ body: @escaping @Sendable ([LoginGuard]) async throws -> Void) async throws {
        switch kind {
        case .memory:
            let counts = MemoryLoginFailures()
            try await body((0..<processes).map { _ in LoginGuard(counts: counts) })
        case .postgres:
            let location = try await PostgresTestServer.database("logins", migrations: SharedSchema.postgres)
            try await HubPostgres(location).withRunning { first in
                try await HubPostgres(location).withRunning { second in
                    let pools = [first, second]
                    try await body((0..<processes).map { LoginGuard(counts: PostgresLoginFailures(database: pools[$0 % 2])) })
                }
            }
        }
    }

    @Test(arguments: Counts.allCases) func failuresInAnyProcessCountForTheName(_ kind: Counts) async throws {
        try await withGuards(kind, processes: 3) { guards in
            // Five free failures, spread over the processes, by one name typed three ways.
            for (index, typed) in ["Marie", " marie ", "MARIE", "marie", "Marie"].enumerated() {
                #expect(try await guards[index % 3].retryAfter(name: typed, address: "203.0.113.\(index)", at: Self.now) == 0)
                try await guards[index % 3].failed(name: typed, address: "203.0.113.\(index)", at: Self.now)
            }
            for process in guards {
                #expect(try await process.retryAfter(name: "marie", address: "198.51.100.1", at: Self.now) == 1, "the sixth try waits, in every process")
            }
            try await guards[1].failed(name: "marie", address: nil, at: Self.now.adding(seconds: 1))
            #expect(try await guards[2].retryAfter(name: "marie", address: nil, at: Self.now.adding(seconds: 1)) == 2, "doubled")
            // An hour without failure forgets the name; a success clears it at once.
            #expect(try await guards[0].retryAfter(name: "marie", address: nil, at: Self.now.adding(seconds: 3601)) == 0)
            try await guards[0].succeeded(name: "Marie")
            #expect(try await guards[2].retryAfter(name: "marie", address: nil, at: Self.now.adding(seconds: 2)) == 0)
        }
    }

    @Test(arguments: Counts.allCases) func theAddressIsSlowedWhateverNamesItTriesInAnyProcess(_ kind: Counts) async throws {
        try await withGuards(kind, processes: 3) { guards in
            for index in 0..<20 {
                try await guards[index % 3].failed(name: "name-\(index)", address: "203.0.113.9", at: Self.now)
            }
            #expect(try await guards[1].retryAfter(name: "someone-new", address: "203.0.113.9", at: Self.now) == 1)
            #expect(try await guards[1].retryAfter(name: "someone-new", address: "198.51.100.7", at: Self.now) == 0)
        }
    }

    /// Failures at the same moment in two processes are each counted (the rows are locked while
    /// counted): 40 simultaneous wrong passwords leave a count of 40.
    @Test func simultaneousFailuresInTwoProcessesAreAllCounted() async throws {
        try await withGuards(.postgres, processes: 2) { guards in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<40 {
                    group.addTask { try await guards[index % 2].failed(name: "paul", address: "203.0.113.7", at: Self.now) }
                }
                try await group.waitForAll()
            }
            // 40 failures: 35 past the free ones, the wait capped at 300 s; 20 past the address's.
            #expect(try await guards[0].retryAfter(name: "paul", address: nil, at: Self.now) == 300)
            let rule = LoginThrottleRule.perName
            #expect(rule.waitSeconds(afterFailures: 40) == 300 && rule.waitSeconds(afterFailures: 12) == 128)
            #expect(try await guards[1].retryAfter(name: "paul", address: nil, at: Self.now.adding(seconds: 299)) == 1, "40 counted, not fewer")
        }
    }
}

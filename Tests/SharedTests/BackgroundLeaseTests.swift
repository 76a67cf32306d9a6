import Foundation
import HubCore
import HubTestSupport
import Logging
import PostgresNIO
import Shared
import Synchronization
import Testing

/// Background work runs in exactly one hub process among several sharing one PostgreSQL server
/// (an advisory lock on a dedicated connection), and another takes over within the retry interval
/// when the leader stops, or its connection is cut from outside. Each lease stands for a process.
@Suite struct BackgroundLeaseTests {
    static let settings = BackgroundLease.Settings(retry: .milliseconds(300), check: .milliseconds(500), checkTimeout: .seconds(1))

    /// Which leases' work started, runs now, and was cancelled.
    final class Work: Sendable {
        struct State {
            var started: [String] = []
            var running: Set<String> = []
            var cancelled: [String] = []
            var mostAtOnce = 0
        }

        let state = Mutex(State())

        func closure(_ name: String) -> @Sendable () async throws -> Void {
            { [self] in
                state.withLock {
                    $0.started.append(name)
                    $0.running.insert(name)
                    $0.mostAtOnce = max($0.mostAtOnce, $0.running.count)
                }
                do {
                    try await Task.sleep(for: .seconds(3600))
                } catch {
                    state.withLock {
                        $0.running.remove(name)
                        $0.cancelled.append(name)
                    }
                    throw error
                }
            }
        }

        var snapshot: State { state.withLock { $0 } }
    }

    static let logger = Logger(label: "test.lease", factory: { _ in SwiftLogNoOpLogHandler() })

    static func lease(_ name: String, key: Int64 = 42, _ location: PostgresLocation, _ work: Work) -> BackgroundLease {
        BackgroundLease(name: name, key: key, location: location, settings: settings, logger: logger, work: work.closure(name))
    }

    static func start(_ lease: BackgroundLease) -> Task<Void, Never> {
        Task { try? await lease.run() }
    }

    /// Two leases on one key, running, once one of them leads (its index is given back).
    static func twoLeases(_ location: PostgresLocation, _ work: Work) async throws -> ([BackgroundLease], [Task<Void, Never>], Int) {
        let leases = [lease("a", location, work), lease("b", location, work)]
        let tasks = leases.map(start)
        do {
            try await waitUntil(timeout: .seconds(10), "a leader") { leases.contains(where: \.isLeader) }
        } catch {
            tasks.forEach { $0.cancel() }
            throw error
        }
        return (leases, tasks, leases.firstIndex(where: \.isLeader) ?? 0)
    }

    /// Cuts the connection that holds an advisory lock (the leader's), or the others of the
    /// database (the followers'), from the server (`pg_terminate_backend`); one result a connection.
    static func cut(_ location: PostgresLocation, theLeaders: Bool) async throws -> [Bool] {
        let holders = "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        let sql = theLeaders
            ? "SELECT pg_terminate_backend(pid) FROM (\(holders)) AS holder"
            : "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid NOT IN (\(holders))"
        return try await HubPostgres(location, maximumConnections: 1, logger: logger).withRunning { admin in
            try await admin.transaction { connection in
                try await connection.column(PostgresQuery(unsafeSQL: sql), as: Bool.self, logger: admin.logger)
            }
        }
    }

    @Test func twoLeasesOnOneKeyRunTheWorkOnce() async throws {
        let location = try await PostgresTestServer.database("lease")
        let work = Work()
        let (leases, tasks, _) = try await Self.twoLeases(location, work)
        defer { tasks.forEach { $0.cancel() } }
        // Several retry intervals: the other lease keeps trying and keeps failing.
        try await Task.sleep(for: .seconds(2))
        #expect(leases.filter { $0.isLeader }.count == 1)
        let state = work.snapshot
        #expect(state.started.count == 1 && state.running.count == 1 && state.mostAtOnce == 1, "\(state.started)")
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
        #expect(work.snapshot.running.isEmpty, "stopping the service cancels its work")
        #expect(leases.allSatisfy { !$0.isLeader })
    }

    @Test func whenTheLeaderStopsAnotherTakesOverWithinTheRetryInterval() async throws {
        let location = try await PostgresTestServer.database("lease")
        let work = Work()
        let (leases, tasks, leader) = try await Self.twoLeases(location, work)
        defer { tasks.forEach { $0.cancel() } }
        let follower = 1 - leader
        let stopped = ContinuousClock.now
        tasks[leader].cancel()
        await tasks[leader].value
        try await waitUntil(timeout: .seconds(10), "the other lease leads") { leases[follower].isLeader && work.snapshot.running == [leases[follower].name] }
        let takeover = ContinuousClock.now - stopped
        print("background lease: takeover after the leader stopped: \(takeover) (retry \(Self.settings.retry))")
        // "Within seconds" (issue 11): the figure is printed; the bound leaves room for a loaded
        // 2-core machine (the takeover itself is one retry interval, about 0.3 s when quiet).
        #expect(takeover < .seconds(8))
        #expect(work.snapshot.cancelled == [leases[leader].name])
        #expect(work.snapshot.mostAtOnce == 1)
    }

    /// The leader's connection cut by the server (`pg_terminate_backend`): its work is cancelled,
    /// and the other lease takes over; the cut one reconnects and follows.
    @Test func aLeaderWhoseConnectionIsCutStopsAndAnotherTakesOver() async throws {
        let location = try await PostgresTestServer.database("lease")
        let work = Work()
        let (leases, tasks, leader) = try await Self.twoLeases(location, work)
        defer { tasks.forEach { $0.cancel() } }
        let follower = 1 - leader
        let cut = ContinuousClock.now
        #expect(try await Self.cut(location, theLeaders: true) == [true], "one connection held the lock")
        try await waitUntil(timeout: .seconds(10), "the cut leader's work cancelled") { work.snapshot.cancelled == [leases[leader].name] }
        let stopped = ContinuousClock.now - cut
        try await waitUntil(timeout: .seconds(10), "the other lease leads") { leases[follower].isLeader && work.snapshot.running == [leases[follower].name] }
        let takeover = ContinuousClock.now - cut
        print("background lease: after pg_terminate_backend, the leader's work stopped after \(stopped), the other took over after \(takeover) (retry \(Self.settings.retry))")
        // "Within seconds" (issue 11): the figure is printed; the bound leaves room for a loaded
        // 2-core machine (the takeover itself is one retry interval, about 0.3 s when quiet).
        #expect(takeover < .seconds(8))
        // The cut lease ends its term (its work already stopped), then comes back as a follower:
        // still only one runs the work. Waited for, not asserted at once: a loaded machine (the
        // whole suite on 2 cores) delays the cut lease's unwinding by seconds.
        try await waitUntil(timeout: .seconds(10), "the cut lease no longer leads") { !leases[leader].isLeader }
        try await Task.sleep(for: .seconds(1))
        #expect(leases.filter { $0.isLeader }.count == 1 && work.snapshot.running.count == 1)
    }

    /// A check of the connection may be written just as the connection closes, and postgres-nio
    /// never completes a query on a closed connection: the lease must not wait for that query,
    /// or its term never ends and it never leads again. Checked every millisecond, so that a check
    /// meets each cut; the leader's connection is cut twelve times, and each time the other lease,
    /// cut before, has come back and takes over.
    @Test func aCheckMeetingTheCutDoesNotKeepTheTermOpen() async throws {
        let location = try await PostgresTestServer.database("lease")
        let work = Work()
        let settings = BackgroundLease.Settings(retry: .milliseconds(300), check: .milliseconds(1), checkTimeout: .seconds(1))
        let leases = ["a", "b"].map { BackgroundLease(name: $0, key: 43, location: location, settings: settings, logger: Self.logger, work: work.closure($0)) }
        let tasks = leases.map(Self.start)
        defer { tasks.forEach { $0.cancel() } }
        try await waitUntil(timeout: .seconds(10), "a leader") { leases.contains(where: \.isLeader) }
        for round in 1...12 {
            let leader = leases.firstIndex(where: \.isLeader) ?? 0
            _ = try await Self.cut(location, theLeaders: true)
            try await waitUntil(timeout: .seconds(20), "round \(round): the other lease leads") {
                leases[1 - leader].isLeader && work.snapshot.running == [leases[1 - leader].name]
            }
        }
        // Each cut lease's work was cancelled. (Both may run for a moment after a cut: the server
        // frees the lock when it ends the backend, and the cut lease learns of it from its socket;
        // with a check every millisecond the two cores are busy and that moment is longer.)
        #expect(work.snapshot.cancelled.count == 12)
    }

    /// A follower whose connection is cut (a server restart, a network cut) connects again and
    /// takes over when the leader goes: its next try of the lock must not wait for ever on the
    /// closed connection.
    @Test func aFollowerWhoseConnectionIsCutTakesOverLater() async throws {
        let location = try await PostgresTestServer.database("lease")
        let work = Work()
        let (leases, tasks, leader) = try await Self.twoLeases(location, work)
        defer { tasks.forEach { $0.cancel() } }
        let follower = 1 - leader
        #expect(try await Self.cut(location, theLeaders: false) == [true], "one connection, the follower's, was cut")
        // Several of its retry intervals on the closed connection.
        try await Task.sleep(for: .seconds(1))
        #expect(leases[leader].isLeader && !leases[follower].isLeader)
        tasks[leader].cancel()
        await tasks[leader].value
        try await waitUntil(timeout: .seconds(20), "the cut follower leads") { leases[follower].isLeader && work.snapshot.running == [leases[follower].name] }
    }

    @Test func differentKeysDoNotExcludeEachOther() async throws {
        let location = try await PostgresTestServer.database("lease")
        let work = Work()
        let leases = [Self.lease("upkeep", key: BackgroundLease.key(for: "savings-upkeep"), location, work),
                      Self.lease("retention", key: BackgroundLease.key(for: "retention"), location, work)]
        #expect(leases[0].key != leases[1].key)
        #expect(BackgroundLease.key(for: "savings-upkeep") == BackgroundLease.key(for: "savings-upkeep"), "every process derives the same key")
        let tasks = leases.map(Self.start)
        defer { tasks.forEach { $0.cancel() } }
        // Leadership is taken, then the work starts: wait for both.
        try await waitUntil(timeout: .seconds(10), "both lead and run") { leases.allSatisfy(\.isLeader) && Set(work.snapshot.running) == ["upkeep", "retention"] }
        #expect(work.snapshot.running.count == 2)
    }
}

import Foundation
import HubCore
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Background work (the savings upkeep, retention, exports) that must run in exactly one hub
/// process at a time among several sharing one PostgreSQL server.
///
/// The process that holds PostgreSQL's session advisory lock `key` is the leader and runs `work`;
/// the others try again every `retry`. The lock is held by one dedicated connection: when the
/// leader's process dies, the server drops its connection and with it the lock (for a killed
/// process the kernel closes the socket at once), and another process takes over at its next try.
/// The leader checks its connection every `check` (a `SELECT 1` that must answer within
/// `checkTimeout`) and watches for it closing: when it is lost, so is leadership, and `work` is
/// cancelled, since another process may take the lock as soon as the server lets it go.
public final class BackgroundLease: Service, Sendable {
    /// How often a follower tries the lock and how often the leader checks its connection.
    public struct Settings: Sendable, Equatable {
        public var retry: Duration
        public var check: Duration
        public var checkTimeout: Duration

        public init(retry: Duration = .seconds(2), check: Duration = .seconds(3), checkTimeout: Duration = .seconds(2)) {
            self.retry = retry
            self.check = check
            self.checkTimeout = checkTimeout
        }
    }

    public let name: String
    public let key: Int64
    public let location: PostgresLocation
    public let settings: Settings
    let work: @Sendable () async throws -> Void
    let logger: Logger
    private let leading = Atomic<Bool>(false)

    /// `work` runs while this process leads; it should run until cancelled (a loop of upkeep
    /// rounds). If it returns or throws, the lock is given back and taken again at a later try.
    public init(name: String, key: Int64? = nil, location: PostgresLocation, settings: Settings = Settings(), logger: Logger,
                work: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.key = key ?? Self.key(for: name)
        self.location = location
        self.settings = settings
        self.logger = logger
        self.work = work
    }

    /// Whether this process holds the lease now (for logs and metrics).
    public var isLeader: Bool { leading.load(ordering: .acquiring) }

    /// A stable lock key for a name (FNV-1a, 64 bits): every process derives the same one.
    public static func key(for name: String) -> Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return Int64(bitPattern: hash)
    }

    /// Runs until cancelled or the service group shuts down (the lock goes with the connection).
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.session()
                } catch {
                    if Task.isCancelled { break }
                    self.logger.warning("background lease: no connection to the database", metadata: ["lease": "\(self.name)", "error": "\(error)"])
                }
                try? await Task.sleep(for: self.settings.retry)
            }
        }
    }

    /// One connection's life: try the lock every `retry` until it is ours, lead until the
    /// connection is lost or the work ends, then close the connection (which frees the lock).
    private func session() async throws {
        let connection = try await PostgresConnection.connect(configuration: try configuration(), id: 1, logger: logger)
        do {
            while !Task.isCancelled {
                let answer = await ask(connection) { [key, logger] in
                    try await $0.scalar("SELECT pg_try_advisory_lock(\(key))", as: Bool.self, logger: logger) ?? false
                }
                guard let taken = answer else {
                    throw HubError(.unavailable, code: "lease_connection_lost", message: "the lease's database connection closed or did not answer within \(settings.checkTimeout)")
                }
                if taken {
                    try await lead(on: connection)
                    break
                }
                try await Task.sleep(for: settings.retry)
            }
        } catch {
            try? await connection.close()
            throw error
        }
        try? await connection.close()
    }

    private enum Ending: Sendable {
        case workEnded, connectionLost
    }

    private func lead(on connection: PostgresConnection) async throws {
        leading.store(true, ordering: .releasing)
        logger.info("background lease taken: this process runs the background work", metadata: ["lease": "\(name)"])
        let ending = await withTaskGroup(of: Ending.self) { group in
            group.addTask {
                do {
                    try await self.work()
                } catch where !(error is CancellationError) {
                    self.logger.error("background work failed", metadata: ["lease": "\(self.name)", "error": "\(error)"])
                } catch {}
                return .workEnded
            }
            group.addTask {
                // A connection closed by the server (or the network) is noticed at once.
                _ = try? await connection.closeFuture.get()
                return .connectionLost
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.settings.check)
                    if Task.isCancelled { break }
                    guard await self.answers(connection) else { return .connectionLost }
                }
                return .workEnded
            }
            let first = await group.next() ?? .workEnded
            // The term ends here, not once the children have unwound (seconds on a loaded
            // machine): the work is being cancelled, and with the connection gone another process
            // may take the lock at once.
            leading.store(false, ordering: .releasing)
            group.cancelAll()
            // The connection's watcher ends only when it closes.
            if first == .workEnded { try? await connection.close() }
            return first
        }
        switch ending {
        case .connectionLost:
            logger.info("background lease lost: the database connection is gone, the work was stopped", metadata: ["lease": "\(name)"])
        case .workEnded:
            logger.info("background lease given up", metadata: ["lease": "\(name)"])
        }
    }

    /// `SELECT 1` within `checkTimeout`; a connection that does not answer in time is closed.
    private func answers(_ connection: PostgresConnection) async -> Bool {
        await ask(connection) { [logger] in _ = try await $0.query("SELECT 1", logger: logger) } != nil
    }

    /// Runs `query` on `connection` in a task of its own and returns its result; nil (and the
    /// connection closed) when the connection is closed already, or once `checkTimeout` passes,
    /// the query throws or this task is cancelled, whichever comes first. The query is not waited
    /// for: postgres-nio never completes a query written to a connection that has closed (1.33.2,
    /// seen with a connection closed by the client and by `pg_terminate_backend`), so waiting for
    /// it would keep a follower from trying again, or a leader's term open, for ever. (No callback
    /// is left on the connection's close: the leader asks every `check`, for days.)
    private func ask<T: Sendable>(_ connection: PostgresConnection,
                                  _ query: @escaping @Sendable (PostgresConnection) async throws -> T) async -> T? {
        guard !connection.isClosed, !Task.isCancelled else { return nil }
        let decision = OneAnswer<T?>()
        let answer = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
                decision.set(continuation)
                Task { decision.give(try? await query(connection)) }
                Task { [timeout = settings.checkTimeout] in
                    try? await Task.sleep(for: timeout)
                    decision.give(nil)
                }
            }
        } onCancel: {
            decision.give(nil)
        }
        if answer == nil { try? await connection.close() }
        return answer
    }

    private func configuration() throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        switch location.tls {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
        case .require: tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        }
        var configuration = PostgresConnection.Configuration(host: location.host, port: location.port, username: location.user,
                                                             password: location.password, database: location.database, tls: tls)
        configuration.options.connectTimeout = .seconds(10)
        return configuration
    }
}

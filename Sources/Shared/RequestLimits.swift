import Foundation
import HTTPTypes
import HubCore
import Hummingbird
import Logging
import Synchronization

/// The requests being served now, for the shutdown log (what a deadline cut) and for tests.
public final class InFlightRequests: Sendable {
    /// One request being served.
    public struct Entry: Sendable, Equatable {
        public var method: String
        public var path: String
        public var started: ContinuousClock.Instant
    }

    private struct State {
        var next: UInt64 = 0
        var entries: [UInt64: Entry] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    func begin(method: String, path: String) -> UInt64 {
        state.withLock { state in
            state.next += 1
            state.entries[state.next] = Entry(method: method, path: path, started: .now)
            return state.next
        }
    }

    func end(_ id: UInt64) {
        _ = state.withLock { $0.entries.removeValue(forKey: id) }
    }

    /// The requests in flight, oldest first.
    public var snapshot: [Entry] {
        state.withLock { Array($0.entries.values) }.sorted { $0.started < $1.started }
    }

    /// One line per request in flight, for the log: `GET /api/v1/... (running 7.2 s)`.
    public func describe(now: ContinuousClock.Instant = .now) -> [String] {
        snapshot.map { entry in
            let running = now - entry.started
            let seconds = Double(running.components.seconds) + Double(running.components.attoseconds) / 1e18
            return "\(entry.method) \(entry.path) (running \(String(format: "%.1f", seconds)) s)"
        }
    }
}

/// The outermost middleware: counts the request in flight and marks its task as serving, so a
/// blocking database call made under it is caught (`BlockingAccessGuard`).
public struct ServingMiddleware<Context: RequestContext>: RouterMiddleware {
    let inFlight: InFlightRequests

    public init(inFlight: InFlightRequests) { self.inFlight = inFlight }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let id = inFlight.begin(method: request.method.rawValue, path: request.uri.path)
        defer { inFlight.end(id) }
        return try await BlockingAccessGuard.serving { try await next(request, context) }
    }
}

/// A counting semaphore for async code whose waits end: a waiter that is not let in within its
/// timeout, or that finds `maxWaiting` others already queued, is refused at once. Nothing here
/// blocks a thread.
public final class AsyncGate: Sendable {
    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var available: Int
        var waiters: [Waiter] = []
        var nextID: UInt64 = 0
    }

    private let state: Mutex<State>
    public let permits: Int
    public let maxWaiting: Int

    public init(permits: Int, maxWaiting: Int) {
        precondition(permits > 0 && maxWaiting >= 0)
        self.permits = permits
        self.maxWaiting = maxWaiting
        self.state = Mutex(State(available: permits))
    }

    /// Takes a permit, waiting at most `timeout`; false when refused (then nothing is held).
    public func acquire(timeout: Duration) async -> Bool {
        enum Fast { case granted, refused, wait(UInt64) }
        let fast: Fast = state.withLock { state in
            if state.available > 0 {
                state.available -= 1
                return .granted
            }
            if state.waiters.count >= maxWaiting { return .refused }
            state.nextID += 1
            return .wait(state.nextID)
        }
        let id: UInt64
        switch fast {
        case .granted: return true
        case .refused: return false
        case .wait(let waiting): id = waiting
        }
        return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            // A permit may have been released between the fast path and here.
            let immediate: Bool? = state.withLock { state in
                if state.available > 0 {
                    state.available -= 1
                    return true
                }
                state.waiters.append(Waiter(id: id, continuation: continuation))
                return nil
            }
            if let immediate {
                continuation.resume(returning: immediate)
                return
            }
            Task { [self] in
                try? await Task.sleep(for: timeout)
                self.expire(id)
            }
        }
    }

    private func expire(_ id: UInt64) {
        let waiter: Waiter? = state.withLock { state in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index)
        }
        waiter?.continuation.resume(returning: false)
    }

    /// Gives a permit back: to the oldest waiter, if any.
    public func release() {
        let waiter: Waiter? = state.withLock { state in
            if state.waiters.isEmpty {
                state.available += 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        waiter?.continuation.resume(returning: true)
    }

    /// Permits free now and requests waiting (for metrics and tests).
    public var load: (available: Int, waiting: Int) {
        state.withLock { ($0.available, $0.waiters.count) }
    }
}

/// Lets at most `gate.permits` requests work at once and queues the next ones for at most
/// `queueTimeout`; past that, or with the queue full, the answer is 503 with `Retry-After`, at
/// once, instead of a connection left hanging. Health and metrics routes sit outside it.
public struct ConcurrencyLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    let gate: AsyncGate
    let queueTimeout: Duration
    let onRefused: @Sendable () -> Void

    public init(gate: AsyncGate, queueTimeout: Duration, onRefused: @escaping @Sendable () -> Void = {}) {
        self.gate = gate
        self.queueTimeout = queueTimeout
        self.onRefused = onRefused
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard await gate.acquire(timeout: queueTimeout) else {
            onRefused()
            throw HubError.busy("the hub is busy; try again in a moment")
        }
        defer { gate.release() }
        return try await next(request, context)
    }
}

extension HubError {
    /// Seconds a client should wait before retrying a 503.
    public static let retryAfterSeconds = 1

    /// The hub cannot serve now (too many requests, database busy): 503 with `Retry-After`.
    public static func busy(_ message: String) -> HubError {
        HubError(.unavailable, code: "busy", message: message)
    }
}

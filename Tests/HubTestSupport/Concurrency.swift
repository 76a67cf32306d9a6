import Foundation

/// A value shared between a test and the tasks or routes it starts (the clock, a flag, a tally).
public final class Locked<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value

    public init(_ value: Value) { stored = value }

    public var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }

    /// Changes the value in place and returns what `body` returns, under the lock.
    @discardableResult
    public func mutate<Result>(_ body: (inout Value) -> Result) -> Result { lock.withLock { body(&stored) } }
}

/// The deadline passed before the work answered.
public struct DeadlinePassed: Error {}

/// Runs `body` and gives up after `timeout`, without waiting for it: a request to a frozen server
/// never completes, and `TestClient`'s own timeout waits for it before throwing.
public func withDeadline<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let claimed = Locked(false)
    let claim: @Sendable () -> Bool = { claimed.mutate { done in defer { done = true }; return !done } }
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let work = Task {
            do {
                let value = try await body()
                if claim() { continuation.resume(returning: value) }
            } catch {
                if claim() { continuation.resume(throwing: error) }
            }
        }
        Task {
            try? await Task.sleep(for: timeout)
            if claim() {
                continuation.resume(throwing: DeadlinePassed())
                work.cancel()
            }
        }
    }
}

/// Waits for an event: polls `condition` without blocking a cooperative thread, and answers
/// whether it held within `seconds` (for `#expect(await eventually { ... })`). `waitUntil`
/// is the throwing form.
public func eventually(_ seconds: Double = 15, _ condition: () -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return condition()
}


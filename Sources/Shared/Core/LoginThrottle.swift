/// How failed logins slow down (issue 9; issue 14, defect 11): a pure rule over the failures seen
/// for one key, a user name or a client address.
///
/// The first few failures cost nothing (a person mistypes); after them each failure doubles the
/// wait before the next attempt is even checked, up to a cap, so a person who forgot their
/// password waits seconds, while a guesser gets a few hundred tries a day instead of millions.
/// Nothing locks for good: a success clears the name's count, and a key with no failure for
/// `forgetAfterSeconds` starts afresh.
public struct LoginThrottleRule: Sendable, Equatable {
    /// Failures allowed before any wait.
    public var freeFailures: Int
    /// The first wait, doubled at each further failure.
    public var firstWaitSeconds: Int64
    /// The longest wait.
    public var maxWaitSeconds: Int64
    /// A key with no failure for this long is forgotten.
    public var forgetAfterSeconds: Int64

    public init(freeFailures: Int, firstWaitSeconds: Int64 = 1, maxWaitSeconds: Int64 = 300, forgetAfterSeconds: Int64 = 3600) {
        self.freeFailures = freeFailures
        self.firstWaitSeconds = firstWaitSeconds
        self.maxWaitSeconds = maxWaitSeconds
        self.forgetAfterSeconds = forgetAfterSeconds
    }

    /// Per user name: a person mistypes a few times.
    public static let perName = LoginThrottleRule(freeFailures: 5)
    /// Per client address: a shared computer in the association's room sees several people.
    public static let perAddress = LoginThrottleRule(freeFailures: 20)

    /// What is remembered of one key.
    public struct State: Sendable, Equatable {
        public var failures: Int
        public var lastFailure: Instant

        public init(failures: Int, lastFailure: Instant) {
            self.failures = failures
            self.lastFailure = lastFailure
        }
    }

    /// The wait after `failures` failures (0 while they are free).
    public func waitSeconds(afterFailures failures: Int) -> Int64 {
        guard failures >= freeFailures else { return 0 }
        let doublings = min(failures - freeFailures, 20)
        return min(maxWaitSeconds, firstWaitSeconds << Int64(doublings))
    }

    /// Seconds to wait before an attempt is checked at `now` (0: go ahead).
    public func retryAfter(_ state: State?, at now: Instant) -> Int64 {
        guard let state, !isForgotten(state, at: now) else { return 0 }
        let until = state.lastFailure.adding(seconds: waitSeconds(afterFailures: state.failures))
        guard until > now else { return 0 }
        // Whole seconds, rounded up, so the page never says "0 seconds".
        return max(1, (until.millisecondsSince1970 - now.millisecondsSince1970 + 999) / 1000)
    }

    /// The state after a failure at `now`.
    public func failed(_ state: State?, at now: Instant) -> State {
        guard let state, !isForgotten(state, at: now) else { return State(failures: 1, lastFailure: now) }
        return State(failures: state.failures + 1, lastFailure: now)
    }

    public func isForgotten(_ state: State, at now: Instant) -> Bool {
        now.millisecondsSince1970 - state.lastFailure.millisecondsSince1970 >= forgetAfterSeconds * 1000
    }
}

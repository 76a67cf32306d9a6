import Foundation
import HubCore
import Logging
import PostgresNIO
import Prometheus

/// Failed logins per user name and per client address, slowed by `LoginThrottleRule`: used by the
/// pages' login form and the API's `POST /api/v1/sessions` alike. The counts live in
/// `LoginFailureCounts`: this process's memory beside the SQLite file (one process; a restart
/// forgets them, and the waits are minutes at most), the server database behind PostgreSQL, so
/// several hub processes give a guesser no more attempts than one.
public actor LoginGuard {
    private let nameRule: LoginThrottleRule
    private let addressRule: LoginThrottleRule
    private let counts: any LoginFailureCounts
    private let logger: Logger
    private let throttled: Counter?
    private let failures: Counter?

    public init(nameRule: LoginThrottleRule = .perName, addressRule: LoginThrottleRule = .perAddress, counts: any LoginFailureCounts = MemoryLoginFailures(),
                metrics: PrometheusCollectorRegistry? = nil, logger: Logger = Logger(label: "community-hub.login")) {
        self.nameRule = nameRule
        self.addressRule = addressRule
        self.counts = counts
        self.logger = logger
        throttled = metrics?.makeCounter(descriptor: MetricNameDescriptor(
            metricName: "hub_login_throttled_total", unitName: "", helpText: "Login attempts refused unchecked because of earlier failures (per name or address)"))
        failures = metrics?.makeCounter(descriptor: MetricNameDescriptor(
            metricName: "hub_login_failures_total", unitName: "", helpText: "Logins refused for a wrong name or password"))
    }

    private func keys(name: String, address: String?) -> [(LoginFailureKey, LoginThrottleRule)] {
        [(LoginFailureKey(.name, Self.key(name)), nameRule)] + (address.map { [(LoginFailureKey(.address, $0), addressRule)] } ?? [])
    }

    /// Seconds the caller must wait before this attempt is checked (0: check it now). A refused
    /// attempt is logged and counted, and does not extend the wait.
    public func retryAfter(name: String, address: String?, at now: Instant) async throws -> Int64 {
        let states = try await counts.states(keys(name: name, address: address).map(\.0))
        let byName = nameRule.retryAfter(states[LoginFailureKey(.name, Self.key(name))], at: now)
        let byAddress = address.map { addressRule.retryAfter(states[LoginFailureKey(.address, $0)], at: now) } ?? 0
        let wait = max(byName, byAddress)
        if wait > 0 {
            throttled?.increment()
            logger.warning("login throttled", metadata: ["name": "\(name)", "address": "\(address ?? "-")", "retry_after_seconds": "\(wait)",
                                                         "by": "\(byName >= byAddress ? "name" : "address")"])
        }
        return wait
    }

    /// A wrong name or password.
    public func failed(name: String, address: String?, at now: Instant) async throws {
        failures?.increment()
        let states = try await counts.failed(keys(name: name, address: address), at: now)
        logger.notice("login failed", metadata: ["name": "\(name)", "address": "\(address ?? "-")",
                                                 "failures_for_name": "\(states[LoginFailureKey(.name, Self.key(name))]?.failures ?? 0)"])
    }

    /// The right password: the name starts afresh (the address keeps its count, which fades).
    public func succeeded(name: String) async throws {
        try await counts.clear(LoginFailureKey(.name, Self.key(name)))
    }

    /// Names are compared as typed, without surrounding spaces and case.
    static func key(_ name: String) -> String { name.trimmingCharacters(in: .whitespaces).lowercased() }
}

/// One counted key: a user name (as `LoginGuard.key` writes it) or a client address.
public struct LoginFailureKey: Hashable, Sendable {
    public enum Kind: String, Sendable { case name, address }
    public var kind: Kind
    public var value: String

    public init(_ kind: Kind, _ value: String) {
        self.kind = kind
        self.value = value
    }
}

/// Where `LoginGuard` keeps the failures of each key.
public protocol LoginFailureCounts: Sendable {
    /// What is remembered of these keys (absent: nothing).
    func states(_ keys: [LoginFailureKey]) async throws -> [LoginFailureKey: LoginThrottleRule.State]
    /// Counts a failure at `now` for each key, by its rule, as one change; gives the new states.
    func failed(_ keys: [(LoginFailureKey, LoginThrottleRule)], at now: Instant) async throws -> [LoginFailureKey: LoginThrottleRule.State]
    /// Forgets a key's failures.
    func clear(_ key: LoginFailureKey) async throws
}

/// The counts in this process's memory, for one hub process on its SQLite file. At most
/// `maxKeys` keys are remembered (an attacker inventing names cannot fill memory).
public actor MemoryLoginFailures: LoginFailureCounts {
    private var table: [LoginFailureKey: LoginThrottleRule.State] = [:]
    private var rules: [LoginFailureKey.Kind: LoginThrottleRule] = [:]
    private let maxKeys: Int

    public init(maxKeys: Int = 200_000) { self.maxKeys = maxKeys }

    public func states(_ keys: [LoginFailureKey]) -> [LoginFailureKey: LoginThrottleRule.State] {
        keys.reduce(into: [:]) { states, key in states[key] = table[key] }
    }

    public func failed(_ keys: [(LoginFailureKey, LoginThrottleRule)], at now: Instant) -> [LoginFailureKey: LoginThrottleRule.State] {
        for (key, rule) in keys { rules[key.kind] = rule }
        prune(at: now)
        var states: [LoginFailureKey: LoginThrottleRule.State] = [:]
        for (key, rule) in keys {
            table[key] = rule.failed(table[key], at: now)
            states[key] = table[key]
        }
        return states
    }

    public func clear(_ key: LoginFailureKey) { table[key] = nil }

    private func prune(at now: Instant) {
        guard table.count >= maxKeys else { return }
        table = table.filter { key, state in !(rules[key.kind]?.isForgotten(state, at: now) ?? false) }
        // Still full: forget the oldest half rather than grow without bound.
        if table.count >= maxKeys {
            table = Dictionary(uniqueKeysWithValues: Array(table.sorted { $0.value.lastFailure > $1.value.lastFailure }.prefix(maxKeys / 2)))
        }
    }
}

/// The counts in the server database (`login_failure`), shared by every hub process on it: each
/// failure is counted in one transaction holding the keys' rows, so simultaneous failures in two
/// processes count twice. Keys forgotten by their rule are deleted as failures come.
public struct PostgresLoginFailures: LoginFailureCounts {
    let database: HubPostgres

    public init(database: HubPostgres) { self.database = database }

    public func states(_ keys: [LoginFailureKey]) async throws -> [LoginFailureKey: LoginThrottleRule.State] {
        try await database.read { connection in
            try await Self.rows(connection, keys, lock: false, logger: database.logger)
        }
    }

    public func failed(_ keys: [(LoginFailureKey, LoginThrottleRule)], at now: Instant) async throws -> [LoginFailureKey: LoginThrottleRule.State] {
        let millis = now.millisecondsSince1970
        return try await database.transaction { connection in
            for (key, rule) in keys {
                try await connection.query("""
                    DELETE FROM login_failure WHERE kind = \(key.kind.rawValue) AND last_failure <= \(millis - rule.forgetAfterSeconds * 1000)
                    """, logger: database.logger)
            }
            // Every key's row exists, then is locked, in one order (two processes never wait in a circle).
            let sorted = keys.sorted { ($0.0.kind.rawValue, $0.0.value) < ($1.0.kind.rawValue, $1.0.value) }
            try await connection.query("""
                INSERT INTO login_failure (kind, key, failures, last_failure)
                SELECT * FROM unnest(\(sorted.map(\.0.kind.rawValue))::text[], \(sorted.map(\.0.value))::text[], \(sorted.map { _ in Int64(0) })::bigint[],
                                     \(sorted.map { _ in Int64.min })::bigint[])
                ON CONFLICT (kind, key) DO NOTHING
                """, logger: database.logger)
            let stored = try await Self.rows(connection, sorted.map(\.0), lock: true, logger: database.logger)
            var states: [LoginFailureKey: LoginThrottleRule.State] = [:]
            for (key, rule) in sorted {
                let state = rule.failed(stored[key], at: now)
                states[key] = state
                try await connection.query("""
                    UPDATE login_failure SET failures = \(Int64(state.failures)), last_failure = \(state.lastFailure.millisecondsSince1970)
                    WHERE kind = \(key.kind.rawValue) AND key = \(key.value)
                    """, logger: database.logger)
            }
            return states
        }
    }

    public func clear(_ key: LoginFailureKey) async throws {
        _ = try await database.transaction { connection in
            try await connection.query("DELETE FROM login_failure WHERE kind = \(key.kind.rawValue) AND key = \(key.value)", logger: database.logger)
        }
    }

    /// The keys' rows (a row just inserted, with no failure yet, counts as absent).
    private static func rows(_ connection: PostgresConnection, _ keys: [LoginFailureKey], lock: Bool, logger: Logger) async throws
        -> [LoginFailureKey: LoginThrottleRule.State] {
        let rows = try await connection.query("""
            SELECT l.kind, l.key, l.failures, l.last_failure FROM login_failure l
            JOIN unnest(\(keys.map(\.kind.rawValue))::text[], \(keys.map(\.value))::text[]) AS k(kind, key) ON l.kind = k.kind AND l.key = k.key
            WHERE l.failures > 0 ORDER BY l.kind, l.key \(unescaped: lock ? "FOR UPDATE OF l" : "")
            """, logger: logger)
        var states: [LoginFailureKey: LoginThrottleRule.State] = [:]
        for try await (kind, key, failures, last) in rows.decode((String, String, Int64, Int64).self) {
            guard let kind = LoginFailureKey.Kind(rawValue: kind) else { continue }
            states[LoginFailureKey(kind, key)] = LoginThrottleRule.State(failures: Int(failures), lastFailure: Instant(millisecondsSince1970: last))
        }
        return states
    }
}

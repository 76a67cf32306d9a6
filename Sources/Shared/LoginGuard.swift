import Foundation
import HubCore
import Logging
import Prometheus

/// Failed logins per user name and per client address, slowed by `LoginThrottleRule`: used by the
/// pages' login form and the API's `POST /api/v1/sessions` alike. Kept in memory: a restart
/// forgets the counts (the waits are minutes at most, so nothing is lost by it).
public actor LoginGuard {
    private let nameRule: LoginThrottleRule
    private let addressRule: LoginThrottleRule
    private var names: [String: LoginThrottleRule.State] = [:]
    private var addresses: [String: LoginThrottleRule.State] = [:]
    private let logger: Logger
    private let throttled: Counter?
    private let failures: Counter?
    /// At most this many keys of each kind are remembered (an attacker inventing names cannot fill memory).
    private let maxKeys: Int

    public init(nameRule: LoginThrottleRule = .perName, addressRule: LoginThrottleRule = .perAddress,
                metrics: PrometheusCollectorRegistry? = nil, logger: Logger = Logger(label: "community-hub.login"), maxKeys: Int = 100_000) {
        self.nameRule = nameRule
        self.addressRule = addressRule
        self.logger = logger
        self.maxKeys = maxKeys
        throttled = metrics?.makeCounter(descriptor: MetricNameDescriptor(
            metricName: "hub_login_throttled_total", unitName: "", helpText: "Login attempts refused unchecked because of earlier failures (per name or address)"))
        failures = metrics?.makeCounter(descriptor: MetricNameDescriptor(
            metricName: "hub_login_failures_total", unitName: "", helpText: "Logins refused for a wrong name or password"))
    }

    /// Seconds the caller must wait before this attempt is checked (0: check it now). A refused
    /// attempt is logged and counted, and does not extend the wait.
    public func retryAfter(name: String, address: String?, at now: Instant) -> Int64 {
        let byName = nameRule.retryAfter(names[Self.key(name)], at: now)
        let byAddress = address.map { addressRule.retryAfter(addresses[$0], at: now) } ?? 0
        let wait = max(byName, byAddress)
        if wait > 0 {
            throttled?.increment()
            logger.warning("login throttled", metadata: ["name": "\(name)", "address": "\(address ?? "-")", "retry_after_seconds": "\(wait)",
                                                         "by": "\(byName >= byAddress ? "name" : "address")"])
        }
        return wait
    }

    /// A wrong name or password.
    public func failed(name: String, address: String?, at now: Instant) {
        failures?.increment()
        prune(at: now)
        let key = Self.key(name)
        names[key] = nameRule.failed(names[key], at: now)
        if let address { addresses[address] = addressRule.failed(addresses[address], at: now) }
        logger.notice("login failed", metadata: ["name": "\(name)", "address": "\(address ?? "-")", "failures_for_name": "\(names[key]?.failures ?? 0)"])
    }

    /// The right password: the name starts afresh (the address keeps its count, which fades).
    public func succeeded(name: String) {
        names[Self.key(name)] = nil
    }

    private static func newestHalf(_ table: [String: LoginThrottleRule.State], maxKeys: Int) -> [String: LoginThrottleRule.State] {
        guard table.count >= maxKeys else { return table }
        return Dictionary(uniqueKeysWithValues: Array(table.sorted { $0.value.lastFailure > $1.value.lastFailure }.prefix(maxKeys / 2)))
    }

    /// Names are compared as typed, without surrounding spaces and case.
    static func key(_ name: String) -> String { name.trimmingCharacters(in: .whitespaces).lowercased() }

    private func prune(at now: Instant) {
        guard names.count >= maxKeys || addresses.count >= maxKeys else { return }
        names = names.filter { !nameRule.isForgotten($0.value, at: now) }
        addresses = addresses.filter { !addressRule.isForgotten($0.value, at: now) }
        // Still full: forget the oldest half rather than grow without bound.
        names = Self.newestHalf(names, maxKeys: maxKeys)
        addresses = Self.newestHalf(addresses, maxKeys: maxKeys)
    }
}

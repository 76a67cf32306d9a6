import Foundation

/// How long the MQTT client waits before trying to connect again (issue 14, defect 16: after the
/// broker came back, the hub took 25 s to reconnect, libmosquitto's own exponential delay running
/// its course up to 30 s). Pure, so the rule is tested as a table; `MosquittoClient` draws the
/// random `jitter` values.
///
/// - While the broker does not answer, the wait doubles from `reconnectMinSeconds` after each
///   failure up to `reconnectMaxSeconds`, less up to a half at random (so several clients spread).
/// - The client probes the broker's port four times a second while it waits; as soon as a port that
///   did not answer accepts a TCP connection again, the rest of the wait is cut to a random time up
///   to `reconnectOnceAnsweringMaxMilliseconds` (1 s by default): a returning broker is reached
///   within about 1.25 s, whatever the backoff had reached. A broker that answers and refuses the
///   client (credentials, ACL, TLS) keeps the whole backoff: it is not coming back, it says no.
public enum ReconnectBackoff {
    /// How often the broker's port is probed while waiting.
    public static let probeIntervalSeconds = 0.25

    /// The wait, in seconds, after `failures` consecutive failures (1 for the first) while the
    /// broker does not answer: `minimum` × 2^(failures − 1), at most `maximum`, times
    /// (1 − jitter / 2) for `jitter` in 0..<1.
    public static func backoffSeconds(afterFailures failures: Int, minimum: Int, maximum: Int, jitter: Double) -> Double {
        var delay = Double(max(1, minimum))
        for _ in 1..<max(1, min(failures, 40)) {
            delay *= 2
            if delay >= Double(maximum) { break }
        }
        let capped = min(delay, Double(max(maximum, minimum)))
        return capped * (1 - min(max(jitter, 0), 1) / 2)
    }

    /// The rest of the wait once the broker answers: a random part (`jitter` in 0..<1) of
    /// `onceAnsweringMaxSeconds`, never more than what was `remaining`.
    public static func secondsOnceAnswering(remaining: Double, onceAnsweringMaxSeconds: Double, jitter: Double) -> Double {
        max(0, min(remaining, onceAnsweringMaxSeconds * min(max(jitter, 0), 1)))
    }
}

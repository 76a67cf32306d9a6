import EnergyHub
import Testing

/// Issue 14, defect 16: the wait before reconnecting to the broker, as a table.
@Suite struct ReconnectBackoffTests {
    @Test func theWaitDoublesUpToTheMaximumWhileTheBrokerDoesNotAnswer() {
        let waits = (1...8).map { ReconnectBackoff.backoffSeconds(afterFailures: $0, minimum: 1, maximum: 30, jitter: 0) }
        #expect(waits == [1, 2, 4, 8, 16, 30, 30, 30])
        #expect(ReconnectBackoff.backoffSeconds(afterFailures: 1_000, minimum: 1, maximum: 30, jitter: 0) == 30, "no overflow after many failures")
        #expect(ReconnectBackoff.backoffSeconds(afterFailures: 0, minimum: 2, maximum: 30, jitter: 0) == 2)
        #expect(ReconnectBackoff.backoffSeconds(afterFailures: 3, minimum: 5, maximum: 5, jitter: 0) == 5)
    }

    @Test func jitterTakesOffUpToAHalf() {
        #expect(ReconnectBackoff.backoffSeconds(afterFailures: 5, minimum: 1, maximum: 30, jitter: 0.5) == 12)
        #expect(ReconnectBackoff.backoffSeconds(afterFailures: 6, minimum: 1, maximum: 30, jitter: 0.999_999) > 15)
        #expect(ReconnectBackoff.backoffSeconds(afterFailures: 6, minimum: 1, maximum: 30, jitter: 7) == 15, "jitter is clamped to 0...1")
    }

    /// Once the broker answers, what is left of a 30 s wait is cut to at most a second, at random.
    @Test func onceTheBrokerAnswersTheWaitIsCutWithJitter() {
        #expect(ReconnectBackoff.secondsOnceAnswering(remaining: 25, onceAnsweringMaxSeconds: 1, jitter: 0.3) == 0.3)
        #expect(ReconnectBackoff.secondsOnceAnswering(remaining: 25, onceAnsweringMaxSeconds: 1, jitter: 0) == 0)
        #expect(ReconnectBackoff.secondsOnceAnswering(remaining: 0.2, onceAnsweringMaxSeconds: 1, jitter: 0.9) == 0.2, "never longer than the backoff")
        #expect(ReconnectBackoff.secondsOnceAnswering(remaining: 25, onceAnsweringMaxSeconds: 0, jitter: 0.9) == 0)
        #expect(ReconnectBackoff.secondsOnceAnswering(remaining: -1, onceAnsweringMaxSeconds: 1, jitter: 0.5) == 0)
    }
}

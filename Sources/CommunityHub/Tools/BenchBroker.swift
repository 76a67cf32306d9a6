import EnergyHub
import Foundation
import HubCore
import Logging
import Shared

/// The broker side of the ingest benchmarks: a mosquitto broker of their own, one publishing client,
/// the subscriber that stores nothing (the baseline) and the persistent sessions of the receivers.
final class BenchBroker: @unchecked Sendable {
    let broker: BrokerProcess
    let logger: Logger
    static let nullClientId = "bench-null"
    static let publisherClientId = "bench-pub"
    private var publisher: MosquittoClient?

    init(root: URL, logger: Logger) throws {
        self.logger = logger
        broker = try BrokerProcess(workingDirectory: root.appendingPathComponent("broker"), persistence: false, maxQueuedMessages: 0)
    }

    func settings(_ clientId: String) -> MQTTSettings {
        var settings = broker.clientSettings
        settings.clientId = clientId
        return settings
    }

    func startPublisher() async throws {
        let publisher = MosquittoClient(settings: settings(Self.publisherClientId), password: nil, clientId: Self.publisherClientId, cleanSession: true,
                                        logger: logger, onMessage: { _ in })
        try publisher.start()
        try await waitFor("the publisher to connect", timeout: .seconds(10)) { publisher.isConnected }
        self.publisher = publisher
    }

    func stopPublisher() {
        publisher?.stop()
        publisher = nil
    }

    /// A subscriber that only counts (persistent session, QoS 1, the receivers' filters).
    func nullRound(subscriptions: [String], label: String, batch: [BenchMessage]) async throws -> BenchFigures {
        let counter = ArrivalCounter(target: batch.count)
        let subscriber = nullSubscriber(subscriptions, counter)
        try subscriber.start()
        try await waitFor("the null subscriber to subscribe", timeout: .seconds(10)) { subscriber.isSubscribed }
        let before = CPUSnapshot.take(broker: broker.processIdentifier)
        let publishing = try publish(batch.count) { batch[$0] }
        try await waitFor(label, timeout: Self.timeout(batch.count), progress: { "\(counter.count) received" }) { counter.count >= batch.count }
        let after = CPUSnapshot.take(broker: broker.processIdentifier)
        try await publishing.finish()
        guard let start = publishing.startedAt, let end = counter.finishedAt else { throw IngestBenchRun.failure("a phase ended without its timing") }
        subscriber.stop()
        try await clearSession(Self.nullClientId)
        let extra = counter.count - batch.count
        return BenchFigures(messages: batch.count, seconds: IngestBenchRun.seconds(end - start), cpu: after.minus(before), publisherCPU: publishing.cpuSeconds,
                            subscriberThread: "mqtt \(Self.nullClientId)", check: extra == 0 ? "ok" : "+\(extra) dup")
    }

    func nullSubscriber(_ subscriptions: [String], _ counter: ArrivalCounter) -> MosquittoClient {
        MosquittoClient(settings: settings(Self.nullClientId), password: nil, clientId: Self.nullClientId, cleanSession: false, subscriptions: subscriptions,
                        logger: logger, onMessage: { _ in counter.arrived() })
    }

    /// Creates a receiver's persistent session with its subscriptions, so that nothing published
    /// after this is missed whenever the receiver itself connects.
    func prepareSession(_ clientId: String, subscriptions: [String]) async throws {
        let client = MosquittoClient(settings: settings(clientId), password: nil, clientId: clientId, cleanSession: false,
                                     subscriptions: subscriptions, logger: logger, onMessage: { _ in })
        try client.start()
        try await waitFor("the session of \(clientId) to subscribe", timeout: .seconds(10)) { client.isSubscribed }
        client.stop()
    }

    /// Removes a persistent session (a clean-session connection under its id), so that the broker
    /// stops queueing for a receiver that is not being measured.
    func clearSession(_ clientId: String) async throws {
        let client = MosquittoClient(settings: settings(clientId), password: nil, clientId: clientId, cleanSession: true, logger: logger, onMessage: { _ in })
        try client.start()
        try await waitFor("clearing the session \(clientId)", timeout: .seconds(10)) { client.isConnected }
        client.stop()
    }

    /// Publishes `count` messages at QoS 1 from a thread of its own, then waits for the broker's
    /// acknowledgements.
    func publish(_ count: Int, _ message: @escaping @Sendable (Int) -> BenchMessage) throws -> PublishRun {
        guard let publisher else { throw IngestBenchRun.failure("no publisher") }
        let run = PublishRun()
        let thread = Thread {
            nameThread("bench-publish")
            let cpuStart = PublishRun.threadCPUSeconds()
            run.begin()
            do {
                for index in 0..<count {
                    let next = message(index)
                    try publisher.publish(topic: next.topic, payload: next.payload, qos: 1)
                    run.published(index + 1)
                }
                if !publisher.waitUntilAcknowledged(timeout: .seconds(120)) {
                    throw HubError(.unavailable, code: "bench_unacknowledged", message: "the broker did not acknowledge every publish")
                }
                run.end(cpu: PublishRun.threadCPUSeconds() - cpuStart, error: nil)
            } catch {
                run.end(cpu: PublishRun.threadCPUSeconds() - cpuStart, error: error)
            }
        }
        thread.name = "bench-publish"
        thread.start()
        return run
    }

    static func timeout(_ count: Int) -> Duration { .seconds(max(60, count / 1000)) }

    /// Polls `condition` every `interval` (2 ms unless told); prints `progress` every 2 s to stderr.
    func waitFor(_ what: String, timeout: Duration, every interval: Duration = .milliseconds(20), progress: (() -> String)? = nil,
                 _ condition: () async throws -> Bool) async throws {
        let start = ContinuousClock.now
        var lastProgress = start
        while try await !condition() {
            let now = ContinuousClock.now
            if now - start > timeout {
                throw HubError(.unavailable, code: "bench_timeout", message: "timed out after \(timeout) waiting for \(what)")
            }
            if let progress, now - lastProgress >= .seconds(2) {
                lastProgress = now
                // What the report printed so far first (nil: every stream, stdout among them):
                // with both in one file (`2>&1`), the progress line came in the middle of a
                // report line still in stdout's buffer.
                fflush(nil)
                FileHandle.standardError.write(Data(String(format: "  … %@: %@ after %.0f s\n", what, progress(), IngestBenchRun.seconds(now - start)).utf8))
            }
            try await Task.sleep(for: interval)
        }
    }
}

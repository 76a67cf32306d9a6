import EnergyCore
import EnergyHub
import Foundation
import GRDB
import HubTestSupport
import HubTools
import HTTPTypes
import HummingbirdTesting
import HubCore
import Shared
import Testing

/// The real `community-hub serve` process killed mid-stream: SIGKILL loses at most one batch and
/// stores no duplicate after the restart; SIGTERM drains what it holds and loses nothing.
@Suite(.serialized) struct HubProcessTests {
    static let devices = 20
    static let perDevice = 1500
    var total: Int { Self.devices * Self.perDevice }

    static var registry: String {
        "estate;building;dwelling;device;kind;format;since\n"
            + (1...devices).map { "E;B;D\($0);sim-\($0);meter;canonical;2025-01-01" }.joined(separator: "\n")
    }

    /// Publishes every reading at about 10,000 messages/s from a thread, so the kill lands mid-stream.
    func startPublishing(_ harness: IngestHarness) throws -> (MosquittoClient, Task<Void, any Error>) {
        let publisher = try harness.publisher()
        let start = Instant.now().adding(seconds: -Int64(Self.perDevice) * 60)
        let task = Task.detached {
            for step in 0..<Self.perDevice {
                for device in 1...Self.devices {
                    try publisher.publish(topic: "meters/sim-\(device)/reading",
                                          payload: canonicalPayload(start.adding(seconds: Int64(step) * 60), Int64(step * 20 + device)))
                }
                if step % 5 == 4 { try await Task.sleep(for: .milliseconds(10)) }
            }
        }
        return (publisher, task)
    }

    func waitUntilSettled(_ harness: IngestHarness, timeout: Duration = .seconds(60)) async throws -> Int {
        var last = -1
        var stableSince = ContinuousClock.now
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let stored = harness.storedReadings
            if stored == total { return stored }
            if stored != last { last = stored; stableSince = .now } else if ContinuousClock.now - stableSince > .seconds(3) { return stored }
            try await Task.sleep(for: .milliseconds(50))
        }
        return harness.storedReadings
    }

    func startHub(_ harness: IngestHarness, name: String) async throws -> HubChild {
        let hub = try HubChild(database: harness.database.path, mqttPort: harness.broker.port, directory: harness.directory, name: name)
        try await waitUntil("\(name) connected") { hub.log.contains("connected to the MQTT broker") || !hub.process.isRunning }
        #expect(hub.process.isRunning, "\(hub.log)")
        return hub
    }

    @Test func sigkillMidStreamLosesAtMostOneBatchAndStoresNoDuplicate() async throws {
        let harness = try IngestHarness(registryCSV: Self.registry)
        let first = try await startHub(harness, name: "hub-1")
        let (publisher, publishing) = try startPublishing(harness)
        try await waitUntil(timeout: .seconds(60), "a third stored") { harness.storedReadings >= total / 3 }
        first.signal(SIGKILL)
        _ = try await first.waitForExit()
        let storedAtKill = harness.storedReadings
        #expect(storedAtKill < total, "the kill must land mid-stream")
        let second = try await startHub(harness, name: "hub-2")
        try await publishing.value
        #expect(publisher.waitUntilAcknowledged(timeout: .seconds(30)))
        let stored = try await waitUntilSettled(harness)
        let lost = total - stored
        #expect(lost >= 0 && lost <= IngestSettings().maxBatch, "lost \(lost) readings; the bound is one batch (\(IngestSettings().maxBatch))")
        #expect(try harness.count("SELECT COUNT(*) FROM (SELECT device_id, instant FROM reading GROUP BY device_id, instant HAVING COUNT(*) > 1)") == 0)
        #expect(try harness.count("SELECT COUNT(*) FROM quarantine") == 0, "redelivered messages are duplicates, not conflicts")
        second.signal(SIGTERM)
        #expect(try await second.waitForExit() == 0)
        print("SIGKILL at \(storedAtKill)/\(total) stored; after restart \(stored) stored, \(lost) lost")
        publisher.stop()
    }

    @Test func sigtermMidStreamDrainsAndLosesNothing() async throws {
        let harness = try IngestHarness(registryCSV: Self.registry)
        let first = try await startHub(harness, name: "hub-1")
        let (publisher, publishing) = try startPublishing(harness)
        try await waitUntil(timeout: .seconds(60), "a third stored") { harness.storedReadings >= total / 3 }
        first.signal(SIGTERM)
        #expect(try await first.waitForExit() == 0, "graceful exit: \(first.log.suffix(2000))")
        let storedAtStop = harness.storedReadings
        #expect(storedAtStop < total, "the stop must land mid-stream")
        #expect(first.log.contains("drained_messages="), "the drain is logged")
        let second = try await startHub(harness, name: "hub-2")
        try await publishing.value
        #expect(publisher.waitUntilAcknowledged(timeout: .seconds(30)))
        let stored = try await waitUntilSettled(harness)
        #expect(stored == total, "SIGTERM drains: nothing lost (\(total - stored) missing)")
        second.signal(SIGTERM)
        #expect(try await second.waitForExit() == 0)
        publisher.stop()
    }

    /// Issue 16: a handler stuck where cancellation cannot reach (here two, blocking both threads
    /// of Swift's pool) must not keep the process alive after SIGTERM. The shutdown deadline fires
    /// on a dispatch queue of its own, names the requests it cuts, lets ingest commit what it holds
    /// and exits; a restarted hub then receives the rest from the broker, nothing lost.
    @Test func aStuckHandlerCannotKeepTheProcessAliveAfterSIGTERM() async throws {
        let harness = try IngestHarness(registryCSV: Self.registry)
        let hub = try HubChild(database: harness.database.path, mqttPort: harness.broker.port, directory: harness.directory, name: "stuck",
                               environment: ["HUB_DEBUG_STUCK_ROUTE": "1"])
        try await waitUntil("the hub connected") { hub.log.contains("connected to the MQTT broker") || !hub.process.isRunning }
        let port = try #require(hub.httpPort)
        let (publisher, publishing) = try startPublishing(harness)
        try await waitUntil(timeout: .seconds(60), "a third stored") { harness.storedReadings >= total / 3 }
        // Two requests that never return: each blocks a thread of the pool, as a synchronous call would.
        let clients = (0..<2).map { _ in TestClient(host: "127.0.0.1", port: port) }
        for client in clients {
            client.connect()
            try await client.executeAndDontWaitForResponse(.init("/debug/stuck", method: .get))
        }
        // Both threads are stuck once even `/healthz` gets no answer.
        var frozen = false
        for _ in 0..<20 where !frozen {
            let probe = TestClient(host: "127.0.0.1", port: port)
            probe.connect()
            frozen = (try? await withDeadline(.seconds(1)) { try await probe.get("/healthz").head.status.code }) == nil
            Task { try? await probe.shutdown() }
        }
        #expect(frozen, "the stuck requests froze the pool")
        let signalled = ContinuousClock.now
        hub.signal(SIGTERM)
        let status = try await hub.waitForExit(timeout: 15)
        let took = ContinuousClock.now - signalled
        #expect(status == 1, "ended by the deadline, not killed: \(hub.log.suffix(3000))")
        #expect(took < .seconds(12), "bounded: the grace period (5 s) and the deadline's 3 s, took \(took)")
        #expect(hub.log.contains("shutdown deadline passed"), "\(hub.log.suffix(2000))")
        #expect(hub.log.contains("cut at shutdown: GET /debug/stuck"), "the cut requests are named")
        #expect(hub.log.contains("ingest stopped"), "ingest committed what it held before the exit")
        for client in clients { try? await client.shutdown() }

        let second = try await startHub(harness, name: "after-stuck")
        try await publishing.value
        #expect(publisher.waitUntilAcknowledged(timeout: .seconds(30)))
        let stored = try await waitUntilSettled(harness)
        #expect(stored == total, "nothing acknowledged was lost at the forced exit (\(total - stored) missing)")
        second.signal(SIGTERM)
        #expect(try await second.waitForExit() == 0)
        publisher.stop()
    }
}

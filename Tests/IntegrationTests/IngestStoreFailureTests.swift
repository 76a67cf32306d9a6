import EnergyCore
import EnergyHub
import Foundation
import HubTestSupport
import HubTools
import HubCore
import Shared
import Synchronization
import Testing

/// Issue 14, defects 2 and 3, through the real `community-hub serve`, a real broker and a real
/// SQLite file. The store is made to refuse writes as a full disk does, from outside the process:
/// `prlimit` lowers the hub's file size limit to one byte, so every write SQLite makes to its files
/// fails (the hub ignores SIGXFSZ; SQLite reports an I/O error, ENOSPC would be SQLITE_FULL, both
/// are `isUnavailable`), and raising it again is the disk freed. The hub's log goes through a pipe,
/// which the limit does not touch.
@Suite(.serialized) struct IngestStoreFailureTests {
    static let devices = 20

    static var registry: String {
        "estate;building;dwelling;device;kind;format;since\n"
            + (1...devices).map { "E;B;D\($0);sim-\($0);meter;canonical;2025-01-01" }.joined(separator: "\n")
    }

    let start = Instant.now().adding(seconds: -86_400 * 5)

    /// Publishes steps [from, to) of every device, one reading a minute each, on a thread of its
    /// own (a publish waits when libmosquitto's window is full: never on Swift's pool, which the
    /// other suites running meanwhile need).
    func publish(_ publisher: MosquittoClient, steps: Range<Int>) async throws {
        let start = self.start
        try await BlockingWork.run {
            for step in steps {
                for device in 1...Self.devices {
                    try publisher.publish(topic: "meters/sim-\(device)/reading", payload: canonicalPayload(start.adding(seconds: Int64(step) * 60), Int64(step * 20 + device)))
                }
            }
        }
    }

    /// The broker acknowledged every publish (waited for off Swift's pool).
    func acknowledged(_ publisher: MosquittoClient, within seconds: Int) async -> Bool {
        await BlockingWork.run { publisher.waitUntilAcknowledged(timeout: .seconds(seconds)) }
    }

    func publisher(_ harness: IngestHarness) async throws -> MosquittoClient {
        try await BlockingWork.run { try harness.publisher() }
    }

    func startHub(_ harness: IngestHarness, name: String) async throws -> HubChild {
        let hub = try HubChild(database: harness.database.path, mqttPort: harness.broker.port, directory: harness.directory, name: name, logThroughPipe: true)
        try await waitUntil("\(name) connected") { hub.log.contains("connected to the MQTT broker") || !hub.process.isRunning }
        #expect(hub.process.isRunning, "\(hub.log)")
        return hub
    }

    /// Sets the hub's file size limit (soft; the hard limit stays unlimited so it can be raised).
    func limitFileSize(_ hub: HubChild, _ bytes: String) async throws {
        let result = try await TestSupport.run("/usr/bin/prlimit", ["--pid", "\(hub.process.processIdentifier)", "--fsize=\(bytes):unlimited"])
        #expect(result.status == 0, "prlimit: \(result.output)")
    }

    func duplicates(_ harness: IngestHarness) throws -> Int {
        try harness.count("SELECT COUNT(*) FROM (SELECT device_id, instant FROM reading GROUP BY device_id, instant HAVING COUNT(*) > 1)")
    }

    @Test func aDiskThatRefusesWritesPausesIntakeAndLosesNothingOnceItAcceptsAgain() async throws {
        let harness = try IngestHarness(registryCSV: Self.registry)
        let hub = try await startHub(harness, name: "hub")
        let publisher = try await publisher(harness)
        try await publish(publisher, steps: 0..<100)
        try await waitUntil(timeout: .seconds(60), "the first 2,000 stored") { harness.storedReadings == 2_000 }

        try await limitFileSize(hub, "1")
        try await publish(publisher, steps: 100..<400)
        #expect(await acknowledged(publisher, within: 30), "the broker takes every message while the hub's disk refuses writes")
        try await waitUntil(timeout: .seconds(30), "the hub sees the failing store") { hub.log.contains("the database refuses writes") }
        try await Task.sleep(for: .seconds(2))
        let storedWhileFull = harness.storedReadings
        #expect(storedWhileFull < 8_000, "nothing can be stored meanwhile")
        #expect(!hub.log.contains("could not be stored"), "no message is blamed (quarantined) for the disk")

        try await limitFileSize(hub, "unlimited")
        try await waitUntil(timeout: .seconds(60), "every reading stored once the disk accepts writes") { harness.storedReadings == 8_000 }
        #expect(hub.log.contains("the database accepts writes again"))
        #expect(try duplicates(harness) == 0)
        #expect(try harness.count("SELECT COUNT(*) FROM quarantine") == 0, "\(hub.log.suffix(3000))")
        hub.signal(SIGTERM)
        #expect(try await hub.waitForExit() == 0)
        await BlockingWork.run { _ = publisher.stop() }
    }

    @Test func aFullDiskAtSIGTERMEndsInBoundedTimeAndSaysWhatItLost() async throws {
        let harness = try IngestHarness(registryCSV: Self.registry)
        let first = try await startHub(harness, name: "hub-1")
        let publisher = try await publisher(harness)
        try await publish(publisher, steps: 0..<100)
        try await waitUntil(timeout: .seconds(60), "the first 2,000 stored") { harness.storedReadings == 2_000 }

        try await limitFileSize(first, "1")
        try await publish(publisher, steps: 100..<1_100)
        #expect(await acknowledged(publisher, within: 30))
        try await waitUntil(timeout: .seconds(30), "the hub sees the failing store") { first.log.contains("the database refuses writes") }
        try await Task.sleep(for: .seconds(1))

        let stopped = ContinuousClock.now
        first.signal(SIGTERM)
        let status = try await first.waitForExit(timeout: 30)
        let shutdown = ContinuousClock.now - stopped
        #expect(status != nil, "the hub must exit by itself: \(first.log.suffix(3000))")
        #expect(status != 0, "a stop that lost messages is not a clean one")
        let bound = IngestSettings().shutdownCommitSeconds
        #expect(shutdown < .seconds(bound + 5), "shutdown took \(shutdown) with ingest.shutdownCommitSeconds = \(bound)")
        let line = try #require(first.log.split(separator: "\n").first { $0.contains("lost_messages=") }, "the loss is logged: \(first.log.suffix(3000))")
        let lost = try #require(Int(line.split(separator: "lost_messages=")[1].prefix { $0.isNumber }))
        #expect(lost >= 1 && lost <= IngestSettings().maxBatch, "lost \(lost); at most ingest.maxBatch (\(IngestSettings().maxBatch)) are held")

        // The broker kept what the hub did not take: a restarted hub (disk freed) stores it.
        let total = 22_000
        let second = try await startHub(harness, name: "hub-2")
        try await waitUntil(timeout: .seconds(90), "the rest stored") { harness.storedReadings >= total - lost }
        try await Task.sleep(for: .seconds(2))
        let stored = harness.storedReadings
        #expect(stored + lost >= total, "stored \(stored) + lost \(lost) must account for all \(total)")
        #expect(stored <= total)
        #expect(try duplicates(harness) == 0)
        print("disk full at SIGTERM: exited with \(status ?? -1) in \(shutdown), \(lost) lost (logged); \(stored) of \(total) stored after the restart")
        second.signal(SIGTERM)
        #expect(try await second.waitForExit() == 0)
        await BlockingWork.run { _ = publisher.stop() }
    }

    /// Defect 3: 3 rounds of 30 payloads of 10 MB each (quarantined as too large) must leave the
    /// hub's memory where it was: at most the queue's 16 MiB and a payload or two while they pass.
    @Test func largePayloadsStayWithinTheMemoryBound() async throws {
        let harness = try IngestHarness(registryCSV: Self.registry)
        let hub = try await startHub(harness, name: "hub")
        let pid = hub.process.processIdentifier
        let publisher = try await publisher(harness)
        try await publish(publisher, steps: 0..<50)
        try await waitUntil(timeout: .seconds(60), "warmed up") { harness.storedReadings == 1_000 }
        try await Task.sleep(for: .seconds(1))
        let baseline = try #require(Self.residentBytes(pid))

        let big = [UInt8](repeating: UInt8(ascii: "x"), count: 10 * 1024 * 1024)
        let peak = Mutex(baseline)
        let sampling = Task.detached {
            while !Task.isCancelled {
                if let rss = Self.residentBytes(pid) { peak.withLock { $0 = max($0, rss) } }
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        var afterRounds: [Int] = []
        for round in 1...3 {
            try await BlockingWork.run { for _ in 0..<30 { try publisher.publish(topic: "meters/sim-1/reading", payload: big) } }
            #expect(await acknowledged(publisher, within: 60))
            try await waitUntil(timeout: .seconds(60), "round \(round) quarantined") {
                try harness.count("SELECT COUNT(*) FROM quarantine WHERE reason = 'payload_too_large'") == 30 * round
            }
            try await Task.sleep(for: .milliseconds(500))
            afterRounds.append(Self.residentBytes(pid) ?? 0)
        }
        sampling.cancel()
        let megabyte = 1024 * 1024
        let peakGrowth = (peak.withLock { $0 } - baseline) / megabyte
        let growth = afterRounds.map { ($0 - baseline) / megabyte }
        print("large payloads: RSS \(baseline / megabyte) MB before, peak +\(peakGrowth) MB, after each round +\(growth.map(String.init).joined(separator: " / +")) MB")
        // The queue holds at most 16 MiB of payload and cuts each oversized one on receipt; the
        // MQTT library's receive buffer and the copy being cut are one payload each.
        #expect(peakGrowth <= 80, "peak RSS grew by \(peakGrowth) MB")
        #expect(growth.allSatisfy { $0 <= 48 }, "RSS after the rounds: +\(growth) MB")
        let kept = try harness.count("SELECT MAX(length(payload)) FROM quarantine")
        #expect(kept <= IngestSettings().quarantinePayloadBytes)
        #expect(try harness.count("SELECT MIN(payload_size) FROM quarantine WHERE reason = 'payload_too_large'") == big.count)
        hub.signal(SIGTERM)
        #expect(try await hub.waitForExit() == 0)
        await BlockingWork.run { _ = publisher.stop() }
    }

    static func residentBytes(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) else { return nil }
        return kilobytes * 1024
    }
}

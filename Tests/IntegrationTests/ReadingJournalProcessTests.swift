import EnergyCore
import EnergyHub
import Foundation
import GRDB
import Prometheus
import HubTestSupport
import HubTools
import HubCore
import Shared
import Testing

/// The reading journal through the real `community-hub serve` (issue 12): a SIGKILL inside the
/// fold loses and doubles nothing, and the savings figures see every reading after the restart;
/// and the WAL stays bounded under ingest and is empty after a clean stop (issue 14, defect 5).
@Suite(.serialized) struct ReadingJournalProcessTests {
    static let devices = 20

    static var registry: String {
        "estate;building;dwelling;device;kind;format;since\n"
            + (1...devices).map { "E;B;D\($0);sim-\($0);meter;canonical;2025-01-01" }.joined(separator: "\n")
    }

    /// Readings `steps` of every device, one a minute from `start`, index 20 Wh a minute.
    func publish(_ publisher: MosquittoClient, steps: Range<Int>, start: Instant) throws {
        for step in steps {
            for device in 1...Self.devices {
                try publisher.publish(topic: "meters/sim-\(device)/reading", payload: canonicalPayload(start.adding(seconds: Int64(step) * 60), Int64(step * 20 + device)))
            }
        }
        #expect(publisher.waitUntilAcknowledged(timeout: .seconds(30)))
    }

    func config(_ directory: URL, _ ingest: String) throws -> [String] {
        let url = directory.appendingPathComponent("config-\(UUID().uuidString.prefix(6)).json")
        try Data("{\"ingest\": {\(ingest)}}".utf8).write(to: url)
        return ["--config", url.path]
    }

    func startHub(_ harness: IngestHarness, name: String, config: [String], environment: [String: String] = [:]) async throws -> HubChild {
        let hub = try HubChild(database: harness.database.path, mqttPort: harness.broker.port, directory: harness.directory, name: name,
                               extraArguments: config, environment: environment)
        try await waitUntil("\(name) connected") { hub.log.contains("connected to the MQTT broker") || !hub.process.isRunning }
        #expect(hub.process.isRunning, "\(hub.log)")
        return hub
    }

    @Test func aSIGKILLInsideTheFoldLosesAndDoublesNothing() async throws {
        let harness = try IngestHarness(registryCSV: Self.registry)
        // Only a full journal folds (2,000 readings), so the test knows which fold it kills.
        let settings = try config(harness.directory, "\"foldRows\": 2000, \"foldIdleMilliseconds\": 600000")
        let publisher = try harness.publisher()
        let start = Instant.now().adding(seconds: -400 * 60)
        @Sendable func folded() throws -> Int { try harness.count("SELECT COUNT(*) FROM reading_by_device") }
        @Sendable func journal() throws -> Int { try harness.count("SELECT COUNT(*) FROM reading_journal") }

        // 1. Folded readings already there: 100 a device, folded by a clean run.
        let first = try await startHub(harness, name: "hub-1", config: settings)
        try publish(publisher, steps: 0..<100, start: start)
        try await waitUntil("the first 2,000 readings folded") { try folded() == 2000 }
        first.signal(SIGTERM)
        #expect(try await first.waitForExit() == 0)

        // 2. 100 more a device; the fold they trigger is killed after its writes, before its commit.
        let second = try await startHub(harness, name: "hub-2", config: settings, environment: ["HUB_DEBUG_FOLD_PAUSE_MS": "60000"])
        try publish(publisher, steps: 100..<200, start: start)
        try await waitUntil(timeout: .seconds(30), "the fold paused before its commit") { second.log.contains("pausing before its commit") }
        second.signal(SIGKILL)
        _ = try await second.waitForExit()
        #expect(try folded() == 2000, "the killed fold's writes were not committed")
        #expect(try journal() == 2000, "the journal is as it was before the fold")
        #expect(try harness.count("SELECT COUNT(*) FROM reading") == 4000, "every committed reading is visible, each once")
        // The journal's list of its devices is as it was too: every device, from its oldest row.
        #expect(try harness.count("SELECT COUNT(*) FROM reading_journal_device") == Self.devices)
        #expect(try harness.count("""
            SELECT COUNT(*) FROM (SELECT device_id, MIN(seq) AS oldest FROM reading_journal GROUP BY device_id) j
            LEFT JOIN reading_journal_device d ON d.device_id = j.device_id WHERE d.first_seq IS NULL OR d.first_seq > j.oldest
            """) == 0)

        // 3. A restart folds what the killed one left; more readings, and 400 already stored again.
        let third = try await startHub(harness, name: "hub-3", config: settings)
        try await waitUntil("the journal folded at start") { try journal() == 0 && folded() == 4000 }
        try publish(publisher, steps: 180..<250, start: start)
        try await waitUntil("5,000 readings stored") { harness.storedReadings == 5000 }
        third.signal(SIGTERM)
        #expect(try await third.waitForExit() == 0)

        #expect(harness.storedReadings == 5000)
        #expect(try harness.count("SELECT COUNT(*) FROM (SELECT device_id, instant FROM reading GROUP BY device_id, instant HAVING COUNT(*) > 1)") == 0)
        #expect(try harness.count("SELECT COUNT(*) FROM quarantine") == 0, "the readings sent again are duplicates, not conflicts")
        for device in 1...Self.devices {
            #expect(try harness.count("SELECT COUNT(*) FROM reading WHERE device_id = 'sim-\(device)'") == 250)
        }

        // The savings figures see every reading: each device's 30-minute slots between its first
        // and last reading are measured, including those of the killed fold's readings.
        let configuration = try EnergySettings().validated()
        _ = try SavingsUpkeep(database: harness.database, configuration: configuration).bringUpToDate(now: .now())
        #expect(try harness.count("SELECT COUNT(*) FROM reading_change") == 0)
        #expect(try harness.count("SELECT COUNT(*) FROM reading_journal") == 0)
        #expect(try harness.count("SELECT COUNT(*) FROM reading_journal_device") == 0, "an empty journal lists no device")
        let grid = configuration.grid
        let firstSlot = grid.slot(startingAtOrAfter: start)
        let lastSlot = grid.slot(containing: start.adding(seconds: 249 * 60))
        for device in 1...Self.devices {
            let measured = try harness.count("SELECT COUNT(*) FROM device_slot WHERE device_id = 'sim-\(device)' AND slot >= \(firstSlot) AND slot < \(lastSlot) AND quality = 1")
            #expect(measured == Int(lastSlot - firstSlot), "sim-\(device): \(measured) of \(lastSlot - firstSlot) slots measured")
        }
        publisher.stop()
    }

    /// A backlog (the hub restarted after an outage): the writer puts its folds off while the burst
    /// lasts, then folds the journal `foldRows` at a time; every reading ends folded, once.
    @Test func aBacklogIsFoldedInChunksOnceItsBurstIsOver() async throws {
        var settings = IngestSettings()
        settings.foldRows = 1000
        let harness = try IngestHarness(registryCSV: Self.registry, settings: settings)
        try await harness.startHub()
        try await harness.stopHub()
        // 6,000 readings queued by the broker for the hub's session while it is stopped.
        let publisher = try harness.publisher()
        try publish(publisher, steps: 0..<300, start: Instant.now().adding(seconds: -400 * 60))
        try await harness.startHub()
        try await waitUntil(timeout: .seconds(60), "the backlog stored and folded") {
            try harness.count("SELECT COUNT(*) FROM reading_by_device") == 6000
        }
        #expect(try harness.count("SELECT COUNT(*) FROM reading_journal") == 0)
        #expect(try harness.count("SELECT COUNT(*) FROM reading_journal_device") == 0)
        #expect(try harness.count("SELECT COUNT(*) FROM reading_change") == Self.devices)
        #expect(try #require(harness.service).totals.stored == 6000)
        var text: [UInt8] = []
        try #require(harness.metrics).emit(into: &text)
        let folds = String(decoding: text, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix("hub_ingest_folds_total ") }
            .flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
        #expect(folds >= 6, "in folds of at most foldRows = 1,000: \(folds)")
        try await harness.stopHub()
        publisher.stop()
    }

    /// A steady stream never leaves the writer idle: the journal is still folded within
    /// `foldMaxAgeSeconds`, so the savings figures follow it.
    @Test func aSteadyStreamIsFoldedWithinTheMaximumAge() async throws {
        var settings = IngestSettings()
        settings.foldIdleMilliseconds = 600_000
        settings.foldMaxAgeSeconds = 1
        let harness = try IngestHarness(registryCSV: Self.registry, settings: settings)
        try await harness.startHub()
        let publisher = try harness.publisher()
        let start = Instant.now().adding(seconds: -100 * 60)
        var foldedWhileStreaming = 0
        for step in 0..<40 {
            try publisher.publish(topic: "meters/sim-1/reading", payload: canonicalPayload(start.adding(seconds: Int64(step) * 60), Int64(step * 20)))
            try await Task.sleep(for: .milliseconds(100))
            foldedWhileStreaming = try harness.count("SELECT COUNT(*) FROM reading_by_device")
        }
        #expect(foldedWhileStreaming >= 20, "folded while the stream went on: \(foldedWhileStreaming) of 40")
        try await waitUntil("all 40 stored") { harness.storedReadings == 40 }
        try await harness.stopHub()
        publisher.stop()
    }

    /// Issue 14, defect 5: the WAL grew to 42 MB beside a 5 MB database and stayed at 27 MB after
    /// a clean stop. 30,000 readings from 500 devices (a page each per batch, before the journal).
    @Test func theWALStaysBoundedAndIsEmptyAfterACleanStop() async throws {
        let devices = 500
        let registry = "estate;building;dwelling;device;kind;format;since\n"
            + (1...devices).map { "E;B;D\($0);w-\($0);meter;canonical;2025-01-01" }.joined(separator: "\n")
        let harness = try IngestHarness(registryCSV: registry)
        let hub = try HubChild(database: harness.database.path, mqttPort: harness.broker.port, directory: harness.directory, name: "hub")
        try await waitUntil("hub connected") { hub.log.contains("connected to the MQTT broker") || !hub.process.isRunning }
        let wal = harness.database.path + "-wal"
        func walSize() -> Int { ((try? FileManager.default.attributesOfItem(atPath: wal)[.size]) as? Int) ?? 0 }
        let publisher = try harness.publisher()
        let start = Instant.now().adding(seconds: -100 * 60)
        let steps = 60
        let publishing = Task.detached {
            for step in 0..<steps {
                for device in 1...devices {
                    try publisher.publish(topic: "meters/w-\(device)/reading", payload: canonicalPayload(start.adding(seconds: Int64(step) * 60), Int64(step * 10 + device)))
                }
            }
        }
        var largest = 0
        let deadline = ContinuousClock.now + .seconds(90)
        while harness.storedReadings < devices * steps && ContinuousClock.now < deadline {
            largest = max(largest, walSize())
            try await Task.sleep(for: .milliseconds(20))
        }
        try await publishing.value
        #expect(harness.storedReadings == devices * steps)
        // Idle, the writer folds; then a checkpoint cuts the WAL back.
        try await Task.sleep(for: .seconds(2))
        largest = max(largest, walSize())
        hub.signal(SIGTERM)
        #expect(try await hub.waitForExit() == 0, "\(hub.log.suffix(2000))")
        #expect(largest <= HubDatabase.walSizeLimitBytes + 4 * 1_048_576, "the WAL reached \(largest / 1_048_576) MB")
        #expect(walSize() == 0, "a clean stop leaves an empty WAL, not \(walSize()) bytes")
        print("WAL at most \(largest / 1024) KiB during 30,000 readings from 500 devices; \(walSize()) bytes after the clean stop")
        publisher.stop()
    }
}

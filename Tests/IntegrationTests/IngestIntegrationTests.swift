import EnergyCore
import EnergyHub
import Foundation
import GRDB
import Logging
import Prometheus
import ServiceLifecycle
import HubTestSupport
import HubCore
import Shared
import Testing
import HubTools

/// The ingest path end to end through a real mosquitto broker on a free loopback port and a real
/// SQLite file: samples, duplicates, persistent sessions, a broker restart.
@Suite(.serialized) struct IngestIntegrationTests {
    let now = Instant.now()

    @Test func theSamplesPublishedEndUpStoredOrQuarantined() async throws {
        let harness = try IngestHarness()
        try await harness.startHub()
        let publisher = try harness.publisher()
        var published = 0
        for name in ["teleinfo2mqtt", "tasmota", "misbehaving"] {
            for sample in try TestSupport.samples(name) {
                // Tasmota's sample clock is 2026-11-27 10:12:54 Paris: make it "now" for the future check.
                var payload = sample.payload
                if sample.topic == "tele/box-0042/SENSOR", payload.contains("2026-11-27T10:12:54") {
                    payload = payload.replacingOccurrences(of: "2026-11-27T10:12:54", with: LocalTimeZone.paris.localDateTime(of: now).description)
                }
                try publisher.publish(topic: sample.topic, payload: Array(payload.utf8))
                published += 1
            }
        }
        for sample in try TestSupport.samples("opendtu") where sample.topic.hasSuffix("yieldtotal") {
            try publisher.publish(topic: sample.topic, payload: Array(sample.payload.utf8))
            published += 1
        }
        #expect(publisher.waitUntilAcknowledged(timeout: .seconds(10)))
        let expected = published
        try await waitUntil("all \(expected) messages handled") {
            (harness.service?.totals.messages ?? 0) == expected
        }
        let stored = try await harness.database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT device_id, energy_wh FROM reading ORDER BY device_id").map { "\($0[0] as String)=\($0[1] as Int64)" }
        }
        #expect(stored == ["021861348497=21403709", "041876000117=4512877", "041876097381=19290594", "116180401234=4512877", "box-0042=19290594"])
        let reasons = try await harness.database.pool.read { db in try String.fetchAll(db, sql: "SELECT reason FROM quarantine ORDER BY id") }
        #expect(reasons == ["index_backwards", "implausible_jump", "device_clock_unset", "malformed_payload", "unknown_device", "not_a_number"])
        publisher.stop()
        try await harness.stopHub()
    }

    @Test func aDuplicateIsStoredOnce() async throws {
        let harness = try IngestHarness()
        try await harness.startHub()
        let publisher = try harness.publisher()
        let payload = canonicalPayload(now.adding(seconds: -60), 1234)
        try publisher.publish(topic: "meters/box-7/reading", payload: payload)
        try publisher.publish(topic: "meters/box-7/reading", payload: payload)
        // A retained copy is delivered again to every new subscription: still one row.
        try publisher.publish(topic: "meters/box-7/reading", payload: payload, qos: 1, retain: true)
        try await waitUntil("three messages handled") { (harness.service?.totals.messages ?? 0) == 3 }
        try await harness.stopHub()
        try await harness.startHub()
        try await waitUntil("the retained copy handled") { (harness.service?.totals.messages ?? 0) >= 1 }
        #expect(harness.storedReadings == 1)
        #expect(harness.service?.totals.duplicates == 1)
        publisher.stop()
        try await harness.stopHub()
    }

    @Test func readingsPublishedWhileTheHubIsStoppedArriveAfterItRestarts() async throws {
        let harness = try IngestHarness()
        try await harness.startHub()
        try await harness.stopHub()
        let publisher = try harness.publisher()
        let start = now.adding(seconds: -3600)
        for minute in 0..<120 {
            try publisher.publish(topic: "meters/box-7/reading", payload: canonicalPayload(start.adding(seconds: Int64(minute) * 30), Int64(1000 + minute * 10)))
        }
        #expect(publisher.waitUntilAcknowledged(timeout: .seconds(10)))
        #expect(harness.storedReadings == 0)
        try await harness.startHub()
        try await waitUntil("the 120 queued readings stored") { harness.storedReadings == 120 }
        publisher.stop()
        try await harness.stopHub()
    }

    @Test func aBrokerRestartedMidStreamLosesNothing() async throws {
        let harness = try IngestHarness()
        try await harness.startHub()
        let publisher = try harness.publisher()
        let total = 3000
        let start = now.adding(seconds: -Int64(total) * 10)
        for index in 0..<total {
            if index == total / 2 {
                try harness.broker.restart()
            }
            try publisher.publish(topic: "meters/box-7/reading", payload: canonicalPayload(start.adding(seconds: Int64(index) * 10), Int64(index * 5)))
        }
        #expect(publisher.waitUntilAcknowledged(timeout: .seconds(30)))
        try await waitUntil(timeout: .seconds(60), "all \(total) readings stored after the broker restart") { harness.storedReadings == total }
        #expect(try harness.count("SELECT COUNT(*) FROM quarantine") == 0)
        publisher.stop()
        try await harness.stopHub()
    }
}

/// When CI starts a broker of its own (`.ci/run` exports HUB_TEST_MQTT_PORT), the hub ingests
/// through it like through a production broker it does not manage; otherwise a broker is started.
@Suite struct ExternalBrokerTests {
    @Test func theHubIngestsThroughAnAlreadyRunningBroker() async throws {
        var ownBroker: BrokerProcess?
        var settings = MQTTSettings()
        if let port = ProcessInfo.processInfo.environment["HUB_TEST_MQTT_PORT"].flatMap(Int.init) {
            settings.port = port
        } else {
            let broker = try BrokerProcess(workingDirectory: try TestSupport.temporaryDirectory("external-broker"), persistence: false)
            try broker.start()
            ownBroker = broker
            settings = broker.clientSettings
        }
        defer { ownBroker?.stop() }
        let device = "ci-\(UUID().uuidString.prefix(8).lowercased())"
        settings.clientId = "hub-\(device)"
        let database = try TestSupport.database()
        _ = try RegistryImporter(database: database).importCSV(Data("estate;building;dwelling;device;kind;format;since\nE;B;D1;\(device);meter;canonical;2025-01-01\n".utf8))
        let service = try IngestService(settings: IngestSettings(), mqtt: settings, mqttPassword: nil, store: SQLiteReadingStore(database: database),
                                        metrics: IngestMetrics(registry: PrometheusCollectorRegistry()), logger: Logger(label: "test"))
        let group = ServiceGroup(configuration: .init(services: [service], logger: Logger(label: "test")))
        let running = Task { try await group.run() }
        // 60 s: in a full run on the 2-core machine the service's start once waited 20 s for a
        // thread of Swift's pool (the broker had been up all along).
        try await waitUntil(timeout: .seconds(60), "hub connected") { service.isConnected }
        var publisherSettings = settings
        publisherSettings.clientId = "pub-\(device)"
        let publisher = MosquittoClient(settings: publisherSettings, password: nil, cleanSession: true, logger: Logger(label: "test"), onMessage: { _ in })
        try publisher.start()
        try await waitUntil("publisher connected") { publisher.isConnected }
        let start = Instant.now().adding(seconds: -600)
        for minute in 0..<10 {
            try publisher.publish(topic: "meters/\(device)/reading", payload: canonicalPayload(start.adding(seconds: Int64(minute) * 60), Int64(100 + minute)))
        }
        try await waitUntil("10 readings stored") { service.totals.stored == 10 }
        publisher.stop()
        await group.triggerGracefulShutdown()
        try await running.value
    }
}

import Foundation
import GRDB
import HubTestSupport
import Logging
import Prometheus
import ServiceLifecycle
import HubCore
import Shared
import Testing
@testable import EnergyCore
@testable import EnergyHub
import HubTools

/// The files in deploy/ work with a real mosquitto: the production configuration starts, and its
/// ACL lets each meter write only its own topics while the hub reads them all.
@Suite struct DeployConfigTests {
    static let deploy = TestSupport.packageRoot.appendingPathComponent("deploy")

    func shell(_ executable: String, _ arguments: [String], in directory: URL) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw HubError.configuration("\(executable) \(arguments) failed") }
    }

    func passwords(in directory: URL, _ users: [(String, String)]) throws -> String {
        let file = directory.appendingPathComponent("passwd").path
        for (index, (user, password)) in users.enumerated() {
            try shell("/usr/bin/mosquitto_passwd", (index == 0 ? ["-c"] : []) + ["-b", file, user, password], in: directory)
        }
        return file
    }

    @Test func productionSettingsKeepQoS1MessagesAndMatchTheHub() throws {
        let text = try String(contentsOf: Self.deploy.appendingPathComponent("mosquitto/mosquitto.conf"), encoding: .utf8)
        func value(_ key: String) -> String? {
            text.split(separator: "\n").first { $0.hasPrefix(key + " ") }.map { String($0.dropFirst(key.count + 1)) }
        }
        #expect(Int(value("max_queued_messages") ?? "") ?? 0 >= 1_000_000, "far above mosquitto's default of 1000, which drops QoS 1 messages")
        #expect(value("persistence") == "true")
        #expect(Int(value("message_size_limit") ?? "") == IngestSettings().maxPayloadBytes)
        #expect(value("allow_anonymous") == "false")
        // The example settings file loads and names only known settings.
        let settings = try SettingsLoader.load(MQTTSettingsFile.self, defaults: MQTTSettingsFile(), file: Self.deploy.appendingPathComponent("community-hub.json").path)
        #expect(settings.mqtt.username == "community-hub")
    }

    /// The part of the hub's settings file this test reads; the CLI test covers the whole file.
    struct MQTTSettingsFile: Codable {
        struct Database: Codable { var path = ""; var synchronous = "full" }
        struct HTTP: Codable {
            var host = "", port = 0, behindProxy = false, secureCookies = false
            var maxConcurrentRequests = 0, maxQueuedRequests = 0, queueTimeoutMilliseconds = 0, shutdownGraceSeconds = 0
        }
        var database = Database()
        var mqtt = MQTTSettings()
        var http = HTTP()
        var ingest = IngestSettings()
    }

    @Test func theProductionConfigurationStartsWithTLSAndPasswords() async throws {
        let directory = try TestSupport.temporaryDirectory("deploy-conf")
        try shell("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=Test CA"], in: directory)
        try shell("/usr/bin/openssl", ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"], in: directory)
        try "subjectAltName=IP:127.0.0.1\n".write(to: directory.appendingPathComponent("san.ext"), atomically: true, encoding: .utf8)
        try shell("/usr/bin/openssl", ["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt",
                                       "-days", "2", "-extfile", "san.ext"], in: directory)
        let passwordFile = try passwords(in: directory, [("community-hub", "hub-secret"), ("box-7", "box-secret")])
        let plain = try BrokerProcess.freeLoopbackPort()
        let tls = try BrokerProcess.freeLoopbackPort()
        var text = try String(contentsOf: Self.deploy.appendingPathComponent("mosquitto/mosquitto.conf"), encoding: .utf8)
        for (from, to) in [("/var/lib/mosquitto/", directory.path + "/"), ("/etc/mosquitto/passwd", passwordFile),
                           ("/etc/mosquitto/community-hub.acl", Self.deploy.appendingPathComponent("mosquitto/community-hub.acl").path),
                           ("/etc/mosquitto/certs/", directory.path + "/"), ("listener 1883 127.0.0.1", "listener \(plain) 127.0.0.1"),
                           ("listener 8883", "listener \(tls) 127.0.0.1")] {
            #expect(text.contains(from), "deploy/mosquitto/mosquitto.conf mentions \(from)")
            text = text.replacingOccurrences(of: from, with: to)
        }
        if geteuid() == 0 { text = "user root\n" + text }
        let config = directory.appendingPathComponent("mosquitto.conf")
        try text.write(to: config, atomically: true, encoding: .utf8)
        let broker = Process()
        broker.executableURL = URL(fileURLWithPath: "/usr/sbin/mosquitto")
        broker.arguments = ["-c", config.path]
        broker.standardError = FileHandle.nullDevice
        try BrokerProcess.runWithDefaultSignalMask(broker)
        defer { kill(broker.processIdentifier, SIGKILL) }
        try await waitUntil(timeout: .seconds(10), "the broker listens") { BrokerProcess.acceptsConnections(port: plain) && BrokerProcess.acceptsConnections(port: tls) }

        var hubSettings = MQTTSettings()
        hubSettings.port = plain
        hubSettings.username = "community-hub"
        let hub = MosquittoClient(settings: hubSettings, password: "hub-secret", clientId: "hub-test", subscriptions: ["meters/+/reading"],
                                  logger: Logger(label: "test"), onMessage: { _ in })
        try hub.start()
        var meterSettings = MQTTSettings()
        meterSettings.port = tls
        meterSettings.username = "box-7"
        meterSettings.tls.caFile = directory.appendingPathComponent("ca.crt").path
        let meter = MosquittoClient(settings: meterSettings, password: "box-secret", clientId: "box-7", cleanSession: true, logger: Logger(label: "test"), onMessage: { _ in })
        try meter.start()
        try await waitUntil(timeout: .seconds(10), "both connected") { hub.isConnected && meter.isConnected }
        hub.stop()
        meter.stop()
    }

    @Test func eachMeterWritesOnlyItsOwnTopicAndTheHubReadsThem() async throws {
        let directory = try TestSupport.temporaryDirectory("deploy-acl")
        let passwordFile = try passwords(in: directory, [("community-hub", "hub-secret"), ("box-7", "box7-secret"), ("box-8", "box8-secret")])
        let broker = try BrokerProcess(workingDirectory: directory.appendingPathComponent("broker"), persistence: false, passwordFile: passwordFile,
                                       extraConfig: ["acl_file \(Self.deploy.appendingPathComponent("mosquitto/community-hub.acl").path)"])
        try broker.start()
        defer { broker.stop() }
        let database = try TestSupport.database()
        _ = try RegistryImporter(database: database).importCSV(Data("""
            estate;building;dwelling;device;kind;format;since
            E;B;D7;box-7;meter;canonical;2025-01-01
            E;B;D8;box-8;meter;canonical;2025-01-01
            """.utf8))
        var hubSettings = broker.clientSettings
        hubSettings.username = "community-hub"
        let service = try IngestService(settings: IngestSettings(), mqtt: hubSettings, mqttPassword: "hub-secret", store: SQLiteReadingStore(database: database),
                                        metrics: IngestMetrics(registry: PrometheusCollectorRegistry()), logger: Logger(label: "test"))
        let group = ServiceGroup(configuration: .init(services: [service], logger: Logger(label: "test")))
        let running = Task { try await group.run() }
        // 60 s: in a full run on the 2-core machine the service's start once waited 20 s for a
        // thread of Swift's pool (the broker had been up all along).
        try await waitUntil(timeout: .seconds(60), "hub connected") { service.isConnected }

        var meterSettings = broker.clientSettings
        meterSettings.username = "box-7"
        let box7 = MosquittoClient(settings: meterSettings, password: "box7-secret", clientId: "box-7", cleanSession: true, logger: Logger(label: "test"), onMessage: { _ in })
        try box7.start()
        try await waitUntil("box-7 connected") { box7.isConnected }
        let now = Instant.now()
        try box7.publish(topic: "meters/box-8/reading", payload: canonicalPayload(now.adding(seconds: -60), 999))
        try box7.publish(topic: "meters/box-7/reading", payload: canonicalPayload(now.adding(seconds: -30), 1000))
        #expect(box7.waitUntilAcknowledged(timeout: .seconds(5)))
        // box-8's message was published first: had the broker let it through, the hub would
        // have had it before box-7's, which is stored now.
        try await waitUntil("box-7's own reading stored") { (try? database.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM reading") }) == 1 }
        let devices = try await database.pool.read { db in try String.fetchAll(db, sql: "SELECT device_id FROM reading") }
        #expect(devices == ["box-7"], "box-7 cannot publish as box-8")
        #expect(service.totals.messages == 1)
        box7.stop()
        await group.triggerGracefulShutdown()
        try await running.value
    }
}

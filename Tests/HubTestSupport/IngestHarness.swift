import EnergyCore
import EnergyHub
import Foundation
import GRDB
import Logging
import Prometheus
import ServiceLifecycle
import HubCore
import Shared
import HubTools

/// A real broker plus the hub's real ingest service (in-process) over a real SQLite file, for
/// integration tests. Nothing is faked: messages go publisher → mosquitto → libmosquitto → SQLite.
public final class IngestHarness: @unchecked Sendable {
    public let directory: URL
    public let broker: BrokerProcess
    public let database: HubDatabase
    public var settings: IngestSettings
    public let logger: Logger
    private var running: (service: IngestService, group: ServiceGroup, task: Task<Void, any Error>, metrics: PrometheusCollectorRegistry)?

    /// Starts a broker (persistence on) and opens a database with the samples' registry.
    public init(registryCSV: String = TestSupport.samplesRegistryCSV, settings: IngestSettings = IngestSettings(), persistence: Bool = true) throws {
        directory = try TestSupport.temporaryDirectory("hub-ingest")
        broker = try BrokerProcess(workingDirectory: directory.appendingPathComponent("broker"), persistence: persistence)
        try broker.start()
        database = try HubDatabase.open(path: directory.appendingPathComponent("hub.sqlite").path,
                                        schemas: [SharedSchema.register, EnergySchema.register], synchronous: .normal)
        _ = try RegistryImporter(database: database).importCSV(Data(registryCSV.utf8))
        self.settings = settings
        var logger = Logger(label: "test-hub")
        logger.logLevel = ProcessInfo.processInfo.environment["TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        self.logger = logger
    }

    deinit {
        broker.kill()
        try? FileManager.default.removeItem(at: directory)
    }

    /// The running ingest service (nil when stopped).
    public var service: IngestService? { running?.service }
    public var metrics: PrometheusCollectorRegistry? { running?.metrics }

    /// Starts the hub's ingest service and waits until it is connected to the broker.
    public func startHub(timeout: Duration = .seconds(30)) async throws {
        let registry = PrometheusCollectorRegistry()
        let service = try IngestService(settings: settings, mqtt: broker.clientSettings, mqttPassword: nil,
                                        store: SQLiteReadingStore(database: database), metrics: IngestMetrics(registry: registry), logger: logger)
        let group = ServiceGroup(configuration: .init(services: [service], logger: logger))
        let task = Task { try await group.run() }
        running = (service, group, task, registry)
        try await waitUntil(timeout: timeout, "hub connected") { service.isConnected }
    }

    /// Graceful stop: the service stops receiving and commits what it holds.
    public func stopHub() async throws {
        guard let running else { return }
        await running.group.triggerGracefulShutdown()
        try await running.task.value
        self.running = nil
    }

    /// A publisher with a persistent session (its unacknowledged QoS 1 messages survive reconnects).
    public func publisher(id: String = "test-publisher-\(UUID().uuidString.prefix(6))") throws -> MosquittoClient {
        let client = MosquittoClient(settings: broker.clientSettings, password: nil, clientId: id, cleanSession: false, logger: logger, onMessage: { _ in })
        try client.start()
        // Wait for the connection: libmosquitto 2.0.11 queues a QoS 1 publish made before the first
        // connection but sends it without its retain flag (seen in aDuplicateIsStoredOnce).
        let deadline = Date().addingTimeInterval(10)
        while !client.isConnected && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        return client
    }

    public func count(_ sql: String) throws -> Int {
        try database.pool.read { db in try Int.fetchOne(db, sql: sql) ?? 0 }
    }

    public var storedReadings: Int { (try? count("SELECT COUNT(*) FROM reading")) ?? -1 }
}

/// Polls until `condition` holds, or throws after `timeout`.
public func waitUntil(timeout: Duration = .seconds(20), _ what: String, _ condition: @Sendable () throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return }
        try await Task.sleep(for: .milliseconds(25))
    }
    if try condition() { return }
    throw HubError(.unavailable, code: "timeout", message: "timed out after \(timeout) waiting for: \(what)")
}

/// A canonical reading payload.
public func canonicalPayload(_ instant: Instant, _ energy: Int64) -> [UInt8] {
    Array("{\"ts\":\"\(instant.rfc3339)\",\"energy_wh\":\(energy)}".utf8)
}

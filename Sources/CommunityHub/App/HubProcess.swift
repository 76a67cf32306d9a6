import EnergyCore
import EnergyHub
import Dispatch
import Foundation
import Hummingbird
import Logging
import Prometheus
import ServiceLifecycle
import HubCore
import Shared
import UnixSignals

/// The composed hub: database, ingest service and HTTP server in one service group.
package struct HubProcess {
    package let settings: HubSettings
    package let database: HubDatabase
    package let ingest: IngestService
    package let savings: SavingsService
    package let retention: RetentionService
    package let dependencies: HubDependencies
    package let logger: Logger

    package init(settings: HubSettings, logger: Logger) throws {
        // Checked once, before anything is opened: a bad setting stops the start with its name.
        let configuration = try settings.configuration()
        self.settings = settings
        self.logger = logger
        database = try HubSchema.open(settings)
        let registry = PrometheusCollectorRegistry()
        var store = SQLiteReadingStore(database: database)
        #if DEBUG
        // For the fold-kill test only, in debug builds and when asked: each fold of the reading
        // journal waits this long before its commit, so the test can kill the process inside it.
        if let pause = ProcessInfo.processInfo.environment["HUB_DEBUG_FOLD_PAUSE_MS"].flatMap(UInt32.init) {
            store.beforeFoldCommit = { [logger] in
                logger.notice("fold of the reading journal written, pausing before its commit (HUB_DEBUG_FOLD_PAUSE_MS)", metadata: ["milliseconds": "\(pause)"])
                usleep(pause * 1000)
            }
        }
        #endif
        ingest = try IngestService(settings: settings.ingest, mqtt: settings.mqtt,
                                   mqttPassword: try settings.mqtt.resolvedPassword(environment: ProcessInfo.processInfo.environment),
                                   store: store, metrics: IngestMetrics(registry: registry), logger: logger)
        savings = try SavingsService(database: database, settings: settings.energy, logger: logger)
        retention = try RetentionService(database: database, settings: settings.energy, logger: logger)
        let ingest = self.ingest
        dependencies = HubDependencies(settings: settings, database: database,
                                       users: SQLiteUserStore(database: database, bcryptCost: UInt8(clamping: settings.auth.bcryptCost)),
                                       readings: store, metrics: registry, brokerConnected: { ingest.isConnected }, zone: configuration.zone)
    }

    package func application(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let logger = self.logger
        let settings = self.settings
        return Application(
            router: buildRouter(dependencies),
            configuration: .init(address: .hostname(settings.http.host, port: settings.http.port), serverName: "community-hub"),
            services: [ServingService(ingest), ServingService(savings), ServingService(retention)],
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? settings.http.port
                logger.info("HTTP listening", metadata: ["address": "http://\(settings.http.host):\(port)"])
                await onServerRunning(port)
            },
            logger: logger
        )
    }

    /// Runs until SIGTERM or SIGINT, then shuts down in bounded time (`serviceGroup`).
    package func run(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let deadline = armShutdownDeadline()
        try await serviceGroup(onServerRunning: onServerRunning).run()
        deadline.disarm()
        await truncateWAL()
    }

    /// After a clean stop (every service ended, ingest committed what it held): the WAL is copied
    /// into the database and cut to zero bytes (issue 14, defect 5).
    package func truncateWAL() async {
        let database = self.database
        let logger = self.logger
        await BlockingWork.run {
            do {
                if try !database.truncateWALBlocking() { logger.warning("WAL not fully checkpointed at shutdown: a reader held it") }
            } catch {
                logger.warning("WAL checkpoint at shutdown failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// The hub's services in one group that shuts down on SIGTERM or SIGINT: the server stops
    /// accepting, requests in flight get `http.shutdownGraceSeconds` to finish, then they are
    /// cancelled and ingest commits what it holds.
    package func serviceGroup(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> ServiceGroup {
        var configuration = ServiceGroupConfiguration(services: [application(onServerRunning: onServerRunning)],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(settings.http.shutdownGraceSeconds)
        return ServiceGroup(configuration: configuration)
    }

    /// The last resort when a handler is stuck where cancellation cannot reach: a few seconds
    /// after the grace period, the cut requests are logged, ingest commits, and the process exits.
    package func armShutdownDeadline() -> ShutdownDeadline {
        let deadline = ShutdownDeadline(after: .seconds(settings.http.shutdownGraceSeconds + 3), inFlight: dependencies.inFlight, logger: logger) { [ingest] in
            ingest.stopAndDrainBlocking()
        }
        deadline.armOnSignals([SIGTERM, SIGINT])
        return deadline
    }
}

/// A long-running service of the hub, run as part of the server: a blocking database call inside
/// it is reported (`BlockingAccessGuard`).
struct ServingService: Service {
    let base: any Service
    init(_ base: any Service) { self.base = base }
    func run() async throws { try await BlockingAccessGuard.serving { try await base.run() } }
}

/// The last resort of a shutdown: armed by the first SIGTERM or SIGINT on a dispatch queue of its
/// own (it fires even if every thread of Swift's pool is stuck), it waits `after`, then logs each
/// request still in flight, runs `beforeExit` (ingest commits what it holds) and exits with
/// status 1. A shutdown that completes in time disarms it.
package final class ShutdownDeadline: @unchecked Sendable {
    private let after: Duration
    private let inFlight: InFlightRequests
    private let logger: Logger
    private let beforeExit: @Sendable () -> Void
    private let queue = DispatchQueue(label: "community-hub.shutdown-deadline")
    private var sources: [any DispatchSourceSignal] = []
    private var armed = false
    private var disarmed = false

    init(after: Duration, inFlight: InFlightRequests, logger: Logger, beforeExit: @escaping @Sendable () -> Void) {
        self.after = after
        self.inFlight = inFlight
        self.logger = logger
        self.beforeExit = beforeExit
    }

    func armOnSignals(_ signals: [Int32]) {
        queue.sync {
            for number in signals {
                let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
                source.setEventHandler { [self] in start() }
                source.resume()
                sources.append(source)
            }
        }
    }

    package func disarm() {
        queue.sync {
            disarmed = true
            for source in sources { source.cancel() }
            sources = []
        }
    }

    /// On the queue: the first signal starts the countdown.
    private func start() {
        guard !armed, !disarmed else { return }
        armed = true
        let seconds = Double(after.components.seconds) + Double(after.components.attoseconds) / 1e18
        queue.asyncAfter(deadline: .now() + seconds) { [self] in
            guard !disarmed else { return }
            let cut = inFlight.describe()
            logger.error("shutdown deadline passed: cutting the requests still in flight and exiting",
                         metadata: ["deadline_seconds": "\(seconds)", "requests_cut": "\(cut.count)"])
            for line in cut { logger.error("cut at shutdown: \(line)") }
            beforeExit()
            logger.error("exited at the shutdown deadline")
            exit(1)
        }
    }
}

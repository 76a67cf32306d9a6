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
    package let engine: Engine
    package let ingest: IngestService
    package let savings: SavingsService
    package let retention: RetentionService
    package let dependencies: HubDependencies
    package let logger: Logger
    /// Held while this process serves the SQLite file, so `community-hub restore` knows (nil when
    /// another process holds it: logged; nil on PostgreSQL, which several processes share).
    package let runningLock: RunningLock?

    /// Where the hub keeps its data.
    package enum Engine: Sendable {
        /// One SQLite file, one process (the embedded default).
        case sqlite(HubDatabase)
        /// A PostgreSQL server, possibly shared by several hub processes.
        case postgres(ServerDatabase)
    }

    /// The parts of a hub process on PostgreSQL.
    package struct ServerDatabase: Sendable {
        package let location: PostgresLocation
        /// The pool HTTP requests use (a service of the process).
        package let postgres: HubPostgres
        /// Blocking sessions for the energy figures.
        package let readers: PostgresReaders
        /// Held by one process at a time among those sharing the server: it runs the savings
        /// upkeep and the retention purge.
        package let lease: BackgroundLease
    }

    /// The SQLite file, or nil on PostgreSQL.
    package var database: HubDatabase? {
        if case .sqlite(let database) = engine { return database }
        return nil
    }

    /// The SQLite file; an error on PostgreSQL (for the commands and tests that only work on it).
    package var sqlite: HubDatabase {
        get throws {
            guard let database else { throw HubError.configuration("this works on the SQLite file only, and database.url names a PostgreSQL server") }
            return database
        }
    }

    package init(settings: HubSettings, logger: Logger) throws {
        // Checked once, before anything is opened: a bad setting stops the start with its name.
        let configuration = try settings.configuration()
        self.settings = settings
        self.logger = logger
        let registry = PrometheusCollectorRegistry()
        let stores: HubStores
        if let location = try settings.database.postgres() {
            logger.info("database: PostgreSQL", metadata: ["database.url": "\(location.description)"])
            let postgres = HubPostgres(location, maximumConnections: settings.database.maxConnections, logger: logger)
            let readers = PostgresReaders(location, connections: max(1, settings.database.maxConnections / 4), logger: logger)
            stores = HubStores.postgres(postgres, readers: readers, settings: settings)
            runningLock = nil
            savings = try SavingsService(upkeep: PostgresSavingsUpkeep(location: location, configuration: configuration.energy, logger: logger),
                                         settings: settings.energy, logger: logger)
            retention = try RetentionService(PostgresRetention(database: postgres, configuration: configuration.energy), settings: settings.energy, logger: logger)
            let background: [any Service] = [savings, retention]
            let lease = BackgroundLease(name: "community-hub background work", location: location, logger: logger) {
                // Both loops run until cancelled: the lease lost, or the process stopping.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for service in background { group.addTask { try await service.run() } }
                    try await group.waitForAll()
                }
            }
            engine = .postgres(ServerDatabase(location: location, postgres: postgres, readers: readers, lease: lease))
        } else {
            let database = try HubSchema.open(settings)
            engine = .sqlite(database)
            runningLock = try RunningLock.acquire(database: settings.database.path)
            if runningLock == nil {
                logger.warning("another process holds the database's running lock: is a second hub serving it?",
                               metadata: ["lock": "\(RunningLock.path(database: settings.database.path))", "holder": "\(RunningLock.holder(database: settings.database.path) ?? "?")"])
            }
            Self.countCorruption(of: database, in: registry, path: settings.database.path, logger: logger)
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
            var sqliteStores = HubStores.sqlite(database, settings: settings)
            sqliteStores.readings = store
            stores = sqliteStores
            savings = try SavingsService(database: database, settings: settings.energy, logger: logger)
            retention = try RetentionService(database: database, settings: settings.energy, logger: logger)
        }
        ingest = try IngestService(settings: settings.ingest, mqtt: settings.mqtt,
                                   mqttPassword: try settings.mqtt.resolvedPassword(environment: ProcessInfo.processInfo.environment),
                                   store: stores.readings, metrics: IngestMetrics(registry: registry), logger: logger)
        let ingest = self.ingest
        dependencies = HubDependencies(settings: settings, stores: stores, metrics: registry, brokerConnected: { ingest.isConnected }, zone: configuration.zone)
    }

    /// A damaged file (start-up check, or "database disk image is malformed" since): logged,
    /// counted, and /readyz answers 503 naming it (issue 14, defect 14).
    private static func countCorruption(of database: HubDatabase, in registry: PrometheusCollectorRegistry, path: String, logger: Logger) {
        let corruptionErrors = registry.makeCounter(descriptor: MetricNameDescriptor(
            metricName: "hub_database_corruption_errors_total", unitName: "",
            helpText: "Errors saying the database file is damaged (start-up quick check, SQLITE_CORRUPT, SQLITE_NOTADB)"))
        let corrupt = registry.makeGauge(descriptor: MetricNameDescriptor(
            metricName: "hub_database_corrupt", unitName: "", helpText: "1 once the database file was found damaged: the hub is not ready"))
        corrupt.set(Int64(0))
        database.health.onCorruption { [logger] problem, count in
            corruptionErrors.increment()
            corrupt.set(Int64(1))
            if count == 1 {
                logger.critical("the database file is damaged: the hub is not ready (/readyz 503). Stop it, run `community-hub db check`, restore the last backup (`community-hub restore`)",
                                metadata: ["database": "\(path)", "problem": "\(problem)"])
            } else if [10, 100, 1000, 10_000, 100_000].contains(count) || count % 1_000_000 == 0 {
                logger.error("the database file is damaged: corruption errors so far", metadata: ["count": "\(count)", "problem": "\(problem)"])
            }
        }
    }

    /// The HTTP server with the hub's services (ingest, savings upkeep, retention), or alone
    /// (`backgroundServices` false: a damaged database, where only `/readyz` and staff's reads make sense).
    package func application(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in },
                             backgroundServices: Bool = true) -> some ApplicationProtocol {
        let logger = self.logger
        let settings = self.settings
        return Application(
            router: buildRouter(dependencies),
            configuration: .init(address: .hostname(settings.http.host, port: settings.http.port), serverName: "community-hub"),
            services: services(backgroundServices: backgroundServices),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? settings.http.port
                logger.info("HTTP listening", metadata: ["address": "http://\(settings.http.host):\(port)"])
                await onServerRunning(port)
            },
            logger: logger
        )
    }

    /// The long-running parts beside the HTTP server. On PostgreSQL the pool comes first (it stops
    /// last), and the savings upkeep and retention run under the background lease.
    func services(backgroundServices: Bool) -> [any Service] {
        switch engine {
        case .sqlite:
            guard backgroundServices else { return [] }
            return [ServingService(ingest), ServingService(savings), ServingService(retention)]
        case .postgres(let server):
            return [PoolService(postgres: server.postgres), ServingService(ingest), ServingService(server.lease)]
        }
    }

    /// Runs until SIGTERM or SIGINT, then shuts down in bounded time (`serviceGroup`).
    /// A damaged database (the start-up check) starts the HTTP server alone: `/readyz` answers 503
    /// naming the damage, and nothing is taken from the broker, which keeps the meters' messages
    /// (persistent session, QoS 1) until the hub starts again on a sound or restored file.
    package func run(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        // A file size limit (`ulimit -f`, systemd's LimitFSIZE) must fail the write (SQLite then
        // reports an I/O error and ingest pauses, as on a full disk), not kill the process with
        // whatever it holds in memory.
        signal(SIGXFSZ, SIG_IGN)
        if case .postgres(let server) = engine {
            try await migrateAtStart(server)
            let deadline = armShutdownDeadline()
            defer { deadline.disarm() }
            try await serviceGroup(onServerRunning: onServerRunning).run()
            await BlockingWork.run { server.readers.close() }
            return
        }
        guard let database else { return }
        await checkIntegrityAtStart()
        let damaged = database.health.corruption != nil
        if damaged {
            logger.critical("the database is damaged: ingest, the savings upkeep and the retention job are not started; the broker keeps the meters' messages until the hub starts on a sound database")
        }
        let deadline = armShutdownDeadline(drainIngest: !damaged)
        defer { deadline.disarm() }
        try await serviceGroup(onServerRunning: onServerRunning, backgroundServices: !damaged).run()
        if !damaged { await truncateWAL() }
    }

    /// After a clean stop (every service ended, ingest committed what it held): the WAL is copied
    /// into the database and cut to zero bytes (issue 14, defect 5).
    package func truncateWAL() async {
        guard let database else { return }
        let logger = self.logger
        await BlockingWork.run {
            do {
                if try !database.truncateWALBlocking() { logger.warning("WAL not fully checkpointed at shutdown: a reader held it") }
            } catch {
                logger.warning("WAL checkpoint at shutdown failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// SQLite's quick check of the whole file before ingest and the server start (readings wait
    /// in the broker meanwhile), bounded by `database.startupCheckSeconds`. A damaged file is
    /// recorded in the database's health (logged, counted, /readyz 503); the hub still starts, so
    /// staff can look at it and nothing more is taken from the broker than it can keep.
    package func checkIntegrityAtStart() async {
        let seconds = settings.database.startupCheckSeconds
        guard seconds > 0, let database else { return }
        do {
            let report = try await BlockingWork.run { try database.checkIntegrityBlocking(timeout: .seconds(seconds)) }
            let elapsed = String(format: "%.2f", report.seconds)
            if report.interrupted {
                logger.warning("the start-up integrity check stopped at its time bound: run `community-hub db check` to check the whole file",
                               metadata: ["seconds": "\(elapsed)", "database.startupCheckSeconds": "\(seconds)"])
            } else if report.ok {
                logger.info("database integrity: quick_check ok", metadata: ["seconds": "\(elapsed)"])
            }
        } catch {
            logger.error("the start-up integrity check could not run", metadata: ["error": "\(error)"])
        }
    }

    /// The hub's services in one group that shuts down on SIGTERM or SIGINT: the server stops
    /// accepting, requests in flight get `http.shutdownGraceSeconds` to finish, then they are
    /// cancelled and ingest commits what it holds.
    package func serviceGroup(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }, backgroundServices: Bool = true) -> ServiceGroup {
        var configuration = ServiceGroupConfiguration(services: [application(onServerRunning: onServerRunning, backgroundServices: backgroundServices)],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(settings.http.shutdownGraceSeconds)
        return ServiceGroup(configuration: configuration)
    }

    /// The last resort when a handler is stuck where cancellation cannot reach: a few seconds
    /// after the grace period, the cut requests are logged, ingest commits, and the process exits.
    package func armShutdownDeadline(drainIngest: Bool = true) -> ShutdownDeadline {
        let deadline = ShutdownDeadline(after: .seconds(settings.http.shutdownGraceSeconds + 3), inFlight: dependencies.inFlight, logger: logger) { [ingest] in
            if drainIngest { ingest.stopAndDrainBlocking() }
        }
        deadline.armOnSignals([SIGTERM, SIGINT])
        return deadline
    }
}

extension HubProcess {
    /// Applies the schema's migrations not yet applied (several processes starting at once apply
    /// each exactly once), before ingest reads its state and the server answers.
    func migrateAtStart(_ server: ServerDatabase) async throws {
        let logger = self.logger
        do {
            let applied = try await HubPostgres(server.location, maximumConnections: 1, logger: logger).withRunning { database in
                try await database.migrate(HubStores.postgresSchema)
            }
            logger.info("database schema up to date", metadata: ["migrations_applied": "\(applied.count)", "database.url": "\(server.location.description)"])
        } catch {
            throw HubError(.unavailable, code: "database_unreachable",
                           message: "cannot prepare the PostgreSQL database \(server.location.description) (setting database.url): \(HubPostgres.serverMessage(error) ?? String(describing: error))")
        }
    }
}

/// PostgreSQL's connection pool as one of the hub's services: it stops at graceful shutdown, after
/// the services listed behind it.
struct PoolService: Service {
    let postgres: HubPostgres
    func run() async throws {
        try await cancelWhenGracefulShutdown { try await postgres.run() }
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

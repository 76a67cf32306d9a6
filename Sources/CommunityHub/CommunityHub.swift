import ArgumentParser
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

@main
struct CommunityHubCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "community-hub",
        abstract: "Community energy and car-share hub: meter readings over MQTT, savings, the association's car.",
        subcommands: [Serve.self, Demo.self, RegistryCommand.self, UsersCommand.self, TokensCommand.self, EnergyCommand.self, CarShareCommand.self, LedgerCommand.self, BenchCommand.self]
    )
}

/// Options every command that touches the database takes.
struct CommonOptions: ParsableArguments {
    @Option(name: .customLong("config"), help: "A JSON settings file (see deploy/community-hub.json).")
    var config: String?

    @Option(name: .customLong("db"), help: "The SQLite database file (default: community-hub.sqlite).")
    var database: String?

    func settings() throws -> HubSettings {
        var settings = try HubSettings.load(file: config)
        if let database { settings.database.path = database }
        return settings
    }
}

/// Runs a command body, turning a user's mistake into a message and a non-zero exit status.
func reportingErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as HubError {
        FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
        throw ExitCode(error.exitCode)
    }
}

func bootstrapLogging(defaultLevel: Logger.Level = .info) {
    let level = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? defaultLevel
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Subscribe to the meters, store readings and serve the HTTP API until SIGTERM.")

    @OptionGroup var common: CommonOptions
    @Option(name: .customLong("mqtt-host")) var mqttHost: String?
    @Option(name: .customLong("mqtt-port")) var mqttPort: Int?
    @Option(name: .customLong("http-host")) var httpHost: String?
    @Option(name: .customLong("http-port")) var httpPort: Int?

    func run() async throws {
        bootstrapLogging()
        try await reportingErrors {
            var settings = try common.settings()
            if let mqttHost { settings.mqtt.host = mqttHost }
            if let mqttPort { settings.mqtt.port = mqttPort }
            if let httpHost { settings.http.host = httpHost }
            if let httpPort { settings.http.port = httpPort }
            let hub = try HubProcess(settings: settings, logger: Logger(label: "community-hub"))
            try await hub.run()
        }
    }
}

/// The composed hub: database, ingest service and HTTP server in one service group.
struct HubProcess {
    let settings: HubSettings
    let database: HubDatabase
    let ingest: IngestService
    let savings: SavingsService
    let retention: RetentionService
    let dependencies: HubDependencies
    let logger: Logger

    init(settings: HubSettings, logger: Logger) throws {
        self.settings = settings
        self.logger = logger
        database = try HubSchema.open(settings)
        let registry = PrometheusCollectorRegistry()
        let store = SQLiteReadingStore(database: database)
        ingest = try IngestService(settings: settings.ingest, mqtt: settings.mqtt,
                                   mqttPassword: try settings.mqtt.resolvedPassword(environment: ProcessInfo.processInfo.environment),
                                   store: store, metrics: IngestMetrics(registry: registry), logger: logger)
        savings = try SavingsService(database: database, settings: settings.energy, logger: logger)
        retention = try RetentionService(database: database, settings: settings.energy, logger: logger)
        let ingest = self.ingest
        dependencies = HubDependencies(settings: settings, database: database,
                                       users: UserStore(database: database, bcryptCost: UInt8(clamping: settings.auth.bcryptCost)),
                                       readings: store, metrics: registry, brokerConnected: { ingest.isConnected })
    }

    func application(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
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
    func run(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let deadline = armShutdownDeadline()
        try await serviceGroup(onServerRunning: onServerRunning).run()
        deadline.disarm()
    }

    /// The hub's services in one group that shuts down on SIGTERM or SIGINT: the server stops
    /// accepting, requests in flight get `http.shutdownGraceSeconds` to finish, then they are
    /// cancelled and ingest commits what it holds.
    func serviceGroup(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> ServiceGroup {
        var configuration = ServiceGroupConfiguration(services: [application(onServerRunning: onServerRunning)],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(settings.http.shutdownGraceSeconds)
        return ServiceGroup(configuration: configuration)
    }

    /// The last resort when a handler is stuck where cancellation cannot reach: a few seconds
    /// after the grace period, the cut requests are logged, ingest commits, and the process exits.
    func armShutdownDeadline() -> ShutdownDeadline {
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
final class ShutdownDeadline: @unchecked Sendable {
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

    func disarm() {
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

struct RegistryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "registry", abstract: "The estates, buildings, dwellings and devices.",
                                                    subcommands: [Import.self])

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import the registry CSV (; separated, header estate;building;dwelling;device;kind;format;since[;tariff;share;until]). All or nothing.")

        @OptionGroup var common: CommonOptions
        @Argument(help: "The CSV file.") var file: String

        func run() async throws {
            try await reportingErrors {
                let database = try HubSchema.open(try common.settings())
                let summary = try RegistryImporter(database: database).importFile(at: file)
                print(summary.description)
            }
        }
    }
}

struct UsersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "users", abstract: "People who use the API.", subcommands: [Add.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a user; the password is read from standard input (first line).")

        @OptionGroup var common: CommonOptions
        @Argument(help: "The user's name (their login).") var name: String
        @Option(help: "staff, association, driver or resident.") var role: String
        @Option(help: "The resident's dwelling.") var dwelling: String?
        @Option(help: "The association user's estate.") var estate: String?

        func run() async throws {
            try await reportingErrors {
                guard let role = Role(rawValue: role.lowercased()) else {
                    throw HubError.badRequest(field: "role", "role must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                let settings = try common.settings()
                let database = try HubSchema.open(settings)
                if isatty(0) != 0 { FileHandle.standardError.write(Data("Password for \(name): ".utf8)) }
                guard let password = readLine(strippingNewline: true), !password.isEmpty else {
                    throw HubError.badRequest(field: "password", "no password on standard input")
                }
                try UserStore(database: database, bcryptCost: UInt8(clamping: settings.auth.bcryptCost))
                    .add(name: name, role: role, dwelling: dwelling, estate: estate, password: password, at: Instant.now())
                print("added \(role.rawValue) \(name)")
            }
        }
    }
}

struct TokensCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokens", abstract: "Bearer tokens for the API.", subcommands: [Create.self, List.self, Revoke.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A user's tokens (label, created, expires, state); never the tokens themselves.")

        @OptionGroup var common: CommonOptions
        @Argument(help: "The user's name.") var name: String

        func run() async throws {
            try await reportingErrors {
                let now = Instant.now()
                let tokens = try UserStore(database: try HubSchema.open(try common.settings())).tokens(of: name)
                print("label            created                expires                state")
                for token in tokens {
                    print([token.label.padding(toLength: 16, withPad: " ", startingAt: 0), token.createdAt.rfc3339.padding(toLength: 22, withPad: " ", startingAt: 0),
                           (token.expiresAt?.rfc3339 ?? "never").padding(toLength: 22, withPad: " ", startingAt: 0), token.state(at: now)].joined(separator: " "))
                }
                if tokens.isEmpty { print("(no tokens)") }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke every live token of a user (or those with --label): a lost phone, a volunteer leaving.")

        @OptionGroup var common: CommonOptions
        @Argument(help: "The user's name.") var name: String
        @Option(help: "Only the tokens with this label (\"session\" for web logins, \"cli\" by default for created ones).") var label: String?

        func run() async throws {
            try await reportingErrors {
                let count = try UserStore(database: try HubSchema.open(try common.settings())).revokeTokens(of: name, label: label, at: Instant.now())
                print("revoked \(count) token\(count == 1 ? "" : "s") of \(name)")
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a bearer token for a user and print it (only its hash is stored).")

        @OptionGroup var common: CommonOptions
        @Argument(help: "The user's name.") var name: String
        @Option(help: "What the token is for.") var label: String = "cli"
        @Option(name: .customLong("expires-days"), help: "Days until it expires (default: never).") var expiresDays: Int?

        func run() async throws {
            try await reportingErrors {
                let database = try HubSchema.open(try common.settings())
                let now = Instant.now()
                let token = try await UserStore(database: database).createToken(for: name, label: label,
                                                                          expiresAt: expiresDays.map { now.adding(seconds: Int64($0) * 86_400) }, at: now)
                print(token)
            }
        }
    }
}

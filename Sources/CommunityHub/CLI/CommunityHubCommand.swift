import ArgumentParser
import EnergyCore
import EnergyHub
import Foundation
import Hummingbird
import Logging
import Prometheus
import ServiceLifecycle
import HubCore
import Shared
import UnixSignals
import HubApp
import HubTools

package struct CommunityHubCommand: AsyncParsableCommand {
    package init() {}

    package static let configuration = CommandConfiguration(
        commandName: "community-hub",
        abstract: "Community energy and car-share hub: meter readings over MQTT, savings, the association's car.",
        subcommands: [Serve.self, ToolCommands.demo, RegistryCommand.self, UsersCommand.self, TokensCommand.self, EnergyCommand.self, CarShareCommand.self, LedgerCommand.self, StatementsCommand.self, DatabaseCommand.self,
                      BackupCommand.self, RestoreCommand.self, ToolCommands.bench]
    )
}

/// Options every command that touches the database takes.
struct CommonOptions: ParsableArguments {
    @Option(name: .customLong("config"), help: "A JSON settings file (see deploy/community-hub.json).")
    var config: String?

    @Option(name: .customLong("db"), help: "The SQLite database file (default: community-hub.sqlite).")
    var database: String?

    @Option(name: .customLong("database-url"), help: "The PostgreSQL server instead of the SQLite file: postgres://USER@HOST:PORT/DATABASE (password: HUB_DATABASE_PASSWORD).")
    var databaseURL: String?

    func settings() throws -> HubSettings {
        var settings = try HubSettings.load(file: config)
        if let database { settings.database.path = database }
        if let databaseURL {
            settings.database.url = databaseURL
            _ = try settings.database.postgres()
        }
        return settings
    }

    /// The server database for a command that keeps its store (the car share's, the registry's):
    /// the pool runs in the background until the command exits, on a schema brought up to date;
    /// nil on the SQLite file.
    func runningPostgres(_ settings: HubSettings) async throws -> HubPostgres? {
        guard let location = try settings.database.postgres() else { return nil }
        let postgres = HubPostgres(location, maximumConnections: 2, logger: Logger(label: "community-hub"))
        Task { try? await postgres.run() }
        // The pool's run starts first (a lease before it is logged as a warning).
        try await Task.sleep(for: .milliseconds(20))
        do {
            try await postgres.migrate(HubStores.postgresSchema)
        } catch {
            throw HubError(.unavailable, code: "database_unreachable",
                           message: "PostgreSQL \(location.description) (setting database.url): \(HubPostgres.describe(error))")
        }
        return postgres
    }

    /// Runs `body` over the stores of the database the settings name: the SQLite file, or the
    /// PostgreSQL server (its schema brought up to date first, as `serve` does).
    func withStores<T: Sendable>(_ body: @escaping @Sendable (HubStores, HubSettings) async throws -> T) async throws -> T {
        let settings = try self.settings()
        _ = try settings.configuration()
        guard let location = try settings.database.postgres() else {
            return try await body(HubStores.sqlite(try HubSchema.open(settings), settings: settings), settings)
        }
        let logger = Logger(label: "community-hub")
        do {
            return try await HubPostgres(location, maximumConnections: 2, logger: logger).withRunning { postgres in
                try await postgres.migrate(HubStores.postgresSchema)
                let readers = PostgresReaders(location, connections: 1, logger: logger)
                defer { Thread { readers.close() }.start() }
                return try await body(HubStores.postgres(postgres, readers: readers, settings: settings), settings)
            }
        } catch let error as HubError {
            throw error
        } catch {
            throw HubError(.unavailable, code: "database_unreachable",
                           message: "PostgreSQL \(location.description) (setting database.url): \(HubPostgres.serverMessage(error) ?? String(describing: error))")
        }
    }
}


struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Subscribe to the meters, store readings and serve the HTTP API until SIGTERM.")

    @OptionGroup var common: CommonOptions
    @Option(name: .customLong("mqtt-host")) var mqttHost: String?
    @Option(name: .customLong("mqtt-port")) var mqttPort: Int?
    @Option(name: .customLong("http-host")) var httpHost: String?
    @Option(name: .customLong("http-port")) var httpPort: Int?
    @Option(name: .customLong("mqtt-client-id"), help: "This process's MQTT client id (each of several hub processes needs its own).") var mqttClientID: String?

    func run() async throws {
        bootstrapLogging()
        try await reportingErrors {
            var settings = try common.settings()
            if let mqttHost { settings.mqtt.host = mqttHost }
            if let mqttPort { settings.mqtt.port = mqttPort }
            if let httpHost { settings.http.host = httpHost }
            if let httpPort { settings.http.port = httpPort }
            if let mqttClientID { settings.mqtt.clientId = mqttClientID }
            let hub = try HubProcess(settings: settings, logger: Logger(label: "community-hub"))
            try await hub.run()
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
                guard let data = FileManager.default.contents(atPath: file) else {
                    throw HubError.badRequest(field: "file", code: "unreadable", "cannot read \(file)")
                }
                let summary = try await common.withStores { stores, _ in
                    try await stores.energy.get().registry.importRegistry(csv: data, by: .commandLine)
                }
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
                _ = try common.settings()
                if isatty(0) != 0 { FileHandle.standardError.write(Data("Password for \(name): ".utf8)) }
                guard let password = readLine(strippingNewline: true), !password.isEmpty else {
                    throw HubError.badRequest(field: "password", "no password on standard input")
                }
                let (name, dwelling, estate) = (name, dwelling, estate)
                try await common.withStores { stores, _ in
                    try await stores.users.add(name: name, role: role, dwelling: dwelling, estate: estate, password: password, by: .commandLine, at: Instant.now())
                }
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
                let name = name
                let tokens = try await common.withStores { stores, _ in try await stores.users.tokens(of: name, by: .commandLine) }
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
                let (name, label) = (name, label)
                let count = try await common.withStores { stores, _ in
                    try await stores.users.revokeTokens(of: name, label: label, by: .commandLine, at: Instant.now())
                }
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
                let now = Instant.now()
                let (name, label, expiresAt) = (name, label, expiresDays.map { now.adding(seconds: Int64($0) * 86_400) })
                let token = try await common.withStores { stores, _ in
                    try await stores.users.createToken(for: name, label: label, expiresAt: expiresAt, by: .commandLine, at: now)
                }
                print(token)
            }
        }
    }
}

/// `community-hub db check`: SQLite's integrity check of the database file, for staff (issue 14,
/// defect 14). Read-only and without migrating, so it runs on a file the hub cannot open, and
/// beside a running hub.
struct DatabaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "db", abstract: "The database file.", subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: """
            Check the database file with SQLite's quick_check (--full: integrity_check, which also compares every index with its table); \
            exit 65 with the problems found when it is damaged.
            """)
        @OptionGroup var common: CommonOptions
        @Flag(help: "integrity_check instead of quick_check: slower, also checks that every index matches its table.") var full = false

        func run() async throws {
            try await reportingErrors {
                let settings = try common.settings()
                let path = settings.database.path
                let full = self.full
                let report = try await BlockingWork.run { try HubDatabase.checkFile(path: path, full: full) }
                let size = ((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0) / 1_048_576
                let elapsed = String(format: "%.2f", report.seconds)
                guard report.ok else {
                    for problem in report.problems { FileHandle.standardError.write(Data("  \(problem)\n".utf8)) }
                    throw HubError(.unprocessable, code: "database_corrupt", field: "database", message: """
                        the database \(path) is damaged (\(report.kind) found \(report.problems.count)\(report.problems.count >= IntegrityCheck.maxProblems ? "+" : "") problems, \
                        above): stop the hub and restore the last backup (community-hub restore FILE)
                        """)
                }
                print("database ok: \(path), \(size) MiB, \(report.kind) passed in \(elapsed) s")
            }
        }
    }
}

/// `community-hub backup --out FILE`: an online, consistent copy while the hub runs.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "backup", abstract: """
        Copy the database (SQLite's online backup API: one consistent snapshot, ingest goes on) to FILE, checked, and the ledger's \
        anchors to FILE.anchors. Keep both.
        """)
    @OptionGroup var common: CommonOptions
    @Option(help: "The backup file to write (it must not exist).") var out: String

    func run() async throws {
        try await reportingErrors {
            let settings = try common.settings()
            _ = try settings.configuration()
            let out = self.out
            let report = try await BlockingWork.run { try DatabaseBackup.backup(settings: settings, out: out) }
            print("backup written: \(report.path) (\(report.bytes / 1024) KiB, \(report.readings) readings, \(report.ledgerEntries) ledger entries, "
                  + "quick_check ok) and \(DatabaseBackup.anchorsPath(ofBackup: report.path)) (\(report.anchors) anchors) in \(String(format: "%.2f", report.seconds)) s")
        }
    }
}

/// `community-hub restore FILE`: the backup back in the database's place.
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "restore", abstract: """
        Put a backup (FILE and FILE.anchors) in the place of the database: the backup is checked first; the replaced database and \
        anchors are kept beside, renamed .replaced-<time>. Refused while a hub runs on the database unless --force.
        """)
    @OptionGroup var common: CommonOptions
    @Argument(help: "The backup file (written by community-hub backup).") var file: String
    @Flag(help: "Replace the database even though a hub is running on it (through SQLite, in one transaction); restart the hub after.") var force = false

    func run() async throws {
        try await reportingErrors {
            let settings = try common.settings()
            _ = try settings.configuration()
            let (file, force) = (self.file, self.force)
            let report = try await BlockingWork.run { try DatabaseBackup.restore(settings: settings, from: file, force: force) }
            print("restored \(report.database) from \(file): \(report.readings) readings, \(report.ledgerEntries) ledger entries, \(report.anchors) anchors")
            for aside in report.keptAside { print("kept the replaced file as \(aside)") }
            if report.replacedUnderARunningHub { print("a hub was running on it: restart it now (systemctl restart community-hub)") }
            print("next: community-hub ledger verify")
        }
    }
}

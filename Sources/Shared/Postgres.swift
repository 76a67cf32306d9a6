import Foundation
import HubCore
import Logging
import NIOCore
import NIOSSL
import PostgresNIO
import ServiceLifecycle

/// Where the server database is: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|prefer|require]`
/// (the form libpq and every PostgreSQL tool accept; `database.url` in the settings, `--database-url`).
public struct PostgresLocation: Sendable, Equatable {
    public enum TLSMode: String, Sendable, Equatable {
        case disable, prefer, require
    }

    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var tls: TLSMode

    public init(host: String, port: Int = 5432, user: String, password: String? = nil, database: String, tls: TLSMode = .prefer) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.tls = tls
    }

    /// Reads a URL, naming what is wrong with it (the message goes to a person setting up the hub).
    public init(url text: String) throws {
        guard let components = URLComponents(string: text), let scheme = components.scheme, ["postgres", "postgresql"].contains(scheme) else {
            throw HubError.configuration("setting database.url: '\(Self.redacted(text))' is not a PostgreSQL URL: write postgres://USER:PASSWORD@HOST:PORT/DATABASE")
        }
        guard let host = components.host, !host.isEmpty else {
            throw HubError.configuration("setting database.url: the PostgreSQL URL names no host: write postgres://USER:PASSWORD@HOST:PORT/DATABASE")
        }
        guard let user = components.user, !user.isEmpty else {
            throw HubError.configuration("setting database.url: the PostgreSQL URL names no user: write postgres://USER:PASSWORD@HOST:PORT/DATABASE")
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else {
            throw HubError.configuration("setting database.url: the PostgreSQL URL names no database: write postgres://USER:PASSWORD@HOST:PORT/DATABASE")
        }
        var tls = TLSMode.prefer
        for item in components.queryItems ?? [] where item.name == "sslmode" {
            switch item.value ?? "" {
            case "disable": tls = .disable
            case "allow", "prefer": tls = .prefer
            case "require", "verify-ca", "verify-full": tls = .require
            default:
                throw HubError.configuration("setting database.url: sslmode '\(item.value ?? "")' is not one of disable, prefer, require")
            }
        }
        self.init(host: host, port: components.port ?? 5432, user: user.removingPercentEncoding ?? user,
                  password: components.password.map { $0.removingPercentEncoding ?? $0 },
                  database: database.removingPercentEncoding ?? database, tls: tls)
    }

    /// The URL without its password, for logs and messages.
    public var description: String { "postgres://\(user)@\(host):\(port)/\(database)" }

    static func redacted(_ text: String) -> String {
        guard var components = URLComponents(string: text), components.password != nil else { return text }
        components.password = "***"
        return components.string ?? "***"
    }

    /// This location with another database on the same server (tests make one per case).
    public func with(database: String) -> PostgresLocation {
        var copy = self
        copy.database = database
        return copy
    }
}

/// A named schema change for the server database: applied once, in order, each in its own
/// transaction (PostgreSQL's DDL is transactional), recorded in `hub_migration`. Released
/// migrations are never edited, as for SQLite's.
public struct PostgresMigration: Sendable {
    public var name: String
    public var sql: String

    public init(_ name: String, _ sql: String) {
        self.name = name
        self.sql = sql
    }

    /// Splits a migration's SQL into its statements at the semicolons outside quotes ('...',
    /// "..."), dollar quotes ($$...$$, $body$...$body$, as PL/pgSQL functions are written) and comments.
    public static func statements(_ sql: String) -> [String] {
        let characters = Array(sql.unicodeScalars)
        var statements: [String] = []
        var current = String.UnicodeScalarView()
        var index = 0
        func flush() {
            let text = String(current).trimmingCharacters(in: .whitespacesAndNewlines)
            if !text.isEmpty { statements.append(text) }
            current = String.UnicodeScalarView()
        }
        while index < characters.count {
            let character = characters[index]
            switch character {
            case "'", "\"":
                // Up to the matching quote (a doubled quote stays inside).
                current.append(character)
                index += 1
                while index < characters.count {
                    current.append(characters[index])
                    if characters[index] == character {
                        if index + 1 < characters.count, characters[index + 1] == character {
                            current.append(characters[index + 1])
                            index += 2
                            continue
                        }
                        break
                    }
                    index += 1
                }
                index += 1
            case "-" where index + 1 < characters.count && characters[index + 1] == "-":
                while index < characters.count, characters[index] != "\n" { index += 1 }
            case "$":
                // A dollar quote's tag: $$ or $name$ (a $1 parameter is not one).
                var end = index + 1
                while end < characters.count, characters[end] == "_" || characters[end].properties.isAlphabetic { end += 1 }
                guard end < characters.count, characters[end] == "$" else {
                    current.append(character)
                    index += 1
                    continue
                }
                let tag = Array(characters[index...end])
                current.unicodeScalars(append: tag)
                index = end + 1
                while index < characters.count {
                    if characters[index] == "$", index + tag.count <= characters.count, Array(characters[index..<(index + tag.count)]) == tag {
                        current.unicodeScalars(append: tag)
                        index += tag.count
                        break
                    }
                    current.append(characters[index])
                    index += 1
                }
            case ";":
                flush()
                index += 1
            default:
                current.append(character)
                index += 1
            }
        }
        flush()
        return statements
    }
}

extension String.UnicodeScalarView {
    fileprivate mutating func unicodeScalars(append scalars: [Unicode.Scalar]) {
        for scalar in scalars { append(scalar) }
    }
}

/// The hub's server database: a pool of connections to PostgreSQL (postgres-nio), the
/// migrations, and transactions that give back the error their body threw.
///
/// The pool only hands out connections while `run()` is running: the hub runs it as one of its
/// services; `withRunning` does it for a command or a test.
public final class HubPostgres: Sendable, Service {
    public let client: PostgresClient
    public let location: PostgresLocation
    public let logger: Logger

    public init(_ location: PostgresLocation, maximumConnections: Int = 20, logger: Logger = Logger(label: "hub.postgres")) {
        var configuration = PostgresClient.Configuration(host: location.host, port: location.port, username: location.user,
                                                         password: location.password, database: location.database,
                                                         tls: Self.tls(location.tls))
        configuration.options.maximumConnections = maximumConnections
        configuration.options.connectTimeout = .seconds(10)
        self.client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.location = location
        self.logger = logger
    }

    static func tls(_ mode: PostgresLocation.TLSMode) -> PostgresClient.Configuration.TLS {
        switch mode {
        case .disable: return .disable
        case .prefer: return .prefer(.makeClientConfiguration())
        case .require: return .require(.makeClientConfiguration())
        }
    }

    /// Keeps the pool running until the task is cancelled (a `Service` of the hub).
    public func run() async throws {
        await client.run()
    }

    /// Runs `body` with the pool running, then stops it.
    @discardableResult
    public func withRunning<T: Sendable>(_ body: @Sendable (HubPostgres) async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await self.client.run() }
            defer { group.cancelAll() }
            // The pool's run starts in its task first (a lease before it is logged as a warning).
            try? await Task.sleep(for: .milliseconds(20))
            return try await body(self)
        }
    }

    /// A connection of its own, outside the pool, for a caller that blocks its own thread on it
    /// (the ingest writer): postgres-nio's EventLoopFuture API, waited on off the event loop.
    public func connect(id: Int) -> EventLoopFuture<PostgresConnection> {
        Self.connect(location, id: id, logger: logger)
    }

    /// A connection to `location` outside any pool, with its TLS mode.
    public static func connect(_ location: PostgresLocation, id: Int, logger: Logger) -> EventLoopFuture<PostgresConnection> {
        let eventLoop = PostgresConnection.defaultEventLoopGroup.any()
        let tls: PostgresConnection.Configuration.TLS
        do {
            switch location.tls {
            case .disable: tls = .disable
            case .prefer: tls = .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
            case .require: tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            }
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
        let configuration = PostgresConnection.Configuration(host: location.host, port: location.port, username: location.user,
                                                             password: location.password, database: location.database, tls: tls)
        return PostgresConnection.connect(on: eventLoop, configuration: configuration, id: id, logger: logger)
    }

    // MARK: Transactions

    /// How a transaction sees the others. `serializable` is for the invariants that span rows
    /// (bookings that never overlap, gapless numbers): PostgreSQL aborts one of two conflicting
    /// transactions, and `transaction` runs it again.
    public enum Isolation: String, Sendable {
        case readCommitted = "READ COMMITTED"
        case repeatableRead = "REPEATABLE READ"
        case serializable = "SERIALIZABLE"
    }

    /// Runs `body` in one transaction and commits it; rolls back and gives back `body`'s own error
    /// when it throws. A serialization failure or a deadlock (SQLSTATE 40001, 40P01) is retried up
    /// to `attempts` times, so callers see only their own errors.
    public func transaction<T: Sendable>(_ isolation: Isolation = .readCommitted, readOnly: Bool = false, attempts: Int = 8,
                                         actor: isolated (any Actor)? = #isolation,
                                         _ body: (PostgresConnection) async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await client.withConnection(isolation: actor) { connection in
                    try await Self.transaction(on: connection, isolation, readOnly: readOnly, logger: logger, actor: actor, body)
                }
            } catch where attempt < attempts && Self.isRetryable(error) {
                // A short random wait, so the two conflicting transactions do not meet again at once.
                try await Task.sleep(for: .milliseconds(Int.random(in: 1...(5 * attempt))))
                continue
            }
        }
    }

    /// One transaction on a connection already held.
    public static func transaction<T: Sendable>(on connection: PostgresConnection, _ isolation: Isolation = .readCommitted, readOnly: Bool = false,
                                                logger: Logger, actor: isolated (any Actor)? = #isolation,
                                                _ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await connection.query(PostgresQuery(unsafeSQL: "BEGIN ISOLATION LEVEL \(isolation.rawValue)\(readOnly ? " READ ONLY" : "")"), logger: logger)
        let value: T
        do {
            value = try await body(connection)
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            throw error
        }
        do {
            try await connection.query("COMMIT", logger: logger)
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            throw error
        }
        return value
    }

    /// Reads in one read-only transaction (one snapshot for every query of `body`).
    public func read<T: Sendable>(actor: isolated (any Actor)? = #isolation, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await transaction(.repeatableRead, readOnly: true, actor: actor, body)
    }

    /// The SQLSTATE of a server error ("23505" for a unique violation...), nil for other errors.
    public static func sqlState(_ error: any Error) -> String? {
        (error as? PSQLError)?.serverInfo?[.sqlState]
    }

    /// The server's own message for an error (for logs and the errors the hub maps).
    public static func serverMessage(_ error: any Error) -> String? {
        (error as? PSQLError)?.serverInfo?[.message]
    }

    /// An error as a person reads it in a log: PostgreSQL's SQLSTATE and message, or what went
    /// wrong with the connection (postgres-nio's own description hides both).
    public static func describe(_ error: any Error) -> String {
        guard let psql = error as? PSQLError else { return "\(error)" }
        if let state = psql.serverInfo?[.sqlState] {
            return "PostgreSQL error \(state): \(psql.serverInfo?[.message] ?? "")"
        }
        return "PostgreSQL connection: \(psql.code)"
    }

    /// A serialization failure or a deadlock: the transaction can be run again as it was.
    public static func isRetryable(_ error: any Error) -> Bool {
        ["40001", "40P01"].contains(sqlState(error) ?? "")
    }

    /// The server cannot take writes now: disk full, out of memory or connections, shutting down,
    /// read-only (a standby), or not reachable at all (the ingest writer pauses on these).
    public static func isUnavailable(_ error: any Error) -> Bool {
        if let psql = error as? PSQLError {
            guard let state = psql.serverInfo?[.sqlState] else {
                // No answer from a server: the connection failed or was closed.
                return true
            }
            return state.hasPrefix("53") || state.hasPrefix("57P") || state.hasPrefix("08") || state == "25006" || state == "58030"
        }
        return error is ChannelError || error is IOError
    }

    // MARK: Migrations

    /// A fixed key for the advisory lock under which migrations run: several processes starting at
    /// once apply each migration exactly once, the others wait and then find it applied.
    static let migrationLock: Int64 = 0x4855_425F_4D49_4752  // "HUB_MIGR"

    /// Applies every migration not yet recorded, in order. Returns the names applied now.
    @discardableResult
    public func migrate(_ migrations: [PostgresMigration]) async throws -> [String] {
        let names = migrations.map(\.name)
        if Set(names).count != names.count {
            throw HubError.configuration("two PostgreSQL migrations share a name: \(names)")
        }
        return try await client.withConnection { connection in
            try await connection.query("SELECT pg_advisory_lock(\(Self.migrationLock))", logger: logger)
            do {
                try await connection.query("""
                    CREATE TABLE IF NOT EXISTS hub_migration (
                        name text PRIMARY KEY,
                        applied_at timestamptz NOT NULL DEFAULT now()
                    )
                    """, logger: logger)
                var applied = Set<String>()
                for try await name in try await connection.query("SELECT name FROM hub_migration", logger: logger).decode(String.self) {
                    applied.insert(name)
                }
                var now: [String] = []
                for migration in migrations where !applied.contains(migration.name) {
                    try await Self.transaction(on: connection, logger: logger) { connection in
                        // postgres-nio speaks the extended protocol only, one statement a query.
                        for statement in PostgresMigration.statements(migration.sql) {
                            try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                        }
                        try await connection.query("INSERT INTO hub_migration (name) VALUES (\(migration.name))", logger: logger)
                    }
                    now.append(migration.name)
                    logger.info("applied migration", metadata: ["migration": "\(migration.name)"])
                }
                try await connection.query("SELECT pg_advisory_unlock(\(Self.migrationLock))", logger: logger)
                return now
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.migrationLock))", logger: logger)
                throw error
            }
        }
    }

    /// True when a write can be committed now (for `/readyz`): the server answers within `timeout`
    /// and is not a standby in recovery. An unreachable server is false, not a wait: the pool
    /// keeps trying to connect and a lease would wait for it.
    public func isWritable(timeout: Duration = .seconds(2)) async -> Bool {
        // Not a task group: its end would wait for the check, and a lease waiting for a server that
        // does not answer is not cancelled before the pool's connect timeout. The first of the
        // check and the deadline answers; the check is cancelled and left to finish alone.
        let answer = OneAnswer<Bool>()
        return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            answer.set(continuation)
            let check = Task {
                let writable = (try? await self.transaction { connection in
                    try await connection.scalar("SELECT NOT pg_is_in_recovery()", as: Bool.self, logger: self.logger) ?? false
                }) ?? false
                answer.give(writable)
            }
            Task {
                try? await Task.sleep(for: timeout)
                if answer.give(false) { check.cancel() }
            }
        }
    }
}

/// A continuation resumed once, by whichever answer comes first; an answer given before the
/// continuation is set is kept for it.
final class OneAnswer<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<T, Never>?
    private var early: T?
    private var answered = false

    func set(_ continuation: CheckedContinuation<T, Never>) {
        let kept: T? = lock.withLock {
            guard answered else {
                self.continuation = continuation
                return nil
            }
            defer { early = nil }
            return early
        }
        if let kept { continuation.resume(returning: kept) }
    }

    /// Resumes with `value` unless an answer was given already; true when this one was.
    @discardableResult
    func give(_ value: T) -> Bool {
        let (first, taken): (Bool, CheckedContinuation<T, Never>?) = lock.withLock {
            guard !answered else { return (false, nil) }
            answered = true
            if continuation == nil { early = value }
            defer { continuation = nil }
            return (true, continuation)
        }
        taken?.resume(returning: value)
        return first
    }
}

extension PostgresConnection {
    /// The first column of the first row, or nil when there is no row.
    public func scalar<T: PostgresDecodable & Sendable>(_ query: PostgresQuery, as type: T.Type = T.self, logger: Logger) async throws -> T? {
        for try await value in try await self.query(query, logger: logger).decode(T.self) { return value }
        return nil
    }

    /// Every row of a one-column query.
    public func column<T: PostgresDecodable & Sendable>(_ query: PostgresQuery, as type: T.Type = T.self, logger: Logger) async throws -> [T] {
        var values: [T] = []
        for try await value in try await self.query(query, logger: logger).decode(T.self) { values.append(value) }
        return values
    }
}

extension SharedSchema {
    /// The same tables on the server database, with SQLite's names and columns (one name per
    /// concept in both): instants stay integer milliseconds since 1970 UTC, as in SQLite, so the
    /// code that reads them is the same; text stays text. The stores of every module build on these.
    public static let postgres: [PostgresMigration] = [
        PostgresMigration("shared-1-registry-and-users", """
            CREATE TABLE health_probe (
                id bigint PRIMARY KEY,
                checked_at bigint NOT NULL
            );
            CREATE TABLE estate (
                id text PRIMARY KEY
            );
            CREATE TABLE building (
                id text PRIMARY KEY,
                estate_id text NOT NULL REFERENCES estate(id)
            );
            CREATE INDEX building_by_estate ON building(estate_id);
            CREATE TABLE dwelling (
                id text PRIMARY KEY,
                building_id text NOT NULL REFERENCES building(id)
            );
            CREATE INDEX dwelling_by_building ON dwelling(building_id);
            CREATE TABLE hub_user (
                name text PRIMARY KEY,
                role text NOT NULL CHECK (role IN ('staff', 'association', 'driver', 'resident')),
                dwelling_id text REFERENCES dwelling(id),
                estate_id text REFERENCES estate(id),
                password_hash text NOT NULL,
                created_at bigint NOT NULL,
                must_change_password smallint NOT NULL DEFAULT 0 CHECK (must_change_password IN (0, 1)),
                CHECK ((role = 'resident') = (dwelling_id IS NOT NULL)),
                CHECK ((role = 'association') = (estate_id IS NOT NULL))
            );
            CREATE TABLE api_token (
                token_hash text PRIMARY KEY,
                user_name text NOT NULL REFERENCES hub_user(name),
                label text NOT NULL,
                created_at bigint NOT NULL,
                expires_at bigint,
                revoked_at bigint
            );
            CREATE INDEX api_token_by_user ON api_token(user_name);
            """),
        // SQLite's implicit rowid, which orders a user's tokens made in the same millisecond.
        PostgresMigration("shared-2-api-token-rowid", "ALTER TABLE api_token ADD COLUMN rowid bigint GENERATED ALWAYS AS IDENTITY"),
        // Failed logins, shared by every hub process (`PostgresLoginFailures`); SQLite's single
        // process keeps them in memory.
        PostgresMigration("shared-3-login-failure", """
            CREATE TABLE login_failure (
                kind text NOT NULL CHECK (kind IN ('name', 'address')),
                key text NOT NULL,
                failures bigint NOT NULL,
                last_failure bigint NOT NULL,
                PRIMARY KEY (kind, key)
            );
            CREATE INDEX login_failure_by_time ON login_failure(kind, last_failure);
            """),
    ]
}

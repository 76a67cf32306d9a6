import Foundation
import HubCore
import PostgresNIO

/// Users, passwords (bcrypt) and bearer tokens (only their SHA-256 is stored), on the server
/// database: the same tables, checks and errors as `SQLiteUserStore` (both call `UserRules`).
/// Tokens and sessions live in the database, so any hub process sharing it answers for them.
public struct PostgresUserStore: UserStore {
    public let database: HubPostgres
    public let bcryptCost: UInt8

    public init(database: HubPostgres, bcryptCost: UInt8 = 12) {
        self.database = database
        self.bcryptCost = bcryptCost
    }

    public func add(name: String, role: Role, dwelling: String?, estate: String?, password: String, mustChangePassword: Bool,
                    by identity: Identity, at now: Instant) async throws {
        let name = try UserRules.checkNewAccount(name: name, role: role, dwelling: dwelling, estate: estate, password: password, by: identity)
        let hash = await UserRules.hashPassword(password, cost: bcryptCost)
        let logger = database.logger
        do {
            try await database.transaction { connection in
                if let dwelling, try await !connection.exists("SELECT 1 FROM dwelling WHERE id = \(dwelling)", logger: logger) {
                    throw UserRules.noDwelling(dwelling)
                }
                if let estate, try await !connection.exists("SELECT 1 FROM estate WHERE id = \(estate)", logger: logger) {
                    throw UserRules.noEstate(estate)
                }
                if try await connection.exists("SELECT 1 FROM hub_user WHERE name = \(name)", logger: logger) {
                    throw UserRules.nameTaken(name)
                }
                try await connection.query("""
                    INSERT INTO hub_user (name, role, dwelling_id, estate_id, password_hash, created_at, must_change_password)
                    VALUES (\(name), \(role.rawValue), \(dwelling), \(estate), \(hash), \(now.millisecondsSince1970), \(Self.flag(mustChangePassword)))
                    """, logger: logger)
            }
        } catch where HubPostgres.sqlState(error) == "23505" {
            // Another process added the same name between the check and the insert.
            throw UserRules.nameTaken(name)
        } catch where HubPostgres.sqlState(error) == "23503" {
            // The dwelling or estate went away between the check and the insert.
            throw dwelling.map(UserRules.noDwelling) ?? UserRules.noEstate(estate ?? "")
        }
    }

    public func exists(name: String, by identity: Identity) async throws -> Bool {
        try UserRules.requireReadAccounts(by: identity)
        let logger = database.logger
        return try await database.read { connection in try await connection.exists("SELECT 1 FROM hub_user WHERE name = \(name)", logger: logger) }
    }

    public func createToken(for name: String, label: String, expiresAt: Instant?, by identity: Identity, at now: Instant) async throws -> String {
        try UserRules.requireTokens(.manage, of: name, by: identity)
        let token = UserRules.newToken()
        let logger = database.logger
        do {
            try await database.transaction { connection in
                guard try await connection.exists("SELECT 1 FROM hub_user WHERE name = \(name)", logger: logger) else { throw UserRules.noUser(name) }
                try await connection.query("""
                    INSERT INTO api_token (token_hash, user_name, label, created_at, expires_at)
                    VALUES (\(UserRules.hash(token: token)), \(name), \(label), \(now.millisecondsSince1970), \(expiresAt?.millisecondsSince1970))
                    """, logger: logger)
            }
        } catch where HubPostgres.sqlState(error) == "23503" {
            throw UserRules.noUser(name)
        }
        return token
    }

    public func revoke(token: String, at now: Instant) async throws -> Bool {
        let logger = database.logger
        let hash = UserRules.hash(token: token)
        let instant = now.millisecondsSince1970
        return try await database.transaction { connection in
            try await !connection.column("""
                UPDATE api_token SET revoked_at = \(instant) WHERE token_hash = \(hash) AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > \(instant))
                RETURNING token_hash
                """, as: String.self, logger: logger).isEmpty
        }
    }

    /// A lost phone, a volunteer leaving.
    public func revokeTokens(of name: String, label: String?, by identity: Identity, at now: Instant) async throws -> Int {
        try UserRules.requireTokens(.manage, of: name, by: identity)
        let logger = database.logger
        let instant = now.millisecondsSince1970
        return try await database.transaction { connection in
            guard try await connection.exists("SELECT 1 FROM hub_user WHERE name = \(name)", logger: logger) else { throw UserRules.noUser(name) }
            return try await connection.column("""
                UPDATE api_token SET revoked_at = \(instant)
                WHERE user_name = \(name) AND (\(label)::text IS NULL OR label = \(label)) AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > \(instant))
                RETURNING token_hash
                """, as: String.self, logger: logger).count
        }
    }

    public func tokens(of name: String, by identity: Identity) async throws -> [TokenInfo] {
        try UserRules.requireTokens(.read, of: name, by: identity)
        let logger = database.logger
        return try await database.read { connection in
            guard try await connection.exists("SELECT 1 FROM hub_user WHERE name = \(name)", logger: logger) else { throw UserRules.noUser(name) }
            var tokens: [TokenInfo] = []
            let rows = try await connection.query("""
                SELECT label, created_at, expires_at, revoked_at FROM api_token WHERE user_name = \(name) ORDER BY created_at DESC, rowid DESC
                """, logger: logger)
            for try await (label, createdAt, expiresAt, revokedAt) in rows.decode((String, Int64, Int64?, Int64?).self) {
                tokens.append(TokenInfo(label: label, createdAt: Instant(millisecondsSince1970: createdAt),
                                        expiresAt: expiresAt.map(Instant.init(millisecondsSince1970:)),
                                        revokedAt: revokedAt.map(Instant.init(millisecondsSince1970:))))
            }
            return tokens
        }
    }

    public func identity(forToken token: String, at now: Instant) async throws -> Identity? {
        try await account(forToken: token, at: now)?.identity
    }

    public func verify(name: String, password: String) async throws -> Identity? {
        let logger = database.logger
        let found: (identity: Identity, hash: String)? = try await database.read { connection in
            let rows = try await connection.query("SELECT name, role, dwelling_id, estate_id, password_hash FROM hub_user WHERE name = \(name)", logger: logger)
            for try await (name, role, dwelling, estate, hash) in rows.decode((String, String, String?, String?, String).self) {
                return UserRules.identity(name: name, role: role, dwelling: dwelling, estate: estate).map { ($0, hash) }
            }
            return nil
        }
        guard await UserRules.verify(password, against: found?.hash, cost: bcryptCost), let found else { return nil }
        return found.identity
    }

    public func accounts(by identity: Identity) async throws -> [UserAccount] {
        try UserRules.requireReadAccounts(by: identity)
        let logger = database.logger
        return try await database.read { connection in
            // Byte order, as SQLite sorts text, whatever the database's collation.
            try await Self.accounts(connection.query("""
                SELECT name, role, dwelling_id, estate_id, created_at, must_change_password FROM hub_user ORDER BY role COLLATE "C", name COLLATE "C"
                """, logger: logger))
        }
    }

    public func setPassword(name: String, password: String, mustChange: Bool, by identity: Identity, at now: Instant) async throws {
        try UserRules.checkSetPassword(of: name, password: password, mustChange: mustChange, by: identity)
        let hash = await UserRules.hashPassword(password, cost: bcryptCost)
        let logger = database.logger
        try await database.transaction { connection in
            let changed = try await connection.column("""
                UPDATE hub_user SET password_hash = \(hash), must_change_password = \(Self.flag(mustChange)) WHERE name = \(name) RETURNING name
                """, as: String.self, logger: logger)
            guard changed.count == 1 else { throw UserRules.noUser(name) }
        }
    }

    public func account(forToken token: String, at now: Instant) async throws -> UserAccount? {
        let hash = UserRules.hash(token: token)
        let instant = now.millisecondsSince1970
        let logger = database.logger
        return try await database.read { connection in
            try await Self.accounts(connection.query("""
                SELECT u.name, u.role, u.dwelling_id, u.estate_id, u.created_at, u.must_change_password FROM api_token t JOIN hub_user u ON u.name = t.user_name
                WHERE t.token_hash = \(hash) AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > \(instant))
                """, logger: logger)).first
        }
    }

    private static func accounts(_ rows: PostgresRowSequence) async throws -> [UserAccount] {
        var accounts: [UserAccount] = []
        for try await (name, role, dwelling, estate, createdAt, mustChange) in rows.decode((String, String, String?, String?, Int64, Int16).self) {
            guard let identity = UserRules.identity(name: name, role: role, dwelling: dwelling, estate: estate) else { continue }
            accounts.append(UserAccount(identity: identity, createdAt: Instant(millisecondsSince1970: createdAt), mustChangePassword: mustChange != 0))
        }
        return accounts
    }

    /// `must_change_password` is a smallint 0/1 on the server, as SQLite's integer.
    private static func flag(_ value: Bool) -> Int16 { value ? 1 : 0 }
}

extension PostgresConnection {
    /// Whether a query gives at least one row.
    public func exists(_ query: PostgresQuery, logger: Logger) async throws -> Bool {
        for try await _ in try await self.query(query, logger: logger) { return true }
        return false
    }
}

import Crypto
import Foundation
import GRDB
import HubCore
import HummingbirdBcrypt
import Synchronization

/// Users, passwords (bcrypt) and bearer tokens (only their SHA-256 is stored), in SQLite.
public struct SQLiteUserStore: UserStore {
    public let database: HubDatabase
    public let bcryptCost: UInt8

    public init(database: HubDatabase, bcryptCost: UInt8 = 12) {
        self.database = database
        self.bcryptCost = bcryptCost
    }

    public func add(name: String, role: Role, dwelling: String?, estate: String?, password: String, mustChangePassword: Bool,
                    by identity: Identity, at now: Instant) async throws {
        let name = try UserRules.checkNewAccount(name: name, role: role, dwelling: dwelling, estate: estate, password: password, by: identity)
        let hash = await UserRules.hashPassword(password, cost: bcryptCost)
        try await database.write { db in
            if let dwelling, try !db.exists("SELECT 1 FROM dwelling WHERE id = ?", dwelling) {
                throw UserRules.noDwelling(dwelling)
            }
            if let estate, try !db.exists("SELECT 1 FROM estate WHERE id = ?", estate) {
                throw UserRules.noEstate(estate)
            }
            if try db.exists("SELECT 1 FROM hub_user WHERE name = ?", name) {
                throw UserRules.nameTaken(name)
            }
            try db.execute(sql: """
                INSERT INTO hub_user (name, role, dwelling_id, estate_id, password_hash, created_at, must_change_password) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [name, role.rawValue, dwelling, estate, hash, now.millisecondsSince1970, mustChangePassword])
        }
    }

    public func exists(name: String, by identity: Identity) async throws -> Bool {
        try UserRules.requireReadAccounts(by: identity)
        return try await database.read { db in try db.exists("SELECT 1 FROM hub_user WHERE name = ?", name) }
    }

    public func createToken(for name: String, label: String, expiresAt: Instant?, by identity: Identity, at now: Instant) async throws -> String {
        try UserRules.requireTokens(.manage, of: name, by: identity)
        let token = UserRules.newToken()
        try await database.write { db in
            guard try db.exists("SELECT 1 FROM hub_user WHERE name = ?", name) else {
                throw UserRules.noUser(name)
            }
            try db.execute(sql: "INSERT INTO api_token (token_hash, user_name, label, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [SQLiteUserStore.hash(token: token), name, label, now.millisecondsSince1970, expiresAt?.millisecondsSince1970])
        }
        return token
    }

    public func revoke(token: String, at now: Instant) async throws -> Bool {
        try await database.write { db in
            try db.execute(sql: """
                UPDATE api_token SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)
                """, arguments: [now.millisecondsSince1970, SQLiteUserStore.hash(token: token), now.millisecondsSince1970])
            return db.changesCount > 0
        }
    }

    /// A lost phone, a volunteer leaving.
    public func revokeTokens(of name: String, label: String?, by identity: Identity, at now: Instant) async throws -> Int {
        try UserRules.requireTokens(.manage, of: name, by: identity)
        return try await database.write { db in
            guard try db.exists("SELECT 1 FROM hub_user WHERE name = ?", name) else { throw UserRules.noUser(name) }
            try db.execute(sql: """
                UPDATE api_token SET revoked_at = ?
                WHERE user_name = ? AND (? IS NULL OR label = ?) AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)
                """, arguments: [now.millisecondsSince1970, name, label, label, now.millisecondsSince1970])
            return db.changesCount
        }
    }

    public func tokens(of name: String, by identity: Identity) async throws -> [TokenInfo] {
        try UserRules.requireTokens(.read, of: name, by: identity)
        return try await database.read { db in
            guard try db.exists("SELECT 1 FROM hub_user WHERE name = ?", name) else { throw UserRules.noUser(name) }
            return try Row.fetchAll(db, sql: "SELECT label, created_at, expires_at, revoked_at FROM api_token WHERE user_name = ? ORDER BY created_at DESC, rowid DESC",
                                    arguments: [name]).map { row in
                TokenInfo(label: row["label"], createdAt: Instant(millisecondsSince1970: row["created_at"]),
                          expiresAt: (row["expires_at"] as Int64?).map(Instant.init(millisecondsSince1970:)),
                          revokedAt: (row["revoked_at"] as Int64?).map(Instant.init(millisecondsSince1970:)))
            }
        }
    }

    public func identity(forToken token: String, at now: Instant) async throws -> Identity? {
        let hash = SQLiteUserStore.hash(token: token)
        return try await database.read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT u.name, u.role, u.dwelling_id, u.estate_id FROM api_token t JOIN hub_user u ON u.name = t.user_name
                WHERE t.token_hash = ? AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > ?)
                """, arguments: [hash, now.millisecondsSince1970])
            guard let row, let role = Role(rawValue: row["role"]) else { return nil }
            return Identity(name: row["name"], role: role, dwelling: row["dwelling_id"], estate: row["estate_id"])
        }
    }

    public func verify(name: String, password: String) async throws -> Identity? {
        let found: (identity: Identity, hash: String)? = try await database.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT name, role, dwelling_id, estate_id, password_hash FROM hub_user WHERE name = ?", arguments: [name]),
                  let role = Role(rawValue: row["role"])
            else { return nil }
            return (Identity(name: row["name"], role: role, dwelling: row["dwelling_id"], estate: row["estate_id"]), row["password_hash"])
        }
        guard await UserRules.verify(password, against: found?.hash, cost: bcryptCost), let found else { return nil }
        return found.identity
    }

    /// A hash of the store's own cost for names that do not exist (see `UserRules.dummyHash`).
    public static func dummyHash(cost: UInt8) -> String { UserRules.dummyHash(cost: cost) }

    public func accounts(by identity: Identity) async throws -> [UserAccount] {
        try UserRules.requireReadAccounts(by: identity)
        return try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT name, role, dwelling_id, estate_id, created_at, must_change_password FROM hub_user ORDER BY role, name").compactMap(Self.account)
        }
    }

    public func setPassword(name: String, password: String, mustChange: Bool, by identity: Identity, at now: Instant) async throws {
        try UserRules.checkSetPassword(of: name, password: password, mustChange: mustChange, by: identity)
        let hash = await UserRules.hashPassword(password, cost: bcryptCost)
        try await database.write { db in
            try db.execute(sql: "UPDATE hub_user SET password_hash = ?, must_change_password = ? WHERE name = ?", arguments: [hash, mustChange, name])
            guard db.changesCount == 1 else { throw UserRules.noUser(name) }
        }
    }

    public func account(forToken token: String, at now: Instant) async throws -> UserAccount? {
        let hash = SQLiteUserStore.hash(token: token)
        return try await database.read { db in
            try Row.fetchOne(db, sql: """
                SELECT u.name, u.role, u.dwelling_id, u.estate_id, u.created_at, u.must_change_password FROM api_token t JOIN hub_user u ON u.name = t.user_name
                WHERE t.token_hash = ? AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > ?)
                """, arguments: [hash, now.millisecondsSince1970]).flatMap(Self.account)
        }
    }

    private static func account(_ row: Row) -> UserAccount? {
        guard let role = Role(rawValue: row["role"]) else { return nil }
        return UserAccount(identity: Identity(name: row["name"], role: role, dwelling: row["dwelling_id"], estate: row["estate_id"]),
                       createdAt: Instant(millisecondsSince1970: row["created_at"]), mustChangePassword: row["must_change_password"])
    }

    /// SHA-256 of the token, hex: what the database keeps instead of the token.
    public static func hash(token: String) -> String { UserRules.hash(token: token) }
}

/// What every `UserStore` does the same way whatever its database: the access checks, the checks
/// of a new account and of a password, bcrypt (off the shared pool), tokens and their hash, and
/// the errors a store raises, so the SQLite and PostgreSQL stores answer alike.
enum UserRules {
    /// Checks who adds the account and what it is tied to; returns the name as it is stored (trimmed).
    static func checkNewAccount(name: String, role: Role, dwelling: String?, estate: String?, password: String, by identity: Identity) throws -> String {
        try AccessPolicy.require(identity, .manage, .users, field: "role", "accounts are created by the landlord's staff")
        let name = name.trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty, name.count <= 100 else { throw HubError.badRequest(field: "name", "a user name must be 1 to 100 characters") }
        try checkPassword(password)
        switch role {
        case .resident:
            guard dwelling != nil else { throw HubError.badRequest(field: "dwelling", "a resident must be tied to a dwelling (--dwelling)") }
            guard estate == nil else { throw HubError.badRequest(field: "estate", "a resident is tied to a dwelling, not an estate") }
        case .association:
            guard estate != nil else { throw HubError.badRequest(field: "estate", "an association user must be tied to an estate (--estate)") }
            guard dwelling == nil else { throw HubError.badRequest(field: "dwelling", "an association user is tied to an estate, not a dwelling") }
        case .staff, .driver:
            guard dwelling == nil, estate == nil else {
                throw HubError.badRequest(field: dwelling != nil ? "dwelling" : "estate", "a \(role.rawValue) user is not tied to a dwelling or an estate")
            }
        }
        return name
    }

    static func requireReadAccounts(by identity: Identity) throws {
        try AccessPolicy.require(identity, .read, .users, field: "name", "the list of accounts is for the landlord's staff")
    }

    static func requireTokens(_ action: AccessPolicy.Action, of name: String, by identity: Identity) throws {
        try AccessPolicy.require(identity, action, .tokens(user: name), field: "name", "a user's tokens are theirs and the landlord's staff's")
    }

    /// Someone else's password is the staff's to set (and then it must be changed); one's own, anyone's.
    static func checkSetPassword(of name: String, password: String, mustChange: Bool, by identity: Identity) throws {
        if identity.name != name || mustChange {
            try AccessPolicy.require(identity, .manage, .users, field: "name", "only the landlord's staff set someone else's password")
        }
        try checkPassword(password)
    }

    static func noUser(_ name: String) -> HubError { HubError.notFound(field: "name", "no user named \(name)") }
    static func noDwelling(_ dwelling: String) -> HubError { HubError.notFound(field: "dwelling", "no dwelling \(dwelling) in the registry") }
    static func noEstate(_ estate: String) -> HubError { HubError.notFound(field: "estate", "no estate \(estate) in the registry") }
    static func nameTaken(_ name: String) -> HubError { HubError.conflict(field: "name", code: "exists", "a user named \(name) already exists") }

    /// bcrypt takes tens of milliseconds by design: on its own thread, not the shared pool.
    static func hashPassword(_ password: String, cost: UInt8) async -> String {
        await BlockingWork.run { Bcrypt.hash(password, cost: cost) }
    }

    /// Whether a password matches a stored hash, on its own thread as above. A missing user (nil)
    /// costs the same time, so a wrong name and a wrong password look alike.
    static func verify(_ password: String, against hash: String?, cost: UInt8) async -> Bool {
        let found = hash != nil
        let hash = hash ?? dummyHash(cost: cost)
        let matches = await BlockingWork.run { Bcrypt.verify(password, hash: hash) }
        return found && matches
    }

    /// A hash of the store's own cost for names that do not exist: checking a password against it
    /// takes as long as against a real account's (issue 14, defect 11: a cheaper stand-in told an
    /// attacker which names exist). Made once per cost.
    static func dummyHash(cost: UInt8) -> String {
        if let hash = dummyHashes.withLock({ $0[cost] }) { return hash }
        let hash = Bcrypt.hash("not a real password", cost: cost)
        dummyHashes.withLock { $0[cost] = hash }
        return hash
    }

    private static let dummyHashes = Mutex<[UInt8: String]>([:])

    /// A new bearer token: 32 random bytes, URL-safe base64.
    static func newToken() -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for index in bytes.indices { bytes[index] = generator.next() }
        return "chub_" + Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// What a password must be: bcrypt reads up to the first NUL and at most 72 bytes, so refuse
    /// what it would silently cut.
    static func checkPassword(_ password: String) throws {
        guard password.count >= 8 else { throw HubError.badRequest(field: "password", "a password must have at least 8 characters") }
        guard !password.utf8.contains(0), password.utf8.count <= 72 else {
            throw HubError.badRequest(field: "password", "a password must be at most 72 bytes, without NUL characters")
        }
    }

    /// SHA-256 of the token, hex: what the database keeps instead of the token.
    static func hash(token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { byte in (byte < 16 ? "0" : "") + String(byte, radix: 16) }.joined()
    }

    /// An account as a row gives it (nil for a role the hub does not know).
    static func identity(name: String, role: String, dwelling: String?, estate: String?) -> Identity? {
        Role(rawValue: role).map { Identity(name: name, role: $0, dwelling: dwelling, estate: estate) }
    }
}

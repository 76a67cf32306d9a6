/// Accounts and their tokens (API tokens and browser sessions alike), as the routes, the commands
/// and the demo use them: async, and for a caller whose access `AccessPolicy` decides (staff manage
/// accounts; a user their own tokens). `SQLiteUserStore` (Shared) implements it over the hub's
/// SQLite file; a server database adds another implementation of the same protocol.
public protocol UserStore: Sendable {
    /// Adds an account. Residents need a dwelling, association users an estate; both must exist.
    /// A first password printed for someone else is marked `mustChangePassword`.
    func add(name: String, role: Role, dwelling: String?, estate: String?, password: String, mustChangePassword: Bool, by identity: Identity, at now: Instant) async throws
    /// Whether an account of this name exists.
    func exists(name: String, by identity: Identity) async throws -> Bool
    /// Creates a token for a user and returns it; only its hash is kept.
    func createToken(for name: String, label: String, expiresAt: Instant?, by identity: Identity, at now: Instant) async throws -> String
    /// Revokes one token: its holder logs out. False when it was unknown, already revoked or expired.
    func revoke(token: String, at now: Instant) async throws -> Bool
    /// Revokes every live token of a user (or only those with this label); returns how many.
    func revokeTokens(of name: String, label: String?, by identity: Identity, at now: Instant) async throws -> Int
    /// A user's tokens, newest first, without anything that would let one be used.
    func tokens(of name: String, by identity: Identity) async throws -> [TokenInfo]
    /// The identity behind a token, or nil when it is unknown, revoked or expired.
    func identity(forToken token: String, at now: Instant) async throws -> Identity?
    /// Checks a name and password; returns the identity when they match. An unknown name costs
    /// the same time as a wrong password, so the answer's timing does not tell which names exist.
    func verify(name: String, password: String) async throws -> Identity?

    /// Every account, by name (staff).
    func accounts(by identity: Identity) async throws -> [UserAccount]
    /// Sets a user's password. Staff setting someone's (a first password, a forgotten one) mark it
    /// to be changed at the next login; a user changing their own clears that mark.
    func setPassword(name: String, password: String, mustChange: Bool, by identity: Identity, at now: Instant) async throws
    /// The account behind a token (a browser session), with whether its password must be changed first.
    func account(forToken token: String, at now: Instant) async throws -> UserAccount?
}

extension UserStore {
    /// Adds an account whose password its holder chose (the CLI reads it on standard input).
    public func add(name: String, role: Role, dwelling: String?, estate: String?, password: String, by identity: Identity, at now: Instant) async throws {
        try await add(name: name, role: role, dwelling: dwelling, estate: estate, password: password, mustChangePassword: false, by: identity, at: now)
    }
}

/// An account as staff see it: never its password or tokens.
public struct UserAccount: Sendable, Equatable {
    public var identity: Identity
    public var createdAt: Instant
    /// A first password given on paper, or one reset by staff: the user must choose their own.
    public var mustChangePassword: Bool

    public init(identity: Identity, createdAt: Instant, mustChangePassword: Bool) {
        self.identity = identity
        self.createdAt = createdAt
        self.mustChangePassword = mustChangePassword
    }
}

import Foundation
import GRDB
import HubTestSupport
import HubCore
import Shared
import Testing

@Suite struct UserStoreTests {
    static let now = Instant.parseRFC3339("2026-03-13T09:00:00Z")!

    /// A real database of either kind (SQLite file, PostgreSQL server) with two estates and their
    /// dwellings, and its store hashing at bcrypt cost 4: every test body runs against both.
    static func withUsers(_ backend: Backend, _ body: @escaping @Sendable (BackendDatabase, any UserStore) async throws -> Void) async throws {
        try await BackendDatabase.with(backend) { database in
            try await database.execute("""
                INSERT INTO estate (id) VALUES ('Outreau'), ('Le Portel');
                INSERT INTO building (id, estate_id) VALUES ('OUT-A', 'Outreau'), ('POR-B', 'Le Portel');
                INSERT INTO dwelling (id, building_id) VALUES ('OUT-A-01', 'OUT-A'), ('POR-B-01', 'POR-B');
                """)
            try await body(database, users(database))
        }
    }

    static func users(_ database: BackendDatabase) -> any UserStore {
        if let sqlite = database.sqlite { return SQLiteUserStore(database: sqlite, bcryptCost: 4) }
        return PostgresUserStore(database: database.postgres!, bcryptCost: 4)
    }

    func userCount(_ database: BackendDatabase) async throws -> Int {
        try await database.count("hub_user")
    }

    /// Expects `body` to throw a HubError of this kind naming this field, and to add no user.
    func expectRefused(_ kind: HubError.Kind, field: String, _ database: BackendDatabase, sourceLocation: SourceLocation = #_sourceLocation,
                       _ body: () async throws -> Void) async throws {
        let before = try await userCount(database)
        do {
            try await body()
            Issue.record("expected \(kind) on \(field), got success", sourceLocation: sourceLocation)
        } catch let error as HubError {
            #expect(error.kind == kind && error.field == field, "\(error)", sourceLocation: sourceLocation)
            #expect(!error.message.isEmpty, sourceLocation: sourceLocation)
        } catch {
            Issue.record("not a HubError: \(error)", sourceLocation: sourceLocation)
        }
        #expect(try await userCount(database) == before, "nothing written", sourceLocation: sourceLocation)
    }

    @Test(arguments: Backend.allCases) func eachRoleIsTiedToWhatItNeeds(_ backend: Backend) async throws {
        try await Self.withUsers(backend) { database, users in
            let now = UserStoreTests.now
            try await users.add(name: "staff", role: .staff, dwelling: nil, estate: nil, password: "password-123", by: .testStaff, at: now)
            try await users.add(name: "driver", role: .driver, dwelling: nil, estate: nil, password: "password-123", by: .testStaff, at: now)
            try await users.add(name: "asso", role: .association, dwelling: nil, estate: "Outreau", password: "password-123", by: .testStaff, at: now)
            try await users.add(name: "resident", role: .resident, dwelling: "OUT-A-01", estate: nil, password: "password-123", by: .testStaff, at: now)
            #expect(try await userCount(database) == 4)

            try await expectRefused(.badRequest, field: "dwelling", database) {
                try await users.add(name: "r1", role: .resident, dwelling: nil, estate: nil, password: "password-123", by: .testStaff, at: now)
            }
            try await expectRefused(.badRequest, field: "estate", database) {
                try await users.add(name: "r2", role: .resident, dwelling: "OUT-A-01", estate: "Outreau", password: "password-123", by: .testStaff, at: now)
            }
            try await expectRefused(.badRequest, field: "estate", database) {
                try await users.add(name: "a1", role: .association, dwelling: nil, estate: nil, password: "password-123", by: .testStaff, at: now)
            }
            try await expectRefused(.badRequest, field: "dwelling", database) {
                try await users.add(name: "a2", role: .association, dwelling: "OUT-A-01", estate: "Outreau", password: "password-123", by: .testStaff, at: now)
            }
            for role in [Role.staff, .driver] {
                try await expectRefused(.badRequest, field: "dwelling", database) {
                    try await users.add(name: "x-\(role)", role: role, dwelling: "OUT-A-01", estate: nil, password: "password-123", by: .testStaff, at: now)
                }
                try await expectRefused(.badRequest, field: "estate", database) {
                    try await users.add(name: "y-\(role)", role: role, dwelling: nil, estate: "Outreau", password: "password-123", by: .testStaff, at: now)
                }
            }
            try await expectRefused(.notFound, field: "dwelling", database) {
                try await users.add(name: "r3", role: .resident, dwelling: "OUT-Z-99", estate: nil, password: "password-123", by: .testStaff, at: now)
            }
            try await expectRefused(.notFound, field: "estate", database) {
                try await users.add(name: "a3", role: .association, dwelling: nil, estate: "Atlantis", password: "password-123", by: .testStaff, at: now)
            }
        }
    }

    @Test(arguments: Backend.allCases) func namesAndPasswordsAreChecked(_ backend: Backend) async throws {
        try await Self.withUsers(backend) { database, users in
            let now = UserStoreTests.now
            for name in ["", "   ", String(repeating: "n", count: 101)] {
                try await expectRefused(.badRequest, field: "name", database) {
                    try await users.add(name: name, role: .staff, dwelling: nil, estate: nil, password: "password-123", by: .testStaff, at: now)
                }
            }
            try await expectRefused(.badRequest, field: "password", database) {
                try await users.add(name: "short", role: .staff, dwelling: nil, estate: nil, password: "1234567", by: .testStaff, at: now)
            }
            try await users.add(name: String(repeating: "n", count: 100), role: .staff, dwelling: nil, estate: nil, password: "12345678", by: .testStaff, at: now)
            try await users.add(name: "  padded  ", role: .staff, dwelling: nil, estate: nil, password: "12345678", by: .testStaff, at: now)
            let names = try await database.strings("SELECT name FROM hub_user ORDER BY name")
            #expect(names.contains("padded"), "names are stored trimmed: \(names)")
        }
    }

    @Test(arguments: Backend.allCases) func aDuplicateNameIsAConflict(_ backend: Backend) async throws {
        try await Self.withUsers(backend) { database, users in
            try await users.add(name: "marie", role: .staff, dwelling: nil, estate: nil, password: "password-123", by: .testStaff, at: UserStoreTests.now)
            try await expectRefused(.conflict, field: "name", database) {
                try await users.add(name: "marie", role: .driver, dwelling: nil, estate: nil, password: "another-456", by: .testStaff, at: UserStoreTests.now)
            }
            try await expectRefused(.conflict, field: "name", database) {
                try await users.add(name: " marie ", role: .driver, dwelling: nil, estate: nil, password: "another-456", by: .testStaff, at: UserStoreTests.now)
            }
            do {
                try await users.add(name: "marie", role: .staff, dwelling: nil, estate: nil, password: "password-123", by: .testStaff, at: UserStoreTests.now)
            } catch let error as HubError {
                #expect(error.kind == .conflict && error.code == "exists" && error.exitCode == 75)
            }
            #expect(try await users.verify(name: "marie", password: "password-123")?.role == .staff, "the first user is untouched")
        }
    }

    @Test(arguments: Backend.allCases) func verifiesPasswords(_ backend: Backend) async throws {
        try await Self.withUsers(backend) { database, users in
            try await users.add(name: "resident", role: .resident, dwelling: "OUT-A-01", estate: nil, password: "correct horse", by: .testStaff, at: UserStoreTests.now)
            #expect(try await users.verify(name: "resident", password: "correct horse") == Identity(name: "resident", role: .resident, dwelling: "OUT-A-01"))
            #expect(try await users.verify(name: "resident", password: "correct hors") == nil)
            #expect(try await users.verify(name: "resident", password: "Correct horse") == nil)
            #expect(try await users.verify(name: "resident", password: "") == nil)
            #expect(try await users.verify(name: "nobody", password: "correct horse") == nil)
            let stored = try #require(try await database.strings("SELECT password_hash FROM hub_user").first)
            #expect(!stored.contains("correct horse") && stored.hasPrefix("$2"), "a bcrypt hash, not the password: \(stored)")
        }
    }

    @Test(arguments: Backend.allCases) func onlyTheTokensHashIsStored(_ backend: Backend) async throws {
        try await Self.withUsers(backend) { database, users in
            try await users.add(name: "asso", role: .association, dwelling: nil, estate: "Le Portel", password: "password-123", by: .testStaff, at: UserStoreTests.now)
            let token = try await users.createToken(for: "asso", label: "laptop", expiresAt: nil, by: .testStaff, at: UserStoreTests.now)
            let other = try await users.createToken(for: "asso", label: "phone", expiresAt: nil, by: .testStaff, at: UserStoreTests.now)
            #expect(token != other && token.hasPrefix("chub_") && token.count >= 40)
            #expect(try await users.identity(forToken: token, at: UserStoreTests.now) == Identity(name: "asso", role: .association, estate: "Le Portel"))
            // No cell of the token table holds the token or a large part of it.
            let cells = try await database.strings("""
                SELECT token_hash || ' ' || user_name || ' ' || label || ' ' || created_at || ' ' || COALESCE(expires_at, 0) || ' ' || COALESCE(revoked_at, 0) FROM api_token
                """)
            #expect(cells.count == 2)
            let secret = String(token.dropFirst(5))
            for cell in cells {
                #expect(!cell.contains(secret) && !cell.contains(String(secret.prefix(16))), "\(cell)")
            }
            let hashes = try await database.strings("SELECT token_hash FROM api_token ORDER BY label")
            #expect(hashes == [SQLiteUserStore.hash(token: token), SQLiteUserStore.hash(token: other)])
            #expect(hashes.allSatisfy { $0.count == 64 && $0.allSatisfy(\.isHexDigit) })
        }
    }

    @Test(arguments: Backend.allCases) func tokensExpireAndCanBeRevoked(_ backend: Backend) async throws {
        try await Self.withUsers(backend) { database, users in
            let now = UserStoreTests.now
            try await users.add(name: "driver", role: .driver, dwelling: nil, estate: nil, password: "password-123", by: .testStaff, at: now)
            let expires = now.adding(seconds: 3600)
            let token = try await users.createToken(for: "driver", label: "session", expiresAt: expires, by: .testStaff, at: now)
            #expect(try await users.identity(forToken: token, at: now)?.name == "driver")
            #expect(try await users.identity(forToken: token, at: expires.adding(milliseconds: -1))?.name == "driver")
            #expect(try await users.identity(forToken: token, at: expires) == nil, "expired at its expiry instant")
            #expect(try await users.identity(forToken: token, at: expires.adding(seconds: 86_400)) == nil)
            let lasting = try await users.createToken(for: "driver", label: "cli", expiresAt: nil, by: .testStaff, at: now)
            #expect(try await users.identity(forToken: lasting, at: now.adding(seconds: 10 * 365 * 86_400)) != nil)
            try await database.execute("UPDATE api_token SET revoked_at = \(now.millisecondsSince1970) WHERE token_hash = '\(SQLiteUserStore.hash(token: lasting))'")
            #expect(try await users.identity(forToken: lasting, at: now) == nil, "revoked")
            #expect(try await users.identity(forToken: token + "x", at: now) == nil)
            #expect(try await users.identity(forToken: "", at: now) == nil)
        }
    }

    @Test(arguments: Backend.allCases) func revokingATokenOrAllOfAUsersStopsThemAndNoOthers(_ backend: Backend) async throws {
        try await Self.withUsers(backend) { database, users in
            let now = UserStoreTests.now
            try await users.add(name: "driver", role: .driver, dwelling: nil, estate: nil, password: "password-123", by: .testStaff, at: now)
            try await users.add(name: "staff", role: .staff, dwelling: nil, estate: nil, password: "password-123", by: .testStaff, at: now)
            let session = try await users.createToken(for: "driver", label: "session", expiresAt: now.adding(seconds: 3600), by: .testStaff, at: now)
            let phone = try await users.createToken(for: "driver", label: "phone", expiresAt: nil, by: .testStaff, at: now)
            let tablet = try await users.createToken(for: "driver", label: "tablet", expiresAt: nil, by: .testStaff, at: now)
            let expired = try await users.createToken(for: "driver", label: "old", expiresAt: now.adding(seconds: -1), by: .testStaff, at: now.adding(seconds: -60))
            let staff = try await users.createToken(for: "staff", label: "cli", expiresAt: nil, by: .testStaff, at: now)

            // One token: a logout.
            #expect(try await users.revoke(token: session, at: now))
            #expect(try await users.identity(forToken: session, at: now) == nil)
            #expect(try await !users.revoke(token: session, at: now), "already revoked")
            #expect(try await !users.revoke(token: expired, at: now), "already expired")
            #expect(try await !users.revoke(token: "chub_unknown", at: now))
            #expect(try await users.identity(forToken: phone, at: now)?.name == "driver", "the user's other tokens still work")

            // By label, then all of a user's live tokens; another user's are untouched.
            #expect(try await users.revokeTokens(of: "driver", label: "phone", by: .testStaff, at: now) == 1)
            #expect(try await users.identity(forToken: phone, at: now) == nil)
            #expect(try await users.identity(forToken: tablet, at: now)?.name == "driver")
            #expect(try await users.revokeTokens(of: "driver", label: nil, by: .testStaff, at: now) == 1, "only the tablet was still live")
            #expect(try await users.identity(forToken: tablet, at: now) == nil)
            #expect(try await users.identity(forToken: staff, at: now)?.name == "staff")
            await #expect(throws: HubError.self) { try await users.revokeTokens(of: "ghost", label: nil, by: .testStaff, at: now) }

            // The list says what each token was for and what became of it, never the token.
            let listed = try await users.tokens(of: "driver", by: .testStaff)
            #expect(listed.map(\.label) == ["tablet", "phone", "session", "old"])
            #expect(listed.map { $0.state(at: now) } == ["revoked", "revoked", "revoked", "expired"])
            #expect(try await users.tokens(of: "staff", by: .testStaff).map { $0.state(at: now) } == ["live"])
        }
    }

    /// `AccessPolicy` decides here too: staff add accounts and manage anyone's tokens; a user
    /// manages only their own tokens; a refusal writes nothing.
    @Test(arguments: Backend.allCases) func staffManageAccountsAndEachUserTheirOwnTokens(_ backend: Backend) async throws {
        try await Self.withUsers(backend) { database, users in
            let now = UserStoreTests.now
            try await users.add(name: "asso", role: .association, dwelling: nil, estate: "Outreau", password: "password-123", by: .testStaff, at: now)
            try await users.add(name: "resident", role: .resident, dwelling: "OUT-A-01", estate: nil, password: "password-123", by: .testStaff, at: now)
            let asso = Identity(name: "asso", role: .association, estate: "Outreau")
            let resident = Identity(name: "resident", role: .resident, dwelling: "OUT-A-01")
            try await expectRefused(.forbidden, field: "role", database) {
                try await users.add(name: "friend", role: .resident, dwelling: "OUT-A-01", estate: nil, password: "password-123", by: asso, at: now)
            }
            await #expect(throws: HubError.self) { _ = try await users.exists(name: "asso", by: resident) }
            _ = try await users.createToken(for: "resident", label: "phone", expiresAt: nil, by: resident, at: now)
            await #expect(throws: HubError.self) { _ = try await users.createToken(for: "asso", label: "stolen", expiresAt: nil, by: resident, at: now) }
            await #expect(throws: HubError.self) { _ = try await users.tokens(of: "resident", by: asso) }
            await #expect(throws: HubError.self) { _ = try await users.revokeTokens(of: "resident", label: nil, by: asso, at: now) }
            #expect(try await users.tokens(of: "resident", by: resident).map(\.label) == ["phone"])
            #expect(try await users.revokeTokens(of: "resident", label: nil, by: resident, at: now) == 1)
            #expect(try await database.count("api_token") == 1, "only the resident's own token, now revoked")
        }
    }

    @Test(arguments: Backend.allCases) func aTokenNeedsAnExistingUser(_ backend: Backend) async throws {
        try await Self.withUsers(backend) { database, users in
            do {
                _ = try await users.createToken(for: "ghost", label: "x", expiresAt: nil, by: .testStaff, at: UserStoreTests.now)
                Issue.record("a token for nobody")
            } catch let error as HubError {
                #expect(error.kind == .notFound && error.field == "name")
            }
            #expect(try await database.count("api_token") == 0)
        }
    }

    @Test func identityRequiresARole() throws {
        let resident = Identity(name: "r", role: .resident, dwelling: "OUT-A-01")
        try resident.require(.resident, .staff)
        do {
            try resident.require(.staff)
            Issue.record("a resident passed a staff check")
        } catch let error as HubError {
            #expect(error.kind == .forbidden && error.code == "forbidden" && error.exitCode == 77 && error.message.contains("staff"))
        }
    }
}

extension UserStoreTests {
    @Test(arguments: Backend.allCases) func passwordsBcryptWouldCutAreRefused(_ backend: Backend) async throws {
        try await Self.withUsers(backend) { database, store in
            try await expectRefused(.badRequest, field: "password", database) {
                try await store.add(name: "nul", role: .staff, dwelling: nil, estate: nil, password: String(repeating: "\u{0}", count: 8), by: .testStaff, at: UserStoreTests.now)
            }
            try await expectRefused(.badRequest, field: "password", database) {
                try await store.add(name: "long", role: .staff, dwelling: nil, estate: nil, password: String(repeating: "é", count: 37), by: .testStaff, at: UserStoreTests.now)
            }
            try await store.add(name: "ok", role: .staff, dwelling: nil, estate: nil, password: String(repeating: "a", count: 72), by: .testStaff, at: UserStoreTests.now)
            #expect(try await userCount(database) == 1)
        }
    }
}

extension UserStoreTests {
    /// Accounts as staff list them, and passwords: one set by staff must be changed; the user's own clears that.
    @Test(arguments: Backend.allCases) func accountsAndPasswordsChangedByStaffOrTheirHolder(_ backend: Backend) async throws {
        try await Self.withUsers(backend) { database, users in
            let now = UserStoreTests.now
            try await users.add(name: "Zoé", role: .staff, dwelling: nil, estate: nil, password: "password-123", by: .testStaff, at: now)
            try await users.add(name: "anna", role: .staff, dwelling: nil, estate: nil, password: "password-123", by: .testStaff, at: now)
            try await users.add(name: "asso", role: .association, dwelling: nil, estate: "Outreau", password: "password-123", mustChangePassword: true, by: .testStaff, at: now)
            let accounts = try await users.accounts(by: .testStaff)
            #expect(accounts.map(\.identity.name) == ["asso", "Zoé", "anna"], "by role, then name in byte order")
            #expect(accounts.map(\.mustChangePassword) == [true, false, false])
            #expect(accounts.allSatisfy { $0.createdAt == now })
            let asso = Identity(name: "asso", role: .association, estate: "Outreau")
            await #expect(throws: HubError.self) { _ = try await users.accounts(by: asso) }

            let session = try await users.createToken(for: "asso", label: "session", expiresAt: nil, by: asso, at: now)
            #expect(try await users.account(forToken: session, at: now)?.mustChangePassword == true)
            try await users.setPassword(name: "asso", password: "my-own-secret", mustChange: false, by: asso, at: now)
            #expect(try await users.account(forToken: session, at: now) == UserAccount(identity: asso, createdAt: now, mustChangePassword: false))
            #expect(try await users.verify(name: "asso", password: "my-own-secret") == asso)
            #expect(try await users.verify(name: "asso", password: "password-123") == nil)
            await #expect(throws: HubError.self) { try await users.setPassword(name: "anna", password: "taken-over", mustChange: false, by: asso, at: now) }
            await #expect(throws: HubError.self) { try await users.setPassword(name: "asso", password: "short", mustChange: false, by: asso, at: now) }
            try await users.setPassword(name: "asso", password: "forgotten-1", mustChange: true, by: .testStaff, at: now)
            #expect(try await users.account(forToken: session, at: now)?.mustChangePassword == true)
            do {
                try await users.setPassword(name: "ghost", password: "password-123", mustChange: true, by: .testStaff, at: now)
                Issue.record("a password for nobody")
            } catch let error as HubError {
                #expect(error.kind == .notFound && error.field == "name")
            }
            #expect(try await users.exists(name: "asso", by: .testStaff))
            #expect(try await !users.exists(name: "ghost", by: .testStaff))
            #expect(try await userCount(database) == 3)
        }
    }

    /// Any hub process answers HTTP: tokens and sessions live in the database, so a token made
    /// through one process is accepted by another, and once revoked (a logout on either) refused
    /// by both. Two pools on one PostgreSQL database stand for two hub processes.
    @Test func aTokenMadeInOneProcessIsAcceptedAndRevokedInAnother() async throws {
        let location = try await PostgresTestServer.database("tokens", migrations: SharedSchema.postgres)
        let now = UserStoreTests.now
        try await HubPostgres(location, maximumConnections: 2, logger: BackendDatabase.quiet).withRunning { first in
            try await HubPostgres(location, maximumConnections: 2, logger: BackendDatabase.quiet).withRunning { second in
                let one = PostgresUserStore(database: first, bcryptCost: 4)
                let other = PostgresUserStore(database: second, bcryptCost: 4)
                try await one.add(name: "driver", role: .driver, dwelling: nil, estate: nil, password: "password-123", by: .testStaff, at: now)
                #expect(try await other.verify(name: "driver", password: "password-123")?.name == "driver")
                let session = try await one.createToken(for: "driver", label: "session", expiresAt: now.adding(seconds: 3600), by: .testStaff, at: now)
                let phone = try await one.createToken(for: "driver", label: "phone", expiresAt: nil, by: .testStaff, at: now)
                #expect(try await other.identity(forToken: session, at: now) == Identity(name: "driver", role: .driver))
                #expect(try await other.account(forToken: phone, at: now)?.identity.name == "driver")

                // A logout through the second process; the first refuses the token at once.
                #expect(try await other.revoke(token: session, at: now))
                #expect(try await one.identity(forToken: session, at: now) == nil)
                #expect(try await other.identity(forToken: session, at: now) == nil)
                // Staff revoking through the first; the second refuses.
                #expect(try await one.revokeTokens(of: "driver", label: nil, by: .testStaff, at: now) == 1)
                #expect(try await other.identity(forToken: phone, at: now) == nil)
                #expect(try await other.tokens(of: "driver", by: .testStaff).map { $0.state(at: now) } == ["revoked", "revoked"])
            }
        }
    }
}

extension UserStoreTests {
    /// Two staff adding the same name at once (two processes on PostgreSQL): one account, and the
    /// others get the store's conflict, not a database error.
    @Test(arguments: Backend.allCases) func concurrentAddsOfOneNameMakeOneAccount(_ backend: Backend) async throws {
        try await Self.withUsers(backend) { database, users in
            let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<4 {
                    group.addTask {
                        do {
                            try await users.add(name: "marie", role: .staff, dwelling: nil, estate: nil, password: "password-\(index)00", by: .testStaff, at: UserStoreTests.now)
                            return true
                        } catch let error as HubError where error.kind == .conflict && error.code == "exists" && error.field == "name" {
                            return false
                        }
                    }
                }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 }.count == 1)
            #expect(try await userCount(database) == 1)
        }
    }
}

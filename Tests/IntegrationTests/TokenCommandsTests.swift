import EnergyCore
import EnergyHub
import Foundation
import HubTestSupport
import HubCore
import PostgresNIO
import Shared
import Testing

/// `community-hub tokens list|revoke` run as the real binary against a real SQLite file and a real
/// PostgreSQL server (`--database-url`): staff revoke a lost phone's token from a shell, and a
/// mistake gets a message and a non-zero exit.
@Suite struct TokenCommandsTests {
    func run(_ arguments: [String], in directory: URL) async throws -> (status: Int32?, output: String) {
        let child = try HubChild(arguments: arguments, directory: directory, name: "cli-\(UUID().uuidString.prefix(6))")
        let status = try await child.waitForExit(timeout: 60)
        return (status, child.log)
    }

    enum Engine: String, CaseIterable, CustomTestStringConvertible {
        case sqlite, postgres
        var testDescription: String { rawValue }
    }

    /// A users store of `engine` and the command-line arguments that reach the same database.
    func withUsers(_ engine: Engine, in directory: URL, _ body: @escaping @Sendable (any UserStore, [String]) async throws -> Void) async throws {
        switch engine {
        case .sqlite:
            let path = directory.appendingPathComponent("hub.sqlite").path
            let database = try HubDatabase.open(path: path, schemas: [SharedSchema.register, EnergySchema.register])
            try await body(SQLiteUserStore(database: database, bcryptCost: 4), ["--db", path])
        case .postgres:
            let location = try await PostgresTestServer.database("tokens-cli", migrations: SharedSchema.postgres)
            try await HubPostgres(location).withRunning { postgres in
                try await body(PostgresUserStore(database: postgres, bcryptCost: 4), ["--database-url", PostgresTestServer.url(location)])
            }
        }
    }

    @Test(arguments: Engine.allCases) func staffListAndRevokeAUsersTokensFromTheCommandLine(_ engine: Engine) async throws {
        let directory = try TestSupport.temporaryDirectory("tokens-cli")
        try await withUsers(engine, in: directory) { users, database in
            let now = Instant.now()
            try await users.add(name: "driver-jean", role: .driver, dwelling: nil, estate: nil, password: "password-123", by: .testStaff, at: now)
            let phone = try await users.createToken(for: "driver-jean", label: "phone", expiresAt: nil, by: .testStaff, at: now)
            let laptop = try await users.createToken(for: "driver-jean", label: "laptop", expiresAt: nil, by: .testStaff, at: now)

            let listed = try await run(["tokens", "list", "driver-jean"] + database, in: directory)
            #expect(listed.status == 0, "\(listed.output)")
            #expect(listed.output.contains("phone") && listed.output.contains("laptop") && listed.output.contains("live"))
            #expect(!listed.output.contains(phone) && !listed.output.contains(SQLiteUserStore.hash(token: phone)), "never the token nor its hash")

            let revoked = try await run(["tokens", "revoke", "driver-jean", "--label", "phone"] + database, in: directory)
            #expect(revoked.status == 0 && revoked.output.contains("revoked 1 token of driver-jean"), "\(revoked.output)")
            #expect(try await users.identity(forToken: phone, at: Instant.now()) == nil)
            #expect(try await users.identity(forToken: laptop, at: Instant.now())?.name == "driver-jean")
            let after = try await run(["tokens", "list", "driver-jean"] + database, in: directory)
            #expect(after.output.contains("revoked") && after.output.contains("live"), "\(after.output)")

            let unknown = try await run(["tokens", "revoke", "driver-jeanne"] + database, in: directory)
            #expect(unknown.status != 0 && unknown.output.contains("no user named driver-jeanne"), "\(unknown.output)")
            #expect(try await users.identity(forToken: laptop, at: Instant.now())?.name == "driver-jean", "a mistake changes nothing")
        }
    }
}

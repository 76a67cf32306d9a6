import EnergyCore
import EnergyHub
import Foundation
import HubTestSupport
import HubCore
import Shared
import Testing

/// `community-hub tokens list|revoke` run as the real binary against a real SQLite file: staff
/// revoke a lost phone's token from a shell, and a mistake gets a message and a non-zero exit.
@Suite struct TokenCommandsTests {
    func run(_ arguments: [String], in directory: URL) async throws -> (status: Int32?, output: String) {
        let child = try HubChild(arguments: arguments, directory: directory, name: "cli-\(UUID().uuidString.prefix(6))")
        let status = try await child.waitForExit(timeout: 60)
        return (status, child.log)
    }

    @Test func staffListAndRevokeAUsersTokensFromTheCommandLine() async throws {
        let directory = try TestSupport.temporaryDirectory("tokens-cli")
        let path = directory.appendingPathComponent("hub.sqlite").path
        let database = try HubDatabase.open(path: path, schemas: [SharedSchema.register, EnergySchema.register])
        let users = SQLiteUserStore(database: database, bcryptCost: 4)
        let now = Instant.now()
        try await users.add(name: "driver-jean", role: .driver, dwelling: nil, estate: nil, password: "password-123", by: .testStaff, at: now)
        let phone = try await users.createToken(for: "driver-jean", label: "phone", expiresAt: nil, by: .testStaff, at: now)
        let laptop = try await users.createToken(for: "driver-jean", label: "laptop", expiresAt: nil, by: .testStaff, at: now)

        let listed = try await run(["tokens", "list", "driver-jean", "--db", path], in: directory)
        #expect(listed.status == 0, "\(listed.output)")
        #expect(listed.output.contains("phone") && listed.output.contains("laptop") && listed.output.contains("live"))
        #expect(!listed.output.contains(phone) && !listed.output.contains(SQLiteUserStore.hash(token: phone)), "never the token nor its hash")

        let revoked = try await run(["tokens", "revoke", "driver-jean", "--label", "phone", "--db", path], in: directory)
        #expect(revoked.status == 0 && revoked.output.contains("revoked 1 token of driver-jean"), "\(revoked.output)")
        #expect(try await users.identity(forToken: phone, at: Instant.now()) == nil)
        #expect(try await users.identity(forToken: laptop, at: Instant.now())?.name == "driver-jean")

        let unknown = try await run(["tokens", "revoke", "driver-jeanne", "--db", path], in: directory)
        #expect(unknown.status != 0 && unknown.output.contains("no user named driver-jeanne"), "\(unknown.output)")
        #expect(try await users.identity(forToken: laptop, at: Instant.now())?.name == "driver-jean", "a mistake changes nothing")
    }
}

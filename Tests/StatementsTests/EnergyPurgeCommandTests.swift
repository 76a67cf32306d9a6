import ArgumentParser
import EnergyHub
import Foundation
import HubCore
import HubTestSupport
import Logging
import Shared
import Testing
@testable import HubCLI

/// `community-hub energy purge --database-url ...` purges the server database (this target is the
/// one with both the command line and the energy module): a month of readings past retention is
/// dropped as a table, a recent one stays.
@Suite struct EnergyPurgeCommandTests {
    @Test func energyPurgeDropsOldMonthsOnTheServerDatabase() async throws {
        let location = try await PostgresTestServer.database("purgecli", migrations: SharedSchema.postgres + EnergySchema.postgres + SavingsSchema.postgres)
        // More than the default 730 days before any run of this test; and now.
        let old = Instant.parseRFC3339("2023-01-15T00:00:00Z")!.millisecondsSince1970
        let recent = Instant.now().millisecondsSince1970
        let logger = Logger(label: "test.purge")
        func rows(_ sql: String) async throws -> [[SQLValue]] {
            try await BlockingWork.run {
                let session = try PostgresBlockingSession(location, logger: logger)
                defer { session.close() }
                return try session.rows(sql)
            }
        }
        try await BlockingWork.run {
            let session = try PostgresBlockingSession(location, logger: logger)
            defer { session.close() }
            for instant in [old, recent] { try session.transaction { _ = try $0.rows("SELECT reading_partition(?)", instant) } }
            _ = try session.execute("""
                INSERT INTO reading (device_id, instant, energy_wh, segment, time_source, received_at)
                VALUES ('m-1', ?, 1, 0, 'device', ?), ('m-1', ?, 2, 0, 'device', ?)
                """, old, old, recent, recent)
        }
        #expect(try await rows("SELECT to_regclass('reading_2023_01') IS NULL") == [[.integer(0)]])

        var command = try CommunityHubCommand.parseAsRoot(["energy", "purge", "--database-url", PostgresTestServer.url(location)])
        if var asyncCommand = command as? any AsyncParsableCommand { try await asyncCommand.run() } else { try command.run() }

        #expect(try await rows("SELECT to_regclass('reading_2023_01') IS NULL") == [[.integer(1)]])
        #expect(try await rows("SELECT energy_wh FROM reading") == [[.integer(2)]])
    }
}

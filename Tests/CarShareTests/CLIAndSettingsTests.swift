import ArgumentParser
import CarShare
import CarShareCore
import EnergyCore
import Foundation
import Logging
import GRDB
import HubTestSupport
import HubCore
import Shared
import Testing
@testable import HubApp
@testable import HubCLI

@Suite struct CLIAndSettingsTests {
    @Test func datedFeesAndRulesComeFromTheSettingsFile() throws {
        let json = """
            {"carshare": {"membershipFees": [{"from": "2000-01-01", "cents": 800}, {"from": "2027-01-01", "cents": 1000}],
                          "tripFees": [{"from": "2000-01-01", "cents": 250}], "noShowKeepsFee": false, "membershipPeriod": "twelveMonths",
                          "socialTransport": {"enabled": true}}}
            """
        let settings = try SettingsLoader.load(HubSettings.self, defaults: HubSettings(), json: Data(json.utf8), source: "test")
        let carshare = try settings.carshare.validated()
        #expect(carshare.membershipFees.amount(on: LocalDate(year: 2026, month: 12, day: 31)!) == Cents(800))
        #expect(carshare.membershipFees.amount(on: LocalDate(year: 2027, month: 1, day: 1)!) == Cents(1000))
        #expect(carshare.tripFees.amount(on: LocalDate(year: 2026, month: 3, day: 1)!) == Cents(250))
        #expect(!carshare.noShowKeepsFee && carshare.lateCancellationKeepsFee && carshare.membershipPeriod == .twelveMonths)
        #expect(carshare.socialTransport.enabled && carshare.socialTransport.maxKilometres == 100 && carshare.socialTransport.maxCentsPerKilometre == 32)
        let defaults = CarShareSettings()
        #expect(defaults.membershipFees.amount(on: LocalDate(year: 2026, month: 1, day: 1)!) == Cents(800))
        #expect(defaults.tripFees.amount(on: LocalDate(year: 2026, month: 1, day: 1)!) == Cents(200))
        #expect(defaults.membershipPeriod == .calendarYear && defaults.usePrepaidCreditFirst && !defaults.socialTransport.enabled)
        let negative = #"{"carshare": {"tripFees": [{"from": "2000-01-01", "cents": -200}]}}"#
        #expect(throws: HubError.self) {
            try SettingsLoader.load(HubSettings.self, defaults: HubSettings(), json: Data(negative.utf8), source: "test").carshare.validated()
        }
        #expect(throws: HubError.self) {
            try SettingsLoader.load(HubSettings.self, defaults: HubSettings(), json: Data(#"{"carshare": {"tripFee": 200}}"#.utf8), source: "test")
        }
    }

    /// One configuration with one time zone: a section that disagrees, or a zone that does not
    /// exist, is an error at start that names the setting.
    @Test func theHubHasOneTimeZoneAndABadOneIsNamedAtStart() throws {
        func configuration(_ json: String) throws -> HubConfiguration {
            try SettingsLoader.load(HubSettings.self, defaults: HubSettings(), json: Data(json.utf8), source: "test").configuration()
        }
        #expect(try configuration("{}").zone.identifier == "Europe/Paris")
        for (json, name) in [(#"{"ingest": {"timeZone": "Europe/Brussels"}}"#, "ingest.timeZone"),
                             (#"{"timeZone": "Europe/Brussels"}"#, "ingest.timeZone"),
                             (#"{"energy": {"timeZone": "UTC"}}"#, "energy.timeZone"),
                             (#"{"carshare": {"timeZone": "UTC"}}"#, "carshare.timeZone"),
                             (#"{"timeZone": "Mars/Olympus"}"#, "timeZone")] {
            do {
                _ = try configuration(json)
                Issue.record("\(json) was accepted")
            } catch let error as HubError {
                #expect(error.kind == .configuration && error.message.contains("setting \(name) "), "\(json): \(error.message)")
            }
        }
        let together = #"{"timeZone": "Europe/Brussels", "ingest": {"timeZone": "Europe/Brussels"}, "energy": {"timeZone": "Europe/Brussels"}, "carshare": {"timeZone": "Europe/Brussels"}}"#
        #expect(try configuration(together).zone.identifier == "Europe/Brussels")
        var settings = HubSettings()
        settings.energy.timeZone = "UTC"
        #expect(throws: HubError.self, "the hub does not start") { _ = try HubProcess(settings: settings, logger: Logger(label: "test")) }
    }

    /// A monthly production profile that does not add up to 1000 stops the hub at start, naming
    /// the setting.
    @Test func aProductionProfileThatDoesNotAddUpIsNamedAtStart() throws {
        let json = #"{"energy": {"monthlyProductionProfile": [40, 51, 80, 103, 126, 130, 130, 114, 86, 63, 42, 30]}}"#
        let settings = try SettingsLoader.load(HubSettings.self, defaults: HubSettings(), json: Data(json.utf8), source: "test")
        do {
            _ = try settings.configuration()
            Issue.record("the profile was accepted")
        } catch let error as HubError {
            #expect(error.kind == .configuration && error.message.contains("energy.monthlyProductionProfile must add up to 1000"), "\(error.message)")
        }
        #expect(throws: HubError.self, "the hub does not start") { _ = try HubProcess(settings: settings, logger: Logger(label: "test")) }
    }

    @Test func staffRunTheCarShareFromTheCommandLine() async throws {
        let fixture = try await Fixture()
        let db = fixture.settings.database.path
        func run(_ arguments: [String]) async throws {
            var command = try CommunityHubCommand.parseAsRoot(arguments + ["--db", db])
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        }
        try await run(["carshare", "vehicles", "add", "Zoé", "--plate", "GA-123-BC", "--battery-wh", "52000", "--odometer-km", "12000"])
        try await run(["carshare", "drivers", "add", "Jean", "--user", "driver-jean", "--licence-checked-on", "2026-01-05", "--trained-on", "2026-01-05"])
        try await run(["carshare", "members", "add", "Alice Martin", "--dwelling", "OUT-A-01"])
        try await run(["carshare", "memberships", "buy", "1", "--on", "2026-03-01"])
        try await run(["carshare", "bookings", "add", "--vehicle", "1", "--rider", "1", "--start", "2026-03-12T10:00:00", "--end", "2026-03-12T11:00:00", "--purpose", "Pharmacie"])
        try await run(["carshare", "bookings", "status", "1", "confirmed", "--driver", "1"])
        try await run(["carshare", "trips", "log", "--key", "carnet-1-ligne-1", "--booking", "1", "--start", "2026-03-12T10:00:00", "--end", "2026-03-12T10:50:00",
                       "--start-km", "12000", "--end-km", "12014", "--battery-start", "90", "--battery-end", "84"])
        try await run(["carshare", "trips", "log", "--key", "carnet-1-ligne-1", "--booking", "1", "--start", "2026-03-12T10:00:00", "--end", "2026-03-12T10:50:00",
                       "--start-km", "12000", "--end-km", "12014", "--battery-start", "90", "--battery-end", "84"])
        try await run(["carshare", "payments", "add", "--key", "recu-1", "1", "15", "--method", "cash", "--on", "2026-03-12"])
        try await run(["carshare", "deposits", "add", "5", "--kind", "cash", "--on", "2026-03-12"])
        try await run(["carshare", "trips", "charging", "--vehicle", "1", "--at", "2026-03-12T18:00:00", "--energy-wh", "9000", "--cost", "2,70", "--method", "cash"])
        // The charge was 2,90 € paid by transfer, not 2,70 € in cash: reversal plus the right entry.
        try await run(["carshare", "corrections", "add", "6", "--reason", "montant mal saisi", "--line", "6061=2,90", "--line", "512=-2,90"])
        // Bad input: a CLI message and a non-zero exit, nothing written.
        let before = try fixture.counts()
        do {
            try await run(["carshare", "payments", "add", "--key", "recu-2", "1", "0", "--method", "cash"])
            Issue.record("a negative payment was accepted")
        } catch let error as ExitCode {
            #expect(error.rawValue == 65)
        }
        do {
            try await run(["carshare", "refunds", "add", "1", "500", "--method", "cash"])
            Issue.record("a refund beyond the credit was accepted")
        } catch let error as ExitCode {
            #expect(error.rawValue == 65)
        }
        #expect(try fixture.counts() == before)
        let statement = try await fixture.store.statement(member: 1, by: Fixture.staff)
        #expect(statement.trips.count == 1, "the second log with the same key booked nothing")
        #expect(statement.balanceCents == Cents(500), "paid 15 EUR for 8 + 2 EUR")
        let balances = try await fixture.store.balances(by: Fixture.staff)
        #expect(balances.accounts.first { $0.account == .charging }?.balanceCents == Cents(290))
        #expect(balances.accounts.first { $0.account == .cash }?.balanceCents == Cents(1000), "15 in, 5 deposited, the charge moved to the bank")
        let file = try TestSupport.temporaryDirectory("cli").appendingPathComponent("export.journal").path
        try await run(["carshare", "export", "--output", file])
        let (status, output) = try Hledger.run(["-f", file, "check", "-s", "ordereddates"])
        #expect(status == 0, "\(output)")
        try await run(["ledger", "verify"])
        try await run(["ledger", "close-month", "2026-02"])
        #expect(try await fixture.database.pool.read { db in try String.fetchAll(db, sql: "SELECT month FROM carshare_closed_month") } == ["2026-02"])
    }
}

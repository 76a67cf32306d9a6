import Foundation
import HubTestSupport
import HubCore
import Logging
import Shared
import Testing
@testable import EnergyCore
@testable import EnergyHub

/// The statements each step of the savings upkeep sends (on PostgreSQL, each a round trip): a
/// building's few statements, however many devices it has (a statement or two per device made
/// the upkeep of a building's month 20-30 times slower on PostgreSQL than on SQLite).
@Suite struct SavingsUpkeepStatementsTests {
    /// A building of `meters` households and its PV; eight hours of readings every 10 minutes
    /// (few enough slots that every batch of rows fits one statement at both sizes).
    static func hub(meters: Int) throws -> SavingsFixture {
        let registry = ["estate;building;dwelling;device;kind;format;since;tariff;share", "E;B;;pv-1;pv;canonical;2026-06-01;;"]
            + (1...meters).map { "E;B;D\($0);m-\($0);meter;canonical;2026-06-01;;" }
        let hub = try SavingsFixture(registry: registry.joined(separator: "\n"))
        let start = SavingsFixture.at("2026-10-06T06:00:00Z")
        var messages: [IncomingMessage] = []
        for step in 0...48 {
            let instant = start.adding(seconds: 600 * Int64(step))
            for device in ["pv-1"] + (1...meters).map({ "m-\($0)" }) {
                let energy = Int64(step) * (device == "pv-1" ? 40 * Int64(meters) : 30 + Int64(device.count))
                messages.append(IncomingMessage(topic: "meters/\(device)/reading", payload: Array(SavingsFixture.canonical(instant, 1_000 + energy).utf8),
                                                receivedAt: instant.adding(seconds: 2)))
            }
        }
        _ = try hub.processor.process(messages)
        _ = try hub.processor.fold()
        return hub
    }

    static let now = SavingsFixture.at("2026-10-08T00:00:00Z")

    /// The statements of each step of bringing the figures up to date, on either engine, with the report.
    static func statements(meters: Int, on backend: RegistryBackend) async throws -> (perStep: [Int], report: UpkeepReport) {
        let hub = try hub(meters: meters)
        let counter = SQLStatementCounter()
        switch backend {
        case .sqlite:
            let report = try hub.upkeep.bringUpToDate(now: now, counter: counter)
            return (counter.perStep, report)
        case .postgres:
            let location = try await SavingsPostgresTests.copyToPostgres(hub, label: "statements")
            let logger = Logger(label: "test.savings.statements", factory: { _ in SwiftLogNoOpLogHandler() })
            let configuration = hub.configuration
            let report = try await BlockingWork.run {
                try PostgresSavingsUpkeep(location: location, configuration: configuration, logger: logger).bringUpToDate(now: now, counter: counter)
            }
            return (counter.perStep, report)
        }
    }

    @Test(arguments: RegistryBackend.allCases)
    func aStepSendsAsManyStatementsForTwelveHouseholdsAsForThree(_ backend: RegistryBackend) async throws {
        let small = try await Self.statements(meters: 3, on: backend)
        let large = try await Self.statements(meters: 12, on: backend)
        // The settings' check, the readings' changes, the building's slots and days, the step finding nothing.
        #expect(small.report.readingChanges == 4 && large.report.readingChanges == 13)
        #expect(large.report.deviceSlotsChanged > 0 && large.report.buildingSlotsRecomputed > 0 && large.report.daysRecomputed > 0)
        #expect(small.perStep.count == large.perStep.count)
        #expect(large.perStep == small.perStep, "statements per step: \(small.perStep) for 4 devices, \(large.perStep) for 13")
    }
}

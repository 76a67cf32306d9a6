import Foundation
import HubCore
import Shared
import Testing
@testable import EnergyCore
@testable import EnergyHub

/// The `energy` settings section: defaults, overlay from a file, and clear errors.
@Suite struct SavingsSettingsTests {
    @Test func theDefaultsAreTheDocumentedOnes() throws {
        let settings = EnergySettings()
        #expect(settings.slotMinutes == 30)
        #expect(settings.estimatedGapMinutes == 60)
        #expect(settings.retention.rawDays == 730)
        #expect(settings.retention.dailyDays == 1095)
        let configuration = try settings.validated()
        #expect(configuration.localPrices.value(on: LocalDate(parsing: "2026-06-01")!) == 0)
        #expect(configuration.feedInPrices.value(on: LocalDate(parsing: "2025-03-01")!) == 40_000)
        #expect(configuration.feedInPrices.value(on: LocalDate(parsing: "2025-02-28")!) == nil)
    }

    @Test func aFileOverlaysSomeKeys() throws {
        let json = #"{"slotMinutes": 15, "localPrices": [{"since": "2026-01-01", "eurPerKWh": "0,05"}], "retention": {"rawDays": 365}}"#
        let settings = try SettingsLoader.load(EnergySettings.self, defaults: EnergySettings(), json: Data(json.utf8), source: "test.json")
        #expect(settings.slotMinutes == 15)
        #expect(settings.retention.rawDays == 365)
        #expect(settings.retention.dailyDays == 1095)
        let configuration = try settings.validated()
        #expect(configuration.grid.minutes == 15)
        #expect(configuration.localPrices.value(on: LocalDate(parsing: "2026-02-01")!) == 50_000)
        #expect(throws: HubError.self) {
            try SettingsLoader.load(EnergySettings.self, defaults: EnergySettings(), json: Data(#"{"slotMinute": 15}"#.utf8), source: "test.json")
        }
    }

    @Test func badValuesAreConfigurationErrors() {
        var settings = EnergySettings()
        settings.slotMinutes = 7
        #expect(throws: HubError.self) { try settings.validated() }
        settings = EnergySettings()
        settings.feedInPrices = [.init(since: "2025-03-01", eurPerKWh: "-0.04")]
        #expect(throws: HubError.self) { try settings.validated() }
        settings = EnergySettings()
        settings.localPrices = [.init(since: "March 2025", eurPerKWh: "0")]
        #expect(throws: HubError.self) { try settings.validated() }
        settings = EnergySettings()
        settings.retention.dailyDays = 100
        #expect(throws: HubError.self) { try settings.validated() }
    }
}

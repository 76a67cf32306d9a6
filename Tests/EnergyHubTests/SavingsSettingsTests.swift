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

    /// The monthly production profile is checked when the settings are, at start, and a bad one
    /// is an error naming the setting.
    @Test func aMonthlyProductionProfileMustHaveTwelveMonthsAddingUpTo1000() throws {
        #expect(EnergySettings().monthlyProductionProfile == [40, 51, 80, 103, 126, 130, 130, 114, 86, 63, 42, 35])
        #expect(try EnergySettings().validated().productionProfile.millionths == [40, 51, 80, 103, 126, 130, 130, 114, 86, 63, 42, 35].map { Int64($0) * 1000 })
        let pvgis = #"{"monthlyProductionProfile": [35, 55, 85, 115, 125, 125, 125, 115, 90, 70, 30, 30]}"#
        let settings = try SettingsLoader.load(EnergySettings.self, defaults: EnergySettings(), json: Data(pvgis.utf8), source: "test.json")
        #expect(try settings.validated().productionProfile.millionths[10] == 30_000)
        for (profile, words) in [([40, 51, 80, 103, 126, 130, 130, 114, 86, 63, 42, 34], "must add up to 1000 (parts per thousand of a year's production), not 999"),
                                 ([40, 51, 80, 103, 126, 130, 130, 114, 86, 63, 42], "must have 12 values, January to December, not 11"),
                                 ([40, 51, 80, 103, 126, 130, 130, 114, 86, 63, 112, -35], "[11] (month 12) is -35")] {
            var bad = EnergySettings()
            bad.monthlyProductionProfile = profile
            do {
                _ = try bad.validated()
                Issue.record("\(profile) was accepted")
            } catch let error as HubError {
                #expect(error.kind == .configuration && error.message.contains("energy.monthlyProductionProfile") && error.message.contains(words), "\(error.message)")
            }
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

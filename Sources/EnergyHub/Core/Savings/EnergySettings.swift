import HubCore

/// Settings of the savings part (section `energy` of the settings file). Every key has a default.
public struct EnergySettings: Codable, Sendable, Equatable {
    /// A price in EUR per kWh from a local date on (decimal text, up to 6 decimals).
    public struct DatedPrice: Codable, Sendable, Equatable {
        public var since: String
        public var eurPerKWh: String

        public init(since: String, eurPerKWh: String) {
            self.since = since
            self.eurPerKWh = eurPerKWh
        }
    }

    /// How long personal data is kept (energy.md section 7; CNIL).
    public struct Retention: Codable, Sendable, Equatable {
        /// Raw readings, quarantined payloads and slot (sub-daily) figures: 2 years.
        public var rawDays = 730
        /// Daily figures: 3 years.
        public var dailyDays = 1095
        /// How often the retention job runs.
        public var intervalHours = 24
        public init() {}
    }

    /// Slot length in minutes; must divide an hour (Enedis exchanges 30-minute curves, some
    /// operations use 15). Changing it rebuilds every slot from the stored readings.
    public var slotMinutes = 30
    /// A reading pair further apart than this makes the slots it spans `estimated`.
    public var estimatedGapMinutes = 60
    /// What households pay for a shared local kWh (often 0 in a social pilot).
    public var localPrices = [DatedPrice(since: "2024-01-01", eurPerKWh: "0")]
    /// What the surplus is sold for (small installations <= 9 kWc: 0.04 EUR/kWh since March 2025).
    /// Before the first date no price applies (revenue 0).
    public var feedInPrices = [DatedPrice(since: "2025-03-01", eurPerKWh: "0.04")]
    /// The yearly saving promised to residents, shown beside their annual projection.
    public var promisedAnnualSavingsCents: Int64 = 15_000
    /// How a year's PV production usually splits among the months, January to December, in parts
    /// per thousand of the year (adding up to 1000). The annual projection weighs each day by it
    /// while a building has no twelve full months of its own production. The default is a solar
    /// model for Boulogne-sur-Mer (50.7 N, panels facing south at 35 degrees; docs/savings.md,
    /// "Annual projection"); the landlord may put the site's PVGIS monthly figures here instead.
    public var monthlyProductionProfile = EnergySettings.boulogneProductionProfile
    /// The smallest group of households whose figures an estate's association sees (delivery
    /// points; French practice for published residential energy data is at least 10): a
    /// building's household figures are withheld from its association below it, and so are the
    /// estate's totals when they would give a withheld building away (`HouseholdPrivacy`). Staff see
    /// everything. At least 3 (with two, one household and the total give away the other).
    public var privacyMinimumHouseholds = EnergyReportRules.defaultMinimumHouseholds
    /// How often the savings upkeep looks for new readings.
    public var upkeepIntervalMilliseconds = 2000
    /// The time zone of days, months and tariff windows.
    public var timeZone = "Europe/Paris"
    public var retention = Retention()

    /// The solar model's monthly split for Boulogne-sur-Mer, January to December (parts per
    /// thousand; docs/savings.md gives the model and its formula, and `AnnualProjectionTests`
    /// computes it again).
    public static let boulogneProductionProfile = [40, 51, 80, 103, 126, 130, 130, 114, 86, 63, 42, 35]

    public init() {}

    /// The checked, parsed form the engine uses.
    public func validated() throws -> EnergyConfiguration {
        let grid = try SlotGrid(minutes: slotMinutes)
        guard (1...10_080).contains(estimatedGapMinutes) else { throw HubError.configuration("energy.estimatedGapMinutes must be between 1 and 10080") }
        guard (1...100_000).contains(retention.rawDays), retention.dailyDays >= retention.rawDays else {
            throw HubError.configuration("energy.retention.rawDays must be at least 1 and energy.retention.dailyDays at least rawDays")
        }
        guard retention.intervalHours >= 1 else { throw HubError.configuration("energy.retention.intervalHours must be at least 1") }
        guard (10...3_600_000).contains(upkeepIntervalMilliseconds) else { throw HubError.configuration("energy.upkeepIntervalMilliseconds must be between 10 and 3600000") }
        guard (3...100_000).contains(privacyMinimumHouseholds) else {
            throw HubError.configuration("energy.privacyMinimumHouseholds must be from 3 to 100000, not \(privacyMinimumHouseholds)")
        }
        guard promisedAnnualSavingsCents >= 0 else { throw HubError.configuration("energy.promisedAnnualSavingsCents must not be negative") }
        guard monthlyProductionProfile.count == 12 else {
            throw HubError.configuration("energy.monthlyProductionProfile must have 12 values, January to December, not \(monthlyProductionProfile.count)")
        }
        if let month = monthlyProductionProfile.firstIndex(where: { !(0...1000).contains($0) }) {
            throw HubError.configuration("energy.monthlyProductionProfile[\(month)] (month \(month + 1)) is \(monthlyProductionProfile[month]): a month's share is from 0 to 1000")
        }
        let profileTotal = monthlyProductionProfile.reduce(0, +)
        guard profileTotal == 1000 else {
            throw HubError.configuration("energy.monthlyProductionProfile must add up to 1000 (parts per thousand of a year's production), not \(profileTotal)")
        }
        func prices(_ list: [DatedPrice], _ name: String) throws -> Dated<MicroEurosPerKWh> {
            var entries: [(since: LocalDate, value: MicroEurosPerKWh)] = []
            for (index, entry) in list.enumerated() {
                guard let date = LocalDate(parsing: entry.since) else { throw HubError.configuration("energy.\(name)[\(index)].since must be a date YYYY-MM-DD") }
                guard let price = Decimal6.parse(entry.eurPerKWh), price >= 0 else {
                    throw HubError.configuration("energy.\(name)[\(index)].eurPerKWh must be a non-negative decimal with at most 6 decimals")
                }
                guard !entries.contains(where: { $0.since == date }) else { throw HubError.configuration("energy.\(name) gives \(date) twice") }
                entries.append((date, price))
            }
            return Dated(entries)
        }
        var configuration = EnergyConfiguration(grid: grid, estimatedGapMilliseconds: Int64(estimatedGapMinutes) * 60_000,
                                   localPrices: try prices(localPrices, "localPrices"), feedInPrices: try prices(feedInPrices, "feedInPrices"),
                                   zone: try LocalTimeZone(identifier: timeZone), promisedAnnualSavings: Cents(promisedAnnualSavingsCents),
                                   rawRetentionDays: retention.rawDays, dailyRetentionDays: retention.dailyDays,
                                   productionProfile: MonthlyProductionShares(profilePerMille: monthlyProductionProfile))
        configuration.minimumHouseholds = privacyMinimumHouseholds
        return configuration
    }
}

/// `EnergySettings` checked and parsed.
public struct EnergyConfiguration: Sendable, Hashable {
    public var grid: SlotGrid
    public var estimatedGapMilliseconds: Int64
    public var localPrices: Dated<MicroEurosPerKWh>
    public var feedInPrices: Dated<MicroEurosPerKWh>
    public var zone: LocalTimeZone
    public var promisedAnnualSavings: Cents
    public var rawRetentionDays: Int
    public var dailyRetentionDays: Int
    /// The monthly split of a year's production the annual projection uses when a building has
    /// no twelve full months of its own.
    public var productionProfile: MonthlyProductionShares
    public var regulatedPrices = RegulatedPrices.edfBleu
    /// `EnergySettings.privacyMinimumHouseholds`.
    public var minimumHouseholds = EnergyReportRules.defaultMinimumHouseholds

    public init(grid: SlotGrid, estimatedGapMilliseconds: Int64, localPrices: Dated<MicroEurosPerKWh>, feedInPrices: Dated<MicroEurosPerKWh>,
                zone: LocalTimeZone, promisedAnnualSavings: Cents, rawRetentionDays: Int, dailyRetentionDays: Int,
                productionProfile: MonthlyProductionShares = MonthlyProductionShares(profilePerMille: EnergySettings.boulogneProductionProfile)) {
        self.grid = grid
        self.estimatedGapMilliseconds = estimatedGapMilliseconds
        self.localPrices = localPrices
        self.feedInPrices = feedInPrices
        self.zone = zone
        self.promisedAnnualSavings = promisedAnnualSavings
        self.rawRetentionDays = rawRetentionDays
        self.dailyRetentionDays = dailyRetentionDays
        self.productionProfile = productionProfile
    }

    /// What, in these settings, the stored slot figures depend on: when it changes they are rebuilt.
    package var slotFingerprint: String { "slot=\(grid.minutes);gap=\(estimatedGapMilliseconds)" }
    package var priceFingerprint: String {
        func text(_ dated: Dated<MicroEurosPerKWh>) -> String { dated.entries.map { "\($0.since)=\($0.value)" }.joined(separator: ",") }
        return "local=\(text(localPrices));feedin=\(text(feedInPrices));zone=\(zone.identifier)"
    }
}

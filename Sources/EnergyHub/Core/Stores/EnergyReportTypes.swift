import Foundation
import HubCore

/// Counts of slots by quality over a period.
public struct SlotCounts: Codable, Sendable, Equatable {
    public var measured: Int
    public var estimated: Int
    public var missing: Int

    public init(measured: Int, estimated: Int, missing: Int) {
        self.measured = measured
        self.estimated = estimated
        self.missing = missing
    }
}

/// A ratio shown with four decimals (0.6523), exact from integers; nil when the divisor is 0.
public func energyRate(_ numerator: Int64, _ denominator: Int64) -> Decimal? {
    guard denominator > 0 else { return nil }
    return Decimal(NanoEuros.divideRounded(numerator * 10_000, denominator)) / 10_000
}

/// A household's figures over a period (`GET /api/v1/dwellings/{dwelling}/energy`).
public struct DwellingEnergyReport: Codable, Sendable, Equatable {
    public struct Day: Codable, Sendable, Equatable {
        public var date: LocalDate
        public var consumptionWh: Int64
        public var allocatedWh: Int64
        public var gridWh: Int64
        public var savingsCents: Int64
        /// The day's slots by quality: what a statement says in words ("le compteur n'a pas transmis").
        public var slots: SlotCounts
        enum CodingKeys: String, CodingKey {
            case date, slots
            case consumptionWh = "consumption_wh", allocatedWh = "allocated_wh", gridWh = "grid_wh", savingsCents = "savings_cents"
        }

        package init(date: LocalDate, consumptionWh: Int64, allocatedWh: Int64, gridWh: Int64, savingsCents: Int64,
                     slots: SlotCounts = SlotCounts(measured: 0, estimated: 0, missing: 0)) {
            self.slots = slots
            self.date = date
            self.consumptionWh = consumptionWh
            self.allocatedWh = allocatedWh
            self.gridWh = gridWh
            self.savingsCents = savingsCents
        }
    }

    /// Savings so far this year projected to the whole year with the seasons, beside what
    /// residents were promised. An estimate: `basis` says which monthly split of the year's
    /// production weighed the days counted (`EnergyReportRules.seasonalProjection`).
    public struct AnnualProjection: Codable, Sendable, Equatable {
        public var year: Int
        public var savingsSoFarCents: Int64
        /// Days of this year the dwelling has been served by a meter, up to today.
        public var daysCounted: Int
        /// The share of a year's PV production the days counted usually bring, in millionths.
        public var productionShareSoFarMillionths: Int64
        /// `building_history` (the building's last twelve full months) or `production_profile`
        /// (the settings' monthly profile).
        public var basis: ProjectionBasis
        /// Savings so far / production share so far, rounded to the cent; nil before any day counted.
        public var projectedCents: Int64?
        public var promisedCents: Int64
        enum CodingKeys: String, CodingKey {
            case year, basis
            case savingsSoFarCents = "savings_so_far_cents", daysCounted = "days_counted", productionShareSoFarMillionths = "production_share_so_far_millionths"
            case projectedCents = "projected_cents", promisedCents = "promised_cents"
        }

        package init(year: Int, savingsSoFarCents: Int64, daysCounted: Int, productionShareSoFarMillionths: Int64, basis: ProjectionBasis,
                     projectedCents: Int64?, promisedCents: Int64) {
            self.year = year
            self.savingsSoFarCents = savingsSoFarCents
            self.daysCounted = daysCounted
            self.productionShareSoFarMillionths = productionShareSoFarMillionths
            self.basis = basis
            self.projectedCents = projectedCents
            self.promisedCents = promisedCents
        }
    }

    public var dwelling: String
    public var building: String
    public var from: LocalDate
    public var to: LocalDate
    public var consumptionWh: Int64
    public var allocatedWh: Int64
    public var gridWh: Int64
    public var savingsCents: Int64
    public var slots: SlotCounts
    public var days: [Day]
    public var annualProjection: AnnualProjection
    /// Months of the period whose figures changed after staff exported them.
    public var revisedMonths: [String]

    enum CodingKeys: String, CodingKey {
        case dwelling, building, from, to, slots, days
        case consumptionWh = "consumption_wh", allocatedWh = "allocated_wh", gridWh = "grid_wh", savingsCents = "savings_cents"
        case annualProjection = "annual_projection", revisedMonths = "revised_months"
    }

    package init(dwelling: String, building: String, from: LocalDate, to: LocalDate, consumptionWh: Int64, allocatedWh: Int64, gridWh: Int64, savingsCents: Int64, slots: SlotCounts, days: [Day], annualProjection: AnnualProjection, revisedMonths: [String]) {
        self.dwelling = dwelling
        self.building = building
        self.from = from
        self.to = to
        self.consumptionWh = consumptionWh
        self.allocatedWh = allocatedWh
        self.gridWh = gridWh
        self.savingsCents = savingsCents
        self.slots = slots
        self.days = days
        self.annualProjection = annualProjection
        self.revisedMonths = revisedMonths
    }
}

/// A building's totals over a period (or several buildings', `building` nil).
public struct BuildingTotals: Codable, Sendable, Equatable {
    public var building: String?
    public var productionWh: Int64
    public var allocatedWh: Int64
    public var surplusWh: Int64
    public var consumptionWh: Int64
    /// Collectively self-consumed share of production: allocated / production.
    public var selfConsumptionRate: Decimal?
    /// Share of consumption covered by the PV: allocated / consumption.
    public var selfSufficiencyRate: Decimal?
    public var surplusRevenueCents: Int64
    /// The households' figures (allocated, surplus, consumption, the rates, the surplus's value)
    /// are withheld from this audience (`HouseholdPrivacy`): null in JSON, 0 here; only the
    /// production of the panels is shown.
    public var withheld: Bool

    enum CodingKeys: String, CodingKey {
        case building, withheld
        case productionWh = "production_wh", allocatedWh = "allocated_wh", surplusWh = "surplus_wh", consumptionWh = "consumption_wh"
        case selfConsumptionRate = "self_consumption_rate", selfSufficiencyRate = "self_sufficiency_rate", surplusRevenueCents = "surplus_revenue_cents"
    }

    package init(building: String?, production: Int64, allocated: Int64, surplus: Int64, consumption: Int64, revenue: NanoEuros) {
        self.building = building
        productionWh = production
        allocatedWh = allocated
        surplusWh = surplus
        consumptionWh = consumption
        selfConsumptionRate = energyRate(allocated, production)
        selfSufficiencyRate = energyRate(allocated, consumption)
        surplusRevenueCents = revenue.cents.value
        withheld = false
    }

    /// The same totals with the households' figures withheld: the production alone.
    public var withHouseholdFiguresWithheld: BuildingTotals {
        var copy = self
        copy.allocatedWh = 0
        copy.surplusWh = 0
        copy.consumptionWh = 0
        copy.selfConsumptionRate = nil
        copy.selfSufficiencyRate = nil
        copy.surplusRevenueCents = 0
        copy.withheld = true
        return copy
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        building = try container.decodeIfPresent(String.self, forKey: .building)
        productionWh = try container.decode(Int64.self, forKey: .productionWh)
        withheld = try container.decodeIfPresent(Bool.self, forKey: .withheld) ?? false
        allocatedWh = try container.decodeIfPresent(Int64.self, forKey: .allocatedWh) ?? 0
        surplusWh = try container.decodeIfPresent(Int64.self, forKey: .surplusWh) ?? 0
        consumptionWh = try container.decodeIfPresent(Int64.self, forKey: .consumptionWh) ?? 0
        selfConsumptionRate = try container.decodeIfPresent(Decimal.self, forKey: .selfConsumptionRate)
        selfSufficiencyRate = try container.decodeIfPresent(Decimal.self, forKey: .selfSufficiencyRate)
        surplusRevenueCents = try container.decodeIfPresent(Int64.self, forKey: .surplusRevenueCents) ?? 0
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(building, forKey: .building)
        try container.encode(productionWh, forKey: .productionWh)
        try container.encode(withheld, forKey: .withheld)
        if withheld {
            for key in [CodingKeys.allocatedWh, .surplusWh, .consumptionWh, .selfConsumptionRate, .selfSufficiencyRate, .surplusRevenueCents] {
                try container.encodeNil(forKey: key)
            }
        } else {
            try container.encode(allocatedWh, forKey: .allocatedWh)
            try container.encode(surplusWh, forKey: .surplusWh)
            try container.encode(consumptionWh, forKey: .consumptionWh)
            try container.encodeIfPresent(selfConsumptionRate, forKey: .selfConsumptionRate)
            try container.encodeIfPresent(selfSufficiencyRate, forKey: .selfSufficiencyRate)
            try container.encode(surplusRevenueCents, forKey: .surplusRevenueCents)
        }
    }
}

/// A building's figures over a period (`GET /api/v1/buildings/{building}/energy`).
public struct BuildingEnergyReport: Codable, Sendable, Equatable {
    public struct Day: Codable, Sendable, Equatable {
        public var date: LocalDate
        public var productionWh: Int64
        public var allocatedWh: Int64
        public var surplusWh: Int64
        public var consumptionWh: Int64
        public var surplusRevenueCents: Int64
        /// The day's slots by quality (production known or not): what a building statement says in
        /// words ("la production n'a pas été transmise du 12 au 14").
        public var slots: SlotCounts
        /// As the report's: the households' figures of the day are withheld (null in JSON).
        public var withheld: Bool
        enum CodingKeys: String, CodingKey {
            case date, slots, withheld
            case productionWh = "production_wh", allocatedWh = "allocated_wh", surplusWh = "surplus_wh", consumptionWh = "consumption_wh"
            case surplusRevenueCents = "surplus_revenue_cents"
        }

        package init(date: LocalDate, productionWh: Int64, allocatedWh: Int64, surplusWh: Int64, consumptionWh: Int64, surplusRevenueCents: Int64,
                     slots: SlotCounts = SlotCounts(measured: 0, estimated: 0, missing: 0)) {
            self.slots = slots
            self.date = date
            self.productionWh = productionWh
            self.allocatedWh = allocatedWh
            self.surplusWh = surplusWh
            self.consumptionWh = consumptionWh
            self.surplusRevenueCents = surplusRevenueCents
            self.withheld = false
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            date = try container.decode(LocalDate.self, forKey: .date)
            productionWh = try container.decode(Int64.self, forKey: .productionWh)
            slots = try container.decode(SlotCounts.self, forKey: .slots)
            withheld = try container.decodeIfPresent(Bool.self, forKey: .withheld) ?? false
            allocatedWh = try container.decodeIfPresent(Int64.self, forKey: .allocatedWh) ?? 0
            surplusWh = try container.decodeIfPresent(Int64.self, forKey: .surplusWh) ?? 0
            consumptionWh = try container.decodeIfPresent(Int64.self, forKey: .consumptionWh) ?? 0
            surplusRevenueCents = try container.decodeIfPresent(Int64.self, forKey: .surplusRevenueCents) ?? 0
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(date, forKey: .date)
            try container.encode(productionWh, forKey: .productionWh)
            try container.encode(slots, forKey: .slots)
            if withheld {
                try container.encode(true, forKey: .withheld)
                for key in [CodingKeys.allocatedWh, .surplusWh, .consumptionWh, .surplusRevenueCents] { try container.encodeNil(forKey: key) }
            } else {
                try container.encode(allocatedWh, forKey: .allocatedWh)
                try container.encode(surplusWh, forKey: .surplusWh)
                try container.encode(consumptionWh, forKey: .consumptionWh)
                try container.encode(surplusRevenueCents, forKey: .surplusRevenueCents)
            }
        }
    }

    public var building: String
    public var estate: String
    public var from: LocalDate
    public var to: LocalDate
    public var allocationKey: String
    public var productionWh: Int64
    public var allocatedWh: Int64
    public var surplusWh: Int64
    public var consumptionWh: Int64
    public var selfConsumptionRate: Decimal?
    public var selfSufficiencyRate: Decimal?
    public var surplusRevenueCents: Int64
    /// Dwellings served by a meter during the period.
    public var households: Int
    public var slots: SlotCounts
    public var days: [Day]
    public var problems: [String]
    public var revisedMonths: [String]
    /// The households' figures are withheld from this audience (`HouseholdPrivacy`): null in
    /// JSON, 0 here, in the totals and every day; the production stays.
    public var withheld: Bool
    /// The smallest group of households whose figures an association sees (`energy.privacyMinimumHouseholds`).
    public var minimumHouseholds: Int

    enum CodingKeys: String, CodingKey {
        case building, estate, from, to, households, slots, days, problems, withheld
        case allocationKey = "allocation_key"
        case productionWh = "production_wh", allocatedWh = "allocated_wh", surplusWh = "surplus_wh", consumptionWh = "consumption_wh"
        case selfConsumptionRate = "self_consumption_rate", selfSufficiencyRate = "self_sufficiency_rate", surplusRevenueCents = "surplus_revenue_cents"
        case revisedMonths = "revised_months", minimumHouseholds = "minimum_households"
    }

    package init(building: String, estate: String, from: LocalDate, to: LocalDate, allocationKey: String, productionWh: Int64, allocatedWh: Int64, surplusWh: Int64, consumptionWh: Int64, selfConsumptionRate: Decimal?, selfSufficiencyRate: Decimal?, surplusRevenueCents: Int64, households: Int, slots: SlotCounts, days: [Day], problems: [String], revisedMonths: [String],
                 minimumHouseholds: Int = EnergyReportRules.defaultMinimumHouseholds) {
        self.building = building
        self.estate = estate
        self.from = from
        self.to = to
        self.allocationKey = allocationKey
        self.productionWh = productionWh
        self.allocatedWh = allocatedWh
        self.surplusWh = surplusWh
        self.consumptionWh = consumptionWh
        self.selfConsumptionRate = selfConsumptionRate
        self.selfSufficiencyRate = selfSufficiencyRate
        self.surplusRevenueCents = surplusRevenueCents
        self.households = households
        self.slots = slots
        self.days = days
        self.problems = problems
        self.revisedMonths = revisedMonths
        self.withheld = false
        self.minimumHouseholds = minimumHouseholds
    }

    /// The same report with the households' figures withheld: the production alone, day by day.
    /// The engine's problems (which name dwellings) stay with staff.
    public var withHouseholdFiguresWithheld: BuildingEnergyReport {
        var copy = self
        copy.allocatedWh = 0
        copy.surplusWh = 0
        copy.consumptionWh = 0
        copy.selfConsumptionRate = nil
        copy.selfSufficiencyRate = nil
        copy.surplusRevenueCents = 0
        copy.withheld = true
        copy.days = days.map { day in
            var day = day
            day.allocatedWh = 0
            day.surplusWh = 0
            day.consumptionWh = 0
            day.surplusRevenueCents = 0
            day.withheld = true
            return day
        }
        return copy
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        building = try container.decode(String.self, forKey: .building)
        estate = try container.decode(String.self, forKey: .estate)
        from = try container.decode(LocalDate.self, forKey: .from)
        to = try container.decode(LocalDate.self, forKey: .to)
        allocationKey = try container.decode(String.self, forKey: .allocationKey)
        productionWh = try container.decode(Int64.self, forKey: .productionWh)
        allocatedWh = try container.decodeIfPresent(Int64.self, forKey: .allocatedWh) ?? 0
        surplusWh = try container.decodeIfPresent(Int64.self, forKey: .surplusWh) ?? 0
        consumptionWh = try container.decodeIfPresent(Int64.self, forKey: .consumptionWh) ?? 0
        selfConsumptionRate = try container.decodeIfPresent(Decimal.self, forKey: .selfConsumptionRate)
        selfSufficiencyRate = try container.decodeIfPresent(Decimal.self, forKey: .selfSufficiencyRate)
        surplusRevenueCents = try container.decodeIfPresent(Int64.self, forKey: .surplusRevenueCents) ?? 0
        households = try container.decode(Int.self, forKey: .households)
        slots = try container.decode(SlotCounts.self, forKey: .slots)
        days = try container.decode([Day].self, forKey: .days)
        problems = try container.decode([String].self, forKey: .problems)
        revisedMonths = try container.decode([String].self, forKey: .revisedMonths)
        withheld = try container.decodeIfPresent(Bool.self, forKey: .withheld) ?? false
        minimumHouseholds = try container.decodeIfPresent(Int.self, forKey: .minimumHouseholds) ?? EnergyReportRules.defaultMinimumHouseholds
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(building, forKey: .building)
        try container.encode(estate, forKey: .estate)
        try container.encode(from, forKey: .from)
        try container.encode(to, forKey: .to)
        try container.encode(allocationKey, forKey: .allocationKey)
        try container.encode(productionWh, forKey: .productionWh)
        if withheld {
            for key in [CodingKeys.allocatedWh, .surplusWh, .consumptionWh, .selfConsumptionRate, .selfSufficiencyRate, .surplusRevenueCents] {
                try container.encodeNil(forKey: key)
            }
        } else {
            try container.encode(allocatedWh, forKey: .allocatedWh)
            try container.encode(surplusWh, forKey: .surplusWh)
            try container.encode(consumptionWh, forKey: .consumptionWh)
            try container.encodeIfPresent(selfConsumptionRate, forKey: .selfConsumptionRate)
            try container.encodeIfPresent(selfSufficiencyRate, forKey: .selfSufficiencyRate)
            try container.encode(surplusRevenueCents, forKey: .surplusRevenueCents)
        }
        try container.encode(households, forKey: .households)
        try container.encode(slots, forKey: .slots)
        try container.encode(days, forKey: .days)
        try container.encode(problems, forKey: .problems)
        try container.encode(revisedMonths, forKey: .revisedMonths)
        try container.encode(withheld, forKey: .withheld)
        try container.encode(minimumHouseholds, forKey: .minimumHouseholds)
    }
}

/// An estate's buildings and the distribution of its households' savings, never one household's
/// figure (`GET /api/v1/estates/{estate}/energy`). For the estate's association, what
/// `HouseholdPrivacy` allows: a building's (or the estate's) household figures withheld below the
/// minimum group, the median rounded to the euro, no minimum or maximum; staff see everything.
public struct EstateEnergyReport: Codable, Sendable, Equatable {
    /// Households' savings over the period: their count, and for staff the minimum, median and
    /// maximum; for an association the median alone, rounded to the euro, from the minimum group
    /// up (null otherwise).
    public struct Distribution: Codable, Sendable, Equatable {
        public var count: Int
        public var minCents: Int64?
        public var medianCents: Int64?
        public var maxCents: Int64?
        enum CodingKeys: String, CodingKey {
            case count
            case minCents = "min_cents", medianCents = "median_cents", maxCents = "max_cents"
        }

        package init(count: Int, minCents: Int64?, medianCents: Int64?, maxCents: Int64?) {
            self.count = count
            self.minCents = minCents
            self.medianCents = medianCents
            self.maxCents = maxCents
        }
    }

    public var estate: String
    public var from: LocalDate
    public var to: LocalDate
    public var totals: BuildingTotals
    public var buildings: [BuildingTotals]
    public var households: Distribution
    public var revisedMonths: [String]
    /// The smallest group of households whose figures an association sees (`energy.privacyMinimumHouseholds`).
    public var minimumHouseholds: Int

    enum CodingKeys: String, CodingKey {
        case estate, from, to, totals, buildings, households
        case revisedMonths = "revised_months", minimumHouseholds = "minimum_households"
    }

    package init(estate: String, from: LocalDate, to: LocalDate, totals: BuildingTotals, buildings: [BuildingTotals], households: Distribution, revisedMonths: [String],
                 minimumHouseholds: Int = EnergyReportRules.defaultMinimumHouseholds) {
        self.estate = estate
        self.from = from
        self.to = to
        self.totals = totals
        self.buildings = buildings
        self.households = households
        self.revisedMonths = revisedMonths
        self.minimumHouseholds = minimumHouseholds
    }
}

extension EstateEnergyReport.Distribution {
    /// Count, minimum, median and maximum of households' savings in cents: staff's view.
    package init(savings: [Int64]) {
        let summary = EnergyReportRules.distribution(savings)
        self.init(count: summary.count, minCents: summary.min, medianCents: summary.median, maxCents: summary.max)
    }

    /// An association's view: the count, and the median rounded to the euro when `shown` and the
    /// households are at least `minimum`; never a minimum or a maximum.
    package init(savings: [Int64], minimum: Int, shown: Bool) {
        self.init(count: savings.count, minCents: nil, medianCents: shown ? HouseholdPrivacy.median(savings, minimum: minimum) : nil, maxCents: nil)
    }
}

/// A building's totals with its feed-in revenue unrounded, so sums round once.
package struct BuildingSums: Sendable {
    package var building: String
    package var estate: String
    package var production: Int64, allocated: Int64, surplus: Int64, consumption: Int64
    package var revenue: NanoEuros

    package var totals: BuildingTotals {
        BuildingTotals(building: building, production: production, allocated: allocated, surplus: surplus, consumption: consumption, revenue: revenue)
    }

    /// The totals of several buildings, the revenue rounded to the cent once.
    package static func total(_ buildings: [BuildingSums]) -> BuildingTotals {
        BuildingTotals(building: nil, production: buildings.reduce(0) { $0 + $1.production }, allocated: buildings.reduce(0) { $0 + $1.allocated },
                       surplus: buildings.reduce(0) { $0 + $1.surplus }, consumption: buildings.reduce(0) { $0 + $1.consumption },
                       revenue: buildings.reduce(NanoEuros.zero) { $0 + $1.revenue })
    }

    package init(building: String, estate: String, production: Int64, allocated: Int64, surplus: Int64, consumption: Int64, revenue: NanoEuros) {
        self.building = building
        self.estate = estate
        self.production = production
        self.allocated = allocated
        self.surplus = surplus
        self.consumption = consumption
        self.revenue = revenue
    }
}

/// Every estate's totals and the distribution of all households' savings
/// (`GET /api/v1/landlord/energy`, staff).
public struct LandlordEnergyReport: Codable, Sendable, Equatable {
    public struct Estate: Codable, Sendable, Equatable {
        public var estate: String
        public var totals: BuildingTotals
        /// Households served by a meter during the period.
        public var households: Int

        package init(estate: String, totals: BuildingTotals, households: Int) {
            self.estate = estate
            self.totals = totals
            self.households = households
        }
    }

    public var from: LocalDate
    public var to: LocalDate
    public var totals: BuildingTotals
    public var estates: [Estate]
    public var households: EstateEnergyReport.Distribution
    public var revisedMonths: [String]

    enum CodingKeys: String, CodingKey {
        case from, to, totals, estates, households
        case revisedMonths = "revised_months"
    }

    package init(from: LocalDate, to: LocalDate, totals: BuildingTotals, estates: [Estate], households: EstateEnergyReport.Distribution, revisedMonths: [String]) {
        self.from = from
        self.to = to
        self.totals = totals
        self.estates = estates
        self.households = households
        self.revisedMonths = revisedMonths
    }
}


import HubCore

/// Where the seasonal weights of an annual projection come from.
public enum ProjectionBasis: String, Codable, Sendable, Hashable {
    /// The building's own production over its last twelve full calendar months.
    case buildingHistory = "building_history"
    /// The monthly production profile of the settings (`energy.monthlyProductionProfile`).
    case productionProfile = "production_profile"
}

/// How a year's PV production usually splits among the twelve months, in millionths of the
/// year (January first, adding up to exactly 1,000,000), and where that split comes from.
///
/// A savings projection needs it because a household saves only when the panels produce: in
/// Pas-de-Calais a November day brings about a third of a June day, so days are not all worth
/// the same part of the year.
public struct MonthlyProductionShares: Sendable, Hashable {
    public static let wholeYear: Int64 = 1_000_000

    /// Each month's share of the year, in millionths, January first.
    public let millionths: [Int64]
    public let basis: ProjectionBasis

    /// From the settings' profile in parts per thousand (checked by `EnergySettings.validated()`:
    /// twelve non-negative values adding up to 1000).
    public init(profilePerMille: [Int]) {
        precondition(profilePerMille.count == 12 && profilePerMille.reduce(0, +) == 1000, "a profile is checked before it is used")
        millionths = profilePerMille.map { Int64($0) * 1000 }
        basis = .productionProfile
    }

    /// From a building's production of twelve calendar months, January first. Nil when a month
    /// produced nothing: a whole month without production says the panels were not there or not
    /// working, not how the sun shares out the year.
    public init?(buildingMonthlyWh: [Int64]) {
        guard buildingMonthlyWh.count == 12, buildingMonthlyWh.allSatisfy({ $0 > 0 }) else { return nil }
        millionths = MonthlyProductionShares.apportion(buildingMonthlyWh, total: MonthlyProductionShares.wholeYear)
        basis = .buildingHistory
    }

    /// `total` split in proportion to `weights` (positive, summing to more than 0), as whole
    /// numbers that add up to `total` exactly: each part rounded down, then the units left over
    /// go to the largest remainders (the earlier month on a tie).
    static func apportion(_ weights: [Int64], total: Int64) -> [Int64] {
        let sum = weights.reduce(0, +)
        var parts: [Int64] = []
        var remainders: [(index: Int, remainder: Int64)] = []
        for (index, weight) in weights.enumerated() {
            let product = Int128(weight) * Int128(total)
            parts.append(Int64(product / Int128(sum)))
            remainders.append((index, Int64(product % Int128(sum))))
        }
        let left = total - parts.reduce(0, +)
        for entry in remainders.sorted(by: { $0.remainder != $1.remainder ? $0.remainder > $1.remainder : $0.index < $1.index }).prefix(Int(left)) {
            parts[entry.index] += 1
        }
        return parts
    }
}

extension EnergyReportRules {
    /// 28, 29, 30 and 31 all divide it: a day of any month is a whole number of these parts.
    static let monthDaysCommonMultiple: Int64 = 377_580

    /// The savings of the year so far projected to the whole year with the seasons.
    ///
    /// Each counted day is worth its month's share of the year's production divided by the days
    /// of that month; the days counted so far together usually bring `productionShareSoFar` of a
    /// year's production, and the projection is savings so far / that share. Exact in integers:
    /// the share is kept in parts of a millionth (every month length divides
    /// `monthDaysCommonMultiple`) and the projection is rounded once, to the cent, half away from
    /// zero. No projection (nil) before any day was counted, or when the days counted usually
    /// produce nothing.
    ///
    /// - Parameters:
    ///   - countedDays: days counted in each month of `year`, January first (twelve values).
    /// - Returns: the share of the year's production the counted days bring, in millionths
    ///   (rounded), and the projected savings in cents.
    public static func seasonalProjection(soFar: NanoEuros, countedDays: [Int], year: Int,
                                          shares: MonthlyProductionShares) -> (productionShareSoFarMillionths: Int64, projectedCents: Int64?) {
        precondition(countedDays.count == 12 && shares.millionths.count == 12)
        // share so far = sum over months of millionths x counted / days in the month, in units
        // of 1 / monthDaysCommonMultiple of a millionth.
        var share: Int64 = 0
        for month in 1...12 {
            let days = Int64(LocalDate.daysIn(year: year, month: month))
            let counted = min(Int64(max(0, countedDays[month - 1])), days)
            share += shares.millionths[month - 1] * counted * (monthDaysCommonMultiple / days)
        }
        let millionths = NanoEuros.divideRounded(share, monthDaysCommonMultiple)
        guard countedDays.contains(where: { $0 > 0 }), share > 0 else { return (millionths, nil) }
        // projected = so far / (share / (1,000,000 x multiple)), in cents (10,000,000 nano-euros).
        let numerator = Int128(soFar.value) * Int128(monthDaysCommonMultiple) * Int128(MonthlyProductionShares.wholeYear)
        let denominator = Int128(share) * 10_000_000
        return (millionths, Int64(clamping: divideRounded(numerator, denominator)))
    }

    /// a / b rounded half away from zero (b > 0), in 128 bits.
    static func divideRounded(_ a: Int128, _ b: Int128) -> Int128 {
        let quotient = a / b
        let remainder = a % b
        if remainder.magnitude * 2 >= b.magnitude { return quotient + (a < 0 ? -1 : 1) }
        return quotient
    }
}

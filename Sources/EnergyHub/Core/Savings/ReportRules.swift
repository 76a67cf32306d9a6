import HubCore

/// Ranges of slots (indexes on a `SlotGrid`): the queue of figures to recompute, the slots a
/// report expects. Pure, so the upkeep and the reports share one definition.
public enum SlotRanges {
    /// The ranges clamped to `lower..<upper`, sorted and merged where they overlap or touch.
    public static func merge(_ ranges: [Range<Int64>], lower: Int64 = .min, upper: Int64 = .max) -> [Range<Int64>] {
        let clamped = ranges.map { max($0.lowerBound, lower)..<max(max($0.lowerBound, lower), min($0.upperBound, upper)) }
            .filter { !$0.isEmpty }.sorted { $0.lowerBound < $1.lowerBound }
        var merged: [Range<Int64>] = []
        for range in clamped {
            if let last = merged.last, range.lowerBound <= last.upperBound {
                merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
            } else {
                merged.append(range)
            }
        }
        return merged
    }

    /// The first `maxSlots` of merged ranges to work on now, and what is left for later.
    public static func firstChunk(_ merged: [Range<Int64>], maxSlots: Int64) -> (chunk: Range<Int64>, rest: [Range<Int64>])? {
        guard let first = merged.first else { return nil }
        let end = min(first.upperBound, first.lowerBound + max(1, maxSlots))
        var rest = Array(merged.dropFirst())
        if end < first.upperBound { rest.insert(end..<first.upperBound, at: 0) }
        return (first.lowerBound..<end, rest)
    }

    /// How many slots the ranges cover together (an overlap counted once).
    public static func covered(_ ranges: [Range<Int64>]) -> Int64 {
        merge(ranges).reduce(0) { $0 + ($1.upperBound - $1.lowerBound) }
    }
}

/// The arithmetic of the energy reports: what a period may be, the distribution an association
/// sees; the annual projection is in AnnualProjection.swift.
public enum EnergyReportRules {
    /// The longest period one report covers.
    public static let maximumDays = 1100

    /// The smallest group of households whose figures an estate's association sees: French practice
    /// for published residential energy data is at least 10 delivery points. The setting
    /// `energy.privacyMinimumHouseholds` replaces it.
    public static let defaultMinimumHouseholds = 10

    /// `from` and `to` are inclusive local dates, in order, at most `maximumDays` apart.
    public static func checkPeriod(from: LocalDate, to: LocalDate) throws {
        guard from <= to else { throw HubError.badRequest(field: "to", code: "invalid_range", "to (\(to)) must not be before from (\(from))") }
        guard from.distance(to: to) < maximumDays else {
            throw HubError.badRequest(field: "to", code: "invalid_range", "a report covers at most \(maximumDays) days")
        }
    }

    /// Households' savings in cents as a count, and the minimum, median (the mean of the middle
    /// two, rounded half away from zero, for an even count) and maximum: the landlord's staff's view,
    /// every figure whole.
    public static func distribution(_ savings: [Int64]) -> (count: Int, min: Int64?, median: Int64?, max: Int64?) {
        let cents = savings.sorted()
        guard !cents.isEmpty else { return (0, nil, nil, nil) }
        let middle = cents.count / 2
        let median = cents.count % 2 == 1 ? cents[middle] : NanoEuros.divideRounded(cents[middle - 1] + cents[middle], 2)
        return (cents.count, cents.first, median, cents.last)
    }
}

/// What an estate's association may see of its households' figures (issue 14, defect 10): sums and
/// middle values of groups large enough that no one can work out a single household's figure,
/// never an extreme. Pure, so the reports, the statements and their tests share one definition.
///
/// - **The month is the unit.** An association's period is widened to the whole calendar months it
///   touches, and every figure of a period of several months is the sum of its months' figures,
///   shown only when it is shown for each of those months. So two overlapping periods differ by
///   whole months whose figures are themselves published: differencing them isolates no day.
/// - **Groups of at least `minimum` households, every day.** A building's household figures (what
///   its households used, their consumption, the surplus and its value, the rates, day by day) are
///   shown for a month only when on every day of it either no household or at least `minimum`
///   households have figures (a meter that sent nothing that day does not count: ten households of
///   which nine are silent would show the tenth's consumption). Otherwise they are withheld; the
///   production of the panels, which is no household's, stays.
/// - **No total gives a withheld building away.** The estate's totals minus its published buildings
///   are the withheld buildings together: the estate's totals are shown only when, every day, those
///   together have no household or at least `minimum` households with figures.
/// - **No extremes; middle values rounded.** A distribution shows its count and, from `minimum`
///   households up, its quartiles or median rounded to the euro and to the kWh, never a minimum or
///   a maximum (each is one household's exact figure).
public enum HouseholdPrivacy {
    /// The calendar months of a period, widened to whole months: the first days.
    public static func months(from: LocalDate, to: LocalDate) -> [LocalDate] {
        var months: [LocalDate] = []
        var month = from.firstOfMonth
        while month <= to {
            months.append(month)
            month = month.firstOfNextMonth
        }
        return months
    }

    /// The period an association's figures cover: the whole calendar months `from`...`to` touches.
    public static func wholeMonths(from: LocalDate, to: LocalDate) -> (from: LocalDate, to: LocalDate) {
        (from.firstOfMonth, to.firstOfNextMonth.advanced(by: -1))
    }

    /// True when a group's figures may be shown: on every day, either no household or at least
    /// `minimum` households had figures.
    public static func disclosable<Counts: Sequence<Int>>(householdsPerDay: Counts, minimum: Int) -> Bool {
        householdsPerDay.allSatisfy { $0 == 0 || $0 >= minimum }
    }

    /// The smallest number of households with figures on a day that had any (0 when none had).
    public static func smallestGroup<Counts: Sequence<Int>>(householdsPerDay: Counts) -> Int {
        householdsPerDay.filter { $0 > 0 }.min() ?? 0
    }

    /// Which buildings' household figures an association sees, and whether the estate's totals are
    /// shown: `perDay[building][day]` is the number of households of that building with figures
    /// that day (a missing day counts 0). A building is shown when it is disclosable on every day;
    /// the estate's totals when, month by month, the buildings withheld that month together are.
    public static func decide(perDay: [String: [LocalDate: Int]], buildings: [String], from: LocalDate, to: LocalDate,
                              minimum: Int) -> (shown: Set<String>, estateTotalsShown: Bool) {
        var shown = Set(buildings)
        var estateShown = true
        for month in months(from: from, to: to) {
            let last = min(to, month.firstOfNextMonth.advanced(by: -1))
            var days: [LocalDate] = []
            var day = max(from, month)
            while day <= last {
                days.append(day)
                day = day.advanced(by: 1)
            }
            var withheld: [String] = []
            for building in buildings {
                let counts = perDay[building] ?? [:]
                if !disclosable(householdsPerDay: days.map { counts[$0] ?? 0 }, minimum: minimum) { withheld.append(building) }
            }
            let pooled = days.map { day in withheld.reduce(0) { $0 + (perDay[$1]?[day] ?? 0) } }
            if !disclosable(householdsPerDay: pooled, minimum: minimum) { estateShown = false }
            shown.subtract(withheld)
        }
        return (shown, estateShown)
    }

    /// The median of households' savings as an association sees it: rounded to the euro, and only
    /// from `minimum` households up.
    public static func median(_ savings: [Int64], minimum: Int) -> Int64? {
        guard savings.count >= minimum, let median = EnergyReportRules.distribution(savings).median else { return nil }
        return roundedTo(median, unit: 100)
    }

    /// `value` rounded to a multiple of `unit`, half away from zero.
    public static func roundedTo(_ value: Int64, unit: Int64) -> Int64 {
        NanoEuros.divideRounded(value, unit) * unit
    }
}

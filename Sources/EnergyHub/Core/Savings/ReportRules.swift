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

    /// Below this many households an estate's distribution is withheld: it would show a
    /// neighbour's saving.
    public static let minimumHouseholds = 3

    /// `from` and `to` are inclusive local dates, in order, at most `maximumDays` apart.
    public static func checkPeriod(from: LocalDate, to: LocalDate) throws {
        guard from <= to else { throw HubError.badRequest(field: "to", code: "invalid_range", "to (\(to)) must not be before from (\(from))") }
        guard from.distance(to: to) < maximumDays else {
            throw HubError.badRequest(field: "to", code: "invalid_range", "a report covers at most \(maximumDays) days")
        }
    }

    /// Households' savings in cents as a count and, from `minimumHouseholds` up, the minimum,
    /// the median (the mean of the middle two, rounded half away from zero, for an even count)
    /// and the maximum.
    public static func distribution(_ savings: [Int64]) -> (count: Int, min: Int64?, median: Int64?, max: Int64?) {
        let cents = savings.sorted()
        guard cents.count >= minimumHouseholds else { return (cents.count, nil, nil, nil) }
        let middle = cents.count / 2
        let median = cents.count % 2 == 1 ? cents[middle] : NanoEuros.divideRounded(cents[middle - 1] + cents[middle], 2)
        return (cents.count, cents.first, median, cents.last)
    }
}

import Foundation
import HubCore

/// How a building's households shared its production over a period, as a distribution that never
/// names a household and shows no extreme: how many there were and, when the building's household
/// figures may be shown to its association (`HouseholdPrivacy`: at least the minimum group, every
/// day), the quartiles of their solar shares rounded to the kWh and of their savings rounded to the
/// euro. No minimum or maximum: each is one household's exact figure. Otherwise withheld (null).
public struct HouseholdShares: Codable, Sendable, Equatable {
    /// The lower quartile, the median and the upper quartile (spreadsheet `QUARTILE.INC`), rounded.
    public struct Quartiles: Codable, Sendable, Equatable {
        public var lowerQuartile: Int64
        public var median: Int64
        public var upperQuartile: Int64

        enum CodingKeys: String, CodingKey {
            case median
            case lowerQuartile = "lower_quartile", upperQuartile = "upper_quartile"
        }

        public init(lowerQuartile: Int64, median: Int64, upperQuartile: Int64) {
            self.lowerQuartile = lowerQuartile
            self.median = median
            self.upperQuartile = upperQuartile
        }
    }

    /// Households served by a meter during the period.
    public var households: Int
    public var allocatedWh: Quartiles?
    public var savingsCents: Quartiles?
    /// The smallest group shown (`energy.privacyMinimumHouseholds`).
    public var minimumHouseholds: Int

    /// True when the group is too small to show a distribution.
    public var withheld: Bool { allocatedWh == nil }

    enum CodingKeys: String, CodingKey {
        case households
        case allocatedWh = "allocated_wh", savingsCents = "savings_cents", minimumHouseholds = "minimum_households"
    }

    public init(households: Int, allocatedWh: Quartiles?, savingsCents: Quartiles?, minimumHouseholds: Int = EnergyReportRules.defaultMinimumHouseholds) {
        self.households = households
        self.allocatedWh = allocatedWh
        self.savingsCents = savingsCents
        self.minimumHouseholds = minimumHouseholds
    }

    /// The distribution of these households' figures (one pair per household, in any order):
    /// withheld unless `disclosable` (the building's household figures may be shown, every day) and
    /// at least `minimum` households; the solar shares rounded to the kWh, the savings to the euro.
    public init(allocatedWh: [Int64], savingsCents: [Int64], minimum: Int = EnergyReportRules.defaultMinimumHouseholds, disclosable: Bool = true) {
        households = allocatedWh.count
        minimumHouseholds = minimum
        guard disclosable, allocatedWh.count >= minimum, let allocated = EnergyReportRules.quartiles(allocatedWh),
              let savings = EnergyReportRules.quartiles(savingsCents) else {
            self.allocatedWh = nil
            self.savingsCents = nil
            return
        }
        func rounded(_ summary: EnergyReportRules.FiveNumbers, _ unit: Int64) -> Quartiles {
            Quartiles(lowerQuartile: HouseholdPrivacy.roundedTo(summary.lowerQuartile, unit: unit), median: HouseholdPrivacy.roundedTo(summary.median, unit: unit),
                      upperQuartile: HouseholdPrivacy.roundedTo(summary.upperQuartile, unit: unit))
        }
        self.allocatedWh = rounded(allocated, 1000)
        self.savingsCents = rounded(savings, 100)
    }
}

/// A device that served a building during a period, and what went wrong with it: the spans of a
/// day or more without a reading, and the messages refused (counted by reason, never their payload,
/// which stays with staff).
public struct DeviceHealth: Codable, Sendable, Equatable {
    /// A span without any reading, from the last reading before it (or the start of service in the
    /// period) to the next one (or the end of the period).
    public struct Silence: Codable, Sendable, Equatable {
        public var from: Instant
        public var to: Instant

        public init(from: Instant, to: Instant) {
            self.from = from
            self.to = to
        }
    }

    public struct Refused: Codable, Sendable, Equatable {
        public var reason: QuarantineReason
        public var count: Int

        public init(reason: QuarantineReason, count: Int) {
            self.reason = reason
            self.count = count
        }
    }

    public var device: String
    public var kind: DeviceKind
    public var silences: [Silence]
    /// Messages received in the period and still refused (not released by a later reset confirmation).
    public var refused: [Refused]

    public var isSilent: Bool { !silences.isEmpty }
    public var refusedCount: Int { refused.reduce(0) { $0 + $1.count } }
    /// Silent or with refused messages: a device someone should look at.
    public var needsAttention: Bool { isSilent || !refused.isEmpty }

    public init(device: String, kind: DeviceKind, silences: [Silence], refused: [Refused]) {
        self.device = device
        self.kind = kind
        self.silences = silences
        self.refused = refused
    }
}

extension EnergyReportRules {
    /// A device is silent when no reading covers a day or more: a box sends every few minutes, so
    /// a whole day without one is a box to go and look at, not a network hiccup.
    public static let silenceMilliseconds: Int64 = 86_400_000

    /// The silences of a device over [from, to), from its first and last reading in that window
    /// and the gaps between consecutive readings of at least `silenceMilliseconds` (oldest first).
    public static func silences(from: Instant, to: Instant, first: Instant?, last: Instant?,
                                gaps: [(after: Instant, before: Instant)]) -> [DeviceHealth.Silence] {
        guard let first, let last else {
            return to.milliseconds(since: from) >= silenceMilliseconds ? [.init(from: from, to: to)] : []
        }
        var spans: [DeviceHealth.Silence] = []
        if first.milliseconds(since: from) >= silenceMilliseconds { spans.append(.init(from: from, to: first)) }
        for gap in gaps where gap.before.milliseconds(since: gap.after) >= silenceMilliseconds { spans.append(.init(from: gap.after, to: gap.before)) }
        if to.milliseconds(since: last) >= silenceMilliseconds { spans.append(.init(from: last, to: to)) }
        return spans
    }

    /// The smallest value, the three quartiles and the largest of a list.
    public struct FiveNumbers: Sendable, Equatable {
        public var min: Int64
        public var lowerQuartile: Int64
        public var median: Int64
        public var upperQuartile: Int64
        public var max: Int64

        public init(min: Int64, lowerQuartile: Int64, median: Int64, upperQuartile: Int64, max: Int64) {
            self.min = min
            self.lowerQuartile = lowerQuartile
            self.median = median
            self.upperQuartile = upperQuartile
            self.max = max
        }
    }

    /// Minimum, quartiles and maximum of a non-empty list, each by linear interpolation between the
    /// two nearest ranks (spreadsheet `QUARTILE.INC`, R's type 7), rounded half away from zero.
    public static func quartiles(_ values: [Int64]) -> FiveNumbers? {
        let sorted = values.sorted()
        guard let low = sorted.first, let high = sorted.last else { return nil }
        func quartile(_ quarter: Int) -> Int64 {
            let position = quarter * (sorted.count - 1)
            let index = position / 4
            let rest = Int64(position % 4)
            guard rest > 0 else { return sorted[index] }
            return sorted[index] + NanoEuros.divideRounded((sorted[index + 1] - sorted[index]) * rest, 4)
        }
        return .init(min: low, lowerQuartile: quartile(1), median: quartile(2), upperQuartile: quartile(3), max: high)
    }
}

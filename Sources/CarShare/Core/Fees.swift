import HubCore

/// An amount that applies from a local date until the next one in its list: a fee change next
/// year does not rewrite the past.
public struct DatedAmount: Hashable, Codable, Sendable {
    public var from: LocalDate
    public var cents: Cents

    public init(from: LocalDate, cents: Cents) {
        self.from = from
        self.cents = cents
    }
}

extension Array where Element == DatedAmount {
    /// The amount in force on `date`: the latest entry starting on or before it; nil before the first.
    public func amount(on date: LocalDate) -> Cents? {
        self.filter { $0.from <= date }.max { $0.from < $1.from }?.cents
    }
}

/// How long a membership lasts.
public enum MembershipPeriodKind: String, Codable, Sendable, CaseIterable {
    /// 1 January to 31 December, as French associations usually run it.
    case calendarYear
    /// Twelve months from the start date.
    case twelveMonths
}

/// The local days a membership covers: [start, end).
public struct MembershipPeriod: Hashable, Codable, Sendable, CustomStringConvertible {
    public var start: LocalDate
    /// The first day no longer covered.
    public var end: LocalDate

    public init(start: LocalDate, end: LocalDate) {
        self.start = start
        self.end = end
    }

    /// The period starting at (or, for a calendar year, containing) `date`.
    public static func starting(_ date: LocalDate, kind: MembershipPeriodKind) -> MembershipPeriod {
        switch kind {
        case .calendarYear:
            return MembershipPeriod(start: LocalDate(year: date.year, month: 1, day: 1)!, end: LocalDate(year: date.year + 1, month: 1, day: 1)!)
        case .twelveMonths:
            let day = min(date.day, LocalDate.daysIn(year: date.year + 1, month: date.month))
            return MembershipPeriod(start: date, end: LocalDate(year: date.year + 1, month: date.month, day: day)!)
        }
    }

    public func covers(_ date: LocalDate) -> Bool { start <= date && date < end }

    public func overlaps(_ other: MembershipPeriod) -> Bool { start < other.end && other.start < end }

    public var description: String { "\(start)..<\(end)" }

    /// "année 2026" or "du 15/03/2026 au 14/03/2027", for statements.
    public var frenchLabel: String {
        if start.month == 1 && start.day == 1 && end == LocalDate(year: start.year + 1, month: 1, day: 1)! { return "année \(start.year)" }
        return "du \(start.frenchText) au \(end.advanced(by: -1).frenchText)"
    }
}

extension LocalDate {
    /// "2026-11": the month this date falls in.
    public var monthKey: String { String(description.prefix(7)) }
}

/// Membership validity: a rider may ride on a date when one of their memberships covers it.
public enum MembershipRules {
    public static func isValid(_ periods: [MembershipPeriod], on date: LocalDate) -> Bool {
        periods.contains { $0.covers(date) }
    }

    /// Where the fee of a membership bought on `purchase` goes: a membership for a later year than
    /// the purchase is income of that year (487, released when the period starts), else 756.
    public static func incomeAccount(period: MembershipPeriod, purchase: LocalDate, deferNextYear: Bool) -> Account {
        deferNextYear && period.start.year > purchase.year ? .deferredIncome : .memberships
    }
}

import HubCore

/// Settings of the car share (section `carshare` of the settings file). Every key has a default.
public struct CarShareSettings: Codable, Sendable, Equatable {
    /// The optional check of the French "transport d'utilité sociale" rules (Code des transports
    /// L3133-1, décret 2019-850): trips at most 100 km, participation at most 0.32 EUR/km.
    public struct SocialTransport: Codable, Sendable, Equatable {
        public var enabled = false
        public var maxKilometres: Int64 = 100
        public var maxCentsPerKilometre: Int64 = 32
        public init() {}
    }

    /// Membership fee, by the date the membership period starts.
    public var membershipFees = [DatedAmount(from: LocalDate(year: 2000, month: 1, day: 1)!, cents: Cents(800))]
    /// Trip fee per rider, by the local date of the trip.
    public var tripFees = [DatedAmount(from: LocalDate(year: 2000, month: 1, day: 1)!, cents: Cents(200))]
    public var membershipPeriod = MembershipPeriodKind.calendarYear
    /// A membership bought for next year is booked to 487 and becomes 756 income when its year starts.
    public var deferNextYearMemberships = true
    /// A cancellation less than this many hours before the start is a late cancellation.
    public var lateCancellationHours = 24
    public var lateCancellationKeepsFee = true
    public var noShowKeepsFee = true
    /// A fee is taken from the member's prepaid credit (4191) before a debt (411) is recorded.
    public var usePrepaidCreditFirst = true
    /// The longest trip a log may record; more is taken as an odometer typo.
    public var maxTripKilometres: Int64 = 400
    /// A driver's licence check is valid this many days.
    public var licenceCheckValidDays = 366
    public var socialTransport = SocialTransport()
    /// The local time zone of dates, months and fees.
    public var timeZone = "Europe/Paris"
    /// Where closing a month keeps the ledger's anchor, outside the database; empty: beside the
    /// database file (`<database>.anchors`).
    public var ledgerAnchorsFile = ""

    public init() {}

    /// Checks values that would make the rules misbehave.
    public func validated() throws -> CarShareSettings {
        guard !membershipFees.isEmpty, membershipFees.allSatisfy({ $0.cents >= .zero }) else {
            throw HubError.configuration("carshare.membershipFees must list at least one {from, cents} with cents >= 0")
        }
        guard !tripFees.isEmpty, tripFees.allSatisfy({ $0.cents >= .zero }) else {
            throw HubError.configuration("carshare.tripFees must list at least one {from, cents} with cents >= 0")
        }
        guard Set(membershipFees.map(\.from)).count == membershipFees.count, Set(tripFees.map(\.from)).count == tripFees.count else {
            throw HubError.configuration("carshare fees: two amounts start on the same date")
        }
        guard lateCancellationHours >= 0 else { throw HubError.configuration("carshare.lateCancellationHours must be >= 0") }
        guard maxTripKilometres > 0 else { throw HubError.configuration("carshare.maxTripKilometres must be > 0") }
        guard socialTransport.maxKilometres > 0, socialTransport.maxCentsPerKilometre > 0 else {
            throw HubError.configuration("carshare.socialTransport limits must be > 0")
        }
        _ = try LocalTimeZone(identifier: timeZone)
        return self
    }

    public var zone: LocalTimeZone { (try? LocalTimeZone(identifier: timeZone)) ?? .paris }
}

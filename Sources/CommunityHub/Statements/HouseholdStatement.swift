import CarShareCore
import EnergyCore
import Foundation
import HubCore

/// What one household receives for a month (issue 10): its energy figures day by day, what the
/// data was worth, the year so far, the car-share members of the dwelling, and plain sentences on
/// how to read it. Built from the figures the API serves (`DwellingEnergyReport`,
/// `MemberStatement`); rendered as JSON, a CSV row of the staff summary and a printable A4 page.
public struct HouseholdStatement: Codable, Sendable, Equatable {
    public var month: String
    public var landlord: String
    public var association: String?
    public var estate: String
    public var dwelling: String
    public var energy: DwellingEnergyReport
    /// False when too few of the month's slots were measured or estimated: the page says so
    /// instead of printing a saving that would mislead.
    public var enoughData: Bool
    /// The data quality in words ("3 jours estimés : le compteur n'a pas transmis du 12 au 14 octobre.").
    public var quality: [String]
    public var carShare: [MemberMonth]

    enum CodingKeys: String, CodingKey {
        case month, landlord, association, estate, dwelling, energy, quality
        case enoughData = "enough_data", carShare = "car_share"
    }

    /// A car-share member of the dwelling over the month.
    public struct MemberMonth: Codable, Sendable, Equatable {
        public var member: Int64
        public var name: String
        public var trips: Int
        public var kilometres: Int64
        public var chargedCents: Cents
        public var paidCents: Cents
        /// At the end of the month: positive in credit, negative owed.
        public var balanceCents: Cents

        enum CodingKeys: String, CodingKey {
            case member, name, trips, kilometres
            case chargedCents = "charged_cents", paidCents = "paid_cents", balanceCents = "balance_cents"
        }

        /// The member's month from their whole statement: trips and lines dated in the month, the
        /// balance after the month's last line (later lines do not change a month's statement).
        public init(_ statement: MemberStatement, month first: LocalDate, zone: LocalTimeZone) {
            let next = first.firstOfNextMonth
            member = statement.member
            name = statement.name
            let trips = statement.trips.filter { let day = zone.localDate(of: $0.start); return day >= first && day < next }
            self.trips = trips.count
            kilometres = trips.reduce(0) { $0 + $1.distanceKm }
            let lines = statement.lines.filter { $0.date >= first && $0.date < next }
            chargedCents = lines.reduce(Cents.zero) { $0 + $1.chargedCents }
            paidCents = lines.reduce(Cents.zero) { $0 + $1.paidCents }
            balanceCents = statement.lines.last { $0.date < next }?.balanceCents ?? .zero
        }
    }

    public init(month: String, landlord: String, association: String?, estate: String, energy: DwellingEnergyReport, carShare: [MemberMonth]) {
        self.month = month
        self.landlord = landlord
        self.association = association
        self.estate = estate
        self.dwelling = energy.dwelling
        self.energy = energy
        self.enoughData = StatementRules.enoughData(energy.slots)
        self.quality = StatementRules.qualitySentences(energy.days)
        self.carShare = carShare
    }
}

/// The rules statements apply: pure functions over the figures.
public enum StatementRules {
    /// A month's saving is printed when at least 80 % of the slots the meter should have given are
    /// measured or estimated; below that the statement says the data is missing.
    public static let minimumKnownPercent = 80

    public static func enoughData(_ slots: SlotCounts) -> Bool {
        let known = slots.measured + slots.estimated
        let expected = known + slots.missing
        return expected > 0 && known * 100 >= expected * minimumKnownPercent
    }

    /// Runs of days with estimated or missing slots, as sentences a resident can read.
    public static func qualitySentences(_ days: [DwellingEnergyReport.Day]) -> [String] {
        enum State: Equatable { case complete, estimated, missing }
        func state(_ day: DwellingEnergyReport.Day) -> State {
            if day.slots.missing > 0 { return .missing }
            return day.slots.estimated > 0 ? .estimated : .complete
        }
        var sentences: [String] = []
        var index = 0
        while index < days.count {
            let current = state(days[index])
            var end = index
            while end + 1 < days.count && state(days[end + 1]) == current { end += 1 }
            let first = days[index].date
            let last = days[end].date
            let span = first == last ? "le \(French.dayAndMonth(first))" : "du \(first.month == last.month ? French.dayOfMonth(first) : French.dayAndMonth(first)) au \(French.dayAndMonth(last))"
            let count = end - index + 1
            switch current {
            case .complete: break
            case .estimated:
                sentences.append("\(French.count(count, "jour estimé", "jours estimés")) : le compteur n'a pas transmis tous ses relevés \(span) ; la consommation manquante est estimée.")
            case .missing:
                sentences.append("\(French.count(count, "jour", "jours")) sans relevé complet : le compteur n'a pas transmis \(span) ; ces heures ne sont pas comptées.")
            }
            index = end + 1
        }
        return sentences
    }
}

import CarShareCore
import Foundation
import HubCore

/// What the association's car share comes to for a month (issue 10), for the association and the
/// landlord's staff: the month's income and expenses with the car's use (trips and kilometres by
/// kind of use, kWh charged, deliveries), the estate's members and the memberships sold, each
/// member's month and balance at its end, the cash book, and the ledger's hash-chain head at the
/// month's close, printed so that a later change to a closed month shows against the paper.
/// Rendered as JSON and a printable A4 page; the month's journal goes out beside it in hledger form.
public struct AssociationStatement: Codable, Sendable, Equatable {
    public var month: String
    public var landlord: String
    public var association: String?
    public var estate: String
    /// Income (7) and expenses (6) of the month, with `carUse`: the logbook's figures of every car.
    public var incomeStatement: IncomeStatement
    /// The estate's members who count in the month: a membership covering a day of it, or a
    /// ledger line on or before its last day. Each with the month's trips, charges, payments and
    /// the balance after the month's last line.
    public var members: [HouseholdStatement.MemberMonth]
    /// Of those, how many held a membership valid on the month's last day.
    public var membersUpToDate: Int
    /// Memberships of the estate's members bought in the month (by purchase date).
    public var membershipsSold: [MembershipView]
    public var cashBook: CashBook
    public var ledgerHead: LedgerHead

    enum CodingKeys: String, CodingKey {
        case month, landlord, association, estate, members
        case incomeStatement = "income_statement", membersUpToDate = "members_up_to_date", membershipsSold = "memberships_sold",
             cashBook = "cash_book", ledgerHead = "ledger_head"
    }

    /// The month's car use (every car); empty figures when the income statement has none.
    public var carUse: LogbookFigures {
        incomeStatement.carUse ?? LogbookFigures.make(lines: [], gaps: [], chargedWh: 0, chargingCost: .zero)
    }

    public var membershipsSoldCents: Cents { membershipsSold.reduce(Cents.zero) { $0 + $1.feeCents } }

    /// `members` are the estate's members (as `MemberView`, with their memberships) and
    /// `statements` their statements; the month's facts are taken from both.
    public init(month: String, landlord: String, association: String?, estate: String, incomeStatement: IncomeStatement,
                members: [MemberView], statements: [MemberStatement], cashBook: CashBook, ledgerHead: LedgerHead, zone: LocalTimeZone) throws {
        guard month.count == 7, let first = LocalDate(parsing: month + "-01") else {
            throw HubError.badRequest(field: "month", code: "invalid_date", "month \(month) is not YYYY-MM")
        }
        let next = first.firstOfNextMonth
        let last = next.advanced(by: -1)
        self.month = month
        self.landlord = landlord
        self.association = association
        self.estate = estate
        self.incomeStatement = incomeStatement
        self.cashBook = cashBook
        self.ledgerHead = ledgerHead
        let byMember = Dictionary(statements.map { ($0.member, $0) }, uniquingKeysWith: { first, _ in first })
        var months: [HouseholdStatement.MemberMonth] = []
        var upToDate = 0
        var sold: [MembershipView] = []
        for member in members.sorted(by: { $0.id < $1.id }) where member.estate == estate {
            let covering = member.memberships.contains { $0.periodStart < next && $0.periodEnd > first }
            let statement = byMember[member.id]
            let hasLines = statement?.lines.contains { $0.date < next } ?? false
            sold += member.memberships.filter { $0.purchasedOn >= first && $0.purchasedOn < next }
            // A member registered after the month, with nothing in it, is not part of it.
            guard covering || hasLines, let statement else { continue }
            months.append(HouseholdStatement.MemberMonth(statement, month: first, zone: zone))
            if member.memberships.contains(where: { $0.periodStart <= last && $0.periodEnd > last }) { upToDate += 1 }
        }
        self.members = months
        self.membersUpToDate = upToDate
        self.membershipsSold = sold.sorted { ($0.purchasedOn, $0.id) < ($1.purchasedOn, $1.id) }
    }
}

/// The association's month as an hledger journal: the existing export of the whole ledger,
/// restricted to the entries dated in the month.
public enum AssociationJournal {
    public static func month(_ entries: [PostedEntry], month: String) -> String {
        // The balance assertions run from zero on the first of the month: they check the month's
        // own postings, which is what an auditor replays with `hledger check` for one month.
        HledgerJournal.export(entries, title: "Journal de la voiture partagée, \(French.month(month)) : écritures datées du mois seulement, soldes comptés depuis le 1er du mois")
    }
}

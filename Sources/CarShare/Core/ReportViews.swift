import Foundation
import HubCore

/// Balance of one account, derived from the entry lines.
public struct AccountBalance: Codable, Sendable, Equatable {
    public var account: Account
    public var label: String
    public var debitCents: Cents
    public var creditCents: Cents
    /// Debit minus credit.
    public var balanceCents: Cents
    enum CodingKeys: String, CodingKey {
        case account, label
        case debitCents = "debit_cents", creditCents = "credit_cents", balanceCents = "balance_cents"
    }

    package init(account: Account, label: String, debitCents: Cents, creditCents: Cents, balanceCents: Cents) {
        self.account = account
        self.label = label
        self.debitCents = debitCents
        self.creditCents = creditCents
        self.balanceCents = balanceCents
    }
}

public struct MemberBalance: Codable, Sendable, Equatable {
    public var member: Int64
    /// What the member owes (411).
    public var owedCents: Cents
    /// What the member has paid in advance (4191).
    public var creditCents: Cents
    enum CodingKeys: String, CodingKey {
        case member
        case owedCents = "owed_cents", creditCents = "credit_cents"
    }

    package init(member: Int64, owedCents: Cents, creditCents: Cents) {
        self.member = member
        self.owedCents = owedCents
        self.creditCents = creditCents
    }
}

/// `GET /carshare/reports/balances`: every account's balance, and each member's, from the lines.
public struct BalancesReport: Codable, Sendable, Equatable {
    public var accounts: [AccountBalance]
    public var members: [MemberBalance]
    public var totalDebitCents: Cents
    public var totalCreditCents: Cents
    public var lines: Int64
    enum CodingKeys: String, CodingKey {
        case accounts, members, lines
        case totalDebitCents = "total_debit_cents", totalCreditCents = "total_credit_cents"
    }

    package init(accounts: [AccountBalance], members: [MemberBalance], totalDebitCents: Cents, totalCreditCents: Cents, lines: Int64) {
        self.accounts = accounts
        self.members = members
        self.totalDebitCents = totalDebitCents
        self.totalCreditCents = totalCreditCents
        self.lines = lines
    }
}

public struct StatementLine: Codable, Sendable, Equatable {
    public var date: LocalDate
    public var entry: Int64
    public var label: String
    /// Charged to the member (fees).
    public var chargedCents: Cents
    /// Paid by the member, or given back to them (negative).
    public var paidCents: Cents
    /// Credit minus debt after this line.
    public var balanceCents: Cents
    enum CodingKeys: String, CodingKey {
        case date, entry, label
        case chargedCents = "charged_cents", paidCents = "paid_cents", balanceCents = "balance_cents"
    }

    package init(date: LocalDate, entry: Int64, label: String, chargedCents: Cents, paidCents: Cents, balanceCents: Cents) {
        self.date = date
        self.entry = entry
        self.label = label
        self.chargedCents = chargedCents
        self.paidCents = paidCents
        self.balanceCents = balanceCents
    }
}

/// `GET /carshare/members/{id}/statement`: memberships, trips, payments and balance, in French for paper.
public struct MemberStatement: Codable, Sendable, Equatable {
    public var member: Int64
    public var name: String
    public var memberships: [MembershipView]
    public var trips: [TripView]
    public var lines: [StatementLine]
    public var owedCents: Cents
    public var creditCents: Cents
    /// Positive: the member is in credit; negative: they owe it.
    public var balanceCents: Cents
    public var text: String
    enum CodingKeys: String, CodingKey {
        case member, name, memberships, trips, lines, text
        case owedCents = "owed_cents", creditCents = "credit_cents", balanceCents = "balance_cents"
    }

    package init(member: Int64, name: String, memberships: [MembershipView], trips: [TripView], lines: [StatementLine], owedCents: Cents, creditCents: Cents, balanceCents: Cents, text: String) {
        self.member = member
        self.name = name
        self.memberships = memberships
        self.trips = trips
        self.lines = lines
        self.owedCents = owedCents
        self.creditCents = creditCents
        self.balanceCents = balanceCents
        self.text = text
    }
}

public struct CashBookLine: Codable, Sendable, Equatable {
    public var date: LocalDate
    public var entry: Int64
    public var label: String
    public var inCents: Cents
    public var outCents: Cents
    public var balanceCents: Cents
    enum CodingKeys: String, CodingKey {
        case date, entry, label
        case inCents = "in_cents", outCents = "out_cents", balanceCents = "balance_cents"
    }

    package init(date: LocalDate, entry: Int64, label: String, inCents: Cents, outCents: Cents, balanceCents: Cents) {
        self.date = date
        self.entry = entry
        self.label = label
        self.inCents = inCents
        self.outCents = outCents
        self.balanceCents = balanceCents
    }
}

/// `GET /carshare/reports/cash-book`: the cash box (530), line by line, with its running balance.
public struct CashBook: Codable, Sendable, Equatable {
    public var from: LocalDate
    public var to: LocalDate
    public var openingCents: Cents
    public var lines: [CashBookLine]
    public var closingCents: Cents
    enum CodingKeys: String, CodingKey {
        case from, to, lines
        case openingCents = "opening_cents", closingCents = "closing_cents"
    }

    package init(from: LocalDate, to: LocalDate, openingCents: Cents, lines: [CashBookLine], closingCents: Cents) {
        self.from = from
        self.to = to
        self.openingCents = openingCents
        self.lines = lines
        self.closingCents = closingCents
    }
}

public struct IncomeLine: Codable, Sendable, Equatable {
    public var account: Account
    public var label: String
    public var amountCents: Cents
    enum CodingKeys: String, CodingKey {
        case account, label
        case amountCents = "amount_cents"
    }

    package init(account: Account, label: String, amountCents: Cents) {
        self.account = account
        self.label = label
        self.amountCents = amountCents
    }
}

/// `GET /carshare/reports/income-statement?month=YYYY-MM`: income (7) and expenses (6) of a month.
public struct IncomeStatement: Codable, Sendable, Equatable {
    public var month: String
    public var income: [IncomeLine]
    public var expenses: [IncomeLine]
    public var totalIncomeCents: Cents
    public var totalExpensesCents: Cents
    public var resultCents: Cents
    /// The month's use of the cars (the logbook's figures): km by kind of use, charging, deliveries.
    public var carUse: LogbookFigures?
    enum CodingKeys: String, CodingKey {
        case month, income, expenses
        case totalIncomeCents = "total_income_cents", totalExpensesCents = "total_expenses_cents", resultCents = "result_cents", carUse = "car_use"
    }

    package init(month: String, income: [IncomeLine], expenses: [IncomeLine], totalIncomeCents: Cents, totalExpensesCents: Cents, resultCents: Cents) {
        self.month = month
        self.income = income
        self.expenses = expenses
        self.totalIncomeCents = totalIncomeCents
        self.totalExpensesCents = totalExpensesCents
        self.resultCents = resultCents
    }
}

/// `GET /carshare/reports/trips`: trips with kilometres and energy, and the charging of the period.
public struct TripList: Codable, Sendable, Equatable {
    public var from: LocalDate
    public var to: LocalDate
    public var trips: [TripView]
    public var totalKm: Int64
    /// Sum of the trips' estimates (battery gauge times capacity).
    public var estimatedEnergyWh: WattHours
    /// What the charging log says went into the cars.
    public var chargedEnergyWh: WattHours
    public var chargingCostCents: Cents
    public var flaggedTrips: Int
    enum CodingKeys: String, CodingKey {
        case from, to, trips
        case totalKm = "total_km", estimatedEnergyWh = "estimated_energy_wh", chargedEnergyWh = "charged_energy_wh",
             chargingCostCents = "charging_cost_cents", flaggedTrips = "flagged_trips"
    }

    package init(from: LocalDate, to: LocalDate, trips: [TripView], totalKm: Int64, estimatedEnergyWh: WattHours, chargedEnergyWh: WattHours, chargingCostCents: Cents, flaggedTrips: Int) {
        self.from = from
        self.to = to
        self.trips = trips
        self.totalKm = totalKm
        self.estimatedEnergyWh = estimatedEnergyWh
        self.chargedEnergyWh = chargedEnergyWh
        self.chargingCostCents = chargingCostCents
        self.flaggedTrips = flaggedTrips
    }
}

/// `GET /carshare/ledger/verify` and `community-hub ledger verify`.
public struct VerifyReport: Codable, Sendable, Equatable {
    public var ok: Bool
    public var entries: Int64
    public var lastHash: String
    public var brokenEntry: Int64?
    public var problem: String?
    /// The month whose anchor (kept outside the database at its close) the ledger no longer matches.
    public var brokenMonth: String?
    /// Closed months checked against their anchors.
    public var anchoredMonths: Int?
    enum CodingKeys: String, CodingKey {
        case ok, entries, problem
        case lastHash = "last_hash", brokenEntry = "broken_entry", brokenMonth = "broken_month", anchoredMonths = "anchored_months"
    }

    package init(ok: Bool, entries: Int64, lastHash: String, brokenEntry: Int64?, problem: String?) {
        self.ok = ok
        self.entries = entries
        self.lastHash = lastHash
        self.brokenEntry = brokenEntry
        self.problem = problem
    }
}


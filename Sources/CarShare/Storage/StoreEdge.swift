import CarShareCore
import Foundation
import HubCore
import Shared

/// What the SQLite and the PostgreSQL stores share beyond the protocol: the settings, the access
/// checks on a member, what of an entry a caller may see, and the input checks. One copy, so the
/// two databases answer the same caller the same way.
protocol CarShareStoreEdge: CarShareStore {
    var settings: CarShareSettings { get }
}

/// The member row as the access rules need it.
struct MemberScope: Sendable {
    var id: Int64
    var name: String
    var dwelling: String?
    var estate: String?
}

extension CarShareStoreEdge {
    func today(_ now: Instant) -> LocalDate { zone.localDate(of: now) }

    /// Whether the caller may see this member's bookings and balance.
    func canSee(_ identity: Identity, _ member: MemberScope) -> Bool {
        AccessPolicy.allows(identity, .read, .member(dwelling: member.dwelling, estate: member.estate))
    }

    /// Whether the caller may manage (memberships, payments, refunds) this member.
    func canManage(_ identity: Identity, _ member: MemberScope) -> Bool {
        AccessPolicy.allows(identity, .manage, .member(dwelling: member.dwelling, estate: member.estate))
    }

    func requireSee(_ identity: Identity, _ member: MemberScope, field: String = "member") throws {
        guard canSee(identity, member) else { throw denied(field, "member \(member.id) is not yours to see") }
    }

    func requireManage(_ identity: Identity, _ member: MemberScope) throws {
        guard canManage(identity, member) else { throw denied("member", "your role does not let you manage member \(member.id)") }
    }

    /// An entry as the caller may see it (`AccessPolicy.disclosesLedgerEntry`): whole, without the
    /// members of another estate (and its label), or not at all.
    func disclosed(_ entry: PostedEntry, to identity: Identity, members: [Int64: MemberScope]) -> PostedEntry? {
        if identity.role == .staff { return entry }
        let named = entry.namedMembers
        switch AccessPolicy.disclosesLedgerEntry(identity, memberEstates: named.map { members[$0]?.estate }) {
        case .whole: return entry
        case .none: return nil
        case .withoutOtherEstatesMembers: return entry.withoutMembers { id in members[id].map { canSee(identity, $0) } ?? false }
        }
    }

    static func checkKey(_ key: String?) throws -> String {
        guard let key = key?.trimmingCharacters(in: .whitespaces), !key.isEmpty else {
            throw HubError.badRequest(field: "idempotency_key", code: "missing_field", "send an idempotency_key chosen by the client (a UUID), so a retry books nothing twice")
        }
        guard key.count <= 200 else { throw HubError.badRequest(field: "idempotency_key", "an idempotency key has at most 200 characters") }
        return key
    }

    static func fingerprint<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try HubJSON.encoder.encode(value), as: UTF8.self)
    }

    /// Parses typed lines into ledger lines, naming the faulty field.
    static func lines(_ inputs: [LineInput]) throws -> [LedgerLine] {
        try inputs.enumerated().map { index, input in
            guard let account = Account(rawValue: input.account) else {
                throw HubError.badRequest(field: "lines[\(index)].account", code: "unknown_account",
                                          "unknown account \(input.account); known: \(Account.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return LedgerLine(account, input.amountCents, member: input.member)
        }
    }

    /// The receipt a payment gives the member.
    static func receiptText(receipt: Int64, member: String, amount: Cents, method: PaymentMethod, date: LocalDate, settled: Cents) -> String {
        """
        Reçu n° \(receipt)
        L'association a reçu de \(member) la somme de \(amount.euros) \(method.frenchLabel) le \(date.frenchText).
        Cette somme règle l'adhésion et les trajets de la voiture partagée\(amount > settled ? " ; \((amount - settled).euros) restent en avance sur les prochains trajets" : "").
        Ce reçu n'ouvre pas droit à une réduction d'impôt (l'adhésion donne accès à un service).
        """
    }

    /// The balances report from the lines summed per account and member.
    static func balancesReport(_ rows: [BalanceRow]) -> BalancesReport {
        var accounts: [Account: (debit: Int64, credit: Int64)] = [:]
        var members: [Int64: (owed: Int64, credit: Int64)] = [:]
        var count: Int64 = 0
        for row in rows {
            guard let account = Account(rawValue: row.account) else { continue }
            count += row.lines
            accounts[account, default: (0, 0)].debit += row.debit
            accounts[account, default: (0, 0)].credit += row.credit
            if let member = row.member {
                if account == .members { members[member, default: (0, 0)].owed += row.debit - row.credit }
                if account == .memberCredit { members[member, default: (0, 0)].credit += row.credit - row.debit }
            }
        }
        let accountList = accounts.keys.sorted().map { account in
            AccountBalance(account: account, label: account.label, debitCents: Cents(accounts[account]!.debit), creditCents: Cents(accounts[account]!.credit),
                           balanceCents: Cents(accounts[account]!.debit - accounts[account]!.credit))
        }
        return BalancesReport(accounts: accountList,
                              members: members.keys.sorted().map { MemberBalance(member: $0, owedCents: Cents(members[$0]!.owed), creditCents: Cents(members[$0]!.credit)) },
                              totalDebitCents: Cents(accountList.reduce(0) { $0 + $1.debitCents.value }),
                              totalCreditCents: Cents(accountList.reduce(0) { $0 + $1.creditCents.value }), lines: count)
    }

    /// A member's statement from their lines summed per entry and account, in date order.
    static func memberStatement(member memberID: Int64, name: String, memberships: [MembershipView], trips: [TripView],
                                rows: [(number: Int64, date: LocalDate, label: String, amount: Cents)],
                                position: (owed: Cents, credit: Cents)) -> MemberStatement {
        var lines: [StatementLine] = []
        var balance = Cents.zero
        // A member's position is credit (4191) minus debt (411): both move the same way.
        var byEntry: [(Int64, LocalDate, String, Cents)] = []
        for row in rows {
            if let last = byEntry.last, last.0 == row.number {
                byEntry[byEntry.count - 1].3 = last.3 + row.amount
            } else {
                byEntry.append((row.number, row.date, row.label, row.amount))
            }
        }
        for (number, date, label, amount) in byEntry where amount != .zero {
            balance = balance - amount
            lines.append(StatementLine(date: date, entry: number, label: label, chargedCents: amount > .zero ? amount : .zero,
                                       paidCents: amount < .zero ? -amount : .zero, balanceCents: balance))
        }
        var text = "Relevé de compte — \(name) (membre n° \(memberID))\n\n"
        text += memberships.isEmpty ? "Aucune adhésion.\n" : memberships.map { "\($0.label) : \($0.feeCents.euros)" }.joined(separator: "\n") + "\n"
        text += "\nTrajets : \(trips.count)\n\nDate        Opération                                         Dû        Payé      Solde\n"
        for line in lines {
            text += "\(line.date.frenchText)  \(line.label.padding(toLength: 48, withPad: " ", startingAt: 0))  "
                + "\(line.chargedCents == .zero ? "" : line.chargedCents.euros)".padding(toLength: 9, withPad: " ", startingAt: 0) + " "
                + "\(line.paidCents == .zero ? "" : line.paidCents.euros)".padding(toLength: 9, withPad: " ", startingAt: 0) + " "
                + line.balanceCents.euros + "\n"
        }
        let net = position.credit - position.owed
        text += net == .zero ? "\nVotre compte est à jour. Merci !\n"
            : net > .zero ? "\nVous avez \(net.euros) d'avance pour vos prochains trajets.\n"
            : "\nReste à payer : \((-net).euros). Merci de régler auprès d'un chauffeur ou de l'association.\n"
        return MemberStatement(member: memberID, name: name, memberships: memberships, trips: trips, lines: lines,
                               owedCents: position.owed, creditCents: position.credit, balanceCents: net, text: text)
    }

    /// Checks the hash chain, the numbering, the receipts and the anchors of every posted entry.
    static func verifyReport(entries: [PostedEntry], receipts: [Int64], closedMonths closed: [String], anchors: LedgerAnchorFile) throws -> VerifyReport {
        let result: (count: Int64, lastHash: String)
        do {
            result = try HashChain.verify(entries)
        } catch {
            let number: Int64?
            switch error {
            case .numberGap(let expected, _): number = expected
            case .hashChainBroken(let broken, _): number = broken
            default: number = nil
            }
            return VerifyReport(ok: false, entries: Int64(entries.count), lastHash: entries.last?.hash ?? HashChain.genesis, brokenEntry: number,
                                problem: error.hubError.message)
        }
        do {
            try LedgerRules.checkGapless(receipts)
        } catch {
            return VerifyReport(ok: false, entries: result.count, lastHash: result.lastHash, brokenEntry: nil, problem: "receipt numbers: \(error.hubError.message)")
        }
        // A chain that checks on its own may have been rewritten whole: it must also match what
        // each month's close anchored outside the database.
        let lines = try anchors.lines()
        if let problem = HashChain.checkAnchors(entries, anchorLines: lines, closedMonths: closed, key: anchors.key) {
            var report = VerifyReport(ok: false, entries: result.count, lastHash: result.lastHash, brokenEntry: nil,
                                      problem: "month \(problem.month): \(problem.message) (anchors: \(anchors.path))")
            report.brokenMonth = problem.month
            return report
        }
        var report = VerifyReport(ok: true, entries: result.count, lastHash: result.lastHash, brokenEntry: nil, problem: nil)
        report.anchoredMonths = Set(closed).count
        return report
    }

    /// A trip log's input checked before any database work, the same for both stores.
    static func checkTrip(_ input: NewTrip, at now: Instant) throws
        -> (key: String, fingerprint: String, span: TimeSpan, incidents: String, kind: TripKind, purpose: String, dwellingsServed: [String], householdsServed: Int?) {
        let key = try Self.checkKey(input.idempotencyKey)
        let fingerprint = try Self.fingerprint(input)
        guard let span = TimeSpan(start: input.start, end: input.end) else { throw TripError.emptyInterval.hubError }
        try TripRules.checkLogged(span: span, now: now, startOdometerKm: input.startOdometerKm)
        let incidents = try Check.text(input.incidents, field: "incidents")
        let kind = input.kind ?? .ride
        let purpose = try Check.text(input.purpose, field: "purpose", max: 500)
        let dwellingsServed = input.dwellingsServed ?? []
        if Set(dwellingsServed).count != dwellingsServed.count { throw HubError.badRequest(field: "dwellings_served", "a dwelling is listed twice") }
        do {
            try TripRules.checkBattery(start: input.batteryStartPct, end: input.batteryEndPct)
            if let riders = input.riders, kind == .ride { try TripRules.checkRiders(riders) }
        } catch { throw error.hubError }
        do {
            try LogbookRules.check(LogbookLineFacts(kind: kind, hasBooking: input.booking != nil, riders: input.riders?.count ?? 0,
                                                    purpose: purpose, householdsServed: input.householdsServed.map { $0 } ?? (dwellingsServed.isEmpty ? nil : dwellingsServed.count),
                                                    dwellingsServed: dwellingsServed.count, chargedWh: input.chargedWh, chargeCostCents: input.chargeCostCents,
                                                    chargeMethodGiven: input.chargeMethod != nil))
        } catch { throw error.hubError }
        if let cost = input.chargeCostCents, cost < .zero { throw LedgerError.amountNotPositive(field: "charge_cost_cents").hubError }
        let householdsServed = input.householdsServed ?? (dwellingsServed.isEmpty ? nil : dwellingsServed.count)
        return (key, fingerprint, span, incidents, kind, purpose, dwellingsServed, householdsServed)
    }

    /// A charge's input checked; its note.
    static func checkCharging(_ input: NewCharging) throws -> String {
        guard input.energyWh.value > 0, input.energyWh.value <= 200_000 else {
            throw HubError.badRequest(field: "energy_wh", "the energy must be between 1 Wh and 200 kWh")
        }
        guard input.costCents >= .zero else { throw LedgerError.amountNotPositive(field: "cost_cents").hubError }
        if input.costCents > .zero && input.method == nil { throw HubError.badRequest(field: "method", code: "missing_field", "say how the charge was paid (cash, cheque or transfer)") }
        let note = try Check.text(input.note, field: "note", max: 500)
        return note
    }

    /// An odometer note's input checked; its text.
    static func checkOdometerNote(_ input: NewOdometerNote) throws -> String {
        let note = try Check.text(input.note, field: "note", max: 500)
        guard !note.isEmpty else { throw HubError.badRequest(field: "note", code: "missing_field", "say what the car did over those kilometres") }
        guard input.fromKm >= 0 else { throw HubError.badRequest(field: "from_km", "an odometer reading cannot be negative") }
        guard input.toKm > input.fromKm else { throw HubError.badRequest(field: "to_km", "to_km must be above from_km") }
        return note
    }

    /// A month's income statement from its income (7x) and expense (6x) accounts' sums (car use aside).
    static func incomeStatement(month: String, rows: [(account: String, amount: Cents)]) -> IncomeStatement {
        var income: [IncomeLine] = []
        var expenses: [IncomeLine] = []
        for row in rows {
            guard let account = Account(rawValue: row.account) else { continue }
            if account.isIncome { income.append(IncomeLine(account: account, label: account.label, amountCents: -row.amount)) }
            if account.isExpense { expenses.append(IncomeLine(account: account, label: account.label, amountCents: row.amount)) }
        }
        let totalIncome = income.reduce(Cents.zero) { $0 + $1.amountCents }
        let totalExpenses = expenses.reduce(Cents.zero) { $0 + $1.amountCents }
        return IncomeStatement(month: month, income: income, expenses: expenses, totalIncomeCents: totalIncome,
                               totalExpensesCents: totalExpenses, resultCents: totalIncome - totalExpenses)
    }

    /// A payment's input checked: its idempotency key, note, fingerprint and date.
    func checkPayment(_ input: NewPayment, by identity: Identity, at now: Instant) throws -> (key: String, note: String, fingerprint: String, date: LocalDate) {
        let key = try Self.checkKey(input.idempotencyKey)
        try Check.positive(input.amountCents)
        if identity.role == .driver && input.method != .cash { throw denied("method", "a driver records cash handed over during a trip, not cheques or transfers") }
        let note = try Check.text(input.note, field: "note", max: 500)
        let fingerprint = try Self.fingerprint(input)
        let date = input.on ?? today(now)
        return (key, note, fingerprint, date)
    }

    /// What a membership bought now covers and costs: the fee in force when its period starts.
    func membershipTerms(_ input: NewMembership, at now: Instant) throws -> (purchase: LocalDate, period: MembershipPeriod, fee: Cents) {
        let purchase = input.on ?? today(now)
        let period = MembershipPeriod.starting(input.start ?? purchase, kind: settings.membershipPeriod)
        guard let fee = settings.membershipFees.amount(on: period.start) else {
            // A period before the first fee the settings list (schemathesis asked for year 775): the
            // caller's date is at fault, not the hub, so a 422 naming it rather than a 500.
            throw HubError(.unprocessable, code: "no_membership_fee", field: input.start == nil ? "on" : "start",
                           message: "no membership fee is set for a period starting \(period.start): the first fee applies from \(settings.membershipFees.map(\.from).min()!)")
        }
        return (purchase, period, fee)
    }

    /// A new car's name and plate, checked.
    static func checkVehicle(_ input: NewVehicle) throws -> (name: String, plate: String) {
        let name = try Check.name(input.name)
        let plate = try Check.name(input.plate, field: "plate").uppercased()
        if let capacity = input.batteryCapacityWh, capacity.value <= 0 { throw HubError.badRequest(field: "battery_capacity_wh", "the battery capacity must be positive") }
        if let odometer = input.initialOdometerKm, odometer < 0 { throw HubError.badRequest(field: "initial_odometer_km", "an odometer reading cannot be negative") }
        return (name, plate)
    }

    /// A new booking's span and purpose, checked.
    static func checkBooking(_ input: NewBooking) throws -> (span: TimeSpan, purpose: String) {
        guard let span = TimeSpan(start: input.start, end: input.end) else { throw BookingError.emptyInterval.hubError }
        try BookingRules.checkLength(span)
        let purpose = try Check.text(input.purpose, field: "purpose", max: 500)
        return (span, purpose)
    }
}

/// A ledger account's lines of one member (or none) summed: the balances report's input.
struct BalanceRow {
    var account: String
    var member: Int64?
    var debit: Int64
    var credit: Int64
    var lines: Int64
}

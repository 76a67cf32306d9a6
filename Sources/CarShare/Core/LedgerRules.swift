import Crypto
import Foundation
import HubCore

/// An account of the French association chart (plan comptable associatif) used by the car share.
public enum Account: String, Codable, Sendable, CaseIterable, Comparable {
    case bank = "512"
    case chequesToDeposit = "5112"
    case cash = "530"
    case internalTransfers = "580"
    case members = "411"
    case memberCredit = "4191"
    case deferredIncome = "487"
    case memberships = "756"
    case tripFees = "706"
    case grants = "741"
    case charging = "6061"
    case insurance = "616"
    case maintenance = "6155"
    case travel = "6251"

    /// The chart's label, as an accountant reads it.
    public var label: String {
        switch self {
        case .bank: return "Banques"
        case .chequesToDeposit: return "Chèques à encaisser"
        case .cash: return "Caisse"
        case .internalTransfers: return "Virements internes"
        case .members: return "Usagers"
        case .memberCredit: return "Usagers créditeurs (avances)"
        case .deferredIncome: return "Produits constatés d'avance"
        case .memberships: return "Cotisations"
        case .tripFees: return "Prestations de services"
        case .grants: return "Subventions d'exploitation"
        case .charging: return "Fournitures non stockables"
        case .insurance: return "Primes d'assurance"
        case .maintenance: return "Entretien et réparations"
        case .travel: return "Voyages et déplacements"
        }
    }

    /// 411 and 4191 are kept per member (sub-accounts); every line on them names the member.
    public var isPerMember: Bool { self == .members || self == .memberCredit }

    /// The clearing accounts: money on its way somewhere (the cash box, the cheques received and
    /// not yet deposited, the cash or cheques in transit to the bank). Each holds real money or
    /// paper, so its balance is never below zero (invariant 7).
    public static let clearing: [Account] = [.cash, .chequesToDeposit, .internalTransfers]
    public var isClearing: Bool { Account.clearing.contains(self) }
    public var isIncome: Bool { rawValue.hasPrefix("7") }
    public var isExpense: Bool { rawValue.hasPrefix("6") }

    public static func < (lhs: Account, rhs: Account) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// One line of an entry: a signed amount on an account, debit positive and credit negative (as
/// hledger writes it), never zero.
public struct LedgerLine: Hashable, Codable, Sendable {
    public var account: Account
    /// Set exactly when the account is kept per member.
    public var member: Int64?
    public var amount: Cents

    public init(_ account: Account, _ amount: Cents, member: Int64? = nil) {
        self.account = account
        self.amount = amount
        self.member = member
    }

    public static func debit(_ account: Account, _ amount: Cents, member: Int64? = nil) -> LedgerLine { LedgerLine(account, amount, member: member) }
    public static func credit(_ account: Account, _ amount: Cents, member: Int64? = nil) -> LedgerLine { LedgerLine(account, -amount, member: member) }
}

/// What an entry records; decides its French wording and which journal it belongs to.
public enum EntryKind: String, Codable, Sendable, CaseIterable {
    case membership, tripFee = "trip_fee", payment, deposit, refund, charging, manual, reversal, correction, recognition
}

/// An entry about to be posted: numbers, receipt and hash are assigned in the write transaction.
public struct EntryDraft: Hashable, Sendable {
    public var date: LocalDate
    public var kind: EntryKind
    public var label: String
    public var lines: [LedgerLine]
    public var member: Int64?
    /// For a reversal: the entry it cancels.
    public var reverses: Int64?
    /// For a correction: the entry it replaces (after its reversal).
    public var corrects: Int64?
    /// Payments get a receipt number.
    public var needsReceipt: Bool

    public init(date: LocalDate, kind: EntryKind, label: String, lines: [LedgerLine], member: Int64? = nil,
                reverses: Int64? = nil, corrects: Int64? = nil, needsReceipt: Bool = false) {
        self.date = date
        self.kind = kind
        self.label = label
        self.lines = lines
        self.member = member
        self.reverses = reverses
        self.corrects = corrects
        self.needsReceipt = needsReceipt
    }
}

/// A posted entry: numbered, chained, never edited or deleted.
public struct PostedEntry: Hashable, Codable, Sendable {
    public var number: Int64
    public var date: LocalDate
    public var kind: EntryKind
    public var label: String
    public var lines: [LedgerLine]
    public var member: Int64?
    public var reverses: Int64?
    public var corrects: Int64?
    public var receipt: Int64?
    public var postedAt: Instant
    public var postedBy: String
    public var previousHash: String
    public var hash: String

    public init(number: Int64, draft: EntryDraft, receipt: Int64?, postedAt: Instant, postedBy: String, previousHash: String) {
        self.number = number
        self.date = draft.date
        self.kind = draft.kind
        self.label = draft.label
        self.lines = draft.lines
        self.member = draft.member
        self.reverses = draft.reverses
        self.corrects = draft.corrects
        self.receipt = receipt
        self.postedAt = postedAt
        self.postedBy = postedBy
        self.previousHash = previousHash
        self.hash = ""
        self.hash = HashChain.hash(of: self)
    }

    public init(number: Int64, date: LocalDate, kind: EntryKind, label: String, lines: [LedgerLine], member: Int64?, reverses: Int64?,
                corrects: Int64?, receipt: Int64?, postedAt: Instant, postedBy: String, previousHash: String, hash: String) {
        self.number = number
        self.date = date
        self.kind = kind
        self.label = label
        self.lines = lines
        self.member = member
        self.reverses = reverses
        self.corrects = corrects
        self.receipt = receipt
        self.postedAt = postedAt
        self.postedBy = postedBy
        self.previousHash = previousHash
        self.hash = hash
    }
}

/// A broken ledger invariant (carshare.md section 3). Each case is named, tested, and explained
/// to the user as a 4xx with the field at fault.
public enum LedgerError: Error, Equatable, Sendable {
    /// Invariant 1: an entry has at least two lines.
    case tooFewLines(count: Int)
    /// Invariant 1: debits equal credits.
    case unbalanced(debits: Cents, credits: Cents)
    /// Invariant 1: no line of zero.
    case zeroLine(index: Int)
    /// A line on 411/4191 must name the member; a line on another account must not.
    case memberMismatch(index: Int, account: Account)
    /// Invariant 2: a posted entry is never edited or deleted.
    case postedEntryImmutable(number: Int64)
    /// Invariant 2: an entry is reversed at most once, and a reversal is not itself reversed.
    case alreadyReversed(number: Int64, by: Int64)
    case cannotReverseReversal(number: Int64)
    case unknownEntry(number: Int64)
    /// Invariant 4: the month is closed.
    case closedPeriod(month: String)
    /// Invariant 5: entry or receipt numbers are not 1, 2, 3... without a hole.
    case numberGap(expected: Int64, found: Int64)
    /// Invariant 6: the idempotency key was used for a different request.
    case idempotencyKeyReused(key: String)
    /// Invariant 7: a clearing account (the cash box, the cheques to deposit, the cash in transit)
    /// would hold less than nothing.
    case clearingAccountNegative(account: Account, on: LocalDate, balance: Cents)
    /// Invariant 8: the stored entry does not hash to what the chain says.
    case hashChainBroken(number: Int64, reason: String)
    /// Amounts must be positive where a sum of money is asked for.
    case amountNotPositive(field: String)
    /// A refund may not exceed what the member has in credit.
    case refundExceedsCredit(member: Int64, credit: Cents)

    public var code: String {
        switch self {
        case .tooFewLines: return "too_few_lines"
        case .unbalanced: return "unbalanced_entry"
        case .zeroLine: return "zero_line"
        case .memberMismatch: return "member_mismatch"
        case .postedEntryImmutable: return "posted_entry_immutable"
        case .alreadyReversed: return "already_reversed"
        case .cannotReverseReversal: return "cannot_reverse_reversal"
        case .unknownEntry: return "unknown_entry"
        case .closedPeriod: return "closed_period"
        case .numberGap: return "number_gap"
        case .idempotencyKeyReused: return "idempotency_key_reused"
        case .clearingAccountNegative(let account, _, _):
            switch account {
            case .chequesToDeposit: return "cheques_to_deposit_negative"
            case .internalTransfers: return "cash_in_transit_negative"
            default: return "cash_box_negative"
            }
        case .hashChainBroken: return "hash_chain_broken"
        case .amountNotPositive: return "amount_not_positive"
        case .refundExceedsCredit: return "refund_exceeds_credit"
        }
    }

    public var hubError: HubError {
        switch self {
        case .tooFewLines(let count):
            return HubError.badRequest(field: "lines", code: code, "an entry needs at least two lines (got \(count))")
        case .unbalanced(let debits, let credits):
            return HubError.badRequest(field: "lines", code: code, "debits (\(debits.euros)) and credits (\(credits.euros)) differ")
        case .zeroLine(let index):
            return HubError.badRequest(field: "lines[\(index)].amount", code: code, "a line cannot be zero")
        case .memberMismatch(let index, let account):
            return HubError.badRequest(field: "lines[\(index)].member", code: code,
                                       account.isPerMember ? "a line on \(account.rawValue) must name the member" : "a line on \(account.rawValue) does not name a member")
        case .postedEntryImmutable(let number):
            return HubError.conflict(field: "number", code: code,
                                     "entry \(number) is posted: it is never edited or deleted; post a correction (reversal plus new entry) instead")
        case .alreadyReversed(let number, let by):
            return HubError.conflict(field: "entry", code: code, "entry \(number) was already reversed by entry \(by)")
        case .cannotReverseReversal(let number):
            return HubError(.unprocessable, code: code, field: "entry", message: "entry \(number) is a reversal; correct the original entry instead")
        case .unknownEntry(let number):
            return HubError.notFound(field: "entry", "no ledger entry \(number)")
        case .closedPeriod(let month):
            return HubError(.unprocessable, code: code, field: "date", message: "the month \(month) is closed: date the entry in an open month")
        case .numberGap(let expected, let found):
            return HubError(.unprocessable, code: code, field: "number", message: "numbers must follow without a gap: expected \(expected), found \(found)")
        case .idempotencyKeyReused(let key):
            return HubError(.unprocessable, code: code, field: "idempotency_key",
                            message: "the idempotency key \(key) was already used for a different request")
        case .clearingAccountNegative(let account, let date, let balance):
            let what: String
            switch account {
            case .chequesToDeposit: what = "the cheques to deposit (5112) would come to \(balance.euros) on \(date): more than the cheques received and not yet deposited"
            case .internalTransfers: what = "the cash in transit to the bank (580) would come to \(balance.euros) on \(date): more than left the cash box or the cheques"
            default: what = "the cash box (\(account.rawValue)) would hold \(balance.euros) on \(date)"
            }
            return HubError(.unprocessable, code: code, field: "amount", message: what + "; it can never be negative")
        case .hashChainBroken(let number, let reason):
            return HubError(.unprocessable, code: code, field: "number", message: "entry \(number): \(reason)")
        case .amountNotPositive(let field):
            return HubError.badRequest(field: field, code: code, "\(field) must be a positive amount in cents")
        case .refundExceedsCredit(let member, let credit):
            return HubError(.unprocessable, code: code, field: "amount", message: "member \(member) has only \(credit.euros) in credit to refund")
        }
    }
}

/// The ledger's invariants and postings: pure functions over values.
public enum LedgerRules {
    /// Invariant 1 and the member rule: at least two non-zero lines that sum to zero.
    public static func validate(_ draft: EntryDraft) throws(LedgerError) {
        guard draft.lines.count >= 2 else { throw .tooFewLines(count: draft.lines.count) }
        for (index, line) in draft.lines.enumerated() {
            if line.amount == .zero { throw .zeroLine(index: index) }
            if line.account.isPerMember != (line.member != nil) { throw .memberMismatch(index: index, account: line.account) }
        }
        let debits = draft.lines.filter { $0.amount > .zero }.reduce(Cents.zero) { $0 + $1.amount }
        let credits = draft.lines.filter { $0.amount < .zero }.reduce(Cents.zero) { $0 - $1.amount }
        guard debits == credits else { throw .unbalanced(debits: debits, credits: credits) }
    }

    /// Invariant 4: the entry's month is open.
    public static func checkOpen(_ date: LocalDate, closedMonths: Set<String>) throws(LedgerError) {
        if closedMonths.contains(date.monthKey) { throw .closedPeriod(month: date.monthKey) }
    }

    /// Invariant 5: `numbers`, in order, are 1, 2, 3... with no hole.
    public static func checkGapless(_ numbers: [Int64]) throws(LedgerError) {
        for (index, number) in numbers.enumerated() where number != Int64(index) + 1 {
            throw .numberGap(expected: Int64(index) + 1, found: number)
        }
    }

    /// Invariant 7: adding `delta` to a clearing account on `date` keeps it at or above zero on
    /// every day from then on. `opening` is the balance after all movements dated before `date`;
    /// `later` the net movement of each day from `date` on (any order).
    public static func checkClearing(_ account: Account, opening: Cents, later: [(LocalDate, Cents)], date: LocalDate, delta: Cents) throws(LedgerError) {
        guard delta < .zero else { return }
        try checkClearing(account, opening: opening, movements: later + [(date, delta)], from: date)
    }

    /// Invariant 7 over a series: from `opening`, the balance of a clearing account after each
    /// day's movements (days on or after `from`) is never below zero.
    public static func checkClearing(_ account: Account, opening: Cents, movements: [(LocalDate, Cents)], from: LocalDate) throws(LedgerError) {
        var byDay: [LocalDate: Cents] = [:]
        for (day, amount) in movements where day >= from { byDay[day, default: .zero] = byDay[day, default: .zero] + amount }
        var balance = opening
        for day in byDay.keys.sorted() {
            balance = balance + byDay[day]!
            if balance < .zero { throw .clearingAccountNegative(account: account, on: day, balance: balance) }
        }
    }

    /// The mirrored lines of an entry: every debit becomes a credit of the same amount.
    public static func reversal(of entry: PostedEntry, on date: LocalDate) throws(LedgerError) -> EntryDraft {
        guard entry.kind != .reversal else { throw .cannotReverseReversal(number: entry.number) }
        return EntryDraft(date: date, kind: .reversal, label: "Annulation de l'écriture n° \(entry.number) : \(entry.label)",
                          lines: entry.lines.map { LedgerLine($0.account, -$0.amount, member: $0.member) },
                          member: entry.member, reverses: entry.number)
    }

    /// A fee charged to a member: credit to `income`, debit taken from prepaid credit first when
    /// the setting says so (and there is some), the rest recorded as owed (411).
    public static func charge(member: Int64, amount: Cents, income: Account, credit: Cents, usePrepaidCreditFirst: Bool) -> [LedgerLine] {
        let fromCredit = usePrepaidCreditFirst ? min(max(credit, .zero), amount) : .zero
        var lines: [LedgerLine] = []
        if fromCredit > .zero { lines.append(.debit(.memberCredit, fromCredit, member: member)) }
        if amount - fromCredit > .zero { lines.append(.debit(.members, amount - fromCredit, member: member)) }
        lines.append(.credit(income, amount))
        return lines
    }

    /// Money received from a member: it settles what they owe (411) and the rest is prepaid credit (4191).
    public static func payment(member: Int64, amount: Cents, into account: Account, debt: Cents) -> [LedgerLine] {
        let settled = min(max(debt, .zero), amount)
        var lines: [LedgerLine] = [.debit(account, amount)]
        if settled > .zero { lines.append(.credit(.members, settled, member: member)) }
        if amount - settled > .zero { lines.append(.credit(.memberCredit, amount - settled, member: member)) }
        return lines
    }

    /// Credit given back to a member.
    public static func refund(member: Int64, amount: Cents, from account: Account, credit: Cents) throws(LedgerError) -> [LedgerLine] {
        guard amount > .zero else { throw .amountNotPositive(field: "amount") }
        guard amount <= credit else { throw .refundExceedsCredit(member: member, credit: credit) }
        return [.debit(.memberCredit, amount, member: member), .credit(account, amount)]
    }

    /// Net balance of lines per account (debit positive).
    public static func balances(_ lines: some Sequence<LedgerLine>) -> [Account: Cents] {
        var result: [Account: Cents] = [:]
        for line in lines { result[line.account, default: .zero] = result[line.account, default: .zero] + line.amount }
        return result
    }
}

/// How money came in or went out.
public enum PaymentMethod: String, Codable, Sendable, CaseIterable {
    /// Cash handed to a driver or at the association's desk: goes to the cash box.
    case cash
    /// A cheque, held until it is deposited at the bank.
    case cheque
    /// A bank transfer.
    case transfer

    public var account: Account {
        switch self {
        case .cash: return .cash
        case .cheque: return .chequesToDeposit
        case .transfer: return .bank
        }
    }

    public var frenchLabel: String {
        switch self {
        case .cash: return "en espèces"
        case .cheque: return "par chèque"
        case .transfer: return "par virement"
        }
    }
}

/// The tamper-evident chain: each entry's hash covers its content and the previous entry's hash,
/// so changing any stored row breaks every hash after it.
public enum HashChain {
    /// The hash before the first entry.
    public static let genesis = String(repeating: "0", count: 64)

    /// The exact text that is hashed: every field that matters, in a fixed order.
    public static func canonicalText(of entry: PostedEntry) -> String {
        var parts = [
            "n=\(entry.number)", "d=\(entry.date)", "k=\(entry.kind.rawValue)", "l=\(entry.label)",
            "m=\(entry.member.map(String.init) ?? "")", "r=\(entry.reverses.map(String.init) ?? "")",
            "c=\(entry.corrects.map(String.init) ?? "")", "rc=\(entry.receipt.map(String.init) ?? "")",
            "t=\(entry.postedAt.millisecondsSince1970)", "by=\(entry.postedBy)", "p=\(entry.previousHash)",
        ]
        for line in entry.lines { parts.append("L=\(line.account.rawValue),\(line.member.map(String.init) ?? ""),\(line.amount.value)") }
        return parts.joined(separator: "\n")
    }

    public static func hash(of entry: PostedEntry) -> String {
        SHA256.hash(data: Data(canonicalText(of: entry).utf8)).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// Checks entries in number order: numbers gapless, each linked to the previous hash, each hash
    /// matching its content, each entry balanced. Returns the last hash.
    @discardableResult
    public static func verify(_ entries: some Sequence<PostedEntry>) throws(LedgerError) -> (count: Int64, lastHash: String) {
        var previous = genesis
        var expected: Int64 = 1
        for entry in entries {
            guard entry.number == expected else { throw .numberGap(expected: expected, found: entry.number) }
            guard entry.previousHash == previous else {
                throw .hashChainBroken(number: entry.number, reason: "its link to entry \(entry.number - 1) does not match")
            }
            guard hash(of: entry) == entry.hash else {
                throw .hashChainBroken(number: entry.number, reason: "its content no longer matches its hash: the row was changed after posting")
            }
            do {
                try LedgerRules.validate(EntryDraft(date: entry.date, kind: entry.kind, label: entry.label, lines: entry.lines, member: entry.member))
            } catch {
                throw .hashChainBroken(number: entry.number, reason: "it does not balance")
            }
            previous = entry.hash
            expected += 1
        }
        return (expected - 1, previous)
    }
}

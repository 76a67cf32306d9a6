import CarShare
import CarShareCore
import Crypto
import Foundation
import HubCore
import Shared
import Testing

/// One test per ledger invariant of carshare.md section 3, on the pure rules, each showing its named error.
@Suite struct LedgerRulesTests {
    let day = LocalDate(year: 2026, month: 3, day: 12)!

    func draft(_ lines: [LedgerLine], kind: EntryKind = .manual) -> EntryDraft {
        EntryDraft(date: day, kind: kind, label: "test", lines: lines)
    }

    @Test func invariant1_anEntryHasTwoLinesThatBalanceInCents() throws {
        #expect(throws: LedgerError.tooFewLines(count: 1)) { try LedgerRules.validate(draft([.debit(.bank, Cents(100))])) }
        #expect(throws: LedgerError.unbalanced(debits: Cents(100), credits: Cents(99))) {
            try LedgerRules.validate(draft([.debit(.bank, Cents(100)), .credit(.grants, Cents(99))]))
        }
        #expect(throws: LedgerError.zeroLine(index: 1)) {
            try LedgerRules.validate(draft([.debit(.bank, Cents(100)), .credit(.grants, .zero), .credit(.grants, Cents(100))]))
        }
        #expect(throws: LedgerError.memberMismatch(index: 0, account: .members)) {
            try LedgerRules.validate(draft([.debit(.members, Cents(100)), .credit(.tripFees, Cents(100))]))
        }
        #expect(throws: LedgerError.memberMismatch(index: 1, account: .tripFees)) {
            try LedgerRules.validate(draft([.debit(.members, Cents(100), member: 1), .credit(.tripFees, Cents(100), member: 1)]))
        }
        try LedgerRules.validate(draft([.debit(.members, Cents(100), member: 1), .credit(.tripFees, Cents(100))]))
    }

    @Test func invariant2_aCorrectionIsAMirroredReversal() throws {
        let original = PostedEntry(number: 4, draft: draft([.debit(.members, Cents(200), member: 3), .credit(.tripFees, Cents(200))], kind: .tripFee),
                                   receipt: nil, postedAt: Instant(millisecondsSince1970: 0), postedBy: "x", previousHash: HashChain.genesis)
        let reversal = try LedgerRules.reversal(of: original, on: day)
        #expect(reversal.reverses == 4 && reversal.kind == .reversal)
        #expect(reversal.lines == [LedgerLine(.members, Cents(-200), member: 3), LedgerLine(.tripFees, Cents(200))])
        #expect(LedgerRules.balances(original.lines + reversal.lines).values.allSatisfy { $0 == .zero })
        let reversed = PostedEntry(number: 5, draft: reversal, receipt: nil, postedAt: Instant(millisecondsSince1970: 0), postedBy: "x", previousHash: original.hash)
        #expect(throws: LedgerError.cannotReverseReversal(number: 5)) { try LedgerRules.reversal(of: reversed, on: day) }
    }

    @Test func invariant4_aClosedMonthRejectsEntries() throws {
        #expect(throws: LedgerError.closedPeriod(month: "2026-03")) { try LedgerRules.checkOpen(day, closedMonths: ["2026-02", "2026-03"]) }
        try LedgerRules.checkOpen(day, closedMonths: ["2026-02"])
    }

    @Test func invariant5_numbersAreGapless() throws {
        try LedgerRules.checkGapless([1, 2, 3])
        try LedgerRules.checkGapless([])
        #expect(throws: LedgerError.numberGap(expected: 3, found: 4)) { try LedgerRules.checkGapless([1, 2, 4]) }
    }

    @Test(arguments: Account.clearing)
    func invariant7_aClearingAccountNeverGoesNegativeOnAnyDay(_ account: Account) throws {
        let next = day.advanced(by: 1)
        try LedgerRules.checkClearing(account, opening: Cents(500), later: [], date: day, delta: Cents(-500))
        #expect(throws: LedgerError.clearingAccountNegative(account: account, on: day, balance: Cents(-1))) {
            try LedgerRules.checkClearing(account, opening: Cents(500), later: [], date: day, delta: Cents(-501))
        }
        // A backdated withdrawal that the account could pay that day, but not after a later withdrawal.
        #expect(throws: LedgerError.clearingAccountNegative(account: account, on: next, balance: Cents(-100))) {
            try LedgerRules.checkClearing(account, opening: Cents(500), later: [(next, Cents(-400))], date: day, delta: Cents(-200))
        }
        // Money received the same day counts.
        try LedgerRules.checkClearing(account, opening: .zero, later: [(day, Cents(300))], date: day, delta: Cents(-300))
    }

    @Test func eachClearingAccountHasItsNamedError() {
        let codes = Account.clearing.map { LedgerError.clearingAccountNegative(account: $0, on: day, balance: Cents(-1)).code }
        #expect(codes == ["cash_box_negative", "cheques_to_deposit_negative", "cash_in_transit_negative"])
        #expect(Account.allCases.filter(\.isClearing) == [.chequesToDeposit, .cash, .internalTransfers])
    }

    @Test func refundsCannotExceedCreditAndAmountsArePositive() throws {
        #expect(throws: LedgerError.refundExceedsCredit(member: 1, credit: Cents(300))) {
            try LedgerRules.refund(member: 1, amount: Cents(500), from: .cash, credit: Cents(300))
        }
        #expect(throws: LedgerError.amountNotPositive(field: "amount")) { try LedgerRules.refund(member: 1, amount: Cents(-5), from: .cash, credit: Cents(300)) }
        #expect(try LedgerRules.refund(member: 1, amount: Cents(300), from: .cash, credit: Cents(300)) == [.debit(.memberCredit, Cents(300), member: 1), .credit(.cash, Cents(300))])
    }

    @Test func aFeeUsesPrepaidCreditFirstWhenTheSettingSaysSo() {
        #expect(LedgerRules.charge(member: 1, amount: Cents(200), income: .tripFees, credit: Cents(150), usePrepaidCreditFirst: true)
            == [.debit(.memberCredit, Cents(150), member: 1), .debit(.members, Cents(50), member: 1), .credit(.tripFees, Cents(200))])
        #expect(LedgerRules.charge(member: 1, amount: Cents(200), income: .tripFees, credit: Cents(150), usePrepaidCreditFirst: false)
            == [.debit(.members, Cents(200), member: 1), .credit(.tripFees, Cents(200))])
        #expect(LedgerRules.charge(member: 1, amount: Cents(800), income: .deferredIncome, credit: .zero, usePrepaidCreditFirst: true)
            == [.debit(.members, Cents(800), member: 1), .credit(.deferredIncome, Cents(800))])
    }

    @Test func aPaymentSettlesTheDebtAndTheRestIsCredit() {
        #expect(LedgerRules.payment(member: 1, amount: Cents(1000), into: .cash, debt: Cents(800))
            == [.debit(.cash, Cents(1000)), .credit(.members, Cents(800), member: 1), .credit(.memberCredit, Cents(200), member: 1)])
        #expect(LedgerRules.payment(member: 1, amount: Cents(500), into: .bank, debt: Cents(800))
            == [.debit(.bank, Cents(500)), .credit(.members, Cents(500), member: 1)])
    }

    @Test func invariant8_theHashChainFindsAChangedOrUnlinkedEntry() throws {
        var entries: [PostedEntry] = []
        var previous = HashChain.genesis
        for number in Int64(1)...4 {
            let entry = PostedEntry(number: number, draft: draft([.debit(.cash, Cents(100 * number)), .credit(.grants, Cents(100 * number))]),
                                    receipt: nil, postedAt: Instant(millisecondsSince1970: number), postedBy: "t", previousHash: previous)
            entries.append(entry)
            previous = entry.hash
        }
        #expect(try HashChain.verify(entries).count == 4)
        var changed = entries
        changed[1].lines[0].amount = Cents(999)
        changed[1].lines[1].amount = Cents(-999)
        #expect(throws: LedgerError.hashChainBroken(number: 2, reason: "its content no longer matches its hash: the row was changed after posting")) {
            try HashChain.verify(changed)
        }
        var relinked = entries
        relinked[2].previousHash = HashChain.genesis
        #expect(throws: LedgerError.hashChainBroken(number: 3, reason: "its link to entry 2 does not match")) { try HashChain.verify(relinked) }
        #expect(throws: LedgerError.numberGap(expected: 3, found: 4)) { try HashChain.verify([entries[0], entries[1], entries[3]]) }
    }

    @Test func theJournalDeclaresAccountsAndAssertsEveryRunningBalance() {
        let first = PostedEntry(number: 1, draft: EntryDraft(date: day, kind: .membership, label: "Adhésion; année 2026",
                                                             lines: [.debit(.members, Cents(800), member: 3), .credit(.memberships, Cents(800))]),
                                receipt: nil, postedAt: Instant(millisecondsSince1970: 0), postedBy: "t", previousHash: HashChain.genesis)
        let second = PostedEntry(number: 2, draft: EntryDraft(date: day.advanced(by: -1), kind: .payment, label: "Paiement",
                                                              lines: [.debit(.cash, Cents(1000)), .credit(.memberCredit, Cents(1000), member: 3)]),
                                 receipt: 1, postedAt: Instant(millisecondsSince1970: 0), postedBy: "t", previousHash: first.hash)
        let text = HledgerJournal.export([first, second])
        #expect(text.contains("commodity 1000.00 EUR"))
        #expect(text.contains("account 411 Usagers:membre-3"))
        #expect(text.contains("    411 Usagers:membre-3  8.00 EUR = 8.00 EUR"))
        #expect(text.contains("    4191 Usagers créditeurs (avances):membre-3  -10.00 EUR = -10.00 EUR"))
        #expect(text.contains("Adhésion, année 2026"), "a ';' would start a comment in hledger")
        // Sorted by date: the payment of the 11th comes before the membership of the 12th.
        #expect(text.range(of: "2026-03-11 (2)")!.lowerBound < text.range(of: "2026-03-12 (1)")!.lowerBound)
    }

    /// A chain of entries: `labels[i]` is entry i + 1's label; entries 1 to 3 in March, the rest in April.
    func chain(_ labels: [String]) -> [PostedEntry] {
        var entries: [PostedEntry] = []
        for (index, label) in labels.enumerated() {
            let date = index < 3 ? day : LocalDate(year: 2026, month: 4, day: 2)!
            entries.append(PostedEntry(number: Int64(index + 1), draft: EntryDraft(date: date, kind: .manual, label: label,
                                                                                 lines: [.debit(.bank, Cents(100)), .credit(.grants, Cents(100))]),
                                       receipt: nil, postedAt: Instant(millisecondsSince1970: 0), postedBy: "staff", previousHash: entries.last?.hash ?? HashChain.genesis))
        }
        return entries
    }

    /// Issue 14, defect 13: the chain recomputed after a change still checks on its own; the
    /// anchor kept when the month closed does not.
    @Test func invariant8_anAnchorCatchesARewrittenChain() throws {
        let original = chain(["a", "b", "c", "d"])
        let march = HashChain.head(of: original, month: "2026-03", lastDay: LocalDate(year: 2026, month: 3, day: 31)!, closed: true)
        #expect(march.lastEntry == 3)
        let anchor = LedgerAnchor(head: march, closedAt: Instant(millisecondsSince1970: 1_000), closedBy: "staff", key: nil)
        #expect(HashChain.checkAnchors(original, anchorLines: [anchor.line], closedMonths: ["2026-03"], key: nil) == nil)
        let rewritten = chain(["a", "b (modifié)", "c", "d"])
        #expect(throws: Never.self) { try HashChain.verify(rewritten) }
        let problem = HashChain.checkAnchors(rewritten, anchorLines: [anchor.line], closedMonths: ["2026-03"], key: nil)
        #expect(problem?.month == "2026-03" && problem?.message.contains("entry 3") == true, "\(String(describing: problem))")
        // A change after the month's head is the open month's: no anchor covers it yet.
        #expect(HashChain.checkAnchors(chain(["a", "b", "c", "e"]), anchorLines: [anchor.line], closedMonths: ["2026-03"], key: nil) == nil)
        // A closed month without its anchor, or a line that is no anchor, fails too.
        #expect(HashChain.checkAnchors(original, anchorLines: [], closedMonths: ["2026-03"], key: nil)?.month == "2026-03")
        #expect(HashChain.checkAnchors(original, anchorLines: ["{nope"], closedMonths: [], key: nil) != nil)
    }

    /// With the hub's key, an anchor rewritten to match a rewritten chain is found out too.
    @Test func invariant8_aSignedAnchorCannotBeRewrittenWithoutTheKey() throws {
        let key = SymmetricKey(data: Data("a key of at least thirty-two characters".utf8))
        let original = chain(["a", "b", "c", "d"])
        let march = HashChain.head(of: original, month: "2026-03", lastDay: LocalDate(year: 2026, month: 3, day: 31)!, closed: true)
        let signed = LedgerAnchor(head: march, closedAt: Instant(millisecondsSince1970: 1_000), closedBy: "staff", key: key)
        #expect(signed.hmac?.count == 64)
        #expect(HashChain.checkAnchors(original, anchorLines: [signed.line], closedMonths: ["2026-03"], key: key) == nil)
        let rewritten = chain(["a", "b (modifié)", "c", "d"])
        var forged = signed
        forged.hash = rewritten[2].hash
        let problem = HashChain.checkAnchors(rewritten, anchorLines: [forged.line], closedMonths: ["2026-03"], key: key)
        #expect(problem?.month == "2026-03" && problem?.message.contains("signature") == true, "\(String(describing: problem))")
        let unsigned = LedgerAnchor(head: march, closedAt: Instant(millisecondsSince1970: 1_000), closedBy: "staff", key: nil)
        #expect(HashChain.checkAnchors(original, anchorLines: [unsigned.line], closedMonths: ["2026-03"], key: key) != nil)
    }

    /// Issue 14, defect 7: an entry about a member another association may not see keeps its
    /// amounts (the association's own accounts stay whole) but names no one.
    @Test func anEntryOfAnotherEstatesMemberShowsWithoutThem() {
        let entry = PostedEntry(number: 3, draft: EntryDraft(date: day, kind: .payment, label: "Paiement en espèces — Carole Petit",
                                                             lines: [.debit(.cash, Cents(1000)), .credit(.members, Cents(800), member: 7), .credit(.memberCredit, Cents(200), member: 7)],
                                                             member: 7, needsReceipt: true),
                                receipt: 1, postedAt: Instant(millisecondsSince1970: 0), postedBy: "staff", previousHash: HashChain.genesis)
        #expect(entry.namedMembers == [7])
        let shown = entry.withoutMembers { $0 == 1 }
        #expect(shown.label == "Paiement — un membre d'une autre résidence" && shown.member == nil && shown.namedMembers.isEmpty)
        #expect(shown.lines.map(\.amount) == entry.lines.map(\.amount) && shown.lines.map(\.account) == entry.lines.map(\.account))
        #expect(shown.number == 3 && shown.hash == entry.hash && shown.receipt == 1)
        #expect(entry.withoutMembers { $0 == 7 } == entry)
        #expect(HledgerJournal.postingName(shown.lines[1]) == "411 Usagers:autres résidences")
        #expect(HledgerJournal.postingName(shown.lines[0]) == "530 Caisse" && HledgerJournal.postingName(entry.lines[1]) == "411 Usagers:membre-7")
        let journal = HledgerJournal.export([shown])
        #expect(!journal.contains("Carole") && !journal.contains("membre-7") && journal.contains("4191 Usagers créditeurs (avances):autres résidences"))
    }
}

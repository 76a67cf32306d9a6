import CarShareCore
import Foundation
import GRDB
import HubCore
import Shared

extension SQLiteCarShareStore {
    /// Records money received from a member, once per idempotency key, with a gapless receipt
    /// number. It settles what they owe first; the rest is prepaid credit.
    public func recordPayment(_ input: NewPayment, by identity: Identity, at now: Instant) async throws -> (payment: PaymentView, replayed: Bool) {
        try identity.require(.manage, .payments, "recording a payment")
        let (key, note, fingerprint, date) = try checkPayment(input, by: identity, at: now)
        return try await write { db in
            if let first = try replay(db, key: key, scope: "payment", fingerprint: fingerprint, as: PaymentView.self) { return (first, true) }
            let member = try memberScope(db, input.member)
            if identity.role != .driver { try requireManage(identity, member) }
            let owed = try memberBalance(db, member.id).owed
            let lines = LedgerRules.payment(member: member.id, amount: input.amountCents, into: input.method.account, debt: owed)
            let label = "Paiement \(input.method.frenchLabel) — \(member.name)" + (note.isEmpty ? "" : " (\(note))")
            let entry = try post(db, EntryDraft(date: date, kind: .payment, label: label, lines: lines, member: member.id, needsReceipt: true),
                                 by: identity.name, at: now)
            let settled = lines.filter { $0.account == .members }.reduce(Cents.zero) { $0 - $1.amount }
            let receipt = entry.receipt!
            let text = Self.receiptText(receipt: receipt, member: member.name, amount: input.amountCents, method: input.method, date: date, settled: settled)
            let view = PaymentView(entry: entry.number, receipt: receipt, member: member.id, amountCents: input.amountCents, method: input.method,
                                   date: date, settledCents: settled, creditCents: input.amountCents - settled, receiptText: text)
            try remember(db, key: key, scope: "payment", fingerprint: fingerprint, response: view, at: now)
            return (view, false)
        }
    }

    /// Cash or cheques taken to the bank: an internal transfer through 580 (two entries).
    public func recordDeposit(_ input: NewDeposit, by identity: Identity, at now: Instant) async throws -> PostedView {
        try identity.require(.manage, .cash, "the association's cash")
        try Check.positive(input.amountCents)
        let key = try input.idempotencyKey.map { try SQLiteCarShareStore.checkKey($0) }
        let fingerprint = try SQLiteCarShareStore.fingerprint(input)
        let date = input.on ?? today(now)
        return try await write { db in
            if let key, let first = try replay(db, key: key, scope: "deposit", fingerprint: fingerprint, as: PostedView.self) { return first }
            let from: Account = input.kind == .cash ? .cash : .chequesToDeposit
            let what = input.kind == .cash ? "espèces" : "chèques"
            let out = try post(db, EntryDraft(date: date, kind: .deposit, label: "Remise de \(what) en banque : sortie",
                                              lines: [.debit(.internalTransfers, input.amountCents), .credit(from, input.amountCents)]), by: identity.name, at: now)
            let into = try post(db, EntryDraft(date: date, kind: .deposit, label: "Remise de \(what) en banque : entrée",
                                               lines: [.debit(.bank, input.amountCents), .credit(.internalTransfers, input.amountCents)]), by: identity.name, at: now)
            let view = PostedView(entries: [EntryView(out), EntryView(into)])
            if let key { try remember(db, key: key, scope: "deposit", fingerprint: fingerprint, response: view, at: now) }
            return view
        }
    }

    /// Gives back a member's prepaid credit, in cash or by transfer.
    public func recordRefund(_ input: NewRefund, by identity: Identity, at now: Instant) async throws -> PostedView {
        try identity.require(.manage, .cash, "the association's cash")
        try Check.positive(input.amountCents)
        let key = try input.idempotencyKey.map { try SQLiteCarShareStore.checkKey($0) }
        let reason = try Check.text(input.reason, field: "reason", max: 500)
        let fingerprint = try SQLiteCarShareStore.fingerprint(input)
        let date = input.on ?? today(now)
        return try await write { db in
            if let key, let first = try replay(db, key: key, scope: "refund", fingerprint: fingerprint, as: PostedView.self) { return first }
            let member = try memberScope(db, input.member)
            try requireManage(identity, member)
            let credit = try memberBalance(db, member.id).credit
            // A cheque refund leaves the bank account like a transfer.
            let account: Account = input.method == .cash ? .cash : .bank
            let lines = try LedgerRules.refund(member: member.id, amount: input.amountCents, from: account, credit: credit)
            let entry = try post(db, EntryDraft(date: date, kind: .refund, label: "Remboursement \(input.method.frenchLabel) — \(member.name)"
                                                + (reason.isEmpty ? "" : " (\(reason))"), lines: lines, member: member.id), by: identity.name, at: now)
            let view = PostedView(entries: [EntryView(entry)])
            if let key { try remember(db, key: key, scope: "refund", fingerprint: fingerprint, response: view, at: now) }
            return view
        }
    }

    /// Corrects a posted entry: a mirrored reversal entry, and (when lines are given) the right
    /// entry, linked to the original. The original is never touched.
    public func correct(_ input: NewCorrection, by identity: Identity, at now: Instant) async throws -> PostedView {
        try identity.require(.manage, .cash, "the association's cash")
        let reason = try Check.name(input.reason, field: "reason")
        let replacement = try input.lines.map { try SQLiteCarShareStore.lines($0) }
        let date = input.on ?? today(now)
        return try await write { db in
            guard let original = try entry(db, input.entry) else { throw LedgerError.unknownEntry(number: input.entry) }
            if identity.role == .association {
                let members = Set(original.lines.compactMap(\.member) + (replacement ?? []).compactMap(\.member))
                for member in members { try requireManage(identity, try memberScope(db, member)) }
                if members.isEmpty { throw denied("entry", "an association corrects its members' entries; ask staff for this one") }
            }
            for (index, line) in (replacement ?? []).enumerated() where line.member != nil {
                _ = try memberScope(db, line.member!, field: "lines[\(index)].member")
            }
            var draft = try LedgerRules.reversal(of: original, on: date)
            draft.label += " — motif : \(reason)"
            // The reversal and the right entry are one correction: the clearing accounts are checked
            // once both are written (a cash entry re-posted identically must not fail half-way).
            let reversal = try post(db, draft, by: identity.name, at: now, checkClearing: replacement == nil)
            var posted = [EntryView(reversal)]
            if let replacement {
                let corrected = try post(db, EntryDraft(date: date, kind: .correction, label: input.label.map { try Check.name($0, field: "label") }
                                                        ?? "Correction de l'écriture n° \(original.number) : \(original.label)",
                                                        lines: replacement, member: original.member, corrects: original.number),
                                         by: identity.name, at: now, checkClearing: false)
                posted.append(EntryView(corrected))
                try checkClearingAccounts(db, from: date)
            }
            return PostedView(entries: posted)
        }
    }

    /// A staff entry on the chart (a grant received, insurance paid, a volunteer's mileage...).
    public func postManual(_ input: NewManualEntry, by identity: Identity, at now: Instant) async throws -> EntryView {
        try identity.require(.manage, .ledger, "the ledger's books")
        let label = try Check.name(input.label, field: "label")
        let lines = try SQLiteCarShareStore.lines(input.lines)
        return try await write { db in
            for (index, line) in lines.enumerated() where line.member != nil { _ = try memberScope(db, line.member!, field: "lines[\(index)].member") }
            return EntryView(try post(db, EntryDraft(date: input.on, kind: .manual, label: label, lines: lines), by: identity.name, at: now))
        }
    }

    /// Closes a month: no entry may be dated in it any more.
    public func closeMonth(_ month: String, by identity: Identity, at now: Instant) async throws -> [String] {
        try identity.require(.manage, .ledger, "the ledger's books")
        guard month.count == 7, let first = LocalDate(parsing: month + "-01") else {
            throw HubError.badRequest(field: "month", code: "invalid_date", "month must be YYYY-MM")
        }
        guard first.firstOfNextMonth <= today(now) else {
            throw HubError(.unprocessable, code: "month_not_over", field: "month", message: "\(month) is not over yet")
        }
        return try await write { db in
            if try db.exists("SELECT 1 FROM carshare_closed_month WHERE month = ?", month) {
                throw HubError.conflict(field: "month", code: "already_closed", "\(month) is already closed")
            }
            try db.execute(sql: "INSERT INTO carshare_closed_month (month, closed_by, closed_at) VALUES (?, ?, ?)",
                           arguments: [month, identity.name, now.millisecondsSince1970])
            // The chain's head at the close goes outside the database before the close commits: a
            // month is never closed without its anchor (an anchor of a close that then failed to
            // commit still names an entry and its hash, which stay true).
            let head = try ledgerHead(db, month: month, lastDay: first.firstOfNextMonth.advanced(by: -1))
            guard head.chainIntact else {
                throw HubError(.unprocessable, code: "hash_chain_broken", field: "month",
                               message: "the ledger's chain does not check up to \(month)'s last entry: run `community-hub ledger verify` before closing")
            }
            try anchors.append(LedgerAnchor(head: head, closedAt: now, closedBy: identity.name, key: anchors.key))
            return try String.fetchAll(db, sql: "SELECT month FROM carshare_closed_month ORDER BY month")
        }
    }

    public func entryView(_ number: Int64, by identity: Identity) async throws -> EntryView {
        try identity.require(.read, .ledger, "the ledger")
        return try await read { db in
            guard let entry = try entry(db, number) else { throw LedgerError.unknownEntry(number: number) }
            var estates: [String?] = []
            for member in entry.namedMembers { estates.append(try memberScope(db, member).estate) }
            guard AccessPolicy.allows(identity, .read, .ledgerEntry(memberEstates: estates)) else {
                throw denied("entry", "entry \(number) names a member of another estate: it is for that estate's association and the landlord's staff")
            }
            return EntryView(entry)
        }
    }
}

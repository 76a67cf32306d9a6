import CarShareCore
import Foundation
import HubCore
import PostgresNIO
import Shared

extension PostgresCarShareStore {
    /// Records money received from a member, once per idempotency key (checked under the write
    /// lock, so concurrent retries from several processes replay the first), with a gapless receipt number.
    public func recordPayment(_ input: NewPayment, by identity: Identity, at now: Instant) async throws -> (payment: PaymentView, replayed: Bool) {
        try identity.require(.manage, .payments, "recording a payment")
        let (key, note, fingerprint, date) = try checkPayment(input, by: identity, at: now)
        return try await write { db in
            if let first = try await replay(db, key: key, scope: "payment", fingerprint: fingerprint, as: PaymentView.self) { return (first, true) }
            let member = try await memberScope(db, input.member)
            if identity.role != .driver { try requireManage(identity, member) }
            let owed = try await memberBalance(db, member.id).owed
            let lines = LedgerRules.payment(member: member.id, amount: input.amountCents, into: input.method.account, debt: owed)
            let label = "Paiement \(input.method.frenchLabel) — \(member.name)" + (note.isEmpty ? "" : " (\(note))")
            let entry = try await post(db, EntryDraft(date: date, kind: .payment, label: label, lines: lines, member: member.id, needsReceipt: true),
                                       by: identity.name, at: now)
            let settled = lines.filter { $0.account == .members }.reduce(Cents.zero) { $0 - $1.amount }
            let receipt = entry.receipt!
            let text = Self.receiptText(receipt: receipt, member: member.name, amount: input.amountCents, method: input.method, date: date, settled: settled)
            let view = PaymentView(entry: entry.number, receipt: receipt, member: member.id, amountCents: input.amountCents, method: input.method,
                                   date: date, settledCents: settled, creditCents: input.amountCents - settled, receiptText: text)
            try await remember(db, key: key, scope: "payment", fingerprint: fingerprint, response: view, at: now)
            return (view, false)
        }
    }

    public func recordDeposit(_ input: NewDeposit, by identity: Identity, at now: Instant) async throws -> PostedView {
        try identity.require(.manage, .cash, "the association's cash")
        try Check.positive(input.amountCents)
        let key = try input.idempotencyKey.map { try Self.checkKey($0) }
        let fingerprint = try Self.fingerprint(input)
        let date = input.on ?? today(now)
        return try await write { db in
            if let key, let first = try await replay(db, key: key, scope: "deposit", fingerprint: fingerprint, as: PostedView.self) { return first }
            let from: Account = input.kind == .cash ? .cash : .chequesToDeposit
            let what = input.kind == .cash ? "espèces" : "chèques"
            let out = try await post(db, EntryDraft(date: date, kind: .deposit, label: "Remise de \(what) en banque : sortie",
                                                    lines: [.debit(.internalTransfers, input.amountCents), .credit(from, input.amountCents)]), by: identity.name, at: now)
            let into = try await post(db, EntryDraft(date: date, kind: .deposit, label: "Remise de \(what) en banque : entrée",
                                                     lines: [.debit(.bank, input.amountCents), .credit(.internalTransfers, input.amountCents)]), by: identity.name, at: now)
            let view = PostedView(entries: [EntryView(out), EntryView(into)])
            if let key { try await remember(db, key: key, scope: "deposit", fingerprint: fingerprint, response: view, at: now) }
            return view
        }
    }

    public func recordRefund(_ input: NewRefund, by identity: Identity, at now: Instant) async throws -> PostedView {
        try identity.require(.manage, .cash, "the association's cash")
        try Check.positive(input.amountCents)
        let key = try input.idempotencyKey.map { try Self.checkKey($0) }
        let reason = try Check.text(input.reason, field: "reason", max: 500)
        let fingerprint = try Self.fingerprint(input)
        let date = input.on ?? today(now)
        return try await write { db in
            if let key, let first = try await replay(db, key: key, scope: "refund", fingerprint: fingerprint, as: PostedView.self) { return first }
            let member = try await memberScope(db, input.member)
            try requireManage(identity, member)
            let credit = try await memberBalance(db, member.id).credit
            // A cheque refund leaves the bank account like a transfer.
            let account: Account = input.method == .cash ? .cash : .bank
            let lines = try LedgerRules.refund(member: member.id, amount: input.amountCents, from: account, credit: credit)
            let entry = try await post(db, EntryDraft(date: date, kind: .refund, label: "Remboursement \(input.method.frenchLabel) — \(member.name)"
                                                      + (reason.isEmpty ? "" : " (\(reason))"), lines: lines, member: member.id), by: identity.name, at: now)
            let view = PostedView(entries: [EntryView(entry)])
            if let key { try await remember(db, key: key, scope: "refund", fingerprint: fingerprint, response: view, at: now) }
            return view
        }
    }

    public func correct(_ input: NewCorrection, by identity: Identity, at now: Instant) async throws -> PostedView {
        try identity.require(.manage, .cash, "the association's cash")
        let reason = try Check.name(input.reason, field: "reason")
        let replacement = try input.lines.map { try Self.lines($0) }
        let date = input.on ?? today(now)
        return try await write { db in
            guard let original = try await entry(db, input.entry) else { throw LedgerError.unknownEntry(number: input.entry) }
            if identity.role == .association {
                let members = Set(original.lines.compactMap(\.member) + (replacement ?? []).compactMap(\.member))
                for member in members { try requireManage(identity, try await memberScope(db, member)) }
                if members.isEmpty { throw denied("entry", "an association corrects its members' entries; ask staff for this one") }
            }
            for (index, line) in (replacement ?? []).enumerated() where line.member != nil {
                _ = try await memberScope(db, line.member!, field: "lines[\(index)].member")
            }
            var draft = try LedgerRules.reversal(of: original, on: date)
            draft.label += " — motif : \(reason)"
            // The reversal and the right entry are one correction: the clearing accounts are checked once both are written.
            let reversal = try await post(db, draft, by: identity.name, at: now, checkClearing: replacement == nil)
            var posted = [EntryView(reversal)]
            if let replacement {
                let label = try input.label.map { try Check.name($0, field: "label") }
                let corrected = try await post(db, EntryDraft(date: date, kind: .correction, label: label ?? "Correction de l'écriture n° \(original.number) : \(original.label)",
                                                              lines: replacement, member: original.member, corrects: original.number),
                                               by: identity.name, at: now, checkClearing: false)
                posted.append(EntryView(corrected))
                try await checkClearingAccounts(db, from: date)
            }
            return PostedView(entries: posted)
        }
    }

    public func postManual(_ input: NewManualEntry, by identity: Identity, at now: Instant) async throws -> EntryView {
        try identity.require(.manage, .ledger, "the ledger's books")
        let label = try Check.name(input.label, field: "label")
        let lines = try Self.lines(input.lines)
        return try await write { db in
            for (index, line) in lines.enumerated() where line.member != nil { _ = try await memberScope(db, line.member!, field: "lines[\(index)].member") }
            return EntryView(try await post(db, EntryDraft(date: input.on, kind: .manual, label: label, lines: lines), by: identity.name, at: now))
        }
    }

    public func closeMonth(_ month: String, by identity: Identity, at now: Instant) async throws -> [String] {
        try identity.require(.manage, .ledger, "the ledger's books")
        guard month.count == 7, let first = LocalDate(parsing: month + "-01") else {
            throw HubError.badRequest(field: "month", code: "invalid_date", "month must be YYYY-MM")
        }
        guard first.firstOfNextMonth <= today(now) else {
            throw HubError(.unprocessable, code: "month_not_over", field: "month", message: "\(month) is not over yet")
        }
        return try await write { db in
            if try await exists(db, "SELECT 1 FROM carshare_closed_month WHERE month = \(month)") {
                throw HubError.conflict(field: "month", code: "already_closed", "\(month) is already closed")
            }
            try await run(db, "INSERT INTO carshare_closed_month (month, closed_by, closed_at) VALUES (\(month), \(identity.name), \(now.millisecondsSince1970))")
            // The anchor goes outside the database before the close commits (see the SQLite store).
            let head = try await ledgerHead(db, month: month, lastDay: first.firstOfNextMonth.advanced(by: -1))
            guard head.chainIntact else {
                throw HubError(.unprocessable, code: "hash_chain_broken", field: "month",
                               message: "the ledger's chain does not check up to \(month)'s last entry: run `community-hub ledger verify` before closing")
            }
            try anchors.append(LedgerAnchor(head: head, closedAt: now, closedBy: identity.name, key: anchors.key))
            return try await db.column("SELECT month FROM carshare_closed_month ORDER BY month COLLATE \"C\"", as: String.self, logger: logger)
        }
    }

    public func entryView(_ number: Int64, by identity: Identity) async throws -> EntryView {
        try identity.require(.read, .ledger, "the ledger")
        return try await read { db in
            guard let entry = try await entry(db, number) else { throw LedgerError.unknownEntry(number: number) }
            var estates: [String?] = []
            for member in entry.namedMembers { estates.append(try await memberScope(db, member).estate) }
            guard AccessPolicy.allows(identity, .read, .ledgerEntry(memberEstates: estates)) else {
                throw denied("entry", "entry \(number) names a member of another estate: it is for that estate's association and the landlord's staff")
            }
            return EntryView(entry)
        }
    }
}

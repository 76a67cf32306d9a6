import CarShareCore
import Foundation
import GRDB
import HubCore
import Shared

/// The car share's SQLite edge: every operation checks and writes in one `BEGIN IMMEDIATE`
/// transaction, applies the pure rules, and answers with plain values. Who may do what is
/// asked of `AccessPolicy` here, so HTTP and CLI share it.
public struct SQLiteCarShareStore: CarShareStoreEdge {
    public let database: HubDatabase
    public let settings: CarShareSettings
    public let zone: LocalTimeZone
    /// Where each month's close is anchored outside the database, and checked by `verify`.
    public let anchors: LedgerAnchorFile

    public init(database: HubDatabase, settings: CarShareSettings = CarShareSettings(), anchors: LedgerAnchorFile? = nil) {
        self.database = database
        self.settings = settings
        self.zone = settings.zone
        self.anchors = anchors ?? LedgerAnchorFile(database: database.path, configured: settings.ledgerAnchorsFile)
    }

    // MARK: transactions

    /// Runs `body` in one `BEGIN IMMEDIATE` transaction: the write lock is taken before the first
    /// read, so a check and the write that depends on it cannot interleave with another writer
    /// (another process on the same file included). Rule errors become `HubError`s.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await SQLiteCarShareStore.mappingErrors {
            try await database.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                return result!
            }
        }
    }

    /// A synchronous variant for the CLI and tests.
    func writeSync<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try database.writeWithoutTransactionBlocking { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                return result!
            }
        } catch {
            throw SQLiteCarShareStore.hubError(error)
        }
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await SQLiteCarShareStore.mappingErrors { try await database.read(body) }
    }

    static func mappingErrors<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch { throw hubError(error) }
    }

    /// The user-facing form of a rule error; other errors pass through.
    public static func hubError(_ error: any Error) -> any Error {
        switch error {
        case let error as LedgerError: return error.hubError
        case let error as BookingError: return error.hubError
        case let error as TripError: return error.hubError
        case let error as DatabaseError where error.message?.contains("posted_entry_immutable") == true:
            return LedgerError.postedEntryImmutable(number: 0).hubError
        default: return error
        }
    }

    // MARK: access

    func memberScope(_ db: Database, _ id: Int64, field: String = "member") throws -> MemberScope {
        guard let row = try Row.fetchOne(db, sql: "SELECT id, name, dwelling_id, estate_id FROM carshare_member WHERE id = ?", arguments: [id]) else {
            throw HubError.notFound(field: field, "no member \(id)")
        }
        return MemberScope(id: row["id"], name: row["name"], dwelling: row["dwelling_id"], estate: row["estate_id"])
    }

    /// Every member's scope, for the ledger's views (a small table: one row per member).
    func memberScopes(_ db: Database) throws -> [Int64: MemberScope] {
        var scopes: [Int64: MemberScope] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT id, name, dwelling_id, estate_id FROM carshare_member") {
            scopes[row["id"]] = MemberScope(id: row["id"], name: row["name"], dwelling: row["dwelling_id"], estate: row["estate_id"])
        }
        return scopes
    }

    /// The driver record of a driver user.
    func driverID(of identity: Identity, _ db: Database) throws -> Int64? {
        try Int64.fetchOne(db, sql: "SELECT id FROM carshare_driver WHERE user_name = ?", arguments: [identity.name])
    }

    // MARK: ledger

    func closedMonths(_ db: Database) throws -> Set<String> {
        Set(try String.fetchAll(db, sql: "SELECT month FROM carshare_closed_month"))
    }

    /// Posts an entry: checks every invariant, assigns the next entry (and receipt) number and
    /// chains its hash, all inside the caller's write transaction.
    @discardableResult
    func post(_ db: Database, _ draft: EntryDraft, by user: String, at now: Instant, checkClearing: Bool = true) throws -> PostedEntry {
        try LedgerRules.validate(draft)
        try LedgerRules.checkOpen(draft.date, closedMonths: closedMonths(db))
        if let reversed = draft.reverses {
            if let by = try Int64.fetchOne(db, sql: "SELECT number FROM carshare_entry WHERE reverses = ?", arguments: [reversed]) {
                throw LedgerError.alreadyReversed(number: reversed, by: by)
            }
        }
        if checkClearing {
            for account in Account.clearing {
                let delta = draft.lines.filter { $0.account == account }.reduce(Cents.zero) { $0 + $1.amount }
                guard delta < .zero else { continue }
                let (opening, later) = try movements(db, account, from: draft.date)
                try LedgerRules.checkClearing(account, opening: opening, later: later, date: draft.date, delta: delta)
            }
        }
        let last = try Row.fetchOne(db, sql: "SELECT number, hash FROM carshare_entry ORDER BY number DESC LIMIT 1")
        let number: Int64 = (last?["number"] ?? 0) + 1
        let previousHash: String = last?["hash"] ?? HashChain.genesis
        let receipt: Int64? = draft.needsReceipt ? (try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(receipt), 0) FROM carshare_entry") ?? 0) + 1 : nil
        let entry = PostedEntry(number: number, draft: draft, receipt: receipt, postedAt: now, postedBy: user, previousHash: previousHash)
        try db.execute(sql: """
            INSERT INTO carshare_entry (number, date, kind, label, member_id, reverses, corrects, receipt, posted_at, posted_by, previous_hash, hash)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [number, entry.date.description, entry.kind.rawValue, entry.label, entry.member, entry.reverses, entry.corrects,
                             receipt, now.millisecondsSince1970, user, previousHash, entry.hash])
        for (index, line) in entry.lines.enumerated() {
            try db.execute(sql: "INSERT INTO carshare_entry_line (entry_number, line, account, member_id, amount_cents) VALUES (?, ?, ?, ?, ?)",
                           arguments: [number, index + 1, line.account.rawValue, line.member, line.amount.value])
        }
        return entry
    }

    /// A clearing account's balance before `date`, and its net movement on each day from `date` on.
    func movements(_ db: Database, _ account: Account, from date: LocalDate) throws -> (opening: Cents, later: [(LocalDate, Cents)]) {
        let opening = Cents(try Int64.fetchOne(db, sql: """
            SELECT COALESCE(SUM(l.amount_cents), 0) FROM carshare_entry_line l JOIN carshare_entry e ON e.number = l.entry_number
            WHERE l.account = ? AND e.date < ?
            """, arguments: [account.rawValue, date.description]) ?? 0)
        let later = try Row.fetchAll(db, sql: """
            SELECT e.date, SUM(l.amount_cents) AS amount FROM carshare_entry_line l JOIN carshare_entry e ON e.number = l.entry_number
            WHERE l.account = ? AND e.date >= ? GROUP BY e.date
            """, arguments: [account.rawValue, date.description]).map { (LocalDate(parsing: $0["date"] as String)!, Cents($0["amount"])) }
        return (opening, later)
    }

    /// Invariant 7 for what is now written from `date` on (after a group of entries): every
    /// clearing account stays at or above zero.
    func checkClearingAccounts(_ db: Database, from date: LocalDate) throws {
        for account in Account.clearing {
            let (opening, later) = try movements(db, account, from: date)
            try LedgerRules.checkClearing(account, opening: opening, movements: later, from: date)
        }
    }

    /// What a member owes (411, debit balance) and has in advance (4191, credit balance).
    func memberBalance(_ db: Database, _ member: Int64) throws -> (owed: Cents, credit: Cents) {
        let rows = try Row.fetchAll(db, sql: """
            SELECT account, SUM(amount_cents) AS amount FROM carshare_entry_line WHERE account IN ('411', '4191') AND member_id = ? GROUP BY account
            """, arguments: [member])
        var owed = Cents.zero
        var credit = Cents.zero
        for row in rows {
            let amount = Cents(row["amount"])
            if row["account"] == Account.members.rawValue { owed = amount }
            if row["account"] == Account.memberCredit.rawValue { credit = -amount }
        }
        return (owed, credit)
    }

    /// Charges a fee to a member, prepaid credit first when the setting says so.
    func charge(_ db: Database, member: Int64, amount: Cents, income: Account, date: LocalDate, kind: EntryKind, label: String,
                by user: String, at now: Instant) throws -> PostedEntry? {
        guard amount > .zero else { return nil }
        let balance = try memberBalance(db, member)
        let lines = LedgerRules.charge(member: member, amount: amount, income: income, credit: balance.credit,
                                       usePrepaidCreditFirst: settings.usePrepaidCreditFirst)
        return try post(db, EntryDraft(date: date, kind: kind, label: label, lines: lines, member: member), by: user, at: now)
    }

    func entry(_ db: Database, _ number: Int64) throws -> PostedEntry? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM carshare_entry WHERE number = ?", arguments: [number]) else { return nil }
        return try entries(db, rows: [row]).first
    }

    /// Entries (with their lines) from entry rows.
    func entries(_ db: Database, rows: [Row]) throws -> [PostedEntry] {
        guard let first = rows.first, let last = rows.last else { return [] }
        let low: Int64 = first["number"]
        let high: Int64 = last["number"]
        var lines: [Int64: [LedgerLine]] = [:]
        let cursor = try Row.fetchCursor(db, sql: """
            SELECT entry_number, account, member_id, amount_cents FROM carshare_entry_line
            WHERE entry_number BETWEEN ? AND ? ORDER BY entry_number, line
            """, arguments: [min(low, high), max(low, high)])
        while let row = try cursor.next() {
            // An unknown account code in a stored row is tampering: keep it visible as a broken line.
            let account = Account(rawValue: row["account"]) ?? .internalTransfers
            lines[row["entry_number"], default: []].append(LedgerLine(account, Cents(row["amount_cents"]), member: row["member_id"]))
        }
        return rows.map { row in
            PostedEntry(number: row["number"], date: LocalDate(parsing: row["date"] as String) ?? LocalDate(year: 1970, month: 1, day: 1)!,
                        kind: EntryKind(rawValue: row["kind"]) ?? .manual, label: row["label"], lines: lines[row["number"]] ?? [],
                        member: row["member_id"], reverses: row["reverses"], corrects: row["corrects"], receipt: row["receipt"],
                        postedAt: Instant(millisecondsSince1970: row["posted_at"]), postedBy: row["posted_by"],
                        previousHash: row["previous_hash"], hash: row["hash"])
        }
    }

    /// Every entry in number order.
    func allEntries(_ db: Database) throws -> [PostedEntry] {
        try entries(db, rows: Row.fetchAll(db, sql: "SELECT * FROM carshare_entry ORDER BY number"))
    }

    // MARK: idempotency

    /// The stored answer to an earlier request with this key; throws when the key was used for a
    /// different request.
    func replay<T: Decodable>(_ db: Database, key: String, scope: String, fingerprint: String, as type: T.Type) throws -> T? {
        guard let row = try Row.fetchOne(db, sql: "SELECT scope, fingerprint, response FROM carshare_request WHERE idempotency_key = ?", arguments: [key]) else {
            return nil
        }
        guard row["scope"] == scope, row["fingerprint"] == fingerprint else { throw LedgerError.idempotencyKeyReused(key: key) }
        return try JSONDecoder().decode(T.self, from: Data((row["response"] as String).utf8))
    }

    func remember<T: Encodable>(_ db: Database, key: String, scope: String, fingerprint: String, response: T, at now: Instant) throws {
        let text = String(decoding: try HubJSON.encoder.encode(response), as: UTF8.self)
        try db.execute(sql: "INSERT INTO carshare_request (idempotency_key, scope, fingerprint, response, created_at) VALUES (?, ?, ?, ?, ?)",
                       arguments: [key, scope, fingerprint, text, now.millisecondsSince1970])
    }
}


extension Identity {
    /// Throws 403 naming the field `role` unless `AccessPolicy` lets this caller do `action` on `resource`.
    func require(_ action: AccessPolicy.Action, _ resource: AccessPolicy.Resource, _ what: String) throws {
        guard AccessPolicy.allows(self, action, resource) else {
            throw denied("role", "\(what): not open to the role \(role.rawValue)")
        }
    }
}

/// Small input checks shared by the operations.
enum Check {
    static func name(_ text: String, field: String = "name") throws -> String {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty, trimmed.count <= 200 else { throw HubError.badRequest(field: field, "\(field) must be 1 to 200 characters") }
        return trimmed
    }

    static func positive(_ amount: Cents, field: String = "amount_cents") throws {
        guard amount > .zero else { throw LedgerError.amountNotPositive(field: field).hubError }
        guard amount.value <= 100_000_000 else { throw HubError.badRequest(field: field, "\(field) is implausibly large") }
    }

    static func text(_ value: String?, field: String, max: Int = 2000) throws -> String {
        let text = (value ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.count <= max else { throw HubError.badRequest(field: field, "\(field) has more than \(max) characters") }
        return text
    }
}

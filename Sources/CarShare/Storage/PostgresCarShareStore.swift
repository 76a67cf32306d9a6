import CarShareCore
import Foundation
import HubCore
import Logging
import PostgresNIO
import Shared

/// The car share on the server database: the same operations, rules, access checks and errors
/// as `SQLiteCarShareStore`, over `HubPostgres`. Every write takes one transaction-scoped advisory
/// lock first, so the car share's writers run one at a time across every hub process, as SQLite's
/// `BEGIN IMMEDIATE` makes them: a check (a free slot, the next entry number, an unused
/// idempotency key) and the write that depends on it cannot interleave. Reads run concurrently in
/// read-only snapshots.
public struct PostgresCarShareStore: CarShareStoreEdge {
    public let database: HubPostgres
    public let settings: CarShareSettings
    public let zone: LocalTimeZone
    /// Where each month's close is anchored outside the database, and checked by `verify`.
    public let anchors: LedgerAnchorFile

    /// The advisory lock of the car share's writes ("CARSHARE").
    static let writeLock: Int64 = 0x4341_5253_4841_5245

    public init(database: HubPostgres, settings: CarShareSettings = CarShareSettings(), anchors: LedgerAnchorFile? = nil) {
        self.database = database
        self.settings = settings
        self.zone = settings.zone
        // No database file to sit beside: without a configured path the anchors are named after the database.
        self.anchors = anchors ?? LedgerAnchorFile(database: "postgres-\(database.location.database)", configured: settings.ledgerAnchorsFile)
    }

    var logger: Logger { database.logger }

    // MARK: transactions

    func write<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await database.transaction(.readCommitted) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(Self.writeLock))", logger: logger)
                return try await body(connection)
            }
        } catch {
            throw Self.hubError(error)
        }
    }

    func read<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        do { return try await database.read(body) } catch { throw Self.hubError(error) }
    }

    /// The user-facing form of a rule error or of a ledger trigger's refusal; other errors pass through.
    public static func hubError(_ error: any Error) -> any Error {
        if HubPostgres.serverMessage(error)?.contains("posted_entry_immutable") == true {
            return LedgerError.postedEntryImmutable(number: 0).hubError
        }
        return SQLiteCarShareStore.hubError(error)
    }

    // MARK: queries

    func all(_ connection: PostgresConnection, _ query: PostgresQuery) async throws -> [PGRow] {
        var rows: [PGRow] = []
        for try await row in try await connection.query(query, logger: logger) { rows.append(PGRow(row: row.makeRandomAccess())) }
        return rows
    }

    func one(_ connection: PostgresConnection, _ query: PostgresQuery) async throws -> PGRow? {
        try await all(connection, query).first
    }

    func exists(_ connection: PostgresConnection, _ query: PostgresQuery) async throws -> Bool {
        try await one(connection, query) != nil
    }

    func run(_ connection: PostgresConnection, _ query: PostgresQuery) async throws {
        try await connection.query(query, logger: logger)
    }

    // MARK: access

    func memberScope(_ connection: PostgresConnection, _ id: Int64, field: String = "member") async throws -> MemberScope {
        guard let row = try await one(connection, "SELECT id, name, dwelling_id, estate_id FROM carshare_member WHERE id = \(id)") else {
            throw HubError.notFound(field: field, "no member \(id)")
        }
        return try row.memberScope()
    }

    func memberScopes(_ connection: PostgresConnection) async throws -> [Int64: MemberScope] {
        var scopes: [Int64: MemberScope] = [:]
        for row in try await all(connection, "SELECT id, name, dwelling_id, estate_id FROM carshare_member") {
            let scope = try row.memberScope()
            scopes[scope.id] = scope
        }
        return scopes
    }

    func driverID(of identity: Identity, _ connection: PostgresConnection) async throws -> Int64? {
        try await connection.scalar("SELECT id FROM carshare_driver WHERE user_name = \(identity.name)", as: Int64.self, logger: logger)
    }

    // MARK: ledger

    func closedMonths(_ connection: PostgresConnection) async throws -> Set<String> {
        Set(try await connection.column("SELECT month FROM carshare_closed_month", as: String.self, logger: logger))
    }

    /// Posts an entry: checks every invariant, assigns the next entry (and receipt) number and
    /// chains its hash, all inside the caller's write transaction (the server's triggers check again).
    @discardableResult
    func post(_ connection: PostgresConnection, _ draft: EntryDraft, by user: String, at now: Instant, checkClearing: Bool = true) async throws -> PostedEntry {
        try LedgerRules.validate(draft)
        try LedgerRules.checkOpen(draft.date, closedMonths: await closedMonths(connection))
        if let reversed = draft.reverses {
            if let by = try await connection.scalar("SELECT number FROM carshare_entry WHERE reverses = \(reversed)", as: Int64.self, logger: logger) {
                throw LedgerError.alreadyReversed(number: reversed, by: by)
            }
        }
        if checkClearing {
            for account in Account.clearing {
                let delta = draft.lines.filter { $0.account == account }.reduce(Cents.zero) { $0 + $1.amount }
                guard delta < .zero else { continue }
                let (opening, later) = try await movements(connection, account, from: draft.date)
                try LedgerRules.checkClearing(account, opening: opening, later: later, date: draft.date, delta: delta)
            }
        }
        let last = try await one(connection, "SELECT number, hash FROM carshare_entry ORDER BY number DESC LIMIT 1")
        let number: Int64 = (try last?["number"] ?? 0) + 1
        let previousHash: String = try last?["hash"] ?? HashChain.genesis
        let receipt: Int64? = draft.needsReceipt
            ? (try await connection.scalar("SELECT COALESCE(MAX(receipt), 0) FROM carshare_entry", as: Int64.self, logger: logger) ?? 0) + 1 : nil
        let entry = PostedEntry(number: number, draft: draft, receipt: receipt, postedAt: now, postedBy: user, previousHash: previousHash)
        try await run(connection, """
            INSERT INTO carshare_entry (number, date, kind, label, member_id, reverses, corrects, receipt, posted_at, posted_by, previous_hash, hash)
            VALUES (\(number), \(entry.date.description), \(entry.kind.rawValue), \(entry.label), \(entry.member), \(entry.reverses), \(entry.corrects),
                    \(receipt), \(now.millisecondsSince1970), \(user), \(previousHash), \(entry.hash))
            """)
        for (index, line) in entry.lines.enumerated() {
            try await run(connection, """
                INSERT INTO carshare_entry_line (entry_number, line, account, member_id, amount_cents)
                VALUES (\(number), \(Int64(index + 1)), \(line.account.rawValue), \(line.member), \(line.amount.value))
                """)
        }
        return entry
    }

    /// A clearing account's balance before `date`, and its net movement on each day from `date` on.
    func movements(_ connection: PostgresConnection, _ account: Account, from date: LocalDate) async throws -> (opening: Cents, later: [(LocalDate, Cents)]) {
        let opening = Cents(try await connection.scalar("""
            SELECT COALESCE(SUM(l.amount_cents), 0)::bigint FROM carshare_entry_line l JOIN carshare_entry e ON e.number = l.entry_number
            WHERE l.account = \(account.rawValue) AND e.date < \(date.description)
            """, as: Int64.self, logger: logger) ?? 0)
        let later = try await all(connection, """
            SELECT e.date, SUM(l.amount_cents)::bigint AS amount FROM carshare_entry_line l JOIN carshare_entry e ON e.number = l.entry_number
            WHERE l.account = \(account.rawValue) AND e.date >= \(date.description) GROUP BY e.date
            """).map { (try $0.date("date"), Cents(try $0["amount"])) }
        return (opening, later)
    }

    func checkClearingAccounts(_ connection: PostgresConnection, from date: LocalDate) async throws {
        for account in Account.clearing {
            let (opening, later) = try await movements(connection, account, from: date)
            try LedgerRules.checkClearing(account, opening: opening, movements: later, from: date)
        }
    }

    /// What a member owes (411, debit balance) and has in advance (4191, credit balance).
    func memberBalance(_ connection: PostgresConnection, _ member: Int64) async throws -> (owed: Cents, credit: Cents) {
        let rows = try await all(connection, """
            SELECT account, SUM(amount_cents)::bigint AS amount FROM carshare_entry_line
            WHERE account IN ('411', '4191') AND member_id = \(member) GROUP BY account
            """)
        var owed = Cents.zero
        var credit = Cents.zero
        for row in rows {
            let amount = Cents(try row["amount"])
            let account: String = try row["account"]
            if account == Account.members.rawValue { owed = amount }
            if account == Account.memberCredit.rawValue { credit = -amount }
        }
        return (owed, credit)
    }

    /// Charges a fee to a member, prepaid credit first when the setting says so.
    func charge(_ connection: PostgresConnection, member: Int64, amount: Cents, income: Account, date: LocalDate, kind: EntryKind, label: String,
                by user: String, at now: Instant) async throws -> PostedEntry? {
        guard amount > .zero else { return nil }
        let balance = try await memberBalance(connection, member)
        let lines = LedgerRules.charge(member: member, amount: amount, income: income, credit: balance.credit,
                                       usePrepaidCreditFirst: settings.usePrepaidCreditFirst)
        return try await post(connection, EntryDraft(date: date, kind: kind, label: label, lines: lines, member: member), by: user, at: now)
    }

    static let entryColumns = "number, date, kind, label, member_id, reverses, corrects, receipt, posted_at, posted_by, previous_hash, hash"

    func entry(_ connection: PostgresConnection, _ number: Int64) async throws -> PostedEntry? {
        try await entries(connection, where: "number = \(number)").first
    }

    /// Entries (with their lines) matching a condition on carshare_entry, in number order.
    func entries(_ connection: PostgresConnection, where condition: PostgresQuery) async throws -> [PostedEntry] {
        var query = PostgresQuery(unsafeSQL: "SELECT \(Self.entryColumns) FROM carshare_entry WHERE ", binds: condition.binds)
        query.sql += condition.sql + " ORDER BY number"
        let rows = try await all(connection, query)
        guard let first = rows.first, let last = rows.last else { return [] }
        let low: Int64 = try first["number"]
        let high: Int64 = try last["number"]
        var lines: [Int64: [LedgerLine]] = [:]
        for row in try await all(connection, """
            SELECT entry_number, account, member_id, amount_cents FROM carshare_entry_line
            WHERE entry_number BETWEEN \(low) AND \(high) ORDER BY entry_number, line
            """) {
            // An unknown account code in a stored row is tampering: keep it visible as a broken line.
            let account = Account(rawValue: try row["account"]) ?? .internalTransfers
            lines[try row["entry_number"], default: []].append(LedgerLine(account, Cents(try row["amount_cents"]), member: try row["member_id"]))
        }
        return try rows.map { row in
            let number: Int64 = try row["number"]
            return PostedEntry(number: number, date: LocalDate(parsing: try row["date"] as String) ?? LocalDate(year: 1970, month: 1, day: 1)!,
                               kind: EntryKind(rawValue: try row["kind"]) ?? .manual, label: try row["label"], lines: lines[number] ?? [],
                               member: try row["member_id"], reverses: try row["reverses"], corrects: try row["corrects"], receipt: try row["receipt"],
                               postedAt: Instant(millisecondsSince1970: try row["posted_at"]), postedBy: try row["posted_by"],
                               previousHash: try row["previous_hash"], hash: try row["hash"])
        }
    }

    func allEntries(_ connection: PostgresConnection) async throws -> [PostedEntry] {
        try await entries(connection, where: "true")
    }

    // MARK: idempotency

    func replay<T: Decodable>(_ connection: PostgresConnection, key: String, scope: String, fingerprint: String, as type: T.Type) async throws -> T? {
        guard let row = try await one(connection, "SELECT scope, fingerprint, response FROM carshare_request WHERE idempotency_key = \(key)") else {
            return nil
        }
        guard try row["scope"] == scope, try row["fingerprint"] == fingerprint else { throw LedgerError.idempotencyKeyReused(key: key) }
        return try JSONDecoder().decode(T.self, from: Data((try row["response"] as String).utf8))
    }

    func remember<T: Encodable>(_ connection: PostgresConnection, key: String, scope: String, fingerprint: String, response: T, at now: Instant) async throws {
        let text = String(decoding: try HubJSON.encoder.encode(response), as: UTF8.self)
        try await run(connection, """
            INSERT INTO carshare_request (idempotency_key, scope, fingerprint, response, created_at)
            VALUES (\(key), \(scope), \(fingerprint), \(text), \(now.millisecondsSince1970))
            """)
    }
}

/// A row read by column name.
struct PGRow {
    let row: PostgresRandomAccessRow

    subscript<T: PostgresDecodable>(_ column: String) -> T {
        get throws { try row[column].decode(T.self) }
    }

    func date(_ column: String) throws -> LocalDate {
        let text: String = try self[column]
        guard let date = LocalDate(parsing: text) else { throw HubError(.unprocessable, code: "stored_date", field: column, message: "the stored date \(text) does not parse") }
        return date
    }

    func instant(_ column: String) throws -> Instant {
        Instant(millisecondsSince1970: try self[column])
    }

    func memberScope() throws -> MemberScope {
        MemberScope(id: try self["id"], name: try self["name"], dwelling: try self["dwelling_id"], estate: try self["estate_id"])
    }
}

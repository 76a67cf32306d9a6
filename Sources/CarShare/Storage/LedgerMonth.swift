import CarShareCore
import Foundation
import GRDB
import HubCore
import Shared

/// A month of the ledger as the association's statement prints it: its entries (the month's
/// hledger journal) and the hash chain's head at its close.
extension SQLiteCarShareStore {
    public func entries(from: LocalDate, to: LocalDate, by identity: Identity) async throws -> [PostedEntry] {
        try identity.require(.read, .ledger, "the ledger")
        guard from <= to else { throw HubError.badRequest(field: "to", code: "invalid_range", "to must not be before from") }
        return try await read { db in
            let members = try memberScopes(db)
            return try entries(db, rows: Row.fetchAll(db, sql: "SELECT * FROM carshare_entry WHERE date >= ? AND date <= ? ORDER BY number",
                                                      arguments: [from.description, to.description])).compactMap { disclosed($0, to: identity, members: members) }
        }
    }

    public func ledgerHead(month: String, by identity: Identity) async throws -> LedgerHead {
        try identity.require(.read, .ledger, "the ledger")
        guard month.count == 7, let first = LocalDate(parsing: month + "-01") else {
            throw HubError.badRequest(field: "month", code: "invalid_date", "month \(month) is not YYYY-MM")
        }
        let lastDay = first.firstOfNextMonth.advanced(by: -1)
        return try await read { db in try ledgerHead(db, month: month, lastDay: lastDay) }
    }

    func ledgerHead(_ db: Database, month: String, lastDay: LocalDate) throws -> LedgerHead {
        let closed = try db.exists("SELECT 1 FROM carshare_closed_month WHERE month = ?", month)
        // The chain is checked from the first entry up to the head, so only those rows are read.
        let entries = try entries(db, rows: Row.fetchAll(db, sql: """
            SELECT * FROM carshare_entry WHERE number <= (SELECT COALESCE(MAX(number), 0) FROM carshare_entry WHERE date <= ?) ORDER BY number
            """, arguments: [lastDay.description]))
        return HashChain.head(of: entries, month: month, lastDay: lastDay, closed: closed)
    }
}

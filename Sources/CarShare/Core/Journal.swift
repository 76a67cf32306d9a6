import Foundation
import HubCore

/// Writes the ledger as an hledger journal: accounts and the EUR commodity declared (so
/// `hledger check -s` passes), entries in date order, and a balance assertion on every posting so
/// that hledger recomputes each running balance and compares it with the hub's.
public enum HledgerJournal {
    /// The hledger account name of a line: "411 Usagers:membre-12" for per-member accounts.
    public static func accountName(_ account: Account, member: Int64?) -> String {
        let top = "\(account.rawValue) \(account.label)"
        guard let member else { return top }
        return "\(top):membre-\(member)"
    }

    /// Where a line is posted: its account (and member), or "411 Usagers:autres résidences" for a
    /// line of a member the reader may not see (in an association's view of the ledger such lines
    /// stand without a member).
    public static func postingName(_ line: LedgerLine) -> String {
        guard line.account.isPerMember, line.member == nil else { return accountName(line.account, member: line.member) }
        return accountName(line.account, member: nil) + ":" + otherEstates
    }

    /// The sub-account of 411 and 4191 that gathers the members of other estates.
    public static let otherEstates = "autres résidences"

    static func text(_ label: String) -> String {
        // ';' starts a comment and '|' splits payee from note in hledger descriptions.
        label.replacingOccurrences(of: ";", with: ",").replacingOccurrences(of: "|", with: "/").replacingOccurrences(of: "\n", with: " ")
    }

    public static func export(_ entries: [PostedEntry], title: String = "Journal de la voiture partagée") -> String {
        var out = "; \(title)\n; Montants en euros, écritures triées par date puis par numéro.\n\n"
        out += "commodity 1000.00 EUR\n\n"
        var declared = Set<String>()
        for account in Account.allCases { declared.insert(accountName(account, member: nil)) }
        for entry in entries { for line in entry.lines { declared.insert(postingName(line)) } }
        for name in declared.sorted() { out += "account \(name)\n" }
        out += "\n"
        var running: [String: Cents] = [:]
        let ordered = entries.sorted { ($0.date, $0.number) < ($1.date, $1.number) }
        for entry in ordered {
            out += "\(entry.date) (\(entry.number)) \(text(entry.label))\n"
            var tags = "    ; entry:\(entry.number), kind:\(entry.kind.rawValue), hash:\(entry.hash)"
            if let receipt = entry.receipt { tags += ", receipt:\(receipt)" }
            if let reverses = entry.reverses { tags += ", reverses:\(reverses)" }
            if let corrects = entry.corrects { tags += ", corrects:\(corrects)" }
            out += tags + "\n"
            // Several lines of one entry on one account: hledger asserts after each posting.
            for line in entry.lines {
                let name = postingName(line)
                let balance = running[name, default: .zero] + line.amount
                running[name] = balance
                out += "    \(name)  \(line.amount.decimalString) EUR = \(balance.decimalString) EUR\n"
            }
            out += "\n"
        }
        return out
    }
}

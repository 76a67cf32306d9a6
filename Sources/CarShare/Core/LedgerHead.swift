import Foundation
import HubCore

/// The ledger's hash chain as it stood when a month closed: the last posted entry dated in or
/// before the month and its hash. Printed on the association's statement, so that a later change
/// to a closed month, which can only pass unnoticed by rewriting the chain, gives another hash
/// than the one on paper.
public struct LedgerHead: Codable, Sendable, Equatable {
    public var month: String
    /// Whether the month is closed: until then, an entry may still be posted with a date in it and
    /// move the head.
    public var closed: Bool
    /// Posted entries dated in or before the month.
    public var entries: Int64
    /// The number of the last of them (the highest number), nil when there is none.
    public var lastEntry: Int64?
    /// Its SHA-256 hash (64 hexadecimal digits); the chain's start (`HashChain.genesis`) when there is none.
    public var hash: String
    /// Whether the chain checks from the first entry up to that one (numbers, links, contents).
    public var chainIntact: Bool

    enum CodingKeys: String, CodingKey {
        case month, closed, entries, hash
        case lastEntry = "last_entry", chainIntact = "chain_intact"
    }

    public init(month: String, closed: Bool, entries: Int64, lastEntry: Int64?, hash: String, chainIntact: Bool) {
        self.month = month
        self.closed = closed
        self.entries = entries
        self.lastEntry = lastEntry
        self.hash = hash
        self.chainIntact = chainIntact
    }
}

extension HashChain {
    /// The head at the close of the month ending on `lastDay`, from the entries in number order:
    /// the highest-numbered entry dated on or before that day, and whether the chain up to it holds.
    public static func head(of entries: [PostedEntry], month: String, lastDay: LocalDate, closed: Bool) -> LedgerHead {
        let dated = entries.filter { $0.date <= lastDay }
        guard let last = dated.max(by: { $0.number < $1.number }) else {
            return LedgerHead(month: month, closed: closed, entries: 0, lastEntry: nil, hash: genesis, chainIntact: true)
        }
        let intact = (try? verify(entries.prefix { $0.number <= last.number })) != nil
        return LedgerHead(month: month, closed: closed, entries: Int64(dated.count), lastEntry: last.number, hash: last.hash, chainIntact: intact)
    }
}

import Crypto
import Foundation
import HubCore

/// The hash chain's head when a month closed, kept outside the database (issue 14, defect 13):
/// the chain alone can be recomputed by whoever can write the database file, so a changed entry
/// followed by every later hash rewritten checks again. An anchor written at the close, in a file
/// the database does not hold (and printed on the association's statement), no longer matches
/// once any entry up to the month's last one was changed. With a key from the secrets, each
/// anchor carries an HMAC, so rewriting the anchors file too needs the key.
public struct LedgerAnchor: Codable, Sendable, Equatable {
    public var month: String
    /// Posted entries dated in or before the month when it closed.
    public var entries: Int64
    /// The highest-numbered of them; nil when there was none.
    public var lastEntry: Int64?
    /// Its hash (the chain's head at the close), `HashChain.genesis` when there was none.
    public var hash: String
    public var closedAt: Instant
    public var closedBy: String
    /// HMAC-SHA256 of `signedText` with the hub's anchor key, in hexadecimal; nil without a key.
    public var hmac: String?

    enum CodingKeys: String, CodingKey {
        case month, entries, hash, hmac
        case lastEntry = "last_entry", closedAt = "closed_at", closedBy = "closed_by"
    }

    public init(head: LedgerHead, closedAt: Instant, closedBy: String, key: SymmetricKey?) {
        month = head.month
        entries = head.entries
        lastEntry = head.lastEntry
        hash = head.hash
        self.closedAt = closedAt
        self.closedBy = closedBy
        hmac = key.map(signature)
    }

    /// What the HMAC covers: every field that says where the chain stood.
    public var signedText: String {
        "month=\(month)\nentries=\(entries)\nlast=\(lastEntry.map(String.init) ?? "")\nhash=\(hash)\nat=\(closedAt.millisecondsSince1970)\nby=\(closedBy)"
    }

    public func signature(_ key: SymmetricKey) -> String {
        HMAC<SHA256>.authenticationCode(for: Data(signedText.utf8), using: key).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// One line of the anchors file (JSON, no line break inside).
    public var line: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }
}

/// Why the ledger does not match what was anchored outside it, naming the month.
public struct AnchorProblem: Sendable, Equatable, Error {
    public var month: String
    public var message: String
}

extension HashChain {
    /// Checks the entries (in number order) against the anchors kept outside the database and the
    /// months the database says are closed: every anchor readable and (with a key) signed, the
    /// entry it names still carrying the hash it had at the close, and every closed month
    /// anchored. Returns the first problem, months in order.
    public static func checkAnchors(_ entries: [PostedEntry], anchorLines: [String], closedMonths: [String], key: SymmetricKey?) -> AnchorProblem? {
        var anchors: [LedgerAnchor] = []
        for (index, line) in anchorLines.enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let anchor = try? JSONDecoder().decode(LedgerAnchor.self, from: Data(line.utf8)) else {
                return AnchorProblem(month: "?", message: "line \(index + 1) of the anchors file is not an anchor: the file was changed")
            }
            anchors.append(anchor)
        }
        let byNumber = Dictionary(entries.map { ($0.number, $0) }, uniquingKeysWith: { first, _ in first })
        for anchor in anchors.sorted(by: { $0.month < $1.month }) {
            if let key {
                guard let hmac = anchor.hmac, hmac == anchor.signature(key) else {
                    return AnchorProblem(month: anchor.month, message: "the anchor kept when \(anchor.month) closed does not carry the hub's signature: the anchors file was changed")
                }
            }
            guard let number = anchor.lastEntry else { continue }
            guard let entry = byNumber[number] else {
                return AnchorProblem(month: anchor.month, message: "entry \(number), the chain's head when \(anchor.month) closed, is missing")
            }
            guard entry.hash == anchor.hash else {
                return AnchorProblem(month: anchor.month, message: "the chain's head when \(anchor.month) closed, entry \(number), no longer has the hash anchored then "
                                     + "(\(anchor.hash.prefix(12))…, now \(entry.hash.prefix(12))…): an entry up to \(number) was changed and the chain rewritten")
            }
        }
        let anchored = Set(anchors.map(\.month))
        if let missing = closedMonths.sorted().first(where: { !anchored.contains($0) }) {
            return AnchorProblem(month: missing, message: "\(missing) is closed but no anchor of it is kept outside the database")
        }
        return nil
    }
}

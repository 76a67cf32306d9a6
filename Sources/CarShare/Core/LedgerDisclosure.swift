import Foundation
import HubCore

extension PostedEntry {
    /// The members the entry names: on the entry itself and on its lines.
    public var namedMembers: Set<Int64> {
        Set(([member] + lines.map(\.member)).compactMap { $0 })
    }

    /// The entry as shown to an association that may not see some of the members it names
    /// (`AccessPolicy.disclosesLedgerEntry`): every amount stays where it is, so the
    /// association's own accounts (and the journal's balances) are whole, but the members it may
    /// not see are named nowhere: not on the entry, not on a line (their 411/4191 lines stand
    /// without a member, "autres résidences" in the journal), and the label, which names people,
    /// becomes a plain one by kind of entry.
    public func withoutMembers(except visible: (Int64) -> Bool) -> PostedEntry {
        guard !namedMembers.allSatisfy(visible) else { return self }
        var shown = self
        shown.lines = lines.map { line in
            guard let member = line.member, !visible(member) else { return line }
            return LedgerLine(line.account, line.amount, member: nil)
        }
        if let member, !visible(member) { shown.member = nil }
        shown.label = PostedEntry.otherEstateLabel(kind: kind, reverses: reverses, corrects: corrects)
        return shown
    }

    /// The label of an entry about a member of another estate, in French like the others.
    public static func otherEstateLabel(kind: EntryKind, reverses: Int64?, corrects: Int64?) -> String {
        let someone = "un membre d'une autre résidence"
        switch kind {
        case .membership: return "Adhésion — \(someone)"
        case .recognition: return "Adhésion — \(someone) : produit de l'année"
        case .tripFee: return "Trajet — \(someone)"
        case .payment: return "Paiement — \(someone)"
        case .refund: return "Remboursement — \(someone)"
        case .reversal: return "Annulation de l'écriture n° \(reverses.map(String.init) ?? "?") — \(someone)"
        case .correction: return "Correction de l'écriture n° \(corrects.map(String.init) ?? "?") — \(someone)"
        case .deposit, .charging, .manual: return "Écriture — \(someone)"
        }
    }
}

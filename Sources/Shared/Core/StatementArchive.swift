import Foundation

/// Where exported monthly statements are kept (issue 10): exporting a month freezes it. Each
/// export of a month and scope (an estate, or `*` for every estate) is a numbered revision holding
/// every household's statement exactly as it was sent (its JSON bytes), so exporting again gives
/// the same files and later data never changes silently what was sent. Only the landlord's staff
/// export; `AccessPolicy` is asked by the callers. `SQLiteStatementArchive` (Shared) implements it.
public protocol StatementArchive: Sendable {
    /// The latest revision of a month and scope, nil before its first export.
    func latestRevision(month: String, scope: String) async throws -> StatementRevision?
    /// One statement as a revision holds it (nil when that revision has none): a household's by its
    /// dwelling id, a building's as `building/<id>`, an association's as `association/<estate>`.
    func statement(month: String, scope: String, revision: Int, subject: String) async throws -> Data?
    /// Opens the next revision (discarding one left unfinished by a crash); households are added in
    /// chunks, so an export of any size is never held whole in memory.
    func open(_ revision: StatementRevision) async throws
    func add(month: String, scope: String, revision: Int, statements: [(subject: String, json: Data)]) async throws
    /// Marks the revision complete: from then on it is what was sent, and it never changes.
    func complete(month: String, scope: String, revision: Int) async throws
}

/// A frozen export of a month.
public struct StatementRevision: Codable, Sendable, Equatable {
    public var month: String
    public var scope: String
    public var number: Int
    public var exportedAt: Instant
    public var exportedBy: String
    /// The households whose statement changed from the previous revision (none for the first).
    public var changes: [StatementChange]

    enum CodingKeys: String, CodingKey {
        case month, scope, number, changes
        case exportedAt = "exported_at", exportedBy = "exported_by"
    }

    public init(month: String, scope: String, number: Int, exportedAt: Instant, exportedBy: String, changes: [StatementChange]) {
        self.month = month
        self.scope = scope
        self.number = number
        self.exportedAt = exportedAt
        self.exportedBy = exportedBy
        self.changes = changes
    }
}

/// A household whose figures for a frozen month changed after the export (a late reading).
public struct StatementChange: Codable, Sendable, Equatable {
    public var dwelling: String
    /// The month's saving as sent, and as the figures say now (nil when not printed: too little data).
    public var sentSavingsCents: Cents?
    public var nowSavingsCents: Cents?
    public var sentConsumptionWh: Int64
    public var nowConsumptionWh: Int64

    enum CodingKeys: String, CodingKey {
        case dwelling
        case sentSavingsCents = "sent_savings_cents", nowSavingsCents = "now_savings_cents",
             sentConsumptionWh = "sent_consumption_wh", nowConsumptionWh = "now_consumption_wh"
    }

    public init(dwelling: String, sentSavingsCents: Cents?, nowSavingsCents: Cents?, sentConsumptionWh: Int64, nowConsumptionWh: Int64) {
        self.dwelling = dwelling
        self.sentSavingsCents = sentSavingsCents
        self.nowSavingsCents = nowSavingsCents
        self.sentConsumptionWh = sentConsumptionWh
        self.nowConsumptionWh = nowConsumptionWh
    }
}

import Foundation
import GRDB
import HubCore

/// The statement archive in the hub's SQLite file: a row per revision, a row per household and
/// revision with the statement's JSON bytes as sent. Rows are only ever added.
public struct SQLiteStatementArchive: StatementArchive {
    public let database: HubDatabase

    public init(database: HubDatabase) { self.database = database }

    public func latestRevision(month: String, scope: String) async throws -> StatementRevision? {
        try await database.read { db in
            guard let row = try Row.fetchOne(db, sql: """
                SELECT revision, exported_at, exported_by, changes FROM statement_revision WHERE month = ? AND scope = ? AND completed_at IS NOT NULL
                ORDER BY revision DESC LIMIT 1
                """, arguments: [month, scope]) else { return nil }
            return try StatementArchiveRows.revision(month: month, scope: scope, number: row["revision"], exportedAt: row["exported_at"],
                                                     exportedBy: row["exported_by"], changes: row["changes"])
        }
    }

    public func statement(month: String, scope: String, revision: Int, subject: String) async throws -> Data? {
        try await database.read { db in
            try Data.fetchOne(db, sql: "SELECT json FROM statement_document WHERE month = ? AND scope = ? AND revision = ? AND subject = ?",
                              arguments: [month, scope, revision, subject])
        }
    }

    public func open(_ revision: StatementRevision) async throws {
        let changes = try StatementArchiveRows.changes(revision)
        try await database.write { db in
            // An export that stopped half-way (a crash, a full disk) left an unfinished revision: it was never sent.
            try db.execute(sql: "DELETE FROM statement_document WHERE (month, scope, revision) IN (SELECT month, scope, revision FROM statement_revision WHERE month = ? AND scope = ? AND completed_at IS NULL)",
                           arguments: [revision.month, revision.scope])
            try db.execute(sql: "DELETE FROM statement_revision WHERE month = ? AND scope = ? AND completed_at IS NULL", arguments: [revision.month, revision.scope])
            let latest = try Int.fetchOne(db, sql: "SELECT MAX(revision) FROM statement_revision WHERE month = ? AND scope = ?", arguments: [revision.month, revision.scope]) ?? 0
            try StatementArchiveRows.checkNext(revision, latest: latest)
            try db.execute(sql: "INSERT INTO statement_revision (month, scope, revision, exported_at, exported_by, changes) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [revision.month, revision.scope, revision.number, revision.exportedAt.millisecondsSince1970, revision.exportedBy, changes])
        }
    }

    public func add(month: String, scope: String, revision: Int, statements: [(subject: String, json: Data)]) async throws {
        try await database.write { db in
            let insert = try db.cachedStatement(sql: "INSERT INTO statement_document (month, scope, revision, subject, json) VALUES (?, ?, ?, ?, ?)")
            for statement in statements {
                try insert.execute(arguments: [month, scope, revision, statement.subject, statement.json])
            }
        }
    }

    public func complete(month: String, scope: String, revision: Int) async throws {
        try await database.write { db in
            try db.execute(sql: "UPDATE statement_revision SET completed_at = ? WHERE month = ? AND scope = ? AND revision = ? AND completed_at IS NULL",
                           arguments: [Instant.now().millisecondsSince1970, month, scope, revision])
        }
    }

    /// The archive's tables.
    public static let register: HubDatabase.Schema = { migrator in
        migrator.registerMigration("statements-1-archive") { db in
            try db.execute(sql: """
                CREATE TABLE statement_revision (
                    month TEXT NOT NULL CHECK (month GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]'),
                    scope TEXT NOT NULL,
                    revision INTEGER NOT NULL CHECK (revision >= 1),
                    exported_at INTEGER NOT NULL,
                    exported_by TEXT NOT NULL,
                    changes TEXT NOT NULL,
                    -- Set once every household is in: an unfinished revision was never sent.
                    completed_at INTEGER,
                    PRIMARY KEY (month, scope, revision)
                ) STRICT;
                CREATE TABLE statement_document (
                    month TEXT NOT NULL,
                    scope TEXT NOT NULL,
                    revision INTEGER NOT NULL,
                    subject TEXT NOT NULL,
                    json BLOB NOT NULL,
                    PRIMARY KEY (month, scope, revision, subject),
                    FOREIGN KEY (month, scope, revision) REFERENCES statement_revision(month, scope, revision)
                ) STRICT, WITHOUT ROWID;
                CREATE TRIGGER statement_revision_no_change BEFORE UPDATE ON statement_revision WHEN OLD.completed_at IS NOT NULL
                    BEGIN SELECT RAISE(ABORT, 'an exported revision is never changed'); END;
                CREATE TRIGGER statement_revision_no_delete BEFORE DELETE ON statement_revision WHEN OLD.completed_at IS NOT NULL
                    BEGIN SELECT RAISE(ABORT, 'an exported revision is never deleted'); END;
                CREATE TRIGGER statement_document_no_change BEFORE UPDATE ON statement_document
                    BEGIN SELECT RAISE(ABORT, 'an exported statement is never changed'); END;
                CREATE TRIGGER statement_document_no_delete BEFORE DELETE ON statement_document
                    WHEN (SELECT completed_at FROM statement_revision r WHERE r.month = OLD.month AND r.scope = OLD.scope AND r.revision = OLD.revision) IS NOT NULL
                    BEGIN SELECT RAISE(ABORT, 'an exported statement is never deleted'); END;
                """)
        }
    }
}

/// What both archives do alike outside their SQL: the changes as JSON text, and the rule that
/// revisions are numbered 1, 2, 3... with no gap.
enum StatementArchiveRows {
    static func changes(_ revision: StatementRevision) throws -> String {
        String(decoding: try HubJSON.encoder.encode(revision.changes), as: UTF8.self)
    }

    static func revision(month: String, scope: String, number: Int, exportedAt: Int64, exportedBy: String, changes: String) throws -> StatementRevision {
        StatementRevision(month: month, scope: scope, number: number, exportedAt: Instant(millisecondsSince1970: exportedAt), exportedBy: exportedBy,
                          changes: try JSONDecoder().decode([StatementChange].self, from: Data(changes.utf8)))
    }

    static func checkNext(_ revision: StatementRevision, latest: Int) throws {
        guard revision.number == latest + 1 else { throw notNext(revision, latest: latest) }
    }

    static func notNext(_ revision: StatementRevision, latest: Int) -> HubError {
        HubError.conflict(field: "revision", code: "revision_exists", "revision \(revision.number) of \(revision.month) is not the next one (the latest is \(latest))")
    }
}

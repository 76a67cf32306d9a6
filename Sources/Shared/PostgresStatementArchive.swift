import Foundation
import HubCore
import PostgresNIO

/// The statement archive on the server database: the same tables as `SQLiteStatementArchive`
/// (a row per revision, a row per household and revision with the statement's JSON bytes as
/// sent), and the same triggers keeping what was sent from ever changing.
public struct PostgresStatementArchive: StatementArchive {
    public let database: HubPostgres

    public init(database: HubPostgres) { self.database = database }

    public func latestRevision(month: String, scope: String) async throws -> StatementRevision? {
        let logger = database.logger
        return try await database.read { connection in
            let rows = try await connection.query("""
                SELECT revision, exported_at, exported_by, changes FROM statement_revision WHERE month = \(month) AND scope = \(scope) AND completed_at IS NOT NULL
                ORDER BY revision DESC LIMIT 1
                """, logger: logger)
            for try await (number, exportedAt, exportedBy, changes) in rows.decode((Int, Int64, String, String).self) {
                return try StatementArchiveRows.revision(month: month, scope: scope, number: number, exportedAt: exportedAt, exportedBy: exportedBy, changes: changes)
            }
            return nil
        }
    }

    public func statement(month: String, scope: String, revision: Int, subject: String) async throws -> Data? {
        let logger = database.logger
        return try await database.read { connection in
            try await connection.scalar("""
                SELECT json FROM statement_document WHERE month = \(month) AND scope = \(scope) AND revision = \(revision) AND subject = \(subject)
                """, as: Data.self, logger: logger)
        }
    }

    public func open(_ revision: StatementRevision) async throws {
        let changes = try StatementArchiveRows.changes(revision)
        let logger = database.logger
        do {
            // Serializable: two exports opening the same month at once cannot both take the next number.
            try await database.transaction(.serializable) { connection in
                // An export that stopped half-way (a crash, a full disk) left an unfinished revision: it was never sent.
                try await connection.query("""
                    DELETE FROM statement_document WHERE (month, scope, revision) IN
                        (SELECT month, scope, revision FROM statement_revision WHERE month = \(revision.month) AND scope = \(revision.scope) AND completed_at IS NULL)
                    """, logger: logger)
                try await connection.query("DELETE FROM statement_revision WHERE month = \(revision.month) AND scope = \(revision.scope) AND completed_at IS NULL",
                                           logger: logger)
                let latest = try await connection.scalar("""
                    SELECT COALESCE(MAX(revision), 0) FROM statement_revision WHERE month = \(revision.month) AND scope = \(revision.scope)
                    """, as: Int.self, logger: logger) ?? 0
                try StatementArchiveRows.checkNext(revision, latest: latest)
                try await connection.query("""
                    INSERT INTO statement_revision (month, scope, revision, exported_at, exported_by, changes)
                    VALUES (\(revision.month), \(revision.scope), \(revision.number), \(revision.exportedAt.millisecondsSince1970), \(revision.exportedBy), \(changes))
                    """, logger: logger)
            }
        } catch where HubPostgres.sqlState(error) == "23505" {
            throw StatementArchiveRows.notNext(revision, latest: revision.number)
        }
    }

    public func add(month: String, scope: String, revision: Int, statements: [(subject: String, json: Data)]) async throws {
        let logger = database.logger
        let subjects = statements.map(\.subject)
        let documents = statements.map { ByteBuffer(bytes: $0.json) }
        // One statement for the whole chunk: the arrays go as two parameters.
        try await database.transaction { connection in
            _ = try await connection.query("""
                INSERT INTO statement_document (month, scope, revision, subject, json)
                SELECT \(month), \(scope), \(revision), subject, json FROM unnest(\(subjects)::text[], \(documents)::bytea[]) AS chunk(subject, json)
                """, logger: logger)
        }
    }

    public func complete(month: String, scope: String, revision: Int) async throws {
        let logger = database.logger
        let now = Instant.now().millisecondsSince1970
        try await database.transaction { connection in
            _ = try await connection.query("""
                UPDATE statement_revision SET completed_at = \(now) WHERE month = \(month) AND scope = \(scope) AND revision = \(revision) AND completed_at IS NULL
                """, logger: logger)
        }
    }

    /// The archive's tables on the server, as SQLite's `statements-1-archive`; the triggers are
    /// PL/pgSQL functions raising the same messages.
    public static let postgres: [PostgresMigration] = [
        PostgresMigration("statements-1-archive", """
            CREATE TABLE statement_revision (
                month text NOT NULL CHECK (month ~ '^[0-9]{4}-[0-9]{2}$'),
                scope text NOT NULL,
                revision bigint NOT NULL CHECK (revision >= 1),
                exported_at bigint NOT NULL,
                exported_by text NOT NULL,
                changes text NOT NULL,
                -- Set once every household is in: an unfinished revision was never sent.
                completed_at bigint,
                PRIMARY KEY (month, scope, revision)
            );
            CREATE TABLE statement_document (
                month text NOT NULL,
                scope text NOT NULL,
                revision bigint NOT NULL,
                subject text NOT NULL,
                json bytea NOT NULL,
                PRIMARY KEY (month, scope, revision, subject),
                FOREIGN KEY (month, scope, revision) REFERENCES statement_revision(month, scope, revision)
            );
            CREATE FUNCTION statement_revision_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF OLD.completed_at IS NOT NULL THEN
                    IF TG_OP = 'DELETE' THEN
                        RAISE EXCEPTION 'an exported revision is never deleted';
                    END IF;
                    RAISE EXCEPTION 'an exported revision is never changed';
                END IF;
                RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
            END;
            $$;
            CREATE TRIGGER statement_revision_no_change BEFORE UPDATE ON statement_revision
                FOR EACH ROW EXECUTE FUNCTION statement_revision_frozen();
            CREATE TRIGGER statement_revision_no_delete BEFORE DELETE ON statement_revision
                FOR EACH ROW EXECUTE FUNCTION statement_revision_frozen();
            CREATE FUNCTION statement_document_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'UPDATE' THEN
                    RAISE EXCEPTION 'an exported statement is never changed';
                END IF;
                IF (SELECT completed_at FROM statement_revision r
                    WHERE r.month = OLD.month AND r.scope = OLD.scope AND r.revision = OLD.revision) IS NOT NULL THEN
                    RAISE EXCEPTION 'an exported statement is never deleted';
                END IF;
                RETURN OLD;
            END;
            $$;
            CREATE TRIGGER statement_document_no_change BEFORE UPDATE ON statement_document
                FOR EACH ROW EXECUTE FUNCTION statement_document_frozen();
            CREATE TRIGGER statement_document_no_delete BEFORE DELETE ON statement_document
                FOR EACH ROW EXECUTE FUNCTION statement_document_frozen();
            """),
    ]
}

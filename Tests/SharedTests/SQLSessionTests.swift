import Foundation
import GRDB
import HubCore
import HubTestSupport
import Logging
import Testing
@testable import Shared

/// What the savings upkeep's few statements rest on: `?` placeholders turned into PostgreSQL's,
/// rows inserted and deleted by batches, statements counted, the same on both engines.
@Suite struct SQLSessionTests {
    @Test func placeholdersAreNumberedOutsideQuotesOnly() {
        #expect(PostgresBlockingSession.placeholders("SELECT ?, ?, '?', \"a?\" FROM t WHERE x = ? AND y = ?12")
                == "SELECT $1, $2, '?', \"a?\" FROM t WHERE x = $3 AND y = $12")
        #expect(PostgresBlockingSession.placeholders("SELECT 'é?' || ? -- ») ?") == "SELECT 'é?' || $1 -- ») $2")
        #expect(PostgresBlockingSession.placeholders("") == "")
    }

    /// Runs `body` in one transaction on a new database of `backend` holding table `t`.
    static func withSession(_ backend: Backend, _ body: @escaping @Sendable (any SQLSession) throws -> Void) async throws {
        let table = "CREATE TABLE t (k TEXT NOT NULL, n BIGINT NOT NULL, v BIGINT NOT NULL, PRIMARY KEY (k, n))"
        switch backend {
        case .sqlite:
            let database = try TestSupport.database()
            try await database.write { db in
                try db.execute(sql: table)
                try body(SQLiteSession(db))
            }
        case .postgres:
            let location = try await PostgresTestServer.database("sqlsession", migrations: [PostgresMigration("t", table)])
            try await BlockingWork.run {
                let session = try PostgresBlockingSession(location, logger: Logger(label: "test.sqlsession", factory: { _ in SwiftLogNoOpLogHandler() }))
                defer { session.close() }
                try session.transaction { try body($0) }
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func batchesInsertAndDeleteByKeyAndTheirStatementsAreCounted(_ backend: Backend) async throws {
        try await Self.withSession(backend) { base in
            let counter = SQLStatementCounter()
            let db = base.counted(by: counter)
            var inserts = SQLInsertBatch("INSERT INTO t (k, n, v)", columns: 3, tail: "ON CONFLICT (k, n) DO UPDATE SET v = excluded.v", maxRows: 4)
            for n in 0..<10 { try inserts.add(db, n % 2 == 0 ? "a" : "b", Int64(n), Int64(n * 10)) }
            try inserts.flush(db)
            // Ten rows, four a statement: three statements.
            #expect(counter.statements == 3)
            counter.endStep()
            var removals = SQLInsertBatch.deleting(from: "t", keys: ["k", "n"], maxRows: 2)
            for (k, n) in [("a", 0), ("b", 3), ("a", 5), ("b", 9)] { try removals.add(db, k, Int64(n)) }
            try removals.flush(db)
            counter.endStep()
            let left = try db.rows("SELECT k, n, v FROM t ORDER BY n").map { try "\($0[0].string)\($0[1].int64)=\($0[2].int64)" }
            // ("a", 5) is no row: nothing deleted for it.
            #expect(left == ["b1=10", "a2=20", "a4=40", "b5=50", "a6=60", "b7=70", "a8=80"])
            #expect(counter.perStep == [3, 2])
            let list = try db.rows("SELECT COUNT(*) FROM t WHERE k IN (\(db.placeholderList(2))) AND (k, n) IN (VALUES \(db.placeholderRows(2, columns: 2)))",
                                   ["a", "b", "a", Int64(2), "b", Int64(7)])
            #expect(try list.first?.first?.int64 == 2)
        }
    }
}

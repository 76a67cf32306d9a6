import Foundation
import HubCore
import HubTestSupport
import Shared
import Synchronization
import Testing

/// The statement archive (issue 10) through its store protocol, against both databases: revisions
/// numbered without gaps, statements kept byte for byte, an unfinished revision discarded, and
/// what was sent never changed or deleted, refused by the database itself (triggers).
@Suite struct StatementArchiveTests {
    static let exportedAt = Instant.parseRFC3339("2026-11-02T08:00:00Z")!

    static func withArchive(_ backend: Backend, _ body: @escaping @Sendable (BackendDatabase, any StatementArchive) async throws -> Void) async throws {
        try await BackendDatabase.with(backend, sqlite: [SQLiteStatementArchive.register], postgres: PostgresStatementArchive.postgres) { database in
            let archive: any StatementArchive = if let sqlite = database.sqlite {
                SQLiteStatementArchive(database: sqlite)
            } else {
                PostgresStatementArchive(database: database.postgres!)
            }
            try await body(database, archive)
        }
    }

    static func revision(_ number: Int, scope: String = "*", changes: [StatementChange] = []) -> StatementRevision {
        StatementRevision(month: "2026-10", scope: scope, number: number, exportedAt: exportedAt.adding(seconds: Int64(number) * 60), exportedBy: "marie", changes: changes)
    }

    static let change = StatementChange(dwelling: "OUT-A-02", sentSavingsCents: Cents(1234), nowSavingsCents: nil, sentConsumptionWh: 98_765, nowConsumptionWh: 99_001)

    /// Bytes as a statement holds them, including ones that are not text.
    static func json(_ subject: String) -> Data { Data("{\"subject\":\"\(subject)\",\"é\":\"\u{1F600}\"}".utf8) + Data([0, 255, 10]) }

    /// The scenario both tests run: what it reads back is compared between the databases.
    static func scenario(_ archive: any StatementArchive) async throws -> [String] {
        var seen: [String] = []
        #expect(try await archive.latestRevision(month: "2026-10", scope: "*") == nil)
        try await archive.open(revision(1))
        try await archive.add(month: "2026-10", scope: "*", revision: 1, statements: [("OUT-A-01", json("a1")), ("OUT-A-02", json("a2"))])
        try await archive.add(month: "2026-10", scope: "*", revision: 1, statements: [("building/OUT-A", json("b"))])
        #expect(try await archive.latestRevision(month: "2026-10", scope: "*") == nil, "not sent until complete")
        try await archive.complete(month: "2026-10", scope: "*", revision: 1)
        let first = try #require(try await archive.latestRevision(month: "2026-10", scope: "*"))
        #expect(first == revision(1))
        seen.append("\(first)")
        #expect(try await archive.statement(month: "2026-10", scope: "*", revision: 1, subject: "OUT-A-02") == json("a2"))
        #expect(try await archive.statement(month: "2026-10", scope: "*", revision: 1, subject: "OUT-A-03") == nil)
        #expect(try await archive.statement(month: "2026-10", scope: "Outreau", revision: 1, subject: "OUT-A-02") == nil)

        // An export that stopped half-way: its revision 2 is discarded when the next one opens.
        try await archive.open(revision(2))
        try await archive.add(month: "2026-10", scope: "*", revision: 2, statements: [("OUT-A-01", json("lost"))])
        try await archive.open(revision(2, changes: [change]))
        #expect(try await archive.statement(month: "2026-10", scope: "*", revision: 2, subject: "OUT-A-01") == nil)
        try await archive.add(month: "2026-10", scope: "*", revision: 2, statements: [("OUT-A-02", json("a2-r2"))])
        try await archive.complete(month: "2026-10", scope: "*", revision: 2)
        let second = try #require(try await archive.latestRevision(month: "2026-10", scope: "*"))
        #expect(second == revision(2, changes: [change]))
        seen.append("\(second)")
        #expect(try await archive.statement(month: "2026-10", scope: "*", revision: 1, subject: "OUT-A-02") == json("a2"), "revision 1 still holds what was sent")

        // Numbers have no gaps and are never taken twice.
        for number in [1, 2, 4] {
            do {
                try await archive.open(revision(number))
                Issue.record("revision \(number) opened")
            } catch let error as HubError {
                #expect(error.kind == .conflict && error.field == "revision" && error.code == "revision_exists")
                seen.append(error.message)
            }
        }
        // Another scope counts on its own.
        try await archive.open(revision(1, scope: "Outreau"))
        #expect(try await archive.latestRevision(month: "2026-10", scope: "Outreau") == nil)
        return seen
    }

    @Test(arguments: Backend.allCases) func revisionsAreNumberedKeptAndCompleted(_ backend: Backend) async throws {
        try await Self.withArchive(backend) { _, archive in
            _ = try await Self.scenario(archive)
        }
    }

    @Test func bothDatabasesGiveTheSameAnswers() async throws {
        let results = Mutex<[Backend: [String]]>([:])
        for backend in Backend.allCases {
            try await Self.withArchive(backend) { _, archive in
                let seen = try await Self.scenario(archive)
                results.withLock { $0[backend] = seen }
            }
        }
        let all = results.withLock { $0 }
        #expect(all[.sqlite] == all[.postgres])
        #expect(all[.sqlite]?.count == 5)
    }

    /// What was sent is never changed or deleted, whoever asks: the database refuses it.
    @Test(arguments: Backend.allCases) func whatWasSentIsNeverChangedOrDeleted(_ backend: Backend) async throws {
        try await Self.withArchive(backend) { database, archive in
            try await archive.open(Self.revision(1))
            try await archive.add(month: "2026-10", scope: "*", revision: 1, statements: [("OUT-A-01", Self.json("a1"))])
            try await archive.complete(month: "2026-10", scope: "*", revision: 1)
            let refused: [(String, String)] = [
                ("UPDATE statement_revision SET exported_by = 'someone' WHERE revision = 1", "an exported revision is never changed"),
                ("DELETE FROM statement_revision WHERE revision = 1", "an exported revision is never deleted"),
                ("UPDATE statement_document SET subject = 'OUT-A-09'", "an exported statement is never changed"),
                ("DELETE FROM statement_document", "an exported statement is never deleted"),
            ]
            for (sql, message) in refused {
                do {
                    try await database.execute(sql)
                    Issue.record("\(backend): \(sql) was allowed")
                } catch {
                    #expect("\(error)".contains(message), "\(backend): \(error)")
                }
            }
            #expect(try await archive.statement(month: "2026-10", scope: "*", revision: 1, subject: "OUT-A-01") == Self.json("a1"))
            // An unfinished revision's statements may still go (the discard on the next open).
            try await archive.open(Self.revision(2))
            try await archive.add(month: "2026-10", scope: "*", revision: 2, statements: [("OUT-A-01", Self.json("r2"))])
            try await database.execute("DELETE FROM statement_document WHERE revision = 2")
            #expect(try await database.count("statement_document") == 1)
        }
    }

    /// Two exports opening the same month at once: one takes the number, the other is told.
    @Test(arguments: Backend.allCases) func twoExportsCannotTakeTheSameNumber(_ backend: Backend) async throws {
        try await Self.withArchive(backend) { database, archive in
            let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        do {
                            try await archive.open(Self.revision(1))
                            return true
                        } catch let error as HubError where error.code == "revision_exists" {
                            return false
                        }
                    }
                }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            // An unfinished revision is discarded by the next open, so several may open it in turn;
            // what matters is that each gets the store's answer (no raw database error) and there
            // is only ever one revision 1.
            #expect(outcomes.contains(true))
            #expect(try await database.count("statement_revision") == 1)
        }
    }
}

import Foundation
import GRDB
import HubCore
import HubTestSupport
import Logging
import PostgresNIO
import Shared
import Testing

/// The two databases a store runs on: a test body given one runs the same way against either.
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres

    var testDescription: String { rawValue }
}

/// A new, empty database of either kind with the given tables, and what tests read and write
/// directly in it (with the same SQL for both: text results only, `CAST(... AS TEXT)`).
struct BackendDatabase: Sendable {
    let backend: Backend
    let sqlite: HubDatabase?
    let postgres: HubPostgres?

    /// Every row of a one-column text query.
    func strings(_ sql: String) async throws -> [String] {
        if let sqlite { return try await sqlite.read { db in try String.fetchAll(db, sql: sql) } }
        let postgres = postgres!
        return try await postgres.read { connection in
            try await connection.column(PostgresQuery(unsafeSQL: sql), as: String.self, logger: postgres.logger)
        }
    }

    func count(_ table: String) async throws -> Int {
        Int(try await strings("SELECT CAST(COUNT(*) AS TEXT) FROM \(table)").first ?? "") ?? -1
    }

    /// Runs statements in one transaction; a refusal comes back with the database's own message.
    func execute(_ sql: String) async throws {
        if let sqlite {
            try await sqlite.write { db in try db.execute(sql: sql) }
            return
        }
        let postgres = postgres!
        do {
            try await postgres.transaction { connection in
                for statement in PostgresMigration.statements(sql) {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: postgres.logger)
                }
            }
        } catch {
            throw RefusedByDatabase(message: HubPostgres.serverMessage(error) ?? "\(error)")
        }
    }

    /// Runs `body` on a fresh database of this kind, with these tables.
    static func with(_ backend: Backend, sqlite schemas: [HubDatabase.Schema] = [], postgres migrations: [PostgresMigration] = [],
                     _ body: @escaping @Sendable (BackendDatabase) async throws -> Void) async throws {
        switch backend {
        case .sqlite:
            try await body(BackendDatabase(backend: backend, sqlite: try TestSupport.database(extraSchemas: schemas), postgres: nil))
        case .postgres:
            let location = try await PostgresTestServer.database("store", migrations: SharedSchema.postgres + migrations)
            try await HubPostgres(location, maximumConnections: 4, logger: quiet).withRunning { database in
                try await body(BackendDatabase(backend: backend, sqlite: nil, postgres: database))
            }
        }
    }

    static let quiet = Logger(label: "test.postgres", factory: { _ in SwiftLogNoOpLogHandler() })
}

/// A statement the database refused, with its message (PostgreSQL's errors hide it from `description`).
struct RefusedByDatabase: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

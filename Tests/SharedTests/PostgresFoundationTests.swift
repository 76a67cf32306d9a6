import Foundation
import HubCore
import HubTestSupport
import PostgresNIO
import Shared
import Testing

/// The server database's groundwork against a real PostgreSQL 15 server: the URL setting, the
/// migrations (once each, also when several processes start together), and transactions that
/// give back their body's error and run a serialization failure again.
@Suite struct PostgresFoundationTests {
    @Test func theURLIsReadOrRefusedNamingTheSetting() throws {
        let location = try PostgresLocation(url: "postgres://hub:s%40cret@db.example:6543/hub_prod?sslmode=require")
        #expect(location == PostgresLocation(host: "db.example", port: 6543, user: "hub", password: "s@cret", database: "hub_prod", tls: .require))
        #expect(location.description == "postgres://hub@db.example:6543/hub_prod")
        #expect(try PostgresLocation(url: "postgresql://hub@localhost/hub").port == 5432)
        for bad in ["mysql://hub@host/db", "postgres://host/db", "postgres://hub@/db", "postgres://hub@host", "postgres://hub@host/db?sslmode=always", "not a url"] {
            #expect {
                try PostgresLocation(url: bad)
            } throws: { error in
                (error as? HubError)?.kind == .configuration && "\(error)".contains("database.url")
            }
        }
        // The password never reaches a message.
        do {
            _ = try PostgresLocation(url: "mysql://hub:topsecret@host/db")
        } catch {
            #expect(!"\(error)".contains("topsecret"))
        }
    }

    static let migrations = [
        PostgresMigration("test-1-counter", """
            CREATE TABLE counter (name text PRIMARY KEY, value bigint NOT NULL);
            INSERT INTO counter VALUES ('a', 0);
            """),
        PostgresMigration("test-2-log", "CREATE TABLE log (id bigserial PRIMARY KEY, note text NOT NULL)"),
    ]

    @Test func migrationsApplyOnceEvenWhenProcessesStartTogether() async throws {
        let location = try await PostgresTestServer.database("migrations")
        // Four pools stand for four hub processes starting at the same moment.
        let applied = try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await HubPostgres(location, maximumConnections: 2).withRunning { try await $0.migrate(Self.migrations) }
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(applied.sorted() == ["test-1-counter", "test-2-log"])
        let rows = try await HubPostgres(location).withRunning { database in
            try await database.read { connection in
                try await connection.column("SELECT name FROM hub_migration ORDER BY name", as: String.self, logger: database.logger)
            }
        }
        #expect(rows == ["test-1-counter", "test-2-log"])
    }

    @Test func aTransactionGivesBackItsBodysErrorAndKeepsNothing() async throws {
        let location = try await PostgresTestServer.database("transactions", migrations: Self.migrations)
        try await HubPostgres(location).withRunning { database in
            await #expect(throws: HubError.self) {
                try await database.transaction { connection in
                    try await connection.query("INSERT INTO log (note) VALUES ('kept?')", logger: database.logger)
                    throw HubError.badRequest(field: "note", "refused")
                }
            }
            let count = try await database.read { try await $0.scalar("SELECT count(*) FROM log", as: Int64.self, logger: database.logger) }
            #expect(count == 0)
        }
    }

    @Test func serializableTransactionsThatCollideAreRunAgain() async throws {
        let location = try await PostgresTestServer.database("serializable", migrations: Self.migrations)
        try await HubPostgres(location, maximumConnections: 8).withRunning { database in
            // Read-then-write increments: under SERIALIZABLE, overlapping ones fail with 40001 and
            // are run again, so none is lost.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<40 {
                    group.addTask {
                        try await database.transaction(.serializable, attempts: 100) { connection in
                            let value = try await connection.scalar("SELECT value FROM counter WHERE name = 'a'", as: Int64.self, logger: database.logger) ?? 0
                            try await connection.query("UPDATE counter SET value = \(value + 1) WHERE name = 'a'", logger: database.logger)
                        }
                    }
                }
                try await group.waitForAll()
            }
            let value = try await database.read { try await $0.scalar("SELECT value FROM counter WHERE name = 'a'", as: Int64.self, logger: database.logger) }
            #expect(value == 40)
        }
    }

    @Test func anUnreachableServerIsUnavailableNotAPanic() async throws {
        // A port nothing listens on.
        let server = try await PostgresTestServer.location()
        var location = server
        location.port = 1
        // The answer alone is timed: stopping the pool afterwards waits for its connection attempt.
        let (writable, took) = try await HubPostgres(location, maximumConnections: 1).withRunning { database in
            let started = ContinuousClock.now
            let writable = await database.isWritable(timeout: .seconds(1))
            return (writable, ContinuousClock.now - started)
        }
        #expect(writable == false)
        // An answer, not a hang: about the timeout when the machine is free (1.9 s here), but up to
        // 16 s in a CI run whose parallel tests keep Swift's pool busy; the bound is for a hang.
        print("isWritable of an unreachable server answered after \(took)")
        #expect(took < .seconds(30), "isWritable answered after \(took)")
        // The test server itself is writable (a first connection on a loaded machine may take seconds).
        #expect(try await HubPostgres(server).withRunning { await $0.isWritable(timeout: .seconds(15)) })
    }
}

@Suite struct PostgresMigrationSplitTests {
    @Test func statementsSplitOutsideQuotesDollarQuotesAndComments() {
        let sql = """
            CREATE TABLE a (note text DEFAULT 'x;y', "odd;name" int); -- a comment; with a semicolon
            CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              RAISE EXCEPTION 'no; never';
            END;
            $$;
            CREATE FUNCTION g() RETURNS int LANGUAGE sql AS $body$ SELECT 1; $body$;
            SELECT $1::int;
            """
        let statements = PostgresMigration.statements(sql)
        #expect(statements.count == 4)
        #expect(statements[0] == #"CREATE TABLE a (note text DEFAULT 'x;y', "odd;name" int)"#)
        #expect(statements[1].hasSuffix("END;\n$$"))
        #expect(statements[2] == "CREATE FUNCTION g() RETURNS int LANGUAGE sql AS $body$ SELECT 1; $body$")
        #expect(statements[3] == "SELECT $1::int")
    }
}

@Suite struct SharedSchemaPostgresTests {
    @Test func theSharedTablesKeepTheirRulesOnTheServer() async throws {
        let location = try await PostgresTestServer.database("shared", migrations: SharedSchema.postgres)
        try await HubPostgres(location).withRunning { database in
            try await database.transaction { connection in
                try await connection.query("INSERT INTO estate VALUES ('Outreau')", logger: database.logger)
                try await connection.query("INSERT INTO building VALUES ('OUT-A', 'Outreau')", logger: database.logger)
                try await connection.query("INSERT INTO dwelling VALUES ('OUT-A-01', 'OUT-A')", logger: database.logger)
                try await connection.query("INSERT INTO hub_user (name, role, dwelling_id, password_hash, created_at) VALUES ('ana', 'resident', 'OUT-A-01', 'x', 0)",
                                           logger: database.logger)
            }
            // A resident without a dwelling, a building of no estate: refused by the server itself.
            for statement: PostgresQuery in ["INSERT INTO hub_user (name, role, password_hash, created_at) VALUES ('bob', 'resident', 'x', 0)",
                                              "INSERT INTO building VALUES ('X', 'Nowhere')"] {
                await #expect(throws: PSQLError.self) {
                    try await database.transaction { try await $0.query(statement, logger: database.logger) }
                }
            }
        }
    }
}

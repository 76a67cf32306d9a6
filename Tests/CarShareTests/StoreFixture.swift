@testable import CarShare
import CarShareCore
import Foundation
import GRDB
import HubCore
import HubTestSupport
import Logging
import PostgresNIO
import Shared
import Testing

/// The two databases a car-share store runs on: each scenario below runs through both.
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case postgres

    var testDescription: String { rawValue }
}

/// A car-share store on one of the databases, with the registry and users of `Fixture`, and the
/// facts the tests read from the stored rows.
protocol StoreFixture: Sendable {
    var carShare: any CarShareStore { get }
    /// How many rows each car-share table holds: "changes nothing" is this staying equal.
    func counts() async throws -> [String: Int]
    /// Every posted entry, read from the rows.
    func allEntries() async throws -> [PostedEntry]
    /// Each closed month and when it was closed.
    func closings() async throws -> [(month: String, closedAt: Instant)]
    /// Runs SQL straight on the database (what the store never does); throws the database's error.
    func execute(_ sql: String) async throws
}

extension StoreFixture {
    func seed(memberships: Bool = true) async throws -> Fixture.Seed {
        try await Fixture.seed(carShare, memberships: memberships)
    }

    func verifyNow() async throws -> VerifyReport {
        try await carShare.verify(by: Fixture.staff)
    }
}

/// Every car-share table, for `counts()`.
let carShareTables = ["carshare_member", "carshare_membership", "carshare_driver", "carshare_vehicle", "carshare_booking", "carshare_booking_event",
                      "carshare_trip", "carshare_trip_rider", "carshare_charging", "carshare_entry", "carshare_entry_line", "carshare_closed_month", "carshare_request"]

extension Fixture: StoreFixture {
    var carShare: any CarShareStore { store }

    func allEntries() async throws -> [PostedEntry] {
        try await database.pool.read { db in try store.allEntries(db) }
    }

    func closings() async throws -> [(month: String, closedAt: Instant)] {
        try await database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT month, closed_at FROM carshare_closed_month ORDER BY month").map {
                (month: $0["month"] as String, closedAt: Instant(millisecondsSince1970: $0["closed_at"]))
            }
        }
    }

    func execute(_ sql: String) async throws {
        try await database.pool.write { db in try db.execute(sql: sql) }
    }
}

/// The car share on a new PostgreSQL database (the test server), seeded like `Fixture`: the
/// registry (two estates), a user of every role. The pool runs while the fixture is used.
struct PostgresFixture: StoreFixture {
    let database: HubPostgres
    let store: PostgresCarShareStore

    var carShare: any CarShareStore { store }

    static let migrations = SharedSchema.postgres + CarShareSchema.postgres

    /// A new database with the car-share schema, the registry and the users.
    static func location() async throws -> PostgresLocation {
        let location = try await PostgresTestServer.database("carshare", migrations: migrations)
        try await HubPostgres(location, maximumConnections: 1, logger: quiet).withRunning { database in
            try await database.transaction { connection in
                for statement in [
                    "INSERT INTO estate (id) VALUES ('Outreau'), ('Le Portel')",
                    "INSERT INTO building (id, estate_id) VALUES ('OUT-A', 'Outreau'), ('POR-B', 'Le Portel')",
                    "INSERT INTO dwelling (id, building_id) VALUES ('OUT-A-01', 'OUT-A'), ('OUT-A-02', 'OUT-A'), ('POR-B-01', 'POR-B')",
                ] {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: database.logger)
                }
                for identity in [Fixture.staff, Fixture.association, Fixture.otherAssociation, Fixture.resident, Fixture.otherResident, Fixture.driver, Fixture.otherDriver] {
                    try await connection.query("""
                        INSERT INTO hub_user (name, role, dwelling_id, estate_id, password_hash, created_at)
                        VALUES (\(identity.name), \(identity.role.rawValue), \(identity.dwelling), \(identity.estate), 'not-a-hash', 0)
                        """, logger: database.logger)
                }
            }
        }
        return location
    }

    static let quiet = Logger(label: "test.carshare.postgres", factory: { _ in SwiftLogNoOpLogHandler() })

    func counts() async throws -> [String: Int] {
        try await database.read { connection in
            var result: [String: Int] = [:]
            for table in carShareTables {
                result[table] = Int(try await connection.scalar(PostgresQuery(unsafeSQL: "SELECT COUNT(*) FROM \(table)"), as: Int64.self, logger: database.logger) ?? 0)
            }
            result["booking_versions"] = Int(try await connection.scalar("SELECT COALESCE(SUM(version), 0)::bigint FROM carshare_booking", as: Int64.self, logger: database.logger) ?? 0)
            result["driver_versions"] = Int(try await connection.scalar("SELECT COALESCE(SUM(version), 0)::bigint FROM carshare_driver", as: Int64.self, logger: database.logger) ?? 0)
            return result
        }
    }

    func allEntries() async throws -> [PostedEntry] {
        try await database.read { connection in try await store.allEntries(connection) }
    }

    func closings() async throws -> [(month: String, closedAt: Instant)] {
        let rows = try await database.read { connection in
            var rows: [(String, Int64)] = []
            for try await row in try await connection.query("SELECT month, closed_at FROM carshare_closed_month ORDER BY month", logger: database.logger)
                .decode((String, Int64).self) { rows.append(row) }
            return rows
        }
        return rows.map { (month: $0.0, closedAt: Instant(millisecondsSince1970: $0.1)) }
    }

    func execute(_ sql: String) async throws {
        _ = try await database.transaction { connection in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: database.logger) }
    }
}

/// Runs `body` with a fresh store on `backend` (for PostgreSQL, its pool running around the body).
func withStoreFixture<T: Sendable>(_ backend: Backend, carshare: CarShareSettings = CarShareSettings(),
                                   _ body: (any StoreFixture) async throws -> T) async throws -> T {
    switch backend {
    case .sqlite:
        return try await body(try await Fixture(carshare: carshare))
    case .postgres:
        let location = try await PostgresFixture.location()
        let anchors = LedgerAnchorFile(path: try TestSupport.temporaryDirectory("carshare-pg").appendingPathComponent("ledger.anchors").path, key: nil)
        return try await withPostgres(location) { database in
            try await body(PostgresFixture(database: database, store: PostgresCarShareStore(database: database, settings: carshare, anchors: anchors)))
        }
    }
}

/// Runs `body` with a pool on `location` running (the pool of one hub process).
func withPostgres<T: Sendable>(_ location: PostgresLocation, maximumConnections: Int = 10, _ body: (HubPostgres) async throws -> T) async throws -> T {
    let database = HubPostgres(location, maximumConnections: maximumConnections, logger: PostgresFixture.quiet)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await database.client.run() }
        defer { group.cancelAll() }
        return try await body(database)
    }
}

import CarShare
import CarShareCore
import EnergyCore
import EnergyHub
import Foundation
import GRDB
import HTTPTypes
import HubTestSupport
import Hummingbird
import HummingbirdTesting
import NIOCore
import Prometheus
import HubCore
import Shared
import Testing
@testable import HubApp

/// A real SQLite file with the whole hub schema, a small registry (two estates), users of every
/// role with tokens, and the real router.
struct Fixture: Sendable {
    static let now = Instant.parseRFC3339("2026-03-13T09:00:00Z")!
    static let zone = LocalTimeZone.paris

    let database: HubDatabase
    let store: SQLiteCarShareStore
    let settings: HubSettings
    var tokens: [String: String] = [:]

    static let staff = Identity(name: "staff", role: .staff)
    static let association = Identity(name: "asso-outreau", role: .association, estate: "Outreau")
    static let otherAssociation = Identity(name: "asso-portel", role: .association, estate: "Le Portel")
    static let resident = Identity(name: "resident-a01", role: .resident, dwelling: "OUT-A-01")
    static let otherResident = Identity(name: "resident-a02", role: .resident, dwelling: "OUT-A-02")
    static let driver = Identity(name: "driver-jean", role: .driver)
    static let otherDriver = Identity(name: "driver-paul", role: .driver)

    init(path: String? = nil, carshare: CarShareSettings = CarShareSettings()) async throws {
        var settings = HubSettings()
        settings.carshare = carshare
        settings.auth.bcryptCost = 4
        let file = try path ?? TestSupport.temporaryDirectory("carshare").appendingPathComponent("hub.sqlite").path
        settings.database.path = file
        settings.database.synchronous = .normal
        self.settings = settings
        database = try HubSchema.open(settings)
        store = SQLiteCarShareStore(database: database, settings: carshare)
        try await database.pool.write { db in
            if try !db.exists("SELECT 1 FROM estate WHERE id = 'Outreau'") {
                try db.execute(sql: """
                    INSERT INTO estate (id) VALUES ('Outreau'), ('Le Portel');
                    INSERT INTO building (id, estate_id) VALUES ('OUT-A', 'Outreau'), ('POR-B', 'Le Portel');
                    INSERT INTO dwelling (id, building_id) VALUES ('OUT-A-01', 'OUT-A'), ('OUT-A-02', 'OUT-A'), ('POR-B-01', 'POR-B');
                    """)
            }
        }
        let users = SQLiteUserStore(database: database, bcryptCost: 4)
        for identity in [Fixture.staff, Fixture.association, Fixture.otherAssociation, Fixture.resident, Fixture.otherResident, Fixture.driver, Fixture.otherDriver] {
            let exists = try await database.pool.read { db in try db.exists("SELECT 1 FROM hub_user WHERE name = ?", identity.name) }
            if !exists {
                try await users.add(name: identity.name, role: identity.role, dwelling: identity.dwelling, estate: identity.estate, password: "password-123", by: .testStaff, at: Fixture.now)
            }
            tokens[identity.name] = try await users.createToken(for: identity.name, label: "test", expiresAt: nil, by: .testStaff, at: Fixture.now)
        }
    }

    var dependencies: HubDependencies {
        HubDependencies(settings: settings, database: database, users: SQLiteUserStore(database: database, bcryptCost: 4),
                        readings: SQLiteReadingStore(database: database), metrics: PrometheusCollectorRegistry(), brokerConnected: nil,
                        now: { Fixture.now })
    }

    var app: some ApplicationProtocol {
        Application(router: buildRouter(dependencies), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    }

    /// A car, two drivers linked to the driver users, and members: Alice (OUT-A-01), Bob (OUT-A-02),
    /// Chloé (Le Portel), each with a 2026 membership.
    struct Seed {
        var vehicle: Int64
        var jean: Int64
        var paul: Int64
        var alice: Int64
        var bob: Int64
        var chloe: Int64
    }

    func seed(memberships: Bool = true) async throws -> Seed {
        try await Fixture.seed(store, memberships: memberships)
    }

    /// The seed on either store.
    static func seed(_ store: any CarShareStore, memberships: Bool = true) async throws -> Seed {
        let vehicle = try await store.addVehicle(NewVehicle(name: "Zoé", plate: "GA-123-BC", batteryCapacityWh: WattHours(52_000), initialOdometerKm: 12_000), by: Fixture.staff)
        let checked = LocalDate(year: 2026, month: 1, day: 5)!
        let jean = try await store.addDriver(NewDriver(name: "Jean", user: Fixture.driver.name, licenceCheckedOn: checked, trainedOn: checked), by: Fixture.staff)
        let paul = try await store.addDriver(NewDriver(name: "Paul", user: Fixture.otherDriver.name, licenceCheckedOn: checked, trainedOn: checked), by: Fixture.staff)
        let alice = try await store.addMember(NewMember(name: "Alice Martin", dwelling: "OUT-A-01"), by: Fixture.staff, at: Fixture.now)
        let bob = try await store.addMember(NewMember(name: "Bob Leroy", dwelling: "OUT-A-02"), by: Fixture.association, at: Fixture.now)
        let chloe = try await store.addMember(NewMember(name: "Chloé Petit", dwelling: "POR-B-01"), by: Fixture.staff, at: Fixture.now)
        if memberships {
            for member in [alice, bob, chloe] {
                _ = try await store.buyMembership(member: member.id, NewMembership(on: LocalDate(year: 2026, month: 3, day: 1)!), by: Fixture.staff, at: Fixture.now)
            }
        }
        return Seed(vehicle: vehicle.id, jean: jean.id, paul: paul.id, alice: alice.id, bob: bob.id, chloe: chloe.id)
    }

    /// 2026-03-12 at `hour`:`minute` Paris time.
    static func at(_ hour: Int, _ minute: Int = 0, day: Int = 12, month: Int = 3) -> Instant {
        zone.instants(of: LocalDateTime(date: LocalDate(year: 2026, month: month, day: day)!, hour: hour, minute: minute)).first!
    }

    /// How many rows each car-share table holds: "changes nothing" is this staying equal.
    func counts() throws -> [String: Int] {
        try database.pool.read { db in
            var result: [String: Int] = [:]
            for table in ["carshare_member", "carshare_membership", "carshare_driver", "carshare_vehicle", "carshare_booking", "carshare_booking_event",
                          "carshare_trip", "carshare_trip_rider", "carshare_charging", "carshare_entry", "carshare_entry_line", "carshare_closed_month", "carshare_request"] {
                result[table] = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)")!
            }
            result["booking_versions"] = try Int.fetchOne(db, sql: "SELECT COALESCE(SUM(version), 0) FROM carshare_booking")!
            result["driver_versions"] = try Int.fetchOne(db, sql: "SELECT COALESCE(SUM(version), 0) FROM carshare_driver")!
            return result
        }
    }

    func headers(_ identity: Identity) -> HTTPFields {
        [.authorization: "Bearer \(tokens[identity.name]!)", .contentType: "application/json"]
    }
}

extension TestClientProtocol {
    /// Sends JSON (a string) as `identity` and returns status and body.
    func send(_ method: HTTPRequest.Method, _ path: String, as identity: Identity, fixture: Fixture, json: String? = nil) async throws -> (HTTPResponse.Status, String) {
        try await execute(uri: path, method: method, headers: fixture.headers(identity), body: json.map { ByteBuffer(string: $0) }) { response in
            (response.status, String(buffer: response.body))
        }
    }
}

/// The JSON error body's detail.
func errorDetail(_ body: String) throws -> ErrorBody.Detail {
    try JSONDecoder().decode(ErrorBody.self, from: Data(body.utf8)).error
}

func decode<T: Decodable>(_ type: T.Type, _ body: String) throws -> T {
    try JSONDecoder().decode(T.self, from: Data(body.utf8))
}

func json<T: Encodable>(_ value: T) throws -> String {
    String(decoding: try HubJSON.encoder.encode(value), as: UTF8.self)
}

/// Expects a HubError with this code from `body`.
func expectHubError(_ code: String, field: String? = nil, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void) async {
    do {
        try await body()
        Issue.record("expected error \(code), got success", sourceLocation: sourceLocation)
    } catch let error as HubError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        if let field { #expect(error.field == field, "\(error)", sourceLocation: sourceLocation) }
    } catch {
        Issue.record("expected HubError \(code), got \(error)", sourceLocation: sourceLocation)
    }
}

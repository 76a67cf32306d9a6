import CarShare
import CarShareCore
import EnergyHub
import Foundation
import HTTPTypes
import HubCore
import HubTestSupport
import Hummingbird
import HummingbirdTesting
import NIOCore
import Prometheus
import Synchronization
import Shared
@testable import HubApp

/// Two estates, a login per role (and a second resident, association and driver to be "the
/// other one"), a car with two members' bookings, in a real SQLite file; the real router, tested
/// in-process. `now` is a clock the tests move.
final class PagesFixture: @unchecked Sendable {
    static let registry = """
        estate;building;dwelling;device;kind;format;since
        Outreau;OUT-A;OUT-A-01;m-01;meter;canonical;2026-01-01
        Outreau;OUT-A;OUT-A-02;m-02;meter;canonical;2026-01-01
        Outreau;OUT-A;;pv-a;pv;canonical;2026-01-01
        Le Portel;POR-A;POR-A-01;m-21;meter;canonical;2026-01-01
        Le Portel;POR-A;;pv-p;pv;canonical;2026-01-01
        """
    static let password = "password-123"
    /// Login names by what they stand for.
    static let logins: [(name: String, role: Role, dwelling: String?, estate: String?)] = [
        ("staff", .staff, nil, nil), ("resident", .resident, "OUT-A-01", nil), ("neighbour", .resident, "OUT-A-02", nil),
        ("asso", .association, nil, "Outreau"), ("asso-portel", .association, nil, "Le Portel"), ("driver", .driver, nil, nil), ("driver-2", .driver, nil, nil),
    ]

    let settings: HubSettings
    var database: HubDatabase
    let users: SQLiteUserStore
    /// The clock the tests move (shared with the application's `now`).
    final class Clock: Sendable {
        let value: Mutex<Instant>
        init(_ start: Instant) { value = Mutex(start) }
    }

    private let clock: Clock
    let aliceBooking: Int64
    let caroleBooking: Int64
    let alice: Int64

    var now: Instant { clock.value.withLock { $0 } }
    func advance(seconds: Int64) { clock.value.withLock { $0 = $0.adding(seconds: seconds) } }

    init(bcryptCost: UInt8 = 4) async throws {
        let directory = try TestSupport.temporaryDirectory("pages")
        var settings = HubSettings()
        settings.database.path = directory.appendingPathComponent("hub.sqlite").path
        settings.database.synchronous = .normal
        settings.auth.bcryptCost = Int(bcryptCost)
        self.settings = settings
        clock = Clock(Instant.parseRFC3339("2026-11-20T10:00:00Z")!)
        database = try HubSchema.open(settings)
        users = SQLiteUserStore(database: database, bcryptCost: bcryptCost)
        let configuration = try settings.configuration()
        _ = try await SQLiteRegistryStore(database: database, configuration: configuration.energy).importRegistry(csv: Data(Self.registry.utf8), by: .testStaff)
        let at = Instant.parseRFC3339("2026-11-01T08:00:00Z")!
        for login in Self.logins {
            try await users.add(name: login.name, role: login.role, dwelling: login.dwelling, estate: login.estate, password: Self.password, by: .testStaff, at: at)
        }
        let store = SQLiteCarShareStore(database: database, settings: settings.carshare)
        let vehicle = try await store.addVehicle(NewVehicle(name: "Zoé", plate: "GA-123-BC", initialOdometerKm: 12_000), by: .testStaff)
        let checked = LocalDate(year: 2026, month: 1, day: 5)!
        let jean = try await store.addDriver(NewDriver(name: "Jean", user: "driver", licenceCheckedOn: checked, trainedOn: checked), by: .testStaff)
        _ = try await store.addDriver(NewDriver(name: "Paul", user: "driver-2", licenceCheckedOn: checked, trainedOn: checked), by: .testStaff)
        alice = try await store.addMember(NewMember(name: "Alice Martin", phone: "06 01 02 03 04", dwelling: "OUT-A-01"), by: .testStaff, at: at).id
        let carole = try await store.addMember(NewMember(name: "Carole Petit", dwelling: "POR-A-01"), by: .testStaff, at: at).id
        for member in [alice, carole] {
            _ = try await store.buyMembership(member: member, NewMembership(start: LocalDate(year: 2026, month: 11, day: 1)!), by: .testStaff, at: at)
        }
        aliceBooking = try await store.createBooking(NewBooking(vehicle: vehicle.id, rider: alice, start: Instant.parseRFC3339("2026-11-19T09:00:00Z")!,
                                                                end: Instant.parseRFC3339("2026-11-19T10:00:00Z")!, purpose: "Médecin", driver: jean.id),
                                                     by: .testStaff, at: at).id
        caroleBooking = try await store.createBooking(NewBooking(vehicle: vehicle.id, rider: carole, start: Instant.parseRFC3339("2026-11-19T13:00:00Z")!,
                                                                 end: Instant.parseRFC3339("2026-11-19T14:00:00Z")!), by: .testStaff, at: at).id
    }

    /// The application over a database opened afresh: what a restarted process would serve.
    func application(reopen: Bool = false) throws -> some ApplicationProtocol {
        if reopen { database = try HubSchema.open(settings) }
        let clock = self.clock
        let dependencies = HubDependencies(settings: settings, database: database, users: SQLiteUserStore(database: database, bcryptCost: users.bcryptCost),
                                           readings: SQLiteReadingStore(database: database), metrics: PrometheusCollectorRegistry(), brokerConnected: nil,
                                           now: { clock.value.withLock { $0 } })
        return Application(router: buildRouter(dependencies), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    }
}

/// A browser's side of a conversation with the pages: its cookies, and what the last page said.
struct PageClient {
    let client: any TestClientProtocol
    var cookies: [String: String] = [:]

    init(_ client: any TestClientProtocol) { self.client = client }

    struct Answer {
        var status: HTTPResponse.Status
        var headers: HTTPFields
        var body: String
        var location: String? { headers[.location] }
        /// The CSRF token of the page's first form.
        var csrf: String? {
            guard let range = body.range(of: #"name="csrf" value="[^"]*""#, options: .regularExpression) else { return nil }
            return String(body[range].dropFirst(#"name="csrf" value=""#.count).dropLast())
        }
    }

    mutating func send(_ method: HTTPRequest.Method, _ path: String, form: [(String, String)]? = nil, headers extra: HTTPFields = [:]) async throws -> Answer {
        var headers = extra
        if !cookies.isEmpty { headers[.cookie] = cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ") }
        var body: ByteBuffer?
        if let form {
            headers[.contentType] = "application/x-www-form-urlencoded"
            let text = form.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&")
            body = ByteBuffer(string: text)
        }
        let answer = try await client.execute(uri: path, method: method, headers: headers, body: body) { response in
            Answer(status: response.status, headers: response.headers, body: String(buffer: response.body))
        }
        for cookie in answer.headers[values: .setCookie] {
            let pair = cookie.split(separator: ";")[0].split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2 else { continue }
            if pair[1].isEmpty { cookies[String(pair[0])] = nil } else { cookies[String(pair[0])] = String(pair[1]) }
        }
        return answer
    }

    static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
    }

    /// Logs in through the form, as a browser does.
    @discardableResult
    mutating func login(_ name: String, password: String = PagesFixture.password, remember: Bool = false, headers: HTTPFields = [:]) async throws -> Answer {
        let page = try await send(.get, "/connexion", headers: headers)
        var form = [("csrf", page.csrf ?? ""), ("name", name), ("password", password)]
        if remember { form.append(("remember", "1")) }
        return try await send(.post, "/connexion", form: form, headers: headers)
    }

    /// The CSRF token of this session, read from a page's form.
    mutating func csrf() async throws -> String {
        try await send(.get, "/mot-de-passe").csrf ?? ""
    }
}

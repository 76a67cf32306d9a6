import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import HubTestSupport
import HubCore
import Shared
import Testing
@testable import EnergyCore
@testable import EnergyHub

/// The energy routes: figures as JSON, bad input, and who may see what, for every route and role.
@Suite struct SavingsRoutesTests {
    static let registry = """
        estate;building;dwelling;device;kind;format;since;tariff;share
        E;B;;pv-1;pv;canonical;2026-06-01;;
        E;B;D1;m-1;meter;canonical;2026-06-01;;
        E;B;D2;m-2;meter;canonical;2026-06-01;;
        E;B;D3;m-3;meter;canonical;2026-06-01;;
        F;C;D9;m-9;meter;canonical;2026-06-01;;
        """
    static let now = SavingsFixture.at("2026-06-11T00:00:00Z")

    struct Setup {
        let hub: SavingsFixture
        let router: Router<HubRequestContext>
        var tokens: [String: String] = [:]
    }

    func setUp(settings: EnergySettings = EnergySettings()) async throws -> Setup {
        let hub = try SavingsFixture(registry: SavingsRoutesTests.registry, settings: settings)
        // 10:00-10:30 local: PV 600; D1 400, D2 200, D3 300 (pro rata of 900: 266, 134, 200).
        try hub.publish("pv-1", [("2026-06-10T08:00:00Z", 0), ("2026-06-10T08:30:00Z", 600)])
        try hub.publish("m-1", [("2026-06-10T08:00:00Z", 0), ("2026-06-10T08:30:00Z", 400)])
        try hub.publish("m-2", [("2026-06-10T08:00:00Z", 0), ("2026-06-10T08:30:00Z", 200)])
        try hub.publish("m-3", [("2026-06-10T08:00:00Z", 0), ("2026-06-10T08:30:00Z", 300)])
        try hub.update(now: "2026-06-11T00:00:00Z")
        let users = SQLiteUserStore(database: hub.database, bcryptCost: 4)
        var tokens: [String: String] = [:]
        for (name, role, dwelling, estate) in [("staff", Role.staff, nil, nil), ("assoc-e", .association, nil, "E"), ("assoc-f", .association, nil, "F"),
                                                ("resident-d1", .resident, "D1", nil), ("resident-d2", .resident, "D2", nil), ("driver", .driver, nil, nil)] as [(String, Role, String?, String?)] {
            try await users.add(name: name, role: role, dwelling: dwelling, estate: estate, password: "password-\(name)", by: .testStaff, at: SavingsRoutesTests.now)
            tokens[name] = try await users.createToken(for: name, label: "test", expiresAt: nil, by: .testStaff, at: SavingsRoutesTests.now)
        }
        let router = Router(context: HubRequestContext.self)
        router.middlewares.add(ServingMiddleware<HubRequestContext>(inFlight: InFlightRequests()))
        router.middlewares.add(JSONErrorMiddleware<HubRequestContext>())
        let api = router.group("api/v1").add(middleware: BearerAuthMiddleware(users: users, now: { SavingsRoutesTests.now }))
        EnergyRoutes(database: hub.database, settings: settings, now: { SavingsRoutesTests.now }).add(to: api)
        return Setup(hub: hub, router: router, tokens: tokens)
    }

    func get(_ client: some TestClientProtocol, _ path: String, as user: String?, _ tokens: [String: String]) async throws -> (HTTPResponse.Status, [String: Any]) {
        var headers = HTTPFields()
        if let user { headers[.authorization] = "Bearer \(tokens[user]!)" }
        return try await client.execute(uri: path, method: .get, headers: headers) { response in
            let object = (try? JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8))) as? [String: Any] ?? [:]
            return (response.status, object)
        }
    }

    @Test func everyRouteIsAuthorisedByRole() async throws {
        let setup = try await setUp()
        let period = "?from=2026-06-10&to=2026-06-10"
        let expectations: [(String, String?, HTTPResponse.Status)] = [
            ("/api/v1/dwellings/D1/energy", nil, .unauthorized),
            ("/api/v1/dwellings/D1/energy", "staff", .ok),
            ("/api/v1/dwellings/D1/energy", "resident-d1", .ok),
            ("/api/v1/dwellings/D1/energy", "resident-d2", .forbidden),
            ("/api/v1/dwellings/D9/energy", "resident-d1", .forbidden),
            ("/api/v1/dwellings/D1/energy", "assoc-e", .forbidden),
            ("/api/v1/dwellings/D1/energy", "driver", .forbidden),
            ("/api/v1/dwellings/NOPE/energy", "staff", .notFound),
            ("/api/v1/buildings/B/energy", nil, .unauthorized),
            ("/api/v1/buildings/B/energy", "staff", .ok),
            ("/api/v1/buildings/B/energy", "assoc-e", .ok),
            ("/api/v1/buildings/B/energy", "assoc-f", .forbidden),
            ("/api/v1/buildings/B/energy", "resident-d1", .forbidden),
            ("/api/v1/buildings/B/energy", "driver", .forbidden),
            ("/api/v1/buildings/NOPE/energy", "staff", .notFound),
            // An association gets the same answer for an id that does not exist as for another estate's building.
            ("/api/v1/buildings/NOPE/energy", "assoc-e", .forbidden),
            ("/api/v1/buildings/C/energy", "assoc-e", .forbidden),
            ("/api/v1/estates/E/energy", nil, .unauthorized),
            ("/api/v1/estates/E/energy", "staff", .ok),
            ("/api/v1/estates/E/energy", "assoc-e", .ok),
            ("/api/v1/estates/E/energy", "assoc-f", .forbidden),
            ("/api/v1/estates/E/energy", "resident-d1", .forbidden),
            ("/api/v1/estates/E/energy", "driver", .forbidden),
            ("/api/v1/estates/NOPE/energy", "staff", .notFound),
            ("/api/v1/landlord/energy", nil, .unauthorized),
            ("/api/v1/landlord/energy", "staff", .ok),
            ("/api/v1/landlord/energy", "assoc-e", .forbidden),
            ("/api/v1/landlord/energy", "resident-d1", .forbidden),
            ("/api/v1/landlord/energy", "driver", .forbidden),
        ]
        let app = Application(router: setup.router)
        let tokens = setup.tokens
        try await app.test(.router) { client in
            for (path, user, status) in expectations {
                let (got, body) = try await get(client, path + period, as: user, tokens)
                #expect(got == status, "\(path) as \(user ?? "nobody")")
                if status != .ok { #expect((body["error"] as? [String: Any])?["code"] != nil, "an error body for \(path) as \(user ?? "nobody")") }
            }
        }
    }

    @Test func anUnknownBuildingAndAnotherEstatesLookAlikeToAnAssociation() async throws {
        let setup = try await setUp()
        let tokens = setup.tokens
        try await Application(router: setup.router).test(.router) { client in
            let (unknown, unknownBody) = try await get(client, "/api/v1/buildings/NOPE/energy?from=2026-06-10&to=2026-06-10", as: "assoc-f", tokens)
            let (other, otherBody) = try await get(client, "/api/v1/buildings/B/energy?from=2026-06-10&to=2026-06-10", as: "assoc-f", tokens)
            #expect(unknown == other)
            let codes = [unknownBody, otherBody].map { ($0["error"] as? [String: Any])?["code"] as? String }
            let fields = [unknownBody, otherBody].map { ($0["error"] as? [String: Any])?["field"] as? String }
            #expect(codes[0] == codes[1] && fields[0] == fields[1] && fields[0] == "building")
        }
    }

    @Test func theLandlordReportAddsUpTheEstates() async throws {
        let setup = try await setUp()
        let tokens = setup.tokens
        try await Application(router: setup.router).test(.router) { client in
            let period = "?from=2026-06-10&to=2026-06-10"
            let (status, landlord) = try await get(client, "/api/v1/landlord/energy" + period, as: "staff", tokens)
            #expect(status == .ok)
            let (_, e) = try await get(client, "/api/v1/estates/E/energy" + period, as: "staff", tokens)
            let (_, f) = try await get(client, "/api/v1/estates/F/energy" + period, as: "staff", tokens)
            let production = { (report: [String: Any]) in (report["totals"] as? [String: Any])?["production_wh"] as? Int }
            #expect(production(landlord) == 600 && production(e) == 600 && production(f) == 0)
            let estates = landlord["estates"] as? [[String: Any]] ?? []
            #expect(estates.map { $0["estate"] as? String } == ["E", "F"])
            #expect(estates.map { $0["households"] as? Int } == [3, 1])
            #expect((landlord["households"] as? [String: Any])?["count"] as? Int == 4)
            #expect((landlord["households"] as? [String: Any])?["median_cents"] != nil)
        }
    }

    @Test func badPeriodsAreRefusedNamingTheField() async throws {
        let setup = try await setUp()
        let app = Application(router: setup.router)
        let tokens = setup.tokens
        try await app.test(.router) { client in
            for (query, field) in [("", "from"), ("?from=2026-06-10", "to"), ("?from=2026-13-01&to=2026-06-10", "from"), ("?from=2026-06-10&to=10/06/2026", "to"),
                                   ("?from=2026-06-11&to=2026-06-10", "to"), ("?from=2020-01-01&to=2026-06-10", "to")] {
                for path in ["/api/v1/dwellings/D1/energy", "/api/v1/buildings/B/energy", "/api/v1/estates/E/energy"] {
                    let (status, body) = try await get(client, path + query, as: "staff", tokens)
                    #expect(status == .badRequest, "\(path)\(query)")
                    #expect((body["error"] as? [String: Any])?["field"] as? String == field, "\(path)\(query)")
                }
            }
        }
    }

    @Test func theFiguresAreIntegersInSnakeCase() async throws {
        let setup = try await setUp()
        let app = Application(router: setup.router)
        let tokens = setup.tokens
        try await app.test(.router) { client in
            let (_, dwelling) = try await get(client, "/api/v1/dwellings/D1/energy?from=2026-06-10&to=2026-06-11", as: "resident-d1", tokens)
            // D1: 400 Wh, pro rata 600 * 400/900 = 266 Wh at 0.1952: 5.19 cents -> 5.
            #expect(dwelling["consumption_wh"] as? Int == 400)
            #expect(dwelling["allocated_wh"] as? Int == 266)
            #expect(dwelling["grid_wh"] as? Int == 134)
            #expect(dwelling["savings_cents"] as? Int == 5)
            let slots = dwelling["slots"] as? [String: Int]
            #expect(slots == ["measured": 1, "estimated": 0, "missing": 47 + 4], "the 11th has begun 02:00 local: 4 slots so far, none measured")
            let days = dwelling["days"] as? [[String: Any]] ?? []
            #expect(days.count == 2)
            #expect(days.first?["date"] as? String == "2026-06-10")
            #expect(Set(days.first?.keys.map { $0 } ?? []) == ["date", "consumption_wh", "allocated_wh", "grid_wh", "savings_cents", "slots"])
            // Each day's slots by quality, in integers (what a statement says in words).
            #expect(days.first?["slots"] as? [String: Int] == ["measured": 1, "estimated": 0, "missing": 47])
            let projection = dwelling["annual_projection"] as? [String: Any]
            #expect(projection?["promised_cents"] as? Int == 15_000)
            // 266 Wh at 0.1952 over 11 June days, June 130 per thousand of the year in the profile:
            // 51,923,200 nano-euros / (130,000 x 11 / 30 millionths) = 108.93 -> 109 cents.
            #expect(projection?["basis"] as? String == "production_profile")
            #expect(projection?["production_share_so_far_millionths"] as? Int == 47_667)
            #expect(projection?["projected_cents"] as? Int == 109)
            #expect(Set(projection?.keys.map { $0 } ?? []) == ["year", "savings_so_far_cents", "days_counted", "production_share_so_far_millionths", "basis",
                                                                "projected_cents", "promised_cents"])

            let (_, building) = try await get(client, "/api/v1/buildings/B/energy?from=2026-06-10&to=2026-06-10", as: "staff", tokens)
            #expect(building["production_wh"] as? Int == 600)
            #expect(building["allocated_wh"] as? Int == 600)
            #expect(building["surplus_wh"] as? Int == 0)
            #expect(building["consumption_wh"] as? Int == 900)
            #expect((building["self_consumption_rate"] as? NSNumber)?.doubleValue == 1)
            #expect((building["self_sufficiency_rate"] as? NSNumber)?.decimalValue == Decimal(string: "0.6667"))
            #expect(building["surplus_revenue_cents"] as? Int == 0)
            #expect(building["withheld"] as? Bool == false && building["minimum_households"] as? Int == 10)
            #expect((building["days"] as? [Any])?.count == 1)

            // Staff see every household's figure: the distribution whole, even of one household.
            let (_, estate) = try await get(client, "/api/v1/estates/E/energy?from=2026-06-10&to=2026-06-10", as: "staff", tokens)
            // D1 266 Wh -> 5.19 c, D2 134 -> 2.62 c, D3 200 -> 3.90 c.
            #expect(estate["households"] as? [String: Int] == ["count": 3, "min_cents": 3, "median_cents": 4, "max_cents": 5])
            let text = String(data: try JSONSerialization.data(withJSONObject: estate), encoding: .utf8) ?? ""
            #expect(!text.contains("D1") && !text.contains("D2") && !text.contains("D3"))
            #expect((estate["totals"] as? [String: Any])?["production_wh"] as? Int == 600)
            let (_, small) = try await get(client, "/api/v1/estates/F/energy?from=2026-06-10&to=2026-06-10", as: "staff", tokens)
            #expect(small["households"] as? [String: Int] == ["count": 1, "min_cents": 0, "median_cents": 0, "max_cents": 0])
        }
    }

    /// Issue 14, defect 10: the association saw the smallest and the largest saving (two households'
    /// own figures) from three households up, and a building's totals, which are its households'
    /// own figures when it has one or two. Now: no extreme ever, a building's household figures and
    /// the estate's totals withheld below the minimum group (10 by default), whole months only.
    @Test func anAssociationNeverSeesAHouseholdsFigure() async throws {
        let setup = try await setUp()
        let tokens = setup.tokens
        try await Application(router: setup.router).test(.router) { client in
            let (status, estate) = try await get(client, "/api/v1/estates/E/energy?from=2026-06-10&to=2026-06-10", as: "assoc-e", tokens)
            #expect(status == .ok)
            let households = estate["households"] as? [String: Any] ?? [:]
            #expect(households["count"] as? Int == 3)
            #expect(households["min_cents"] == nil && households["max_cents"] == nil, "no extreme: \(households)")
            #expect(households["median_cents"] == nil, "3 households, fewer than 10")
            #expect(estate["minimum_households"] as? Int == 10)
            // The building (3 households) and so the estate: the production alone.
            let building = (estate["buildings"] as? [[String: Any]])?.first ?? [:]
            let totals = estate["totals"] as? [String: Any] ?? [:]
            for figures in [building, totals] {
                #expect(figures["production_wh"] as? Int == 600)
                #expect(figures["withheld"] as? Bool == true)
                for key in ["allocated_wh", "surplus_wh", "consumption_wh", "surplus_revenue_cents", "self_consumption_rate", "self_sufficiency_rate"] {
                    #expect(figures[key] is NSNull, "\(key) withheld: \(figures)")
                }
            }
            let (_, report) = try await get(client, "/api/v1/buildings/B/energy?from=2026-06-10&to=2026-06-10", as: "assoc-e", tokens)
            #expect(report["production_wh"] as? Int == 600 && report["withheld"] as? Bool == true)
            #expect(report["consumption_wh"] is NSNull && report["allocated_wh"] is NSNull && report["surplus_wh"] is NSNull)
            let days = report["days"] as? [[String: Any]] ?? []
            #expect(days.count == 30, "the whole of June")
            #expect(days.allSatisfy { $0["consumption_wh"] is NSNull && $0["allocated_wh"] is NSNull })
            #expect(days.first { $0["date"] as? String == "2026-06-10" }?["production_wh"] as? Int == 600)

            // Overlapping periods are the same whole month: differencing them isolates nothing.
            let (_, tenth) = try await get(client, "/api/v1/estates/E/energy?from=2026-06-10&to=2026-06-10", as: "assoc-e", tokens)
            let (_, firstTen) = try await get(client, "/api/v1/estates/E/energy?from=2026-06-01&to=2026-06-10", as: "assoc-e", tokens)
            let (_, ninth) = try await get(client, "/api/v1/buildings/B/energy?from=2026-06-01&to=2026-06-09", as: "assoc-e", tokens)
            #expect(tenth["from"] as? String == "2026-06-01" && tenth["to"] as? String == "2026-06-30")
            #expect(NSDictionary(dictionary: tenth) == NSDictionary(dictionary: firstTen))
            #expect(NSDictionary(dictionary: ninth) == NSDictionary(dictionary: report))
        }
    }

    /// The rule with a smaller group (the setting at 3): a building whose households all have
    /// figures is shown, its median rounded to the euro and still no extreme; a day when only two of
    /// its three households had figures withholds the month (their sum would be two households').
    @Test func theMinimumGroupIsASettingAndCountsEveryDay() async throws {
        var settings = EnergySettings()
        settings.privacyMinimumHouseholds = 3
        let setup = try await setUp(settings: settings)
        let tokens = setup.tokens
        try await Application(router: setup.router).test(.router) { client in
            let (_, estate) = try await get(client, "/api/v1/estates/E/energy?from=2026-06-10&to=2026-06-10", as: "assoc-e", tokens)
            #expect(estate["households"] as? [String: Int] == ["count": 3, "median_cents": 0], "4 cents, rounded to the euro; no minimum or maximum")
            #expect((estate["totals"] as? [String: Any])?["consumption_wh"] as? Int == 900)
            let (_, building) = try await get(client, "/api/v1/buildings/B/energy?from=2026-06-10&to=2026-06-10", as: "assoc-e", tokens)
            #expect(building["consumption_wh"] as? Int == 900 && building["withheld"] as? Bool == false)
            let (_, other) = try await get(client, "/api/v1/estates/F/energy?from=2026-06-10&to=2026-06-10", as: "assoc-f", tokens)
            #expect((other["totals"] as? [String: Any])?["withheld"] as? Bool == false, "a building without any figure gives nothing away")
        }
        // On the 12th only D1 and D2 send readings: June is withheld, July is not touched.
        try setup.hub.publish("m-1", [("2026-06-12T08:00:00Z", 400), ("2026-06-12T08:30:00Z", 500)])
        try setup.hub.publish("m-2", [("2026-06-12T08:00:00Z", 200), ("2026-06-12T08:30:00Z", 260)])
        try setup.hub.update(now: "2026-06-13T00:00:00Z")
        try await Application(router: setup.router).test(.router) { client in
            let (_, building) = try await get(client, "/api/v1/buildings/B/energy?from=2026-06-10&to=2026-06-10", as: "assoc-e", tokens)
            #expect(building["withheld"] as? Bool == true && building["consumption_wh"] is NSNull)
            let (_, estate) = try await get(client, "/api/v1/estates/E/energy?from=2026-06-10&to=2026-06-10", as: "assoc-e", tokens)
            #expect((estate["totals"] as? [String: Any])?["withheld"] as? Bool == true)
            #expect((estate["households"] as? [String: Any])?["median_cents"] == nil)
            let (_, staff) = try await get(client, "/api/v1/buildings/B/energy?from=2026-06-12&to=2026-06-12", as: "staff", tokens)
            #expect(staff["consumption_wh"] as? Int == 160, "staff see everything")
        }
    }
}

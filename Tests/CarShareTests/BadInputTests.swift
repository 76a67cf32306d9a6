import CarShare
import CarShareCore
import Foundation
import GRDB
import HTTPTypes
import HubTestSupport
import Hummingbird
import HummingbirdTesting
import NIOCore
import HubCore
import Shared
import Testing
@testable import HubApp

/// Every route refuses bad input and the wrong role with a 4xx JSON error naming the field, and
/// changes nothing.
@Suite struct BadInputTests {
    struct Case: CustomStringConvertible {
        var method: HTTPRequest.Method
        var path: String
        var identity: Identity
        var body: String?
        var status: HTTPResponse.Status
        var field: String?
        var code: String?
        var description: String { "\(identity.name) \(method) \(path) \(body ?? "")" }
    }

    @Test func everyRouteRefusesBadInputAndTheWrongRoleAndChangesNothing() async throws {
        let fixture = try await Fixture()
        let seed = try await fixture.seed()
        let expired = try await fixture.store.addMember(NewMember(name: "Denise Roy", dwelling: "OUT-A-01"), by: Fixture.staff, at: Fixture.now)
        let booking = try await fixture.store.createBooking(NewBooking(vehicle: seed.vehicle, rider: seed.alice, start: Fixture.at(10), end: Fixture.at(11)),
                                                            by: Fixture.staff, at: Fixture.now)
        let bobBooking = try await fixture.store.createBooking(NewBooking(vehicle: seed.vehicle, rider: seed.bob, start: Fixture.at(14), end: Fixture.at(15)),
                                                               by: Fixture.staff, at: Fixture.now)
        _ = try await fixture.store.recordPayment(NewPayment(idempotencyKey: "seed", member: seed.alice, amountCents: Cents(1000), method: .cash), by: Fixture.staff, at: Fixture.now)
        let staff = Fixture.staff, asso = Fixture.association, other = Fixture.otherAssociation, resident = Fixture.resident, driver = Fixture.driver
        func bookingJSON(rider: Int64, vehicle: Int64 = seed.vehicle, _ from: Instant, _ to: Instant) -> String {
            #"{"vehicle": \#(vehicle), "rider": \#(rider), "start": "\#(from.rfc3339)", "end": "\#(to.rfc3339)"}"#
        }
        func tripJSON(key: String? = "t1", riders: [Int64] = [seed.alice], startKm: Int64 = 12_000, batteryEnd: Int = 80) -> String {
            let keyPart = key.map { #""idempotency_key": "\#($0)", "# } ?? ""
            return #"{\#(keyPart)"vehicle": \#(seed.vehicle), "driver": \#(seed.jean), "unbooked_reason": "appel", "riders": \#(riders), "start": "\#(Fixture.at(17).rfc3339)", "end": "\#(Fixture.at(18).rfc3339)", "start_odometer_km": \#(startKm), "end_odometer_km": 12010, "battery_start_pct": 90, "battery_end_pct": \#(batteryEnd)}"#
        }
        let cases: [Case] = [
            // members
            Case(method: .post, path: "members", identity: staff, body: #"{"name": "  "}"#, status: .badRequest, field: "name"),
            Case(method: .post, path: "members", identity: staff, body: #"{"phone": "0321"}"#, status: .badRequest, field: "name", code: "invalid_body"),
            Case(method: .post, path: "members", identity: staff, body: "not json", status: .badRequest, code: "invalid_body"),
            Case(method: .post, path: "members", identity: staff, body: #"{"name": "X", "dwelling": "NOPE-1"}"#, status: .notFound, field: "dwelling"),
            Case(method: .post, path: "members", identity: other, body: #"{"name": "X", "dwelling": "OUT-A-01"}"#, status: .forbidden, field: "dwelling"),
            Case(method: .post, path: "members", identity: resident, body: #"{"name": "X"}"#, status: .forbidden, field: "role"),
            Case(method: .post, path: "members", identity: driver, body: #"{"name": "X"}"#, status: .forbidden, field: "role"),
            Case(method: .get, path: "members", identity: driver, status: .forbidden, field: "role"),
            Case(method: .get, path: "members/999", identity: staff, status: .notFound, field: "member"),
            Case(method: .get, path: "members/abc", identity: staff, status: .badRequest, field: "id"),
            Case(method: .get, path: "members/\(seed.bob)", identity: resident, status: .forbidden, field: "member"),
            Case(method: .get, path: "members/\(seed.alice)", identity: other, status: .forbidden, field: "member"),
            Case(method: .get, path: "members/\(seed.bob)/statement", identity: resident, status: .forbidden, field: "member"),
            Case(method: .get, path: "members/999/statement", identity: staff, status: .notFound, field: "member"),
            // memberships
            Case(method: .post, path: "members/999/memberships", identity: staff, body: "{}", status: .notFound, field: "member"),
            Case(method: .post, path: "members/\(seed.alice)/memberships", identity: staff, body: "{}", status: .conflict, field: "start", code: "membership_exists"),
            Case(method: .post, path: "members/\(expired.id)/memberships", identity: staff, body: #"{"start": "2026-02-30"}"#, status: .badRequest, field: "start"),
            // Before the first fee the settings list: the caller's date, a 422, not a 500 (found by schemathesis).
            Case(method: .post, path: "members/\(expired.id)/memberships", identity: staff, body: #"{"start": "0775-06-12"}"#, status: .unprocessableContent, field: "start", code: "no_membership_fee"),
            Case(method: .post, path: "members/\(expired.id)/memberships", identity: resident, body: "{}", status: .forbidden, field: "role"),
            Case(method: .post, path: "members/\(expired.id)/memberships", identity: other, body: "{}", status: .forbidden, field: "member"),
            Case(method: .post, path: "memberships/recognitions", identity: staff, status: .badRequest, field: "on"),
            Case(method: .post, path: "memberships/recognitions?on=2027-01-01", identity: asso, status: .forbidden, field: "role"),
            // drivers and vehicles
            Case(method: .post, path: "drivers", identity: staff, body: #"{"name": "Luc", "user": "ghost"}"#, status: .notFound, field: "user"),
            Case(method: .post, path: "drivers", identity: staff, body: #"{"name": "Luc", "user": "resident-a01"}"#, status: .badRequest, field: "user"),
            Case(method: .post, path: "drivers", identity: staff, body: #"{"name": "Luc", "trained_on": "yesterday"}"#, status: .badRequest, field: "trained_on"),
            Case(method: .post, path: "drivers", identity: resident, body: #"{"name": "Luc"}"#, status: .forbidden, field: "role"),
            Case(method: .patch, path: "drivers/\(seed.jean)", identity: staff, body: #"{"version": 7, "active": false}"#, status: .conflict, field: "version"),
            Case(method: .patch, path: "drivers/999", identity: staff, body: #"{"version": 1}"#, status: .notFound, field: "driver"),
            Case(method: .post, path: "vehicles", identity: staff, body: #"{"name": "Autre", "plate": "ga-123-bc"}"#, status: .conflict, field: "plate"),
            Case(method: .post, path: "vehicles", identity: staff, body: #"{"name": "Autre", "plate": "X", "battery_capacity_wh": -5}"#, status: .badRequest, field: "battery_capacity_wh"),
            Case(method: .post, path: "vehicles", identity: asso, body: #"{"name": "Autre", "plate": "X"}"#, status: .forbidden, field: "role"),
            // bookings
            Case(method: .post, path: "bookings", identity: staff, body: bookingJSON(rider: 999, Fixture.at(8), Fixture.at(9)), status: .notFound, field: "rider"),
            Case(method: .post, path: "bookings", identity: staff, body: bookingJSON(rider: expired.id, Fixture.at(8), Fixture.at(9)), status: .unprocessableContent, field: "rider", code: "membership_not_valid"),
            Case(method: .post, path: "bookings", identity: staff, body: bookingJSON(rider: seed.alice, Fixture.at(9), Fixture.at(8)), status: .badRequest, field: "end", code: "invalid_interval"),
            Case(method: .post, path: "bookings", identity: staff, body: bookingJSON(rider: seed.bob, Fixture.at(9), Fixture.at(12)), status: .conflict, field: "start", code: "vehicle_overlap"),
            Case(method: .post, path: "bookings", identity: staff, body: bookingJSON(rider: seed.alice, vehicle: 99, Fixture.at(8), Fixture.at(9)), status: .notFound, field: "vehicle"),
            Case(method: .post, path: "bookings", identity: resident, body: bookingJSON(rider: seed.bob, Fixture.at(8), Fixture.at(9)), status: .forbidden, field: "rider"),
            Case(method: .post, path: "bookings", identity: staff, body: #"{"vehicle": 1, "start": "2026-03-12T08:00:00Z", "end": "2026-03-12T09:00:00Z"}"#, status: .badRequest, field: "rider"),
            Case(method: .post, path: "bookings", identity: staff, body: #"{"vehicle": 1, "rider": 1, "start": "2026-03-12 08:00", "end": "2026-03-12T09:00:00Z"}"#, status: .badRequest, field: "start"),
            Case(method: .get, path: "bookings?vehicle=x", identity: staff, status: .badRequest, field: "vehicle"),
            Case(method: .get, path: "bookings?from=12/03/2026", identity: staff, status: .badRequest, field: "from"),
            Case(method: .get, path: "bookings/999", identity: staff, status: .notFound, field: "booking"),
            Case(method: .get, path: "bookings/\(bobBooking.id)", identity: resident, status: .forbidden, field: "booking"),
            Case(method: .patch, path: "bookings/\(booking.id)", identity: staff, body: #"{"version": 9, "purpose": "x"}"#, status: .conflict, field: "version"),
            Case(method: .patch, path: "bookings/\(booking.id)", identity: staff, body: #"{"version": 1, "end": "\#(Fixture.at(9).rfc3339)"}"#, status: .badRequest, field: "end"),
            Case(method: .patch, path: "bookings/\(booking.id)", identity: staff, body: #"{"version": 1, "end": "\#(Fixture.at(14, 30).rfc3339)"}"#, status: .conflict, field: "start"),
            Case(method: .patch, path: "bookings/\(bobBooking.id)", identity: resident, body: #"{"version": 1, "purpose": "x"}"#, status: .forbidden, field: "booking"),
            Case(method: .post, path: "bookings/\(booking.id)/status", identity: staff, body: #"{"version": 1, "status": "lost"}"#, status: .badRequest, field: "status"),
            Case(method: .post, path: "bookings/\(booking.id)/status", identity: staff, body: #"{"version": 1, "status": "completed"}"#, status: .unprocessableContent, field: "status"),
            Case(method: .post, path: "bookings/\(booking.id)/status", identity: resident, body: #"{"version": 1, "status": "confirmed", "driver": \#(seed.jean)}"#, status: .forbidden, field: "status"),
            Case(method: .post, path: "bookings/\(booking.id)/status", identity: staff, body: #"{"version": 1, "status": "confirmed", "driver": 999}"#, status: .notFound, field: "driver"),
            Case(method: .post, path: "bookings/\(booking.id)/status", identity: staff, body: #"{"version": 1, "status": "confirmed"}"#, status: .badRequest, field: "driver"),
            // trips and charging
            Case(method: .post, path: "trips", identity: staff, body: tripJSON(key: nil), status: .badRequest, field: "idempotency_key"),
            Case(method: .post, path: "trips", identity: staff, body: tripJSON(startKm: -4), status: .badRequest, field: "start_odometer_km"),
            Case(method: .post, path: "trips", identity: staff, body: tripJSON(startKm: 11_000), status: .unprocessableContent, field: "start_odometer_km"),
            Case(method: .post, path: "trips", identity: staff, body: tripJSON(batteryEnd: 120), status: .badRequest, field: "battery_end_pct"),
            Case(method: .post, path: "trips", identity: staff, body: tripJSON(riders: [999]), status: .notFound, field: "riders[0]"),
            Case(method: .post, path: "trips", identity: staff, body: tripJSON(riders: [seed.alice, expired.id]), status: .unprocessableContent, field: "riders[1]"),
            Case(method: .post, path: "trips", identity: staff, body: tripJSON(riders: []), status: .badRequest, field: "riders"),
            Case(method: .post, path: "trips", identity: resident, body: tripJSON(), status: .forbidden, field: "role"),
            Case(method: .post, path: "charging", identity: driver, body: #"{"vehicle": \#(seed.vehicle), "at": "2026-03-12T18:00:00Z", "energy_wh": 0, "cost_cents": 0}"#, status: .badRequest, field: "energy_wh"),
            Case(method: .post, path: "charging", identity: driver, body: #"{"vehicle": \#(seed.vehicle), "at": "2026-03-12T18:00:00Z", "energy_wh": 9000, "cost_cents": 300}"#, status: .badRequest, field: "method"),
            Case(method: .post, path: "charging", identity: driver, body: #"{"vehicle": \#(seed.vehicle), "at": "2026-03-12T18:00:00Z", "energy_wh": 9000, "cost_cents": -3}"#, status: .badRequest, field: "cost_cents"),
            Case(method: .post, path: "charging", identity: driver, body: #"{"vehicle": 99, "at": "2026-03-12T18:00:00Z", "energy_wh": 9000, "cost_cents": 0}"#, status: .notFound, field: "vehicle"),
            Case(method: .post, path: "charging", identity: resident, body: #"{"vehicle": 1, "at": "2026-03-12T18:00:00Z", "energy_wh": 9000, "cost_cents": 0}"#, status: .forbidden, field: "role"),
            // money
            Case(method: .post, path: "payments", identity: staff, body: #"{"idempotency_key": "n", "member": \#(seed.alice), "amount_cents": -200, "method": "cash"}"#, status: .badRequest, field: "amount_cents", code: "amount_not_positive"),
            Case(method: .post, path: "payments", identity: staff, body: #"{"idempotency_key": "n", "member": \#(seed.alice), "amount_cents": 2.5, "method": "cash"}"#, status: .badRequest, field: "amount_cents"),
            Case(method: .post, path: "payments", identity: staff, body: #"{"idempotency_key": "n", "member": 999, "amount_cents": 200, "method": "cash"}"#, status: .notFound, field: "member"),
            Case(method: .post, path: "payments", identity: staff, body: #"{"idempotency_key": "n", "member": \#(seed.alice), "amount_cents": 200, "method": "bitcoin"}"#, status: .badRequest, field: "method"),
            Case(method: .post, path: "payments", identity: staff, body: #"{"member": \#(seed.alice), "amount_cents": 200, "method": "cash"}"#, status: .badRequest, field: "idempotency_key"),
            Case(method: .post, path: "payments", identity: staff, body: #"{"idempotency_key": "seed", "member": \#(seed.alice), "amount_cents": 300, "method": "cash"}"#, status: .unprocessableContent, field: "idempotency_key"),
            Case(method: .post, path: "payments", identity: resident, body: #"{"idempotency_key": "n", "member": \#(seed.alice), "amount_cents": 200, "method": "cash"}"#, status: .forbidden, field: "role"),
            Case(method: .post, path: "payments", identity: driver, body: #"{"idempotency_key": "n", "member": \#(seed.alice), "amount_cents": 200, "method": "transfer"}"#, status: .forbidden, field: "method"),
            Case(method: .post, path: "payments", identity: other, body: #"{"idempotency_key": "n", "member": \#(seed.alice), "amount_cents": 200, "method": "cash"}"#, status: .forbidden, field: "member"),
            Case(method: .post, path: "deposits", identity: staff, body: #"{"kind": "cash", "amount_cents": 0}"#, status: .badRequest, field: "amount_cents"),
            Case(method: .post, path: "deposits", identity: staff, body: #"{"kind": "cash", "amount_cents": 5000}"#, status: .unprocessableContent, field: "amount", code: "cash_box_negative"),
            Case(method: .post, path: "deposits", identity: staff, body: #"{"kind": "gold", "amount_cents": 50}"#, status: .badRequest, field: "kind"),
            Case(method: .post, path: "deposits", identity: driver, body: #"{"kind": "cash", "amount_cents": 50}"#, status: .forbidden, field: "role"),
            Case(method: .post, path: "refunds", identity: staff, body: #"{"member": \#(seed.alice), "amount_cents": -1, "method": "cash"}"#, status: .badRequest, field: "amount_cents"),
            Case(method: .post, path: "refunds", identity: staff, body: #"{"member": \#(seed.alice), "amount_cents": 900, "method": "cash"}"#, status: .unprocessableContent, field: "amount", code: "refund_exceeds_credit"),
            Case(method: .post, path: "refunds", identity: resident, body: #"{"member": \#(seed.alice), "amount_cents": 100, "method": "cash"}"#, status: .forbidden, field: "role"),
            Case(method: .post, path: "corrections", identity: staff, body: #"{"entry": 999, "reason": "erreur"}"#, status: .notFound, field: "entry"),
            Case(method: .post, path: "corrections", identity: staff, body: #"{"entry": 1, "reason": " "}"#, status: .badRequest, field: "reason"),
            Case(method: .post, path: "corrections", identity: staff, body: #"{"entry": 1, "reason": "x", "lines": [{"account": "512", "amount_cents": 5}, {"account": "741", "amount_cents": -4}]}"#,
                 status: .badRequest, field: "lines", code: "unbalanced_entry"),
            Case(method: .post, path: "corrections", identity: resident, body: #"{"entry": 1, "reason": "x"}"#, status: .forbidden, field: "role"),
            Case(method: .post, path: "ledger/entries", identity: staff, body: #"{"on": "2026-03-10", "label": "Assurance", "lines": [{"account": "616", "amount_cents": 300}, {"account": "512", "amount_cents": -200}]}"#,
                 status: .badRequest, field: "lines"),
            Case(method: .post, path: "ledger/entries", identity: staff, body: #"{"on": "2026-03-10", "label": "Assurance", "lines": [{"account": "616", "amount_cents": 300}, {"account": "411", "amount_cents": -300}]}"#,
                 status: .badRequest, field: "lines[1].member"),
            Case(method: .post, path: "ledger/entries", identity: asso, body: #"{"on": "2026-03-10", "label": "x", "lines": []}"#, status: .forbidden, field: "role"),
            Case(method: .get, path: "ledger/entries/999", identity: staff, status: .notFound, field: "entry"),
            Case(method: .get, path: "ledger/entries/1", identity: resident, status: .forbidden, field: "role"),
            Case(method: .put, path: "ledger/entries/1", identity: staff, body: "{}", status: .conflict, field: "number", code: "posted_entry_immutable"),
            Case(method: .patch, path: "ledger/entries/1", identity: staff, body: "{}", status: .conflict, field: "number", code: "posted_entry_immutable"),
            Case(method: .delete, path: "ledger/entries/1", identity: staff, status: .conflict, field: "number", code: "posted_entry_immutable"),
            Case(method: .post, path: "ledger/closed-months", identity: staff, body: #"{"month": "2026-13"}"#, status: .badRequest, field: "month"),
            Case(method: .post, path: "ledger/closed-months", identity: asso, body: #"{"month": "2026-01"}"#, status: .forbidden, field: "role"),
            Case(method: .get, path: "ledger/journal", identity: resident, status: .forbidden, field: "role"),
            Case(method: .get, path: "ledger/verify", identity: driver, status: .forbidden, field: "role"),
            // reports
            Case(method: .get, path: "reports/balances", identity: resident, status: .forbidden, field: "role"),
            Case(method: .get, path: "reports/cash-book?to=2026-03-31", identity: staff, status: .badRequest, field: "from"),
            Case(method: .get, path: "reports/cash-book?from=2026-03-31&to=2026-03-01", identity: staff, status: .badRequest, field: "to"),
            Case(method: .get, path: "reports/income-statement?month=mars", identity: staff, status: .badRequest, field: "month"),
            Case(method: .get, path: "reports/income-statement", identity: staff, status: .badRequest, field: "month"),
            Case(method: .get, path: "reports/trips?from=2026-3-1&to=2026-03-31", identity: staff, status: .badRequest, field: "from"),
            Case(method: .get, path: "reports/trips?from=2026-03-01&to=2026-03-31", identity: resident, status: .forbidden, field: "role"),
            Case(method: .get, path: "reports/prefect", identity: staff, status: .badRequest, field: "year"),
            Case(method: .get, path: "reports/prefect?year=2026", identity: driver, status: .forbidden, field: "role"),
        ]
        let before = try fixture.counts()
        try await fixture.app.test(.router) { client in
            for test in cases {
                let (status, body) = try await client.send(test.method, "\(api)/\(test.path)", as: test.identity, fixture: fixture, json: test.body)
                #expect(status == test.status, "\(test): \(body)")
                #expect((400..<500).contains(status.code), "\(test)")
                guard let error = try? errorDetail(body) else {
                    Issue.record("not a JSON error body: \(test): \(body)")
                    continue
                }
                if let field = test.field { #expect(error.field == field, "\(test): \(body)") }
                if let code = test.code { #expect(error.code == code, "\(test): \(body)") }
                #expect(!error.message.isEmpty)
            }
            let (unauthenticated, body) = try await client.execute(uri: "\(api)/members", method: .get) { ($0.status, String(buffer: $0.body)) }
            #expect(unauthenticated == .unauthorized && (try? errorDetail(body))?.code == "unauthorized")
        }
        #expect(try fixture.counts() == before, "a refused request changes nothing")
    }

    @Test func residentsSeeOnlyTheirDwellingAndAssociationsTheirEstate() async throws {
        let fixture = try await Fixture()
        let seed = try await fixture.seed()
        for rider in [seed.alice, seed.bob, seed.chloe] {
            _ = try await fixture.store.createBooking(NewBooking(vehicle: seed.vehicle, rider: rider, start: Fixture.at(8 + Int(rider)), end: Fixture.at(9 + Int(rider))),
                                                      by: Fixture.staff, at: Fixture.now)
        }
        try await fixture.app.test(.router) { client in
            func riders(_ identity: Identity) async throws -> [Int64] {
                let (_, body) = try await client.send(.get, "\(api)/bookings", as: identity, fixture: fixture)
                return try decode([BookingView].self, body).map(\.rider)
            }
            #expect(try await riders(Fixture.resident) == [seed.alice])
            #expect(try await riders(Fixture.otherResident) == [seed.bob])
            #expect(try await riders(Fixture.association) == [seed.alice, seed.bob])
            #expect(try await riders(Fixture.otherAssociation) == [seed.chloe])
            #expect(try await riders(Fixture.staff) == [seed.alice, seed.bob, seed.chloe])
            let (_, members) = try await client.send(.get, "\(api)/members", as: Fixture.resident, fixture: fixture)
            #expect(try decode([MemberView].self, members).map(\.id) == [seed.alice])
            let (own, _) = try await client.send(.get, "\(api)/members/\(seed.alice)/statement?format=text", as: Fixture.resident, fixture: fixture)
            #expect(own == .ok)
        }
    }
}

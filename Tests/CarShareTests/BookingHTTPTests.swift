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

let api = "/api/v1/carshare"

/// Booking rules through the real router and a real SQLite file.
@Suite struct BookingHTTPTests {
    func booking(_ seed: Fixture.Seed, rider: Int64? = nil, vehicle: Int64? = nil, _ from: (Int, Int), _ to: (Int, Int), driver: Int64? = nil, day: Int = 16) throws -> String {
        try json(NewBooking(vehicle: vehicle ?? seed.vehicle, rider: rider ?? seed.alice, start: Fixture.at(from.0, from.1, day: day),
                            end: Fixture.at(to.0, to.1, day: day), purpose: "Rendez-vous médical", driver: driver))
    }

    @Test func overlappingEnclosingAndAdjacentBookings() async throws {
        let fixture = try await Fixture()
        let seed = try await fixture.seed()
        try await fixture.app.test(.router) { client in
            let (created, body) = try await client.send(.post, "\(api)/bookings", as: Fixture.staff, fixture: fixture, json: try booking(seed, (10, 0), (11, 0)))
            #expect(created == .created, "\(body)")
            let first = try decode(BookingView.self, body)
            #expect(first.status == .requested && first.bookedBy == "staff" && first.events.count == 1)
            let before = try fixture.counts()
            for (from, to, what) in [((9, 0), (12, 0), "encloses"), ((10, 15), (10, 45), "inside"), ((9, 30), (10, 30), "overlaps the start"),
                                     ((10, 59), (11, 30), "overlaps the end"), ((10, 0), (11, 0), "same slot")] {
                let (status, body) = try await client.send(.post, "\(api)/bookings", as: Fixture.association, fixture: fixture, json: try booking(seed, rider: seed.bob, from, to))
                #expect(status == .conflict, "\(what): \(body)")
                let error = try errorDetail(body)
                #expect(error.code == "vehicle_overlap" && error.field == "start", "\(what)")
                #expect(error.message.contains("booking \(first.id)"))
            }
            #expect(try fixture.counts() == before)
            // Adjacent on both sides: end = start is allowed.
            let (after, _) = try await client.send(.post, "\(api)/bookings", as: Fixture.association, fixture: fixture, json: try booking(seed, rider: seed.bob, (11, 0), (12, 0)))
            let (beforeSlot, _) = try await client.send(.post, "\(api)/bookings", as: Fixture.association, fixture: fixture, json: try booking(seed, rider: seed.bob, (9, 0), (10, 0)))
            #expect(after == .created && beforeSlot == .created)
            // A cancelled booking frees its slot.
            let (cancelled, cancelBody) = try await client.send(.post, "\(api)/bookings/\(first.id)/status", as: Fixture.staff, fixture: fixture,
                                                                json: #"{"version": 1, "status": "cancelled", "reason": "rendez-vous reporté"}"#)
            #expect(cancelled == .ok, "\(cancelBody)")
            #expect(try decode(BookingView.self, cancelBody).status == .cancelled, "two days ahead: not late")
            let (again, _) = try await client.send(.post, "\(api)/bookings", as: Fixture.association, fixture: fixture, json: try booking(seed, rider: seed.bob, (10, 0), (11, 0)))
            #expect(again == .created)
        }
    }

    @Test func aDriverIsNeverAssignedTwiceAtOnce() async throws {
        let fixture = try await Fixture()
        let seed = try await fixture.seed()
        let second = try await fixture.store.addVehicle(NewVehicle(name: "Kangoo", plate: "GB-456-CD"), by: Fixture.staff)
        try await fixture.app.test(.router) { client in
            let (first, body) = try await client.send(.post, "\(api)/bookings", as: Fixture.staff, fixture: fixture, json: try booking(seed, (14, 0), (16, 0), driver: seed.jean))
            #expect(try first == .created && decode(BookingView.self, body).status == .confirmed, "\(body)")
            let (status, conflict) = try await client.send(.post, "\(api)/bookings", as: Fixture.staff, fixture: fixture,
                                                           json: try booking(seed, rider: seed.bob, vehicle: second.id, (13, 0), (17, 0), driver: seed.jean))
            #expect(try status == .conflict && errorDetail(conflict).code == "driver_overlap" && errorDetail(conflict).field == "driver")
            // Confirming a requested booking with a busy driver is refused the same way.
            let (_, requested) = try await client.send(.post, "\(api)/bookings", as: Fixture.staff, fixture: fixture,
                                                       json: try booking(seed, rider: seed.bob, vehicle: second.id, (15, 0), (15, 30)))
            let id = try decode(BookingView.self, requested).id
            let (confirm, confirmBody) = try await client.send(.post, "\(api)/bookings/\(id)/status", as: Fixture.association, fixture: fixture,
                                                               json: #"{"version": 1, "status": "confirmed", "driver": \#(seed.jean)}"#)
            #expect(try confirm == .conflict && errorDetail(confirmBody).code == "driver_overlap")
            let (ok, okBody) = try await client.send(.post, "\(api)/bookings/\(id)/status", as: Fixture.association, fixture: fixture,
                                                     json: #"{"version": 1, "status": "confirmed", "driver": \#(seed.paul)}"#)
            #expect(try ok == .ok && decode(BookingView.self, okBody).driver == seed.paul)
        }
    }

    @Test func aRiderNeedsAMembershipValidOnTheTripDate() async throws {
        let fixture = try await Fixture()
        let seed = try await fixture.seed()
        let newcomer = try await fixture.store.addMember(NewMember(name: "Denise Roy", dwelling: "OUT-A-01"), by: Fixture.staff, at: Fixture.now)
        try await fixture.app.test(.router) { client in
            let before = try fixture.counts()
            let (status, body) = try await client.send(.post, "\(api)/bookings", as: Fixture.staff, fixture: fixture, json: try booking(seed, rider: newcomer.id, (10, 0), (11, 0)))
            #expect(status == .unprocessableContent)
            #expect(try errorDetail(body).code == "membership_not_valid" && errorDetail(body).field == "rider")
            // Alice's 2026 membership has expired by 2027.
            let nextYear = try json(NewBooking(vehicle: seed.vehicle, rider: seed.alice, start: Instant.parseRFC3339("2027-01-05T09:00:00Z")!,
                                               end: Instant.parseRFC3339("2027-01-05T10:00:00Z")!))
            let (expired, expiredBody) = try await client.send(.post, "\(api)/bookings", as: Fixture.staff, fixture: fixture, json: nextYear)
            #expect(try expired == .unprocessableContent && errorDetail(expiredBody).message.contains("2027-01-05"))
            #expect(try fixture.counts() == before)
        }
    }

    @Test func aStaleEditGets409AndStatusChangesRecordWhoAndWhy() async throws {
        let fixture = try await Fixture()
        let seed = try await fixture.seed()
        try await fixture.app.test(.router) { client in
            let (_, body) = try await client.send(.post, "\(api)/bookings", as: Fixture.resident, fixture: fixture, json: try booking(seed, (10, 0), (11, 0)))
            let created = try decode(BookingView.self, body)
            #expect(created.bookedBy == Fixture.resident.name)
            let (edited, editedBody) = try await client.send(.patch, "\(api)/bookings/\(created.id)", as: Fixture.association, fixture: fixture,
                                                             json: #"{"version": 1, "end": "\#(Fixture.at(11, 30, day: 16).rfc3339)"}"#)
            #expect(try edited == .ok && decode(BookingView.self, editedBody).version == 2, "\(editedBody)")
            let before = try fixture.counts()
            let (stale, staleBody) = try await client.send(.patch, "\(api)/bookings/\(created.id)", as: Fixture.staff, fixture: fixture,
                                                           json: #"{"version": 1, "purpose": "autre"}"#)
            #expect(try stale == .conflict && errorDetail(staleBody).code == "stale_version" && errorDetail(staleBody).field == "version")
            let (staleStatus, _) = try await client.send(.post, "\(api)/bookings/\(created.id)/status", as: Fixture.staff, fixture: fixture,
                                                         json: #"{"version": 1, "status": "turned_down", "reason": "pas de chauffeur"}"#)
            #expect(staleStatus == .conflict)
            #expect(try fixture.counts() == before)
            let (noReason, noReasonBody) = try await client.send(.post, "\(api)/bookings/\(created.id)/status", as: Fixture.staff, fixture: fixture,
                                                                 json: #"{"version": 2, "status": "turned_down"}"#)
            #expect(try noReason == .badRequest && errorDetail(noReasonBody).field == "reason")
            let (down, downBody) = try await client.send(.post, "\(api)/bookings/\(created.id)/status", as: Fixture.staff, fixture: fixture,
                                                         json: #"{"version": 2, "status": "turned_down", "reason": "pas de chauffeur"}"#)
            #expect(down == .ok)
            let view = try decode(BookingView.self, downBody)
            #expect(view.events.map(\.to) == [.requested, .requested, .turnedDown])
            #expect(view.events.last?.by == "staff" && view.events.last?.reason == "pas de chauffeur")
            let (again, againBody) = try await client.send(.post, "\(api)/bookings/\(created.id)/status", as: Fixture.staff, fixture: fixture,
                                                           json: #"{"version": 3, "status": "confirmed", "driver": \#(seed.jean)}"#)
            #expect(try again == .unprocessableContent && errorDetail(againBody).code == "transition_not_allowed")
        }
    }

    @Test func lateCancellationsAndNoShowsKeepTheFeeWhenTheSettingSaysSo() async throws {
        for keeps in [true, false] {
            var settings = CarShareSettings()
            settings.lateCancellationKeepsFee = keeps
            settings.noShowKeepsFee = keeps
            let fixture = try await Fixture(carshare: settings)
            let seed = try await fixture.seed()
            // Fixture.now is 2026-03-13 10:00 Paris; a booking at 15:00 the same day is close.
            let late = try await fixture.store.createBooking(NewBooking(vehicle: seed.vehicle, rider: seed.alice, start: Fixture.at(15, day: 13), end: Fixture.at(16, day: 13)),
                                                              by: Fixture.resident, at: Fixture.now)
            let noShow = try await fixture.store.createBooking(NewBooking(vehicle: seed.vehicle, rider: seed.bob, start: Fixture.at(8, day: 13), end: Fixture.at(9, day: 13),
                                                                          driver: seed.jean), by: Fixture.staff, at: Fixture.now)
            try await fixture.app.test(.router) { client in
                let (status, body) = try await client.send(.post, "\(api)/bookings/\(late.id)/status", as: Fixture.resident, fixture: fixture,
                                                           json: #"{"version": 1, "status": "cancelled", "reason": "malade"}"#)
                #expect(status == .ok, "\(body)")
                let cancelled = try decode(BookingView.self, body)
                #expect(cancelled.status == .lateCancellation)
                #expect((cancelled.feeEntry != nil) == keeps)
                let (absent, absentBody) = try await client.send(.post, "\(api)/bookings/\(noShow.id)/status", as: Fixture.driver, fixture: fixture,
                                                                 json: #"{"version": 1, "status": "no_show", "reason": "personne à l'adresse"}"#)
                #expect(try absent == .ok && (decode(BookingView.self, absentBody).feeEntry != nil) == keeps, "\(absentBody)")
            }
            let balances = try await fixture.store.balances(by: Fixture.staff)
            #expect((balances.accounts.first { $0.account == .tripFees }?.creditCents ?? .zero) == Cents(keeps ? 400 : 0))
        }
    }

    @Test func manyConcurrentRequestsForOneSlotOverARealServer_exactlyOneWins() async throws {
        let fixture = try await Fixture()
        let seed = try await fixture.seed()
        let body = try booking(seed, (10, 0), (11, 0))
        let headers = fixture.headers(Fixture.staff)
        try await fixture.app.test(.live) { client in
            let port = try #require(client.port)
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for _ in 0..<24 {
                    group.addTask {
                        // One connection per request, so they really are in flight together. A 503
                        // (the database stayed locked past its busy timeout on a loaded machine:
                        // nothing written, "try again") is tried again, as a client would.
                        for _ in 0..<5 {
                            let status = try await TestClient.withClient(host: "127.0.0.1", port: port) { connection in
                                try await connection.execute(.init("\(api)/bookings", method: .post, headers: headers, body: ByteBuffer(string: body))).status
                            }
                            guard status == .serviceUnavailable else { return status }
                            try await Task.sleep(for: .seconds(1))
                        }
                        return .serviceUnavailable
                    }
                }
                var all: [HTTPResponse.Status] = []
                for try await status in group { all.append(status) }
                return all
            }
            #expect(statuses.filter { $0 == .created }.count == 1, "\(statuses)")
            #expect(statuses.filter { $0 == .conflict }.count == 23, "\(statuses)")
        }
        let live = try await fixture.database.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM carshare_booking")! }
        #expect(live == 1)
    }

    @Test func twoServersOnOneSQLiteFileStillNeverDoubleBook() async throws {
        // Two pools on the same file stand for two processes: only BEGIN IMMEDIATE keeps them apart.
        let first = try await Fixture()
        let seed = try await first.seed()
        let second = try await Fixture(path: first.settings.database.path)
        let headersA = first.headers(Fixture.staff)
        let headersB = second.headers(Fixture.staff)
        let slots = try (0..<6).map { index in try booking(seed, (8 + index, 0), (9 + index, 30)) }
        try await first.app.test(.live) { clientA in
            try await second.app.test(.live) { clientB in
                let portA = try #require(clientA.port)
                let portB = try #require(clientB.port)
                let results = try await withThrowingTaskGroup(of: (Int, HTTPResponse.Status).self) { group in
                    for round in 0..<4 {
                        for (index, slot) in slots.enumerated() {
                            let (port, headers) = (round + index) % 2 == 0 ? (portA, headersA) : (portB, headersB)
                            group.addTask {
                                try await TestClient.withClient(host: "127.0.0.1", port: port) { connection in
                                    (index, try await connection.execute(.init("\(api)/bookings", method: .post, headers: headers, body: ByteBuffer(string: slot))).status)
                                }
                            }
                        }
                    }
                    var all: [(Int, HTTPResponse.Status)] = []
                    for try await result in group { all.append(result) }
                    return all
                }
                // Slots overlap their neighbours by 30 minutes: whatever the order, no two live bookings overlap.
                #expect(results.allSatisfy { $0.1 == .created || $0.1 == .conflict }, "\(results)")
            }
        }
        let spans = try await first.database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT start_at, end_at FROM carshare_booking WHERE status IN ('requested', 'confirmed') ORDER BY start_at").map {
                TimeSpan(start: Instant(millisecondsSince1970: $0["start_at"]), end: Instant(millisecondsSince1970: $0["end_at"]))!
            }
        }
        #expect(!spans.isEmpty)
        for (a, b) in zip(spans, spans.dropFirst()) { #expect(!a.overlaps(b), "\(a) \(b)") }
    }
}

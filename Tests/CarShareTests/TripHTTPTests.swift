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

@Suite struct TripHTTPTests {
    func trip(key: String?, booking: Int64? = nil, vehicle: Int64? = nil, driver: Int64? = nil, riders: [Int64]? = nil, reason: String? = nil,
              hour: Int = 10, km: (Int64, Int64) = (12_000, 12_018), battery: (Int, Int) = (90, 82), day: Int = 12) throws -> String {
        try json(NewTrip(idempotencyKey: key, booking: booking, vehicle: vehicle, driver: driver, unbookedReason: reason, riders: riders,
                         start: Fixture.at(hour, day: day), end: Fixture.at(hour + 1, day: day), startOdometerKm: km.0, endOdometerKm: km.1,
                         batteryStartPct: battery.0, batteryEndPct: battery.1, incidents: nil))
    }

    @Test func aTripLoggedTwiceWithTheSameKeyIsChargedOnce() async throws {
        let fixture = try await Fixture()
        let seed = try await fixture.seed()
        let booking = try await fixture.store.createBooking(NewBooking(vehicle: seed.vehicle, rider: seed.alice, start: Fixture.at(10), end: Fixture.at(11), driver: seed.jean),
                                                            by: Fixture.staff, at: Fixture.now)
        try await fixture.app.test(.router) { client in
            let body = try trip(key: "jean-2026-03-12-1", booking: booking.id, riders: [seed.alice, seed.bob])
            let first = try await client.execute(uri: "\(api)/trips", method: .post, headers: fixture.headers(Fixture.driver), body: ByteBuffer(string: body)) { $0 }
            #expect(first.status == .created, "\(String(buffer: first.body))")
            let entriesAfterFirst = try fixture.counts()
            // The phone lost the answer and sends it again.
            let retry = try await client.execute(uri: "\(api)/trips", method: .post, headers: fixture.headers(Fixture.driver), body: ByteBuffer(string: body)) { $0 }
            #expect(retry.status == .ok)
            #expect(retry.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
            #expect(String(buffer: retry.body) == String(buffer: first.body))
            #expect(try fixture.counts() == entriesAfterFirst, "nothing booked twice")
            let logged = try decode(TripView.self, String(buffer: first.body))
            #expect(logged.distanceKm == 18 && logged.energyWh == WattHours(4_160) && logged.driver == seed.jean)
            #expect(logged.riders.map(\.feeCents) == [Cents(200), Cents(200)])
            let (_, statementBody) = try await client.send(.get, "\(api)/members/\(seed.alice)/statement", as: Fixture.resident, fixture: fixture)
            let statement = try decode(MemberStatement.self, statementBody)
            #expect(statement.trips.count == 1 && statement.owedCents == Cents(1000), "8 EUR membership + one 2 EUR trip")
            #expect(statement.text.contains("Reste à payer : 10,00 €"))
            let (_, bookingBody) = try await client.send(.get, "\(api)/bookings/\(booking.id)", as: Fixture.staff, fixture: fixture)
            #expect(try decode(BookingView.self, bookingBody).status == .completed)
        }
    }

    @Test func anOdometerTypoIsRefusedWithTheLastReading() async throws {
        let fixture = try await Fixture()
        let seed = try await fixture.seed()
        try await fixture.app.test(.router) { client in
            let (ok, okBody) = try await client.send(.post, "\(api)/trips", as: Fixture.staff, fixture: fixture,
                                                     json: try trip(key: "k1", vehicle: seed.vehicle, driver: seed.jean, riders: [seed.alice], reason: "appel du matin", km: (12_000, 12_045)))
            #expect(ok == .created, "\(okBody)")
            let before = try fixture.counts()
            let (typo, typoBody) = try await client.send(.post, "\(api)/trips", as: Fixture.staff, fixture: fixture,
                                                         json: try trip(key: "k2", vehicle: seed.vehicle, driver: seed.jean, riders: [seed.alice], reason: "courses", hour: 14, km: (1_250, 1_262)))
            #expect(typo == .unprocessableContent)
            let error = try errorDetail(typoBody)
            #expect(error.code == "odometer_below_last_reading" && error.field == "start_odometer_km")
            #expect(error.message.contains("12045 km"), "\(error.message)")
            let (far, farBody) = try await client.send(.post, "\(api)/trips", as: Fixture.staff, fixture: fixture,
                                                       json: try trip(key: "k3", vehicle: seed.vehicle, driver: seed.jean, riders: [seed.alice], reason: "courses", hour: 14, km: (12_045, 21_262)))
            #expect(try far == .unprocessableContent && errorDetail(farBody).code == "distance_too_long")
            // A paper log typed in late must fit between the trips around it.
            let (earlier, earlierBody) = try await client.send(.post, "\(api)/trips", as: Fixture.staff, fixture: fixture,
                                                               json: try trip(key: "k4", vehicle: seed.vehicle, driver: seed.paul, riders: [seed.bob], reason: "papier",
                                                                              hour: 10, km: (12_000, 12_050), day: 11))
            #expect(try earlier == .unprocessableContent && errorDetail(earlierBody).code == "odometer_above_next_reading", "\(earlierBody)")
            #expect(try fixture.counts() == before)
            let (vehicles, vehiclesBody) = try await client.send(.get, "\(api)/vehicles", as: Fixture.driver, fixture: fixture)
            #expect(try vehicles == .ok && decode([VehicleView].self, vehiclesBody).first?.lastOdometerKm == 12_045)
        }
    }

    @Test func driversLogTheirOwnAssignmentsOnly() async throws {
        let fixture = try await Fixture()
        let seed = try await fixture.seed()
        let booking = try await fixture.store.createBooking(NewBooking(vehicle: seed.vehicle, rider: seed.alice, start: Fixture.at(10), end: Fixture.at(11), driver: seed.jean),
                                                            by: Fixture.staff, at: Fixture.now)
        try await fixture.app.test(.router) { client in
            let (status, body) = try await client.send(.post, "\(api)/trips", as: Fixture.otherDriver, fixture: fixture, json: try trip(key: "p1", booking: booking.id))
            #expect(try status == .forbidden && errorDetail(body).code == "forbidden")
            let (mine, _) = try await client.send(.get, "\(api)/bookings", as: Fixture.driver, fixture: fixture)
            #expect(mine == .ok)
            let (_, jeanList) = try await client.send(.get, "\(api)/bookings", as: Fixture.driver, fixture: fixture)
            let (_, paulList) = try await client.send(.get, "\(api)/bookings", as: Fixture.otherDriver, fixture: fixture)
            #expect(try decode([BookingView].self, jeanList).map(\.id) == [booking.id])
            #expect(try decode([BookingView].self, paulList).isEmpty)
            // A ride without a booking is a paper log: staff or the association type it in, with its reason.
            let (unbooked, unbookedBody) = try await client.send(.post, "\(api)/trips", as: Fixture.otherDriver, fixture: fixture,
                                                                 json: try trip(key: "p2", vehicle: seed.vehicle, riders: [seed.bob], hour: 15))
            #expect(try unbooked == .forbidden && errorDetail(unbookedBody).field == "booking")
            let (noReason, noReasonBody) = try await client.send(.post, "\(api)/trips", as: Fixture.association, fixture: fixture,
                                                                 json: try trip(key: "p3", vehicle: seed.vehicle, driver: seed.paul, riders: [seed.bob], hour: 15))
            #expect(try noReason == .badRequest && errorDetail(noReasonBody).field == "unbooked_reason")
        }
    }

    /// Issue 14, defect 8: a driver logs a ride only on a booking assigned to them (not on one
    /// nobody was assigned to, which used to complete it with the logger as driver and charge the
    /// rider), never a ride without a booking (a paper log is typed in by staff or the
    /// association), and a driver who was deactivated logs nothing, nor is named by staff.
    @Test func aDriverLogsRidesOnlyOnTheirOwnAssignmentsAndAnInactiveDriverNone() async throws {
        let fixture = try await Fixture()
        let seed = try await fixture.seed()
        let unassigned = try await fixture.store.createBooking(NewBooking(vehicle: seed.vehicle, rider: seed.alice, start: Fixture.at(10), end: Fixture.at(11)),
                                                               by: Fixture.staff, at: Fixture.now)
        let assigned = try await fixture.store.createBooking(NewBooking(vehicle: seed.vehicle, rider: seed.bob, start: Fixture.at(14), end: Fixture.at(15), driver: seed.jean),
                                                             by: Fixture.staff, at: Fixture.now)
        try await fixture.app.test(.router) { client in
            let before = try fixture.counts()
            let (status, body) = try await client.send(.post, "\(api)/trips", as: Fixture.driver, fixture: fixture, json: try trip(key: "j1", booking: unassigned.id))
            #expect(try status == .forbidden && errorDetail(body).field == "booking", "\(body)")
            let (paper, paperBody) = try await client.send(.post, "\(api)/trips", as: Fixture.driver, fixture: fixture,
                                                           json: try trip(key: "j2", vehicle: seed.vehicle, riders: [seed.alice], reason: "carnet papier", hour: 16, km: (12_000, 12_010)))
            #expect(try paper == .forbidden && errorDetail(paperBody).field == "booking", "\(paperBody)")
            #expect(try fixture.counts() == before, "nothing completed, nobody charged")
            let (_, bookingBody) = try await client.send(.get, "\(api)/bookings/\(unassigned.id)", as: Fixture.staff, fixture: fixture)
            let booking = try decode(BookingView.self, bookingBody)
            #expect(booking.status == .requested && booking.driver == nil)

            // Jean stops driving: he logs nothing more, and staff cannot name him either.
            let jean = try await fixture.store.drivers(by: Fixture.staff).first { $0.id == seed.jean }!
            let (patched, patchedBody) = try await client.send(.patch, "\(api)/drivers/\(seed.jean)", as: Fixture.staff, fixture: fixture,
                                                               json: #"{"version": \#(jean.version), "active": false}"#)
            #expect(patched == .ok, "\(patchedBody)")
            let (own, ownBody) = try await client.send(.post, "\(api)/trips", as: Fixture.driver, fixture: fixture, json: try trip(key: "j3", booking: assigned.id, hour: 14))
            #expect(try own == .unprocessableContent && errorDetail(ownBody).code == "driver_not_allowed", "\(ownBody)")
            let (named, namedBody) = try await client.send(.post, "\(api)/trips", as: Fixture.staff, fixture: fixture,
                                                           json: try trip(key: "j4", vehicle: seed.vehicle, driver: seed.jean, riders: [seed.alice], reason: "carnet papier", hour: 16))
            #expect(try named == .unprocessableContent && errorDetail(namedBody).code == "driver_not_allowed" && errorDetail(namedBody).field == "driver", "\(namedBody)")
            let (staffOnBooking, staffOnBookingBody) = try await client.send(.post, "\(api)/trips", as: Fixture.staff, fixture: fixture,
                                                                             json: try trip(key: "j5", booking: assigned.id, hour: 14))
            #expect(try staffOnBooking == .unprocessableContent && errorDetail(staffOnBookingBody).code == "driver_not_allowed", "the booking's driver is inactive")
            let run = try json(NewTrip(idempotencyKey: "j6", vehicle: seed.vehicle, start: Fixture.at(17), end: Fixture.at(18), startOdometerKm: 12_000, endOdometerKm: 12_005,
                                       batteryStartPct: 80, batteryEndPct: 78, incidents: nil, kind: .garage, purpose: "contrôle technique"))
            let (garage, garageBody) = try await client.send(.post, "\(api)/trips", as: Fixture.driver, fixture: fixture, json: run)
            #expect(try garage == .unprocessableContent && errorDetail(garageBody).code == "driver_not_allowed", "\(garageBody)")
            #expect(try fixture.counts().filter { $0.key != "driver_versions" } == before.filter { $0.key != "driver_versions" })

            // Paul, assigned and active, logs his own assignment; staff type in a paper log for him.
            let (paulBooking, _) = try await client.send(.post, "\(api)/bookings/\(unassigned.id)/status", as: Fixture.staff, fixture: fixture,
                                                         json: #"{"status": "confirmed", "driver": \#(seed.paul), "version": \#(booking.version)}"#)
            #expect(paulBooking == .ok)
            let (mine, mineBody) = try await client.send(.post, "\(api)/trips", as: Fixture.otherDriver, fixture: fixture, json: try trip(key: "p1", booking: unassigned.id))
            #expect(mine == .created, "\(mineBody)")
            let (typed, typedBody) = try await client.send(.post, "\(api)/trips", as: Fixture.staff, fixture: fixture,
                                                           json: try trip(key: "p2", vehicle: seed.vehicle, driver: seed.paul, riders: [seed.bob], reason: "carnet papier",
                                                                          hour: 16, km: (12_018, 12_030)))
            #expect(typed == .created, "\(typedBody)")
        }
    }

    @Test func chargingTripListSocialTransportFlagsAndThePrefectReport() async throws {
        var settings = CarShareSettings()
        settings.socialTransport.enabled = true
        let fixture = try await Fixture(carshare: settings)
        let seed = try await fixture.seed()
        _ = try await fixture.store.recordPayment(NewPayment(idempotencyKey: "cash-1", member: seed.alice, amountCents: Cents(3000), method: .cash, on: LocalDate(year: 2026, month: 3, day: 11)!), by: Fixture.staff, at: Fixture.now)
        let short = try await fixture.store.logTrip(try decode(NewTrip.self, try trip(key: "s1", vehicle: seed.vehicle, driver: seed.jean, riders: [seed.alice],
                                                                                    reason: "pharmacie", km: (12_000, 12_004))), by: Fixture.staff, at: Fixture.now)
        #expect(short.trip.flags == [.participationTooHigh], "2 EUR for 4 km is above 0.32 EUR/km")
        let long = try await fixture.store.logTrip(try decode(NewTrip.self, try trip(key: "s2", vehicle: seed.vehicle, driver: seed.paul, riders: [seed.bob, seed.chloe],
                                                                                   reason: "hôpital", hour: 13, km: (12_004, 12_124))), by: Fixture.staff, at: Fixture.now)
        #expect(long.trip.flags == [.tooLong])
        let charge = try await fixture.store.logCharging(NewCharging(vehicle: seed.vehicle, at: Fixture.at(18), energyWh: WattHours(21_500), costCents: Cents(645), method: .cash),
                                                         by: Fixture.driver, at: Fixture.now)
        #expect(charge.entry != nil)
        try await fixture.app.test(.router) { client in
            let (_, listBody) = try await client.send(.get, "\(api)/reports/trips?from=2026-03-01&to=2026-03-31", as: Fixture.staff, fixture: fixture)
            let list = try decode(TripList.self, listBody)
            #expect(list.trips.count == 2 && list.totalKm == 124 && list.chargedEnergyWh == WattHours(21_500) && list.chargingCostCents == Cents(645))
            #expect(list.flaggedTrips == 2)
            let (_, prefectBody) = try await client.send(.get, "\(api)/reports/prefect?year=2026", as: Fixture.association, fixture: fixture)
            let prefect = try decode(PrefectReport.self, prefectBody)
            #expect(prefect.trips == 2 && prefect.drivers == 2 && prefect.beneficiaries == 3 && prefect.participation == Cents(600) && prefect.meanDistanceTenthsKm == 620)
            let (_, income) = try await client.send(.get, "\(api)/reports/income-statement?month=2026-03", as: Fixture.staff, fixture: fixture)
            let statement = try decode(IncomeStatement.self, income)
            #expect(statement.totalIncomeCents == Cents(2400 + 600) && statement.totalExpensesCents == Cents(645))
            let (_, cash) = try await client.send(.get, "\(api)/reports/cash-book?from=2026-03-01&to=2026-03-31", as: Fixture.staff, fixture: fixture)
            #expect(try decode(CashBook.self, cash).closingCents == Cents(3000 - 645))
        }
    }

    @Test func aMembershipPaidInDecemberForNextYearIsDeferredIncome() async throws {
        let fixture = try await Fixture()
        let member = try await fixture.store.addMember(NewMember(name: "Émile Dubois"), by: Fixture.staff, at: Fixture.now)
        let december = Instant.parseRFC3339("2026-12-10T10:00:00Z")!
        let membership = try await fixture.store.buyMembership(member: member.id, NewMembership(start: LocalDate(year: 2027, month: 1, day: 1)!), by: Fixture.staff, at: december)
        #expect(membership.deferred && membership.purchasedOn == LocalDate(year: 2026, month: 12, day: 10)! && membership.label == "Adhésion année 2027")
        await expectHubError("membership_exists", field: "start") {
            _ = try await fixture.store.buyMembership(member: member.id, NewMembership(start: LocalDate(year: 2027, month: 6, day: 1)!), by: Fixture.staff, at: december)
        }
        var balances = try await fixture.store.balances(by: Fixture.staff)
        #expect(balances.accounts.first { $0.account == .deferredIncome }?.balanceCents == Cents(-800))
        #expect(balances.accounts.first { $0.account == .memberships } == nil)
        let early = try await fixture.store.recognizeDeferredMemberships(on: LocalDate(year: 2026, month: 12, day: 31)!, by: Fixture.staff, at: december)
        #expect(early.entries.isEmpty)
        let january = try await fixture.store.recognizeDeferredMemberships(on: LocalDate(year: 2027, month: 1, day: 2)!, by: Fixture.staff, at: december)
        #expect(january.entries.count == 1 && january.entries[0].date == LocalDate(year: 2027, month: 1, day: 1)!)
        let again = try await fixture.store.recognizeDeferredMemberships(on: LocalDate(year: 2027, month: 2, day: 1)!, by: Fixture.staff, at: december)
        #expect(again.entries.isEmpty, "once each")
        balances = try await fixture.store.balances(by: Fixture.staff)
        #expect(balances.accounts.first { $0.account == .deferredIncome }?.balanceCents == .zero)
        #expect(balances.accounts.first { $0.account == .memberships }?.balanceCents == Cents(-800))
    }

    @Test func feesAreTakenFromPrepaidCreditFirstWhenTheSettingSaysSo() async throws {
        for prepaidFirst in [true, false] {
            var settings = CarShareSettings()
            settings.usePrepaidCreditFirst = prepaidFirst
            let fixture = try await Fixture(carshare: settings)
            let member = try await fixture.store.addMember(NewMember(name: "Fanny"), by: Fixture.staff, at: Fixture.now)
            _ = try await fixture.store.recordPayment(NewPayment(idempotencyKey: "p", member: member.id, amountCents: Cents(2000), method: .cash), by: Fixture.staff, at: Fixture.now)
            _ = try await fixture.store.buyMembership(member: member.id, NewMembership(), by: Fixture.staff, at: Fixture.now)
            let statement = try await fixture.store.statement(member: member.id, by: Fixture.staff)
            #expect(statement.balanceCents == Cents(1200))
            #expect(statement.owedCents == (prepaidFirst ? .zero : Cents(800)))
            #expect(statement.creditCents == (prepaidFirst ? Cents(1200) : Cents(2000)))
        }
    }
}

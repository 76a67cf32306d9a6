import CarShare
import CarShareCore
import Foundation
import GRDB
import HubCore
import HubTestSupport
import Hummingbird
import HummingbirdTesting
import Shared
import Testing
@testable import HubApp

/// The car's whole logbook (issue 15): the association's own runs, charging runs and the garage
/// are lines like the members' rides, the odometer's gaps show until a line or a note explains
/// them, and the month prints as the paper sheet does. The store scenarios run on SQLite and PostgreSQL.
@Suite struct LogbookTests {
    static let api = "/api/v1/carshare"

    func line(_ key: String, kind: TripKind, vehicle: Int64, driver: Int64? = nil, purpose: String? = nil, households: Int? = nil, dwellings: [String]? = nil,
              day: Int = 12, hour: Int, km: (Int64, Int64), charged: Int64? = nil, cost: Cents? = nil, method: PaymentMethod? = nil) -> NewTrip {
        NewTrip(idempotencyKey: key, vehicle: vehicle, driver: driver, start: Fixture.at(hour, day: day), end: Fixture.at(hour + 1, day: day),
                startOdometerKm: km.0, endOdometerKm: km.1, batteryStartPct: 80, batteryEndPct: 70, kind: kind, purpose: purpose,
                householdsServed: households, dwellingsServed: dwellings, chargedWh: charged, chargeCostCents: cost, chargeMethod: method)
    }

    @Test(arguments: Backend.allCases) func anAssociationRunWithNoRiderIsLoggedChargesNobodyAndCountsInTheKilometresByUse(backend: Backend) async throws {
        try await withStoreFixture(backend) { fixture in
            let seed = try await fixture.seed()
            let before = try await fixture.counts()
            let (run, _) = try await fixture.carShare.logTrip(line("tournee-1", kind: .associationRun, vehicle: seed.vehicle, driver: seed.jean,
                                                                purpose: "Livraison de pain et d'eau", households: 7, dwellings: ["OUT-A-01", "OUT-A-02"],
                                                                hour: 9, km: (12_000, 12_023)), by: Fixture.association, at: Fixture.now)
            #expect(run.kind == .associationRun && run.riders.isEmpty && run.householdsServed == 7 && run.dwellingsServed == ["OUT-A-01", "OUT-A-02"])
            let after = try await fixture.counts()
            #expect(after["carshare_trip"] == before["carshare_trip"]! + 1)
            #expect(after["carshare_trip_rider"] == before["carshare_trip_rider"], "nobody rides")
            #expect(after["carshare_entry"] == before["carshare_entry"], "nobody is charged: no ledger entry")

            // A ride the same day, then the month's figures: kilometres by kind of use, deliveries.
            let booking = try await fixture.carShare.createBooking(NewBooking(vehicle: seed.vehicle, rider: seed.alice, start: Fixture.at(14), end: Fixture.at(15), driver: seed.jean),
                                                                by: Fixture.staff, at: Fixture.now)
            _ = try await fixture.carShare.logTrip(NewTrip(idempotencyKey: "ride-1", booking: booking.id, start: Fixture.at(14), end: Fixture.at(15),
                                                        startOdometerKm: 12_023, endOdometerKm: 12_041, batteryStartPct: 70, batteryEndPct: 60),
                                                by: Fixture.driver, at: Fixture.now)
            let logbook = try await fixture.carShare.logbook(vehicle: seed.vehicle, month: "2026-03", by: Fixture.association)
            #expect(logbook.lines.map(\.trip.kind) == [.associationRun, .ride])
            #expect(logbook.lines.map(\.driverName) == ["Jean", "Jean"])
            #expect(logbook.gaps.isEmpty, "the lines meet: 12,000 → 12,023 → 12,041")
            let byKind = Dictionary(uniqueKeysWithValues: logbook.figures.byKind.map { ($0.kind, $0.kilometres) })
            #expect(byKind == [.ride: 18, .associationRun: 23, .chargingRun: 0, .garage: 0])
            #expect(logbook.figures.deliveryRuns == 1 && logbook.figures.householdsServed == 7 && logbook.figures.totalKm == 41)

            // The préfet's report counts the ride only, and says so.
            let prefect = try await fixture.carShare.prefectReport(year: 2026, by: Fixture.association)
            #expect(prefect.trips == 1 && prefect.totalKilometres == 18 && prefect.beneficiaries == 1)
            #expect(prefect.frenchText.contains("Seuls les trajets d'adhérents sont comptés"))
            // The activity report has the association's own mission.
            let activity = try await fixture.carShare.activityReport(from: LocalDate(year: 2026, month: 3, day: 1)!, to: LocalDate(year: 2026, month: 3, day: 31)!,
                                                                  by: Fixture.association)
            #expect(activity.figures.deliveryRuns == 1 && activity.figures.householdsServed == 7)
            // And the association's monthly figures carry the car's use beside the money.
            let month = try await fixture.carShare.incomeStatement(month: "2026-03", by: Fixture.association)
            #expect(month.carUse == logbook.figures)
            #expect(activity.frenchText.contains("Tournées de l'association : 1 (23 km), dont 1 livraison à 7 foyers"))
        }
    }

    @Test(arguments: Backend.allCases) func aChargingRunRecordsItsEnergyAndCostInTheChargingLogAndTheLedger(backend: Backend) async throws {
        try await withStoreFixture(backend) { fixture in
            let seed = try await fixture.seed()
            let (run, _) = try await fixture.carShare.logTrip(line("recharge-1", kind: .chargingRun, vehicle: seed.vehicle, driver: seed.paul, purpose: "borne de la mairie",
                                                                hour: 10, km: (12_000, 12_006), charged: 18_500, cost: Cents(462), method: .transfer),
                                                           by: Fixture.staff, at: Fixture.now)
            let charge = try #require(run.charging)
            #expect(charge.energyWh == WattHours(18_500) && charge.costCents == Cents(462) && charge.entry != nil)
            let lines = try await fixture.allEntries().first { $0.number == charge.entry }?.lines.map { "\($0.account.rawValue) \($0.amount.value)" }
            #expect(lines == ["6061 462", "512 -462"], "the charge is an expense paid by transfer from the bank")
            let logbook = try await fixture.carShare.logbook(vehicle: seed.vehicle, month: "2026-03", by: Fixture.driver)
            #expect(logbook.figures.chargedWh == 18_500 && logbook.figures.chargingCostCents == Cents(462))
            // 4.62 EUR over 6 km: 77.00 EUR per 100 km.
            #expect(logbook.figures.chargingCostPer100KmCents == Cents(7_700))

            // What a charging run must and must not carry.
            await expectHubError("missing_field", field: "charged_wh") {
                _ = try await fixture.carShare.logTrip(line("recharge-2", kind: .chargingRun, vehicle: seed.vehicle, driver: seed.paul, hour: 12, km: (12_006, 12_010)),
                                                    by: Fixture.staff, at: Fixture.now)
            }
            await expectHubError("missing_field", field: "charge_method") {
                _ = try await fixture.carShare.logTrip(line("recharge-3", kind: .chargingRun, vehicle: seed.vehicle, driver: seed.paul, hour: 12, km: (12_006, 12_010),
                                                         charged: 10_000, cost: Cents(300)), by: Fixture.staff, at: Fixture.now)
            }
            await expectHubError("charge_on_charging_run_only", field: "charged_wh") {
                _ = try await fixture.carShare.logTrip(line("garage-1", kind: .garage, vehicle: seed.vehicle, driver: seed.paul, purpose: "pneus", hour: 12, km: (12_006, 12_010),
                                                         charged: 10_000), by: Fixture.staff, at: Fixture.now)
            }
            await expectHubError("purpose_required", field: "purpose") {
                _ = try await fixture.carShare.logTrip(line("garage-2", kind: .garage, vehicle: seed.vehicle, driver: seed.paul, hour: 12, km: (12_006, 12_010)),
                                                    by: Fixture.staff, at: Fixture.now)
            }
            await expectHubError("riders_on_ride_only", field: "riders") {
                var input = line("tournee-x", kind: .associationRun, vehicle: seed.vehicle, driver: seed.paul, purpose: "courses", hour: 12, km: (12_006, 12_010))
                input.riders = [seed.alice]
                _ = try await fixture.carShare.logTrip(input, by: Fixture.staff, at: Fixture.now)
            }
        }
    }

    @Test(arguments: Backend.allCases) func anOdometerGapShowsUntilATypedInLineOrANoteExplainsIt(backend: Backend) async throws {
        try await withStoreFixture(backend) { fixture in
            let seed = try await fixture.seed()
            // 12,000 → 12,030 on the 10th; the next line starts at 12,075 on the 14th: 45 km nobody wrote down.
            _ = try await fixture.carShare.logTrip(line("l1", kind: .associationRun, vehicle: seed.vehicle, driver: seed.jean, purpose: "courses du club", day: 10, hour: 9,
                                                     km: (12_000, 12_030)), by: Fixture.association, at: Fixture.now.adding(seconds: 86_400 * 3))
            _ = try await fixture.carShare.logTrip(line("l2", kind: .garage, vehicle: seed.vehicle, driver: seed.jean, purpose: "révision", day: 14, hour: 9,
                                                     km: (12_075, 12_090)), by: Fixture.association, at: Fixture.now.adding(seconds: 86_400 * 3))
            var logbook = try await fixture.carShare.logbook(vehicle: seed.vehicle, month: "2026-03", by: Fixture.association)
            #expect(logbook.gaps.count == 1)
            let gap = try #require(logbook.gaps.first)
            #expect(gap.fromKm == 12_030 && gap.toKm == 12_075 && gap.kilometres == 45 && gap.explanation == nil)
            #expect(LocalTimeZone.paris.localDate(of: try #require(gap.after)) == LocalDate(year: 2026, month: 3, day: 10))
            #expect(LocalTimeZone.paris.localDate(of: gap.before) == LocalDate(year: 2026, month: 3, day: 14))
            #expect(logbook.figures.unexplainedKm == 45)
            #expect(LogbookSheet.html(logbook).contains("Écart de compteur non expliqué"))

            // A paper log typed in later fills part of it (12,030 → 12,060 on the 12th); 15 km remain.
            _ = try await fixture.carShare.logTrip(line("paper-p3-l2", kind: .associationRun, vehicle: seed.vehicle, driver: seed.jean, purpose: "livraison de colis",
                                                     households: 3, day: 12, hour: 15, km: (12_030, 12_060)), by: Fixture.staff, at: Fixture.now.adding(seconds: 86_400 * 3))
            logbook = try await fixture.carShare.logbook(vehicle: seed.vehicle, month: "2026-03", by: Fixture.association)
            #expect(logbook.gaps.map(\.kilometres) == [15])
            // A note explains the rest; the gap stays on the page, explained.
            await expectHubError("forbidden", field: "role") {
                _ = try await fixture.carShare.addOdometerNote(vehicle: seed.vehicle, NewOdometerNote(fromKm: 12_060, toKm: 12_075, note: "essai"), by: Fixture.driver, at: Fixture.now)
            }
            _ = try await fixture.carShare.addOdometerNote(vehicle: seed.vehicle, NewOdometerNote(fromKm: 12_060, toKm: 12_075, note: "aller-retour au garage non noté"),
                                                        by: Fixture.association, at: Fixture.now)
            logbook = try await fixture.carShare.logbook(vehicle: seed.vehicle, month: "2026-03", by: Fixture.association)
            #expect(logbook.gaps.map(\.explanation) == ["aller-retour au garage non noté"])
            #expect(logbook.figures.unexplainedKm == 0)
        }
    }

    @Test(arguments: Backend.allCases) func theRoleRulesAreThoseOfTrips(backend: Backend) async throws {
        try await withStoreFixture(backend) { fixture in
            let seed = try await fixture.seed()
            // A driver logs their own runs; not another driver's; a resident logs nothing.
            _ = try await fixture.carShare.logTrip(line("d1", kind: .associationRun, vehicle: seed.vehicle, purpose: "livraison", hour: 9, km: (12_000, 12_010)),
                                                by: Fixture.driver, at: Fixture.now)
            await expectHubError("forbidden", field: "driver") {
                _ = try await fixture.carShare.logTrip(line("d2", kind: .associationRun, vehicle: seed.vehicle, driver: seed.paul, purpose: "livraison", hour: 11, km: (12_010, 12_020)),
                                                    by: Fixture.driver, at: Fixture.now)
            }
            await expectHubError("forbidden", field: "role") {
                _ = try await fixture.carShare.logTrip(line("r1", kind: .garage, vehicle: seed.vehicle, driver: seed.paul, purpose: "lavage", hour: 11, km: (12_010, 12_020)),
                                                    by: Fixture.resident, at: Fixture.now)
            }
            // The association and staff log anyone's; the logbook is read by drivers, not by residents.
            _ = try await fixture.carShare.logTrip(line("a1", kind: .garage, vehicle: seed.vehicle, driver: seed.paul, purpose: "lavage", hour: 11, km: (12_010, 12_020)),
                                                by: Fixture.association, at: Fixture.now)
            _ = try await fixture.carShare.logbook(vehicle: seed.vehicle, month: "2026-03", by: Fixture.driver)
            await expectHubError("forbidden", field: "role") { _ = try await fixture.carShare.logbook(vehicle: seed.vehicle, month: "2026-03", by: Fixture.resident) }
            // The same odometer rules as trips: a line cannot start below the last reading.
            await expectHubError("odometer_below_last_reading", field: "start_odometer_km") {
                _ = try await fixture.carShare.logTrip(line("a2", kind: .garage, vehicle: seed.vehicle, driver: seed.paul, purpose: "lavage", hour: 14, km: (12_015, 12_030)),
                                                    by: Fixture.association, at: Fixture.now)
            }
        }
    }

    @Test func overHTTPTheLogbookIsJSONOrAPrintablePage() async throws {
        let fixture = try await Fixture()
        let seed = try await fixture.seed()
        try await fixture.app.test(.router) { client in
            let body = try json(line("h1", kind: .associationRun, vehicle: seed.vehicle, purpose: "Livraison <eau>", households: 4, hour: 9, km: (12_000, 12_012)))
            let (status, _) = try await client.send(.post, "\(Self.api)/trips", as: Fixture.driver, fixture: fixture, json: body)
            #expect(status == .created)
            let (jsonStatus, jsonBody) = try await client.send(.get, "\(Self.api)/vehicles/\(seed.vehicle)/logbook?month=2026-03", as: Fixture.association, fixture: fixture)
            #expect(jsonStatus == .ok)
            let logbook = try decode(LogbookView.self, jsonBody)
            #expect(logbook.lines.count == 1 && logbook.figures.householdsServed == 4)
            let (htmlStatus, html) = try await client.send(.get, "\(Self.api)/vehicles/\(seed.vehicle)/logbook?month=2026-03&format=html", as: Fixture.association, fixture: fixture)
            #expect(htmlStatus == .ok)
            #expect(html.contains("<html lang=\"fr\">") && html.contains("Carnet de bord — Zoé") && html.contains("mars 2026"))
            #expect(html.contains("Livraison &lt;eau&gt; — 4 foyers servis"), "escaped, in plain French")
            let (forbidden, _) = try await client.send(.get, "\(Self.api)/vehicles/\(seed.vehicle)/logbook?month=2026-03", as: Fixture.resident, fixture: fixture)
            #expect(forbidden == .forbidden)
            let (bad, badBody) = try await client.send(.get, "\(Self.api)/vehicles/\(seed.vehicle)/logbook?month=2026-13", as: Fixture.association, fixture: fixture)
            #expect(bad == .badRequest)
            #expect(try errorDetail(badBody).field == "month")
            let (noted, _) = try await client.send(.post, "\(Self.api)/vehicles/\(seed.vehicle)/odometer-notes", as: Fixture.association, fixture: fixture,
                                                   json: #"{"from_km": 12012, "to_km": 12020, "note": "oubli"}"#)
            #expect(noted == .created)
            let (activity, text) = try await client.send(.get, "\(Self.api)/reports/activity?from=2026-03-01&to=2026-03-31&format=text", as: Fixture.association, fixture: fixture)
            #expect(activity == .ok && text.contains("dont 1 livraison à 4 foyers"))
        }
    }
}

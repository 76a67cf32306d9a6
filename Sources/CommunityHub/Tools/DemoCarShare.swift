import CarShare
import CarShareCore
import EnergyCore
import EnergyHub
import Foundation
import HubCore
import Shared
import HubApp

/// The demo's car-share, SIMULATED like the rest: one car, a volunteer driver tied to the
/// `demo-driver` login, members of the DEMO-OUTREAU estate (the demo resident among them) with the
/// year's membership, trips on the simulated weekdays logged through the same store the HTTP routes
/// use (so every fee, payment and ledger entry follows the real rules), and bookings to come.
enum DemoCarShare {
    struct Summary {
        var vehicle: String
        var members: Int
        var residentMember: Int64
        /// What this run added; nil when the car-share was kept from an earlier run (`demo --keep`).
        var added: (trips: Int, payments: Int, bookingsAhead: Int)?
        var balances: BalancesReport
    }

    static let plate = "DEMO-001"

    static let people: [(name: String, dwelling: String)] = [
        ("DEMO Josiane (simulée)", DemoData.residentDwelling),
        ("DEMO Marcel (simulé)", "DEMO-OUT-A-04"),
        ("DEMO Fatima (simulée)", "DEMO-OUT-A-09"),
        ("DEMO Gérard (simulé)", "DEMO-OUT-B-02"),
        ("DEMO Yvette (simulée)", "DEMO-OUT-B-11"),
        ("DEMO Karim (simulé)", "DEMO-OUT-C-05"),
        ("DEMO Monique (simulée)", "DEMO-OUT-C-14"),
        ("DEMO Bernard (simulé)", "DEMO-OUT-C-17"),
    ]

    static let purposes = [
        "Courses au marché de Boulogne", "Rendez-vous médical à Outreau", "Pharmacie", "France Travail",
        "Visite familiale au Portel", "Mairie d'Outreau", "Hôpital de Boulogne-sur-Mer", "Banque alimentaire",
    ]

    /// Fills the car-share from `firstDay` to `now`; `driverLogin` is the volunteer's hub user.
    static func populate(store: any CarShareStore, firstDay: LocalDate, now: Instant, driverLogin: String) async throws -> Summary {
        let staff = Identity(name: "demo-staff", role: .staff)
        let zone = LocalTimeZone.paris
        let today = zone.localDate(of: now)
        var random = SeededGenerator(seed: UInt64(firstDay.daysSince1970))
        func at(_ day: LocalDate, _ hour: Int, _ minute: Int = 0) -> Instant {
            zone.instants(of: LocalDateTime(date: day, hour: hour, minute: minute)).first ?? zone.startOfDay(day).adding(seconds: Int64(hour) * 3600)
        }

        // `demo --keep`: the car-share of the earlier run stays as it was.
        if let kept = try await store.vehicles(by: staff).first(where: { $0.plate == plate }) {
            let members = try await store.members(by: staff).filter { $0.name.hasPrefix("DEMO ") }
            guard let resident = members.first(where: { $0.dwelling == DemoData.residentDwelling }) else {
                throw HubError.configuration("the kept demo database has the demo car but not the demo resident's membership: run the demo without --keep")
            }
            return Summary(vehicle: kept.name, members: members.count, residentMember: resident.id, added: nil, balances: try await store.balances(by: staff))
        }
        let odometerStart: Int64 = 18_240
        let vehicle = try await store.addVehicle(NewVehicle(name: "DEMO Renault Zoé (simulée)", plate: plate, batteryCapacityWh: WattHours(52_000),
                                                            initialOdometerKm: odometerStart), by: staff)
        let driver = try await store.addDriver(NewDriver(name: "DEMO Michel, bénévole (simulé)", user: driverLogin, phone: "03 21 00 00 00",
                                                         licenceCheckedOn: firstDay.advanced(by: -40), trainedOn: firstDay.advanced(by: -60)), by: staff)

        // Members, each with the membership of every calendar year the demo covers, paid in cash or by cheque.
        var members: [Int64] = []
        var payments = 0
        let years = Set([firstDay.year, today.year]).sorted()
        for (index, person) in people.enumerated() {
            let member = try await store.addMember(NewMember(name: person.name, dwelling: person.dwelling), by: staff, at: now)
            members.append(member.id)
            for year in years {
                let membership = try await store.buyMembership(member: member.id, NewMembership(start: LocalDate(year: year, month: 1, day: 1), on: firstDay),
                                                               by: staff, at: now)
                _ = try await store.recordPayment(NewPayment(idempotencyKey: "demo-membership-\(member.id)-\(year)", member: member.id,
                                                             amountCents: membership.feeCents, method: index % 3 == 2 ? .cheque : .cash, on: firstDay,
                                                             note: "Adhésion (démo simulée)"), by: staff, at: now)
                payments += 1
            }
        }

        // Trips: one or two a day from Monday to Saturday up to yesterday, booked with the driver, then logged.
        var odometer = odometerStart
        var battery = 90
        var trips = 0
        var day = firstDay
        while day < today {
            let weekday = Int((day.daysSince1970 + 3) % 7)  // 0 = Monday
            if weekday < 6 {
                for slot in 0..<(1 + Int(random.next() % 2)) {
                    let rider = members[Int(random.next() % UInt64(members.count))]
                    let start = at(day, slot == 0 ? 9 : 14, 30)
                    let end = start.adding(seconds: Int64(90 + Int(random.next() % 4) * 15) * 60)
                    let booking = try await store.createBooking(NewBooking(vehicle: vehicle.id, rider: rider, start: start, end: end,
                                                                           purpose: purposes[Int(random.next() % UInt64(purposes.count))], driver: driver.id),
                                                                by: staff, at: start.adding(seconds: -2 * 86_400))
                    let distance = Int64(6 + random.next() % 30)
                    if battery < 35 {
                        // A charging run: 4 km to the public charging point and back, before the ride.
                        let chargedWh = Int64(95 - battery) * 520
                        _ = try await store.logTrip(NewTrip(idempotencyKey: "demo-charge-\(booking.id)", vehicle: vehicle.id, driver: driver.id,
                                                            start: start.adding(seconds: -7200), end: start.adding(seconds: -3600),
                                                            startOdometerKm: odometer, endOdometerKm: odometer + 4, batteryStartPct: battery, batteryEndPct: 95,
                                                            kind: .chargingRun, purpose: "Borne publique (démo simulée)", chargedWh: chargedWh,
                                                            chargeCostCents: Cents(chargedWh * 18 / 1000), chargeMethod: .transfer), by: staff, at: start)
                        odometer += 4
                        battery = 95
                    }
                    let used = Int(distance) / 2 + 1
                    let logged = try await store.logTrip(NewTrip(idempotencyKey: "demo-trip-\(booking.id)", booking: booking.id, driver: driver.id, start: start, end: end,
                                                        startOdometerKm: odometer, endOdometerKm: odometer + distance,
                                                        batteryStartPct: battery, batteryEndPct: battery - used), by: staff, at: end)
                    odometer += distance
                    battery -= used
                    trips += 1
                    // Most riders pay the driver the trip fee (2 EUR) in cash at once; a few settle later.
                    if random.next() % 4 != 0, let fee = logged.trip.riders.first?.feeCents, fee > .zero {
                        _ = try await store.recordPayment(NewPayment(idempotencyKey: "demo-fare-\(booking.id)", member: rider, amountCents: fee,
                                                                     method: .cash, on: day, note: "Payé au chauffeur (démo simulée)"), by: staff, at: end)
                        payments += 1
                    }
                }
            }
            // Wednesdays: the association's delivery round (bread and water for elderly residents), no rider, no fee.
            if weekday == 2 {
                let start = at(day, 17, 0)
                let distance = Int64(12 + random.next() % 10)
                let used = Int(distance) / 2 + 1
                _ = try await store.logTrip(NewTrip(idempotencyKey: "demo-round-\(day)", vehicle: vehicle.id, driver: driver.id, start: start,
                                                    end: start.adding(seconds: 5400), startOdometerKm: odometer, endOdometerKm: odometer + distance,
                                                    batteryStartPct: battery, batteryEndPct: battery - used, kind: .associationRun,
                                                    purpose: "Livraison de pain et d'eau (démo simulée)", householdsServed: 5 + Int(random.next() % 6)),
                                            by: staff, at: start.adding(seconds: 5400))
                odometer += distance
                battery -= used
                trips += 1
            }
            day = day.advanced(by: 1)
        }

        // Bookings to come: two confirmed with the driver, one still waiting for a driver.
        var ahead = 0
        for offset in 1...3 {
            let date = today.advanced(by: offset)
            let start = at(date, 10)
            _ = try await store.createBooking(NewBooking(vehicle: vehicle.id, rider: members[offset % members.count], start: start, end: start.adding(seconds: 7200),
                                                         purpose: purposes[offset], driver: offset == 3 ? nil : driver.id), by: staff, at: now)
            ahead += 1
        }
        return Summary(vehicle: vehicle.name, members: members.count, residentMember: members[0], added: (trips, payments, ahead),
                       balances: try await store.balances(by: staff))
    }
}

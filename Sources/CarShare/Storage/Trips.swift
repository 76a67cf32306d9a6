import CarShareCore
import Foundation
import GRDB
import HubCore
import Shared

extension SQLiteCarShareStore {
    /// Logs a use of the car once per idempotency key, all in one transaction: a ride (checks the
    /// booking and riders, completes the booking, charges each rider the trip fee of the trip's
    /// date), an association run (a purpose, households served, no fee), a charging run (the
    /// charge goes to the charging log and, when paid, the ledger) or a visit to the garage. The
    /// odometer, battery and overlap rules are the same for every kind. A retry with the same key
    /// returns the first answer and books nothing.
    public func logTrip(_ input: NewTrip, by identity: Identity, at now: Instant) async throws -> (trip: TripView, replayed: Bool) {
        try identity.require(.manage, .trips, "logging the car's use")
        let (key, fingerprint, span, incidents, kind, purpose, dwellingsServed, householdsServed) = try Self.checkTrip(input, at: now)
        return try await write { db in
            if let first = try replay(db, key: key, scope: "trip", fingerprint: fingerprint, as: TripView.self) { return (first, true) }
            let ownDriver = identity.role == .driver ? try driverID(of: identity, db) : nil
            if identity.role == .driver && ownDriver == nil { throw denied("role", "your user is not linked to a volunteer driver") }
            var vehicleID = input.vehicle
            var driverID = ownDriver ?? input.driver
            var riders = input.riders
            var booking: BookingView?
            var unbookedReason: String?
            if kind != .ride {
                // The association's own uses: a driver logs them as themself.
                if identity.role == .driver, let named = input.driver, named != ownDriver {
                    throw denied("driver", "a volunteer driver logs their own runs; the association or staff log another driver's")
                }
                riders = []
            } else if let bookingID = input.booking {
                let found = try self.booking(db, bookingID)
                guard found.status.isLive else { throw TripError.bookingNotOpen(booking: bookingID, status: found.status) }
                if let vehicle = input.vehicle, vehicle != found.vehicle {
                    throw HubError.badRequest(field: "vehicle", "booking \(bookingID) is for vehicle \(found.vehicle), not \(vehicle)")
                }
                let assignedUser = try found.driver.flatMap { try String.fetchOne(db, sql: "SELECT user_name FROM carshare_driver WHERE id = ?", arguments: [$0]) }
                guard AccessPolicy.allows(identity, .manage, .rideLog(booking: true, assignedDriverUser: assignedUser)) else {
                    throw denied("booking", found.driver == nil ? "booking \(bookingID) has no driver assigned: a volunteer driver logs the rides assigned to them"
                                                                : "booking \(bookingID) is assigned to another driver")
                }
                if identity.role == .association { try requireManage(identity, try memberScope(db, found.rider)) }
                vehicleID = found.vehicle
                driverID = driverID ?? found.driver
                riders = riders ?? [found.rider]
                booking = found
            } else {
                guard AccessPolicy.allows(identity, .manage, .rideLog(booking: false, assignedDriverUser: nil)) else {
                    throw denied("booking", "a ride without a booking (a paper log typed in later) is recorded by staff or the association; a volunteer driver logs the bookings assigned to them")
                }
                unbookedReason = try Check.text(input.unbookedReason, field: "unbooked_reason", max: 500)
                if unbookedReason?.isEmpty ?? true { throw TripError.unbookedNeedsReason }
            }
            guard let vehicleID else { throw HubError.badRequest(field: "vehicle", code: "missing_field", "say which car made the trip") }
            guard let driverID else { throw HubError.badRequest(field: "driver", code: "missing_field", "say who drove: the log must name the driver") }
            guard let riders, kind != .ride || !riders.isEmpty else { throw TripError.noRiders }
            let vehicle = try vehicle(db, vehicleID)
            let date = zone.localDate(of: span.start)
            // Whoever logs it, the driver named must be one who could be assigned that day: active,
            // trained, licence checked (a deactivated driver logs nothing and is named by no one).
            if let refusal = try driverProfile(db, driverID).refusal(on: date, licenceCheckValidDays: settings.licenceCheckValidDays) { throw refusal }
            for (index, dwelling) in dwellingsServed.enumerated() where try !db.exists("SELECT 1 FROM dwelling WHERE id = ?", dwelling) {
                throw HubError.notFound(field: "dwellings_served[\(index)]", "no dwelling \(dwelling) in the registry")
            }
            for (index, rider) in riders.enumerated() {
                let scope = try memberScope(db, rider, field: "riders[\(index)]")
                if identity.role == .association { try requireManage(identity, scope) }
                try requireValidMembership(db, member: rider, on: date, field: "riders[\(index)]")
            }
            // Trips last at most 48 hours, which bounds the index range scanned.
            if let overlapping = try Int64.fetchOne(db, sql: "SELECT id FROM carshare_trip WHERE vehicle_id = ? AND start_at > ? AND start_at < ? AND end_at > ? LIMIT 1",
                                                    arguments: [vehicle.id, span.start.millisecondsSince1970 - TripRules.maxTripMilliseconds,
                                                                span.end.millisecondsSince1970, span.start.millisecondsSince1970]) {
                throw TripError.overlapsAnotherTrip(trip: overlapping)
            }
            let previous = try Row.fetchOne(db, sql: "SELECT id, end_odometer_km FROM carshare_trip WHERE vehicle_id = ? AND start_at < ? ORDER BY start_at DESC LIMIT 1",
                                            arguments: [vehicle.id, span.start.millisecondsSince1970])
                .map { OdometerNeighbour(trip: $0["id"], kilometres: $0["end_odometer_km"]) } ?? OdometerNeighbour(trip: nil, kilometres: vehicle.initialOdometerKm)
            let next = try Row.fetchOne(db, sql: "SELECT id, start_odometer_km FROM carshare_trip WHERE vehicle_id = ? AND start_at >= ? ORDER BY start_at LIMIT 1",
                                        arguments: [vehicle.id, span.end.millisecondsSince1970]).map { OdometerNeighbour(trip: $0["id"], kilometres: $0["start_odometer_km"]) }
            try TripRules.checkOdometer(start: input.startOdometerKm, end: input.endOdometerKm, previous: previous, next: next, maxKilometres: settings.maxTripKilometres)
            let kilometres = input.endOdometerKm - input.startOdometerKm
            let fee = settings.tripFees.amount(on: date) ?? .zero
            // The social-transport check concerns rides for members only.
            let flags = kind == .ride
                ? SocialTransportRules.flags(kilometres: kilometres, feePerRider: riders.map { _ in fee }, ridersAreMembers: true, settings: settings.socialTransport)
                : []
            var chargingID: Int64?
            if kind == .chargingRun, let wh = input.chargedWh {
                chargingID = try recordCharging(db, vehicle: vehicle, at: span.end, energyWh: WattHours(wh), cost: input.chargeCostCents ?? .zero,
                                                method: input.chargeMethod, note: purpose, by: identity, at: now).id
            }
            try db.execute(sql: """
                INSERT INTO carshare_trip (booking_id, vehicle_id, driver_id, kind, purpose, households_served, charging_id, unbooked_reason,
                    start_at, end_at, start_odometer_km, end_odometer_km, battery_start_pct, battery_end_pct, incidents, flags, logged_by, logged_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [booking?.id, vehicle.id, driverID, kind.rawValue, kind == .ride ? nil : purpose, householdsServed, chargingID, unbookedReason,
                                 span.start.millisecondsSince1970, span.end.millisecondsSince1970,
                                 input.startOdometerKm, input.endOdometerKm, input.batteryStartPct, input.batteryEndPct, incidents,
                                 flags.map(\.rawValue).joined(separator: ","), identity.name, now.millisecondsSince1970])
            let tripID = db.lastInsertedRowID
            for dwelling in dwellingsServed {
                try db.execute(sql: "INSERT INTO carshare_trip_dwelling (trip_id, dwelling_id) VALUES (?, ?)", arguments: [tripID, dwelling])
            }
            for rider in riders {
                let name = try memberScope(db, rider).name
                let entry = try charge(db, member: rider, amount: fee, income: .tripFees, date: date, kind: .tripFee,
                                       label: "Trajet du \(date.frenchText) (\(kilometres) km) — \(name)", by: identity.name, at: now)
                try db.execute(sql: "INSERT INTO carshare_trip_rider (trip_id, member_id, fee_cents, entry_number) VALUES (?, ?, ?, ?)",
                               arguments: [tripID, rider, fee.value, entry?.number])
            }
            if let booking {
                try db.execute(sql: "UPDATE carshare_booking SET status = 'completed', driver_id = ?, version = version + 1, updated_at = ? WHERE id = ?",
                               arguments: [driverID, now.millisecondsSince1970, booking.id])
                try recordEvent(db, booking: booking.id, by: identity, from: booking.status, to: .completed, reason: "trajet \(tripID)", driver: driverID, at: now)
            }
            let view = try trip(db, tripID)
            try remember(db, key: key, scope: "trip", fingerprint: fingerprint, response: view, at: now)
            return (view, false)
        }
    }

    func trip(_ db: Database, _ id: Int64) throws -> TripView {
        guard let row = try Row.fetchOne(db, sql: """
            SELECT t.*, v.battery_capacity_wh FROM carshare_trip t JOIN carshare_vehicle v ON v.id = t.vehicle_id WHERE t.id = ?
            """, arguments: [id]) else { throw HubError.notFound(field: "trip", "no trip \(id)") }
        let riders = try Row.fetchAll(db, sql: "SELECT * FROM carshare_trip_rider WHERE trip_id = ? ORDER BY member_id", arguments: [id]).map {
            TripRiderView(member: $0["member_id"], feeCents: Cents($0["fee_cents"]), entry: $0["entry_number"])
        }
        let start: Int64 = row["start_odometer_km"]
        let end: Int64 = row["end_odometer_km"]
        let batteryStart: Int = row["battery_start_pct"]
        let batteryEnd: Int = row["battery_end_pct"]
        return TripView(id: id, booking: row["booking_id"], vehicle: row["vehicle_id"], driver: row["driver_id"], unbookedReason: row["unbooked_reason"],
                        start: Instant(millisecondsSince1970: row["start_at"]), end: Instant(millisecondsSince1970: row["end_at"]),
                        startOdometerKm: start, endOdometerKm: end, distanceKm: end - start, batteryStartPct: batteryStart, batteryEndPct: batteryEnd,
                        energyWh: TripRules.energyUsed(batteryStart: batteryStart, batteryEnd: batteryEnd,
                                                       capacity: (row["battery_capacity_wh"] as Int64?).map(WattHours.init)),
                        incidents: row["incidents"], flags: (row["flags"] as String).split(separator: ",").compactMap { SocialTransportFlag(rawValue: String($0)) },
                        riders: riders, kind: TripKind(rawValue: row["kind"]) ?? .ride, purpose: row["purpose"], householdsServed: row["households_served"],
                        dwellingsServed: try String.fetchAll(db, sql: "SELECT dwelling_id FROM carshare_trip_dwelling WHERE trip_id = ? ORDER BY dwelling_id", arguments: [id]),
                        charging: try (row["charging_id"] as Int64?).map { try charging(db, $0) })
    }

    func charging(_ db: Database, _ id: Int64) throws -> ChargingView {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM carshare_charging WHERE id = ?", arguments: [id]) else {
            throw HubError.notFound(field: "charging", "no charge \(id)")
        }
        return ChargingView(id: id, vehicle: row["vehicle_id"], at: Instant(millisecondsSince1970: row["at"]), energyWh: WattHours(row["energy_wh"]),
                            costCents: Cents(row["cost_cents"]), method: (row["method"] as String?).flatMap(PaymentMethod.init(rawValue:)), entry: row["entry_number"])
    }

    /// A charge in the charging log; a paid charge is an expense (6061) from the cash box, the
    /// cheques or the bank, posted in the same transaction.
    func recordCharging(_ db: Database, vehicle: VehicleView, at: Instant, energyWh: WattHours, cost: Cents, method: PaymentMethod?, note: String,
                        by identity: Identity, at now: Instant) throws -> ChargingView {
        var entryNumber: Int64?
        if cost > .zero, let method {
            let date = zone.localDate(of: at)
            // A cheque the association writes is drawn on its bank account (5112 holds the cheques it received).
            let account: Account = method == .cheque ? .bank : method.account
            entryNumber = try post(db, EntryDraft(date: date, kind: .charging, label: "Recharge de \(vehicle.name) le \(date.frenchText)",
                                                  lines: [.debit(.charging, cost), .credit(account, cost)]),
                                   by: identity.name, at: now).number
        }
        try db.execute(sql: """
            INSERT INTO carshare_charging (vehicle_id, at, energy_wh, cost_cents, method, entry_number, note, logged_by, logged_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [vehicle.id, at.millisecondsSince1970, energyWh.value, cost.value, method?.rawValue,
                             entryNumber, note, identity.name, now.millisecondsSince1970])
        return ChargingView(id: db.lastInsertedRowID, vehicle: vehicle.id, at: at, energyWh: energyWh, costCents: cost, method: method, entry: entryNumber)
    }

    /// Logs a charge of the car; a paid charge is an expense (6061) from the cash box or the bank.
    public func logCharging(_ input: NewCharging, by identity: Identity, at now: Instant) async throws -> ChargingView {
        try identity.require(.manage, .trips, "logging the car's use")
        let note = try Self.checkCharging(input)
        return try await write { db in
            try recordCharging(db, vehicle: try vehicle(db, input.vehicle), at: input.at, energyWh: input.energyWh, cost: input.costCents,
                               method: input.method, note: note, by: identity, at: now)
        }
    }
}

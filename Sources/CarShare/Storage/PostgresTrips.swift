import CarShareCore
import Foundation
import HubCore
import PostgresNIO
import Shared

extension PostgresCarShareStore {
    /// Logs a use of the car once per idempotency key, all in one transaction (see the SQLite store).
    /// The key is checked under the write lock, so a retry racing its first attempt from another
    /// process replays it instead of logging the trip twice.
    public func logTrip(_ input: NewTrip, by identity: Identity, at now: Instant) async throws -> (trip: TripView, replayed: Bool) {
        try identity.require(.manage, .trips, "logging the car's use")
        let (key, fingerprint, span, incidents, kind, purpose, dwellingsServed, householdsServed) = try Self.checkTrip(input, at: now)
        return try await write { db in
            if let first = try await replay(db, key: key, scope: "trip", fingerprint: fingerprint, as: TripView.self) { return (first, true) }
            let ownDriver = identity.role == .driver ? try await driverID(of: identity, db) : nil
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
                let found = try await self.booking(db, bookingID)
                guard found.status.isLive else { throw TripError.bookingNotOpen(booking: bookingID, status: found.status) }
                if let vehicle = input.vehicle, vehicle != found.vehicle {
                    throw HubError.badRequest(field: "vehicle", "booking \(bookingID) is for vehicle \(found.vehicle), not \(vehicle)")
                }
                let assignedUser = try await driverUser(db, found.driver)
                guard AccessPolicy.allows(identity, .manage, .rideLog(booking: true, assignedDriverUser: assignedUser)) else {
                    throw denied("booking", found.driver == nil ? "booking \(bookingID) has no driver assigned: a volunteer driver logs the rides assigned to them"
                                                                : "booking \(bookingID) is assigned to another driver")
                }
                if identity.role == .association { try requireManage(identity, try await memberScope(db, found.rider)) }
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
            let vehicle = try await vehicle(db, vehicleID)
            let date = zone.localDate(of: span.start)
            if let refusal = try await driverProfile(db, driverID).refusal(on: date, licenceCheckValidDays: settings.licenceCheckValidDays) { throw refusal }
            for (index, dwelling) in dwellingsServed.enumerated() {
                guard try await exists(db, "SELECT 1 FROM dwelling WHERE id = \(dwelling)") else {
                    throw HubError.notFound(field: "dwellings_served[\(index)]", "no dwelling \(dwelling) in the registry")
                }
            }
            for (index, rider) in riders.enumerated() {
                let scope = try await memberScope(db, rider, field: "riders[\(index)]")
                if identity.role == .association { try requireManage(identity, scope) }
                try await requireValidMembership(db, member: rider, on: date, field: "riders[\(index)]")
            }
            let start = span.start.millisecondsSince1970
            let end = span.end.millisecondsSince1970
            if let overlapping = try await db.scalar("""
                SELECT id FROM carshare_trip WHERE vehicle_id = \(vehicle.id) AND start_at > \(start - TripRules.maxTripMilliseconds)
                AND start_at < \(end) AND end_at > \(start) LIMIT 1
                """, as: Int64.self, logger: logger) {
                throw TripError.overlapsAnotherTrip(trip: overlapping)
            }
            let previous = try await one(db, "SELECT id, end_odometer_km FROM carshare_trip WHERE vehicle_id = \(vehicle.id) AND start_at < \(start) ORDER BY start_at DESC LIMIT 1")
                .map { OdometerNeighbour(trip: try $0["id"], kilometres: try $0["end_odometer_km"]) } ?? OdometerNeighbour(trip: nil, kilometres: vehicle.initialOdometerKm)
            let next = try await one(db, "SELECT id, start_odometer_km FROM carshare_trip WHERE vehicle_id = \(vehicle.id) AND start_at >= \(end) ORDER BY start_at LIMIT 1")
                .map { OdometerNeighbour(trip: try $0["id"], kilometres: try $0["start_odometer_km"]) }
            try TripRules.checkOdometer(start: input.startOdometerKm, end: input.endOdometerKm, previous: previous, next: next, maxKilometres: settings.maxTripKilometres)
            let kilometres = input.endOdometerKm - input.startOdometerKm
            let fee = settings.tripFees.amount(on: date) ?? .zero
            let flags = kind == .ride
                ? SocialTransportRules.flags(kilometres: kilometres, feePerRider: riders.map { _ in fee }, ridersAreMembers: true, settings: settings.socialTransport)
                : []
            var chargingID: Int64?
            if kind == .chargingRun, let wh = input.chargedWh {
                chargingID = try await recordCharging(db, vehicle: vehicle, at: span.end, energyWh: WattHours(wh), cost: input.chargeCostCents ?? .zero,
                                                      method: input.chargeMethod, note: purpose, by: identity, at: now).id
            }
            let tripPurpose: String? = kind == .ride ? nil : purpose
            let households = householdsServed.map(Int64.init)
            let battery = (Int64(input.batteryStartPct), Int64(input.batteryEndPct))
            let tripID = try await db.scalar("""
                INSERT INTO carshare_trip (booking_id, vehicle_id, driver_id, kind, purpose, households_served, charging_id, unbooked_reason,
                    start_at, end_at, start_odometer_km, end_odometer_km, battery_start_pct, battery_end_pct, incidents, flags, logged_by, logged_at)
                VALUES (\(booking?.id), \(vehicle.id), \(driverID), \(kind.rawValue), \(tripPurpose), \(households), \(chargingID), \(unbookedReason),
                        \(start), \(end), \(input.startOdometerKm), \(input.endOdometerKm), \(battery.0), \(battery.1), \(incidents),
                        \(flags.map(\.rawValue).joined(separator: ",")), \(identity.name), \(now.millisecondsSince1970)) RETURNING id
                """, as: Int64.self, logger: logger)!
            for dwelling in dwellingsServed {
                try await run(db, "INSERT INTO carshare_trip_dwelling (trip_id, dwelling_id) VALUES (\(tripID), \(dwelling))")
            }
            for rider in riders {
                let name = try await memberScope(db, rider).name
                let entry = try await charge(db, member: rider, amount: fee, income: .tripFees, date: date, kind: .tripFee,
                                             label: "Trajet du \(date.frenchText) (\(kilometres) km) — \(name)", by: identity.name, at: now)
                try await run(db, """
                    INSERT INTO carshare_trip_rider (trip_id, member_id, fee_cents, entry_number) VALUES (\(tripID), \(rider), \(fee.value), \(entry?.number))
                    """)
            }
            if let booking {
                try await run(db, """
                    UPDATE carshare_booking SET status = 'completed', driver_id = \(driverID), version = version + 1, updated_at = \(now.millisecondsSince1970)
                    WHERE id = \(booking.id)
                    """)
                try await recordEvent(db, booking: booking.id, by: identity, from: booking.status, to: .completed, reason: "trajet \(tripID)", driver: driverID, at: now)
            }
            let view = try await trip(db, tripID)
            try await remember(db, key: key, scope: "trip", fingerprint: fingerprint, response: view, at: now)
            return (view, false)
        }
    }

    func trip(_ db: PostgresConnection, _ id: Int64) async throws -> TripView {
        guard let row = try await one(db, """
            SELECT t.booking_id, t.vehicle_id, t.driver_id, t.unbooked_reason, t.start_at, t.end_at, t.start_odometer_km, t.end_odometer_km,
                t.battery_start_pct, t.battery_end_pct, t.incidents, t.flags, t.kind, t.purpose, t.households_served, t.charging_id, v.battery_capacity_wh
            FROM carshare_trip t JOIN carshare_vehicle v ON v.id = t.vehicle_id WHERE t.id = \(id)
            """) else { throw HubError.notFound(field: "trip", "no trip \(id)") }
        let riders = try await all(db, "SELECT member_id, fee_cents, entry_number FROM carshare_trip_rider WHERE trip_id = \(id) ORDER BY member_id").map {
            TripRiderView(member: try $0["member_id"], feeCents: Cents(try $0["fee_cents"]), entry: try $0["entry_number"])
        }
        let start: Int64 = try row["start_odometer_km"]
        let end: Int64 = try row["end_odometer_km"]
        let batteryStart = Int(try row["battery_start_pct"] as Int64)
        let batteryEnd = Int(try row["battery_end_pct"] as Int64)
        let charging = try row["charging_id"] as Int64?
        return TripView(id: id, booking: try row["booking_id"], vehicle: try row["vehicle_id"], driver: try row["driver_id"], unbookedReason: try row["unbooked_reason"],
                        start: try row.instant("start_at"), end: try row.instant("end_at"),
                        startOdometerKm: start, endOdometerKm: end, distanceKm: end - start, batteryStartPct: batteryStart, batteryEndPct: batteryEnd,
                        energyWh: TripRules.energyUsed(batteryStart: batteryStart, batteryEnd: batteryEnd,
                                                       capacity: (try row["battery_capacity_wh"] as Int64?).map(WattHours.init)),
                        incidents: try row["incidents"], flags: (try row["flags"] as String).split(separator: ",").compactMap { SocialTransportFlag(rawValue: String($0)) },
                        riders: riders, kind: TripKind(rawValue: try row["kind"]) ?? .ride, purpose: try row["purpose"],
                        householdsServed: (try row["households_served"] as Int64?).map(Int.init),
                        dwellingsServed: try await db.column("SELECT dwelling_id FROM carshare_trip_dwelling WHERE trip_id = \(id) ORDER BY dwelling_id COLLATE \"C\"",
                                                             as: String.self, logger: logger),
                        charging: charging == nil ? nil : try await self.charging(db, charging!))
    }

    func charging(_ db: PostgresConnection, _ id: Int64) async throws -> ChargingView {
        guard let row = try await one(db, "SELECT vehicle_id, at, energy_wh, cost_cents, method, entry_number FROM carshare_charging WHERE id = \(id)") else {
            throw HubError.notFound(field: "charging", "no charge \(id)")
        }
        return ChargingView(id: id, vehicle: try row["vehicle_id"], at: try row.instant("at"), energyWh: WattHours(try row["energy_wh"]),
                            costCents: Cents(try row["cost_cents"]), method: (try row["method"] as String?).flatMap(PaymentMethod.init(rawValue:)),
                            entry: try row["entry_number"])
    }

    func recordCharging(_ db: PostgresConnection, vehicle: VehicleView, at: Instant, energyWh: WattHours, cost: Cents, method: PaymentMethod?, note: String,
                        by identity: Identity, at now: Instant) async throws -> ChargingView {
        var entryNumber: Int64?
        if cost > .zero, let method {
            let date = zone.localDate(of: at)
            // A cheque the association writes is drawn on its bank account (5112 holds the cheques it received).
            let account: Account = method == .cheque ? .bank : method.account
            entryNumber = try await post(db, EntryDraft(date: date, kind: .charging, label: "Recharge de \(vehicle.name) le \(date.frenchText)",
                                                        lines: [.debit(.charging, cost), .credit(account, cost)]),
                                         by: identity.name, at: now).number
        }
        let id = try await db.scalar("""
            INSERT INTO carshare_charging (vehicle_id, at, energy_wh, cost_cents, method, entry_number, note, logged_by, logged_at)
            VALUES (\(vehicle.id), \(at.millisecondsSince1970), \(energyWh.value), \(cost.value), \(method?.rawValue), \(entryNumber), \(note),
                    \(identity.name), \(now.millisecondsSince1970)) RETURNING id
            """, as: Int64.self, logger: logger)!
        return ChargingView(id: id, vehicle: vehicle.id, at: at, energyWh: energyWh, costCents: cost, method: method, entry: entryNumber)
    }

    public func logCharging(_ input: NewCharging, by identity: Identity, at now: Instant) async throws -> ChargingView {
        try identity.require(.manage, .trips, "logging the car's use")
        let note = try Self.checkCharging(input)
        return try await write { db in
            try await recordCharging(db, vehicle: try await vehicle(db, input.vehicle), at: input.at, energyWh: input.energyWh, cost: input.costCents,
                                     method: input.method, note: note, by: identity, at: now)
        }
    }
}

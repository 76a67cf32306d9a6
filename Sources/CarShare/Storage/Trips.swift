import CarShareCore
import Foundation
import GRDB
import HubCore
import Shared

extension SQLiteCarShareStore {
    /// Logs a trip once per idempotency key: checks the booking, riders, odometer and battery,
    /// completes the booking and charges each rider the trip fee of the trip's date, all in one
    /// transaction. A retry with the same key returns the first answer and books nothing.
    public func logTrip(_ input: NewTrip, by identity: Identity, at now: Instant) async throws -> (trip: TripView, replayed: Bool) {
        try identity.require(.manage, .trips, "logging the car's use")
        let key = try SQLiteCarShareStore.checkKey(input.idempotencyKey)
        let fingerprint = try SQLiteCarShareStore.fingerprint(input)
        guard let span = TimeSpan(start: input.start, end: input.end) else { throw TripError.emptyInterval.hubError }
        try TripRules.checkLogged(span: span, now: now, startOdometerKm: input.startOdometerKm)
        let incidents = try Check.text(input.incidents, field: "incidents")
        do {
            try TripRules.checkBattery(start: input.batteryStartPct, end: input.batteryEndPct)
            if let riders = input.riders { try TripRules.checkRiders(riders) }
        } catch { throw error.hubError }
        return try await write { db in
            if let first = try replay(db, key: key, scope: "trip", fingerprint: fingerprint, as: TripView.self) { return (first, true) }
            let ownDriver = identity.role == .driver ? try driverID(of: identity, db) : nil
            if identity.role == .driver && ownDriver == nil { throw denied("role", "your user is not linked to a volunteer driver") }
            var vehicleID = input.vehicle
            var driverID = ownDriver ?? input.driver
            var riders = input.riders
            var booking: BookingView?
            var unbookedReason: String?
            if let bookingID = input.booking {
                let found = try self.booking(db, bookingID)
                guard found.status.isLive else { throw TripError.bookingNotOpen(booking: bookingID, status: found.status) }
                if let vehicle = input.vehicle, vehicle != found.vehicle {
                    throw HubError.badRequest(field: "vehicle", "booking \(bookingID) is for vehicle \(found.vehicle), not \(vehicle)")
                }
                if identity.role == .driver, let assigned = found.driver, assigned != ownDriver {
                    throw denied("booking", "booking \(bookingID) is assigned to another driver")
                }
                if identity.role == .association { try requireManage(identity, try memberScope(db, found.rider)) }
                vehicleID = found.vehicle
                driverID = driverID ?? found.driver
                riders = riders ?? [found.rider]
                booking = found
            } else {
                unbookedReason = try Check.text(input.unbookedReason, field: "unbooked_reason", max: 500)
                if unbookedReason?.isEmpty ?? true { throw TripError.unbookedNeedsReason }
            }
            guard let vehicleID else { throw HubError.badRequest(field: "vehicle", code: "missing_field", "say which car made the trip") }
            guard let driverID else { throw HubError.badRequest(field: "driver", code: "missing_field", "say who drove: the log must name the driver") }
            guard let riders, !riders.isEmpty else { throw TripError.noRiders }
            let vehicle = try vehicle(db, vehicleID)
            _ = try driver(db, driverID)
            let date = zone.localDate(of: span.start)
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
            let flags = SocialTransportRules.flags(kilometres: kilometres, feePerRider: riders.map { _ in fee }, ridersAreMembers: true, settings: settings.socialTransport)
            try db.execute(sql: """
                INSERT INTO carshare_trip (booking_id, vehicle_id, driver_id, unbooked_reason, start_at, end_at, start_odometer_km, end_odometer_km,
                    battery_start_pct, battery_end_pct, incidents, flags, logged_by, logged_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [booking?.id, vehicle.id, driverID, unbookedReason, span.start.millisecondsSince1970, span.end.millisecondsSince1970,
                                 input.startOdometerKm, input.endOdometerKm, input.batteryStartPct, input.batteryEndPct, incidents,
                                 flags.map(\.rawValue).joined(separator: ","), identity.name, now.millisecondsSince1970])
            let tripID = db.lastInsertedRowID
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
                        riders: riders)
    }

    /// Logs a charge of the car; a paid charge is an expense (6061) from the cash box or the bank.
    public func logCharging(_ input: NewCharging, by identity: Identity, at now: Instant) async throws -> ChargingView {
        try identity.require(.manage, .trips, "logging the car's use")
        guard input.energyWh.value > 0, input.energyWh.value <= 200_000 else {
            throw HubError.badRequest(field: "energy_wh", "the energy must be between 1 Wh and 200 kWh")
        }
        guard input.costCents >= .zero else { throw LedgerError.amountNotPositive(field: "cost_cents").hubError }
        if input.costCents > .zero && input.method == nil { throw HubError.badRequest(field: "method", code: "missing_field", "say how the charge was paid (cash, cheque or transfer)") }
        let note = try Check.text(input.note, field: "note", max: 500)
        return try await write { db in
            let vehicle = try vehicle(db, input.vehicle)
            var entryNumber: Int64?
            if input.costCents > .zero, let method = input.method {
                let date = zone.localDate(of: input.at)
                entryNumber = try post(db, EntryDraft(date: date, kind: .charging, label: "Recharge de \(vehicle.name) le \(date.frenchText)",
                                                      lines: [.debit(.charging, input.costCents), .credit(method.account, input.costCents)]),
                                       by: identity.name, at: now).number
            }
            try db.execute(sql: """
                INSERT INTO carshare_charging (vehicle_id, at, energy_wh, cost_cents, method, entry_number, note, logged_by, logged_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [vehicle.id, input.at.millisecondsSince1970, input.energyWh.value, input.costCents.value, input.method?.rawValue,
                                 entryNumber, note, identity.name, now.millisecondsSince1970])
            return ChargingView(id: db.lastInsertedRowID, vehicle: vehicle.id, at: input.at, energyWh: input.energyWh, costCents: input.costCents,
                                method: input.method, entry: entryNumber)
        }
    }
}

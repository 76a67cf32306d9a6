import CarShareCore
import Foundation
import GRDB
import HubCore
import Shared

extension SQLiteCarShareStore {
    /// Creates a booking: rider with a valid membership on the trip date, no overlap with a live
    /// booking of the car (or of the driver), checked and written in one immediate transaction.
    public func createBooking(_ input: NewBooking, by identity: Identity, at now: Instant) async throws -> BookingView {
        let (span, purpose) = try Self.checkBooking(input)
        return try await write { db in
            let rider = try memberScope(db, input.rider, field: "rider")
            // Staff and drivers book for any member; a household for its own, an association for its estate's.
            if identity.role != .staff && identity.role != .driver {
                guard canSee(identity, rider) else { throw denied("rider", "member \(rider.id) is not yours to book for") }
            }
            if input.driver != nil { try identity.require(.manage, .drivers, "assigning a volunteer driver") }
            let vehicle = try vehicle(db, input.vehicle)
            guard vehicle.active else { throw HubError(.unprocessable, code: "vehicle_inactive", field: "vehicle", message: "vehicle \(vehicle.id) is not in service") }
            let date = zone.localDate(of: span.start)
            try requireValidMembership(db, member: rider.id, on: date, field: "rider")
            if let driver = input.driver, let refusal = try driverProfile(db, driver).refusal(on: date, licenceCheckValidDays: settings.licenceCheckValidDays) {
                throw refusal
            }
            if let conflict = BookingRules.conflict(id: nil, vehicle: vehicle.id, driver: input.driver, span: span,
                                                    existing: try liveSlots(db, overlapping: span, vehicle: vehicle.id, driver: input.driver)) {
                throw conflict
            }
            let status: BookingStatus = input.driver == nil ? .requested : .confirmed
            try db.execute(sql: """
                INSERT INTO carshare_booking (vehicle_id, rider_id, driver_id, booked_by, start_at, end_at, purpose, status, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [vehicle.id, rider.id, input.driver, identity.name, span.start.millisecondsSince1970, span.end.millisecondsSince1970,
                                 purpose, status.rawValue, now.millisecondsSince1970, now.millisecondsSince1970])
            let id = db.lastInsertedRowID
            try recordEvent(db, booking: id, by: identity, from: nil, to: status, reason: "", driver: input.driver, at: now)
            return try booking(db, id)
        }
    }

    /// Live bookings of the car or the driver that overlap the span. Each half is a range scan
    /// of its index, bounded below because no booking lasts longer than a week.
    func liveSlots(_ db: Database, overlapping span: TimeSpan, vehicle: Int64, driver: Int64?) throws -> [BookingSlot] {
        let low = span.start.millisecondsSince1970 - BookingRules.maxBookingMilliseconds
        let rows = try Row.fetchAll(db, sql: """
            SELECT id, vehicle_id, driver_id, start_at, end_at FROM carshare_booking
            WHERE vehicle_id = ? AND start_at > ? AND start_at < ? AND end_at > ? AND status IN ('requested', 'confirmed')
            UNION
            SELECT id, vehicle_id, driver_id, start_at, end_at FROM carshare_booking
            WHERE driver_id = ? AND start_at > ? AND start_at < ? AND end_at > ? AND status IN ('requested', 'confirmed')
            """, arguments: [vehicle, low, span.end.millisecondsSince1970, span.start.millisecondsSince1970,
                             driver, low, span.end.millisecondsSince1970, span.start.millisecondsSince1970])
        return rows.map { row in
            BookingSlot(id: row["id"], vehicle: row["vehicle_id"], driver: row["driver_id"],
                        span: TimeSpan(start: Instant(millisecondsSince1970: row["start_at"]), end: Instant(millisecondsSince1970: row["end_at"]))!)
        }
    }

    func recordEvent(_ db: Database, booking: Int64, by identity: Identity, from: BookingStatus?, to: BookingStatus, reason: String, driver: Int64?, at now: Instant) throws {
        try db.execute(sql: """
            INSERT INTO carshare_booking_event (booking_id, at, by_user, from_status, to_status, reason, driver_id) VALUES (?, ?, ?, ?, ?, ?, ?)
            """, arguments: [booking, now.millisecondsSince1970, identity.name, from?.rawValue, to.rawValue, reason, driver])
    }

    func booking(_ db: Database, _ id: Int64) throws -> BookingView {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM carshare_booking WHERE id = ?", arguments: [id]) else {
            throw HubError.notFound(field: "booking", "no booking \(id)")
        }
        let events = try Row.fetchAll(db, sql: "SELECT * FROM carshare_booking_event WHERE booking_id = ? ORDER BY id", arguments: [id]).map { event in
            BookingEventView(at: Instant(millisecondsSince1970: event["at"]), by: event["by_user"],
                             from: (event["from_status"] as String?).flatMap(BookingStatus.init(rawValue:)),
                             to: BookingStatus(rawValue: event["to_status"])!, reason: event["reason"])
        }
        let status = BookingStatus(rawValue: row["status"])!
        return BookingView(id: id, vehicle: row["vehicle_id"], rider: row["rider_id"], driver: row["driver_id"], bookedBy: row["booked_by"],
                           start: Instant(millisecondsSince1970: row["start_at"]), end: Instant(millisecondsSince1970: row["end_at"]),
                           purpose: row["purpose"], status: status, statusLabel: status.frenchLabel, feeEntry: row["fee_entry"],
                           version: row["version"], events: events)
    }

    /// Whether the caller may see (`read`) or edit (`manage`) a booking, as `AccessPolicy` decides
    /// from its rider's household and estate, who made it and the driver assigned to it.
    func may(_ db: Database, _ identity: Identity, _ action: AccessPolicy.Action, booking: BookingView) throws -> Bool {
        let rider = try memberScope(db, booking.rider)
        let driverUser = try booking.driver.flatMap { try String.fetchOne(db, sql: "SELECT user_name FROM carshare_driver WHERE id = ?", arguments: [$0]) }
        return AccessPolicy.allows(identity, action, .booking(dwelling: rider.dwelling, estate: rider.estate, bookedBy: booking.bookedBy, driverUser: driverUser))
    }

    public func booking(_ id: Int64, by identity: Identity) async throws -> BookingView {
        try await read { db in
            let view = try booking(db, id)
            guard try may(db, identity, .read, booking: view) else { throw denied("booking", "booking \(id) is not yours to see") }
            return view
        }
    }

    public func bookings(vehicle: Int64?, from: Instant?, to: Instant?, by identity: Identity) async throws -> [BookingView] {
        try await read { db in
            // With each booking, the facts the policy decides on: the rider's dwelling and estate,
            // who booked, the assigned driver's login (no extra query per booking).
            var sql = """
                SELECT b.id, m.dwelling_id, m.estate_id, b.booked_by, d.user_name FROM carshare_booking b
                JOIN carshare_member m ON m.id = b.rider_id LEFT JOIN carshare_driver d ON d.id = b.driver_id WHERE 1 = 1
                """
            var arguments: [any DatabaseValueConvertible] = []
            if let vehicle { sql += " AND b.vehicle_id = ?"; arguments.append(vehicle) }
            if let from { sql += " AND b.end_at > ?"; arguments.append(from.millisecondsSince1970) }
            if let to { sql += " AND b.start_at < ?"; arguments.append(to.millisecondsSince1970) }
            switch identity.role {
            case .staff: break
            case .association: sql += " AND m.estate_id = ?"; arguments.append(identity.estate ?? "")
            case .resident: sql += " AND m.dwelling_id = ?"; arguments.append(identity.dwelling ?? "")
            case .driver:
                sql += " AND (b.booked_by = ? OR b.driver_id = ?)"
                arguments.append(identity.name)
                arguments.append(try driverID(of: identity, db) ?? -1)
            }
            sql += " ORDER BY b.start_at, b.id LIMIT 5000"
            // The query narrows to the caller's bookings; the policy has the last word on each.
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments))
                .filter { AccessPolicy.allows(identity, .read, .booking(dwelling: $0[1], estate: $0[2], bookedBy: $0[3], driverUser: $0[4])) }
                .map { try booking(db, $0[0]) }
        }
    }

    /// Edits a live booking's interval, car or purpose. A stale `version` gets 409.
    public func editBooking(_ id: Int64, _ input: BookingEdit, by identity: Identity, at now: Instant) async throws -> BookingView {
        let purpose = try input.purpose.map { try Check.text($0, field: "purpose", max: 500) }
        return try await write { db in
            let current = try booking(db, id)
            guard try may(db, identity, .manage, booking: current) else {
                throw denied("booking", "booking \(id) is not yours to edit")
            }
            guard current.version == input.version else { throw BookingError.staleVersion(current: current.version, given: input.version) }
            guard current.status.isLive else { throw BookingError.notEditable(current.status) }
            guard let span = TimeSpan(start: input.start ?? current.start, end: input.end ?? current.end) else { throw BookingError.emptyInterval }
            try BookingRules.checkLength(span)
            let vehicle = try vehicle(db, input.vehicle ?? current.vehicle)
            let date = zone.localDate(of: span.start)
            try requireValidMembership(db, member: current.rider, on: date, field: "rider")
            if let driver = current.driver, let refusal = try driverProfile(db, driver).refusal(on: date, licenceCheckValidDays: settings.licenceCheckValidDays) {
                throw refusal
            }
            if let conflict = BookingRules.conflict(id: id, vehicle: vehicle.id, driver: current.driver, span: span,
                                                    existing: try liveSlots(db, overlapping: span, vehicle: vehicle.id, driver: current.driver)) {
                throw conflict
            }
            try db.execute(sql: """
                UPDATE carshare_booking SET vehicle_id = ?, start_at = ?, end_at = ?, purpose = ?, version = version + 1, updated_at = ?
                WHERE id = ? AND version = ?
                """, arguments: [vehicle.id, span.start.millisecondsSince1970, span.end.millisecondsSince1970, purpose ?? current.purpose,
                                 now.millisecondsSince1970, id, input.version])
            guard db.changesCount == 1 else { throw BookingError.staleVersion(current: current.version + 1, given: input.version) }
            try recordEvent(db, booking: id, by: identity, from: current.status, to: current.status,
                            reason: "modifiée : \(span)", driver: current.driver, at: now)
            return try booking(db, id)
        }
    }

    /// Moves a booking to another status, recording who and why. A cancellation close to the
    /// start becomes a late cancellation; a late cancellation or no-show keeps the trip fee when
    /// the settings say so. Completion comes from logging the trip.
    public func changeStatus(_ id: Int64, _ input: BookingStatusChange, by identity: Identity, at now: Instant) async throws -> BookingView {
        let reason = try Check.text(input.reason, field: "reason", max: 500)
        guard input.status != .completed else {
            throw HubError(.unprocessable, code: "use_trip_log", field: "status", message: "a booking is completed by logging its trip (POST /carshare/trips)")
        }
        return try await write { db in
            let current = try booking(db, id)
            guard try may(db, identity, .read, booking: current) else { throw denied("booking", "booking \(id) is not yours") }
            let target = BookingRules.effectiveStatus(requested: input.status, start: current.start, now: now, lateHours: settings.lateCancellationHours)
            try BookingRules.checkRoleMaySet(identity.role, target)
            guard current.version == input.version else { throw BookingError.staleVersion(current: current.version, given: input.version) }
            let driver = input.driver ?? current.driver
            try BookingRules.checkTransition(from: current.status, to: target, hasDriver: driver != nil, reason: reason)
            if target == .confirmed, let driver {
                let span = TimeSpan(start: current.start, end: current.end)!
                if let refusal = try driverProfile(db, driver).refusal(on: zone.localDate(of: span.start), licenceCheckValidDays: settings.licenceCheckValidDays) {
                    throw refusal
                }
                if let conflict = BookingRules.conflict(id: id, vehicle: current.vehicle, driver: driver, span: span,
                                                        existing: try liveSlots(db, overlapping: span, vehicle: current.vehicle, driver: driver)) {
                    throw conflict
                }
            }
            var feeEntry: Int64?
            if BookingRules.keepsFee(target, settings: settings) {
                let date = today(now)
                if let fee = settings.tripFees.amount(on: zone.localDate(of: current.start)) {
                    let rider = try memberScope(db, current.rider)
                    let label = (target == .noShow ? "Absence au trajet du " : "Trajet annulé tardivement, du ") + "\(zone.localDate(of: current.start).frenchText) — \(rider.name)"
                    feeEntry = try charge(db, member: rider.id, amount: fee, income: .tripFees, date: date, kind: .tripFee, label: label,
                                          by: identity.name, at: now)?.number
                }
            }
            try db.execute(sql: """
                UPDATE carshare_booking SET status = ?, driver_id = ?, fee_entry = COALESCE(?, fee_entry), version = version + 1, updated_at = ?
                WHERE id = ? AND version = ?
                """, arguments: [target.rawValue, target == .requested ? nil : driver, feeEntry, now.millisecondsSince1970, id, input.version])
            guard db.changesCount == 1 else { throw BookingError.staleVersion(current: current.version + 1, given: input.version) }
            try recordEvent(db, booking: id, by: identity, from: current.status, to: target, reason: reason, driver: driver, at: now)
            return try booking(db, id)
        }
    }
}

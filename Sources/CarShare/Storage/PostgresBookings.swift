import CarShareCore
import Foundation
import HubCore
import PostgresNIO
import Shared

extension PostgresCarShareStore {
    /// Creates a booking: the same checks as the SQLite store, under the write lock, so two hub
    /// processes booking the same slot at once get one booking and one conflict.
    public func createBooking(_ input: NewBooking, by identity: Identity, at now: Instant) async throws -> BookingView {
        let (span, purpose) = try Self.checkBooking(input)
        return try await write { db in
            let rider = try await memberScope(db, input.rider, field: "rider")
            // Staff and drivers book for any member; a household for its own, an association for its estate's.
            if identity.role != .staff && identity.role != .driver {
                guard canSee(identity, rider) else { throw denied("rider", "member \(rider.id) is not yours to book for") }
            }
            if input.driver != nil { try identity.require(.manage, .drivers, "assigning a volunteer driver") }
            let vehicle = try await vehicle(db, input.vehicle)
            guard vehicle.active else { throw HubError(.unprocessable, code: "vehicle_inactive", field: "vehicle", message: "vehicle \(vehicle.id) is not in service") }
            let date = zone.localDate(of: span.start)
            try await requireValidMembership(db, member: rider.id, on: date, field: "rider")
            if let driver = input.driver, let refusal = try await driverProfile(db, driver).refusal(on: date, licenceCheckValidDays: settings.licenceCheckValidDays) {
                throw refusal
            }
            if let conflict = BookingRules.conflict(id: nil, vehicle: vehicle.id, driver: input.driver, span: span,
                                                    existing: try await liveSlots(db, overlapping: span, vehicle: vehicle.id, driver: input.driver)) {
                throw conflict
            }
            let status: BookingStatus = input.driver == nil ? .requested : .confirmed
            let id = try await db.scalar("""
                INSERT INTO carshare_booking (vehicle_id, rider_id, driver_id, booked_by, start_at, end_at, purpose, status, created_at, updated_at)
                VALUES (\(vehicle.id), \(rider.id), \(input.driver), \(identity.name), \(span.start.millisecondsSince1970), \(span.end.millisecondsSince1970),
                        \(purpose), \(status.rawValue), \(now.millisecondsSince1970), \(now.millisecondsSince1970)) RETURNING id
                """, as: Int64.self, logger: logger)!
            try await recordEvent(db, booking: id, by: identity, from: nil, to: status, reason: "", driver: input.driver, at: now)
            return try await booking(db, id)
        }
    }

    /// Live bookings of the car or the driver that overlap the span (none lasts longer than a week).
    func liveSlots(_ db: PostgresConnection, overlapping span: TimeSpan, vehicle: Int64, driver: Int64?) async throws -> [BookingSlot] {
        let low = span.start.millisecondsSince1970 - BookingRules.maxBookingMilliseconds
        let start = span.start.millisecondsSince1970
        let end = span.end.millisecondsSince1970
        return try await all(db, """
            SELECT id, vehicle_id, driver_id, start_at, end_at FROM carshare_booking
            WHERE vehicle_id = \(vehicle) AND start_at > \(low) AND start_at < \(end) AND end_at > \(start) AND status IN ('requested', 'confirmed')
            UNION
            SELECT id, vehicle_id, driver_id, start_at, end_at FROM carshare_booking
            WHERE driver_id = \(driver) AND start_at > \(low) AND start_at < \(end) AND end_at > \(start) AND status IN ('requested', 'confirmed')
            """).map { row in
            BookingSlot(id: try row["id"], vehicle: try row["vehicle_id"], driver: try row["driver_id"],
                        span: TimeSpan(start: try row.instant("start_at"), end: try row.instant("end_at"))!)
        }
    }

    func recordEvent(_ db: PostgresConnection, booking: Int64, by identity: Identity, from: BookingStatus?, to: BookingStatus, reason: String,
                     driver: Int64?, at now: Instant) async throws {
        try await run(db, """
            INSERT INTO carshare_booking_event (booking_id, at, by_user, from_status, to_status, reason, driver_id)
            VALUES (\(booking), \(now.millisecondsSince1970), \(identity.name), \(from?.rawValue), \(to.rawValue), \(reason), \(driver))
            """)
    }

    func booking(_ db: PostgresConnection, _ id: Int64) async throws -> BookingView {
        guard let row = try await one(db, """
            SELECT vehicle_id, rider_id, driver_id, booked_by, start_at, end_at, purpose, status, fee_entry, version FROM carshare_booking WHERE id = \(id)
            """) else {
            throw HubError.notFound(field: "booking", "no booking \(id)")
        }
        let events = try await all(db, "SELECT at, by_user, from_status, to_status, reason FROM carshare_booking_event WHERE booking_id = \(id) ORDER BY id").map { event in
            BookingEventView(at: try event.instant("at"), by: try event["by_user"],
                             from: (try event["from_status"] as String?).flatMap(BookingStatus.init(rawValue:)),
                             to: BookingStatus(rawValue: try event["to_status"])!, reason: try event["reason"])
        }
        let status = BookingStatus(rawValue: try row["status"])!
        return BookingView(id: id, vehicle: try row["vehicle_id"], rider: try row["rider_id"], driver: try row["driver_id"], bookedBy: try row["booked_by"],
                           start: try row.instant("start_at"), end: try row.instant("end_at"),
                           purpose: try row["purpose"], status: status, statusLabel: status.frenchLabel, feeEntry: try row["fee_entry"],
                           version: try row["version"], events: events)
    }

    func driverUser(_ db: PostgresConnection, _ driver: Int64?) async throws -> String? {
        guard let driver else { return nil }
        return try await db.scalar("SELECT user_name FROM carshare_driver WHERE id = \(driver)", as: String?.self, logger: logger) ?? nil
    }

    func may(_ db: PostgresConnection, _ identity: Identity, _ action: AccessPolicy.Action, booking: BookingView) async throws -> Bool {
        let rider = try await memberScope(db, booking.rider)
        let driverUser = try await driverUser(db, booking.driver)
        return AccessPolicy.allows(identity, action, .booking(dwelling: rider.dwelling, estate: rider.estate, bookedBy: booking.bookedBy, driverUser: driverUser))
    }

    public func booking(_ id: Int64, by identity: Identity) async throws -> BookingView {
        try await read { db in
            let view = try await booking(db, id)
            guard try await may(db, identity, .read, booking: view) else { throw denied("booking", "booking \(id) is not yours to see") }
            return view
        }
    }

    public func bookings(vehicle: Int64?, from: Instant?, to: Instant?, by identity: Identity) async throws -> [BookingView] {
        try await read { db in
            // The query narrows to the caller's bookings; the policy has the last word on each.
            let estate: String? = identity.role == .association ? identity.estate ?? "" : nil
            let dwelling: String? = identity.role == .resident ? identity.dwelling ?? "" : nil
            let driverUser: String? = identity.role == .driver ? identity.name : nil
            let driverID: Int64? = identity.role == .driver ? try await self.driverID(of: identity, db) ?? -1 : nil
            let rows = try await all(db, """
                SELECT b.id, m.dwelling_id, m.estate_id, b.booked_by, d.user_name FROM carshare_booking b
                JOIN carshare_member m ON m.id = b.rider_id LEFT JOIN carshare_driver d ON d.id = b.driver_id
                WHERE (\(vehicle)::bigint IS NULL OR b.vehicle_id = \(vehicle))
                  AND (\(from?.millisecondsSince1970)::bigint IS NULL OR b.end_at > \(from?.millisecondsSince1970))
                  AND (\(to?.millisecondsSince1970)::bigint IS NULL OR b.start_at < \(to?.millisecondsSince1970))
                  AND (\(estate)::text IS NULL OR m.estate_id = \(estate))
                  AND (\(dwelling)::text IS NULL OR m.dwelling_id = \(dwelling))
                  AND (\(driverUser)::text IS NULL OR b.booked_by = \(driverUser) OR b.driver_id = \(driverID))
                ORDER BY b.start_at, b.id LIMIT 5000
                """)
            var views: [BookingView] = []
            for row in rows {
                let resource = AccessPolicy.Resource.booking(dwelling: try row["dwelling_id"], estate: try row["estate_id"],
                                                             bookedBy: try row["booked_by"], driverUser: try row["user_name"])
                if AccessPolicy.allows(identity, .read, resource) { views.append(try await booking(db, try row["id"])) }
            }
            return views
        }
    }

    public func riderContacts(bookings ids: [Int64], by identity: Identity) async throws -> [Int64: RiderContact] {
        guard !ids.isEmpty else { return [:] }
        return try await read { db in
            let rows = try await all(db, """
                SELECT b.id, m.dwelling_id, m.estate_id, b.booked_by, d.user_name, m.id AS member_id, m.name, m.phone FROM carshare_booking b
                JOIN carshare_member m ON m.id = b.rider_id LEFT JOIN carshare_driver d ON d.id = b.driver_id WHERE b.id = ANY(\(ids))
                """)
            var contacts: [Int64: RiderContact] = [:]
            for row in rows {
                let resource = AccessPolicy.Resource.booking(dwelling: try row["dwelling_id"], estate: try row["estate_id"],
                                                             bookedBy: try row["booked_by"], driverUser: try row["user_name"])
                guard AccessPolicy.allows(identity, .read, resource) else { continue }
                contacts[try row["id"]] = RiderContact(member: try row["member_id"], name: try row["name"], phone: try row["phone"] as String? ?? "")
            }
            return contacts
        }
    }

    public func editBooking(_ id: Int64, _ input: BookingEdit, by identity: Identity, at now: Instant) async throws -> BookingView {
        let purpose = try input.purpose.map { try Check.text($0, field: "purpose", max: 500) }
        return try await write { db in
            let current = try await booking(db, id)
            guard try await may(db, identity, .manage, booking: current) else {
                throw denied("booking", "booking \(id) is not yours to edit")
            }
            guard current.version == input.version else { throw BookingError.staleVersion(current: current.version, given: input.version) }
            guard current.status.isLive else { throw BookingError.notEditable(current.status) }
            guard let span = TimeSpan(start: input.start ?? current.start, end: input.end ?? current.end) else { throw BookingError.emptyInterval }
            try BookingRules.checkLength(span)
            let vehicle = try await vehicle(db, input.vehicle ?? current.vehicle)
            let date = zone.localDate(of: span.start)
            try await requireValidMembership(db, member: current.rider, on: date, field: "rider")
            if let driver = current.driver, let refusal = try await driverProfile(db, driver).refusal(on: date, licenceCheckValidDays: settings.licenceCheckValidDays) {
                throw refusal
            }
            if let conflict = BookingRules.conflict(id: id, vehicle: vehicle.id, driver: current.driver, span: span,
                                                    existing: try await liveSlots(db, overlapping: span, vehicle: vehicle.id, driver: current.driver)) {
                throw conflict
            }
            let updated = try await exists(db, """
                UPDATE carshare_booking SET vehicle_id = \(vehicle.id), start_at = \(span.start.millisecondsSince1970), end_at = \(span.end.millisecondsSince1970),
                    purpose = \(purpose ?? current.purpose), version = version + 1, updated_at = \(now.millisecondsSince1970)
                WHERE id = \(id) AND version = \(input.version) RETURNING id
                """)
            guard updated else { throw BookingError.staleVersion(current: current.version + 1, given: input.version) }
            try await recordEvent(db, booking: id, by: identity, from: current.status, to: current.status,
                                  reason: "modifiée : \(span)", driver: current.driver, at: now)
            return try await booking(db, id)
        }
    }

    public func changeStatus(_ id: Int64, _ input: BookingStatusChange, by identity: Identity, at now: Instant) async throws -> BookingView {
        let reason = try Check.text(input.reason, field: "reason", max: 500)
        guard input.status != .completed else {
            throw HubError(.unprocessable, code: "use_trip_log", field: "status", message: "a booking is completed by logging its trip (POST /carshare/trips)")
        }
        return try await write { db in
            let current = try await booking(db, id)
            guard try await may(db, identity, .read, booking: current) else { throw denied("booking", "booking \(id) is not yours") }
            let target = BookingRules.effectiveStatus(requested: input.status, start: current.start, now: now, lateHours: settings.lateCancellationHours)
            try BookingRules.checkRoleMaySet(identity.role, target)
            guard current.version == input.version else { throw BookingError.staleVersion(current: current.version, given: input.version) }
            let driver = input.driver ?? current.driver
            try BookingRules.checkTransition(from: current.status, to: target, hasDriver: driver != nil, reason: reason)
            if target == .confirmed, let driver {
                let span = TimeSpan(start: current.start, end: current.end)!
                if let refusal = try await driverProfile(db, driver).refusal(on: zone.localDate(of: span.start), licenceCheckValidDays: settings.licenceCheckValidDays) {
                    throw refusal
                }
                if let conflict = BookingRules.conflict(id: id, vehicle: current.vehicle, driver: driver, span: span,
                                                        existing: try await liveSlots(db, overlapping: span, vehicle: current.vehicle, driver: driver)) {
                    throw conflict
                }
            }
            var feeEntry: Int64?
            if BookingRules.keepsFee(target, settings: settings) {
                let date = today(now)
                if let fee = settings.tripFees.amount(on: zone.localDate(of: current.start)) {
                    let rider = try await memberScope(db, current.rider)
                    let label = (target == .noShow ? "Absence au trajet du " : "Trajet annulé tardivement, du ") + "\(zone.localDate(of: current.start).frenchText) — \(rider.name)"
                    feeEntry = try await charge(db, member: rider.id, amount: fee, income: .tripFees, date: date, kind: .tripFee, label: label,
                                                by: identity.name, at: now)?.number
                }
            }
            let newDriver: Int64? = target == .requested ? nil : driver
            let updated = try await exists(db, """
                UPDATE carshare_booking SET status = \(target.rawValue), driver_id = \(newDriver), fee_entry = COALESCE(\(feeEntry), fee_entry),
                    version = version + 1, updated_at = \(now.millisecondsSince1970)
                WHERE id = \(id) AND version = \(input.version) RETURNING id
                """)
            guard updated else { throw BookingError.staleVersion(current: current.version + 1, given: input.version) }
            try await recordEvent(db, booking: id, by: identity, from: current.status, to: target, reason: reason, driver: driver, at: now)
            return try await booking(db, id)
        }
    }
}

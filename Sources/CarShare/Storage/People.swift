import CarShareCore
import Foundation
import GRDB
import HubCore
import Shared

extension SQLiteCarShareStore {
    // MARK: members

    public func addMember(_ input: NewMember, by identity: Identity, at now: Instant) async throws -> MemberView {
        try identity.require(.manage, .members, "adding a member")
        let name = try Check.name(input.name)
        let phone = try Check.text(input.phone, field: "phone", max: 40)
        return try await write { db in
            var estate: String? = identity.estate
            if let dwelling = input.dwelling {
                guard let dwellingEstate = try String.fetchOne(db, sql: """
                    SELECT b.estate_id FROM dwelling d JOIN building b ON b.id = d.building_id WHERE d.id = ?
                    """, arguments: [dwelling]) else {
                    throw HubError.notFound(field: "dwelling", "no dwelling \(dwelling) in the registry")
                }
                if !AccessPolicy.allows(identity, .manage, .member(dwelling: dwelling, estate: dwellingEstate)) {
                    throw denied("dwelling", "dwelling \(dwelling) is not on your estate")
                }
                estate = dwellingEstate
            }
            try db.execute(sql: "INSERT INTO carshare_member (name, phone, dwelling_id, estate_id, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [name, phone, input.dwelling, estate, identity.name, now.millisecondsSince1970])
            return try member(db, db.lastInsertedRowID)
        }
    }

    func member(_ db: Database, _ id: Int64) throws -> MemberView {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM carshare_member WHERE id = ?", arguments: [id]) else {
            throw HubError.notFound(field: "member", "no member \(id)")
        }
        return MemberView(id: row["id"], name: row["name"], phone: row["phone"], dwelling: row["dwelling_id"], estate: row["estate_id"],
                          memberships: try memberships(db, member: id))
    }

    func memberships(_ db: Database, member: Int64) throws -> [MembershipView] {
        try Row.fetchAll(db, sql: "SELECT * FROM carshare_membership WHERE member_id = ? ORDER BY period_start", arguments: [member]).map(membershipView)
    }

    func membershipView(_ row: Row) -> MembershipView {
        let period = MembershipPeriod(start: LocalDate(parsing: row["period_start"] as String)!, end: LocalDate(parsing: row["period_end"] as String)!)
        return MembershipView(id: row["id"], member: row["member_id"], periodStart: period.start, periodEnd: period.end, feeCents: Cents(row["fee_cents"]),
                              purchasedOn: LocalDate(parsing: row["purchased_on"] as String)!, entry: row["entry_number"],
                              deferred: row["deferred"], label: "Adhésion \(period.frenchLabel)")
    }

    public func member(_ id: Int64, by identity: Identity) async throws -> MemberView {
        try await read { db in
            try requireSee(identity, try memberScope(db, id))
            return try member(db, id)
        }
    }

    public func members(by identity: Identity) async throws -> [MemberView] {
        try await read { db in
            try identity.require(.read, .members, "the member list (drivers see their assignments)")
            // The query narrows to the caller's members; the policy has the last word on each.
            let rows: [Row]
            let columns = "SELECT id, name, dwelling_id, estate_id FROM carshare_member"
            switch identity.role {
            case .association: rows = try Row.fetchAll(db, sql: columns + " WHERE estate_id = ? ORDER BY id", arguments: [identity.estate])
            case .resident: rows = try Row.fetchAll(db, sql: columns + " WHERE dwelling_id = ? ORDER BY id", arguments: [identity.dwelling])
            default: rows = try Row.fetchAll(db, sql: columns + " ORDER BY id")
            }
            return try rows.map { MemberScope(id: $0["id"], name: $0["name"], dwelling: $0["dwelling_id"], estate: $0["estate_id"]) }
                .filter { canSee(identity, $0) }.map { try member(db, $0.id) }
        }
    }

    /// The periods a member is covered for.
    func periods(_ db: Database, member: Int64) throws -> [MembershipPeriod] {
        try Row.fetchAll(db, sql: "SELECT period_start, period_end FROM carshare_membership WHERE member_id = ?", arguments: [member]).map {
            MembershipPeriod(start: LocalDate(parsing: $0["period_start"] as String)!, end: LocalDate(parsing: $0["period_end"] as String)!)
        }
    }

    func requireValidMembership(_ db: Database, member: Int64, on date: LocalDate, field: String) throws {
        guard MembershipRules.isValid(try periods(db, member: member), on: date) else {
            var error = BookingError.membershipNotValid(member: member, date: date).hubError
            error.field = field
            throw error
        }
    }

    // MARK: memberships

    /// Buys a membership: the fee in force when the period starts is charged to the member (from
    /// their prepaid credit first when the setting says so); a membership for next year goes to 487.
    public func buyMembership(member memberID: Int64, _ input: NewMembership, by identity: Identity, at now: Instant) async throws -> MembershipView {
        try identity.require(.manage, .members, "selling a membership")
        let (purchase, period, fee) = try membershipTerms(input, at: now)
        return try await write { db in
            let scope = try memberScope(db, memberID)
            try requireManage(identity, scope)
            if let overlapping = try periods(db, member: memberID).first(where: { $0.overlaps(period) }) {
                throw HubError.conflict(field: "start", code: "membership_exists", "member \(memberID) already has a membership \(overlapping.frenchLabel)")
            }
            let income = MembershipRules.incomeAccount(period: period, purchase: purchase, deferNextYear: settings.deferNextYearMemberships)
            let entry = try charge(db, member: memberID, amount: fee, income: income, date: purchase, kind: .membership,
                                   label: "Adhésion \(period.frenchLabel) — \(scope.name)", by: identity.name, at: now)
            try db.execute(sql: """
                INSERT INTO carshare_membership (member_id, period_start, period_end, fee_cents, purchased_on, entry_number, deferred, created_by, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [memberID, period.start.description, period.end.description, fee.value, purchase.description, entry?.number,
                                 income == .deferredIncome, identity.name, now.millisecondsSince1970])
            return membershipView(try Row.fetchOne(db, sql: "SELECT * FROM carshare_membership WHERE id = ?", arguments: [db.lastInsertedRowID])!)
        }
    }

    /// Moves the fees of memberships whose period has started by `date` from 487 to 756, once each.
    public func recognizeDeferredMemberships(on date: LocalDate, by identity: Identity, at now: Instant) async throws -> PostedView {
        try identity.require(.manage, .ledger, "recognising deferred memberships")
        return try await write { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT m.id, m.member_id, m.fee_cents, m.period_start, m.period_end, p.name FROM carshare_membership m JOIN carshare_member p ON p.id = m.member_id
                WHERE m.deferred = 1 AND m.recognition_entry IS NULL AND m.period_start <= ? AND m.fee_cents > 0 ORDER BY m.id
                """, arguments: [date.description])
            var posted: [EntryView] = []
            for row in rows {
                let period = MembershipPeriod(start: LocalDate(parsing: row["period_start"] as String)!, end: LocalDate(parsing: row["period_end"] as String)!)
                let fee = Cents(row["fee_cents"])
                let entry = try post(db, EntryDraft(date: max(period.start, date.firstOfMonth), kind: .recognition,
                                                    label: "Adhésion \(period.frenchLabel) — \(row["name"] as String) : produit de l'année",
                                                    // The entry names its member (its label does), so it is closed like theirs.
                                                    lines: [.debit(.deferredIncome, fee), .credit(.memberships, fee)], member: row["member_id"]),
                                     by: identity.name, at: now)
                try db.execute(sql: "UPDATE carshare_membership SET recognition_entry = ? WHERE id = ?", arguments: [entry.number, row["id"] as Int64])
                posted.append(EntryView(entry))
            }
            return PostedView(entries: posted)
        }
    }

    // MARK: drivers

    public func addDriver(_ input: NewDriver, by identity: Identity) async throws -> DriverView {
        try identity.require(.manage, .drivers, "adding a volunteer driver")
        let name = try Check.name(input.name)
        let phone = try Check.text(input.phone, field: "phone", max: 40)
        return try await write { db in
            if let user = input.user {
                guard let role = try String.fetchOne(db, sql: "SELECT role FROM hub_user WHERE name = ?", arguments: [user]) else {
                    throw HubError.notFound(field: "user", "no user named \(user)")
                }
                guard role == Role.driver.rawValue else { throw HubError.badRequest(field: "user", "user \(user) has the role \(role), not driver") }
                if try db.exists("SELECT 1 FROM carshare_driver WHERE user_name = ?", user) {
                    throw HubError.conflict(field: "user", code: "exists", "user \(user) is already linked to a driver")
                }
            }
            try db.execute(sql: "INSERT INTO carshare_driver (name, user_name, phone, licence_checked_on, trained_on, active) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [name, input.user, phone, input.licenceCheckedOn?.description, input.trainedOn?.description, input.active ?? true])
            return try driver(db, db.lastInsertedRowID)
        }
    }

    public func updateDriver(_ id: Int64, _ input: DriverUpdate, by identity: Identity) async throws -> DriverView {
        try identity.require(.manage, .drivers, "updating a volunteer driver")
        let phone = try input.phone.map { try Check.text($0, field: "phone", max: 40) }
        return try await write { db in
            let current = try driver(db, id)
            guard current.version == input.version else {
                throw BookingError.staleVersion(current: current.version, given: input.version).hubError
            }
            try db.execute(sql: """
                UPDATE carshare_driver SET licence_checked_on = ?, trained_on = ?, active = ?, phone = ?, version = version + 1 WHERE id = ? AND version = ?
                """, arguments: [(input.licenceCheckedOn ?? current.licenceCheckedOn)?.description, (input.trainedOn ?? current.trainedOn)?.description,
                                 input.active ?? current.active, phone ?? current.phone, id, input.version])
            return try driver(db, id)
        }
    }

    func driver(_ db: Database, _ id: Int64, field: String = "driver") throws -> DriverView {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM carshare_driver WHERE id = ?", arguments: [id]) else {
            throw HubError.notFound(field: field, "no driver \(id)")
        }
        return DriverView(id: row["id"], name: row["name"], user: row["user_name"], phone: row["phone"],
                          licenceCheckedOn: (row["licence_checked_on"] as String?).flatMap { LocalDate(parsing: $0) },
                          trainedOn: (row["trained_on"] as String?).flatMap { LocalDate(parsing: $0) }, active: row["active"], version: row["version"])
    }

    func driverProfile(_ db: Database, _ id: Int64) throws -> DriverProfile {
        let view = try driver(db, id)
        return DriverProfile(id: id, active: view.active, licenceCheckedOn: view.licenceCheckedOn, trainedOn: view.trainedOn)
    }

    public func drivers(by identity: Identity) async throws -> [DriverView] {
        try identity.require(.read, .drivers, "the volunteer drivers")
        return try await read { db in
            let ids = identity.role == .driver
                ? try Int64.fetchAll(db, sql: "SELECT id FROM carshare_driver WHERE user_name = ?", arguments: [identity.name])
                : try Int64.fetchAll(db, sql: "SELECT id FROM carshare_driver ORDER BY id")
            return try ids.map { try driver(db, $0) }
        }
    }

    // MARK: vehicles

    public func addVehicle(_ input: NewVehicle, by identity: Identity) async throws -> VehicleView {
        try identity.require(.manage, .vehicles, "adding a car")
        let (name, plate) = try Self.checkVehicle(input)
        return try await write { db in
            if try db.exists("SELECT 1 FROM carshare_vehicle WHERE plate = ?", plate) {
                throw HubError.conflict(field: "plate", code: "exists", "a car with the plate \(plate) already exists")
            }
            try db.execute(sql: "INSERT INTO carshare_vehicle (name, plate, battery_capacity_wh, initial_odometer_km) VALUES (?, ?, ?, ?)",
                           arguments: [name, plate, input.batteryCapacityWh?.value, input.initialOdometerKm ?? 0])
            return try vehicle(db, db.lastInsertedRowID)
        }
    }

    func vehicle(_ db: Database, _ id: Int64, field: String = "vehicle") throws -> VehicleView {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM carshare_vehicle WHERE id = ?", arguments: [id]) else {
            throw HubError.notFound(field: field, "no vehicle \(id)")
        }
        let initial: Int64 = row["initial_odometer_km"]
        let last = try Int64.fetchOne(db, sql: "SELECT end_odometer_km FROM carshare_trip WHERE vehicle_id = ? ORDER BY start_at DESC LIMIT 1", arguments: [id])
        return VehicleView(id: id, name: row["name"], plate: row["plate"], batteryCapacityWh: (row["battery_capacity_wh"] as Int64?).map(WattHours.init),
                           initialOdometerKm: initial, lastOdometerKm: last ?? initial, active: row["active"])
    }

    public func vehicles(by identity: Identity) async throws -> [VehicleView] {
        try identity.require(.read, .vehicles, "the cars")
        return try await read { db in try Int64.fetchAll(db, sql: "SELECT id FROM carshare_vehicle ORDER BY id").map { try vehicle(db, $0) } }
    }
}

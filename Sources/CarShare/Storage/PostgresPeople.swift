import CarShareCore
import Foundation
import HubCore
import PostgresNIO
import Shared

extension PostgresCarShareStore {
    // MARK: members

    public func addMember(_ input: NewMember, by identity: Identity, at now: Instant) async throws -> MemberView {
        try identity.require(.manage, .members, "adding a member")
        let name = try Check.name(input.name)
        let phone = try Check.text(input.phone, field: "phone", max: 40)
        return try await write { db in
            var estate: String? = identity.estate
            if let dwelling = input.dwelling {
                guard let dwellingEstate = try await db.scalar("""
                    SELECT b.estate_id FROM dwelling d JOIN building b ON b.id = d.building_id WHERE d.id = \(dwelling)
                    """, as: String.self, logger: logger) else {
                    throw HubError.notFound(field: "dwelling", "no dwelling \(dwelling) in the registry")
                }
                if !AccessPolicy.allows(identity, .manage, .member(dwelling: dwelling, estate: dwellingEstate)) {
                    throw denied("dwelling", "dwelling \(dwelling) is not on your estate")
                }
                estate = dwellingEstate
            }
            let id = try await db.scalar("""
                INSERT INTO carshare_member (name, phone, dwelling_id, estate_id, created_by, created_at)
                VALUES (\(name), \(phone), \(input.dwelling), \(estate), \(identity.name), \(now.millisecondsSince1970)) RETURNING id
                """, as: Int64.self, logger: logger)!
            return try await member(db, id)
        }
    }

    func member(_ db: PostgresConnection, _ id: Int64) async throws -> MemberView {
        guard let row = try await one(db, "SELECT id, name, phone, dwelling_id, estate_id FROM carshare_member WHERE id = \(id)") else {
            throw HubError.notFound(field: "member", "no member \(id)")
        }
        return MemberView(id: id, name: try row["name"], phone: try row["phone"], dwelling: try row["dwelling_id"], estate: try row["estate_id"],
                          memberships: try await memberships(db, member: id))
    }

    static let membershipColumns = "id, member_id, period_start, period_end, fee_cents, purchased_on, entry_number, deferred"

    func memberships(_ db: PostgresConnection, member: Int64) async throws -> [MembershipView] {
        try await all(db, "SELECT \(unescaped: Self.membershipColumns) FROM carshare_membership WHERE member_id = \(member) ORDER BY period_start").map(membershipView)
    }

    func membershipView(_ row: PGRow) throws -> MembershipView {
        let period = MembershipPeriod(start: try row.date("period_start"), end: try row.date("period_end"))
        return MembershipView(id: try row["id"], member: try row["member_id"], periodStart: period.start, periodEnd: period.end, feeCents: Cents(try row["fee_cents"]),
                              purchasedOn: try row.date("purchased_on"), entry: try row["entry_number"],
                              deferred: try row["deferred"], label: "Adhésion \(period.frenchLabel)")
    }

    public func member(_ id: Int64, by identity: Identity) async throws -> MemberView {
        try await read { db in
            try requireSee(identity, try await memberScope(db, id))
            return try await member(db, id)
        }
    }

    public func members(by identity: Identity) async throws -> [MemberView] {
        try await read { db in
            try identity.require(.read, .members, "the member list (drivers see their assignments)")
            // The query narrows to the caller's members; the policy has the last word on each.
            let rows: [PGRow]
            switch identity.role {
            case .association: rows = try await all(db, "SELECT id, name, dwelling_id, estate_id FROM carshare_member WHERE estate_id = \(identity.estate) ORDER BY id")
            case .resident: rows = try await all(db, "SELECT id, name, dwelling_id, estate_id FROM carshare_member WHERE dwelling_id = \(identity.dwelling) ORDER BY id")
            default: rows = try await all(db, "SELECT id, name, dwelling_id, estate_id FROM carshare_member ORDER BY id")
            }
            var views: [MemberView] = []
            for scope in try rows.map({ try $0.memberScope() }) where canSee(identity, scope) { views.append(try await member(db, scope.id)) }
            return views
        }
    }

    func periods(_ db: PostgresConnection, member: Int64) async throws -> [MembershipPeriod] {
        try await all(db, "SELECT period_start, period_end FROM carshare_membership WHERE member_id = \(member)").map {
            MembershipPeriod(start: try $0.date("period_start"), end: try $0.date("period_end"))
        }
    }

    func requireValidMembership(_ db: PostgresConnection, member: Int64, on date: LocalDate, field: String) async throws {
        guard MembershipRules.isValid(try await periods(db, member: member), on: date) else {
            var error = BookingError.membershipNotValid(member: member, date: date).hubError
            error.field = field
            throw error
        }
    }

    // MARK: memberships

    public func buyMembership(member memberID: Int64, _ input: NewMembership, by identity: Identity, at now: Instant) async throws -> MembershipView {
        try identity.require(.manage, .members, "selling a membership")
        let (purchase, period, fee) = try membershipTerms(input, at: now)
        return try await write { db in
            let scope = try await memberScope(db, memberID)
            try requireManage(identity, scope)
            if let overlapping = try await periods(db, member: memberID).first(where: { $0.overlaps(period) }) {
                throw HubError.conflict(field: "start", code: "membership_exists", "member \(memberID) already has a membership \(overlapping.frenchLabel)")
            }
            let income = MembershipRules.incomeAccount(period: period, purchase: purchase, deferNextYear: settings.deferNextYearMemberships)
            let entry = try await charge(db, member: memberID, amount: fee, income: income, date: purchase, kind: .membership,
                                         label: "Adhésion \(period.frenchLabel) — \(scope.name)", by: identity.name, at: now)
            let row = try await one(db, """
                INSERT INTO carshare_membership (member_id, period_start, period_end, fee_cents, purchased_on, entry_number, deferred, created_by, created_at)
                VALUES (\(memberID), \(period.start.description), \(period.end.description), \(fee.value), \(purchase.description), \(entry?.number),
                        \(income == .deferredIncome), \(identity.name), \(now.millisecondsSince1970)) RETURNING \(unescaped: Self.membershipColumns)
                """)
            return try membershipView(row!)
        }
    }

    public func recognizeDeferredMemberships(on date: LocalDate, by identity: Identity, at now: Instant) async throws -> PostedView {
        try identity.require(.manage, .ledger, "recognising deferred memberships")
        return try await write { db in
            let rows = try await all(db, """
                SELECT m.id, m.member_id, m.fee_cents, m.period_start, m.period_end, p.name FROM carshare_membership m JOIN carshare_member p ON p.id = m.member_id
                WHERE m.deferred AND m.recognition_entry IS NULL AND m.period_start <= \(date.description) AND m.fee_cents > 0 ORDER BY m.id
                """)
            var posted: [EntryView] = []
            for row in rows {
                let period = MembershipPeriod(start: try row.date("period_start"), end: try row.date("period_end"))
                let fee = Cents(try row["fee_cents"])
                let name: String = try row["name"]
                let entry = try await post(db, EntryDraft(date: max(period.start, date.firstOfMonth), kind: .recognition,
                                                          label: "Adhésion \(period.frenchLabel) — \(name) : produit de l'année",
                                                          // The entry names its member (its label does), so it is closed like theirs.
                                                          lines: [.debit(.deferredIncome, fee), .credit(.memberships, fee)], member: try row["member_id"]),
                                           by: identity.name, at: now)
                let id: Int64 = try row["id"]
                try await run(db, "UPDATE carshare_membership SET recognition_entry = \(entry.number) WHERE id = \(id)")
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
                guard let role = try await db.scalar("SELECT role FROM hub_user WHERE name = \(user)", as: String.self, logger: logger) else {
                    throw HubError.notFound(field: "user", "no user named \(user)")
                }
                guard role == Role.driver.rawValue else { throw HubError.badRequest(field: "user", "user \(user) has the role \(role), not driver") }
                if try await exists(db, "SELECT 1 FROM carshare_driver WHERE user_name = \(user)") {
                    throw HubError.conflict(field: "user", code: "exists", "user \(user) is already linked to a driver")
                }
            }
            let id = try await db.scalar("""
                INSERT INTO carshare_driver (name, user_name, phone, licence_checked_on, trained_on, active)
                VALUES (\(name), \(input.user), \(phone), \(input.licenceCheckedOn?.description), \(input.trainedOn?.description), \(input.active ?? true))
                RETURNING id
                """, as: Int64.self, logger: logger)!
            return try await driver(db, id)
        }
    }

    public func updateDriver(_ id: Int64, _ input: DriverUpdate, by identity: Identity) async throws -> DriverView {
        try identity.require(.manage, .drivers, "updating a volunteer driver")
        let phone = try input.phone.map { try Check.text($0, field: "phone", max: 40) }
        return try await write { db in
            let current = try await driver(db, id)
            guard current.version == input.version else {
                throw BookingError.staleVersion(current: current.version, given: input.version).hubError
            }
            try await run(db, """
                UPDATE carshare_driver SET licence_checked_on = \((input.licenceCheckedOn ?? current.licenceCheckedOn)?.description),
                    trained_on = \((input.trainedOn ?? current.trainedOn)?.description), active = \(input.active ?? current.active),
                    phone = \(phone ?? current.phone), version = version + 1 WHERE id = \(id) AND version = \(input.version)
                """)
            return try await driver(db, id)
        }
    }

    func driver(_ db: PostgresConnection, _ id: Int64, field: String = "driver") async throws -> DriverView {
        guard let row = try await one(db, """
            SELECT id, name, user_name, phone, licence_checked_on, trained_on, active, version FROM carshare_driver WHERE id = \(id)
            """) else {
            throw HubError.notFound(field: field, "no driver \(id)")
        }
        return DriverView(id: id, name: try row["name"], user: try row["user_name"], phone: try row["phone"],
                          licenceCheckedOn: (try row["licence_checked_on"] as String?).flatMap { LocalDate(parsing: $0) },
                          trainedOn: (try row["trained_on"] as String?).flatMap { LocalDate(parsing: $0) }, active: try row["active"], version: try row["version"])
    }

    func driverProfile(_ db: PostgresConnection, _ id: Int64) async throws -> DriverProfile {
        let view = try await driver(db, id)
        return DriverProfile(id: id, active: view.active, licenceCheckedOn: view.licenceCheckedOn, trainedOn: view.trainedOn)
    }

    public func drivers(by identity: Identity) async throws -> [DriverView] {
        try identity.require(.read, .drivers, "the volunteer drivers")
        return try await read { db in
            let ids = identity.role == .driver
                ? try await db.column("SELECT id FROM carshare_driver WHERE user_name = \(identity.name)", as: Int64.self, logger: logger)
                : try await db.column("SELECT id FROM carshare_driver ORDER BY id", as: Int64.self, logger: logger)
            var views: [DriverView] = []
            for id in ids { views.append(try await driver(db, id)) }
            return views
        }
    }

    // MARK: vehicles

    public func addVehicle(_ input: NewVehicle, by identity: Identity) async throws -> VehicleView {
        try identity.require(.manage, .vehicles, "adding a car")
        let (name, plate) = try Self.checkVehicle(input)
        return try await write { db in
            if try await exists(db, "SELECT 1 FROM carshare_vehicle WHERE plate = \(plate)") {
                throw HubError.conflict(field: "plate", code: "exists", "a car with the plate \(plate) already exists")
            }
            let id = try await db.scalar("""
                INSERT INTO carshare_vehicle (name, plate, battery_capacity_wh, initial_odometer_km)
                VALUES (\(name), \(plate), \(input.batteryCapacityWh?.value), \(input.initialOdometerKm ?? 0)) RETURNING id
                """, as: Int64.self, logger: logger)!
            return try await vehicle(db, id)
        }
    }

    func vehicle(_ db: PostgresConnection, _ id: Int64, field: String = "vehicle") async throws -> VehicleView {
        guard let row = try await one(db, """
            SELECT name, plate, battery_capacity_wh, initial_odometer_km, active FROM carshare_vehicle WHERE id = \(id)
            """) else {
            throw HubError.notFound(field: field, "no vehicle \(id)")
        }
        let initial: Int64 = try row["initial_odometer_km"]
        let last = try await db.scalar("SELECT end_odometer_km FROM carshare_trip WHERE vehicle_id = \(id) ORDER BY start_at DESC LIMIT 1",
                                       as: Int64.self, logger: logger)
        return VehicleView(id: id, name: try row["name"], plate: try row["plate"], batteryCapacityWh: (try row["battery_capacity_wh"] as Int64?).map(WattHours.init),
                           initialOdometerKm: initial, lastOdometerKm: last ?? initial, active: try row["active"])
    }

    public func vehicles(by identity: Identity) async throws -> [VehicleView] {
        try identity.require(.read, .vehicles, "the cars")
        return try await read { db in
            var views: [VehicleView] = []
            for id in try await db.column("SELECT id FROM carshare_vehicle ORDER BY id", as: Int64.self, logger: logger) { views.append(try await vehicle(db, id)) }
            return views
        }
    }
}

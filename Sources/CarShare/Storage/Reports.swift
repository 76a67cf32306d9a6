import CarShareCore
import Foundation
import GRDB
import HubCore
import Shared

extension SQLiteCarShareStore {
    /// Balances per account and per member, summed from the lines (never a stored counter).
    public func balances(by identity: Identity) async throws -> BalancesReport {
        try identity.require(.read, .ledger, "the association's accounts")
        return try await read { db in
            var report = try balances(db)
            // The accounts are the association's, whole; of the members, the caller's own.
            if identity.role != .staff {
                let members = try memberScopes(db)
                report.members = report.members.filter { members[$0.member].map { canSee(identity, $0) } ?? false }
            }
            return report
        }
    }

    func balances(_ db: Database) throws -> BalancesReport {
        let rows = try Row.fetchAll(db, sql: """
            SELECT account, member_id, SUM(MAX(amount_cents, 0)) AS debit, SUM(MAX(-amount_cents, 0)) AS credit, COUNT(*) AS n
            FROM carshare_entry_line GROUP BY account, member_id
            """)
        return Self.balancesReport(rows.map { BalanceRow(account: $0["account"], member: $0["member_id"], debit: $0["debit"], credit: $0["credit"], lines: $0["n"]) })
    }

    public func statement(member memberID: Int64, by identity: Identity) async throws -> MemberStatement {
        try await read { db in
            let scope = try memberScope(db, memberID)
            try requireSee(identity, scope)
            let memberships = try memberships(db, member: memberID)
            let trips = try Int64.fetchAll(db, sql: """
                SELECT t.id FROM carshare_trip t JOIN carshare_trip_rider r ON r.trip_id = t.id WHERE r.member_id = ? ORDER BY t.start_at
                """, arguments: [memberID]).map { try trip(db, $0) }
            let rows = try Row.fetchAll(db, sql: """
                SELECT e.number, e.date, e.label, l.account, SUM(l.amount_cents) AS amount FROM carshare_entry_line l
                JOIN carshare_entry e ON e.number = l.entry_number WHERE l.member_id = ? GROUP BY e.number, l.account ORDER BY e.date, e.number
                """, arguments: [memberID])
            return Self.memberStatement(member: memberID, name: scope.name, memberships: memberships, trips: trips,
                                        rows: rows.map { (number: $0["number"], date: LocalDate(parsing: $0["date"] as String)!, label: $0["label"], amount: Cents($0["amount"])) },
                                        position: try memberBalance(db, memberID))
        }
    }

    public func cashBook(from: LocalDate, to: LocalDate, by identity: Identity) async throws -> CashBook {
        try identity.require(.read, .ledger, "the association's accounts")
        guard from <= to else { throw HubError.badRequest(field: "to", code: "invalid_range", "to must not be before from") }
        return try await read { db in
            let opening = Cents(try Int64.fetchOne(db, sql: """
                SELECT COALESCE(SUM(l.amount_cents), 0) FROM carshare_entry_line l JOIN carshare_entry e ON e.number = l.entry_number
                WHERE l.account = '530' AND e.date < ?
                """, arguments: [from.description]) ?? 0)
            var balance = opening
            let rows = try Row.fetchAll(db, sql: """
                SELECT e.number, e.date, e.label, e.kind, e.reverses, e.corrects, SUM(l.amount_cents) AS amount FROM carshare_entry_line l
                JOIN carshare_entry e ON e.number = l.entry_number
                WHERE l.account = '530' AND e.date >= ? AND e.date <= ? GROUP BY e.number ORDER BY e.date, e.number
                """, arguments: [from.description, to.description])
            // The cash box is the association's, every movement counted; a movement of a member of
            // another estate shows without their name.
            var named: [Int64: Set<Int64>] = [:]
            var members: [Int64: MemberScope] = [:]
            if identity.role != .staff {
                members = try memberScopes(db)
                for row in try Row.fetchAll(db, sql: """
                    SELECT e.number, e.member_id AS entry_member, l.member_id AS line_member FROM carshare_entry e
                    LEFT JOIN carshare_entry_line l ON l.entry_number = e.number AND l.member_id IS NOT NULL
                    WHERE e.date >= ? AND e.date <= ?
                    """, arguments: [from.description, to.description]) {
                    let number: Int64 = row["number"]
                    for member in [row["entry_member"], row["line_member"]] as [Int64?] { if let member { named[number, default: []].insert(member) } }
                }
            }
            let lines = rows.map { row -> CashBookLine in
                let amount = Cents(row["amount"])
                balance = balance + amount
                let number: Int64 = row["number"]
                var label: String = row["label"]
                if identity.role != .staff, let people = named[number],
                   AccessPolicy.disclosesLedgerEntry(identity, memberEstates: people.map { members[$0]?.estate }) != .whole {
                    label = PostedEntry.otherEstateLabel(kind: EntryKind(rawValue: row["kind"]) ?? .manual, reverses: row["reverses"], corrects: row["corrects"])
                }
                return CashBookLine(date: LocalDate(parsing: row["date"] as String)!, entry: number, label: label,
                                    inCents: amount > .zero ? amount : .zero, outCents: amount < .zero ? -amount : .zero, balanceCents: balance)
            }
            return CashBook(from: from, to: to, openingCents: opening, lines: lines, closingCents: balance)
        }
    }

    public func incomeStatement(month: String, by identity: Identity) async throws -> IncomeStatement {
        try identity.require(.read, .ledger, "the association's accounts")
        guard month.count == 7, let first = LocalDate(parsing: month + "-01") else {
            throw HubError.badRequest(field: "month", code: "invalid_date", "month must be YYYY-MM")
        }
        return try await read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT l.account, SUM(l.amount_cents) AS amount FROM carshare_entry_line l JOIN carshare_entry e ON e.number = l.entry_number
                WHERE e.date >= ? AND e.date < ? AND (l.account LIKE '6%' OR l.account LIKE '7%') GROUP BY l.account ORDER BY l.account
                """, arguments: [first.description, first.firstOfNextMonth.description])
            var statement = Self.incomeStatement(month: month, rows: rows.map { (account: $0["account"], amount: Cents($0["amount"])) })
            statement.carUse = try carUse(db, from: zone.startOfDay(first), to: zone.startOfDay(first.firstOfNextMonth)).figures
            return statement
        }
    }

    /// Trips whose start falls on local days [from, to], with kilometres and energy.
    public func tripList(from: LocalDate, to: LocalDate, vehicle: Int64?, by identity: Identity) async throws -> TripList {
        try identity.require(.read, .trips, "the trips")
        guard from <= to else { throw HubError.badRequest(field: "to", code: "invalid_range", "to must not be before from") }
        let start = zone.startOfDay(from).millisecondsSince1970
        let end = zone.startOfDay(to.advanced(by: 1)).millisecondsSince1970
        return try await read { db in
            var sql = "SELECT t.id FROM carshare_trip t WHERE t.start_at >= ? AND t.start_at < ?"
            var arguments: [any DatabaseValueConvertible] = [start, end]
            if let vehicle { sql += " AND t.vehicle_id = ?"; arguments.append(vehicle) }
            if identity.role == .driver { sql += " AND t.driver_id = ?"; arguments.append(try driverID(of: identity, db) ?? -1) }
            if identity.role == .association {
                // The association's own runs, and rides with one of its estate's members.
                sql += " AND (t.kind <> 'ride' OR EXISTS (SELECT 1 FROM carshare_trip_rider r JOIN carshare_member m ON m.id = r.member_id WHERE r.trip_id = t.id AND m.estate_id = ?))"
                arguments.append(identity.estate ?? "")
            }
            var trips = try Int64.fetchAll(db, sql: sql + " ORDER BY t.start_at", arguments: StatementArguments(arguments)).map { try trip(db, $0) }
            if identity.role == .association {
                // A ride shared with a member of another estate lists that rider to nobody but their own.
                let members = try memberScopes(db)
                for index in trips.indices { trips[index].riders.removeAll { rider in !(members[rider.member].map { canSee(identity, $0) } ?? false) } }
            }
            var chargingSQL = "SELECT COALESCE(SUM(energy_wh), 0) AS wh, COALESCE(SUM(cost_cents), 0) AS cost FROM carshare_charging WHERE at >= ? AND at < ?"
            var chargingArguments: [any DatabaseValueConvertible] = [start, end]
            if let vehicle { chargingSQL += " AND vehicle_id = ?"; chargingArguments.append(vehicle) }
            let charging = try Row.fetchOne(db, sql: chargingSQL, arguments: StatementArguments(chargingArguments))!
            return TripList(from: from, to: to, trips: trips, totalKm: trips.reduce(0) { $0 + $1.distanceKm },
                            estimatedEnergyWh: WattHours(trips.reduce(0) { $0 + ($1.energyWh?.value ?? 0) }),
                            chargedEnergyWh: WattHours(charging["wh"]), chargingCostCents: Cents(charging["cost"]),
                            flaggedTrips: trips.filter { !$0.flags.isEmpty }.count)
        }
    }

    /// The préfet's annual report of the social-transport regime.
    public func prefectReport(year: Int, by identity: Identity) async throws -> PrefectReport {
        try identity.require(.read, .ledger, "the association's accounts")
        guard (2000...2200).contains(year) else { throw HubError.badRequest(field: "year", "year must be between 2000 and 2200") }
        let start = zone.startOfDay(LocalDate(year: year, month: 1, day: 1)!).millisecondsSince1970
        let end = zone.startOfDay(LocalDate(year: year + 1, month: 1, day: 1)!).millisecondsSince1970
        return try await read { db in
            // Rides for members only: the association's own runs, charging runs and the garage are
            // not social transport (the report says so).
            let trips = try Int64.fetchAll(db, sql: "SELECT id FROM carshare_trip WHERE kind = 'ride' AND start_at >= ? AND start_at < ? ORDER BY start_at",
                                           arguments: [start, end]).map { try trip(db, $0) }
            return PrefectReport.make(year: year, trips: trips.map {
                TripFacts(kilometres: $0.distanceKm, driver: $0.driver, vehicle: $0.vehicle, riders: $0.riders.map(\.member),
                          participation: $0.riders.reduce(Cents.zero) { $0 + $1.feeCents })
            })
        }
    }

    /// A car's logbook for a local month: every line, the odometer gaps (explained or not) and the
    /// month's figures.
    public func logbook(vehicle vehicleID: Int64, month: String, by identity: Identity) async throws -> LogbookView {
        try identity.require(.read, .logbook, "the car's logbook")
        guard month.count == 7, let first = LocalDate(parsing: month + "-01") else {
            throw HubError.badRequest(field: "month", code: "invalid_date", "month \(month) is not YYYY-MM")
        }
        let next = first.advanced(by: LocalDate.daysIn(year: first.year, month: first.month))
        let start = zone.startOfDay(first)
        let end = zone.startOfDay(next)
        return try await read { db in
            let vehicle = try vehicle(db, vehicleID)
            let (lines, gaps, figures) = try logbookLines(db, vehicle: vehicle, from: start, to: end)
            return LogbookView(vehicle: vehicle, month: month, lines: lines, gaps: gaps, figures: figures)
        }
    }

    func logbookLines(_ db: Database, vehicle: VehicleView, from start: Instant, to end: Instant) throws -> ([LogbookLine], [OdometerGap], LogbookFigures) {
        let ids = try Int64.fetchAll(db, sql: "SELECT id FROM carshare_trip WHERE vehicle_id = ? AND start_at >= ? AND start_at < ? ORDER BY start_at, id",
                                     arguments: [vehicle.id, start.millisecondsSince1970, end.millisecondsSince1970])
        let lines = try ids.map { id in
            let trip = try trip(db, id)
            let name = try String.fetchOne(db, sql: "SELECT name FROM carshare_driver WHERE id = ?", arguments: [trip.driver]) ?? "?"
            return LogbookLine(trip: trip, driverName: name)
        }
        let before = try Row.fetchOne(db, sql: "SELECT end_odometer_km, end_at FROM carshare_trip WHERE vehicle_id = ? AND start_at < ? ORDER BY start_at DESC LIMIT 1",
                                      arguments: [vehicle.id, start.millisecondsSince1970])
        let notes = try odometerNotes(db, vehicle: vehicle.id)
        let gaps = OdometerContinuity.gaps(lines: lines.map { ($0.trip.start, $0.trip.end, $0.trip.startOdometerKm, $0.trip.endOdometerKm) },
                                           previousKm: before?["end_odometer_km"] ?? vehicle.initialOdometerKm,
                                           previousEnd: (before?["end_at"] as Int64?).map(Instant.init(millisecondsSince1970:)), notes: notes)
        let charged = try Row.fetchOne(db, sql: "SELECT COALESCE(SUM(energy_wh), 0) AS wh, COALESCE(SUM(cost_cents), 0) AS cost FROM carshare_charging WHERE vehicle_id = ? AND at >= ? AND at < ?",
                                       arguments: [vehicle.id, start.millisecondsSince1970, end.millisecondsSince1970])!
        let figures = LogbookFigures.make(lines: lines.map { ($0.trip.kind, $0.trip.distanceKm, $0.trip.householdsServed) }, gaps: gaps,
                                          chargedWh: charged["wh"], chargingCost: Cents(charged["cost"]))
        return (lines, gaps, figures)
    }

    func odometerNotes(_ db: Database, vehicle: Int64) throws -> [OdometerNote] {
        try Row.fetchAll(db, sql: "SELECT * FROM carshare_odometer_note WHERE vehicle_id = ? ORDER BY from_km, id", arguments: [vehicle]).map {
            OdometerNote(id: $0["id"], vehicle: $0["vehicle_id"], fromKm: $0["from_km"], toKm: $0["to_km"], note: $0["note"], notedBy: $0["noted_by"],
                         notedAt: Instant(millisecondsSince1970: $0["noted_at"]))
        }
    }

    /// Explains kilometres nobody logged (a gap in the odometer) with a note.
    public func addOdometerNote(vehicle vehicleID: Int64, _ input: NewOdometerNote, by identity: Identity, at now: Instant) async throws -> OdometerNote {
        try identity.require(.manage, .logbook, "explaining the car's odometer")
        let note = try Self.checkOdometerNote(input)
        return try await write { db in
            let vehicle = try vehicle(db, vehicleID)
            try db.execute(sql: "INSERT INTO carshare_odometer_note (vehicle_id, from_km, to_km, note, noted_by, noted_at) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [vehicle.id, input.fromKm, input.toKm, note, identity.name, now.millisecondsSince1970])
            return OdometerNote(id: db.lastInsertedRowID, vehicle: vehicle.id, fromKm: input.fromKm, toKm: input.toKm, note: note, notedBy: identity.name, notedAt: now)
        }
    }

    /// The association's activity over local days [from, to], every car together: kilometres by
    /// kind of use, deliveries and households served, charging, unexplained kilometres.
    public func activityReport(from: LocalDate, to: LocalDate, by identity: Identity) async throws -> ActivityReport {
        try identity.require(.read, .ledger, "the association's activity report")
        guard from <= to else { throw HubError.badRequest(field: "to", code: "invalid_range", "to must not be before from") }
        guard from.distance(to: to) <= 366 else { throw HubError.badRequest(field: "to", code: "invalid_range", "a report covers at most a year") }
        let start = zone.startOfDay(from)
        let end = zone.startOfDay(to.advanced(by: 1))
        return try await read { db in
            let use = try carUse(db, from: start, to: end)
            return ActivityReport(from: from, to: to, figures: use.figures, unexplainedGaps: use.unexplainedGaps)
        }
    }

    /// Every car's use over [from, to): the logbook figures summed over the cars.
    func carUse(_ db: Database, from start: Instant, to end: Instant) throws -> (figures: LogbookFigures, unexplainedGaps: Int) {
        var lines: [(kind: TripKind, kilometres: Int64, householdsServed: Int?)] = []
        var gaps: [OdometerGap] = []
        var chargedWh: Int64 = 0
        var cost = Cents.zero
        for vehicleID in try Int64.fetchAll(db, sql: "SELECT id FROM carshare_vehicle ORDER BY id") {
            let (vehicleLines, vehicleGaps, figures) = try logbookLines(db, vehicle: try vehicle(db, vehicleID), from: start, to: end)
            lines += vehicleLines.map { ($0.trip.kind, $0.trip.distanceKm, $0.trip.householdsServed) }
            gaps += vehicleGaps
            chargedWh += figures.chargedWh
            cost = cost + figures.chargingCostCents
        }
        return (LogbookFigures.make(lines: lines, gaps: gaps, chargedWh: chargedWh, chargingCost: cost), gaps.filter { $0.explanation == nil }.count)
    }

    /// The ledger as an hledger journal.
    public func journal(by identity: Identity) async throws -> String {
        guard AccessPolicy.allows(identity, .read, .ledger) else { throw denied("role", "the ledger is for the association and the landlord's staff; you are \(identity.role.rawValue)") }
        return try await read { db in
            let members = try memberScopes(db)
            return HledgerJournal.export(try allEntries(db).compactMap { disclosed($0, to: identity, members: members) })
        }
    }

    /// Checks the hash chain and the numbering of every posted entry.
    public func verify(by identity: Identity) async throws -> VerifyReport {
        guard AccessPolicy.allows(identity, .read, .ledger) else { throw denied("role", "the ledger is for the association and the landlord's staff; you are \(identity.role.rawValue)") }
        return try await read { db in try verify(db) }
    }

    public func verifySync() throws -> VerifyReport {
        try database.readBlocking { db in try verify(db) }
    }

    func verify(_ db: Database) throws -> VerifyReport {
        try Self.verifyReport(entries: allEntries(db),
                              receipts: Int64.fetchAll(db, sql: "SELECT receipt FROM carshare_entry WHERE receipt IS NOT NULL ORDER BY receipt"),
                              closedMonths: String.fetchAll(db, sql: "SELECT month FROM carshare_closed_month ORDER BY month"), anchors: anchors)
    }
}

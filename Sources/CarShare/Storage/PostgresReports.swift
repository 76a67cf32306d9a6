import CarShareCore
import Foundation
import HubCore
import PostgresNIO
import Shared

extension PostgresCarShareStore {
    public func balances(by identity: Identity) async throws -> BalancesReport {
        try identity.require(.read, .ledger, "the association's accounts")
        return try await read { db in
            let rows = try await all(db, """
                SELECT account, member_id, SUM(GREATEST(amount_cents, 0))::bigint AS debit, SUM(GREATEST(-amount_cents, 0))::bigint AS credit, COUNT(*) AS n
                FROM carshare_entry_line GROUP BY account, member_id
                """)
            var report = Self.balancesReport(try rows.map {
                BalanceRow(account: try $0["account"], member: try $0["member_id"], debit: try $0["debit"], credit: try $0["credit"], lines: try $0["n"])
            })
            // The accounts are the association's, whole; of the members, the caller's own.
            if identity.role != .staff {
                let members = try await memberScopes(db)
                report.members = report.members.filter { members[$0.member].map { canSee(identity, $0) } ?? false }
            }
            return report
        }
    }

    public func statement(member memberID: Int64, by identity: Identity) async throws -> MemberStatement {
        try await read { db in
            let scope = try await memberScope(db, memberID)
            try requireSee(identity, scope)
            let memberships = try await memberships(db, member: memberID)
            var trips: [TripView] = []
            for id in try await db.column("""
                SELECT t.id FROM carshare_trip t JOIN carshare_trip_rider r ON r.trip_id = t.id WHERE r.member_id = \(memberID) ORDER BY t.start_at
                """, as: Int64.self, logger: logger) {
                trips.append(try await trip(db, id))
            }
            let rows = try await all(db, """
                SELECT e.number, e.date, e.label, l.account, SUM(l.amount_cents)::bigint AS amount FROM carshare_entry_line l
                JOIN carshare_entry e ON e.number = l.entry_number WHERE l.member_id = \(memberID)
                GROUP BY e.number, l.account ORDER BY e.date, e.number
                """)
            return Self.memberStatement(member: memberID, name: scope.name, memberships: memberships, trips: trips,
                                        rows: try rows.map { (number: try $0["number"], date: try $0.date("date"), label: try $0["label"], amount: Cents(try $0["amount"])) },
                                        position: try await memberBalance(db, memberID))
        }
    }

    public func cashBook(from: LocalDate, to: LocalDate, by identity: Identity) async throws -> CashBook {
        try identity.require(.read, .ledger, "the association's accounts")
        guard from <= to else { throw HubError.badRequest(field: "to", code: "invalid_range", "to must not be before from") }
        return try await read { db in
            let opening = Cents(try await db.scalar("""
                SELECT COALESCE(SUM(l.amount_cents), 0)::bigint FROM carshare_entry_line l JOIN carshare_entry e ON e.number = l.entry_number
                WHERE l.account = '530' AND e.date < \(from.description)
                """, as: Int64.self, logger: logger) ?? 0)
            var balance = opening
            let rows = try await all(db, """
                SELECT e.number, e.date, e.label, e.kind, e.reverses, e.corrects, SUM(l.amount_cents)::bigint AS amount FROM carshare_entry_line l
                JOIN carshare_entry e ON e.number = l.entry_number
                WHERE l.account = '530' AND e.date >= \(from.description) AND e.date <= \(to.description) GROUP BY e.number ORDER BY e.date, e.number
                """)
            // A movement of a member of another estate shows without their name.
            var named: [Int64: Set<Int64>] = [:]
            var members: [Int64: MemberScope] = [:]
            if identity.role != .staff {
                members = try await memberScopes(db)
                for row in try await all(db, """
                    SELECT e.number, e.member_id AS entry_member, l.member_id AS line_member FROM carshare_entry e
                    LEFT JOIN carshare_entry_line l ON l.entry_number = e.number AND l.member_id IS NOT NULL
                    WHERE e.date >= \(from.description) AND e.date <= \(to.description)
                    """) {
                    let number: Int64 = try row["number"]
                    for member in [try row["entry_member"], try row["line_member"]] as [Int64?] { if let member { named[number, default: []].insert(member) } }
                }
            }
            let lines = try rows.map { row -> CashBookLine in
                let amount = Cents(try row["amount"])
                balance = balance + amount
                let number: Int64 = try row["number"]
                var label: String = try row["label"]
                if identity.role != .staff, let people = named[number],
                   AccessPolicy.disclosesLedgerEntry(identity, memberEstates: people.map { members[$0]?.estate }) != .whole {
                    label = PostedEntry.otherEstateLabel(kind: EntryKind(rawValue: try row["kind"]) ?? .manual, reverses: try row["reverses"], corrects: try row["corrects"])
                }
                return CashBookLine(date: try row.date("date"), entry: number, label: label,
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
            let rows = try await all(db, """
                SELECT l.account, SUM(l.amount_cents)::bigint AS amount FROM carshare_entry_line l JOIN carshare_entry e ON e.number = l.entry_number
                WHERE e.date >= \(first.description) AND e.date < \(first.firstOfNextMonth.description) AND (l.account LIKE '6%' OR l.account LIKE '7%')
                GROUP BY l.account ORDER BY l.account COLLATE "C"
                """)
            var statement = Self.incomeStatement(month: month, rows: try rows.map { (account: try $0["account"], amount: Cents(try $0["amount"])) })
            statement.carUse = try await carUse(db, from: zone.startOfDay(first), to: zone.startOfDay(first.firstOfNextMonth)).figures
            return statement
        }
    }

    public func tripList(from: LocalDate, to: LocalDate, vehicle: Int64?, by identity: Identity) async throws -> TripList {
        try identity.require(.read, .trips, "the trips")
        guard from <= to else { throw HubError.badRequest(field: "to", code: "invalid_range", "to must not be before from") }
        let start = zone.startOfDay(from).millisecondsSince1970
        let end = zone.startOfDay(to.advanced(by: 1)).millisecondsSince1970
        return try await read { db in
            let driver: Int64? = identity.role == .driver ? try await driverID(of: identity, db) ?? -1 : nil
            // The association's own runs, and rides with one of its estate's members.
            let estate: String? = identity.role == .association ? identity.estate ?? "" : nil
            var trips: [TripView] = []
            for id in try await db.column("""
                SELECT t.id FROM carshare_trip t WHERE t.start_at >= \(start) AND t.start_at < \(end)
                  AND (\(vehicle)::bigint IS NULL OR t.vehicle_id = \(vehicle))
                  AND (\(driver)::bigint IS NULL OR t.driver_id = \(driver))
                  AND (\(estate)::text IS NULL OR t.kind <> 'ride' OR EXISTS (SELECT 1 FROM carshare_trip_rider r JOIN carshare_member m ON m.id = r.member_id
                                                                         WHERE r.trip_id = t.id AND m.estate_id = \(estate)))
                ORDER BY t.start_at
                """, as: Int64.self, logger: logger) {
                trips.append(try await trip(db, id))
            }
            if identity.role == .association {
                // A ride shared with a member of another estate lists that rider to nobody but their own.
                let members = try await memberScopes(db)
                for index in trips.indices { trips[index].riders.removeAll { rider in !(members[rider.member].map { canSee(identity, $0) } ?? false) } }
            }
            let charging = try await one(db, """
                SELECT COALESCE(SUM(energy_wh), 0)::bigint AS wh, COALESCE(SUM(cost_cents), 0)::bigint AS cost FROM carshare_charging
                WHERE at >= \(start) AND at < \(end) AND (\(vehicle)::bigint IS NULL OR vehicle_id = \(vehicle))
                """)!
            return TripList(from: from, to: to, trips: trips, totalKm: trips.reduce(0) { $0 + $1.distanceKm },
                            estimatedEnergyWh: WattHours(trips.reduce(0) { $0 + ($1.energyWh?.value ?? 0) }),
                            chargedEnergyWh: WattHours(try charging["wh"]), chargingCostCents: Cents(try charging["cost"]),
                            flaggedTrips: trips.filter { !$0.flags.isEmpty }.count)
        }
    }

    public func prefectReport(year: Int, by identity: Identity) async throws -> PrefectReport {
        try identity.require(.read, .ledger, "the association's accounts")
        guard (2000...2200).contains(year) else { throw HubError.badRequest(field: "year", "year must be between 2000 and 2200") }
        let start = zone.startOfDay(LocalDate(year: year, month: 1, day: 1)!).millisecondsSince1970
        let end = zone.startOfDay(LocalDate(year: year + 1, month: 1, day: 1)!).millisecondsSince1970
        return try await read { db in
            var trips: [TripView] = []
            for id in try await db.column("SELECT id FROM carshare_trip WHERE kind = 'ride' AND start_at >= \(start) AND start_at < \(end) ORDER BY start_at",
                                          as: Int64.self, logger: logger) {
                trips.append(try await trip(db, id))
            }
            return PrefectReport.make(year: year, trips: trips.map {
                TripFacts(kilometres: $0.distanceKm, driver: $0.driver, vehicle: $0.vehicle, riders: $0.riders.map(\.member),
                          participation: $0.riders.reduce(Cents.zero) { $0 + $1.feeCents })
            })
        }
    }

    public func logbook(vehicle vehicleID: Int64, month: String, by identity: Identity) async throws -> LogbookView {
        try identity.require(.read, .logbook, "the car's logbook")
        guard month.count == 7, let first = LocalDate(parsing: month + "-01") else {
            throw HubError.badRequest(field: "month", code: "invalid_date", "month \(month) is not YYYY-MM")
        }
        let next = first.advanced(by: LocalDate.daysIn(year: first.year, month: first.month))
        let start = zone.startOfDay(first)
        let end = zone.startOfDay(next)
        return try await read { db in
            let vehicle = try await vehicle(db, vehicleID)
            let (lines, gaps, figures) = try await logbookLines(db, vehicle: vehicle, from: start, to: end)
            return LogbookView(vehicle: vehicle, month: month, lines: lines, gaps: gaps, figures: figures)
        }
    }

    func logbookLines(_ db: PostgresConnection, vehicle: VehicleView, from start: Instant, to end: Instant) async throws -> ([LogbookLine], [OdometerGap], LogbookFigures) {
        let startAt = start.millisecondsSince1970
        let endAt = end.millisecondsSince1970
        var lines: [LogbookLine] = []
        for id in try await db.column("""
            SELECT id FROM carshare_trip WHERE vehicle_id = \(vehicle.id) AND start_at >= \(startAt) AND start_at < \(endAt) ORDER BY start_at, id
            """, as: Int64.self, logger: logger) {
            let trip = try await trip(db, id)
            let name = try await db.scalar("SELECT name FROM carshare_driver WHERE id = \(trip.driver)", as: String.self, logger: logger) ?? "?"
            lines.append(LogbookLine(trip: trip, driverName: name))
        }
        let before = try await one(db, """
            SELECT end_odometer_km, end_at FROM carshare_trip WHERE vehicle_id = \(vehicle.id) AND start_at < \(startAt) ORDER BY start_at DESC LIMIT 1
            """)
        let notes = try await odometerNotes(db, vehicle: vehicle.id)
        let gaps = OdometerContinuity.gaps(lines: lines.map { ($0.trip.start, $0.trip.end, $0.trip.startOdometerKm, $0.trip.endOdometerKm) },
                                           previousKm: try before?["end_odometer_km"] ?? vehicle.initialOdometerKm,
                                           previousEnd: try before.map { try $0.instant("end_at") }, notes: notes)
        let charged = try await one(db, """
            SELECT COALESCE(SUM(energy_wh), 0)::bigint AS wh, COALESCE(SUM(cost_cents), 0)::bigint AS cost FROM carshare_charging
            WHERE vehicle_id = \(vehicle.id) AND at >= \(startAt) AND at < \(endAt)
            """)!
        let figures = LogbookFigures.make(lines: lines.map { ($0.trip.kind, $0.trip.distanceKm, $0.trip.householdsServed) }, gaps: gaps,
                                          chargedWh: try charged["wh"], chargingCost: Cents(try charged["cost"]))
        return (lines, gaps, figures)
    }

    func odometerNotes(_ db: PostgresConnection, vehicle: Int64) async throws -> [OdometerNote] {
        try await all(db, """
            SELECT id, vehicle_id, from_km, to_km, note, noted_by, noted_at FROM carshare_odometer_note WHERE vehicle_id = \(vehicle) ORDER BY from_km, id
            """).map {
            OdometerNote(id: try $0["id"], vehicle: try $0["vehicle_id"], fromKm: try $0["from_km"], toKm: try $0["to_km"], note: try $0["note"],
                         notedBy: try $0["noted_by"], notedAt: try $0.instant("noted_at"))
        }
    }

    public func addOdometerNote(vehicle vehicleID: Int64, _ input: NewOdometerNote, by identity: Identity, at now: Instant) async throws -> OdometerNote {
        try identity.require(.manage, .logbook, "explaining the car's odometer")
        let note = try Self.checkOdometerNote(input)
        return try await write { db in
            let vehicle = try await vehicle(db, vehicleID)
            let id = try await db.scalar("""
                INSERT INTO carshare_odometer_note (vehicle_id, from_km, to_km, note, noted_by, noted_at)
                VALUES (\(vehicle.id), \(input.fromKm), \(input.toKm), \(note), \(identity.name), \(now.millisecondsSince1970)) RETURNING id
                """, as: Int64.self, logger: logger)!
            return OdometerNote(id: id, vehicle: vehicle.id, fromKm: input.fromKm, toKm: input.toKm, note: note, notedBy: identity.name, notedAt: now)
        }
    }

    public func activityReport(from: LocalDate, to: LocalDate, by identity: Identity) async throws -> ActivityReport {
        try identity.require(.read, .ledger, "the association's activity report")
        guard from <= to else { throw HubError.badRequest(field: "to", code: "invalid_range", "to must not be before from") }
        guard from.distance(to: to) <= 366 else { throw HubError.badRequest(field: "to", code: "invalid_range", "a report covers at most a year") }
        let start = zone.startOfDay(from)
        let end = zone.startOfDay(to.advanced(by: 1))
        return try await read { db in
            let use = try await carUse(db, from: start, to: end)
            return ActivityReport(from: from, to: to, figures: use.figures, unexplainedGaps: use.unexplainedGaps)
        }
    }

    func carUse(_ db: PostgresConnection, from start: Instant, to end: Instant) async throws -> (figures: LogbookFigures, unexplainedGaps: Int) {
        var lines: [(kind: TripKind, kilometres: Int64, householdsServed: Int?)] = []
        var gaps: [OdometerGap] = []
        var chargedWh: Int64 = 0
        var cost = Cents.zero
        for vehicleID in try await db.column("SELECT id FROM carshare_vehicle ORDER BY id", as: Int64.self, logger: logger) {
            let (vehicleLines, vehicleGaps, figures) = try await logbookLines(db, vehicle: try await vehicle(db, vehicleID), from: start, to: end)
            lines += vehicleLines.map { ($0.trip.kind, $0.trip.distanceKm, $0.trip.householdsServed) }
            gaps += vehicleGaps
            chargedWh += figures.chargedWh
            cost = cost + figures.chargingCostCents
        }
        return (LogbookFigures.make(lines: lines, gaps: gaps, chargedWh: chargedWh, chargingCost: cost), gaps.filter { $0.explanation == nil }.count)
    }

    public func journal(by identity: Identity) async throws -> String {
        guard AccessPolicy.allows(identity, .read, .ledger) else { throw denied("role", "the ledger is for the association and the landlord's staff; you are \(identity.role.rawValue)") }
        return try await read { db in
            let members = try await memberScopes(db)
            return HledgerJournal.export(try await allEntries(db).compactMap { disclosed($0, to: identity, members: members) })
        }
    }

    public func verify(by identity: Identity) async throws -> VerifyReport {
        guard AccessPolicy.allows(identity, .read, .ledger) else { throw denied("role", "the ledger is for the association and the landlord's staff; you are \(identity.role.rawValue)") }
        return try await read { db in
            try Self.verifyReport(entries: try await allEntries(db),
                                  receipts: try await db.column("SELECT receipt FROM carshare_entry WHERE receipt IS NOT NULL ORDER BY receipt", as: Int64.self, logger: logger),
                                  closedMonths: try await db.column("SELECT month FROM carshare_closed_month ORDER BY month COLLATE \"C\"", as: String.self, logger: logger),
                                  anchors: anchors)
        }
    }

    public func entries(from: LocalDate, to: LocalDate, by identity: Identity) async throws -> [PostedEntry] {
        try identity.require(.read, .ledger, "the ledger")
        guard from <= to else { throw HubError.badRequest(field: "to", code: "invalid_range", "to must not be before from") }
        return try await read { db in
            let members = try await memberScopes(db)
            return try await entries(db, where: "date >= \(from.description) AND date <= \(to.description)").compactMap { disclosed($0, to: identity, members: members) }
        }
    }

    public func ledgerHead(month: String, by identity: Identity) async throws -> LedgerHead {
        try identity.require(.read, .ledger, "the ledger")
        guard month.count == 7, let first = LocalDate(parsing: month + "-01") else {
            throw HubError.badRequest(field: "month", code: "invalid_date", "month \(month) is not YYYY-MM")
        }
        let lastDay = first.firstOfNextMonth.advanced(by: -1)
        return try await read { db in try await ledgerHead(db, month: month, lastDay: lastDay) }
    }

    func ledgerHead(_ db: PostgresConnection, month: String, lastDay: LocalDate) async throws -> LedgerHead {
        let closed = try await exists(db, "SELECT 1 FROM carshare_closed_month WHERE month = \(month)")
        // The chain is checked from the first entry up to the head, so only those rows are read.
        let entries = try await entries(db, where: """
            number <= (SELECT COALESCE(MAX(number), 0) FROM carshare_entry WHERE date <= \(lastDay.description))
            """)
        return HashChain.head(of: entries, month: month, lastDay: lastDay, closed: closed)
    }
}

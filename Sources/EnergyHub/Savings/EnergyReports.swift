import Foundation
import EnergyCore
import HubCore
import Shared

/// Reads the kept daily figures into reports: what the routes, the CLI and the demo show.
public struct EnergyReports: Sendable {
    /// SQLite's file or PostgreSQL's connections: the same queries on both.
    public let reader: any SQLReading
    public let configuration: EnergyConfiguration

    public init(database: HubDatabase, configuration: EnergyConfiguration) {
        self.init(reader: database, configuration: configuration)
    }

    public init(reader: any SQLReading, configuration: EnergyConfiguration) {
        self.reader = reader
        self.configuration = configuration
    }

    /// The longest period one report covers.
    public static let maximumDays = EnergyReportRules.maximumDays

    public static func checkPeriod(from: LocalDate, to: LocalDate) throws { try EnergyReportRules.checkPeriod(from: from, to: to) }

    public func dwelling(_ dwelling: String, from: LocalDate, to: LocalDate, now: Instant) async throws -> DwellingEnergyReport {
        try EnergyReports.checkPeriod(from: from, to: to)
        return try await reader.readSQL { db in
            guard let building = try db.string("SELECT building_id FROM dwelling WHERE id = ?", dwelling) else {
                throw HubError.notFound(field: "dwelling", "no dwelling \(dwelling) in the registry")
            }
            let periods = try Installations.meterPeriods(db, dwelling: dwelling)
            var byDay: [LocalDate: (consumption: Int64, allocated: Int64, savings: NanoEuros, measured: Int, estimated: Int)] = [:]
            for row in try db.rows("""
                SELECT day, consumption_wh, allocated_wh, savings_nano, measured, estimated FROM dwelling_day
                WHERE dwelling_id = ? AND day >= ? AND day <= ?
                """, dwelling, from.description, to.description) {
                guard let day = LocalDate(parsing: try row[0].string) else { continue }
                byDay[day] = (try row[1].int64, try row[2].int64, NanoEuros(try row[3].int64), Int(try row[4].int64), Int(try row[5].int64))
            }
            var days: [DwellingEnergyReport.Day] = []
            var consumption: Int64 = 0, allocated: Int64 = 0, savings = NanoEuros.zero, measured = 0, estimated = 0
            var day = from
            while day <= to {
                let figures = byDay[day] ?? (0, 0, .zero, 0, 0)
                let expectedToday = expectedSlots(periods, from: day, to: day, now: now)
                days.append(.init(date: day, consumptionWh: figures.consumption, allocatedWh: figures.allocated, gridWh: figures.consumption - figures.allocated,
                                  savingsCents: figures.savings.cents.value,
                                  slots: SlotCounts(measured: figures.measured, estimated: figures.estimated,
                                                    missing: max(0, expectedToday - figures.measured - figures.estimated))))
                consumption += figures.consumption
                allocated += figures.allocated
                savings += figures.savings
                measured += figures.measured
                estimated += figures.estimated
                day = day.advanced(by: 1)
            }
            let expected = expectedSlots(periods, from: from, to: to, now: now)
            return DwellingEnergyReport(
                dwelling: dwelling, building: building, from: from, to: to, consumptionWh: consumption, allocatedWh: allocated, gridWh: consumption - allocated,
                savingsCents: savings.cents.value, slots: SlotCounts(measured: measured, estimated: estimated, missing: max(0, expected - measured - estimated)),
                days: days, annualProjection: try projection(db, dwelling: dwelling, building: building, periods: periods, now: now),
                revisedMonths: try revisedMonths(db, buildings: [building], from: from, to: to))
        }
    }

    /// With `identity`, access is decided by `AccessPolicy` on the building's estate, together with
    /// the lookup: anyone but staff gets the same answer for a building of another estate and for
    /// an id that does not exist, so ids cannot be probed.
    ///
    /// Anyone but staff (the estate's association) gets whole calendar months and, below the
    /// minimum group on any day, the production alone (`HouseholdPrivacy`).
    public func building(_ building: String, from: LocalDate, to: LocalDate, now: Instant, for identity: Identity? = nil) async throws -> BuildingEnergyReport {
        let grouped = identity.map { AccessPolicy.householdFigures($0) == .grouped } ?? false
        let (from, to) = grouped ? HouseholdPrivacy.wholeMonths(from: from, to: to) : (from, to)
        let minimum = configuration.minimumHouseholds
        try EnergyReports.checkPeriod(from: from, to: to)
        return try await reader.readSQL { db in
            let estate = try estateOf(building: building, db, for: identity)
            var byDay: [LocalDate: [Int64]] = [:]
            var problems: [String] = []
            for row in try db.rows("""
                SELECT day, production_wh, allocated_wh, surplus_wh, consumption_wh, revenue_nano, measured, estimated, problems FROM building_day
                WHERE building_id = ? AND day >= ? AND day <= ? ORDER BY day
                """, building, from.description, to.description) {
                guard let day = LocalDate(parsing: try row[0].string) else { continue }
                byDay[day] = try (1...7).map { try row[$0].int64 }
                let text = try row[8].string
                if !text.isEmpty { problems += text.split(separator: "\n").map(String.init) }
            }
            let periods = try Installations.periods(db, building: building)
            var days: [BuildingEnergyReport.Day] = []
            var sums = [Int64](repeating: 0, count: 7)
            var day = from
            while day <= to {
                let values = byDay[day] ?? [Int64](repeating: 0, count: 7)
                let known = Int(values[5] + values[6])
                days.append(.init(date: day, productionWh: values[0], allocatedWh: values[1], surplusWh: values[2], consumptionWh: values[3],
                                  surplusRevenueCents: NanoEuros(values[4]).cents.value,
                                  slots: SlotCounts(measured: Int(values[5]), estimated: Int(values[6]),
                                                    missing: max(0, expectedSlots(periods, from: day, to: day, now: now) - known))))
                for index in 0..<7 { sums[index] += values[index] }
                day = day.advanced(by: 1)
            }
            let expected = expectedSlots(periods, from: from, to: to, now: now)
            let households = Set(periods.filter { $0.kind == .meter && overlaps($0, from: from, to: to) }.compactMap(\.dwelling)).count
            let keyText = try db.string("SELECT allocation_key FROM building_allocation_key WHERE building_id = ? AND since <= ? ORDER BY since DESC LIMIT 1",
                                        building, to.description) ?? AllocationKeyKind.proRata.rawValue
            let totals = BuildingTotals(building: building, production: sums[0], allocated: sums[1], surplus: sums[2], consumption: sums[3], revenue: NanoEuros(sums[4]))
            let report = BuildingEnergyReport(
                building: building, estate: estate, from: from, to: to, allocationKey: keyText, productionWh: totals.productionWh, allocatedWh: totals.allocatedWh,
                surplusWh: totals.surplusWh, consumptionWh: totals.consumptionWh, selfConsumptionRate: totals.selfConsumptionRate,
                selfSufficiencyRate: totals.selfSufficiencyRate, surplusRevenueCents: totals.surplusRevenueCents, households: households,
                slots: SlotCounts(measured: Int(sums[5]), estimated: Int(sums[6]), missing: max(0, expected - Int(sums[5]) - Int(sums[6]))),
                days: days, problems: problems, revisedMonths: try revisedMonths(db, buildings: [building], from: from, to: to), minimumHouseholds: minimum)
            guard grouped else { return report }
            let counts = try householdsPerDay(db, estate: nil, building: building, from: from, to: to)[building] ?? [:]
            return HouseholdPrivacy.disclosable(householdsPerDay: counts.values, minimum: minimum) ? report : report.withHouseholdFiguresWithheld
        }
    }

    /// How many households had figures (a known slot, or any energy or saving) on each day, per
    /// building, of one estate or one building: the counts `HouseholdPrivacy` decides on.
    func householdsPerDay(_ db: any SQLSession, estate: String?, building: String?, from: LocalDate, to: LocalDate) throws -> [String: [LocalDate: Int]] {
        var counts: [String: [LocalDate: Int]] = [:]
        // CAST(? AS TEXT): PostgreSQL must know a parameter's type even when it is NULL.
        for row in try db.rows("""
            SELECT dd.building_id, dd.day, COUNT(*) FROM dwelling_day dd JOIN building b ON b.id = dd.building_id
            WHERE (CAST(? AS TEXT) IS NULL OR b.estate_id = ?) AND (CAST(? AS TEXT) IS NULL OR dd.building_id = ?) AND dd.day >= ? AND dd.day <= ?
              AND (dd.measured + dd.estimated > 0 OR dd.consumption_wh <> 0 OR dd.allocated_wh <> 0 OR dd.savings_nano <> 0)
            GROUP BY dd.building_id, dd.day
            """, estate, estate, building, building, from.description, to.description) {
            guard let day = LocalDate(parsing: try row[1].string) else { continue }
            counts[try row[0].string, default: [:]][day] = Int(try row[2].int64)
        }
        return counts
    }

    /// The estate of a building, asking `AccessPolicy` with the caller (when given) in the same
    /// step: anyone but staff gets the same 403 for another estate's building and for an id that
    /// does not exist, so ids cannot be probed; staff get 404 for the latter.
    func estateOf(building: String, _ db: any SQLSession, for identity: Identity?) throws -> String {
        let estate = try db.string("SELECT estate_id FROM building WHERE id = ?", building)
        if let identity, identity.role != .staff, !(estate.map { AccessPolicy.allows(identity, .read, .buildingEnergy(estate: $0)) } ?? false) {
            throw HubError.forbidden("building \(building) is not one of your estate's buildings", field: "building")
        }
        guard let estate else { throw HubError.notFound(field: "building", "no building \(building) in the registry") }
        return estate
    }

    /// With `identity` other than staff (the estate's association): whole calendar months, a
    /// building's household figures withheld below the minimum group, the estate's totals withheld
    /// when they would give a withheld building away, the median rounded and no extreme
    /// (`HouseholdPrivacy`).
    public func estate(_ estate: String, from: LocalDate, to: LocalDate, now: Instant, for identity: Identity? = nil) async throws -> EstateEnergyReport {
        let grouped = identity.map { AccessPolicy.householdFigures($0) == .grouped } ?? false
        let (from, to) = grouped ? HouseholdPrivacy.wholeMonths(from: from, to: to) : (from, to)
        let minimum = configuration.minimumHouseholds
        try EnergyReports.checkPeriod(from: from, to: to)
        return try await reader.readSQL { db in
            guard try !db.rows("SELECT 1 FROM estate WHERE id = ?", estate).isEmpty else { throw HubError.notFound(field: "estate", "no estate \(estate) in the registry") }
            // A few set-based queries, whatever the number of households (issue 16: one query per
            // household took a second for 4,000 and held a reader all that time).
            let buildings = try buildingTotals(db, estate: estate, from: from, to: to)
            let savings = try householdSavings(db, estate: estate, from: from, to: to)
            let revised = try revisedMonths(db, estate: estate, from: from, to: to)
            guard grouped else {
                return EstateEnergyReport(estate: estate, from: from, to: to, totals: BuildingSums.total(buildings), buildings: buildings.map(\.totals),
                                          households: .init(savings: savings.map(\.cents)), revisedMonths: revised, minimumHouseholds: minimum)
            }
            let counts = try householdsPerDay(db, estate: estate, building: nil, from: from, to: to)
            let decision = HouseholdPrivacy.decide(perDay: counts, buildings: buildings.map(\.building), from: from, to: to, minimum: minimum)
            var estateCounts: [LocalDate: Int] = [:]
            for perDay in counts.values { for (day, count) in perDay { estateCounts[day, default: 0] += count } }
            let total = BuildingSums.total(buildings)
            return EstateEnergyReport(
                estate: estate, from: from, to: to, totals: decision.estateTotalsShown ? total : total.withHouseholdFiguresWithheld,
                buildings: buildings.map { decision.shown.contains($0.building) ? $0.totals : $0.totals.withHouseholdFiguresWithheld },
                households: .init(savings: savings.map(\.cents), minimum: minimum,
                                  shown: HouseholdPrivacy.disclosable(householdsPerDay: estateCounts.values, minimum: minimum)),
                revisedMonths: revised, minimumHouseholds: minimum)
        }
    }

    /// The landlord's figures: every estate's totals and the distribution of all households'
    /// savings (staff only).
    public func landlord(from: LocalDate, to: LocalDate, now: Instant) async throws -> LandlordEnergyReport {
        try EnergyReports.checkPeriod(from: from, to: to)
        return try await reader.readSQL { db in
            let buildings = try buildingTotals(db, estate: nil, from: from, to: to)
            let savings = try householdSavings(db, estate: nil, from: from, to: to)
            var households: [String: Int] = [:]
            for household in savings { households[household.estate, default: 0] += 1 }
            let estates = try db.rows("SELECT id FROM estate ORDER BY id").map { try $0[0].string }.map { estate in
                LandlordEnergyReport.Estate(estate: estate, totals: BuildingSums.total(buildings.filter { $0.estate == estate }),
                                            households: households[estate] ?? 0)
            }
            return LandlordEnergyReport(from: from, to: to, totals: BuildingSums.total(buildings), estates: estates,
                                        households: .init(savings: savings.map(\.cents)),
                                        revisedMonths: try revisedMonths(db, estate: nil, from: from, to: to))
        }
    }

    /// Every estate of the registry.
    public func estates() async throws -> [String] {
        try await reader.readSQL { db in try db.rows("SELECT id FROM estate ORDER BY id").map { try $0[0].string } }
    }

    /// Each building's totals over the period, of one estate or of all, in one grouped query.
    func buildingTotals(_ db: any SQLSession, estate: String?, from: LocalDate, to: LocalDate) throws -> [BuildingSums] {
        try db.rows("""
            SELECT b.id, b.estate_id, CAST(COALESCE(SUM(d.production_wh), 0) AS BIGINT), CAST(COALESCE(SUM(d.allocated_wh), 0) AS BIGINT),
                   CAST(COALESCE(SUM(d.surplus_wh), 0) AS BIGINT), CAST(COALESCE(SUM(d.consumption_wh), 0) AS BIGINT), CAST(COALESCE(SUM(d.revenue_nano), 0) AS BIGINT)
            FROM building b LEFT JOIN building_day d ON d.building_id = b.id AND d.day >= ? AND d.day <= ?
            WHERE CAST(? AS TEXT) IS NULL OR b.estate_id = ? GROUP BY b.id, b.estate_id ORDER BY b.id
            """, from.description, to.description, estate, estate).map { row in
            BuildingSums(building: try row[0].string, estate: try row[1].string, production: try row[2].int64, allocated: try row[3].int64,
                         surplus: try row[4].int64, consumption: try row[5].int64, revenue: NanoEuros(try row[6].int64))
        }
    }

    /// The savings of every household served by a meter during the period (0 when it saved
    /// nothing), of one estate or of all: one query for the meter periods, one for the sums.
    func householdSavings(_ db: any SQLSession, estate: String?, from: LocalDate, to: LocalDate) throws -> [(estate: String, cents: Int64)] {
        var served: [String: String] = [:]
        for period in try Installations.periods(db, where: "(CAST(? AS TEXT) IS NULL OR b.estate_id = ?) AND d.kind = 'meter' AND i.dwelling_id IS NOT NULL", [estate, estate])
        where overlaps(period, from: from, to: to) {
            if let dwelling = period.dwelling { served[dwelling] = period.estate }
        }
        var savings: [String: Int64] = [:]
        for row in try db.rows("""
            SELECT dd.dwelling_id, CAST(SUM(dd.savings_nano) AS BIGINT) FROM dwelling_day dd JOIN building b ON b.id = dd.building_id
            WHERE (CAST(? AS TEXT) IS NULL OR b.estate_id = ?) AND dd.day >= ? AND dd.day <= ? GROUP BY dd.dwelling_id
            """, estate, estate, from.description, to.description) {
            savings[try row[0].string] = try row[1].int64
        }
        // A household with figures but no meter period overlapping (a period edited since) still counts.
        var result = served.map { (estate: $0.value, cents: NanoEuros(savings[$0.key] ?? 0).cents.value) }
        for (dwelling, nano) in savings.sorted(by: { $0.key < $1.key }) where served[dwelling] == nil {
            let estate = try db.string("SELECT b.estate_id FROM dwelling w JOIN building b ON b.id = w.building_id WHERE w.id = ?", dwelling) ?? ""
            result.append((estate: estate, cents: NanoEuros(nano).cents.value))
        }
        return result
    }

    // MARK: - Helpers

    func overlaps(_ period: InstallationPeriod, from: LocalDate, to: LocalDate) -> Bool {
        period.since <= to && (period.until.map { $0 > from } ?? true)
    }

    /// Slots of the period before `now` in which any of these periods' devices served.
    func expectedSlots(_ periods: [InstallationPeriod], from: LocalDate, to: LocalDate, now: Instant) -> Int {
        let grid = configuration.grid
        let zone = configuration.zone
        let window = grid.slots(from: from, through: to, in: zone)
        let upper = min(window.upperBound, grid.slot(containing: now))
        let ranges: [Range<Int64>] = periods.compactMap { period in
            let interval = period.interval(in: zone)
            let start = max(window.lowerBound, grid.slot(startingAtOrAfter: interval.from))
            let end = min(upper, interval.to.map { grid.slot(startingAtOrAfter: $0) } ?? upper)
            return start < end ? start..<end : nil
        }
        return Int(SlotRanges.covered(ranges))
    }

    /// The savings of this year so far projected to the whole year with the seasons
    /// (`EnergyReportRules.seasonalProjection`), weighed by the building's own last twelve full
    /// months of production when it has them, by the settings' monthly profile otherwise.
    func projection(_ db: any SQLSession, dwelling: String, building: String, periods: [InstallationPeriod], now: Instant) throws -> DwellingEnergyReport.AnnualProjection {
        let today = configuration.zone.localDate(of: now)
        let january = LocalDate(year: today.year, month: 1, day: 1)!
        let soFar = NanoEuros(try db.int64("SELECT CAST(COALESCE(SUM(savings_nano), 0) AS BIGINT) FROM dwelling_day WHERE dwelling_id = ? AND day >= ? AND day <= ?",
                                           dwelling, january.description, today.description) ?? 0)
        // A dwelling's meter periods follow one another without overlapping (a replaced box ends
        // where the next begins), so the days they cover are counted month by month, by arithmetic.
        var countedPerMonth = [Int](repeating: 0, count: 12)
        for period in periods {
            let start = max(period.since, january)
            let end = min(period.until ?? today.advanced(by: 1), today.advanced(by: 1))
            var month = start.firstOfMonth
            while month < end {
                let next = month.firstOfNextMonth
                let days = max(start, month).distance(to: min(end, next))
                if days > 0 { countedPerMonth[month.month - 1] += days }
                month = next
            }
        }
        let counted = countedPerMonth.reduce(0, +)
        let shares = try productionShares(db, building: building, today: today)
        let projection = EnergyReportRules.seasonalProjection(soFar: soFar, countedDays: countedPerMonth, year: today.year, shares: shares)
        return .init(year: today.year, savingsSoFarCents: soFar.cents.value, daysCounted: counted,
                     productionShareSoFarMillionths: projection.productionShareSoFarMillionths, basis: shares.basis,
                     projectedCents: projection.projectedCents, promisedCents: configuration.promisedAnnualSavings.value)
    }

    /// The monthly split of the building's production over the twelve calendar months before
    /// this one, when its panels served all of them, every slot of every day has a known
    /// (measured or estimated) production and no month produced nothing; the settings' profile
    /// otherwise. A month with a gap would weigh too little, and a partial history would leave
    /// some months unknown, so it is all twelve or none.
    func productionShares(_ db: any SQLSession, building: String, today: LocalDate) throws -> MonthlyProductionShares {
        let end = today.firstOfMonth
        let start = LocalDate(year: end.year - 1, month: end.month, day: 1)!
        // Before its panels are installed a building produces 0 Wh with every slot known: such
        // days say nothing of the seasons, so the panels must cover the twelve months.
        var covered = start
        for period in try Installations.periods(db, where: "i.building_id = ? AND d.kind = 'pv'", [building]).sorted(by: { $0.since < $1.since })
        where period.since <= covered {
            covered = max(covered, period.until ?? end)
        }
        guard covered >= end else { return configuration.productionProfile }
        var known: [Int: (production: Int64, slots: Int64)] = [:]
        // One grouped read of at most a year of the building's days (its primary key's order);
        // twelve months from the first of a month: the month's number names it.
        for row in try db.rows("""
            SELECT CAST(substr(day, 6, 2) AS INTEGER), CAST(SUM(production_wh) AS BIGINT), CAST(SUM(measured + estimated) AS BIGINT) FROM building_day
            WHERE building_id = ? AND day >= ? AND day < ? GROUP BY CAST(substr(day, 6, 2) AS INTEGER)
            """, building, start.description, end.description) {
            known[Int(try row[0].int64)] = (try row[1].int64, try row[2].int64)
        }
        var monthlyWh = [Int64](repeating: 0, count: 12)
        var month = start
        while month < end {
            let slots = configuration.grid.slots(from: month, through: month.firstOfNextMonth.advanced(by: -1), in: configuration.zone)
            guard let figures = known[month.month], figures.slots == slots.upperBound - slots.lowerBound else { return configuration.productionProfile }
            monthlyWh[month.month - 1] = figures.production
            month = month.firstOfNextMonth
        }
        return MonthlyProductionShares(buildingMonthlyWh: monthlyWh) ?? configuration.productionProfile
    }

    /// Months of the period revised after export, for one estate's buildings or all.
    func revisedMonths(_ db: any SQLSession, estate: String?, from: LocalDate, to: LocalDate) throws -> [String] {
        try db.rows("""
            SELECT DISTINCT e.month FROM energy_month_export e JOIN building b ON b.id = e.building_id
            WHERE (CAST(? AS TEXT) IS NULL OR b.estate_id = ?) AND e.revised_at IS NOT NULL AND e.revised_at >= e.exported_at AND e.month >= ? AND e.month <= ?
            ORDER BY e.month
            """, estate, estate, String(from.description.prefix(7)), String(to.description.prefix(7))).map { try $0[0].string }
    }

    func revisedMonths(_ db: any SQLSession, buildings: [String], from: LocalDate, to: LocalDate) throws -> [String] {
        guard !buildings.isEmpty else { return [] }
        let placeholders = buildings.map { _ in "?" }.joined(separator: ", ")
        return try db.rows("""
            SELECT DISTINCT month FROM energy_month_export WHERE building_id IN (\(placeholders)) AND revised_at IS NOT NULL AND revised_at >= exported_at
              AND month >= ? AND month <= ? ORDER BY month
            """, buildings + [String(from.description.prefix(7)), String(to.description.prefix(7))]).map { try $0[0].string }
    }
}

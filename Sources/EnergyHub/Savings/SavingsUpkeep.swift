import Foundation
import GRDB
import EnergyCore
import HubCore
import Shared

/// What an upkeep pass did.
public struct UpkeepReport: Sendable, Equatable {
    /// `reading_change` rows consumed.
    public var readingChanges = 0
    public var deviceSlotsRecomputed = 0
    /// Device slots whose energy or quality actually changed (only those dirty their building).
    public var deviceSlotsChanged = 0
    /// Building slots whose allocation was recomputed.
    public var buildingSlotsRecomputed = 0
    /// Building days whose daily figures were recomputed.
    public var daysRecomputed = 0
    /// Exported months newly flagged as revised.
    public var monthsRevised = 0
    /// Allocation problems met (e.g. static shares adding up to more than 1).
    public var problems: [String] = []
    /// Settings changed: every figure was queued for rebuilding.
    public var rebuilt = false
    /// Buildings whose queued ranges were taken up (even when nothing was left to recompute).
    public var buildingsVisited = 0

    public init() {}

    public var didWork: Bool { readingChanges + buildingsVisited > 0 }

    public mutating func add(_ other: UpkeepReport) {
        readingChanges += other.readingChanges
        deviceSlotsRecomputed += other.deviceSlotsRecomputed
        deviceSlotsChanged += other.deviceSlotsChanged
        buildingSlotsRecomputed += other.buildingSlotsRecomputed
        daysRecomputed += other.daysRecomputed
        monthsRevised += other.monthsRevised
        problems += other.problems
        rebuilt = rebuilt || other.rebuilt
        buildingsVisited += other.buildingsVisited
    }
}

/// Keeps the slot and daily figures up to date with the stored readings and the registry, in
/// small write transactions: (1) `reading_change` rows (written when ingest folds its journal of
/// readings into `reading_by_device`, in the same transaction) are
/// turned into device slots for exactly the slots they touch, and the building slots that really
/// changed are queued in `savings_dirty`; (2) each queued range of a building is reallocated,
/// priced, and the days it falls in are summed again; a changed day of an exported month flags
/// the month as revised. Each step commits its results and removes the queue rows it consumed
/// together, so a crash loses nothing and repeats nothing.
public struct SavingsUpkeep: Sendable {
    public let database: HubDatabase
    public let configuration: EnergyConfiguration
    /// Devices handled per transaction.
    public var devicesPerStep = 100
    /// The most days of one building reallocated per transaction.
    public var daysPerStep = 31

    public init(database: HubDatabase, configuration: EnergyConfiguration) {
        self.database = database
        self.configuration = configuration
    }

    /// Brings every figure up to date now (the CLI, the demo and tests call this; the service
    /// runs the same steps in the background).
    /// Readings still in the ingest journal are folded first: the figures read folded readings.
    @discardableResult
    public func bringUpToDate(now: Instant) throws -> UpkeepReport {
        try database.writeBlocking { db in _ = try ReadingJournal.fold(db) }
        var total = try database.writeBlocking { db in try checkSettings(db) }
        while true {
            let report = try database.writeBlocking { db in try step(db, now: now) }
            total.add(report)
            if !report.didWork { return total }
        }
    }

    /// One bounded step in the caller's write transaction: a batch of reading changes if any,
    /// else one queued range of one building. Does nothing when all is up to date.
    public func step(_ db: Database, now: Instant) throws -> UpkeepReport {
        var report = try consumeReadingChanges(db, now: now)
        if report.readingChanges == 0 { report.add(try recomputeOneBuilding(db, now: now)) }
        return report
    }

    /// Compares the settings the figures were computed with to the current ones; queues a rebuild
    /// when they differ (and on first use, for readings stored before this module existed).
    public func checkSettings(_ db: Database) throws -> UpkeepReport {
        var report = UpkeepReport()
        let slots = try String.fetchOne(db, sql: "SELECT value FROM savings_state WHERE name = 'slots'")
        let prices = try String.fetchOne(db, sql: "SELECT value FROM savings_state WHERE name = 'prices'")
        if slots != configuration.slotFingerprint {
            for table in ["device_slot", "dwelling_slot", "building_slot", "dwelling_day", "building_day", "savings_dirty"] {
                try db.execute(sql: "DELETE FROM \(table)")
            }
            try db.execute(sql: """
                INSERT INTO reading_change (device_id, from_instant, to_instant)
                SELECT device_id, MIN(instant), MAX(instant) FROM reading_by_device GROUP BY device_id
                ON CONFLICT (device_id) DO UPDATE SET from_instant = MIN(from_instant, excluded.from_instant), to_instant = MAX(to_instant, excluded.to_instant)
                """)
            report.rebuilt = slots != nil
        } else if prices != configuration.priceFingerprint {
            try db.execute(sql: "INSERT INTO savings_dirty (building_id, from_instant, to_instant) SELECT id, 0, 253402300800000 FROM building")
            report.rebuilt = true
        }
        try db.execute(sql: "INSERT INTO savings_state (name, value) VALUES ('slots', ?), ('prices', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                       arguments: [configuration.slotFingerprint, configuration.priceFingerprint])
        return report
    }

    /// The first slot still kept: older figures are not recomputed (their readings may be purged).
    func horizonSlot(now: Instant) -> Int64 {
        let zone = configuration.zone
        return configuration.grid.slot(startingAtOrAfter: zone.startOfDay(zone.localDate(of: now).advanced(by: -configuration.rawRetentionDays)))
    }

    // MARK: - Step 1: readings to device slots

    func consumeReadingChanges(_ db: Database, now: Instant) throws -> UpkeepReport {
        var report = UpkeepReport()
        let changes = try Row.fetchAll(db, sql: "SELECT device_id, from_instant, to_instant FROM reading_change ORDER BY device_id LIMIT ?", arguments: [devicesPerStep])
        guard !changes.isEmpty else { return report }
        let grid = configuration.grid
        let horizon = horizonSlot(now: now)
        for change in changes {
            let device: String = change["device_id"]
            let touched = grid.slotsTouched(from: Instant(millisecondsSince1970: change["from_instant"]), to: Instant(millisecondsSince1970: change["to_instant"]))
            let range = max(touched.lowerBound, horizon)..<max(touched.upperBound, horizon)
            try db.execute(sql: "DELETE FROM reading_change WHERE device_id = ?", arguments: [device])
            report.readingChanges += 1
            guard !range.isEmpty else { continue }
            let changed = try recomputeDeviceSlots(db, device: device, slots: range)
            report.deviceSlotsRecomputed += range.count
            report.deviceSlotsChanged += changed.count
            guard let first = changed.first, let last = changed.last else { continue }
            // Queue the buildings the device served during the changed slots.
            for period in try Installations.periods(db, device: device) {
                let served = servedSlots(period)
                let from = max(first, served.lowerBound)
                let to = min(last + 1, served.upperBound)
                guard from < to else { continue }
                try db.execute(sql: "INSERT INTO savings_dirty (building_id, from_instant, to_instant) VALUES (?, ?, ?)",
                               arguments: [period.building, grid.start(of: from).millisecondsSince1970, grid.start(of: to).millisecondsSince1970])
            }
        }
        return report
    }

    /// Recomputes a device's slots from its readings; returns the slots whose row changed, sorted.
    func recomputeDeviceSlots(_ db: Database, device: String, slots range: Range<Int64>) throws -> [Int64] {
        let grid = configuration.grid
        let low = grid.start(of: range.lowerBound).millisecondsSince1970
        let high = grid.start(of: range.upperBound).millisecondsSince1970
        // Folded readings only: a reading still in the ingest journal queues its change when folded.
        let before = try Int64.fetchOne(db, sql: "SELECT MAX(instant) FROM reading_by_device WHERE device_id = ? AND instant <= ?", arguments: [device, low]) ?? low
        let after = try Int64.fetchOne(db, sql: "SELECT MIN(instant) FROM reading_by_device WHERE device_id = ? AND instant >= ?", arguments: [device, high]) ?? high
        let readings = try Row.fetchAll(db.cachedStatement(sql: "SELECT instant, energy_wh, segment FROM reading_by_device WHERE device_id = ? AND instant >= ? AND instant <= ? ORDER BY instant"),
                                        arguments: [device, before, after]).map {
            StoredIndex(instant: Instant(millisecondsSince1970: $0[0]), energy: WattHours($0[1]), segment: $0[2])
        }
        let series = Slotter.slots(readings: readings, slots: range, grid: grid, estimatedGapMilliseconds: configuration.estimatedGapMilliseconds)
        var existing: [Int64: (Int64, UInt8)] = [:]
        for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT slot, energy_wh, quality FROM device_slot WHERE device_id = ? AND slot >= ? AND slot < ?"),
                                    arguments: [device, range.lowerBound, range.upperBound]) {
            existing[row[0]] = (row[1], row[2])
        }
        var changed: [Int64] = []
        let upsert = try db.cachedStatement(sql: "INSERT INTO device_slot (device_id, slot, energy_wh, quality) VALUES (?, ?, ?, ?) ON CONFLICT (device_id, slot) DO UPDATE SET energy_wh = excluded.energy_wh, quality = excluded.quality")
        let delete = try db.cachedStatement(sql: "DELETE FROM device_slot WHERE device_id = ? AND slot = ?")
        for offset in 0..<range.count {
            let slot = range.lowerBound + Int64(offset)
            let quality = series.quality[offset]
            let old = existing[slot]
            if quality == .missing {
                if old != nil {
                    try delete.execute(arguments: [device, slot])
                    changed.append(slot)
                }
            } else if old == nil || old! != (series.energy[offset], quality.rawValue) {
                try upsert.execute(arguments: [device, slot, series.energy[offset], quality.rawValue])
                changed.append(slot)
            }
        }
        return changed
    }

    func servedSlots(_ period: InstallationPeriod) -> Range<Int64> {
        let grid = configuration.grid
        let interval = period.interval(in: configuration.zone)
        return grid.slot(startingAtOrAfter: interval.from)..<(interval.to.map { grid.slot(startingAtOrAfter: $0) } ?? Int64.max / 2)
    }

    // MARK: - Step 2: building slots and days

    func recomputeOneBuilding(_ db: Database, now: Instant) throws -> UpkeepReport {
        var report = UpkeepReport()
        guard let building = try String.fetchOne(db, sql: "SELECT building_id FROM savings_dirty ORDER BY id LIMIT 1") else { return report }
        report.buildingsVisited = 1
        let grid = configuration.grid
        let zone = configuration.zone
        // Merge the building's queued ranges (as slots), clamp them to what can hold figures.
        let ranges: [Range<Int64>] = try Row.fetchAll(db, sql: "SELECT from_instant, to_instant FROM savings_dirty WHERE building_id = ?", arguments: [building]).map { row in
            grid.slot(containing: Instant(millisecondsSince1970: row[0]))..<grid.slot(startingAtOrAfter: Instant(millisecondsSince1970: row[1]))
        }
        try db.execute(sql: "DELETE FROM savings_dirty WHERE building_id = ?", arguments: [building])
        let periods = try Installations.periods(db, building: building)
        let devices = Set(periods.map(\.device))
        var upper = try Int64.fetchOne(db, sql: "SELECT MAX(slot) + 1 FROM building_slot WHERE building_id = ?", arguments: [building]) ?? Int64.min
        for device in devices {
            if let last = try Int64.fetchOne(db, sql: "SELECT MAX(slot) + 1 FROM device_slot WHERE device_id = ?", arguments: [device]) { upper = max(upper, last) }
        }
        let lower = horizonSlot(now: now)
        // One chunk now; the rest back in the queue.
        guard let (chunk, rest) = SlotRanges.firstChunk(SlotRanges.merge(ranges, lower: lower, upper: upper),
                                                         maxSlots: Int64(daysPerStep) * 86_400_000 / grid.milliseconds) else { return report }
        for range in rest {
            try db.execute(sql: "INSERT INTO savings_dirty (building_id, from_instant, to_instant) VALUES (?, ?, ?)",
                           arguments: [building, grid.start(of: range.lowerBound).millisecondsSince1970, grid.start(of: range.upperBound).millisecondsSince1970])
        }

        let input = try buildingInput(db, building: building, periods: periods, slots: chunk)
        let result = try BuildingEngine.compute(input, configuration: configuration)
        try writeSlots(db, result)
        report.buildingSlotsRecomputed = chunk.count
        report.problems = result.problems

        // The days the chunk falls in, summed again from their slots.
        let firstDay = zone.localDate(of: grid.start(of: chunk.lowerBound))
        let lastDay = zone.localDate(of: grid.start(of: chunk.upperBound - 1))
        var day = firstDay
        while day <= lastDay {
            let problems = result.problems.filter { $0.hasPrefix(day.description + ":") }.joined(separator: "\n")
            if try recomputeDay(db, building: building, day: day, problems: problems) {
                report.monthsRevised += try flagRevised(db, building: building, day: day, now: now)
            }
            report.daysRecomputed += 1
            day = day.advanced(by: 1)
        }
        return report
    }

    /// Loads what the engine needs for a building over some slots.
    func buildingInput(_ db: Database, building: String, periods: [InstallationPeriod], slots: Range<Int64>) throws -> BuildingInput {
        let grid = configuration.grid
        var seriesByDevice: [String: SlotSeries] = [:]
        for device in Set(periods.map(\.device)) {
            var series = SlotSeries(slots: slots)
            for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT slot, energy_wh, quality FROM device_slot WHERE device_id = ? AND slot >= ? AND slot < ?"),
                                        arguments: [device, slots.lowerBound, slots.upperBound]) {
                let offset = Int((row[0] as Int64) - slots.lowerBound)
                series.energy[offset] = row[1]
                series.quality[offset] = SlotQuality(rawValue: row[2]) ?? .missing
            }
            seriesByDevice[device] = series
        }
        let dwellingIDs = try String.fetchAll(db, sql: "SELECT id FROM dwelling WHERE building_id = ? ORDER BY id", arguments: [building])
        var tariffs: [String: [(since: LocalDate, value: TariffPlan)]] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT t.dwelling_id, t.since, t.tariff FROM dwelling_tariff t JOIN dwelling d ON d.id = t.dwelling_id WHERE d.building_id = ?", arguments: [building]) {
            guard let since = LocalDate(parsing: row["since"] as String), case .success(let plan) = TariffPlan.parse(row["tariff"]) else { continue }
            tariffs[row["dwelling_id"], default: []].append((since, plan))
        }
        var shares: [String: [(since: LocalDate, value: ShareMillionths)]] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT s.dwelling_id, s.since, s.share FROM dwelling_share s JOIN dwelling d ON d.id = s.dwelling_id WHERE d.building_id = ?", arguments: [building]) {
            guard let since = LocalDate(parsing: row["since"] as String), let share = Decimal6.parse(row["share"]) else { continue }
            shares[row["dwelling_id"], default: []].append((since, share))
        }
        let dwellings = dwellingIDs.map { id in
            DwellingInput(id: id, meters: periods.filter { $0.kind == .meter && $0.dwelling == id }.map {
                ServedSeries(device: $0.device, series: seriesByDevice[$0.device]!, served: servedSlots($0))
            }, tariff: Dated(tariffs[id] ?? []), share: Dated(shares[id] ?? []))
        }
        let producers = periods.filter { $0.kind == .pv }.map { ServedSeries(device: $0.device, series: seriesByDevice[$0.device]!, served: servedSlots($0)) }
        let key = Dated(try Row.fetchAll(db, sql: "SELECT since, allocation_key FROM building_allocation_key WHERE building_id = ?", arguments: [building]).compactMap { row -> (since: LocalDate, value: AllocationKeyKind)? in
            guard let since = LocalDate(parsing: row["since"] as String), let kind = AllocationKeyKind(rawValue: row["allocation_key"]) else { return nil }
            return (since, kind)
        })
        var coefficients: [Int64: [ShareMillionths]] = [:]
        if key.entries.contains(where: { $0.value == .perSlot }) {
            let index = Dictionary(uniqueKeysWithValues: dwellingIDs.enumerated().map { ($1, $0) })
            for row in try Row.fetchAll(db, sql: "SELECT slot_start, dwelling_id, coefficient FROM allocation_coefficient WHERE building_id = ? AND slot_start >= ? AND slot_start < ?",
                                        arguments: [building, grid.start(of: slots.lowerBound).millisecondsSince1970, grid.start(of: slots.upperBound).millisecondsSince1970]) {
                let start: Int64 = row[0]
                guard start % grid.milliseconds == 0, let position = index[row[1]] else { continue }
                coefficients[start / grid.milliseconds, default: [ShareMillionths](repeating: 0, count: dwellingIDs.count)][position] = row[2]
            }
        }
        return BuildingInput(building: building, slots: slots, dwellings: dwellings, producers: producers, key: key, coefficients: coefficients)
    }

    func writeSlots(_ db: Database, _ result: BuildingSlots) throws {
        let slots = result.slots
        try db.execute(sql: "DELETE FROM dwelling_slot WHERE building_id = ? AND slot >= ? AND slot < ?", arguments: [result.building, slots.lowerBound, slots.upperBound])
        try db.execute(sql: "DELETE FROM building_slot WHERE building_id = ? AND slot >= ? AND slot < ?", arguments: [result.building, slots.lowerBound, slots.upperBound])
        let dwellingInsert = try db.cachedStatement(sql: "INSERT INTO dwelling_slot (building_id, slot, dwelling_id, consumption_wh, allocated_wh, savings_nano, quality) VALUES (?, ?, ?, ?, ?, ?, ?)")
        let buildingInsert = try db.cachedStatement(sql: "INSERT INTO building_slot (building_id, slot, production_wh, allocated_wh, surplus_wh, consumption_wh, revenue_nano, quality) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        let n = result.slotCount
        for offset in 0..<n {
            let slot = slots.lowerBound + Int64(offset)
            var anyone = false
            for (index, dwelling) in result.dwellings.enumerated() {
                let flat = index * n + offset
                guard result.inService[flat] else { continue }
                anyone = true
                guard result.consumptionKnown[flat] else { continue }
                try dwellingInsert.execute(arguments: [result.building, slot, dwelling, result.consumption[flat], result.allocated[flat], result.savings[flat], result.quality[flat].rawValue])
            }
            let productionKnown = result.productionQuality[offset] != .missing
            guard anyone || productionKnown else { continue }
            try buildingInsert.execute(arguments: [result.building, slot, productionKnown ? result.production[offset] : nil, result.buildingAllocated[offset],
                                                   result.surplus[offset], result.buildingConsumption[offset], result.revenue[offset], result.buildingQuality[offset].rawValue])
        }
    }

    /// Sums a building's day again from its slots; returns true when a figure changed.
    func recomputeDay(_ db: Database, building: String, day: LocalDate, problems: String) throws -> Bool {
        let slots = configuration.grid.slots(of: day, in: configuration.zone)
        let dayText = day.description
        var changed = false
        var old: [String: [Int64]] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT dwelling_id, consumption_wh, allocated_wh, savings_nano, measured, estimated FROM dwelling_day WHERE building_id = ? AND day = ?",
                                    arguments: [building, dayText]) {
            old[row[0]] = [row[1], row[2], row[3], row[4], row[5]]
        }
        let fresh = try Row.fetchAll(db, sql: """
            SELECT dwelling_id, SUM(consumption_wh), SUM(allocated_wh), SUM(savings_nano), SUM(quality = 1), SUM(quality = 2)
            FROM dwelling_slot WHERE building_id = ? AND slot >= ? AND slot < ? GROUP BY dwelling_id
            """, arguments: [building, slots.lowerBound, slots.upperBound])
        var seen = Set<String>()
        for row in fresh {
            let dwelling: String = row[0]
            let values: [Int64] = [row[1], row[2], row[3], row[4], row[5]]
            seen.insert(dwelling)
            if old[dwelling] != values {
                changed = true
                try db.execute(sql: """
                    INSERT INTO dwelling_day (dwelling_id, day, building_id, consumption_wh, allocated_wh, savings_nano, measured, estimated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (dwelling_id, day) DO UPDATE SET building_id = excluded.building_id, consumption_wh = excluded.consumption_wh,
                        allocated_wh = excluded.allocated_wh, savings_nano = excluded.savings_nano, measured = excluded.measured, estimated = excluded.estimated
                    """, arguments: [dwelling, dayText, building, values[0], values[1], values[2], values[3], values[4]])
            }
        }
        for dwelling in old.keys where !seen.contains(dwelling) {
            changed = true
            try db.execute(sql: "DELETE FROM dwelling_day WHERE dwelling_id = ? AND day = ?", arguments: [dwelling, dayText])
        }
        let oldBuilding = try Row.fetchOne(db, sql: "SELECT production_wh, allocated_wh, surplus_wh, consumption_wh, revenue_nano, measured, estimated, problems FROM building_day WHERE building_id = ? AND day = ?",
                                           arguments: [building, dayText])
        let sums = try Row.fetchOne(db, sql: """
            SELECT COUNT(*), COALESCE(SUM(production_wh), 0), COALESCE(SUM(allocated_wh), 0), COALESCE(SUM(surplus_wh), 0), COALESCE(SUM(consumption_wh), 0),
                   COALESCE(SUM(revenue_nano), 0), COALESCE(SUM(quality = 1), 0), COALESCE(SUM(quality = 2), 0)
            FROM building_slot WHERE building_id = ? AND slot >= ? AND slot < ?
            """, arguments: [building, slots.lowerBound, slots.upperBound])!
        if (sums[0] as Int64) == 0 && problems.isEmpty {
            if oldBuilding != nil {
                try db.execute(sql: "DELETE FROM building_day WHERE building_id = ? AND day = ?", arguments: [building, dayText])
                changed = true
            }
            return changed
        }
        let values: [Int64] = (1...7).map { sums[$0] }
        let oldValues: [Int64]? = oldBuilding.map { row in (0...6).map { row[$0] } }
        if oldValues != values || (oldBuilding?[7] as String?) != problems {
            changed = changed || oldValues != values
            try db.execute(sql: """
                INSERT INTO building_day (building_id, day, production_wh, allocated_wh, surplus_wh, consumption_wh, revenue_nano, measured, estimated, problems)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (building_id, day) DO UPDATE SET production_wh = excluded.production_wh, allocated_wh = excluded.allocated_wh,
                    surplus_wh = excluded.surplus_wh, consumption_wh = excluded.consumption_wh, revenue_nano = excluded.revenue_nano,
                    measured = excluded.measured, estimated = excluded.estimated, problems = excluded.problems
                """, arguments: [building, dayText, values[0], values[1], values[2], values[3], values[4], values[5], values[6], problems])
        }
        return changed
    }

    /// Flags the day's month as revised when staff already exported it; returns 1 when newly flagged.
    func flagRevised(_ db: Database, building: String, day: LocalDate, now: Instant) throws -> Int {
        let month = String(day.description.prefix(7))
        try db.execute(sql: "UPDATE energy_month_export SET revised_at = ? WHERE building_id = ? AND month = ? AND (revised_at IS NULL OR revised_at < exported_at)",
                       arguments: [now.millisecondsSince1970, building, month])
        return db.changesCount
    }
}

import Foundation
import GRDB
import EnergyCore
import HubCore
import Logging
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

    /// The steps themselves, the same SQL on SQLite and PostgreSQL.
    var steps: SavingsSteps { SavingsSteps(configuration: configuration, devicesPerStep: devicesPerStep, daysPerStep: daysPerStep) }

    /// Brings every figure up to date now (the CLI, the demo and tests call this; the service
    /// runs the same steps in the background).
    /// Readings still in the ingest journal are folded first: the figures read folded readings.
    /// `counter`, when given, counts the statements of each step (the settings' check the first).
    @discardableResult
    public func bringUpToDate(now: Instant, counter: SQLStatementCounter? = nil) throws -> UpkeepReport {
        try database.writeBlocking { db in _ = try ReadingJournal.fold(db) }
        var total = try database.writeBlocking { db in try steps.checkSettings(SQLiteSession(db).counted(by: counter)) }
        counter?.endStep()
        while true {
            let report = try database.writeBlocking { db in try steps.step(SQLiteSession(db).counted(by: counter), now: now) }
            counter?.endStep()
            total.add(report)
            if !report.didWork { return total }
        }
    }

    /// One bounded step in the caller's write transaction: a batch of reading changes if any,
    /// else one queued range of one building. Does nothing when all is up to date.
    public func step(_ db: Database, now: Instant) throws -> UpkeepReport {
        try steps.step(SQLiteSession(db), now: now)
    }

    /// Compares the settings the figures were computed with to the current ones; queues a rebuild
    /// when they differ (and on first use, for readings stored before this module existed).
    public func checkSettings(_ db: Database) throws -> UpkeepReport {
        try steps.checkSettings(SQLiteSession(db))
    }
}

/// One engine's savings upkeep as the background service runs it: each call one short write
/// transaction.
public protocol SavingsUpkeepRunner: Sendable {
    /// Queues a rebuild when the settings the figures were computed with changed.
    func checkSettings() async throws -> UpkeepReport
    /// One bounded step; `didWork` false when everything is up to date.
    func step(now: Instant) async throws -> UpkeepReport
}

extension SavingsUpkeep: SavingsUpkeepRunner {
    public func checkSettings() async throws -> UpkeepReport {
        try await database.write { db in try checkSettings(db) }
    }

    public func step(now: Instant) async throws -> UpkeepReport {
        try await database.write { db in try step(db, now: now) }
    }
}

/// The savings upkeep on the server database: the same steps as SQLite's, each in a transaction
/// of its own on one connection. Only one hub process runs it at a time (the background lease);
/// each step also takes a transaction-level advisory lock, so a process that lost the lease in the
/// middle of a step (its lease connection cut, not its process) cannot overlap its successor's.
public struct PostgresSavingsUpkeep: SavingsUpkeepRunner {
    public let location: PostgresLocation
    public let configuration: EnergyConfiguration
    public var devicesPerStep = 100
    public var daysPerStep = 31
    let logger: Logger

    public init(location: PostgresLocation, configuration: EnergyConfiguration, logger: Logger = Logger(label: "hub.savings")) {
        self.location = location
        self.configuration = configuration
        self.logger = logger
    }

    var steps: SavingsSteps { SavingsSteps(configuration: configuration, devicesPerStep: devicesPerStep, daysPerStep: daysPerStep) }
    private let connection = PostgresSessionHolder()

    /// The advisory lock every step holds for its transaction.
    static let stepLock = BackgroundLease.key(for: "community-hub savings upkeep step")

    /// Brings every figure up to date now (blocks its thread: call it from BlockingWork.run).
    @available(*, noasync, message: "blocks its thread: call it from BlockingWork.run")
    /// `counter`, when given, counts the statements of each step (the settings' check the first;
    /// BEGIN and COMMIT not counted).
    @discardableResult
    public func bringUpToDate(now: Instant, counter: SQLStatementCounter? = nil) throws -> UpkeepReport {
        let session = try PostgresBlockingSession(location, logger: logger)
        defer { session.close() }
        var total = try session.transaction { try checkSettings($0.counted(by: counter)) }
        counter?.endStep()
        while true {
            let report = try session.transaction { try step($0.counted(by: counter), now: now) }
            counter?.endStep()
            total.add(report)
            if !report.didWork { return total }
        }
    }

    func checkSettings(_ session: any SQLSession) throws -> UpkeepReport {
        try session.execute("SELECT pg_advisory_xact_lock(?)", Self.stepLock)
        return try steps.checkSettings(session)
    }

    func step(_ session: any SQLSession, now: Instant) throws -> UpkeepReport {
        try session.execute("SELECT pg_advisory_xact_lock(?)", Self.stepLock)
        return try steps.step(session, now: now)
    }

    public func checkSettings() async throws -> UpkeepReport {
        try await connection.transaction(location, logger: logger) { try checkSettings($0) }
    }

    public func step(now: Instant) async throws -> UpkeepReport {
        try await connection.transaction(location, logger: logger) { try step($0, now: now) }
    }
}

/// Keeps the slot and daily figures up to date with the stored readings and the registry, in
/// small write transactions (see `SavingsUpkeep`), in SQL that SQLite and PostgreSQL both run.
struct SavingsSteps: Sendable {
    let configuration: EnergyConfiguration
    var devicesPerStep = 100
    var daysPerStep = 31

    func step(_ db: any SQLSession, now: Instant) throws -> UpkeepReport {
        if let intake = db.dialect.readingChangeIntake { try db.execute(intake) }
        var report = try consumeReadingChanges(db, now: now)
        if report.readingChanges == 0 { report.add(try recomputeOneBuilding(db, now: now)) }
        return report
    }

    /// Compares the settings the figures were computed with to the current ones; queues a rebuild
    /// when they differ (and on first use, for readings stored before this module existed).
    func checkSettings(_ db: any SQLSession) throws -> UpkeepReport {
        var report = UpkeepReport()
        let slots = try db.string("SELECT value FROM savings_state WHERE name = 'slots'")
        let prices = try db.string("SELECT value FROM savings_state WHERE name = 'prices'")
        if slots != configuration.slotFingerprint {
            for table in ["device_slot", "dwelling_slot", "building_slot", "dwelling_day", "building_day", "savings_dirty"] {
                try db.execute("DELETE FROM \(table)")
            }
            try db.execute("""
                INSERT INTO reading_change (device_id, from_instant, to_instant)
                SELECT device_id, MIN(instant), MAX(instant) FROM \(db.dialect.foldedReadings) GROUP BY device_id
                ON CONFLICT (device_id) DO UPDATE SET from_instant = \(db.dialect.least("reading_change.from_instant", "excluded.from_instant")),
                    to_instant = \(db.dialect.greatest("reading_change.to_instant", "excluded.to_instant"))
                """)
            report.rebuilt = slots != nil
        } else if prices != configuration.priceFingerprint {
            try db.execute("INSERT INTO savings_dirty (building_id, from_instant, to_instant) SELECT id, 0, 253402300800000 FROM building")
            report.rebuilt = true
        }
        try db.execute("INSERT INTO savings_state (name, value) VALUES ('slots', ?), ('prices', ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                       configuration.slotFingerprint, configuration.priceFingerprint)
        return report
    }

    /// The first slot still kept: older figures are not recomputed (their readings may be purged).
    func horizonSlot(now: Instant) -> Int64 {
        let zone = configuration.zone
        return configuration.grid.slot(startingAtOrAfter: zone.startOfDay(zone.localDate(of: now).advanced(by: -configuration.rawRetentionDays)))
    }

    // MARK: - Step 1: readings to device slots

    /// The slots of devices read from the database at once (about three readings a slot at
    /// 10-minute readings): enough that a step's devices take a few statements, few enough that
    /// a rebuild's years of readings are not held in memory together.
    static let slotsPerRead = 50_000
    /// At most this many devices read at once (SQLite unites at most 500 SELECTs).
    static let devicesPerRead = 100

    /// `count` SELECTs united, the nth made by `select(n)`.
    static func united(_ count: Int, _ select: (Int) -> String) -> String {
        (0..<count).map(select).joined(separator: " UNION ALL ")
    }

    func consumeReadingChanges(_ db: any SQLSession, now: Instant) throws -> UpkeepReport {
        var report = UpkeepReport()
        let changes = try db.rows("SELECT device_id, from_instant, to_instant FROM reading_change ORDER BY device_id LIMIT ?", devicesPerStep)
        guard !changes.isEmpty else { return report }
        let grid = configuration.grid
        let horizon = horizonSlot(now: now)
        var work: [(device: String, slots: Range<Int64>)] = []
        for change in changes {
            let touched = grid.slotsTouched(from: Instant(millisecondsSince1970: try change[1].int64), to: Instant(millisecondsSince1970: try change[2].int64))
            let range = max(touched.lowerBound, horizon)..<max(touched.upperBound, horizon)
            if !range.isEmpty { work.append((try change[0].string, range)) }
        }
        try db.execute("DELETE FROM reading_change WHERE device_id IN (\(db.placeholderList(changes.count)))", changes.map { $0[0] })
        report.readingChanges = changes.count
        // A few statements for all the devices (each a round trip on PostgreSQL), not a few each.
        var changed: [String: [Int64]] = [:]
        var group: [(device: String, slots: Range<Int64>)] = []
        var groupSlots = 0
        for (index, item) in work.enumerated() {
            group.append(item)
            groupSlots += item.slots.count
            if groupSlots >= Self.slotsPerRead || group.count == Self.devicesPerRead || index == work.count - 1 {
                changed.merge(try recomputeDeviceSlots(db, group)) { $1 }
                group = []
                groupSlots = 0
            }
        }
        report.deviceSlotsRecomputed = work.reduce(0) { $0 + $1.slots.count }
        report.deviceSlotsChanged = changed.values.reduce(0) { $0 + $1.count }
        // Queue the buildings the devices served during their changed slots, device by device.
        let periods = Dictionary(grouping: try Installations.periods(db, devices: work.map(\.device).filter { changed[$0]?.isEmpty == false }), by: \.device)
        var dirty = SQLInsertBatch("INSERT INTO savings_dirty (building_id, from_instant, to_instant)", columns: 3)
        for (device, _) in work {
            guard let slots = changed[device], let first = slots.first, let last = slots.last else { continue }
            for period in periods[device] ?? [] {
                let served = servedSlots(period)
                let from = max(first, served.lowerBound)
                let to = min(last + 1, served.upperBound)
                guard from < to else { continue }
                try dirty.add(db, period.building, grid.start(of: from).millisecondsSince1970, grid.start(of: to).millisecondsSince1970)
            }
        }
        try dirty.flush(db)
        return report
    }

    /// Recomputes the slots of several devices (each listed once) from their readings; returns,
    /// by device, the slots whose row changed, sorted.
    func recomputeDeviceSlots(_ db: any SQLSession, _ devices: [(device: String, slots: Range<Int64>)]) throws -> [String: [Int64]] {
        let grid = configuration.grid
        // Folded readings only: a reading still in SQLite's ingest journal queues its change when folded.
        let table = db.dialect.foldedReadings
        // Each device with its position and two instants, as a table both engines read.
        let ranges = "WITH r(position, device_id, low, high) AS (VALUES \(db.placeholderRows(devices.count, columns: 4))) "
        let instants = devices.enumerated().flatMap { position, item -> [any SQLArgument] in
            [position, item.device, grid.start(of: item.slots.lowerBound).millisecondsSince1970, grid.start(of: item.slots.upperBound).millisecondsSince1970]
        }
        // From the last reading at or before the first slot's start to the first at or after the last slot's end.
        let reach = try db.rows(ranges + """
            SELECT r.position, COALESCE((SELECT MAX(instant) FROM \(table) x WHERE x.device_id = r.device_id AND x.instant <= r.low), r.low),
                   COALESCE((SELECT MIN(instant) FROM \(table) x WHERE x.device_id = r.device_id AND x.instant >= r.high), r.high)
            FROM r
            """, instants)
        // One SELECT per device, united: each reads its own range of the primary key (and, on
        // PostgreSQL, of the month partitions that range meets: a join with `r` is planned as a
        // scan of every partition), its rows tagged with the device's position. Rows come in no
        // particular order: sorted here.
        var bounds = devices.map { _ in (Int64(0), Int64(0)) }
        for row in reach { bounds[Int(try row[0].int64)] = (try row[1].int64, try row[2].int64) }
        var readings = [[StoredIndex]](repeating: [], count: devices.count)
        for row in try db.rows(Self.united(devices.count) { "SELECT \($0), instant, energy_wh, segment FROM \(table) WHERE device_id = ? AND instant >= ? AND instant <= ?" },
                               devices.indices.flatMap { [devices[$0].device, bounds[$0].0, bounds[$0].1] as [any SQLArgument] }) {
            readings[Int(try row[0].int64)].append(StoredIndex(instant: Instant(millisecondsSince1970: try row[1].int64), energy: WattHours(try row[2].int64),
                                                               segment: Int(try row[3].int64)))
        }
        var existing = [[Int64: (Int64, UInt8)]](repeating: [:], count: devices.count)
        for row in try db.rows(Self.united(devices.count) { "SELECT \($0), slot, energy_wh, quality FROM device_slot WHERE device_id = ? AND slot >= ? AND slot < ?" },
                               devices.flatMap { [$0.device, $0.slots.lowerBound, $0.slots.upperBound] as [any SQLArgument] }) {
            existing[Int(try row[0].int64)][try row[1].int64] = (try row[2].int64, UInt8(clamping: try row[3].int64))
        }
        var changed: [String: [Int64]] = [:]
        var upserts = SQLInsertBatch("INSERT INTO device_slot (device_id, slot, energy_wh, quality)", columns: 4,
                                     tail: "ON CONFLICT (device_id, slot) DO UPDATE SET energy_wh = excluded.energy_wh, quality = excluded.quality")
        var removals = SQLInsertBatch.deleting(from: "device_slot", keys: ["device_id", "slot"])
        for (position, (device, range)) in devices.enumerated() {
            let series = Slotter.slots(readings: readings[position].sorted { $0.instant < $1.instant }, slots: range, grid: grid,
                                       estimatedGapMilliseconds: configuration.estimatedGapMilliseconds)
            let stored = existing[position]
            var slots: [Int64] = []
            for offset in 0..<range.count {
                let slot = range.lowerBound + Int64(offset)
                let quality = series.quality[offset]
                let old = stored[slot]
                if quality == .missing {
                    if old != nil {
                        try removals.add(db, device, slot)
                        slots.append(slot)
                    }
                } else if old == nil || old! != (series.energy[offset], quality.rawValue) {
                    try upserts.add(db, device, slot, series.energy[offset], quality.rawValue)
                    slots.append(slot)
                }
            }
            changed[device] = slots
        }
        try removals.flush(db)
        try upserts.flush(db)
        return changed
    }

    func servedSlots(_ period: InstallationPeriod) -> Range<Int64> {
        let grid = configuration.grid
        let interval = period.interval(in: configuration.zone)
        return grid.slot(startingAtOrAfter: interval.from)..<(interval.to.map { grid.slot(startingAtOrAfter: $0) } ?? Int64.max / 2)
    }

    // MARK: - Step 2: building slots and days

    func recomputeOneBuilding(_ db: any SQLSession, now: Instant) throws -> UpkeepReport {
        var report = UpkeepReport()
        guard let building = try db.string("SELECT building_id FROM savings_dirty ORDER BY id LIMIT 1") else { return report }
        report.buildingsVisited = 1
        let grid = configuration.grid
        let zone = configuration.zone
        // Merge the building's queued ranges (as slots), clamp them to what can hold figures.
        let ranges: [Range<Int64>] = try db.rows("SELECT from_instant, to_instant FROM savings_dirty WHERE building_id = ?", building).map { row in
            grid.slot(containing: Instant(millisecondsSince1970: try row[0].int64))..<grid.slot(startingAtOrAfter: Instant(millisecondsSince1970: try row[1].int64))
        }
        try db.execute("DELETE FROM savings_dirty WHERE building_id = ?", building)
        let periods = try Installations.periods(db, building: building)
        // Sorted: the same queries in the same order on both engines.
        let devices = Set(periods.map(\.device)).sorted()
        // The end of the building's figures and of its devices' slots, in one statement.
        let upper = try db.rows((devices.isEmpty ? "" : "WITH r(device_id) AS (VALUES \(db.placeholderRows(devices.count, columns: 1))) ")
                                + "SELECT (SELECT MAX(slot) + 1 FROM building_slot WHERE building_id = ?)"
                                + (devices.isEmpty ? "" : ", (SELECT MAX(m) + 1 FROM (SELECT (SELECT MAX(slot) FROM device_slot s WHERE s.device_id = r.device_id) AS m FROM r) e)"),
                                devices + [building]).first?.compactMap { try $0.optionalInt64 }.max()
        let lower = horizonSlot(now: now)
        // One chunk now; the rest back in the queue.
        guard let (chunk, rest) = SlotRanges.firstChunk(SlotRanges.merge(ranges, lower: lower, upper: upper ?? Int64.min),
                                                         maxSlots: Int64(daysPerStep) * 86_400_000 / grid.milliseconds) else { return report }
        var queue = SQLInsertBatch("INSERT INTO savings_dirty (building_id, from_instant, to_instant)", columns: 3)
        for range in rest {
            try queue.add(db, building, grid.start(of: range.lowerBound).millisecondsSince1970, grid.start(of: range.upperBound).millisecondsSince1970)
        }
        try queue.flush(db)

        let input = try buildingInput(db, building: building, periods: periods, slots: chunk)
        let result = try BuildingEngine.compute(input, configuration: configuration)
        try writeSlots(db, result)
        report.buildingSlotsRecomputed = chunk.count
        report.problems = result.problems

        // The days the chunk falls in, summed again from their slots.
        let firstDay = zone.localDate(of: grid.start(of: chunk.lowerBound))
        let lastDay = zone.localDate(of: grid.start(of: chunk.upperBound - 1))
        var days: [LocalDate] = []
        var day = firstDay
        while day <= lastDay {
            days.append(day)
            day = day.advanced(by: 1)
        }
        let problems = days.map { day in result.problems.filter { $0.hasPrefix(day.description + ":") }.joined(separator: "\n") }
        let changed = try recomputeDays(db, building: building, days: days, problems: problems)
        // The exported months of the changed days, once each.
        var months: [String] = []
        for day in changed where !months.contains(String(day.description.prefix(7))) { months.append(String(day.description.prefix(7))) }
        for month in months { report.monthsRevised += try flagRevised(db, building: building, month: month, now: now) }
        report.daysRecomputed = days.count
        return report
    }

    /// Loads what the engine needs for a building over some slots.
    func buildingInput(_ db: any SQLSession, building: String, periods: [InstallationPeriod], slots: Range<Int64>) throws -> BuildingInput {
        let grid = configuration.grid
        let devices = Set(periods.map(\.device)).sorted()
        // One SELECT per device, united, its rows tagged with the device's position.
        var series = devices.map { _ in SlotSeries(slots: slots) }
        if !devices.isEmpty {
            for row in try db.rows(Self.united(devices.count) { "SELECT \($0), slot, energy_wh, quality FROM device_slot WHERE device_id = ? AND slot >= ? AND slot < ?" },
                                   devices.flatMap { [$0, slots.lowerBound, slots.upperBound] as [any SQLArgument] }) {
                let (position, offset) = (Int(try row[0].int64), Int(try row[1].int64 - slots.lowerBound))
                series[position].energy[offset] = try row[2].int64
                series[position].quality[offset] = SlotQuality(rawValue: UInt8(clamping: try row[3].int64)) ?? .missing
            }
        }
        let seriesByDevice = Dictionary(uniqueKeysWithValues: zip(devices, series))
        let dwellingIDs = try db.rows("SELECT id FROM dwelling WHERE building_id = ? ORDER BY id", building).map { try $0[0].string }
        var tariffs: [String: [(since: LocalDate, value: TariffPlan)]] = [:]
        for row in try db.rows("SELECT t.dwelling_id, t.since, t.tariff FROM dwelling_tariff t JOIN dwelling d ON d.id = t.dwelling_id WHERE d.building_id = ? ORDER BY t.dwelling_id, t.since", building) {
            guard let since = LocalDate(parsing: try row[1].string), case .success(let plan) = TariffPlan.parse(try row[2].string) else { continue }
            tariffs[try row[0].string, default: []].append((since, plan))
        }
        var shares: [String: [(since: LocalDate, value: ShareMillionths)]] = [:]
        for row in try db.rows("SELECT s.dwelling_id, s.since, s.share FROM dwelling_share s JOIN dwelling d ON d.id = s.dwelling_id WHERE d.building_id = ? ORDER BY s.dwelling_id, s.since", building) {
            guard let since = LocalDate(parsing: try row[1].string), let share = Decimal6.parse(try row[2].string) else { continue }
            shares[try row[0].string, default: []].append((since, share))
        }
        let dwellings = dwellingIDs.map { id in
            DwellingInput(id: id, meters: periods.filter { $0.kind == .meter && $0.dwelling == id }.map {
                ServedSeries(device: $0.device, series: seriesByDevice[$0.device]!, served: servedSlots($0))
            }, tariff: Dated(tariffs[id] ?? []), share: Dated(shares[id] ?? []))
        }
        let producers = periods.filter { $0.kind == .pv }.map { ServedSeries(device: $0.device, series: seriesByDevice[$0.device]!, served: servedSlots($0)) }
        let key = Dated(try db.rows("SELECT since, allocation_key FROM building_allocation_key WHERE building_id = ? ORDER BY since", building).compactMap { row -> (since: LocalDate, value: AllocationKeyKind)? in
            guard let since = LocalDate(parsing: try row[0].string), let kind = AllocationKeyKind(rawValue: try row[1].string) else { return nil }
            return (since, kind)
        })
        var coefficients: [Int64: [ShareMillionths]] = [:]
        if key.entries.contains(where: { $0.value == .perSlot }) {
            let index = Dictionary(uniqueKeysWithValues: dwellingIDs.enumerated().map { ($1, $0) })
            for row in try db.rows("SELECT slot_start, dwelling_id, coefficient FROM allocation_coefficient WHERE building_id = ? AND slot_start >= ? AND slot_start < ?",
                                   building, grid.start(of: slots.lowerBound).millisecondsSince1970, grid.start(of: slots.upperBound).millisecondsSince1970) {
                let start = try row[0].int64
                guard start % grid.milliseconds == 0, let position = index[try row[1].string] else { continue }
                coefficients[start / grid.milliseconds, default: [ShareMillionths](repeating: 0, count: dwellingIDs.count)][position] = try row[2].int64
            }
        }
        return BuildingInput(building: building, slots: slots, dwellings: dwellings, producers: producers, key: key, coefficients: coefficients)
    }

    func writeSlots(_ db: any SQLSession, _ result: BuildingSlots) throws {
        let slots = result.slots
        try db.execute("DELETE FROM dwelling_slot WHERE building_id = ? AND slot >= ? AND slot < ?", result.building, slots.lowerBound, slots.upperBound)
        try db.execute("DELETE FROM building_slot WHERE building_id = ? AND slot >= ? AND slot < ?", result.building, slots.lowerBound, slots.upperBound)
        let n = result.slotCount
        var dwellingSlots = SQLInsertBatch("INSERT INTO dwelling_slot (building_id, slot, dwelling_id, consumption_wh, allocated_wh, savings_nano, quality)", columns: 7)
        var buildingSlots = SQLInsertBatch("INSERT INTO building_slot (building_id, slot, production_wh, allocated_wh, surplus_wh, consumption_wh, revenue_nano, quality)",
                                           columns: 8)
        for offset in 0..<n {
            let slot = slots.lowerBound + Int64(offset)
            var anyone = false
            for (index, dwelling) in result.dwellings.enumerated() {
                let flat = index * n + offset
                guard result.inService[flat] else { continue }
                anyone = true
                guard result.consumptionKnown[flat] else { continue }
                try dwellingSlots.add(db, result.building, slot, dwelling, result.consumption[flat], result.allocated[flat], result.savings[flat], result.quality[flat].rawValue)
            }
            let productionKnown = result.productionQuality[offset] != .missing
            guard anyone || productionKnown else { continue }
            try buildingSlots.add(db, result.building, slot, productionKnown ? result.production[offset] : nil, result.buildingAllocated[offset],
                                  result.surplus[offset], result.buildingConsumption[offset], result.revenue[offset], result.buildingQuality[offset].rawValue)
        }
        try dwellingSlots.flush(db)
        try buildingSlots.flush(db)
    }

    /// Sums a building's days again from their slots; returns the days whose figures changed.
    /// `days` are consecutive; `problems` holds each day's allocation problems. A few statements
    /// for all the days.
    func recomputeDays(_ db: any SQLSession, building: String, days: [LocalDate], problems: [String]) throws -> [LocalDate] {
        guard !days.isEmpty else { return [] }
        let grid = configuration.grid
        let texts = days.map(\.description)
        // One SELECT per day, united: each reads its own range of the primary key (a join with a
        // table of the days is planned as a scan of all the building's slots).
        let dayValues = days.flatMap { day -> [any SQLArgument] in
            let slots = grid.slots(of: day, in: configuration.zone)
            return [day.description, building, slots.lowerBound, slots.upperBound]
        }
        var oldDwellings: [String: [String: [Int64]]] = [:]
        for row in try db.rows("SELECT day, dwelling_id, consumption_wh, allocated_wh, savings_nano, measured, estimated FROM dwelling_day WHERE building_id = ? AND day >= ? AND day <= ?",
                               building, texts[0], texts[texts.count - 1]) {
            oldDwellings[try row[0].string, default: [:]][try row[1].string] = try (2...6).map { try row[$0].int64 }
        }
        // Sums cast to BIGINT: PostgreSQL's SUM of bigint is numeric.
        var freshDwellings: [String: [(String, [Int64])]] = [:]
        for row in try db.rows(Self.united(days.count) { _ in """
            SELECT ?, dwelling_id, CAST(SUM(consumption_wh) AS BIGINT), CAST(SUM(allocated_wh) AS BIGINT), CAST(SUM(savings_nano) AS BIGINT),
                   CAST(SUM(CASE WHEN quality = 1 THEN 1 ELSE 0 END) AS BIGINT), CAST(SUM(CASE WHEN quality = 2 THEN 1 ELSE 0 END) AS BIGINT)
            FROM dwelling_slot WHERE building_id = ? AND slot >= ? AND slot < ? GROUP BY dwelling_id
            """ }, dayValues) {
            freshDwellings[try row[0].string, default: []].append((try row[1].string, try (2...6).map { try row[$0].int64 }))
        }
        var oldBuildings: [String: [SQLValue]] = [:]
        for row in try db.rows("""
            SELECT day, production_wh, allocated_wh, surplus_wh, consumption_wh, revenue_nano, measured, estimated, problems
            FROM building_day WHERE building_id = ? AND day >= ? AND day <= ?
            """, building, texts[0], texts[texts.count - 1]) {
            oldBuildings[try row[0].string] = Array(row.dropFirst())
        }
        var sums: [String: [Int64]] = [:]
        for row in try db.rows(Self.united(days.count) { _ in """
            SELECT ?, COUNT(*), CAST(COALESCE(SUM(production_wh), 0) AS BIGINT), CAST(COALESCE(SUM(allocated_wh), 0) AS BIGINT), CAST(COALESCE(SUM(surplus_wh), 0) AS BIGINT),
                   CAST(COALESCE(SUM(consumption_wh), 0) AS BIGINT), CAST(COALESCE(SUM(revenue_nano), 0) AS BIGINT),
                   CAST(COALESCE(SUM(CASE WHEN quality = 1 THEN 1 ELSE 0 END), 0) AS BIGINT), CAST(COALESCE(SUM(CASE WHEN quality = 2 THEN 1 ELSE 0 END), 0) AS BIGINT)
            FROM building_slot WHERE building_id = ? AND slot >= ? AND slot < ?
            """ }, dayValues) {
            sums[try row[0].string] = try (1...8).map { try row[$0].int64 }
        }

        var dwellingDays = SQLInsertBatch("INSERT INTO dwelling_day (dwelling_id, day, building_id, consumption_wh, allocated_wh, savings_nano, measured, estimated)",
                                          columns: 8, tail: """
            ON CONFLICT (dwelling_id, day) DO UPDATE SET building_id = excluded.building_id, consumption_wh = excluded.consumption_wh,
                allocated_wh = excluded.allocated_wh, savings_nano = excluded.savings_nano, measured = excluded.measured, estimated = excluded.estimated
            """)
        var goneDwellingDays = SQLInsertBatch.deleting(from: "dwelling_day", keys: ["dwelling_id", "day"])
        var buildingDays = SQLInsertBatch("INSERT INTO building_day (building_id, day, production_wh, allocated_wh, surplus_wh, consumption_wh, revenue_nano, measured, estimated, problems)",
                                          columns: 10, tail: """
            ON CONFLICT (building_id, day) DO UPDATE SET production_wh = excluded.production_wh, allocated_wh = excluded.allocated_wh,
                surplus_wh = excluded.surplus_wh, consumption_wh = excluded.consumption_wh, revenue_nano = excluded.revenue_nano,
                measured = excluded.measured, estimated = excluded.estimated, problems = excluded.problems
            """)
        var goneBuildingDays = SQLInsertBatch.deleting(from: "building_day", keys: ["building_id", "day"])
        var changedDays: [LocalDate] = []
        for (index, day) in days.enumerated() {
            let dayText = texts[index]
            var changed = false
            let old = oldDwellings[dayText] ?? [:]
            // Sorted here: the same statements in the same order on both engines.
            let fresh = (freshDwellings[dayText] ?? []).sorted { $0.0 < $1.0 }
            for (dwelling, values) in fresh where old[dwelling] != values {
                changed = true
                try dwellingDays.add(db, dwelling, dayText, building, values[0], values[1], values[2], values[3], values[4])
            }
            let seen = Set(fresh.map(\.0))
            for dwelling in old.keys.sorted() where !seen.contains(dwelling) {
                changed = true
                try goneDwellingDays.add(db, dwelling, dayText)
            }
            let oldBuilding = oldBuildings[dayText]
            let counts = sums[dayText] ?? [Int64](repeating: 0, count: 8)
            if counts[0] == 0 && problems[index].isEmpty {
                if oldBuilding != nil {
                    try goneBuildingDays.add(db, building, dayText)
                    changed = true
                }
            } else {
                let values = Array(counts.dropFirst())
                let oldValues: [Int64]? = try oldBuilding.map { row in try (0...6).map { try row[$0].int64 } }
                if try oldValues != values || oldBuilding?[7].optionalString != problems[index] {
                    changed = changed || oldValues != values
                    try buildingDays.add(db, building, dayText, values[0], values[1], values[2], values[3], values[4], values[5], values[6], problems[index])
                }
            }
            if changed { changedDays.append(day) }
        }
        try goneDwellingDays.flush(db)
        try dwellingDays.flush(db)
        try goneBuildingDays.flush(db)
        try buildingDays.flush(db)
        return changedDays
    }

    /// Flags a month as revised when staff already exported it; returns 1 when newly flagged.
    func flagRevised(_ db: any SQLSession, building: String, month: String, now: Instant) throws -> Int {
        try db.execute("UPDATE energy_month_export SET revised_at = ? WHERE building_id = ? AND month = ? AND (revised_at IS NULL OR revised_at < exported_at)",
                       now.millisecondsSince1970, building, month)
    }
}

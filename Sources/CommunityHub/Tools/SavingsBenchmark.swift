import Foundation
import GRDB
import EnergyCore
import HubCore
import Shared
import HubApp
import EnergyHub

/// `community-hub bench savings`: (1) allocating a month for many dwellings against a plain loop
/// that only sums the same consumption arrays; (2) a month's figures for many dwellings read from
/// the database when readings came every 10 minutes against every minute. Figures are ratios
/// measured in the same run. Data is synthetic (clearly so) and seeded.
public enum SavingsBenchmark {
    public struct Options: Sendable {
        public var allocationCounts = [1_000, 10_000, 40_000]
        public var databaseDwellings = 10_000
        /// Minutes between readings, one database per value.
        public var databaseMinutes = [10, 1]
        public var days = 31
        public var dwellingsPerBuilding = 40
        public var repetitions = 3
        public var directory: URL
        public var skipDatabase = false

        public init(directory: URL) { self.directory = directory }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func best(_ repetitions: Int, _ body: () throws -> Void) rethrows -> Double {
        var best = Double.infinity
        for _ in 0..<max(1, repetitions) {
            let start = ContinuousClock.now
            try body()
            best = min(best, seconds(ContinuousClock.now - start))
        }
        return best
    }

    static func bestAsync(_ repetitions: Int, _ body: () async throws -> Void) async rethrows -> Double {
        var best = Double.infinity
        for _ in 0..<max(1, repetitions) {
            let start = ContinuousClock.now
            try await body()
            best = min(best, seconds(ContinuousClock.now - start))
        }
        return best
    }

    /// A household's synthetic consumption in a half-hour-ish slot (Wh), and a building's PV.
    static func consumption(slot: Int, slotsPerDay: Int, random: inout SeededGenerator) -> Int64 {
        let hour = (slot % slotsPerDay) * 24 / slotsPerDay
        let base: Int64 = (hour >= 7 && hour < 9) || (hour >= 18 && hour < 22) ? 400 : 150
        return base + Int64(random.next() % 200)
    }

    static func production(slot: Int, slotsPerDay: Int, peak: Int64, random: inout SeededGenerator) -> Int64 {
        let minute = (slot % slotsPerDay) * 1440 / slotsPerDay
        guard minute >= 6 * 60, minute < 20 * 60 else { return 0 }
        let distance = abs(minute - 13 * 60)
        let shape = Int64(max(0, 420 - distance))
        return peak * shape / 420 * Int64(60 + random.next() % 41) / 100
    }

    public static func run(_ options: Options, log: (String) -> Void) async throws {
        log("bench savings: synthetic seeded data; each figure is the best of \(options.repetitions) runs")
        try allocation(options, log: log)
        try fairness(log: log)
        if !options.skipDatabase { try await database(options, log: log) }
    }

    // MARK: - (1) allocation against a plain summing loop

    static func allocation(_ options: Options, log: (String) -> Void) throws {
        let slotsPerDay = 48
        let slots = slotsPerDay * options.days
        let perBuilding = options.dwellingsPerBuilding
        log("\n(1) allocation of \(options.days) days of 30-minute slots (\(slots) slots), \(perBuilding) dwellings a building, pro rata key")
        log(EnergyTables.render(["dwellings", "sum loop s", "pro rata s", "ratio", "ns/dwelling-slot", "static+redistribution s", "ratio"], []))
        for count in options.allocationCounts {
            let buildings = max(1, count / perBuilding)
            var random = SeededGenerator(seed: UInt64(count))
            // Slot-major matrices, one per building: consumption[slot * perBuilding + dwelling].
            var consumption: [[Int64]] = []
            var production: [[Int64]] = []
            for _ in 0..<buildings {
                var matrix = [Int64](repeating: 0, count: slots * perBuilding)
                for index in matrix.indices { matrix[index] = SavingsBenchmark.consumption(slot: index / perBuilding, slotsPerDay: slotsPerDay, random: &random) }
                consumption.append(matrix)
                production.append((0..<slots).map { SavingsBenchmark.production(slot: $0, slotsPerDay: slotsPerDay, peak: Int64(perBuilding) * 350, random: &random) })
            }
            var allocated = consumption.map { [Int64](repeating: 0, count: $0.count) }
            let shares = [ShareMillionths](repeating: 1_000_000 / Int64(perBuilding), count: perBuilding)
            var checksum: Int64 = 0
            let sumTime = best(options.repetitions) {
                var total: Int64 = 0
                for building in 0..<buildings {
                    consumption[building].withUnsafeBufferPointer { matrix in
                        for slot in 0..<slots {
                            var sum: Int64 = 0
                            for dwelling in 0..<perBuilding { sum &+= matrix[slot * perBuilding + dwelling] }
                            total &+= sum
                        }
                    }
                }
                checksum &+= total
            }
            func allocate(_ rule: AllocationKeyKind) throws -> Double {
                try best(options.repetitions) {
                    var surplus: Int64 = 0
                    for building in 0..<buildings {
                        try consumption[building].withUnsafeBufferPointer { matrix in
                            try allocated[building].withUnsafeMutableBufferPointer { output in
                                try shares.withUnsafeBufferPointer { shares in
                                    for slot in 0..<slots {
                                        let row = UnsafeBufferPointer(rebasing: matrix[(slot * perBuilding)..<((slot + 1) * perBuilding)])
                                        let out = UnsafeMutableBufferPointer(rebasing: output[(slot * perBuilding)..<((slot + 1) * perBuilding)])
                                        // The rounding walk starts at a different household in each slot, as in the engine.
                                        let start = Allocation.rotation(slot: Int64(slot), count: perBuilding)
                                        switch rule {
                                        case .staticRedistributed:
                                            surplus &+= try Allocation.staticRedistributed(production: production[building][slot], consumption: row, shares: shares,
                                                                                           allocated: out, start: start)
                                        default:
                                            surplus &+= try Allocation.proRata(production: production[building][slot], consumption: row, allocated: out, start: start)
                                        }
                                    }
                                }
                            }
                        }
                    }
                    checksum &+= surplus
                }
            }
            let proRata = try allocate(.proRata)
            let redistributed = try allocate(.staticRedistributed)
            let cells = Double(buildings * perBuilding * slots)
            log(EnergyTables.render(["dwellings", "sum loop s", "pro rata s", "ratio", "ns/dwelling-slot", "static+redistribution s", "ratio"], [[
                "\(buildings * perBuilding)", String(format: "%.4f", sumTime), String(format: "%.4f", proRata), String(format: "%.2fx", proRata / sumTime),
                String(format: "%.2f", proRata / cells * 1e9), String(format: "%.4f", redistributed), String(format: "%.2fx", redistributed / sumTime),
            ]]).split(separator: "\n").dropFirst(2).joined(separator: "\n"))
            if checksum == 42 { log("") }
        }
    }

    // MARK: - fair rounding: the six-household building of issue 13

    /// A six-household building over October (31 days of 30-minute slots, synthetic), shares
    /// 0.30/0.25/0.15/0.10/0.10/0.10: each household's rounded month minus its exact share, per key.
    static func fairness(log: (String) -> Void) throws {
        let shares: [ShareMillionths] = [300_000, 250_000, 150_000, 100_000, 100_000, 100_000]
        // 2026-10-01T00:00 Paris is 2026-09-30T22:00Z; slot numbers count 30-minute slots since 1970.
        let firstSlot = Int64(1_790_805_600_000 / 1_800_000)
        let building = AllocationFairness.simulatedMonth(households: 6, slots: 31 * 48, firstSlot: firstSlot, seed: 2026_10, shares: shares)
        log("\n(2) fair rounding: 6 households, October, 30-minute slots; each household's rounded month minus its exact share (Wh)")
        var rows: [[String]] = []
        for key in AllocationFairness.Key.allCases {
            let (drift, worst) = try AllocationFairness.drift(building, key: key)
            rows.append([key.rawValue] + drift.map { String(format: "%+.1f", $0) } + [String(format: "%.2f", worst)])
        }
        // The same shares rounded from the first household in every slot, as before issue 13.
        for key in AllocationFairness.Key.allCases {
            let (drift, worst) = try AllocationFairness.drift(building, key: key, fixedStart: true)
            rows.append([key.rawValue + ", always from D1"] + drift.map { String(format: "%+.1f", $0) } + [String(format: "%.2f", worst)])
        }
        log(EnergyTables.render(["key", "D1", "D2", "D3", "D4", "D5", "D6", "worst slot"], rows))
    }

    /// Readings as ingest leaves them once its journal is folded (with their reading_change
    /// rows), device by device, in transactions of 50 devices; returns how many.
    static func storeReadings(_ database: HubDatabase, devices: [(String, Int64)], start: Int64, end: Int64, step: Int64) throws -> Int {
        var readings = 0
        for batch in stride(from: 0, to: devices.count, by: 50) {
            try database.writeBlocking { db in
                let insert = try db.cachedStatement(sql: "INSERT INTO reading_by_device (device_id, instant, energy_wh, segment, time_source, received_at) VALUES (?, ?, ?, 0, 'device', ?)")
                for (device, peak) in devices[batch..<min(devices.count, batch + 50)] {
                    // FNV-1a of the id: the same data in every run (String.hashValue changes per process).
                    var random = SeededGenerator(seed: device.utf8.reduce(UInt64(0xcbf2_9ce4_8422_2325)) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 })
                    var milliwattHours: Int64 = 1_000_000_000
                    var instant = start
                    while instant <= end {
                        try insert.execute(arguments: [device, instant, milliwattHours / 1000, instant])
                        readings += 1
                        let minuteOfDay = Int((instant / 60_000) % 1440)
                        let watts: Int64 = peak > 0
                            ? (minuteOfDay >= 360 && minuteOfDay < 1200 ? peak * 2 * Int64(max(0, 420 - abs(minuteOfDay - 780))) / 420 : 0)
                            : ((minuteOfDay >= 420 && minuteOfDay < 540) || (minuteOfDay >= 1080 && minuteOfDay < 1320) ? 800 : 300) + Int64(random.next() % 400)
                        milliwattHours += watts * step / 3600
                        instant += step
                    }
                    try db.execute(sql: "INSERT INTO reading_change (device_id, from_instant, to_instant) VALUES (?, ?, ?)", arguments: [device, start, end])
                }
            }
        }
        return readings
    }

    // MARK: - (2) a month's figures from the database, 10-minute vs 1-minute readings

    static func database(_ options: Options, log: (String) -> Void) async throws {
        log("\n(2) a month's figures for \(options.databaseDwellings) dwellings from the database (\(options.days) days)")
        var results: [(minutes: Int, readings: Int, ingest: Double, upkeep: Double, figures: Double, size: Int64, deviceReadings: Double)] = []
        for minutes in options.databaseMinutes {
            let path = options.directory.appendingPathComponent("bench-\(minutes)min.sqlite").path
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            let database = try HubDatabase.open(path: path, schemas: [SharedSchema.register, EnergySchema.register, SavingsSchema.register], synchronous: .normal)
            let configuration = try EnergySettings().validated()
            let first = LocalDate(year: 2026, month: 3, day: 1)!
            let last = first.advanced(by: options.days - 1)
            let now = configuration.zone.startOfDay(last.advanced(by: 1))
            // Registry through the real importer.
            var csv = "estate;building;dwelling;device;kind;format;since;tariff\n"
            let buildings = max(1, options.databaseDwellings / options.dwellingsPerBuilding)
            for building in 0..<buildings {
                csv += "E\(building / 25);B\(building);;pv-\(building);pv;canonical;2026-01-01;\n"
                for dwelling in 0..<options.dwellingsPerBuilding {
                    let id = building * options.dwellingsPerBuilding + dwelling
                    csv += "E\(building / 25);B\(building);D\(id);m-\(id);meter;canonical;2026-01-01;\(id % 3 == 0 ? "edf-bleu-hphc 22:26-06:26" : "edf-bleu-base")\n"
                }
            }
            _ = try RegistryImporter(database: database).importCSV(Data(csv.utf8))
            _ = try SavingsUpkeep(database: database, configuration: configuration).bringUpToDate(now: now)
            // Readings as ingest stores them (with their reading_change rows), device by device.
            let start = configuration.zone.startOfDay(first).millisecondsSince1970
            let end = now.millisecondsSince1970
            let step = Int64(minutes) * 60_000
            let ingestStart = ContinuousClock.now
            var devices: [(String, Int64)] = []
            for building in 0..<buildings {
                devices.append(("pv-\(building)", Int64(options.dwellingsPerBuilding) * 350))
                for dwelling in 0..<options.dwellingsPerBuilding { devices.append(("m-\(building * options.dwellingsPerBuilding + dwelling)", 0)) }
            }
            let readings = try storeReadings(database, devices: devices, start: start, end: end, step: step)
            let ingest = seconds(ContinuousClock.now - ingestStart)
            let upkeepStart = ContinuousClock.now
            _ = try SavingsUpkeep(database: database, configuration: configuration).bringUpToDate(now: now)
            let upkeep = seconds(ContinuousClock.now - upkeepStart)
            let reports = EnergyReports(database: database, configuration: configuration)
            let dwellingIDs = try await database.read { db in try String.fetchAll(db, sql: "SELECT id FROM dwelling ORDER BY id") }
            let buildingIDs = try await database.read { db in try String.fetchAll(db, sql: "SELECT id FROM building ORDER BY id") }
            var checksum: Int64 = 0
            let figures = try await bestAsync(options.repetitions) {
                for dwelling in dwellingIDs { checksum &+= try await reports.dwelling(dwelling, from: first, to: last, now: now).savingsCents }
                for building in buildingIDs { checksum &+= try await reports.building(building, from: first, to: last, now: now).productionWh }
            }
            // A device's readings as the route reads them (the store's query), the whole month, for
            // 100 meters spread over the estate, with half a fold's worth of readings of other
            // devices waiting in the ingest journal (the route reads the journal too).
            let unfolded = IngestSettings().foldRows / 2
            try await database.write { db in
                let append = try db.cachedStatement(sql: """
                    INSERT INTO reading_journal (device_id, instant, energy_wh, segment, time_source, received_at) VALUES (?, ?, ?, 0, 'device', ?)
                    """)
                for index in 0..<unfolded {
                    try append.execute(arguments: ["journal-\(index % 2000)", end + Int64(index / 2000 + 1) * 60_000, index, end])
                }
                // As the ingest writer does: the journal lists the devices it holds.
                try ReadingJournal.listDevices(db)
            }
            let store = SQLiteReadingStore(database: database)
            let sampled = stride(from: 0, to: dwellingIDs.count, by: max(1, dwellingIDs.count / 100)).map { "m-\($0)" }
            let monthStart = configuration.zone.startOfDay(first)
            var perDevice = 0
            let deviceReadings = try await bestAsync(options.repetitions) {
                for device in sampled {
                    perDevice = try await store.readings(device: device, from: monthStart, to: now, limit: 100_000).count
                    checksum &+= Int64(perDevice)
                }
            } / Double(sampled.count)
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0
            results.append((minutes, readings, ingest, upkeep, figures, size, deviceReadings))
            log("  \(minutes)-minute readings: \(readings) readings stored in \(String(format: "%.1f", ingest)) s; upkeep (slots, allocation, days) \(String(format: "%.1f", upkeep)) s; "
                + "month's figures for \(dwellingIDs.count) dwellings and \(buildingIDs.count) buildings \(String(format: "%.3f", figures)) s; "
                + "a device's month of readings (\(perDevice), the readings route's query, \(unfolded) readings in the journal) \(String(format: "%.2f", deviceReadings * 1000)) ms (checksum \(checksum % 1000))")
            try? database.close()
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        }
        if results.count == 2 {
            let (ten, one) = (results[0], results[1])
            log(EnergyTables.render(["readings every", "readings", "database MB", "upkeep s", "month's figures s", "a device's month ms"], results.map {
                ["\($0.minutes) min", "\($0.readings)", "\($0.size / 1_000_000)", String(format: "%.1f", $0.upkeep), String(format: "%.3f", $0.figures),
                 String(format: "%.2f", $0.deviceReadings * 1000)]
            }))
            log(String(format: "  month's figures, 1-minute / 10-minute: %.2fx (readings %.1fx; upkeep %.2fx, spread over the month as readings arrive)",
                       one.figures / ten.figures, Double(one.readings) / Double(ten.readings), one.upkeep / ten.upkeep))
        }
    }
}

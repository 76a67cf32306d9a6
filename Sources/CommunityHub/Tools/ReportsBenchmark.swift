import Foundation
import GRDB
import EnergyCore
import HubCore
import Shared
import HubApp
import EnergyHub

/// `community-hub bench reports`: how long the estate and landlord energy reports hold a reader
/// on a large registry (issue 16: one query per household made an estate of 4,000 take a second).
/// The registry is synthetic (10 estates of 4,000 dwellings by default, no readings yet) and goes
/// through the real importer. Baselines in the same run: reading the estate's dwelling ids (the
/// least any report must do) and the former way, one installation query per household.
public enum ReportsBenchmark {
    public struct Options: Sendable {
        public var estates = 10
        public var dwellingsPerEstate = 4_000
        public var dwellingsPerBuilding = 40
        public var repetitions = 5
        public var directory: URL

        public init(directory: URL) { self.directory = directory }
    }

    public static func run(_ options: Options, log: (String) -> Void) async throws {
        let path = options.directory.appendingPathComponent("bench-reports.sqlite").path
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let database = try HubDatabase.open(path: path, schemas: [SharedSchema.register, EnergySchema.register, SavingsSchema.register], synchronous: .normal)
        defer { try? database.close() }
        let total = options.estates * options.dwellingsPerEstate
        log("bench reports: SYNTHETIC registry of \(options.estates) estates x \(options.dwellingsPerEstate) dwellings (\(total)), "
            + "\(options.dwellingsPerBuilding) per building with PV, no readings; best of \(options.repetitions) runs")
        let importStart = ContinuousClock.now
        _ = try RegistryImporter(database: database).importCSV(Data(registryCSV(options).utf8))
        log("  registry imported in \(format(ContinuousClock.now - importStart))")

        let configuration = try EnergySettings().validated()
        let reports = EnergyReports(database: database, configuration: configuration)
        let from = LocalDate(year: 2026, month: 11, day: 1)!
        let to = LocalDate(year: 2026, month: 11, day: 30)!
        let now = configuration.zone.startOfDay(to.advanced(by: 1))
        let estate = "E0"

        let scan = try await best(options.repetitions) {
            _ = try await database.read { db in
                try String.fetchAll(db, sql: "SELECT w.id FROM dwelling w JOIN building b ON b.id = w.building_id WHERE b.estate_id = ?", arguments: [estate])
            }
        }
        let perHousehold = try await best(min(options.repetitions, 2)) {
            _ = try await database.read { db in try perHouseholdPeriods(db, estate: estate).count }
        }
        var estateReport: EstateEnergyReport?
        let estateTime = try await best(options.repetitions) { estateReport = try await reports.estate(estate, from: from, to: to, now: now) }
        var landlordReport: LandlordEnergyReport?
        let landlordTime = try await best(options.repetitions) { landlordReport = try await reports.landlord(from: from, to: to, now: now) }

        let rows: [[String]] = [
            ["estate's dwelling ids (floor)", "\(options.dwellingsPerEstate)", format(scan), "1.0x"],
            ["one query per household (before)", "\(options.dwellingsPerEstate)", format(perHousehold), ratio(perHousehold, scan)],
            ["estate report", "\(estateReport?.households.count ?? 0)", format(estateTime), ratio(estateTime, scan)],
            ["landlord report", "\(landlordReport?.households.count ?? 0)", format(landlordTime), ratio(landlordTime, scan)],
        ]
        log(EnergyTables.render(["what", "households", "time", "against the floor"], rows))
        log("  targets: estate of \(options.dwellingsPerEstate) under 50 ms, landlord-wide under 500 ms")
    }

    static func registryCSV(_ options: Options) -> String {
        var csv = "estate;building;dwelling;device;kind;format;since\n"
        for estate in 0..<options.estates {
            let buildings = max(1, options.dwellingsPerEstate / options.dwellingsPerBuilding)
            for building in 0..<buildings {
                let buildingID = "E\(estate)-B\(building)"
                csv += "E\(estate);\(buildingID);;pv-\(buildingID);pv;canonical;2026-01-01\n"
                for dwelling in 0..<options.dwellingsPerBuilding {
                    let id = "\(buildingID)-D\(dwelling)"
                    csv += "E\(estate);\(buildingID);\(id);m-\(id);meter;canonical;2026-01-01\n"
                }
            }
        }
        return csv
    }

    /// The former estate report's household lookup, kept here as the baseline it is measured against.
    static func perHouseholdPeriods(_ db: Database, estate: String) throws -> [InstallationPeriod] {
        var periods: [InstallationPeriod] = []
        for dwelling in try String.fetchAll(db, sql: """
            SELECT DISTINCT i.dwelling_id FROM device_installation i JOIN device d ON d.id = i.device_id JOIN building b ON b.id = i.building_id
            WHERE b.estate_id = ? AND d.kind = 'meter' AND i.dwelling_id IS NOT NULL
            """, arguments: [estate]) {
            periods += try Installations.meterPeriods(db, dwelling: dwelling)
        }
        return periods
    }

    static func best(_ repetitions: Int, _ body: () async throws -> Void) async rethrows -> Duration {
        var best = Duration.seconds(1_000_000)
        for _ in 0..<max(1, repetitions) {
            let start = ContinuousClock.now
            try await body()
            best = min(best, ContinuousClock.now - start)
        }
        return best
    }

    static func format(_ duration: Duration) -> String {
        String(format: "%.1f ms", SavingsBenchmark.seconds(duration) * 1000)
    }

    static func ratio(_ value: Duration, _ floor: Duration) -> String {
        SavingsBenchmark.seconds(floor) > 0 ? String(format: "%.1fx", SavingsBenchmark.seconds(value) / SavingsBenchmark.seconds(floor)) : "-"
    }
}

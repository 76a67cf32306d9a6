import ArgumentParser
import CarShare
import EnergyCore
import EnergyHub
import Foundation
import GRDB
import HubApp
import HubCore
import Shared

/// `community-hub bench statements`: the whole month's export (JSON, CSV, HTML, then the PDF by
/// headless Chromium) for a SYNTHETIC registry, against the time to read the same households'
/// figures through the API's store in the same run; time per household and the process's peak
/// memory while exporting (sampled), the PDF step apart.
enum StatementsBenchmark {
    static func run(households: [Int], directory: URL, log: (String) -> Void) async throws {
        log("bench statements: SYNTHETIC registry and kept daily figures for October 2026 (40 dwellings a building), no readings; release build please")
        log("households  API figures s  export json+csv+html s  per household ms  ratio to API  PDF s  PDF per page ms  peak RSS MB (start)")
        for count in households {
            let work = directory.appendingPathComponent("bench-statements-\(count)")
            try? FileManager.default.removeItem(at: work)
            try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: work) }
            var settings = HubSettings()
            settings.database.path = work.appendingPathComponent("hub.sqlite").path
            settings.database.synchronous = .normal
            let database = try HubSchema.open(settings)
            defer { try? database.close() }
            let configuration = try settings.configuration()
            var options = ReportsBenchmark.Options(directory: work)
            options.estates = 1
            options.dwellingsPerEstate = count
            let csv = ReportsBenchmark.registryCSV(options)
            let staff = Identity(name: "bench-staff", role: .staff)
            let registry = SQLiteRegistryStore(database: database, configuration: configuration.energy)
            _ = try await registry.importRegistry(csv: Data(csv.utf8), by: staff)
            try await fill(database, zone: configuration.zone)
            let figures = EnergyReports(database: database, configuration: configuration.energy)
            let export = StatementsExport(registry: registry, figures: figures, carShare: SQLiteCarShareStore(database: database, settings: configuration.carshare),
                                          landlord: "Pas-de-Calais Habitat", association: { _ in "Association (synthétique)" })
            let now = Instant.parseRFC3339("2026-11-30T12:00:00Z")!
            // The floor: every household's month through the API's store, nothing else.
            let places = try await registry.dwellings(estate: nil, by: staff)
            let first = LocalDate(year: 2026, month: 10, day: 1)!, last = LocalDate(year: 2026, month: 10, day: 31)!
            let apiStart = ContinuousClock.now
            for place in places { _ = try await figures.dwelling(place.dwelling, from: first, to: last, now: now, by: staff) }
            let api = seconds(ContinuousClock.now - apiStart)

            let baseline = residentMegabytes()
            let sampler = PeakSampler()
            sampler.start()
            let exportStart = ContinuousClock.now
            _ = try await export.export(month: "2026-10", estate: nil, formats: [.json, .csv, .html], to: work.appendingPathComponent("out"),
                                        archive: SQLiteStatementArchive(database: database), by: staff, now: now) { _ in }
            let exported = seconds(ContinuousClock.now - exportStart)
            let peak = sampler.stop()
            // The PDF of the same HTML, printed by Chromium (its own process; the hub waits for it).
            let html = try FileManager.default.contentsOfDirectory(at: work.appendingPathComponent("out"), includingPropertiesForKeys: nil).first { $0.pathExtension == "html" }!
            let pdfStart = ContinuousClock.now
            try await PrintedPDF.render(htmlFile: html, to: work.appendingPathComponent("out/releves.pdf").path, timeout: .seconds(3600))
            let pdf = seconds(ContinuousClock.now - pdfStart)
            log(String(format: "%10d  %12.2f  %22.2f  %16.2f  %12.2fx  %5.1f  %15.1f  %d (%d)", places.count, api, exported, exported / Double(places.count) * 1000,
                       exported / api, pdf, pdf / Double(places.count) * 1000, peak, baseline))
        }
    }

    /// A month of kept daily figures for every dwelling and building: what the statements read.
    static func fill(_ database: HubDatabase, zone: LocalTimeZone) async throws {
        try await database.write { db in
            let dwellings = try Row.fetchAll(db, sql: "SELECT id, building_id FROM dwelling ORDER BY id")
            let insert = try db.cachedStatement(sql: """
                INSERT INTO dwelling_day (dwelling_id, day, building_id, consumption_wh, allocated_wh, savings_nano, measured, estimated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """)
            for (index, row) in dwellings.enumerated() {
                var day = LocalDate(year: 2026, month: 1, day: 1)!
                while day <= LocalDate(year: 2026, month: 10, day: 31)! {
                    let slots = Int(zone.startOfDay(day.advanced(by: 1)).milliseconds(since: zone.startOfDay(day)) / 1_800_000)
                    let consumption = Int64(6_000 + (index * 37 + day.day * 11) % 3_000)
                    let allocated = Int64(200 + (index * 13 + day.day * 7) % 900)
                    try insert.execute(arguments: [row["id"] as String, day.description, row["building_id"] as String, consumption, allocated,
                                                   allocated * 195_200, slots, 0])
                    day = day.advanced(by: 1)
                }
            }
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func residentMegabytes() -> Int { IngestBenchRun.status(pid: nil, "VmRSS") / 1024 }

    /// Samples the process's resident memory every 20 ms on its own thread.
    final class PeakSampler: @unchecked Sendable {
        private let lock = NSLock()
        private var running = false
        private var peak = 0
        private var thread: Thread?

        func start() {
            lock.withLock { running = true; peak = residentMegabytes() }
            let thread = Thread { [self] in
                while lock.withLock({ running }) {
                    let now = residentMegabytes()
                    lock.withLock { peak = max(peak, now) }
                    Thread.sleep(forTimeInterval: 0.02)
                }
            }
            self.thread = thread
            thread.start()
        }

        func stop() -> Int {
            lock.withLock { running = false; peak = max(peak, residentMegabytes()) }
            return lock.withLock { peak }
        }
    }
}

extension BenchCommand {
    struct Statements: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The month's statements export (all formats) for 126 and 10,000 synthetic households, against reading the same figures through the API's store.")
        @Option(help: "Household counts, comma separated.") var households = "126,10000"
        @Option(help: "Where the benchmark files are written (deleted afterwards).") var directory = FileManager.default.temporaryDirectory.path

        func run() async throws {
            try await reportingErrors {
                let counts = try households.split(separator: ",").map { text -> Int in
                    guard let count = Int(text), (40...200_000).contains(count) else { throw HubError.badRequest(field: "households", "\(text) is not a count from 40 to 200000") }
                    return count
                }
                try await StatementsBenchmark.run(households: counts, directory: URL(fileURLWithPath: directory)) { print($0) }
            }
        }
    }
}

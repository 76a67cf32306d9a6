import ArgumentParser
import CarShare
import CarShareCore
import EnergyCore
import EnergyHub
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GRDB
import Hummingbird
import Logging
import Prometheus
import ServiceLifecycle
import HubCore
import Shared
import HubApp

/// Bookings and trip logs per second through HTTP against a real server on one SQLite file, and
/// the balance report's time as the ledger grows, with ratios to the smallest size.
struct CarShareBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "carshare", abstract: "Bookings/s and trip logs/s over HTTP, and the balance report at growing ledger sizes.")

    @Option(help: "Bookings to create.") var bookings = 2000
    @Option(help: "Trips to log.") var trips = 1000
    @Option(help: "Requests in flight at once.") var concurrency = 8
    @Option(help: "Ledger line counts for the balance report, comma separated.") var lines = "10000,100000,1000000"
    @Option(help: "full (the default setting: every commit synced) or normal.") var synchronous = "full"
    @Option(help: "Keep the benchmark's files in this directory (default: a temporary one, removed after).") var directory: String?

    func run() async throws {
        try await reportingErrors {
            guard let sync = HubDatabase.Synchronous(rawValue: synchronous) else { throw HubError.badRequest(field: "synchronous", "full or normal") }
            guard bookings > 0, trips > 0, (1...256).contains(concurrency) else { throw HubError.badRequest(field: "concurrency", "counts must be positive, concurrency 1 to 256") }
            let sizes = try lines.split(separator: ",").map { text -> Int in
                guard let size = Int(text), size >= 2 else { throw HubError.badRequest(field: "lines", "\(text) is not a line count") }
                return size
            }.sorted()
            let root = directory.map { URL(fileURLWithPath: $0) } ?? FileManager.default.temporaryDirectory.appendingPathComponent("carshare-bench-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            defer { if directory == nil { try? FileManager.default.removeItem(at: root) } }
            print("community-hub bench carshare: \(bookings) bookings, \(trips) trips, concurrency \(concurrency), synchronous=\(sync.rawValue)")
            try await http(root: root, sync: sync)
            try await balances(root: root, sizes: sizes)
        }
    }

    func http(root: URL, sync: HubDatabase.Synchronous) async throws {
        var settings = HubSettings()
        settings.database.path = root.appendingPathComponent("http.sqlite").path
        settings.database.synchronous = sync
        settings.http.port = 0
        settings.auth.bcryptCost = 4
        let database = try HubSchema.open(settings)
        let users = SQLiteUserStore(database: database, bcryptCost: 4)
        let now = Instant.now()
        try await users.add(name: "bench-staff", role: .staff, dwelling: nil, estate: nil, password: "bench-password", by: .commandLine, at: now)
        let token = try await users.createToken(for: "bench-staff", label: "bench", expiresAt: nil, by: .commandLine, at: now)
        let store = SQLiteCarShareStore(database: database, settings: settings.carshare)
        let staff = Identity(name: "bench-staff", role: .staff)
        let cars = 10
        let members = 100
        // Last year: trips are logged after the fact, and memberships of that year are plain income.
        let year = store.zone.localDate(of: now).year - 1
        for index in 1...cars {
            _ = try await store.addVehicle(NewVehicle(name: "Voiture \(index)", plate: "BENCH-\(index)", batteryCapacityWh: WattHours(50_000)), by: staff)
        }
        let driver = try await store.addDriver(NewDriver(name: "Bénévole", licenceCheckedOn: LocalDate(year: year, month: 1, day: 1)!,
                                                         trainedOn: LocalDate(year: year, month: 1, day: 1)!), by: staff)
        for index in 1...members {
            let member = try await store.addMember(NewMember(name: "Membre \(index)"), by: staff, at: now)
            _ = try await store.buyMembership(member: member.id, NewMembership(start: LocalDate(year: year, month: 1, day: 1)!), by: staff, at: now)
        }
        let dependencies = HubDependencies(settings: settings, database: database, users: users, readings: SQLiteReadingStore(database: database),
                                           metrics: PrometheusCollectorRegistry(), brokerConnected: nil)
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        let app = Application(router: buildRouter(dependencies), configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "bench"),
                              onServerRunning: { channel in portContinuation.yield(channel.localAddress?.port ?? 0) }, logger: logger)
        let services = ServiceGroup(configuration: .init(services: [app], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await services.run() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw HubError.configuration("the server did not start") }
            let client = BenchClient(base: "http://127.0.0.1:\(port)/api/v1/carshare", token: token, concurrency: concurrency)
            let base = store.zone.startOfDay(LocalDate(year: year, month: 2, day: 1)!)
            let bookingCount = bookings
            let bookingRun = try await client.run(count: bookingCount, path: "bookings") { index in
                let start = base.adding(seconds: Int64(index / cars) * 7200)
                return NewBooking(vehicle: Int64(index % cars + 1), rider: Int64(index % members + 1), start: start, end: start.adding(seconds: 3600),
                                  purpose: "Courses", driver: nil)
            }
            print(bookingRun.line(label: "bookings"))
            let tripBase = store.zone.startOfDay(LocalDate(year: year, month: 6, day: 1)!)
            let tripRun = try await client.run(count: trips, path: "trips") { index in
                let slot = Int64(index / cars)
                let start = tripBase.adding(seconds: slot * 7200)
                return NewTrip(idempotencyKey: UUID().uuidString, vehicle: Int64(index % cars + 1), driver: driver.id, unbookedReason: "banc d'essai",
                               riders: [Int64(index % members + 1)], start: start, end: start.adding(seconds: 3600),
                               startOdometerKm: 1000 + slot * 50, endOdometerKm: 1000 + slot * 50 + 20, batteryStartPct: 90, batteryEndPct: 80)
            }
            print(tripRun.line(label: "trip logs"))
            print(String(format: "  ratio trip logs/s to bookings/s: %.2f", tripRun.perSecond / bookingRun.perSecond))
            await services.triggerGracefulShutdown()
            try await group.waitForAll()
        }
    }

    /// Balance report time at growing ledger sizes; lines are generated in bulk in SQLite.
    func balances(root: URL, sizes: [Int]) async throws {
        let database = try HubDatabase.open(path: root.appendingPathComponent("ledger.sqlite").path, schemas: HubSchema.all, synchronous: .normal)
        let store = SQLiteCarShareStore(database: database)
        let staff = Identity(name: "bench-staff", role: .staff)
        for index in 1...100 { _ = try await store.addMember(NewMember(name: "Membre \(index)"), by: staff, at: .now()) }
        print("balance report (GET /carshare/reports/balances), median of 5 runs:")
        var entries = 0
        var baseline: Double?
        for size in sizes {
            let wanted = size / 2
            let first = entries + 1
            try await database.write { db in
                // Two lines per entry, half of them on members' 411, the others on the bank.
                try db.execute(sql: """
                    WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?)
                    INSERT INTO carshare_entry (number, date, kind, label, posted_at, posted_by, previous_hash, hash)
                    SELECT i, printf('2026-%02d-%02d', 1 + i % 12, 1 + i % 28), 'manual', 'bench', 0, 'bench', '', '' FROM n;
                    """, arguments: [first, wanted])
                try db.execute(sql: """
                    WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?)
                    INSERT INTO carshare_entry_line (entry_number, line, account, member_id, amount_cents)
                    SELECT i, 1, CASE WHEN i % 2 = 0 THEN '411' ELSE '512' END, CASE WHEN i % 2 = 0 THEN 1 + (i / 2) % 100 END, 200 FROM n
                    UNION ALL
                    SELECT i, 2, CASE WHEN i % 3 = 0 THEN '756' ELSE '706' END, NULL, -200 FROM n;
                    """, arguments: [first, wanted])
            }
            entries = wanted
            var times: [Double] = []
            var report: BalancesReport?
            for _ in 0..<5 {
                let clock = ContinuousClock.now
                report = try await store.balances(by: staff)
                let elapsed = ContinuousClock.now - clock
                times.append(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
            }
            let median = times.sorted()[2]
            let ratio = baseline.map { median / $0 } ?? 1
            if baseline == nil { baseline = median }
            print(String(format: "  %9d lines: %9.1f ms   x%.1f the time for x%.0f the lines   (%d accounts, %d members)",
                         report?.lines ?? 0, median, ratio, Double(size) / Double(sizes[0]), report?.accounts.count ?? 0, report?.members.count ?? 0))
        }
    }
}

/// A small HTTP client for the benchmark: `concurrency` requests in flight, statuses counted.
struct BenchClient: Sendable {
    let base: String
    let token: String
    let concurrency: Int

    struct Run {
        var count: Int
        var seconds: Double
        var statuses: [Int: Int]
        var latencies: [Double]
        var perSecond: Double { Double(count) / seconds }

        func line(label: String) -> String {
            let sorted = latencies.sorted()
            let p50 = sorted.isEmpty ? 0 : sorted[sorted.count / 2]
            let p99 = sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, sorted.count * 99 / 100)]
            let codes = statuses.keys.sorted().map { "\($0)×\(statuses[$0]!)" }.joined(separator: " ")
            return String(format: "  %@: %d in %.2f s = %.0f/s   p50 %.1f ms, p99 %.1f ms   statuses: %@", label, count, seconds, perSecond, p50, p99, codes)
        }
    }

    func run<Body: Encodable & Sendable>(count: Int, path: String, body: @escaping @Sendable (Int) -> Body) async throws -> Run {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpMaximumConnectionsPerHost = concurrency
        let session = URLSession(configuration: configuration)
        let url = URL(string: "\(base)/\(path)")!
        let start = ContinuousClock.now
        let results = try await withThrowingTaskGroup(of: [(Int, Double)].self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    var done: [(Int, Double)] = []
                    var index = worker
                    while index < count {
                        var request = URLRequest(url: url)
                        request.httpMethod = "POST"
                        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
                        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
                        request.httpBody = try HubJSON.encoder.encode(body(index))
                        let sent = ContinuousClock.now
                        let (_, response) = try await session.data(for: request)
                        let elapsed = ContinuousClock.now - sent
                        done.append(((response as? HTTPURLResponse)?.statusCode ?? 0,
                                     Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15))
                        index += concurrency
                    }
                    return done
                }
            }
            var all: [(Int, Double)] = []
            for try await part in group { all += part }
            return all
        }
        let elapsed = ContinuousClock.now - start
        var statuses: [Int: Int] = [:]
        for (status, _) in results { statuses[status, default: 0] += 1 }
        return Run(count: count, seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
                   statuses: statuses, latencies: results.map(\.1))
    }
}

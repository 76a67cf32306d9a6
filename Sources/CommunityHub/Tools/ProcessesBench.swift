import ArgumentParser
import EnergyCore
import EnergyHub
import Foundation
import HubApp
import HubCore
import Logging
import PostgresNIO
import Shared

#if canImport(Glibc)
import Glibc
#endif

/// The MQTT ingest rate of 1, 2, 3… `community-hub serve` processes on one PostgreSQL database,
/// sharing the meters through a shared subscription, next to the broker's rate to a subscriber
/// that stores nothing, measured alternately in the same run; with each process's memory.
struct ProcessesBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "processes",
        abstract: "MQTT ingest rate of several serve processes on one PostgreSQL database next to the broker's rate to a null subscriber, with their memory.")

    @Option(name: .customLong("database-url"),
            help: "A PostgreSQL server where the benchmark creates a database of its own and drops it after: postgres://USER[:PASSWORD]@HOST:PORT/DATABASE.")
    var databaseURL: String
    @Option(help: "Processes of each hub measurement, in order (comma separated).") var processes = "1,2,3"
    @Option(help: "Messages per timed measurement (each on fresh readings).") var messages = 200_000
    @Option(help: "Devices publishing them (canonical meters, messages spread round-robin).") var devices = 2000
    @Option(help: "Rounds of every measurement; the median is reported when more than one.") var rounds = 1
    @Option(help: "The community-hub executable the hub processes run (default: this one).") var executable: String?
    @Option(help: "Keep the benchmark's files (the processes' logs) in this directory (default: a temporary one, removed after).") var directory: String?

    func run() async throws {
        try await reportingErrors {
            let counts = try ProcessesBenchRun.counts(processes)
            guard messages > 0 else { throw HubError.badRequest(field: "messages", "--messages must be positive") }
            guard (1...100_000).contains(devices) else { throw HubError.badRequest(field: "devices", "--devices must be between 1 and 100000") }
            guard (1...20).contains(rounds) else { throw HubError.badRequest(field: "rounds", "--rounds must be between 1 and 20") }
            guard let executable = executable ?? Bundle.main.executablePath else { throw IngestBenchRun.failure("cannot tell this program's path: give --executable") }
            let root = directory.map { URL(fileURLWithPath: $0) }
                ?? FileManager.default.temporaryDirectory.appendingPathComponent("processes-bench-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            defer { if directory == nil { try? FileManager.default.removeItem(at: root) } }
            let bench = try ProcessesBenchRun(root: root, databaseURL: databaseURL, executable: executable, processes: counts, messages: messages,
                                              devices: devices, rounds: rounds)
            defer { bench.mqtt.broker.stop() }
            let rows = try await bench.run()
            if let failed = rows.first(where: { $0.check != "ok" }) {
                throw HubError(.unavailable, code: "bench_mismatch", message: "\(failed.receiver): \(failed.check)")
            }
        }
    }
}

/// One line of the benchmark's table.
struct ProcessesBenchRow: Sendable {
    var round: Int
    var receiver: String
    /// Hub processes (0 for a null subscriber).
    var processes: Int
    var messages: Int
    var seconds: Double
    /// This rate over the null subscriber's on the shared filter in the same round (nil for the null subscribers).
    var ratio: Double?
    /// Cores used by the broker, and by the hub processes together, during the measurement.
    var brokerCores: Double
    var hubCores: Double?
    /// Cores used by the PostgreSQL server's processes (nil when it is not on this machine), and by
    /// every process of the machine (others' too: a busy machine shows here).
    var postgresCores: Double? = nil
    var machineCores: Double = 0
    /// VmRSS and VmHWM of each hub process at the end of the measurement, in kB.
    var memory: [(rss: Int, peak: Int)] = []
    var check: String

    var rate: Double { Double(messages) / seconds }

    static let header = "round  receiver                       messages   seconds      msg/s  ÷null  broker  hubs    pg  machine  RSS/peak MiB per process      check"

    var text: String {
        let memoryText = memory.isEmpty ? "-" : memory.map { String(format: "%.0f/%.0f", Double($0.rss) / 1024, Double($0.peak) / 1024) }.joined(separator: ", ")
        return [pad("\(round)", 6, left: true), pad(receiver, 28, left: true), String(format: "%9d %9.2f %10.0f", messages, seconds, rate),
                pad(ratio.map { String(format: "%.2f", $0) } ?? "-", 6), pad(String(format: "%.2f", brokerCores), 7),
                pad(hubCores.map { String(format: "%.2f", $0) } ?? "-", 5), pad(postgresCores.map { String(format: "%.2f", $0) } ?? "-", 5),
                pad(String(format: "%.2f", machineCores), 8), " " + pad(memoryText, 28, left: true), check].joined(separator: " ")
    }
}

/// One run of the several-processes benchmark: its broker, its database on the given server, the
/// hub processes it starts and stops, and its figures.
final class ProcessesBenchRun: @unchecked Sendable {
    let root: URL
    let databaseURL: String
    let server: PostgresLocation
    let database: String
    let executable: String
    let processes: [Int]
    let messages: Int
    let devices: Int
    let rounds: Int
    let mqtt: BenchBroker
    let traffic: BenchTraffic
    let logger: Logger
    /// The hubs' filters (`$share/hubs/...`), and the same without the share (the plain null subscriber's).
    let shared: [String]
    let plain: [String]
    static let group = "hubs"
    /// The PostgreSQL server's main process when it runs on this machine (its CPU is counted).
    private var postmaster: Int32?

    static func counts(_ text: String) throws -> [Int] {
        let counts = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !counts.isEmpty, counts.allSatisfy({ $0.map { (1...16).contains($0) } ?? false }) else {
            throw HubError.badRequest(field: "processes", "--processes must be counts between 1 and 16 separated by commas, like 1,2,3")
        }
        return counts.compactMap { $0 }
    }

    init(root: URL, databaseURL: String, executable: String, processes: [Int], messages: Int, devices: Int, rounds: Int) throws {
        self.root = root
        self.databaseURL = databaseURL
        server = try PostgresLocation(url: databaseURL)
        database = "bench_processes_\(UUID().uuidString.prefix(8).lowercased())"
        self.executable = executable
        self.processes = processes
        self.messages = messages
        self.devices = devices
        self.rounds = rounds
        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        self.logger = logger
        let topics = IngestSettings().topics
        plain = DeviceFormat.allCases.map { topics.filter(for: $0) }
        shared = plain.map { "$share/\(Self.group)/\($0)" }
        // Every hub measurement on readings of its own: later minutes of the traffic.
        traffic = try BenchTraffic(devices: devices, total: rounds * processes.count * messages, now: .now())
        mqtt = try BenchBroker(root: root, logger: logger)
    }

    /// The hubs' URL: the one given, on the benchmark's own database.
    var hubURL: String {
        guard var components = URLComponents(string: databaseURL) else { return databaseURL }
        components.path = "/" + database
        return components.string ?? databaseURL
    }

    func run() async throws -> [ProcessesBenchRow] {
        try mqtt.broker.start()
        try await mqtt.startPublisher()
        defer { mqtt.stopPublisher() }
        try await admin("CREATE DATABASE \"\(database)\"")
        let rows: [ProcessesBenchRow]
        do {
            rows = try await HubPostgres(server.with(database: database), maximumConnections: 2, logger: logger).withRunning { db in try await self.measure(db) }
        } catch {
            try? await admin("DROP DATABASE IF EXISTS \"\(database)\" WITH (FORCE)")
            throw error
        }
        try await admin("DROP DATABASE \"\(database)\" WITH (FORCE)")
        return rows
    }

    private func admin(_ sql: String) async throws {
        try await HubPostgres(server, maximumConnections: 1, logger: logger).withRunning { admin in
            _ = try await admin.client.query(PostgresQuery(unsafeSQL: sql), logger: admin.logger)
        }
    }

    private func measure(_ db: HubPostgres) async throws -> [ProcessesBenchRow] {
        postmaster = HostCPU.postmaster(backend: Int32(try await count(db, "SELECT pg_backend_pid()")))
        try await db.migrate(HubStores.postgresSchema)
        let registry = PostgresRegistryStore(database: db, configuration: try HubSettings().energy.validated())
        _ = try await registry.importRegistry(csv: Data(traffic.registryCSV.utf8), by: .commandLine)
        let config = root.appendingPathComponent("hub.json")
        let topics = IngestSettings().topics
        let filters = DeviceFormat.allCases.map { "\"\($0.rawValue)\": \"$share/\(Self.group)/\(topics.filter(for: $0))\"" }.joined(separator: ", ")
        try Data("{\"ingest\": {\"topics\": {\(filters)}}, \"database\": {\"startupCheckSeconds\": 0}}\n".utf8).write(to: config)

        let load = IngestBenchRun.loadAverage()
        let sample = traffic.message(0)
        print("community-hub bench processes: \(messages) messages per measurement, \(devices) devices, QoS 1, "
              + "processes \(processes.map(String.init).joined(separator: ",")), \(rounds) round\(rounds == 1 ? "" : "s")")
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) CPUs, load average \(load) before starting; "
              + "\(IngestBenchRun.brokerVersion(mqtt.broker.executable)) on 127.0.0.1:\(mqtt.broker.port) (persistence off, no queue limit); "
              + "PostgreSQL \(server.host):\(server.port), database \(database) (created, dropped after)")
        print("hubs: `\(executable) serve --database-url … --mqtt-client-id bench-hub-K`, default settings, ingest topics \(shared.first ?? "")…; "
              + "every measurement on fresh readings; done when `SELECT count(*) FROM reading` (asked every 100 ms) reaches the target")
        print("traffic: \(sample.topic) \(String(decoding: sample.payload, as: UTF8.self)) (\(sample.payload.count) bytes), one publisher at QoS 1")
        print("÷null: rate over the null subscriber's on the same shared filter just before; broker, hubs, pg (the PostgreSQL server's processes), "
              + "machine (every process, others' included): cores used (CPU seconds per second); "
              + "RSS/peak: VmRSS and VmHWM of each process once its messages are committed")
        print("")
        print(ProcessesBenchRow.header)

        var rows: [ProcessesBenchRow] = []
        var stored = 0
        for round in 1...rounds {
            for (index, count) in processes.enumerated() {
                let first = ((round - 1) * processes.count + index) * messages
                let batch = traffic.messages(first..<(first + messages))
                if index == 0 {
                    let before = HostCPU.take(postmaster: postmaster)
                    let figures = try await mqtt.nullRound(subscriptions: plain, label: "round \(round) null subscriber", batch: batch)
                    rows.append(nullRow(round, "null subscriber (plain)", figures, HostCPU.take(postmaster: postmaster).cores(since: before)))
                    print(rows[rows.count - 1].text)
                }
                let before = HostCPU.take(postmaster: postmaster)
                let figures = try await mqtt.nullRound(subscriptions: shared, label: "round \(round) null subscriber (shared)", batch: batch)
                let baseline = nullRow(round, "null subscriber ($share)", figures, HostCPU.take(postmaster: postmaster).cores(since: before))
                rows.append(baseline)
                print(baseline.text)
                var hubs = try await hubRound(count, round: round, batch: batch, db: db, storedBefore: stored)
                hubs.ratio = hubs.rate / baseline.rate
                stored += messages
                rows.append(hubs)
                print(hubs.text)
            }
        }
        if rounds > 1 {
            print("")
            print("medians of \(rounds) rounds:")
            for receiver in rows.filter({ $0.round == 1 }).map(\.receiver) {
                let mine = rows.filter { $0.receiver == receiver }
                let ratios = mine.compactMap(\.ratio)
                print(String(format: "  %@: %.0f msg/s%@", receiver, IngestBenchRun.median(mine.map(\.rate)),
                             ratios.isEmpty ? "" : String(format: ", ÷null %.2f", IngestBenchRun.median(ratios))))
            }
        }
        let total = try await count(db, "SELECT count(*) FROM reading")
        print("database: \(total) readings stored (expected \(stored))\(total == stored ? "" : " MISMATCH"); load average at the end "
              + IngestBenchRun.loadAverage())
        return rows
    }

    /// `host`: the cores of PostgreSQL and of the machine over the whole call (its subscription included).
    private func nullRow(_ round: Int, _ receiver: String, _ figures: BenchFigures, _ host: (postgres: Double?, machine: Double)) -> ProcessesBenchRow {
        ProcessesBenchRow(round: round, receiver: receiver, processes: 0, messages: figures.messages, seconds: figures.seconds, ratio: nil,
                          brokerCores: figures.cpu.wall > 0 ? figures.cpu.broker / figures.cpu.wall : 0, hubCores: nil,
                          postgresCores: host.postgres, machineCores: host.machine, check: figures.check)
    }

    /// `count` hub processes started on the database, the batch published, timed until all of it
    /// is committed; then their memory, and their stop by SIGTERM.
    private func hubRound(_ count: Int, round: Int, batch: [BenchMessage], db: HubPostgres, storedBefore: Int) async throws -> ProcessesBenchRow {
        let ids = (1...count).map { "bench-hub-\($0)" }
        // Subscribed before the processes connect, so none of the batch can go to no one.
        for id in ids { try await mqtt.prepareSession(id, subscriptions: shared) }
        var children: [BenchHubProcess] = []
        defer { for child in children where child.process.isRunning { kill(child.process.processIdentifier, SIGKILL) } }
        for id in ids {
            let arguments = ["serve", "--config", root.appendingPathComponent("hub.json").path, "--database-url", hubURL,
                             "--mqtt-port", "\(mqtt.broker.port)", "--http-port", "\(try BrokerProcess.freeLoopbackPort())", "--mqtt-client-id", id]
            children.append(try BenchHubProcess(executable: executable, arguments: arguments, log: root.appendingPathComponent("\(id)-\(count)-\(round).log")))
        }
        for child in children {
            try await mqtt.waitFor("\(child.log.lastPathComponent) connected", timeout: .seconds(60), every: .milliseconds(50)) {
                child.logText.contains("connected to the MQTT broker") || !child.process.isRunning
            }
            guard child.process.isRunning else { throw IngestBenchRun.failure("a hub process ended at its start: \(child.logText.suffix(2000))") }
        }
        let label = "round \(round), \(count) process\(count == 1 ? "" : "es")"
        let pids = children.map(\.process.processIdentifier)
        let brokerBefore = CPUSnapshot.take(broker: mqtt.broker.processIdentifier)
        let hostBefore = HostCPU.take(postmaster: postmaster)
        let hubsBefore = pids.map { CPUSnapshot.stat("/proc/\($0)/stat")?.1 ?? 0 }
        let publishing = try mqtt.publish(batch.count) { batch[$0] }
        let target = storedBefore + batch.count
        var stored = storedBefore
        var end = ContinuousClock.now
        try await mqtt.waitFor(label, timeout: BenchBroker.timeout(batch.count), every: .milliseconds(100), progress: { "\(stored - storedBefore) stored" }) {
            stored = try await self.count(db, "SELECT count(*) FROM reading")
            guard stored < target else {
                end = .now
                return true
            }
            if let ended = children.first(where: { !$0.process.isRunning }) {
                throw IngestBenchRun.failure("\(ended.log.lastPathComponent) ended during the measurement: \(ended.logText.suffix(2000))")
            }
            return false
        }
        let brokerAfter = CPUSnapshot.take(broker: mqtt.broker.processIdentifier)
        let host = HostCPU.take(postmaster: postmaster).cores(since: hostBefore)
        let hubsAfter = pids.map { CPUSnapshot.stat("/proc/\($0)/stat")?.1 ?? 0 }
        let memory = pids.map { (rss: IngestBenchRun.status(pid: $0, "VmRSS"), peak: IngestBenchRun.status(pid: $0, "VmHWM")) }
        try await publishing.finish()
        guard let start = publishing.startedAt else { throw IngestBenchRun.failure("a phase ended without its timing") }
        for child in children { kill(child.process.processIdentifier, SIGTERM) }
        var statuses: [Int32] = []
        for child in children {
            try await mqtt.waitFor("\(child.log.lastPathComponent) to stop", timeout: .seconds(60), every: .milliseconds(20)) { !child.process.isRunning }
            statuses.append(child.process.terminationStatus)
        }
        for id in ids { try await mqtt.clearSession(id) }
        let final = try await self.count(db, "SELECT count(*) FROM reading")
        let quarantined = try await self.count(db, "SELECT count(*) FROM quarantine")
        var problems: [String] = []
        if final != target { problems.append("stored \(final - storedBefore) of \(batch.count)") }
        if quarantined > 0 { problems.append("\(quarantined) quarantined") }
        if statuses.contains(where: { $0 != 0 }) { problems.append("exit statuses \(statuses)") }
        let wall = IngestBenchRun.seconds(brokerAfter.taken - brokerBefore.taken)
        let hubSeconds = zip(hubsAfter, hubsBefore).map { $0 - $1 }.reduce(0, +)
        return ProcessesBenchRow(round: round, receiver: "\(count) hub process\(count == 1 ? "" : "es") (committed)", processes: count,
                                 messages: batch.count, seconds: IngestBenchRun.seconds(end - start), ratio: nil,
                                 brokerCores: wall > 0 ? (brokerAfter.broker - brokerBefore.broker) / wall : 0, hubCores: wall > 0 ? hubSeconds / wall : 0,
                                 postgresCores: host.postgres, machineCores: host.machine,
                                 memory: memory, check: problems.isEmpty ? "ok" : problems.joined(separator: ", "))
    }

    private func count(_ db: HubPostgres, _ sql: String) async throws -> Int {
        Int(try await db.read { try await $0.scalar(PostgresQuery(unsafeSQL: sql), as: Int64.self, logger: db.logger) } ?? -1)
    }
}

/// A `community-hub serve` child of the benchmark; its output goes to its log file.
final class BenchHubProcess: @unchecked Sendable {
    let process = Process()
    let log: URL

    init(executable: String, arguments: [String], log: URL) throws {
        self.log = log
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["LOG_LEVEL"] = "info"
        process.environment = environment
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        // An empty signal mask, so the child honours SIGTERM (Swift's threads block it).
        try BrokerProcess.runWithDefaultSignalMask(process)
    }

    var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
}

/// CPU seconds used so far by a PostgreSQL server's processes (its main process and its children)
/// and by the whole machine (/proc/stat: all but idle and iowait).
struct HostCPU {
    var taken: ContinuousClock.Instant
    var postgres: Double?
    var machine: Double

    /// The main process of the server that runs `backend`, when that is a PostgreSQL process of this machine.
    static func postmaster(backend: Int32) -> Int32? {
        guard let comm = try? String(contentsOfFile: "/proc/\(backend)/comm", encoding: .utf8), comm.hasPrefix("postgres"),
              let parent = parent(of: backend) else { return nil }
        return parent
    }

    /// The parent of a process (field 4 of /proc/PID/stat).
    static func parent(of pid: Int32) -> Int32? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? Int32(fields[1]) : nil
    }

    static func take(postmaster: Int32?) -> HostCPU {
        var postgres: Double?
        if let postmaster {
            var seconds = CPUSnapshot.stat("/proc/\(postmaster)/stat")?.1 ?? 0
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
                guard let pid = Int32(entry), parent(of: pid) == postmaster else { continue }
                seconds += CPUSnapshot.stat("/proc/\(pid)/stat")?.1 ?? 0
            }
            postgres = seconds
        }
        var machine = 0.0
        if let line = (try? String(contentsOfFile: "/proc/stat", encoding: .utf8))?.split(separator: "\n").first, line.hasPrefix("cpu ") {
            // user nice system idle iowait irq softirq steal: all but idle and iowait.
            let ticks = line.split(separator: " ").dropFirst().prefix(8).map { Double($0) ?? 0 }
            if ticks.count == 8 { machine = (ticks.reduce(0, +) - ticks[3] - ticks[4]) / CPUSnapshot.ticksPerSecond }
        }
        return HostCPU(taken: .now, postgres: postgres, machine: machine)
    }

    /// Cores used since `earlier` (CPU seconds per second).
    func cores(since earlier: HostCPU) -> (postgres: Double?, machine: Double) {
        let wall = IngestBenchRun.seconds(taken - earlier.taken)
        guard wall > 0 else { return (nil, 0) }
        let postgres = self.postgres.flatMap { now in earlier.postgres.map { (now - $0) / wall } }
        return (postgres, (machine - earlier.machine) / wall)
    }
}

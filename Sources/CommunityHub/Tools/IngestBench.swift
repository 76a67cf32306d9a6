import ArgumentParser
import EnergyCore
import EnergyHub
import Foundation
import GRDB
import Logging
import Prometheus
import ServiceLifecycle
import HubCore
import Shared
import Synchronization

#if canImport(Glibc)
import Glibc
import HubApp
#endif

/// The hub's end-to-end MQTT ingest rate (publish → mosquitto → IngestService → committed in SQLite)
/// next to the broker's own rate to a subscriber that stores nothing, measured alternately in the
/// same run; then the drain of a backlog queued while the hub was stopped, with the hub's memory.
struct IngestBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "MQTT ingest rate of the hub next to the broker's rate to a null subscriber, and memory while draining a backlog.")

    @Option(help: "Messages per timed round.") var messages = 200_000
    @Option(help: "Devices publishing them (canonical meters, messages spread round-robin).") var devices = 2000
    @Option(help: "Messages queued in the broker while the hub is stopped, then drained (0 to skip).") var backlog = 1_000_000
    @Option(help: "Timed rounds of each (broker baseline and hub, alternately); the median is reported.") var rounds = 3
    @Option(help: "Backlogs drained by each (the null subscriber and the hub, alternately first); the median ratio is reported.") var drains = 3
    @Option(help: "full (the default setting: every commit synced) or normal.") var synchronous = "full"
    @Option(help: "Keep the benchmark's files in this directory (default: a temporary one, removed after).") var directory: String?
    @Option(name: .customLong("max-batch"), help: "ingest.maxBatch: the messages held in memory, acknowledged and not committed (the loss bound).")
    var maxBatch = IngestSettings().maxBatch
    @Option(name: .customLong("fold-rows"), help: "ingest.foldRows: readings in the journal that make the writer fold it.") var foldRows = IngestSettings().foldRows

    func run() async throws {
        try await reportingErrors {
            guard let sync = HubDatabase.Synchronous(rawValue: synchronous) else { throw HubError.badRequest(field: "synchronous", "--synchronous must be full or normal, not \(synchronous)") }
            guard messages > 0 else { throw HubError.badRequest(field: "messages", "--messages must be positive") }
            guard (1...100_000).contains(devices) else { throw HubError.badRequest(field: "devices", "--devices must be between 1 and 100000") }
            guard backlog >= 0 else { throw HubError.badRequest(field: "backlog", "--backlog must be 0 (skip) or positive") }
            guard (1...20).contains(rounds) else { throw HubError.badRequest(field: "rounds", "--rounds must be between 1 and 20") }
            guard (1...20).contains(drains) else { throw HubError.badRequest(field: "drains", "--drains must be between 1 and 20") }
            let root = directory.map { URL(fileURLWithPath: $0) }
                ?? FileManager.default.temporaryDirectory.appendingPathComponent("ingest-bench-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            defer { if directory == nil { try? FileManager.default.removeItem(at: root) } }
            var settings = IngestSettings()
            settings.maxBatch = maxBatch
            settings.foldRows = foldRows
            _ = try settings.validated()
            let bench = try IngestBenchRun(root: root, messages: messages, devices: devices, backlog: backlog, rounds: rounds, drains: drains, synchronous: sync, settings: settings)
            defer { bench.broker.stop() }
            try await bench.run()
        }
    }
}

/// One run of the ingest benchmark: its broker, database, traffic and figures.
final class IngestBenchRun: @unchecked Sendable {
    let root: URL
    let messages: Int
    let devices: Int
    let backlog: Int
    let rounds: Int
    let drains: Int
    let synchronous: HubDatabase.Synchronous
    let mqtt: BenchBroker
    var broker: BrokerProcess { mqtt.broker }
    let database: HubDatabase
    let settings: IngestSettings
    let traffic: BenchTraffic
    let logger: Logger
    let subscriptions: [String]
    static let hubClientId = "bench-hub"
    /// Readings the hub has stored so far (across rounds), to check the database.
    private var storedSoFar = 0

    init(root: URL, messages: Int, devices: Int, backlog: Int, rounds: Int, drains: Int = 1, synchronous: HubDatabase.Synchronous, settings: IngestSettings = IngestSettings()) throws {
        self.root = root
        self.settings = settings
        self.messages = messages
        self.devices = devices
        self.backlog = backlog
        self.rounds = rounds
        self.drains = drains
        self.synchronous = synchronous
        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        self.logger = logger
        let topics = IngestSettings().topics
        subscriptions = DeviceFormat.allCases.map { topics.filter(for: $0) }
        traffic = try BenchTraffic(devices: devices, total: rounds * messages + drains * backlog, now: .now())
        mqtt = try BenchBroker(root: root, logger: logger)
        database = try HubDatabase.open(path: root.appendingPathComponent("hub.sqlite").path, schemas: HubSchema.all, synchronous: synchronous)
        _ = try RegistryImporter(database: database).importCSV(Data(traffic.registryCSV.utf8))
    }

    func run() async throws {
        let load = IngestBenchRun.loadAverage()
        let cpus = ProcessInfo.processInfo.activeProcessorCount
        try broker.start()
        let brokerVersion = Self.brokerVersion(broker.executable)
        let sample = traffic.message(0)
        print("community-hub bench ingest: \(messages) messages per round × \(rounds) rounds each, \(devices) devices, QoS 1, backlog \(backlog)")
        print("machine: \(cpus) CPUs, load average \(load) before starting; \(brokerVersion) on 127.0.0.1:\(broker.port) "
              + "(persistence off, max_queued_messages \(broker.maxQueuedMessages) = unlimited, max_inflight_messages \(broker.maxInflightMessages))")
        print("hub: IngestService with default settings: maxBatch \(settings.maxBatch), linger \(settings.lingerMilliseconds) ms, "
              + "maxInMemoryBytes \(settings.maxInMemoryBytes / 1_048_576) MiB; journal folded every \(settings.foldRows) readings "
              + "or after \(settings.foldIdleMilliseconds) ms idle; SQLite WAL synchronous=\(synchronous.rawValue)")
        print("traffic: \(sample.topic) \(String(decoding: sample.payload, as: UTF8.self)) (\(sample.payload.count) bytes), "
              + "one reading a minute per device; publisher: one client, libmosquitto in-flight 1000, maxUnacknowledged 10000")
        print("CPU columns: seconds of CPU per second of wall time (1.00 = one core) of the broker process, of this process, "
              + "and of its threads: publisher (the publishing thread + its MQTT loop), subscriber MQTT loop, ingest writer")
        try await mqtt.startPublisher()
        defer { mqtt.stopPublisher() }

        print("")
        print("round  receiver                messages   seconds      msg/s   broker  process  publisher  sub-loop  writer   check")
        var brokerRates: [Double] = []
        var hubRates: [Double] = []
        var baselines: [BenchFigures] = []
        var hubs: [BenchFigures] = []
        for round in 0..<rounds {
            let range = (round * messages)..<((round + 1) * messages)
            let batch = traffic.messages(range)
            let baseline = try await mqtt.nullRound(subscriptions: subscriptions, label: "round \(round + 1) broker", batch: batch)
            print(baseline.row(round: "\(round + 1)", receiver: "broker→null subscriber"))
            brokerRates.append(baseline.rate)
            baselines.append(baseline)
            let hub = try await hubRound(label: "round \(round + 1) hub", batch: batch)
            print(hub.row(round: "\(round + 1)", receiver: "broker→hub (committed)"))
            hubRates.append(hub.rate)
            hubs.append(hub)
        }
        let brokerMedian = Self.median(brokerRates)
        let hubMedian = Self.median(hubRates)
        print(String(format: "median rate: broker→null subscriber %.0f msg/s, broker→hub %.0f msg/s; hub/broker = %.2f (target ≥ 0.90)",
                     brokerMedian, hubMedian, hubMedian / brokerMedian))
        print(String(format: "per round hub/broker: %@",
                     zip(hubRates, brokerRates).map { String(format: "%.2f", $0 / $1) }.joined(separator: ", ")))
        print(String(format: "WAL written per reading stored (SQLite's count of pages written by the hub's connection, 4,120 bytes a frame): %.0f bytes (median of the rounds)",
                     Self.median(hubs.map { Double($0.walBytes) / Double($0.messages) })))
        print("CPU shared by the broker and this process, in cores of \(cpus) (medians of the rounds):")
        print("  " + Self.cpuSummary(baselines, receiver: "broker→null subscriber"))
        print("  " + Self.cpuSummary(hubs, receiver: "broker→hub"))

        try await writerAlone()
        if backlog > 0 {
            try await backlogPhase()
        }
        let count = try await database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM reading") ?? 0 }
        print("database: \(count) readings stored (expected \(storedSoFar))\(count == storedSoFar ? "" : " MISMATCH"); "
              + "load average at the end \(IngestBenchRun.loadAverage())")
        if count != storedSoFar {
            throw HubError(.unavailable, code: "bench_mismatch", message: "the database holds \(count) readings, expected \(storedSoFar)")
        }
    }

    // MARK: Phases

    /// The real IngestService on the real database; done when all readings are committed.
    func hubRound(label: String, batch: [BenchMessage]) async throws -> BenchFigures {
        try await mqtt.prepareSession(Self.hubClientId, subscriptions: subscriptions)
        let hub = try await startHub()
        let walBefore = try await walBytesWritten()
        let before = CPUSnapshot.take(broker: broker.processIdentifier)
        let publishing = try mqtt.publish(batch.count) { batch[$0] }
        let target = storedSoFar + batch.count
        let base = storedSoFar
        var end = ContinuousClock.now
        try await mqtt.waitFor(label, timeout: BenchBroker.timeout(batch.count), progress: { "\(hub.service.totals.stored - base) stored, \(hub.service.pending) in memory" }) {
            let progress = hub.service.progress
            guard progress.totals.stored + base >= target, let last = progress.lastCommitAt else { return false }
            end = last
            return true
        }
        let after = CPUSnapshot.take(broker: broker.processIdentifier)
        let foldedAfter = try await waitForTheFold(hub, label: label)
        try await publishing.finish()
        guard let start = publishing.startedAt else { throw IngestBenchRun.failure("a phase ended without its timing") }
        let totals = hub.service.totals
        let batches = hub.batches()
        try await hub.stop()
        let walAfter = try await walBytesWritten()
        try await mqtt.clearSession(Self.hubClientId)
        storedSoFar += totals.stored
        let check = totals.stored == batch.count && totals.duplicates == 0 && totals.quarantinedTotal == 0
            ? "ok"
            : "stored \(totals.stored) dup \(totals.duplicates) quarantined \(totals.quarantinedTotal)"
        var figures = BenchFigures(messages: batch.count, seconds: Self.seconds(end - start), cpu: after.minus(before), publisherCPU: publishing.cpuSeconds,
                                   subscriberThread: "mqtt \(Self.hubClientId)", check: check)
        figures.batches = batches
        figures.walBytes = walAfter - walBefore
        figures.foldedAfter = foldedAfter
        return figures
    }

    /// Waits until the hub has folded its journal after the phase's last commit (a writer that
    /// puts its folds off during a burst folds once it is over), so the phase's folds and their
    /// WAL are its own, not the next phase's start. Returns the seconds it took.
    private func waitForTheFold(_ hub: RunningHub, label: String) async throws -> Double {
        let start = ContinuousClock.now
        // The journal's gauge is set just after the commit that counted the last reading stored.
        try await Task.sleep(for: .milliseconds(20))
        try await mqtt.waitFor("\(label): the journal folded", timeout: .seconds(300), progress: { "\(hub.journalReadings()) readings in the journal" }) {
            hub.journalReadings() == 0
        }
        return Self.seconds(ContinuousClock.now - start)
    }

    /// Bytes the hub's write connection has written to the WAL so far.
    private func walBytesWritten(_ database: HubDatabase? = nil) async throws -> Int {
        let database = database ?? self.database
        return try await onThread { try database.walBytesWrittenBlocking() }
    }

    /// The hub's writer without MQTT: the first round's messages through `IngestProcessor.process`
    /// in batches of `maxBatch` on a database of its own, on one thread, folding its journal as
    /// the service does: the ceiling of the ingest path on this machine, and its CPU cost per message.
    func writerAlone() async throws {
        let file = root.appendingPathComponent("writer.sqlite").path
        let database = try HubDatabase.open(path: file, schemas: HubSchema.all, synchronous: synchronous)
        _ = try RegistryImporter(database: database).importCSV(Data(traffic.registryCSV.utf8))
        let processor = try IngestProcessor(settings: settings, store: SQLiteReadingStore(database: database))
        try processor.loadState(at: .now())
        let receivedAt = Instant.now()
        let incoming = traffic.messages(0..<messages).map { IncomingMessage(topic: $0.topic, payload: $0.payload, receivedAt: receivedAt) }
        let limit = settings.maxBatch
        let walBefore = try await walBytesWritten(database)
        let result = try await onThread { () throws -> (Double, Double, BatchReport) in
            let cpuStart = PublishRun.threadCPUSeconds()
            let start = ContinuousClock.now
            var total = BatchReport()
            var index = 0
            while index < incoming.count {
                let end = min(incoming.count, index + limit)
                total.add(try processor.process(Array(incoming[index..<end])))
                index = end
                // Folded as the service folds, and what is left at the end: every reading's cost.
                if processor.unfoldedReadings >= self.settings.foldRows { _ = try processor.fold() }
            }
            _ = try processor.fold()
            return (Self.seconds(ContinuousClock.now - start), PublishRun.threadCPUSeconds() - cpuStart, total)
        }
        let (seconds, cpu, total) = result
        let walBytes = try await walBytesWritten(database) - walBefore
        print(String(format: "hub writer alone (IngestProcessor.process in batches of %d, no MQTT, one thread): %d messages in %.2f s = %.0f msg/s, "
                     + "%.1f µs CPU per message, %.0f bytes of WAL per reading%@", limit, messages, seconds, Double(messages) / seconds, cpu / Double(messages) * 1e6,
                     Double(walBytes) / Double(messages), total.stored == messages ? "" : " (stored \(total.stored)!)"))
    }

    /// Runs blocking work on a thread of its own (not the cooperative pool).
    private func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                nameThread("bench-writer")
                continuation.resume(with: Result { try work() })
            }
            thread.start()
        }
    }

    /// Drains `drains` backlogs, each queued for both sessions while both are offline, by the
    /// null subscriber and by the hub (the null subscriber first in odd drains, the hub in even
    /// ones: the broker holds the backlog twice while the first drains), then prints the median
    /// of the ratios.
    func backlogPhase() async throws {
        print("")
        print("backlog: \(backlog) messages published while the hub and the null subscriber are offline (both sessions subscribed), then drained by each; "
              + "\(drains) drains, the null subscriber first in odd ones, the hub in even ones")
        try await mqtt.prepareSession(Self.hubClientId, subscriptions: subscriptions)
        do {
            let subscriber = mqtt.nullSubscriber(subscriptions, ArrivalCounter(target: 1))
            try subscriber.start()
            try await mqtt.waitFor("the null subscriber to subscribe", timeout: .seconds(10)) { subscriber.isSubscribed }
            subscriber.stop()
        }
        var ratios: [Double] = []
        var ceilings: [Double] = []
        var budgets: [(atBest: Double, asMeasured: Double, spent: Double)] = []
        var withFolds: [Double] = []
        var growths: [Int] = []
        var stopped: [Int] = []
        for drain in 0..<drains {
            let first = rounds * messages + drain * backlog
            // Built one at a time while publishing, so the publisher holds no backlog in memory.
            let publishing = try mqtt.publish(backlog) { self.traffic.message(first + $0) }
            try await mqtt.waitFor("backlog published", timeout: BenchBroker.timeout(backlog), progress: { "\(publishing.published) published" }) { publishing.isDone }
            try await publishing.finish()
            guard let publishStart = publishing.startedAt, let publishEnd = publishing.endedAt else { throw IngestBenchRun.failure("a phase ended without its timing") }
            let brokerRSS = Self.status(pid: broker.processIdentifier, "VmRSS")
            print("")
            print(String(format: "drain %d: published in %.2f s (%.0f msg/s, acknowledged by the broker); broker RSS %@ with the backlog queued for 2 sessions",
                         drain + 1, Self.seconds(publishEnd - publishStart), Double(backlog) / Self.seconds(publishEnd - publishStart), Self.megabytes(brokerRSS)))
            let null: BenchFigures
            let hub: HubDrain
            if drain % 2 == 0 {
                null = try await nullDrain()
                hub = try await hubDrain()
            } else {
                hub = try await hubDrain()
                null = try await nullDrain()
            }
            let ratio = hub.figures.rate / null.rate
            ratios.append(ratio)
            withFolds.append(Double(backlog) / (hub.figures.seconds + hub.figures.foldedAfter) / null.rate)
            growths.append(hub.maxRSS - hub.rssBefore)
            stopped.append(hub.rssStopped - hub.rssBefore)
            print("drain  receiver                messages   seconds      msg/s   broker  process  publisher  sub-loop  writer   check")
            print(null.row(round: "\(drain + 1)", receiver: "broker→null subscriber"))
            print(hub.figures.row(round: "\(drain + 1)", receiver: "broker→hub (committed)"))
            print(String(format: "  drain hub/null subscriber = %.2f (each timed from its connection to its last message, the hub's including its start: registry and state load; "
                         + "the hub's end is its last commit)", ratio))
            print(String(format: "  with the journal's folds after the drain (%.2f s more): hub/null subscriber = %.2f", hub.figures.foldedAfter, withFolds.last!))
            print("  CPU a message during the drain: " + null.cpuPerMessage("null subscriber", ceiling: false) + "; "
                  + hub.figures.cpuPerMessage("hub", ceiling: true))
            // What the machine allows, measured in the same drains: the broker, the hub's MQTT
            // loop and its writer share two cores, so the hub cannot drain faster than two cores
            // at its CPU a message, while the null subscriber is held by one core (the broker's or
            // its own loop's, whichever is slower).
            let ceiling = 2e6 / hub.figures.cpuMicrosecondsPerMessage / null.rate
            ceilings.append(ceiling)
            print(String(format: "  two cores at the hub's CPU a message (%.1f µs, the broker's included) drain at most %.0f msg/s, %.2f of the null subscriber's rate, "
                         + "were they never idle (the hub used %.2f of them)",
                         hub.figures.cpuMicrosecondsPerMessage, 2e6 / hub.figures.cpuMicrosecondsPerMessage, ceiling,
                         hub.figures.cpuMicrosecondsPerMessage * hub.figures.rate / 1e6))
            // The target turned round: what the hub's own parts (its MQTT loop, its writer, the
            // rest) may cost a message for 0.80 of the null subscriber's rate. At best: two cores
            // never idle, and the broker serving the hub at what it cost serving the null
            // subscriber. As the drain went: the cores as busy as they were, the broker at what it
            // cost serving the hub.
            let nullParts = null.cpuParts, hubParts = hub.figures.cpuParts
            let busy = hub.figures.cpuMicrosecondsPerMessage * hub.figures.rate / 2e6
            let atBest = 2e6 / (0.8 * null.rate) - nullParts.broker
            let asMeasured = 2e6 * busy / (0.8 * null.rate) - hubParts.broker
            let hubOwn = hubParts.loop + hubParts.writer + hubParts.other
            budgets.append((atBest, asMeasured, hubOwn))
            print(String(format: "  for 0.80 of the null subscriber's rate the hub's own parts (MQTT loop, writer, the rest) may spend %.1f µs a message at best "
                         + "(two cores never idle, the broker at its %.1f µs serving the null subscriber), %.1f µs as the drain went (the cores %.0f%% busy, "
                         + "the broker at %.1f µs serving the hub); they spent %.1f (MQTT loop %.1f, the null subscriber's same loop %.1f)",
                         atBest, nullParts.broker, asMeasured, busy * 100, hubParts.broker, hubOwn, hubParts.loop, nullParts.loop))
            print(String(format: "  waits during the hub's drain: the MQTT loop for room %d times, %.3f s in all; the writer for a message %d times, %.3f s, and for its batch to fill %d times, %.3f s",
                         hub.waits.loopWaits, hub.waits.loopSeconds, hub.waits.writerWaits, hub.waits.writerSeconds, hub.waits.lingers, hub.waits.lingerSeconds))
            print(hub.memory)
        }
        print("")
        print(String(format: "drain hub/null subscriber: median %.2f of %d drains (target ≥ 0.80): %@; with the folds after each drain, median %.2f",
                     Self.median(ratios), drains, ratios.map { String(format: "%.2f", $0) }.joined(separator: ", "), Self.median(withFolds)))
        print(String(format: "the most two cores allow at the hub's CPU a message, against the null subscriber: median %.2f (%@)",
                     Self.median(ceilings), ceilings.map { String(format: "%.2f", $0) }.joined(separator: ", ")))
        let figures = { (values: [Double]) in
            String(format: "median %.1f µs (", Self.median(values)) + values.map { String(format: "%.1f", $0) }.joined(separator: ", ") + ")"
        }
        print("the hub's own CPU a message for 0.80 of the null subscriber's rate, at best: " + figures(budgets.map(\.atBest))
              + "; as the drains went: " + figures(budgets.map(\.asMeasured)) + "; spent: " + figures(budgets.map(\.spent)))
        print("hub memory growth through each drain of \(backlog) messages (VmRSS, at most during it against before it): "
              + growths.map { ($0 >= 0 ? "+" : "") + Self.megabytes($0) }.joined(separator: ", ")
              + "; once the hub stopped, against before it: " + stopped.map { ($0 >= 0 ? "+" : "") + Self.megabytes($0) }.joined(separator: ", "))
    }

    /// The null subscriber drains the backlog queued for its session.
    private func nullDrain() async throws -> BenchFigures {
        let counter = ArrivalCounter(target: backlog)
        let start = ContinuousClock.now
        let before = CPUSnapshot.take(broker: broker.processIdentifier)
        let subscriber = mqtt.nullSubscriber(subscriptions, counter)
        try subscriber.start()
        try await mqtt.waitFor("null subscriber drain", timeout: BenchBroker.timeout(backlog), progress: { "\(counter.count) received" }) { counter.count >= self.backlog }
        let after = CPUSnapshot.take(broker: broker.processIdentifier)
        guard let end = counter.finishedAt else { throw IngestBenchRun.failure("a phase ended without its timing") }
        subscriber.stop()
        // Its session stays subscribed (not cleared): the next backlog is queued for it too.
        return BenchFigures(messages: backlog, seconds: Self.seconds(end - start), cpu: after.minus(before), publisherCPU: 0,
                            subscriberThread: "mqtt \(BenchBroker.nullClientId)", check: counter.count == backlog ? "ok" : "+\(counter.count - backlog) dup")
    }

    /// What one drain by the hub showed.
    struct HubDrain {
        var figures: BenchFigures
        var waits: IngestQueueWaits
        var rssBefore: Int
        var maxRSS: Int
        /// VmRSS once the hub stopped and malloc gave its free memory back.
        var rssStopped: Int
        /// The lines on its memory, ready to print.
        var memory: String
    }

    /// The hub drains the backlog queued for its session, its memory watched: the peak RSS is reset
    /// first (Linux clear_refs) so that what came before does not hide what the drain needs.
    private func hubDrain() async throws -> HubDrain {
        // Freed memory goes back to the system first, so that what earlier phases freed and
        // malloc kept does not hide what the drain takes, nor make it look like it keeps it.
        Self.trimMalloc()
        let hwmBefore = Self.status(pid: nil, "VmHWM")
        let rssBefore = Self.status(pid: nil, "VmRSS")
        let hwmReset = (try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)) != nil
        let hwmAfterReset = Self.status(pid: nil, "VmHWM")
        let hubStart = ContinuousClock.now
        let hubBefore = CPUSnapshot.take(broker: broker.processIdentifier)
        let walBefore = try await walBytesWritten()
        let hub = try await startHub()
        let base = storedSoFar
        var maxPending = 0
        var maxRSS = 0
        var rssAt: [(Int, Int)] = []
        var lastSample = ContinuousClock.now - .seconds(1)
        var end = ContinuousClock.now
        try await mqtt.waitFor("hub drain", timeout: BenchBroker.timeout(backlog),
                               progress: { "\(hub.service.totals.stored) stored, \(hub.service.pending) in memory, RSS \(Self.megabytes(Self.status(pid: nil, "VmRSS")))" }) {
            let pending = hub.service.pending
            maxPending = max(maxPending, pending)
            let progress = hub.service.progress
            let stored = progress.totals.stored
            if ContinuousClock.now - lastSample >= .milliseconds(50) {
                lastSample = .now
                let rss = Self.status(pid: nil, "VmRSS")
                maxRSS = max(maxRSS, rss)
                if rssAt.isEmpty || stored * 10 / self.backlog > rssAt.last!.0 * 10 / self.backlog { rssAt.append((stored, rss)) }
            }
            guard stored >= self.backlog, let last = progress.lastCommitAt else { return false }
            end = last
            return true
        }
        let hubAfter = CPUSnapshot.take(broker: broker.processIdentifier)
        let waits = hub.service.queueWaits
        let hwmAfter = Self.status(pid: nil, "VmHWM")
        let rssAfter = Self.status(pid: nil, "VmRSS")
        maxRSS = max(maxRSS, rssAfter)
        let foldedAfter = try await waitForTheFold(hub, label: "hub drain")
        let totals = hub.service.totals
        let batches = hub.batches()
        try await hub.stop()
        Self.trimMalloc()
        let rssStopped = Self.status(pid: nil, "VmRSS")
        let walBytes = try await walBytesWritten() - walBefore
        storedSoFar = base + totals.stored
        var figures = BenchFigures(messages: backlog, seconds: Self.seconds(end - hubStart), cpu: hubAfter.minus(hubBefore), publisherCPU: 0,
                                   subscriberThread: "mqtt \(Self.hubClientId)",
                                   check: totals.stored == backlog && totals.quarantinedTotal == 0 ? "ok" : "stored \(totals.stored) quarantined \(totals.quarantinedTotal)")
        figures.batches = batches
        figures.walBytes = walBytes
        figures.foldedAfter = foldedAfter
        let sign = maxRSS >= rssBefore ? "+" : ""
        var memory = "  hub memory (this process: hub + idle publisher): VmRSS \(Self.megabytes(rssBefore)) before the drain, at most \(Self.megabytes(maxRSS)) during it "
        memory += "(\(sign)\(Self.megabytes(maxRSS - rssBefore)) while \(backlog) messages went through), "
        memory += "\(Self.megabytes(rssAfter)) after; VmHWM \(Self.megabytes(hwmBefore)) before, "
        memory += hwmReset ? "reset to \(Self.megabytes(hwmAfterReset)), \(Self.megabytes(hwmAfter)) after the drain" : "\(Self.megabytes(hwmAfter)) after (could not reset it)"
        let samples: [String] = rssAt.map { "\($0.0 * 100 / backlog)% \(Self.megabytes($0.1))" }
        memory += "; \(Self.megabytes(rssStopped)) once the hub stopped (malloc's free memory given back before the drain and after it)"
        memory += "\n  VmRSS as the drain went on: " + samples.joined(separator: ", ")
        memory += "\n  messages acknowledged but not committed (IngestService.pending), sampled: at most \(maxPending) (bound: maxBatch = \(settings.maxBatch))"
        return HubDrain(figures: figures, waits: waits, rssBefore: rssBefore, maxRSS: maxRSS, rssStopped: rssStopped, memory: memory)
    }

    // MARK: Clients and sessions

    private func startHub() async throws -> RunningHub {
        let registry = PrometheusCollectorRegistry()
        let service = try IngestService(settings: settings, mqtt: mqtt.settings(Self.hubClientId), mqttPassword: nil, store: SQLiteReadingStore(database: database),
                                        metrics: IngestMetrics(registry: registry), logger: logger)
        let group = ServiceGroup(configuration: .init(services: [service], logger: logger))
        let task = Task { try await group.run() }
        let hub = RunningHub(service: service, group: group, task: task, registry: registry)
        try await mqtt.waitFor("the hub to connect", timeout: .seconds(10)) { service.isConnected }
        return hub
    }

    /// The load average over 1, 5 and 15 minutes.
    static func loadAverage() -> String {
        (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
    }

    static func failure(_ message: String) -> HubError {
        HubError(.unavailable, code: "bench_failed", message: message)
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    /// A field of /proc/<pid>/status in kB (this process when `pid` is nil), 0 if unreadable.
    static func status(pid: Int32?, _ field: String) -> Int {
        let path = pid.map { "/proc/\($0)/status" } ?? "/proc/self/status"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            return Int(line.dropFirst(field.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "") ?? 0
        }
        return 0
    }

    /// Where the CPU went during a kind of round.
    static func cpuSummary(_ rounds: [BenchFigures], receiver: String) -> String {
        func share(_ value: (BenchFigures) -> Double) -> Double { median(rounds.map { $0.cpu.wall > 0 ? value($0) / $0.cpu.wall : 0 }) }
        let broker = share { $0.cpu.broker }
        let process = share { $0.cpu.process }
        let publisher = share { $0.publisherSeconds }
        let loop = share { $0.subscriberSeconds }
        let writer = share { $0.writerSeconds }
        var text = String(format: "%@: broker %.2f + this process %.2f = %.2f (publisher %.2f, receiving MQTT loop %.2f", receiver, broker, process,
                          broker + process, publisher, loop)
        if writer > 0 { text += String(format: ", ingest writer %.2f", writer) }
        return text + String(format: ", other threads %.2f)", max(0, process - publisher - loop - writer))
    }

    /// Gives malloc's free memory back to the system (glibc's malloc_trim).
    static func trimMalloc() {
        #if canImport(Glibc)
        _ = glibcMallocTrim(0)
        #endif
    }

    static func megabytes(_ kilobytes: Int) -> String { String(format: "%.0f MB", Double(kilobytes) / 1024) }

    static func brokerVersion(_ executable: String) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["-h"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        guard (try? process.run()) != nil else { return "mosquitto" }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let first = String(decoding: data, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? "mosquitto"
        return first.replacingOccurrences(of: " is an MQTT v5.0/v3.1.1/v3.1 broker.", with: "")
    }
}

#if canImport(Glibc)
/// glibc's malloc_trim(3) (malloc.h is not in the Glibc module).
@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32
#endif

/// A hub started for one phase.
struct RunningHub: Sendable {
    let service: IngestService
    let group: ServiceGroup
    let task: Task<Void, any Error>
    let registry: PrometheusCollectorRegistry

    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }

    /// Readings in the journal, not yet folded (the hub's gauge).
    func journalReadings() -> Int {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        let text = String(decoding: buffer, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix("hub_ingest_journal_readings ") {
            return Int(Double(line.split(separator: " ").last ?? "") ?? 0)
        }
        return 0
    }

    /// Batches committed and their mean commit time in seconds, folds and their total time (from
    /// the metrics' histograms).
    func batches() -> (count: Int, commitSeconds: Double, folds: Int, foldSeconds: Double) {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        let text = String(decoding: buffer, as: UTF8.self)
        func value(_ name: String) -> Double {
            for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
                return Double(line.split(separator: " ").last ?? "") ?? 0
            }
            return 0
        }
        let count = value("hub_ingest_batch_size_count")
        return (Int(count), count > 0 ? value("hub_ingest_commit_seconds_sum") / count : 0,
                Int(value("hub_ingest_fold_seconds_count")), value("hub_ingest_fold_seconds_sum"))
    }
}

/// One message of the benchmark's traffic.
struct BenchMessage: Sendable {
    var topic: String
    var payload: [UInt8]
}

/// The benchmark's traffic: message `k` is device `k % devices`' reading number `k / devices`,
/// one a minute, ending before now, with an index that grows by a plausible household amount.
struct BenchTraffic: Sendable {
    let devices: [SimulatedDevice]
    let topics: [String]
    let start: Instant
    static let step: Int64 = 60_000
    static let since = LocalDate(year: 2020, month: 1, day: 1)!

    init(devices count: Int, total: Int, now: Instant) throws {
        devices = (0..<count).map { (index: Int) -> SimulatedDevice in
            let initial = WattHours(Int64(1_000_000 + index * 997))
            let id = "bench-" + String(100_000 + index + 1).dropFirst()
            return SimulatedDevice(id: id, kind: .meter, format: .canonical, nominalW: 400, seed: UInt64(index), initialIndex: initial)
        }
        topics = devices.map { SimulatedDevice.canonicalTopic($0.id) }
        let perDevice = Int64((total + count - 1) / count) + 10
        start = Instant(millisecondsSince1970: now.millisecondsSince1970.floorDiv(Self.step) * Self.step - perDevice * Self.step)
        guard start > LocalTimeZone.paris.startOfDay(Self.since.advanced(by: 1)) else {
            throw HubError.badRequest(field: "messages", "too many readings per device (\(perDevice)) to place one a minute since \(Self.since): add devices")
        }
    }

    var registryCSV: String {
        var lines = ["estate;building;dwelling;device;kind;format;since"]
        for (index, device) in devices.enumerated() {
            lines.append("Banc d'essai;BENCH-\(index / 50 + 1);BENCH-\(index + 1);\(device.id);meter;canonical;\(Self.since)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    func message(_ k: Int) -> BenchMessage {
        let device = k % devices.count
        let reading = Int64(k / devices.count)
        let simulated = devices[device]
        // 0 to 12 Wh a minute (0 to 720 W), varying with the device and the minute.
        let increment = { (r: Int64) in (r &* 7 &+ Int64(device)) % 13 }
        // Closed form of the sum of increments: 12 per 13 readings on average plus the partial cycle.
        var index = simulated.initialIndex.value + reading / 13 * 78
        for r in (reading - reading % 13)..<reading { index += increment(r) }
        let powerW = Double(increment(reading) * 60)
        let built = MeterSimulator.message(for: simulated, at: start.adding(milliseconds: reading * Self.step), index: WattHours(index), powerW: powerW)
        return BenchMessage(topic: topics[device], payload: built.payload)
    }

    func messages(_ range: Range<Int>) -> [BenchMessage] { range.map(message) }
}

extension SimulatedDevice {
    static func canonicalTopic(_ id: String) -> String { "meters/\(id)/reading" }
}

/// Counts a receiver's messages and notes when the target was reached.
final class ArrivalCounter: Sendable {
    let target: Int
    private let received = Atomic<Int>(0)
    private let reachedAt = Mutex<ContinuousClock.Instant?>(nil)

    init(target: Int) { self.target = target }

    func arrived() {
        if received.add(1, ordering: .relaxed).newValue == target {
            let now = ContinuousClock.now
            reachedAt.withLock { $0 = now }
        }
    }

    var count: Int { received.load(ordering: .relaxed) }
    var finishedAt: ContinuousClock.Instant? { reachedAt.withLock { $0 } }
}

/// The publishing thread's progress and timing.
final class PublishRun: @unchecked Sendable {
    private struct State {
        var startedAt: ContinuousClock.Instant?
        var endedAt: ContinuousClock.Instant?
        var cpu = 0.0
        var error: (any Error)?
        var done = false
    }
    private let state = Mutex(State())
    private let count = Atomic<Int>(0)

    func begin() { state.withLock { $0.startedAt = .now } }
    func published(_ n: Int) { count.store(n, ordering: .relaxed) }
    func end(cpu: Double, error: (any Error)?) {
        let now = ContinuousClock.now
        state.withLock {
            $0.endedAt = now
            $0.cpu = cpu
            $0.error = error
            $0.done = true
        }
    }

    var published: Int { count.load(ordering: .relaxed) }
    var isDone: Bool { state.withLock { $0.done } }
    var startedAt: ContinuousClock.Instant? { state.withLock { $0.startedAt } }
    var endedAt: ContinuousClock.Instant? { state.withLock { $0.endedAt } }
    var cpuSeconds: Double { state.withLock { $0.cpu } }

    /// Waits for the thread to end; rethrows its error.
    func finish() async throws {
        while !isDone { try await Task.sleep(for: .milliseconds(2)) }
        if let error = state.withLock({ $0.error }) { throw error }
    }

    static func threadCPUSeconds() -> Double {
        // timespec is (seconds, nanoseconds) as two Ints on Linux; read them as such, since
        // the compiler may attribute the C struct's fields to another module (MemberImportVisibility).
        var words: (Int, Int) = (0, 0)
        _ = withUnsafeMutablePointer(to: &words) { $0.withMemoryRebound(to: timespec.self, capacity: 1) { clock_gettime(CLOCK_THREAD_CPUTIME_ID, $0) } }
        return Double(words.0) + Double(words.1) / 1e9
    }
}

/// CPU seconds used so far by the broker, this process and each of its named threads.
struct CPUSnapshot {
    var taken: ContinuousClock.Instant
    var broker: Double
    var process: Double
    var threads: [String: Double]

    static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    static func take(broker pid: Int32?) -> CPUSnapshot {
        var threads: [String: Double] = [:]
        if let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") {
            for task in tasks {
                guard let (name, seconds) = stat("/proc/self/task/\(task)/stat") else { continue }
                threads[name, default: 0] += seconds
            }
        }
        return CPUSnapshot(taken: .now, broker: pid.flatMap { stat("/proc/\($0)/stat")?.1 } ?? 0, process: stat("/proc/self/stat")?.1 ?? 0, threads: threads)
    }

    /// (comm, utime + stime in seconds) of a /proc stat file.
    static func stat(_ path: String) -> (String, Double)? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")") else { return nil }
        let name = String(text[text.index(after: open)..<close])
        let fields = text[text.index(after: close)...].split(separator: " ")
        // Fields after the name start at field 3 (state); utime and stime are fields 14 and 15.
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (name, (user + system) / ticksPerSecond)
    }

    func minus(_ earlier: CPUSnapshot) -> CPUUse {
        var threads: [String: Double] = [:]
        for (name, seconds) in self.threads { threads[name] = seconds - (earlier.threads[name] ?? 0) }
        return CPUUse(wall: IngestBenchRun.seconds(taken - earlier.taken), broker: broker - earlier.broker, process: process - earlier.process, threads: threads)
    }
}

/// CPU used during a phase.
struct CPUUse {
    var wall: Double
    var broker: Double
    var process: Double
    var threads: [String: Double]

    func share(_ seconds: Double) -> String { String(format: "%.2f", wall > 0 ? seconds / wall : 0) }
}

/// What one phase measured.
struct BenchFigures {
    var messages: Int
    var seconds: Double
    var cpu: CPUUse
    var publisherCPU: Double
    var subscriberThread: String
    var check: String
    var batches = (count: 0, commitSeconds: 0.0, folds: 0, foldSeconds: 0.0)
    /// Bytes the hub wrote to the WAL during the phase (0 for the null subscriber).
    var walBytes = 0
    /// Seconds from the last commit until the hub's journal was folded.
    var foldedAfter = 0.0

    var rate: Double { Double(messages) / seconds }

    /// CPU seconds of the publishing thread and of the publisher's MQTT loop.
    var publisherSeconds: Double { publisherCPU + (cpu.threads["mqtt \(BenchBroker.publisherClientId)"] ?? 0) }
    /// CPU seconds of the receiver's MQTT loop thread.
    var subscriberSeconds: Double { cpu.threads[subscriberThread] ?? 0 }
    /// CPU seconds of the hub's writer thread (0 for the null subscriber).
    var writerSeconds: Double { cpu.threads["ingest-writer"] ?? 0 }

    /// Microseconds of CPU a message: the broker, the receiving MQTT loop, the hub's writer and
    /// the rest of this process (the publisher's threads left out).
    var cpuParts: (broker: Double, loop: Double, writer: Double, other: Double) {
        let micro = 1e6 / Double(messages)
        return (cpu.broker * micro, subscriberSeconds * micro, writerSeconds * micro,
                max(0, cpu.process - publisherSeconds - subscriberSeconds - writerSeconds) * micro)
    }

    /// The parts together.
    var cpuMicrosecondsPerMessage: Double {
        let parts = cpuParts
        return parts.broker + parts.loop + parts.writer + parts.other
    }

    /// Microseconds of CPU a message, by part: the broker, the receiving MQTT loop, the hub's
    /// writer and the rest of this process. With `ceiling`, also the rate two cores would give at
    /// that cost: what limits the hub's drain (its parts share the machine's two cores).
    func cpuPerMessage(_ receiver: String, ceiling: Bool) -> String {
        let micro = 1e6 / Double(messages)
        let (broker, loop, writer, other) = cpuParts
        let total = cpuMicrosecondsPerMessage
        var text = String(format: "%@: broker %.1f + MQTT loop %.1f", receiver, broker, loop)
        if writer > 0 { text += String(format: " + writer %.1f", writer) }
        text += String(format: " + other %.1f = %.1f µs", other, total)
        if ceiling && total > 0 { text += String(format: " (two cores at that cost: %.0f msg/s)", 2e6 / total) }
        // The rest by thread, where it is worth a tenth of a microsecond.
        let known: Set<String> = ["mqtt \(BenchBroker.publisherClientId)", "bench-publish", subscriberThread, "ingest-writer"]
        let rest = cpu.threads.filter { !known.contains($0.key) && $0.value * micro >= 0.1 }.sorted { $0.value > $1.value }
        if !rest.isEmpty {
            text += " [other: " + rest.map { String(format: "%@ %.1f", $0.key, $0.value * micro) }.joined(separator: ", ") + "]"
        }
        return text
    }

    func row(round: String, receiver: String) -> String {
        let publisher = publisherSeconds
        let subscriber = subscriberSeconds
        let writer = writerSeconds
        let batchNote = batches.count > 0
            ? String(format: "  (%d batches of %.0f msg, commit %.1f ms; %d folds, %.2f s, the journal empty %.2f s after the last commit; WAL %.0f bytes a reading)",
                     batches.count, Double(messages) / Double(batches.count), batches.commitSeconds * 1000, batches.folds, batches.foldSeconds, foldedAfter,
                     Double(walBytes) / Double(messages))
            : ""
        let writerShare = writer > 0 ? cpu.share(writer) : "-"
        var columns: [String] = [pad(round, 6, left: true), pad(receiver, 22, left: true), String(format: "%9d %9.2f %10.0f  ", messages, seconds, rate)]
        columns.append(pad(cpu.share(cpu.broker), 6))
        columns.append(pad(cpu.share(cpu.process), 8))
        columns.append(pad(cpu.share(publisher), 10))
        columns.append(pad(cpu.share(subscriber), 9))
        columns.append(pad(writerShare, 7))
        columns.append("  " + check + batchNote)
        return columns.joined(separator: " ")
    }
}

/// A table column: `text` padded to `width`, aligned right unless `left`.
func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
    let fill = String(repeating: " ", count: max(0, width - text.count))
    return left ? text + fill : fill + text
}

/// Names the calling thread in /proc (Foundation's `Thread.name` does not on Linux).
func nameThread(_ name: String) {
    let fd = open("/proc/thread-self/comm", O_WRONLY)
    guard fd >= 0 else { return }
    let bytes = Array(name.utf8.prefix(15))
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
}

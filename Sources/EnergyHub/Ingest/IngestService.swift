import Foundation
import Logging
import Prometheus
import Synchronization
import ServiceLifecycle
import EnergyCore
import HubCore
import Shared

/// The ingest pipeline as a long-running service: MQTT subscription (libmosquitto's loop thread)
/// → bounded queue → one writer thread that validates and commits batches. On graceful shutdown it
/// stops receiving, then commits everything still in memory before returning.
public final class IngestService: Service, @unchecked Sendable {
    public let settings: IngestSettings
    let processor: IngestProcessor
    let metrics: IngestMetrics
    let logger: Logger
    let queue: IngestQueue
    private let client: MosquittoClient
    private let writerDone = DispatchSemaphore(value: 0)
    private struct State {
        var drainStarted = false
        var drainedCount = 0
        var lostCount = 0
        var total = BatchReport()
        /// When the last commit that added to `total` ended.
        var lastCommitAt: ContinuousClock.Instant?
        /// Set when a graceful stop begins: commits that keep failing are given up after it.
        var drainDeadline: ContinuousClock.Instant?
        /// True while the store refuses writes (the writer keeps it).
        var storeFailing = false
    }
    private let state = Mutex(State())
    /// The writer thread's own: when the store began refusing writes, whether the writer gave up
    /// (at the drain deadline), and how many acknowledged messages it could not commit.
    private var failingSince: ContinuousClock.Instant?
    private var gaveUp = false
    private var lostByWriter = 0

    public init(settings: IngestSettings, mqtt: MQTTSettings, mqttPassword: String?, store: any ReadingStore, metrics: IngestMetrics, logger: Logger) throws {
        self.settings = try settings.validated()
        self.processor = try IngestProcessor(settings: settings, store: store)
        self.metrics = metrics
        self.logger = logger
        let queue = IngestQueue(maxMessages: settings.maxBatch, maxBytes: settings.maxInMemoryBytes)
        self.queue = queue
        let processor = self.processor
        self.client = MosquittoClient(
            settings: mqtt, password: mqttPassword, cleanSession: false, subscriptions: processor.subscriptions, logger: logger,
            onMessage: { message in
                metrics.received.increment()
                let held = queue.push(IncomingMessage(topic: message.topic, payload: message.payload, receivedAt: message.receivedAt,
                                                      maxPayloadBytes: settings.maxPayloadBytes, quarantinePayloadBytes: settings.quarantinePayloadBytes))
                metrics.inMemory.set(to: Double(held))
            },
            onConnectionChange: { connected in
                metrics.connected.set(to: connected ? 1 : 0)
                if connected { metrics.connects.increment() }
            })
    }

    /// True while connected to the broker (for `/readyz`).
    public var isConnected: Bool { client.isConnected }

    /// Messages acknowledged to the broker and not yet committed.
    public var pending: Int { queue.pending }

    /// How long the MQTT loop and the writer waited for each other so far (`bench ingest`).
    public var queueWaits: IngestQueueWaits { queue.waits }

    /// Totals since start (for tests and the demo's progress display).
    public var totals: BatchReport {
        state.withLock { $0.total }
    }

    /// The totals with the instant the last commit that added to them ended (`bench ingest` times
    /// a phase to that commit, however often it looks).
    public var progress: (totals: BatchReport, lastCommitAt: ContinuousClock.Instant?) {
        state.withLock { ($0.total, $0.lastCommitAt) }
    }

    public func run() async throws {
        // The registry and the devices' last indexes are read once, off Swift's pool.
        let processor = self.processor
        try await BlockingWork.run { try processor.loadState(at: Instant.now()) }
        logger.info("ingest starting", metadata: ["devices": "\(processor.devices.count)", "subscriptions": "\(processor.subscriptions)"])
        startWriter()
        do {
            try client.start()
        } catch {
            queue.close()
            await waitForWriter()
            throw error
        }
        // Runs until the service group shuts down gracefully (SIGTERM, SIGINT) or is cancelled.
        try? await gracefulShutdown()
        await stopAndDrain()
        let lost = lostAtShutdown
        if lost > 0 {
            throw HubError(.unavailable, code: "ingest_lost_messages",
                           message: "ingest stopped with \(lost) acknowledged messages it could not commit: the database refused writes")
        }
    }

    /// Acknowledged messages the last stop could not commit (the store refused writes until the
    /// drain deadline); 0 after a clean stop.
    public var lostAtShutdown: Int { state.withLock { $0.lostCount } }

    /// True while the store refuses writes and intake is paused.
    public var storeIsFailing: Bool { state.withLock { $0.storeFailing } }

    /// Stops receiving, commits what is in memory, and returns how many messages that was.
    @discardableResult
    public func stopAndDrain() async -> Int {
        await BlockingWork.run { self.stopAndDrainBlocking() }
    }

    /// The same, blocking the calling thread (the shutdown deadline's own thread): safe to call
    /// again or at the same time, every call returns once the writer has committed everything.
    @discardableResult
    public func stopAndDrainBlocking() -> Int {
        let alreadyStarted = state.withLock { state in
            defer { state.drainStarted = true }
            return state.drainStarted
        }
        if alreadyStarted {
            waitForWriterBlocking()
            return state.withLock { $0.drainedCount }
        }
        // From now on a commit that keeps failing is given up at the deadline (issue 14, defect 2:
        // a full disk kept the writer retrying until systemd killed the process).
        let failing = state.withLock { state in
            state.drainDeadline = .now + .seconds(settings.shutdownCommitSeconds)
            return state.storeFailing
        }
        // Stop the loop thread first; the writer keeps draining so a blocked push can finish. When
        // the store is failing nothing drains: the loop thread waits in `push` (intake paused)
        // and the broker keeps what follows, so do not wait long for it.
        client.stop(timeout: failing ? .seconds(1) : .seconds(10))
        let inMemory = queue.pending
        queue.close()
        waitForWriterBlocking()
        // Messages the loop pushed after the writer ended (a stop that timed out) are lost too.
        let lost = lostByWriter + queue.pending
        let drained = inMemory - min(inMemory, lost)
        metrics.drainedAtShutdown.increment(by: Int64(drained))
        metrics.inMemory.set(to: 0)
        state.withLock { state in
            state.drainedCount = drained
            state.lostCount = lost
        }
        if lost > 0 {
            metrics.lostAtShutdown.increment(by: Int64(lost))
            logger.critical("ingest stopped with acknowledged messages it could not commit: they are lost (the database refused writes until the shutdown deadline)",
                            metadata: ["lost_messages": "\(lost)", "drained_messages": "\(drained)",
                                       "ingest.shutdownCommitSeconds": "\(settings.shutdownCommitSeconds)"])
        } else {
            logger.info("ingest stopped", metadata: ["drained_messages": "\(drained)"])
        }
        return drained
    }

    private func startWriter() {
        let thread = Thread { [self] in
            nameCurrentThread("ingest-writer")
            writeLoop()
            writerDone.signal()
        }
        thread.name = "ingest-writer"
        thread.start()
    }

    private func waitForWriter() async {
        await BlockingWork.run { self.waitForWriterBlocking() }
    }

    private func waitForWriterBlocking() {
        writerDone.wait()
        writerDone.signal()
    }

    /// Commits batches to the store's journal; folds the journal into the device-ordered table
    /// when it holds `foldRows` readings, when no message came for `foldIdleMilliseconds`, or when
    /// its oldest reading has waited `foldMaxAgeSeconds`. Folding holds no acknowledged message:
    /// the batch before it is committed and released first, and the queue goes on filling (up to
    /// the bound) meanwhile. But a fold stops the commits while it runs (SQLite has one writer),
    /// so while a backlog is drained (a batch of a quarter of the bound or more, or as many
    /// messages waiting, within `burstWindow`) the journal takes the burst instead, up to
    /// `burstFoldRows(foldRows)`, and is folded once the burst is over, in folds of `foldRows`
    /// with batches committed between them.
    private func writeLoop() {
        let limit = settings.maxBatch
        let trigger = max(1, settings.maxBatch / 2)
        // A batch that fills while it is written is committed at a quarter of the bound: the
        // three quarters left take in what arrives during its sync, so the MQTT loop waits for
        // room less often (a backlog drained at a median of 211,000 msg/s against 197,000 when
        // it was committed at half the bound, for 4-8% more WAL a reading).
        let fillTo = max(1, settings.maxBatch / 4)
        let burst = max(1, settings.maxBatch / 4)
        let burstCeiling = Self.burstFoldRows(settings.foldRows)
        let linger = Double(settings.lingerMilliseconds) / 1000
        let idle = Double(settings.foldIdleMilliseconds) / 1000
        let maxAge = Duration.seconds(settings.foldMaxAgeSeconds)
        var oldestUnfolded: ContinuousClock.Instant?
        // A burst goes on while a large batch (or as many messages waiting) came within
        // `burstWindow`: between two, the broker's refill after a full queue can give a small batch.
        var lastBurst: ContinuousClock.Instant?
        var deferred = false
        var waiting = 0
        while true {
            var wait: TimeInterval?
            if let oldestUnfolded {
                var next = min(idle, IngestService.seconds(oldestUnfolded + maxAge - .now))
                // A fold put off by a burst runs once the burst is over; a journal still full after
                // a fold (of a burst's journal, `foldRows` at a time) is folded on without waiting.
                if deferred, let lastBurst { next = min(next, IngestService.seconds(lastBurst + Self.burstWindow - .now)) }
                if !deferred && processor.unfoldedReadings >= settings.foldRows { next = 0 }
                // Not before a failed fold may be tried again.
                wait = max(0.001, next, IngestService.seconds(nextFoldAttempt - .now))
            }
            // With a quarter of the bound already waiting (a backlog: the queue filled while the
            // last batch was committed), the next batch is what is queued, without lingering for
            // `trigger`: waiting for the MQTT loop thread to be scheduled again and top it up
            // left the writer idle for a third of a backlog's drain on a loaded 2-core machine.
            // A store with one writer (SQLite) takes the batch as soon as a message waits and fills
            // it while writing it (`Fill`); a shared one lingers first, as its batch cannot grow.
            let fills = !processor.store.isShared
            guard var batch = queue.take(limit: limit, trigger: fills || waiting >= burst ? 1 : trigger, linger: linger, idle: wait) else { break }
            waiting = 0
            if !batch.isEmpty {
                batch = commitWithRetry(batch, fill: fills ? Fill(trigger: fillTo, deadline: Date(timeIntervalSinceNow: linger)) : nil)
                waiting = queue.committed(batch)
                metrics.inMemory.set(to: Double(waiting))
                metrics.journalReadings.set(to: Double(processor.unfoldedReadings))
            }
            let unfolded = processor.unfoldedReadings
            if unfolded == 0 {
                oldestUnfolded = nil
                continue
            }
            let since = oldestUnfolded ?? .now
            oldestUnfolded = since
            if batch.count >= burst || waiting >= burst { lastBurst = .now }
            let reason = unfolded >= settings.foldRows ? "full" : ContinuousClock.now - since >= maxAge ? "age" : batch.isEmpty ? "idle" : nil
            guard let reason else { continue }
            if let lastBurst, ContinuousClock.now - lastBurst < Self.burstWindow, unfolded < burstCeiling {
                deferred = true
                continue
            }
            deferred = false
            if fold(reason: reason, limit: settings.foldRows), processor.unfoldedReadings == 0 { oldestUnfolded = nil }
        }
    }

    /// How a batch is filled while it is written: up to `trigger` messages, taken `chunk` at a time
    /// as they come, waiting for them until `deadline` (`ingest.lingerMilliseconds` after its first
    /// message was taken).
    struct Fill {
        var trigger: Int
        var deadline: Date
        /// Messages the writer waits for before it takes them in: it is woken once for these,
        /// not once per message.
        static let chunk = 128
    }

    /// A burst is over when no large batch came for this long.
    static let burstWindow = Duration.milliseconds(250)

    /// How many readings the journal may hold while a backlog is drained, before a fold of
    /// `foldRows` runs between its batches anyway (5 folds' worth: 500,000 by default, about 20 MB
    /// of the writer's memory, and up to a quarter of a second of the readings route's scan for a
    /// device that has readings in the journal).
    static func burstFoldRows(_ foldRows: Int) -> Int { foldRows * 5 }

    static func seconds(_ duration: Duration) -> TimeInterval {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    private var nextFoldAttempt = ContinuousClock.now

    /// Folds the journal; returns true when it did. A failure is logged and tried again at the
    /// next occasion, not before a second has passed: readings stay safe in the journal meanwhile,
    /// and the readers see them.
    @discardableResult
    private func fold(reason: String, limit: Int) -> Bool {
        guard ContinuousClock.now >= nextFoldAttempt else { return false }
        let start = ContinuousClock.now
        do {
            let report = try processor.fold(limit: limit)
            let elapsed = ContinuousClock.now - start
            metrics.record(report, duration: elapsed)
            logger.debug("ingest journal folded", metadata: ["readings": "\(report.folded)", "devices": "\(report.devices)", "remaining": "\(report.remaining)",
                                                            "reason": "\(reason)", "took": "\(elapsed)"])
            if report.dropped > 0 {
                logger.warning("ingest journal held readings already stored; dropped", metadata: ["dropped": "\(report.dropped)"])
            }
            return true
        } catch {
            nextFoldAttempt = ContinuousClock.now + .seconds(1)
            logger.error("ingest journal fold failed; the readings stay in the journal", metadata: ["error": "\(processor.store.describe(error))", "readings": "\(processor.unfoldedReadings)"])
            return false
        }
    }

    /// Commits a batch, retrying with backoff: a message is never dropped because the database
    /// hiccuped. When the store says it cannot write at all (`ReadingStore.isUnavailable`: disk
    /// full, I/O error...), the batch stays whole, intake pauses (the broker keeps the meters'
    /// messages) and the commit is retried until it succeeds; during a graceful stop, until
    /// `ingest.shutdownCommitSeconds` after the stop began, then the messages held are counted as
    /// lost and logged. Any other failure: after three, the batch is split so one poisonous
    /// message cannot block the rest; a message that fails alone is quarantined with the error.
    @discardableResult
    private func commitWithRetry(_ first: [IncomingMessage], fill: Fill? = nil) -> [IncomingMessage] {
        if gaveUp {
            lostByWriter += first.count
            return first
        }
        var batch = first
        var fill = fill
        var attempt = 0
        var conflicts = 0
        while true {
            var start = ContinuousClock.now
            var unavailable = false
            do {
                let report: BatchReport
                if let filling = fill {
                    // Only the first attempt takes more: a retry writes what was taken.
                    fill = nil
                    let queue = self.queue
                    var waited = Duration.zero
                    let done = try processor.process(batch, more: {
                        let asked = ContinuousClock.now
                        let chunk = queue.takeMore(limit: filling.trigger - batch.count, wanted: min(Fill.chunk, filling.trigger - batch.count),
                                                   until: filling.deadline)
                        waited += ContinuousClock.now - asked
                        batch.append(contentsOf: chunk)
                        return chunk
                    })
                    // The commit's time (`hub_ingest_commit_seconds`) is the batch's work, not its
                    // waits for messages.
                    start += waited
                    if !done.leftOver.isEmpty {
                        batch.removeLast(done.leftOver.count)
                        queue.putBack(done.leftOver)
                    }
                    report = done.report
                } else {
                    report = try processor.process(batch)
                }
                account(report, since: start)
                storeRecovered()
                return batch
            } catch where processor.store.isConflict(error) && conflicts < 1000 {
                // Another hub process's transaction met this one: run the batch again as it is.
                conflicts += 1
                metrics.commitFailures.increment()
                if conflicts == 1 || conflicts % 100 == 0 {
                    logger.notice("ingest commit met another process's transaction; writing the batch again",
                                  metadata: ["error": "\(processor.store.describe(error))", "messages": "\(batch.count)", "conflicts": "\(conflicts)"])
                }
                Thread.sleep(forTimeInterval: Double.random(in: 0.001...0.02))
                continue
            } catch {
                attempt += 1
                metrics.commitFailures.increment()
                unavailable = processor.store.isUnavailable(error)
                if unavailable {
                    storeFailed(error, attempt: attempt)
                } else {
                    logger.error("ingest commit failed; retrying", metadata: ["error": "\(processor.store.describe(error))", "messages": "\(batch.count)", "attempt": "\(attempt)"])
                }
            }
            let deadline = state.withLock { $0.drainDeadline }
            if let deadline, ContinuousClock.now >= deadline {
                gaveUp = true
                lostByWriter += batch.count
                return batch
            }
            if !unavailable && attempt >= 3 && batch.count > 1 {
                for message in batch { commitWithRetry([message]) }
                return batch
            }
            if !unavailable && attempt >= 3, let message = batch.first {
                let start = ContinuousClock.now
                if let report = try? processor.quarantineUnstorable(message, error: "\(attempt) commits failed") {
                    account(report, since: start)
                    return batch
                }
            }
            var pause = min(2, 0.05 * Double(1 << min(attempt, 7)))
            if let deadline { pause = min(pause, 0.25, max(0.001, IngestService.seconds(deadline - .now))) }
            Thread.sleep(forTimeInterval: pause)
        }
    }

    /// The store refused a write for its own reasons: stop taking messages until it accepts again.
    private func storeFailed(_ error: any Error, attempt: Int) {
        if failingSince == nil {
            failingSince = .now
            queue.pauseIntake(true)
            state.withLock { $0.storeFailing = true }
            metrics.storeFailing.set(to: 1)
            logger.error("the database refuses writes: ingest stops taking messages, the broker keeps them until it accepts writes again",
                         metadata: ["error": "\(processor.store.describe(error))", "messages_held": "\(queue.pending)"])
        } else if attempt.isMultiple(of: 20) {
            logger.error("the database still refuses writes", metadata: ["error": "\(processor.store.describe(error))", "attempt": "\(attempt)", "messages_held": "\(queue.pending)"])
        }
    }

    private func storeRecovered() {
        guard let since = failingSince else { return }
        failingSince = nil
        queue.pauseIntake(false)
        state.withLock { $0.storeFailing = false }
        metrics.storeFailing.set(to: 0)
        logger.warning("the database accepts writes again: ingest takes messages again", metadata: ["refused_for": "\(ContinuousClock.now - since)"])
    }

    private func account(_ report: BatchReport, since start: ContinuousClock.Instant) {
        let now = ContinuousClock.now
        metrics.record(report, commit: now - start)
        state.withLock { state in
            state.total.add(report)
            state.lastCommitAt = now
        }
    }
}

import Foundation
import EnergyCore
import HubCore
import Shared

/// The hand-over between the MQTT loop thread and the writer thread, bounded so that at most
/// `maxMessages` messages (and `maxBytes` payload bytes, plus the one message being pushed) are
/// held in memory between libmosquitto's PUBACK and our commit. When full, or while the store
/// refuses writes (`pauseIntake`), `push` blocks the loop thread: the broker then queues for us.
///
/// Each side wakes the other only when the other waits for what just happened (the writer for
/// enough messages, the loop thread for room): waking the writer on every message cost two context
/// switches per message while it lingered for a batch.
final class IngestQueue: @unchecked Sendable {
    let maxMessages: Int
    let maxBytes: Int
    private let condition = NSCondition()
    /// Messages pushed and not yet taken by the writer. Taken ones leave it at once: the writer's
    /// batch holds them until committed, and nothing else does (issue 14, defect 3: a buffer that
    /// kept 4,096 handed-off messages held 4,096 payloads, whatever their size).
    private var buffer: [IncomingMessage] = []
    /// Messages pushed and not yet committed or given up (queued plus the batch being written).
    private var inMemory = 0
    private var inMemoryBytes = 0
    private var closed = false
    /// While the store refuses writes, `push` waits after each message, as when full: the loop
    /// thread stops reading, so the broker keeps the meters' messages instead of us.
    private var intakePaused = false
    /// How many queued messages the writer waits for; nil while it does not wait.
    private var writerWaitsFor: Int?
    /// True while the loop thread waits for room.
    private var pusherWaits = false
    /// How long each side waited for the other, since the start (`waits`).
    private var waited = IngestQueueWaits()

    /// The waits so far.
    var waits: IngestQueueWaits {
        condition.lock()
        defer { condition.unlock() }
        return waited
    }

    init(maxMessages: Int, maxBytes: Int) {
        self.maxMessages = maxMessages
        self.maxBytes = maxBytes
    }

    /// Messages acknowledged to the broker and not yet committed.
    var pending: Int {
        condition.lock()
        defer { condition.unlock() }
        return inMemory
    }

    /// Payload bytes of those messages.
    var pendingBytes: Int {
        condition.lock()
        defer { condition.unlock() }
        return inMemoryBytes
    }

    /// Messages the queue itself holds (pushed, not yet taken).
    var queued: Int {
        condition.lock()
        defer { condition.unlock() }
        return buffer.count
    }

    private var mustWait: Bool { inMemory >= maxMessages || inMemoryBytes >= maxBytes || intakePaused }

    /// Adds a message, then waits until there is room for the next one (and intake is not
    /// paused), so the number held never exceeds `maxMessages` (the message is already
    /// acknowledged when this is called). Returns the number held once there is room.
    @discardableResult
    func push(_ message: consuming IncomingMessage) -> Int {
        condition.lock()
        defer { condition.unlock() }
        inMemoryBytes += message.payload.count
        inMemory += 1
        buffer.append(message)
        if let wanted = writerWaitsFor, buffer.count >= wanted || mustWait {
            // Full before the writer's batch size (large payloads): it must not linger either.
            condition.broadcast()
        }
        // Closing releases a push that waits for room (the writer drains what is left), not one
        // that waits for the store: that one holds the loop thread until the process exits, so
        // nothing more is acknowledged that could not be committed.
        if mustWait && (!closed || intakePaused) {
            let start = ContinuousClock.now
            while mustWait && (!closed || intakePaused) {
                pusherWaits = true
                condition.wait()
            }
            waited.loopWaits += 1
            waited.loopSeconds += Self.seconds(since: start)
        }
        pusherWaits = false
        return inMemory
    }

    /// Stops (or resumes) taking messages from the loop thread: see `intakePaused`.
    func pauseIntake(_ paused: Bool) {
        condition.lock()
        defer { condition.unlock() }
        intakePaused = paused
        if !paused && pusherWaits { condition.broadcast() }
    }

    /// Waits for at least one message, then up to `linger` for `trigger` messages (unless the queue
    /// is full), and returns what is queued (at most `limit`). Nil once closed and empty; empty
    /// when `idle` passed without a message.
    func take(limit: Int, trigger: Int, linger: TimeInterval, idle: TimeInterval? = nil) -> [IncomingMessage]? {
        condition.lock()
        defer { condition.unlock() }
        let idleDeadline = idle.map { Date(timeIntervalSinceNow: $0) }
        var start: ContinuousClock.Instant? = buffer.isEmpty ? .now : nil
        func waitedForAMessage() {
            guard let since = start else { return }
            start = nil
            waited.writerWaits += 1
            waited.writerSeconds += Self.seconds(since: since)
        }
        defer { waitedForAMessage() }
        while buffer.isEmpty {
            if closed { return nil }
            writerWaitsFor = 1
            if let idleDeadline {
                if !condition.wait(until: idleDeadline) && buffer.isEmpty && !closed {
                    writerWaitsFor = nil
                    return []
                }
            } else {
                condition.wait()
            }
        }
        waitedForAMessage()
        writerWaitsFor = nil
        waitForQueued(trigger, until: Date(timeIntervalSinceNow: linger))
        return takeQueued(limit: limit)
    }

    /// For a batch being written (`IngestProcessor.process(_:more:)`): waits until `wanted`
    /// messages are queued, unless `deadline` passes, the loop thread waits for room (the batch
    /// must be committed to make some) or the queue is closed; then returns what is queued, at
    /// most `limit`. Empty: nothing came, commit now.
    func takeMore(limit: Int, wanted: Int, until deadline: Date) -> [IncomingMessage] {
        condition.lock()
        defer { condition.unlock() }
        guard limit > 0 else { return [] }
        waitForQueued(wanted, until: deadline)
        return takeQueued(limit: limit)
    }

    /// Under the lock: waits until `wanted` messages are queued, unless `deadline` passes, the
    /// loop thread waits for room or the queue is closed (counted in `waits` as a linger).
    private func waitForQueued(_ wanted: Int, until deadline: Date) {
        guard buffer.count < wanted && !closed && !pusherWaits && deadline.timeIntervalSinceNow > 0 else { return }
        let start = ContinuousClock.now
        writerWaitsFor = wanted
        while buffer.count < wanted && !closed && !pusherWaits {
            if !condition.wait(until: deadline) { break }
        }
        writerWaitsFor = nil
        waited.lingers += 1
        waited.lingerSeconds += Self.seconds(since: start)
    }

    /// Messages taken and not written after all (`IngestProcessor.process(_:more:)` left them for
    /// the next batch): they go back to the front of the queue, still held.
    func putBack(_ messages: [IncomingMessage]) {
        guard !messages.isEmpty else { return }
        condition.lock()
        defer { condition.unlock() }
        buffer.insert(contentsOf: messages, at: 0)
    }

    /// What is queued, at most `limit`, under the lock.
    private func takeQueued(limit: Int) -> [IncomingMessage] {
        if buffer.count <= limit {
            // All of it (the usual case): the buffer is handed over, no message copied; the next
            // one starts with room for as many (a backlog's batches are alike).
            let batch = buffer
            buffer = []
            buffer.reserveCapacity(batch.count)
            return batch
        }
        let batch = Array(buffer[..<limit])
        // At most `maxMessages` remain, so moving them down costs little.
        buffer.removeFirst(limit)
        return batch
    }

    /// The writer committed these messages: they leave memory. Returns the number still held.
    @discardableResult
    func committed(_ batch: [IncomingMessage]) -> Int {
        condition.lock()
        defer { condition.unlock() }
        inMemory -= batch.count
        inMemoryBytes -= batch.reduce(0) { $0 + $1.payload.count }
        if pusherWaits { condition.broadcast() }
        return inMemory
    }

    private static func seconds(since start: ContinuousClock.Instant) -> Double {
        IngestService.seconds(ContinuousClock.now - start)
    }

    /// No more messages will come; `take` returns what is left, then nil.
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }
}

/// How often and how long each side of the queue waited for the other: the loop thread for
/// room (the bound reached, or intake paused), the writer for a first message and then for
/// its batch to fill (lingering). Timed only when a wait happens (`bench ingest` prints them).
public struct IngestQueueWaits: Sendable {
    public var loopWaits = 0
    public var loopSeconds = 0.0
    public var writerWaits = 0
    public var writerSeconds = 0.0
    public var lingers = 0
    public var lingerSeconds = 0.0
}

import Foundation
import EnergyCore
import HubCore
import Shared

/// The hand-over between the MQTT loop thread and the writer thread, bounded so that at most
/// `maxMessages` messages (and `maxBytes` payload bytes) are held in memory between libmosquitto's
/// PUBACK and our commit. When full, `push` blocks the loop thread: the broker then queues for us.
///
/// Each side wakes the other only when the other waits for what just happened (the writer for
/// enough messages, the loop thread for room): waking the writer on every message cost two context
/// switches per message while it lingered for a batch.
final class IngestQueue: @unchecked Sendable {
    let maxMessages: Int
    let maxBytes: Int
    private let condition = NSCondition()
    private var buffer: [IncomingMessage] = []
    private var head = 0
    /// Messages pushed and not yet committed (queued plus the batch being written).
    private var inMemory = 0
    private var inMemoryBytes = 0
    private var closed = false
    /// How many queued messages the writer waits for; nil while it does not wait.
    private var writerWaitsFor: Int?
    /// True while the loop thread waits for room.
    private var pusherWaits = false

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

    private var isFull: Bool { inMemory >= maxMessages || inMemoryBytes >= maxBytes }

    /// Adds a message, then waits until there is room for the next one, so the number held never
    /// exceeds `maxMessages` (the message is already acknowledged when this is called). Returns the
    /// number held once there is room.
    @discardableResult
    func push(_ message: IncomingMessage) -> Int {
        condition.lock()
        defer { condition.unlock() }
        buffer.append(message)
        inMemory += 1
        inMemoryBytes += message.payload.count
        if let wanted = writerWaitsFor, buffer.count - head >= wanted || isFull {
            // Full before the writer's batch size (large payloads): it must not linger either.
            condition.broadcast()
        }
        while !closed && isFull {
            pusherWaits = true
            condition.wait()
        }
        pusherWaits = false
        return inMemory
    }

    /// Waits for at least one message, then up to `linger` for `trigger` messages (unless the queue
    /// is full), and returns what is queued (at most `limit`). Nil once closed and empty; empty
    /// when `idle` passed without a message.
    func take(limit: Int, trigger: Int, linger: TimeInterval, idle: TimeInterval? = nil) -> [IncomingMessage]? {
        condition.lock()
        defer { condition.unlock() }
        let idleDeadline = idle.map { Date(timeIntervalSinceNow: $0) }
        while buffer.count == head {
            if closed { return nil }
            writerWaitsFor = 1
            if let idleDeadline {
                if !condition.wait(until: idleDeadline) && buffer.count == head && !closed {
                    writerWaitsFor = nil
                    return []
                }
            } else {
                condition.wait()
            }
        }
        if buffer.count - head < trigger && !closed && !pusherWaits {
            let deadline = Date(timeIntervalSinceNow: linger)
            writerWaitsFor = trigger
            while buffer.count - head < trigger && !closed && !pusherWaits {
                if !condition.wait(until: deadline) { break }
            }
        }
        writerWaitsFor = nil
        let end = min(buffer.count, head + limit)
        let batch = Array(buffer[head..<end])
        head = end
        if head > 4096 && head * 2 > buffer.count {
            buffer.removeFirst(head)
            head = 0
        }
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

    /// No more messages will come; `take` returns what is left, then nil.
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }
}

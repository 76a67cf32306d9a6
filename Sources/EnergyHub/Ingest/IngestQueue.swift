import Foundation
import Shared

/// The hand-over between the MQTT loop thread and the writer thread, bounded so that at most
/// `maxMessages` messages (and `maxBytes` payload bytes) are held in memory between libmosquitto's
/// PUBACK and our commit. When full, `push` blocks the loop thread: the broker then queues for us.
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

    /// Adds a message, then waits until there is room for the next one, so the number held never
    /// exceeds `maxMessages` (the message is already acknowledged when this is called).
    func push(_ message: IncomingMessage) {
        condition.lock()
        buffer.append(message)
        inMemory += 1
        inMemoryBytes += message.payload.count
        condition.broadcast()
        while !closed && (inMemory >= maxMessages || inMemoryBytes >= maxBytes) {
            condition.wait()
        }
        condition.unlock()
    }

    /// Waits for at least one message, then up to `linger` for `trigger` messages, and returns
    /// what is queued (at most `limit`). Nil once closed and empty.
    func take(limit: Int, trigger: Int, linger: TimeInterval) -> [IncomingMessage]? {
        condition.lock()
        defer { condition.unlock() }
        while buffer.count == head {
            if closed { return nil }
            condition.wait()
        }
        let deadline = Date(timeIntervalSinceNow: linger)
        while buffer.count - head < trigger && !closed {
            if !condition.wait(until: deadline) { break }
        }
        let end = min(buffer.count, head + limit)
        let batch = Array(buffer[head..<end])
        head = end
        if head > 4096 && head * 2 > buffer.count {
            buffer.removeFirst(head)
            head = 0
        }
        return batch
    }

    /// The writer committed these messages: they leave memory.
    func committed(_ batch: [IncomingMessage]) {
        condition.lock()
        inMemory -= batch.count
        inMemoryBytes -= batch.reduce(0) { $0 + $1.payload.count }
        condition.broadcast()
        condition.unlock()
    }

    /// No more messages will come; `take` returns what is left, then nil.
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }
}

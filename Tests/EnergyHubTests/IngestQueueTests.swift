import Foundation
import HubCore
import Shared
import Synchronization
import Testing
@testable import EnergyCore
@testable import EnergyHub

/// The hand-over between the MQTT loop thread and the writer: the bound on messages held in
/// memory (the loss bound on a crash) and the wake-ups each side relies on.
@Suite struct IngestQueueTests {
    func message(_ index: Int, bytes: Int = 10) -> IncomingMessage {
        IncomingMessage(topic: "meters/box-\(index)/reading", payload: Array(repeating: UInt8(ascii: "x"), count: bytes),
                        receivedAt: Instant(millisecondsSince1970: Int64(index)))
    }

    /// Runs `work` on a thread of its own; `done` is signalled when it returns.
    func onThread(_ work: @escaping @Sendable () -> Void) -> DispatchSemaphore {
        let done = DispatchSemaphore(value: 0)
        Thread {
            work()
            done.signal()
        }.start()
        return done
    }

    @Test func pushBlocksAtTheBoundUntilTheWriterCommits() throws {
        let queue = IngestQueue(maxMessages: 3, maxBytes: 1_000_000)
        #expect(queue.push(message(1)) == 1)
        #expect(queue.push(message(2)) == 2)
        let pushed = onThread { queue.push(self.message(3)) }
        // The third message is held (it is already acknowledged), but the push waits for room.
        #expect(pushed.wait(timeout: .now() + 0.3) == .timedOut)
        #expect(queue.pending == 3)
        let batch = try #require(queue.take(limit: 2, trigger: 1, linger: 0))
        #expect(batch.map(\.receivedAt.millisecondsSince1970) == [1, 2])
        // Taken is not committed: still in memory, so still no room.
        #expect(pushed.wait(timeout: .now() + 0.2) == .timedOut)
        #expect(queue.committed(batch) == 1)
        #expect(pushed.wait(timeout: .now() + 10) == .success)
        #expect(queue.pending == 1)
    }

    @Test func theWriterIsWokenWhenItsBatchIsThereNotAtTheEndOfTheLinger() throws {
        let queue = IngestQueue(maxMessages: 1000, maxBytes: 1_000_000)
        let taken = Mutex<[IncomingMessage]?>(nil)
        let start = ContinuousClock.now
        let writer = onThread {
            let batch = queue.take(limit: 100, trigger: 5, linger: 60)
            taken.withLock { $0 = batch }
        }
        for index in 1...5 { queue.push(message(index)) }
        #expect(writer.wait(timeout: .now() + 30) == .success)
        #expect(ContinuousClock.now - start < .seconds(30), "woken by the fifth message, not by the 60 s linger")
        #expect(taken.withLock { $0?.count } == 5)
    }

    @Test func aLingeringWriterIsWokenWhenLargePayloadsFillTheMemoryBound() throws {
        // Two 60-byte payloads exceed 100 bytes long before the writer's batch of 10 is there.
        let queue = IngestQueue(maxMessages: 1000, maxBytes: 100)
        let taken = Mutex<[IncomingMessage]?>(nil)
        let writer = onThread {
            let batch = queue.take(limit: 100, trigger: 10, linger: 60)
            taken.withLock { $0 = batch }
        }
        queue.push(message(1, bytes: 60))
        let pusher = onThread { queue.push(self.message(2, bytes: 60)) }
        #expect(writer.wait(timeout: .now() + 30) == .success)
        let batch = try #require(taken.withLock { $0 })
        #expect(batch.count == 2)
        #expect(queue.committed(batch) == 0)
        #expect(pusher.wait(timeout: .now() + 10) == .success)
    }

    @Test func closeReleasesTheWriterWithWhatIsLeftThenNil() throws {
        let queue = IngestQueue(maxMessages: 10, maxBytes: 1_000_000)
        queue.push(message(1))
        queue.close()
        #expect(queue.take(limit: 10, trigger: 5, linger: 60)?.count == 1)
        #expect(queue.take(limit: 10, trigger: 5, linger: 60) == nil)
    }
}

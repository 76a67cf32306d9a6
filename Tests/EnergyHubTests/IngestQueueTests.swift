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

    /// Issue 14, defect 3: a taken message leaves the queue at once; only the writer's batch holds
    /// it until the commit. The queue used to keep 4,096 handed-off messages (and their payloads).
    @Test func takenMessagesLeaveTheQueue() throws {
        let queue = IngestQueue(maxMessages: 10_000, maxBytes: 1 << 30)
        for round in 0..<20 {
            for index in 0..<300 { queue.push(message(round * 300 + index, bytes: 1000)) }
            let batch = try #require(queue.take(limit: 10_000, trigger: 1, linger: 0))
            #expect(batch.count == 300)
            #expect(queue.queued == 0, "round \(round): nothing handed over stays in the queue")
            #expect(queue.committed(batch) == 0)
            #expect(queue.pendingBytes == 0)
        }
        // Part of what is there: the rest stays, in order.
        for index in 0..<5 { queue.push(message(index)) }
        let first = try #require(queue.take(limit: 2, trigger: 1, linger: 0))
        #expect(queue.queued == 3)
        let rest = try #require(queue.take(limit: 10, trigger: 1, linger: 0))
        #expect((first + rest).map(\.receivedAt.millisecondsSince1970) == [0, 1, 2, 3, 4])
    }

    /// Issue 14, defect 2: while the store refuses writes, every push waits (the loop thread stops
    /// reading and the broker keeps the messages), even far below the bound; resuming releases it.
    /// Closing the queue (a stop) does not: nothing more may be acknowledged that cannot be stored.
    @Test func pausedIntakeHoldsThePushUntilResumedEvenWhenClosed() throws {
        let queue = IngestQueue(maxMessages: 1000, maxBytes: 1_000_000)
        queue.pauseIntake(true)
        let pushed = onThread { queue.push(self.message(1)) }
        #expect(pushed.wait(timeout: .now() + 0.3) == .timedOut)
        #expect(queue.pending == 1, "the message is held (already acknowledged)")
        queue.close()
        #expect(pushed.wait(timeout: .now() + 0.3) == .timedOut, "closing does not release a paused intake")
        queue.pauseIntake(false)
        #expect(pushed.wait(timeout: .now() + 10) == .success)
        #expect(queue.take(limit: 10, trigger: 1, linger: 0)?.count == 1)
    }

    @Test func closeReleasesAPushWaitingForRoom() throws {
        let queue = IngestQueue(maxMessages: 1, maxBytes: 1_000_000)
        let pushed = onThread { queue.push(self.message(1)) }
        #expect(pushed.wait(timeout: .now() + 0.3) == .timedOut)
        queue.close()
        #expect(pushed.wait(timeout: .now() + 10) == .success)
    }
}

/// Filling a batch while it is written (`takeMore`, `putBack`).
extension IngestQueueTests {
    @Test func takeMoreWaitsForItsChunkThenForNoMoreThanTheDeadline() throws {
        let queue = IngestQueue(maxMessages: 1000, maxBytes: 1_000_000)
        queue.push(message(1))
        queue.push(message(2))
        let taken = Mutex<[IncomingMessage]?>(nil)
        let writer = onThread {
            let chunk = queue.takeMore(limit: 10, wanted: 3, until: Date(timeIntervalSinceNow: 60))
            taken.withLock { $0 = chunk }
        }
        #expect(writer.wait(timeout: .now() + 0.3) == .timedOut, "two of the three it waits for")
        queue.push(message(3))
        #expect(writer.wait(timeout: .now() + 30) == .success)
        #expect(taken.withLock { $0?.map(\.receivedAt.millisecondsSince1970) } == [1, 2, 3])
        let start = ContinuousClock.now
        #expect(queue.takeMore(limit: 10, wanted: 3, until: Date(timeIntervalSinceNow: 0.2)).isEmpty)
        #expect(ContinuousClock.now - start >= .milliseconds(150))
        #expect(queue.takeMore(limit: 0, wanted: 3, until: Date(timeIntervalSinceNow: 60)).isEmpty, "a full batch takes nothing more")
        queue.push(message(4))
        queue.push(message(5))
        #expect(queue.takeMore(limit: 1, wanted: 1, until: Date(timeIntervalSinceNow: 60)).map(\.receivedAt.millisecondsSince1970) == [4])
        #expect(queue.pending == 5, "taken is still held until committed")
    }

    @Test func takeMoreDoesNotWaitWhileTheLoopWaitsForRoom() throws {
        let queue = IngestQueue(maxMessages: 3, maxBytes: 1_000_000)
        queue.push(message(1))
        let batch = try #require(queue.take(limit: 10, trigger: 1, linger: 0))
        queue.push(message(2))
        let pushed = onThread { queue.push(self.message(3)) }
        #expect(pushed.wait(timeout: .now() + 0.3) == .timedOut)
        // The bound is reached: only a commit makes room, so the batch takes what waits and stops.
        let start = ContinuousClock.now
        let more = queue.takeMore(limit: 10, wanted: 100, until: Date(timeIntervalSinceNow: 60))
        #expect(more.map(\.receivedAt.millisecondsSince1970) == [2, 3])
        #expect(queue.takeMore(limit: 10, wanted: 100, until: Date(timeIntervalSinceNow: 60)).isEmpty)
        #expect(ContinuousClock.now - start < .seconds(30))
        #expect(queue.committed(batch + more) == 0)
        #expect(pushed.wait(timeout: .now() + 10) == .success)
    }

    @Test func messagesPutBackComeFirstAndStayHeld() throws {
        let queue = IngestQueue(maxMessages: 10, maxBytes: 1_000_000)
        for index in 1...3 { queue.push(message(index)) }
        let taken = try #require(queue.take(limit: 2, trigger: 1, linger: 0))
        queue.putBack(taken)
        #expect(queue.pending == 3)
        #expect(queue.take(limit: 10, trigger: 1, linger: 0)?.map(\.receivedAt.millisecondsSince1970) == [1, 2, 3])
    }
}

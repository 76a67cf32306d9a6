import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import HubTestSupport
import HubCore
import Shared
import Testing

/// The limits that keep the hub answering under load: a gate that lets a bounded number of
/// requests work and refuses the rest quickly with 503 and Retry-After, and the map of a database
/// locked past its timeout to the same answer.
@Suite struct RequestLimitsTests {
    @Test func theGateLetsInUpToItsPermitsThenQueuesInOrder() async throws {
        let gate = AsyncGate(permits: 2, maxWaiting: 10)
        #expect(await gate.acquire(timeout: .seconds(1)))
        #expect(await gate.acquire(timeout: .seconds(1)))
        #expect(gate.load == (available: 0, waiting: 0))
        let order = Locked<[Int]>([])
        let first = Task { if await gate.acquire(timeout: .seconds(30)) { order.mutate { $0.append(1) } } }
        try await waitUntil("the first waiter queued") { gate.load.waiting == 1 }
        let second = Task { if await gate.acquire(timeout: .seconds(30)) { order.mutate { $0.append(2) } } }
        try await waitUntil("the second waiter queued") { gate.load.waiting == 2 }
        gate.release()
        await first.value
        gate.release()
        await second.value
        #expect(order.value == [1, 2], "the oldest waiter goes first")
        #expect(gate.load == (available: 0, waiting: 0))
    }

    @Test func aWaiterIsRefusedAfterItsTimeoutAndHoldsNothing() async throws {
        let gate = AsyncGate(permits: 1, maxWaiting: 10)
        #expect(await gate.acquire(timeout: .seconds(1)))
        let started = ContinuousClock.now
        #expect(await gate.acquire(timeout: .milliseconds(50)) == false)
        #expect(ContinuousClock.now - started < .seconds(60), "refused at its timeout, not left hanging (a generous bound: other suites share the two cores)")
        #expect(gate.load == (available: 0, waiting: 0), "the refused waiter left the queue")
        gate.release()
        #expect(gate.load == (available: 1, waiting: 0), "the permit came back, not to the refused waiter")
        #expect(await gate.acquire(timeout: .milliseconds(50)))
    }

    @Test func aFullQueueIsRefusedAtOnce() async throws {
        let gate = AsyncGate(permits: 1, maxWaiting: 1)
        #expect(await gate.acquire(timeout: .seconds(1)))
        let waiting = Task { await gate.acquire(timeout: .seconds(30)) }
        try await waitUntil("one waiter queued") { gate.load.waiting == 1 }
        let started = ContinuousClock.now
        #expect(await gate.acquire(timeout: .seconds(30)) == false)
        #expect(ContinuousClock.now - started < .seconds(20), "refused without waiting its 30 s")
        gate.release()
        #expect(await waiting.value)
    }

    /// A router with one slow route behind the limit and `/healthz` outside it.
    func router(gate: AsyncGate, release: Locked<Bool>) -> Router<HubRequestContext> {
        let router = Router(context: HubRequestContext.self)
        router.middlewares.add(ServingMiddleware<HubRequestContext>(inFlight: InFlightRequests()))
        router.middlewares.add(JSONErrorMiddleware<HubRequestContext>())
        router.get("healthz") { _, _ in "ok" }
        router.group("api").add(middleware: ConcurrencyLimitMiddleware<HubRequestContext>(gate: gate, queueTimeout: .milliseconds(100)))
            .get("slow") { _, _ in
                while !release.value { try await Task.sleep(for: .milliseconds(5)) }
                return "done"
            }
        router.get("locked") { _, _ -> String in
            throw DatabaseError(resultCode: .SQLITE_BUSY, message: "database is locked")
        }
        return router
    }

    @Test func pastTheQueueTimeoutTheAnswerIs503WithRetryAfterAndHealthStillAnswers() async throws {
        let gate = AsyncGate(permits: 1, maxWaiting: 10)
        let release = Locked(false)
        try await Application(router: router(gate: gate, release: release)).test(.live) { client in
            // On a connection of its own: one HTTP/1.1 connection answers its requests in order.
            let port = try #require(client.port)
            let slow = Task {
                try await TestClient.withClient(host: "127.0.0.1", port: port) { other in try await other.get("/api/slow").head.status }
            }
            try await waitUntil("the slow request holds the permit") { gate.load.available == 0 }
            try await client.execute(uri: "/api/slow", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(response.headers[.retryAfter] == "1")
                let body = try JSONDecoder().decode(ErrorBody.self, from: Data(String(buffer: response.body).utf8))
                #expect(body.error.code == "busy")
            }
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            release.mutate { $0 = true }
            #expect(try await slow.value.code == 200)
        }
        #expect(gate.load == (available: 1, waiting: 0))
    }

    @Test func aDatabaseLockedPastItsTimeoutIs503WithRetryAfter() async throws {
        let release = Locked(true)
        try await Application(router: router(gate: AsyncGate(permits: 1, maxWaiting: 1), release: release)).test(.router) { client in
            try await client.execute(uri: "/locked", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(response.headers[.retryAfter] == "1")
            }
        }
    }

    @Test func servingMiddlewareMarksTheRequestAndCountsItInFlight() async throws {
        let inFlight = InFlightRequests()
        let router = Router(context: HubRequestContext.self)
        router.middlewares.add(ServingMiddleware<HubRequestContext>(inFlight: inFlight))
        router.get("probe") { _, _ in "\(BlockingAccessGuard.isServing) \(inFlight.describe().joined())" }
        try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/probe", method: .get) { response in
                let text = String(buffer: response.body)
                #expect(text.hasPrefix("true GET /probe (running "), "\(text)")
            }
        }
        #expect(inFlight.snapshot.isEmpty, "the request left the list when it was answered")
        #expect(BlockingAccessGuard.isServing == false, "outside a request nothing is marked")
    }
}

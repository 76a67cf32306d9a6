import EnergyCore
import EnergyHub
import Foundation
import GRDB
import HTTPTypes
import HubTestSupport
import Logging
import HummingbirdTesting
import NIOCore
import HubCore
import Shared
import Synchronization
import Testing
import HubTools

/// Issue 16: eight residents opening their page at once froze the whole hub (both threads of
/// Swift's pool blocked in a synchronous database read). Here the real `community-hub serve`, on
/// the demo's data with a real broker and ingest running, takes 64 concurrent connections over
/// every read route: every request must be answered (2xx, or 503 with Retry-After when the hub
/// is busy), `/healthz` must answer within 100 ms throughout, and SIGTERM must end the process
/// within 10 seconds afterwards.
///
/// It measures latency, so it runs alone, not beside the other suites that share the two cores:
/// `HUB_LOAD_TESTS=1 swift test --skip-build --filter ServingUnderLoadTests` (the README's test
/// command and `.ci/run` do).
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["HUB_LOAD_TESTS"] == "1", "set HUB_LOAD_TESTS=1 and run it alone"))
struct ServingUnderLoadTests {
    static let connections = 64
    static let loadDuration = Duration.seconds(4)

    /// `GET /healthz` over a new blocking connection (5 s at most to send or to read): the status, or nil.
    static func healthzStatus(port: Int) -> Int? {
        guard let fd = BrokerProcess.connectLoopback(port: port) else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let request = Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == request.count else { return nil }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1_024)
        // The status line is all that is needed: "HTTP/1.1 200 OK".
        while !received.contains(UInt8(ascii: "\n")) {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { break }
            received.append(contentsOf: buffer[..<count])
        }
        let line = String(decoding: received.prefix { $0 != UInt8(ascii: "\r") }, as: UTF8.self)
        let parts = line.split(separator: " ")
        return parts.count >= 2 ? Int(parts[1]) : nil
    }

    struct Outcome: Sendable {
        var statuses: [Int: Int] = [:]
        var failures: [String] = []
        var missingRetryAfter = 0
    }

    @Test func everyReadRouteAnswersUnder64ConnectionsAndTheHubStillStops() async throws {
        let directory = try TestSupport.temporaryDirectory("load")
        let database = directory.appendingPathComponent("demo.sqlite").path

        // The demo's data (3 estates, 126 dwellings, a week of readings, the car-share) and logins.
        let demo = try HubChild(arguments: ["demo", "--db", database, "--no-serve", "--weeks", "1", "--step-minutes", "30"], directory: directory, name: "demo")
        #expect(try await demo.waitForExit(timeout: 240) == 0, "\(demo.log)")
        // A token per demo login, made as staff would (`tokens create`).
        var tokens: [Role: String] = [:]
        for role in Role.allCases {
            let command = try HubChild(arguments: ["tokens", "create", "demo-\(role.rawValue)", "--db", database], directory: directory, name: "token-\(role.rawValue)")
            #expect(try await command.waitForExit(timeout: 30) == 0, "\(command.log)")
            tokens[role] = command.log.split(separator: "\n").last { $0.hasPrefix("chub_") }.map(String.init)
        }
        #expect(tokens.count == Role.allCases.count, "a token for every demo login")
        let bearer = tokens
        let member = try await DatabaseQueue(path: database).read { db in
            try Int64.fetchOne(db, sql: "SELECT id FROM carshare_member WHERE dwelling_id = 'DEMO-OUT-A-01' ORDER BY id LIMIT 1")
        }
        let residentMember = try #require(member, "the demo resident's household has a car-share member")

        // The production path: `serve` on that file with a broker of its own.
        let broker = try BrokerProcess(workingDirectory: directory.appendingPathComponent("broker"), persistence: false)
        try broker.start()
        defer { broker.stop() }
        let hub = try HubChild(database: database, mqttPort: broker.port, directory: directory, name: "serve")
        try await waitUntil(timeout: .seconds(60), "the hub listens") { hub.log.contains("HTTP listening") || !hub.process.isRunning }
        let port = try #require(hub.httpPort)
        try await waitUntil(timeout: .seconds(30), "the hub is ready") { hub.log.contains("connected to the MQTT broker") || !hub.process.isRunning }

        // Meters keep publishing while the pages are read: ingest writes beside the readers.
        let publisher = MosquittoClient(settings: { var mqtt = MQTTSettings(); mqtt.port = broker.port; return mqtt }(), password: nil,
                                        clientId: "load-meters", cleanSession: true, logger: .init(label: "load-meters"), onMessage: { _ in })
        try publisher.start()
        defer { publisher.stop() }

        let today = LocalTimeZone.paris.localDate(of: Instant.now())
        let period = "from=\(today.advanced(by: -7))&to=\(today)"
        let routes: [(String, Role)] = [
            ("/api/v1/dwellings/DEMO-OUT-A-01/energy?\(period)", .resident),
            ("/api/v1/buildings/DEMO-OUT-A/energy?\(period)", .association),
            ("/api/v1/estates/DEMO-OUTREAU/energy?\(period)", .association),
            ("/api/v1/devices/demo-box-OUT-A-01/readings?from=\(today.advanced(by: -1))", .staff),
            ("/api/v1/quarantine", .staff),
            ("/api/v1/carshare/members/\(residentMember)/statement", .resident),
            ("/api/v1/carshare/bookings", .association),
            ("/api/v1/carshare/reports/balances", .staff),
            ("/api/v1/me", .resident),
        ]
        // Each route answers 200 on its own first: the load below then measures serving, not errors.
        for (path, role) in routes {
            let status = try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
                try await client.get(path, headers: [.authorization: "Bearer \(bearer[role]!)"]).head.status.code
            }
            #expect(status == 200, "\(path) as \(role)")
        }

        let outcome = Locked(Outcome())
        let healthLatencies = Locked<[Duration]>([])
        let healthStatuses = Locked<[Int?]>([])
        let stop = ContinuousClock.now + Self.loadDuration
        let publishing = Task {
            var step: Int64 = 0
            while ContinuousClock.now < stop {
                step += 1
                try? publisher.publish(topic: "meters/demo-box-OUT-B-0\(step % 9 + 1)/reading", payload: canonicalPayload(Instant.now(), 1_000_000 + step))
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        // `/healthz` on a fresh connection every 50 ms, as a load balancer would ask, from a thread
        // of its own with blocking sockets: probed from Swift's pool, the answer's latency also
        // counted the wait for a pool thread behind the 64 load tasks of this process.
        let probing = DispatchSemaphore(value: 0)
        Thread {
            while ContinuousClock.now < stop {
                let started = ContinuousClock.now
                let status = Self.healthzStatus(port: port)
                let latency = ContinuousClock.now - started
                healthLatencies.mutate { $0.append(latency) }
                healthStatuses.mutate { $0.append(status) }
                Thread.sleep(forTimeInterval: 0.05)
            }
            probing.signal()
        }.start()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<Self.connections {
                group.addTask {
                    let (path, role) = routes[worker % routes.count]
                    let headers: HTTPFields = [.authorization: "Bearer \(bearer[role]!)"]
                    var client = TestClient(host: "127.0.0.1", port: port, configuration: .init(timeout: .seconds(20)))
                    client.connect()
                    while ContinuousClock.now < stop {
                        do {
                            let connection = client
                            let response = try await withDeadline(.seconds(10)) { try await connection.get(path, headers: headers) }
                            let code = Int(response.head.status.code)
                            outcome.mutate { outcome in
                                outcome.statuses[code, default: 0] += 1
                                if code == 503 && response.head.headerFields[.retryAfter] == nil { outcome.missingRetryAfter += 1 }
                            }
                        } catch {
                            outcome.mutate { $0.failures.append("\(path): \(error)") }
                            try? await client.shutdown()
                            client = TestClient(host: "127.0.0.1", port: port, configuration: .init(timeout: .seconds(20)))
                            client.connect()
                        }
                    }
                    try? await client.shutdown()
                }
            }
            try await group.waitForAll()
        }
        await BlockingWork.run { probing.wait() }
        publishing.cancel()

        let result = outcome.value
        let latencies = healthLatencies.value.sorted()
        let answered = result.statuses.values.reduce(0, +)
        let ok = result.statuses.filter { (200..<300).contains($0.key) }.values.reduce(0, +)
        print("load: \(answered) answers in \(Self.loadDuration) over \(Self.connections) connections: \(result.statuses.sorted { $0.key < $1.key }); "
              + "healthz max \(latencies.last ?? .zero) over \(latencies.count) probes")
        #expect(result.failures.isEmpty, "requests left unanswered: \(result.failures.prefix(5))")
        #expect(Set(result.statuses.keys).isSubset(of: [200, 503]), "only 2xx or 503: \(result.statuses)")
        #expect(result.missingRetryAfter == 0, "every 503 says when to retry")
        #expect(ok > Self.connections, "the hub served, not only refused: \(result.statuses)")
        #expect(latencies.count >= 20, "healthz was asked throughout")
        #expect(healthStatuses.value.allSatisfy { $0 == 200 }, "healthz answered 200 every time: \(healthStatuses.value.filter { $0 != 200 })")
        #expect((latencies.last ?? .seconds(99)) < .milliseconds(100), "healthz within 100 ms throughout: \(latencies.suffix(5))")

        // Still serving after the load, then SIGTERM ends it in bounded time.
        let afterClient = TestClient(host: "127.0.0.1", port: port)
        afterClient.connect()
        let after = try? await withDeadline(.seconds(5)) { try await afterClient.get("/healthz").head.status.code }
        #expect(after == 200, "healthz after the load")
        let signalled = ContinuousClock.now
        hub.signal(SIGTERM)
        let status = try await hub.waitForExit(timeout: 10)
        #expect(status != nil, "SIGTERM ended the process within 10 s (took \(ContinuousClock.now - signalled)): \(hub.log.suffix(2000))")
        #expect(hub.log.contains("ingest stopped"), "ingest drained before the exit")
    }
}

import CarShare
import CarShareCore
import EnergyCore
import EnergyHub
import Foundation
import HTTPTypes
import HubCore
import HubTestSupport
import HummingbirdTesting
import Logging
import NIOCore
import PostgresNIO
import Shared
import Testing
import HubTools

/// Three real `community-hub serve` processes, one mosquitto broker and one PostgreSQL server on
/// loopback, sharing the meters through a shared subscription (`$share/hubs/...`), each with its
/// own client id and persistent session: 200,000 readings from 2,000 devices; one process SIGKILLed
/// mid-stream and restarted; the figures every process serves; the process holding the background
/// work killed and the work taken over.
@Suite(.serialized) struct SeveralProcessesTests {
    static let buildings = 50
    static let dwellingsPerBuilding = 39
    static let minutes = 100
    static var devices: Int { buildings * (dwellingsPerBuilding + 1) }
    static var total: Int { devices * minutes }

    /// 50 buildings of 39 dwellings with a meter each and one PV installation: 2,000 devices.
    static var registryCSV: String {
        var lines = ["estate;building;dwelling;device;kind;format;since"]
        for building in 1...buildings {
            lines.append("E;B\(building);;pv-\(building);pv;canonical;2025-01-01")
            for dwelling in 1...dwellingsPerBuilding {
                lines.append("E;B\(building);B\(building)-D\(dwelling);m-\(building)-\(dwelling);meter;canonical;2025-01-01")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func topics(minute: Int, buildings chosen: ClosedRange<Int> = 1...buildings) -> [(String, Int64)] {
        var messages: [(String, Int64)] = []
        for building in chosen {
            messages.append(("meters/pv-\(building)/reading", Int64(minute * 30)))
            for dwelling in 1...dwellingsPerBuilding {
                messages.append(("meters/m-\(building)-\(dwelling)/reading", Int64(1_000_000 + minute * (4 + dwelling % 5))))
            }
        }
        return messages
    }

    /// A hub process on the shared PostgreSQL server.
    final class Hub: @unchecked Sendable {
        let name: String
        let httpPort: Int
        let child: HubChild
        init(name: String, httpPort: Int, child: HubChild) {
            self.name = name
            self.httpPort = httpPort
            self.child = child
        }

        /// The times this process took the background lease (its log).
        var leasesTaken: Int { child.log.components(separatedBy: "background lease taken").count - 1 }
        var leads: Bool { child.process.isRunning && leasesTaken > child.log.components(separatedBy: "background lease lost").count - 1
            + child.log.components(separatedBy: "background lease given up").count - 1 }

        /// Resident and peak memory, from /proc (kB).
        var memory: (rss: Int, peak: Int) {
            let status = (try? String(contentsOfFile: "/proc/\(child.process.processIdentifier)/status", encoding: .utf8)) ?? ""
            func value(_ key: String) -> Int {
                status.split(separator: "\n").first { $0.hasPrefix(key) }.flatMap { Int($0.split(separator: " ").dropFirst().first { !$0.isEmpty }.map(String.init) ?? "") } ?? 0
            }
            return (value("VmRSS:"), value("VmHWM:"))
        }
    }

    struct Setup {
        let directory: URL
        let broker: BrokerProcess
        let url: String
        let config: String
    }

    func setUp(_ name: String) async throws -> (Setup, PostgresLocation) {
        let directory = try TestSupport.temporaryDirectory(name)
        let broker = try BrokerProcess(workingDirectory: directory.appendingPathComponent("broker"), persistence: true)
        try broker.start()
        // An empty database: the first command and the hubs apply the schema themselves.
        let location = try await PostgresTestServer.database(name)
        let config = directory.appendingPathComponent("hub.json").path
        try Data("""
            {"ingest": {"topics": {"canonical": "$share/hubs/meters/+/reading", "teleinfo": "$share/hubs/teleinfo/+",
                                   "tasmota": "$share/hubs/tele/+/SENSOR", "opendtu": "$share/hubs/solar/+/0/yieldtotal"}},
             "energy": {"upkeepIntervalMilliseconds": 200},
             "auth": {"bcryptCost": 4},
             "database": {"startupCheckSeconds": 0}}
            """.utf8).write(to: URL(fileURLWithPath: config))
        return (Setup(directory: directory, broker: broker, url: PostgresTestServer.url(location), config: config), location)
    }

    func start(_ setup: Setup, name: String, httpPort: Int? = nil) async throws -> Hub {
        let port = try httpPort ?? BrokerProcess.freeLoopbackPort()
        let child = try HubChild(arguments: ["serve", "--config", setup.config, "--database-url", setup.url, "--mqtt-port", "\(setup.broker.port)",
                                             "--http-port", "\(port)", "--mqtt-client-id", name],
                                 directory: setup.directory, name: "\(name)-\(UUID().uuidString.prefix(4))")
        try await waitUntil(timeout: .seconds(60), "\(name) connected") { child.log.contains("connected to the MQTT broker") || !child.process.isRunning }
        #expect(child.process.isRunning, "\(child.log)")
        return Hub(name: name, httpPort: port, child: child)
    }

    /// `community-hub ARGS --database-url URL` to its end.
    func command(_ setup: Setup, _ arguments: [String], input: String? = nil) async throws -> String {
        let (status, output) = try await TestSupport.run(HubChild.executable.path, arguments + ["--config", setup.config, "--database-url", setup.url], input: input)
        #expect(status == 0, "\(arguments): \(output)")
        #expect(!output.contains("warning"), "\(output)")
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The `id` of what a car-share command printed (JSON).
    func id(_ output: String) throws -> Int64 {
        let object = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]
        return try #require((object?["id"] as? NSNumber)?.int64Value, "\(output)")
    }

    func get(_ hub: Hub, _ path: String, token: String) async throws -> (status: Int, body: String) {
        let response = try await TestClient.withClient(host: "127.0.0.1", port: hub.httpPort) { client in
            try await client.get(path, headers: [.authorization: "Bearer \(token)"])
        }
        return (Int(response.head.status.code), response.body.map { String(buffer: $0) } ?? "")
    }

    func count(_ postgres: HubPostgres, _ sql: String) async throws -> Int {
        Int(try await postgres.read { try await $0.scalar(PostgresQuery(unsafeSQL: sql), as: Int64.self, logger: postgres.logger) } ?? -1)
    }

    /// Publishes `minutes` of readings of every device at QoS 1 from a thread of its own, a little
    /// over 10,000 messages a second, so a kill lands mid-stream.
    func publish(_ publisher: MosquittoClient, minutes: Range<Int>, start: Instant, buildings: ClosedRange<Int> = 1...buildings) -> Task<Int, any Error> {
        Task {
            try await BlockingWork.run {
                var sent = 0
                for minute in minutes {
                    let at = start.adding(seconds: Int64(minute) * 60)
                    for (topic, energy) in Self.topics(minute: minute, buildings: buildings) {
                        try publisher.publish(topic: topic, payload: canonicalPayload(at, energy))
                        sent += 1
                        if sent % 500 == 0 { Thread.sleep(forTimeInterval: 0.04) }
                    }
                }
                return sent
            }
        }
    }

    /// Waits until `condition` (asked every 200 ms) holds, or `timeout` passes; true when it held.
    func eventually(_ timeout: Duration, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(200))
        }
        return try await condition()
    }

    /// Five minutes on 2 cores, and it takes both: run alone, as `.ci/run` does (HUB_SEVERAL_PROCESSES_TESTS=1).
    @Test(.enabled(if: ProcessInfo.processInfo.environment["HUB_SEVERAL_PROCESSES_TESTS"] == "1", "run alone: HUB_SEVERAL_PROCESSES_TESTS=1"))
    func threeProcessesShareTheMetersLoseWithinTheBoundAndHandOverTheBackgroundWork() async throws {
        let (setup, location) = try await setUp("several")
        defer { setup.broker.kill() }
        let registryFile = setup.directory.appendingPathComponent("registry.csv").path
        try Data(Self.registryCSV.utf8).write(to: URL(fileURLWithPath: registryFile))
        // The landlord's staff set it up with the same commands as on the SQLite file.
        let imported = try await command(setup, ["registry", "import", registryFile])
        #expect(imported.contains("2000"), "\(imported)")
        _ = try await command(setup, ["users", "add", "staff", "--role", "staff"], input: "a long staff password\n")
        let token = String(try await command(setup, ["tokens", "create", "staff"]).split(separator: "\n").last ?? "")
        #expect(token.hasPrefix("chub_"))

        try await HubPostgres(location, maximumConnections: 2).withRunning { postgres in
            var hubs = [try await start(setup, name: "hub-1"), try await start(setup, name: "hub-2"), try await start(setup, name: "hub-3")]
            defer { for hub in hubs { hub.child.signal(SIGKILL) } }
            let publisher = MosquittoClient(settings: setup.broker.clientSettings, password: nil, clientId: "meters-\(UUID().uuidString.prefix(6))",
                                                cleanSession: false, logger: Logger(label: "meters"), onMessage: { _ in })
            try publisher.start()
            defer { _ = publisher.stop() }
            #expect(try await eventually(.seconds(10)) { publisher.isConnected })
            // Ends 70 minutes ago: the 40 minutes after it, published later for one building, complete a
            // 30-minute slot before now.
            let first = Instant(millisecondsSince1970: (Instant.now().millisecondsSince1970 / 60_000 - Int64(Self.minutes) - 70) * 60_000)
            let clock = ContinuousClock.now
            let publishing = publish(publisher, minutes: 0..<Self.minutes, start: first)

            // hub-2 killed once a third is stored, then started again under the same client id.
            #expect(try await eventually(.seconds(120)) { try await count(postgres, "SELECT COUNT(*) FROM reading") >= Self.total / 3 })
            hubs[1].child.signal(SIGKILL)
            _ = try await hubs[1].child.waitForExit()
            let storedAtKill = try await count(postgres, "SELECT COUNT(*) FROM reading")
            hubs[1] = try await start(setup, name: "hub-2", httpPort: hubs[1].httpPort)
            let sent = try await publishing.value
            #expect(sent == Self.total)
            #expect(publisher.waitUntilAcknowledged(timeout: .seconds(60)))
            // All of it, or all but what the killed process held in memory (then still for 10 s:
            // a loaded machine may pause the writers a few seconds).
            var last = -1
            var stable = 0
            _ = try await eventually(.seconds(400)) {
                let stored = try await count(postgres, "SELECT COUNT(*) FROM reading")
                stable = stored == last ? stable + 1 : 0
                last = stored
                return stored == Self.total || (stored >= Self.total - IngestSettings().maxBatch && stable >= 50)
            }
            let elapsed = ContinuousClock.now - clock
            let stored = try await count(postgres, "SELECT COUNT(*) FROM reading")
            let lost = Self.total - stored
            #expect(storedAtKill < Self.total, "the kill must land mid-stream")
            #expect(lost >= 0 && lost <= IngestSettings().maxBatch, "lost \(lost) readings; the bound is one batch of the killed process (\(IngestSettings().maxBatch))")
            // Redelivered messages are duplicates, stored once and never taken for conflicts.
            #expect(try await count(postgres, "SELECT COUNT(*) FROM quarantine") == 0)
            #expect(try await count(postgres, "SELECT COUNT(*) FROM (SELECT device_id, instant FROM reading GROUP BY device_id, instant HAVING COUNT(*) > 1) d") == 0)
            // What each process committed since its start (the broker spread the messages among them).
            let shares = try await hubs.asyncMap { hub in
                try await get(hub, "/metrics", token: token).body.split(separator: "\n").first { $0.hasPrefix("hub_ingest_batch_size_sum") }
                    .flatMap { $0.split(separator: " ").last.flatMap { Double($0) } } ?? -1
            }
            #expect(shares.allSatisfy { $0 > 0 }, "every process took its share: \(shares)")
            print("several processes: SIGKILL of hub-2 at \(storedAtKill)/\(Self.total) stored; \(stored) stored, \(lost) lost, in \(elapsed); "
                  + "messages committed per process since its start \(shares.map { Int($0) })")

            // The figures: brought up to date by the one process holding the lease, the same from every process.
            #expect(try await eventually(.seconds(240)) {
                try await count(postgres, "SELECT (SELECT COUNT(*) FROM reading_change) + (SELECT COUNT(*) FROM reading_change_log) + (SELECT COUNT(*) FROM savings_dirty)") == 0
            }, "the savings upkeep caught up")
            let zone = LocalTimeZone.paris
            let from = zone.localDate(of: first), to = zone.localDate(of: Instant.now())
            let path = "/api/v1/estates/E/energy?from=\(from)&to=\(to)"
            let answers = try await hubs.asyncMap { try await get($0, path, token: token) }
            #expect(answers.allSatisfy { $0.status == 200 }, "\(answers)")
            #expect(Set(answers.map(\.body)).count == 1, "every process serves the same figures")
            let building = try await hubs.asyncMap { try await get($0, "/api/v1/buildings/B7/energy?from=\(from)&to=\(to)", token: token).body }
            #expect(Set(building).count == 1)
            #expect(try await count(postgres, "SELECT COUNT(*) FROM dwelling_slot") > 0)
            #expect(hubs.filter(\.leads).count == 1, "one process holds the background work: \(hubs.map(\.leads))")

            // The leader killed: another takes the lease, and the figures follow new readings again.
            let leading = hubs.firstIndex(where: \.leads)
            let leader = try #require(leading)
            let takenBefore = hubs.map(\.leasesTaken)
            hubs[leader].child.signal(SIGKILL)
            let killedAt = ContinuousClock.now
            _ = try await hubs[leader].child.waitForExit()
            let others = hubs.indices.filter { $0 != leader }
            #expect(try await eventually(.seconds(30)) { others.contains { hubs[$0].leasesTaken > takenBefore[$0] } })
            let takeover = ContinuousClock.now - killedAt
            print("several processes: the background work taken over \(takeover) after SIGKILL of its holder")
            #expect(takeover < .seconds(15))
            let more = publish(publisher, minutes: Self.minutes..<(Self.minutes + 40), start: first, buildings: 7...7)
            let added = try await more.value
            #expect(publisher.waitUntilAcknowledged(timeout: .seconds(60)))
            let caughtUp = try await eventually(.seconds(240)) {
                let now = try await count(postgres, "SELECT COUNT(*) FROM reading")
                let queued = try await count(postgres, "SELECT (SELECT COUNT(*) FROM reading_change) + (SELECT COUNT(*) FROM reading_change_log) + (SELECT COUNT(*) FROM savings_dirty)")
                return now >= stored + added - IngestSettings().maxBatch && queued == 0
            }
            #expect(caughtUp, "the new holder keeps the figures up to date")
            let after = try await others.asyncMap { try await get(hubs[$0], "/api/v1/buildings/B7/energy?from=\(from)&to=\(to)", token: token).body }
            #expect(Set(after).count == 1 && after.first != building.first, "the figures moved with the new readings, the same on both")
            for index in others {
                let memory = hubs[index].memory
                print("several processes: \(hubs[index].name) resident \(memory.rss / 1024) MiB, peak \(memory.peak / 1024) MiB")
            }
            for index in others {
                hubs[index].child.signal(SIGTERM)
                #expect(try await hubs[index].child.waitForExit(timeout: 30) == 0, "\(hubs[index].child.log.suffix(2000))")
            }
        }
    }

    /// The car's booking rule across processes: 24 requests for one slot at once, spread over two
    /// hub processes sharing one PostgreSQL server: exactly one is booked, 23 are told it is taken.
    @Test func twoProcessesOnOneServerBookOneSlotExactlyOnce() async throws {
        let (setup, location) = try await setUp("booking")
        defer { setup.broker.kill() }
        _ = try await command(setup, ["users", "add", "staff", "--role", "staff"], input: "a long staff password\n")
        let token = String(try await command(setup, ["tokens", "create", "staff"]).split(separator: "\n").last ?? "")
        let zone = LocalTimeZone.paris
        let now = Instant.now()
        // Staff type in the car, the member and her membership with the same commands as on SQLite.
        let vehicle = try id(try await command(setup, ["carshare", "vehicles", "add", "Zoé", "--plate", "GA-123-BC", "--battery-wh", "52000", "--odometer-km", "12000"]))
        let member = try id(try await command(setup, ["carshare", "members", "add", "Alice Martin"]))
        _ = try await command(setup, ["carshare", "memberships", "buy", "\(member)"])
        try await HubPostgres(location, maximumConnections: 2).withRunning { postgres in
            let day = zone.localDate(of: now).advanced(by: 3)
            let start = try #require(zone.instants(of: LocalDateTime(date: day, hour: 10, minute: 0)).first)
            let body = String(decoding: try HubJSON.encoder.encode(NewBooking(vehicle: vehicle, rider: member, start: start, end: start.adding(seconds: 3600),
                                                                              purpose: "Rendez-vous médical")), as: UTF8.self)
            let hubs = [try await self.start(setup, name: "hub-a"), try await self.start(setup, name: "hub-b")]
            defer { for hub in hubs { hub.child.signal(SIGKILL) } }
            let headers: HTTPFields = [.authorization: "Bearer \(token)", .contentType: "application/json"]
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for index in 0..<24 {
                    let port = hubs[index % 2].httpPort
                    group.addTask {
                        // One connection per request, so they really are in flight together.
                        try await TestClient.withClient(host: "127.0.0.1", port: port) { connection in
                            try await connection.execute(.init("/api/v1/carshare/bookings", method: .post, headers: headers, body: ByteBuffer(string: body))).status
                        }
                    }
                }
                var all: [HTTPResponse.Status] = []
                for try await status in group { all.append(status) }
                return all
            }
            #expect(statuses.filter { $0 == .created }.count == 1, "\(statuses)")
            #expect(statuses.filter { $0 == .conflict }.count == 23, "\(statuses)")
            #expect(try await count(postgres, "SELECT COUNT(*) FROM carshare_booking") == 1)
            // Failed logins are counted in the database: five wrong passwords spread over both
            // processes are one count, and the sixth attempt waits, even with the right password.
            func login(_ hub: Hub, _ password: String) async throws -> HTTPResponse.Status {
                let body = ByteBuffer(string: #"{"name": "staff", "password": "\#(password)"}"#)
                return try await TestClient.withClient(host: "127.0.0.1", port: hub.httpPort) { connection in
                    try await connection.execute(.init("/api/v1/sessions", method: .post, headers: [.contentType: "application/json"], body: body)).status
                }
            }
            for attempt in 0..<4 { #expect(try await login(hubs[attempt % 2], "a wrong password") == .unauthorized) }
            // Timed from before the fifth attempt: the server counts the failure before it answers
            // (and a failed login's answer is slowed), so the wait it starts is no earlier than this.
            let fifth = ContinuousClock.now
            #expect(try await login(hubs[0], "a wrong password") == .unauthorized)
            #expect(try await count(postgres, "SELECT failures FROM login_failure WHERE kind = 'name' AND key = 'staff'") == 5, "one count for both processes")
            let sixth = try await login(hubs[1], "a long staff password")
            // The wait after the fifth failure is one second: a loaded machine may have let it pass.
            if ContinuousClock.now - fifth < .milliseconds(900) { #expect(sixth == .tooManyRequests) }
            for hub in hubs {
                hub.child.signal(SIGTERM)
                #expect(try await hub.child.waitForExit(timeout: 30) == 0)
            }
        }
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}

import EnergyCore
import EnergyHub
import Foundation
import GRDB
import HTTPTypes
import HubCore
import HubTestSupport
import HubTools
import HummingbirdTesting
import NIOCore
import Shared
import Testing

/// Issue 14, defect 14 and "Also build: backup and restore", where they were seen: the real
/// `community-hub` binary, a real broker and real SQLite files. A database with random bytes in its
/// last page or in the middle was served without complaint (`/readyz` 200, ingest going on while
/// SQLite logged "database disk image is malformed"); a backup taken while readings flow must
/// bring back every reading committed before it began and every ledger entry.
@Suite(.serialized) struct DatabaseOperationsTests {
    static let devices = 12

    static var registry: String {
        "estate;building;dwelling;device;kind;format;since\n"
            + (1...devices).map { "E;B;D\($0);box-\($0);meter;canonical;2025-01-01" }.joined(separator: "\n")
    }

    /// Publishes a reading per device every `step` (device time one minute apart) until stopped.
    final class Load: @unchecked Sendable {
        private let lock = NSLock()
        private var stopped = false
        private(set) var published = 0
        let thread: Thread

        init(publisher: MosquittoClient, start: Instant) {
            let box = Box()
            thread = Thread {
                var step: Int64 = 0
                while !(box.load?.isStopped ?? false) {
                    let instant = start.adding(seconds: step * 60)
                    for device in 1...DatabaseOperationsTests.devices {
                        try? publisher.publish(topic: "meters/box-\(device)/reading", payload: canonicalPayload(instant, 1_000_000 + step * 10 + Int64(device)))
                    }
                    box.load?.add(DatabaseOperationsTests.devices)
                    step += 1
                    Thread.sleep(forTimeInterval: 0.002)
                }
            }
            box.load = self
            thread.start()
        }

        final class Box: @unchecked Sendable { weak var load: Load? }

        var isStopped: Bool { lock.withLock { stopped } }
        func add(_ count: Int) { lock.withLock { published += count } }
        func stop() { lock.withLock { stopped = true } }
    }

    func run(_ arguments: [String], in directory: URL, name: String, timeout: TimeInterval = 120) async throws -> (status: Int32?, log: String) {
        let child = try HubChild(arguments: arguments, directory: directory, name: name)
        let status = try await child.waitForExit(timeout: timeout)
        return (status, child.log)
    }

    func get(_ port: Int, _ path: String) async throws -> (status: Int, body: String) {
        let response = try await TestClient.withClient(host: "127.0.0.1", port: port) { client in try await client.get(path) }
        return (Int(response.head.status.code), response.body.map { String(buffer: $0) } ?? "")
    }

    /// Overwrites page `page` (0-based) of a database file with random bytes.
    static func corrupt(_ path: String, page: Int, pageSize: Int = 4096) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        var generator = SystemRandomNumberGenerator()
        try handle.seek(toOffset: UInt64(page * pageSize))
        try handle.write(contentsOf: Data((0..<pageSize).map { _ in UInt8.random(in: 0...255, using: &generator) }))
        try handle.synchronize()
    }

    /// A real database: readings from a dozen boxes through the broker and the real binary, the
    /// WAL folded into the file.
    func realDatabase(_ harness: IngestHarness, readings: Int) async throws {
        let hub = try HubChild(database: harness.database.path, mqttPort: harness.broker.port, directory: harness.directory, name: "ingest")
        try await waitUntil("the hub connected") { hub.log.contains("connected to the MQTT broker") || !hub.process.isRunning }
        let publisher = try harness.publisher()
        let start = Instant.now().adding(seconds: -Int64(readings / Self.devices + 10) * 60)
        for step in 0..<(readings / Self.devices) {
            for device in 1...Self.devices {
                try publisher.publish(topic: "meters/box-\(device)/reading", payload: canonicalPayload(start.adding(seconds: Int64(step) * 60), 1_000 + Int64(step * 7 + device)))
            }
        }
        #expect(publisher.waitUntilAcknowledged(timeout: .seconds(60)))
        try await waitUntil(timeout: .seconds(60), "every reading stored") { harness.storedReadings == readings }
        publisher.stop()
        hub.signal(SIGTERM)
        #expect(try await hub.waitForExit() == 0)
        _ = try await harness.database.pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    }

    // MARK: - Defect 14

    @Test func aDamagedDatabaseIsNotReadyIsLoggedCountedAndFailsDbCheck() async throws {
        let harness = try IngestHarness(registryCSV: Self.registry)
        try await realDatabase(harness, readings: 36_000)
        let size = try FileManager.default.attributesOfItem(atPath: harness.database.path)[.size] as! Int
        let pages = size / 4096
        #expect(pages > 400, "a file of some size: \(size) bytes")

        // The sound file: db check passes, the hub is ready.
        let sound = try await run(["db", "check", "--db", harness.database.path], in: harness.directory, name: "check-sound")
        #expect(sound.status == 0 && sound.log.contains("database ok"), "\(sound.log)")

        // A damaged schema (the first pages): the file cannot be opened, and the hub says so and stops.
        let schema = harness.directory.appendingPathComponent("schema.sqlite").path
        try FileManager.default.copyItem(atPath: harness.database.path, toPath: schema)
        try Self.corrupt(schema, page: 1)
        let refused = try await run(["serve", "--db", schema, "--mqtt-port", "\(harness.broker.port)", "--http-port", "\(try BrokerProcess.freeLoopbackPort())"],
                                    in: harness.directory, name: "serve-schema", timeout: 30)
        #expect(refused.status == 78 && refused.log.contains("is damaged") && refused.log.contains("restore the last backup"), "\(refused.log)")

        // Damaged data: random bytes over pages the readings' tables use (SQLite's dbstat table
        // says which; the journal's folds leave free pages, whose content no check reads): its last
        // page and one in its middle. A page of the schema makes the file unopenable, the case above.
        let used = try await harness.database.pool.read { db in
            try Int.fetchAll(db, sql: "SELECT pageno FROM dbstat WHERE name IN ('reading_by_device', 'reading_journal') AND pagetype = 'leaf' ORDER BY pageno")
        }
        #expect(used.count > 100, "the readings' tables use \(used.count) leaf pages")
        // Pages are numbered from 1 in SQLite and from 0 by `corrupt`.
        for (name, page) in [("last", (used.last ?? pages) - 1), ("middle", used[used.count / 2] - 1)] {
            let copy = harness.directory.appendingPathComponent("\(name).sqlite").path
            try FileManager.default.copyItem(atPath: harness.database.path, toPath: copy)
            try Self.corrupt(copy, page: page)

            let check = try await run(["db", "check", "--db", copy], in: harness.directory, name: "check-\(name)")
            #expect(check.status == 65, "\(name): \(check.log)")
            #expect(check.log.contains("is damaged") && check.log.contains("restore the last backup"), "\(name): \(check.log)")

            let hub = try HubChild(database: copy, mqttPort: harness.broker.port, directory: harness.directory, name: "serve-\(name)")
            try await waitUntil(timeout: .seconds(60), "\(name): the server listening") { hub.log.contains("HTTP listening") || !hub.process.isRunning }
            try #require(hub.process.isRunning, "\(name): \(hub.log.suffix(3000))")
            let port = try #require(hub.httpPort)
            let ready = try await get(port, "/readyz")
            #expect(ready.status == 503, "\(name): \(ready.body)")
            #expect(ready.body.contains("\"database\":\"corrupt\""), "\(name): \(ready.body)")
            let metrics = try await get(port, "/metrics").body
            #expect(metrics.contains("hub_database_corrupt 1"), "\(name)")
            let errors = metrics.split(separator: "\n").first { $0.hasPrefix("hub_database_corruption_errors_total ") }
            #expect((errors.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0) >= 1, "\(name): \(errors ?? "no counter")")
            #expect(hub.log.contains("the database file is damaged"), "\(name): \(hub.log.suffix(2000))")
            // Nothing is taken from the broker: its persistent session keeps the meters' messages.
            #expect(hub.log.contains("ingest, the savings upkeep and the retention job are not started") && !hub.log.contains("ingest starting"), "\(name)")
            #expect(hub.process.isRunning, "\(name): the hub stays up to say what is wrong")
            hub.signal(SIGTERM)
            _ = try await hub.waitForExit()
        }
    }

    /// Once the file is known damaged it stays not ready, whatever a later write would say; a
    /// "malformed" error met by any access (not only the start-up check) marks it.
    @Test func aMalformedErrorMetLaterMarksTheDatabaseDamaged() async throws {
        let directory = try TestSupport.temporaryDirectory("db-malformed")
        let path = directory.appendingPathComponent("hub.sqlite").path
        let database = try HubDatabase.open(path: path, schemas: [SharedSchema.register])
        try await database.write { db in
            try db.execute(sql: "CREATE TABLE filler (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
            for index in 0..<4_000 { try db.execute(sql: "INSERT INTO filler (text) VALUES (?)", arguments: [String(repeating: "x", count: 100) + "\(index)"]) }
        }
        _ = try await database.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        #expect(database.health.corruption == nil)
        let observed = Counter()
        database.health.onCorruption { _, count in observed.set(count) }
        let pages = (try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int) / 4096
        for page in (pages / 2)..<(pages - 1) { try Self.corrupt(path, page: page) }
        // A fresh read of the table meets the damaged pages.
        await #expect(throws: (any Error).self) {
            try await database.read { db in try Int.fetchOne(db, sql: "SELECT SUM(length(text)) FROM filler") }
        }
        #expect(database.health.corruption != nil && database.health.corruptionErrors >= 1 && observed.value >= 1)
    }

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var stored = 0
        func set(_ value: Int) { lock.withLock { stored = value } }
        var value: Int { lock.withLock { stored } }
    }

    // MARK: - Backup and restore

    @Test func aBackupTakenUnderLoadRestoresEveryCommittedReadingAndLedgerEntry() async throws {
        let harness = try IngestHarness(registryCSV: Self.registry)
        let path = harness.database.path
        let directory = harness.directory
        let hub = try HubChild(database: path, mqttPort: harness.broker.port, directory: directory, name: "hub")
        try await waitUntil("the hub connected") { hub.log.contains("connected to the MQTT broker") || !hub.process.isRunning }
        try #require(hub.process.isRunning, "\(hub.log.suffix(2000))")

        // The car share's ledger, through the commands staff use: a member, last month's
        // membership paid in cash, last month closed (its anchor written beside the database), a
        // payment this month.
        let today = LocalTimeZone.paris.localDate(of: Instant.now())
        let lastMonth = today.firstOfMonth.advanced(by: -1).firstOfMonth
        let day = lastMonth.advanced(by: 4).description
        for (name, arguments) in [("member", ["carshare", "members", "add", "Alice Martin"]),
                                  ("membership", ["carshare", "memberships", "buy", "1", "--on", day]),
                                  ("payment-1", ["carshare", "payments", "add", "--key", "r-1", "1", "8", "--method", "cash", "--on", day]),
                                  ("close", ["ledger", "close-month", String(lastMonth.description.prefix(7))]),
                                  ("payment-2", ["carshare", "payments", "add", "--key", "r-2", "1", "2", "--method", "cash"])] {
            let result = try await run(arguments + ["--db", path], in: directory, name: name)
            try #require(result.status == 0, "\(name): \(result.log)")
        }

        let publisher = try harness.publisher()
        let load = Load(publisher: publisher, start: Instant.now().adding(seconds: -86_400 * 20))
        try await waitUntil(timeout: .seconds(60), "readings flowing") { harness.storedReadings > 3_000 }
        // What is committed before the backup begins, and the ledger.
        let (committed, entries) = try await harness.database.pool.read { db in
            (Set(try Row.fetchAll(db, sql: "SELECT device_id, instant, energy_wh FROM reading").map { "\($0[0] as String) \($0[1] as Int64) \($0[2] as Int64)" }),
             try Row.fetchAll(db, sql: "SELECT number, hash FROM carshare_entry ORDER BY number").map { "\($0[0] as Int64) \($0[1] as String)" })
        }
        #expect(entries.count >= 3)
        let backup = directory.appendingPathComponent("backups/hub-backup.sqlite").path
        let taken = try await run(["backup", "--db", path, "--out", backup], in: directory, name: "backup")
        let storedAfter = harness.storedReadings
        #expect(taken.status == 0, "\(taken.log)")
        #expect(taken.log.contains("backup written") && taken.log.contains("1 anchors"), "\(taken.log)")
        try await waitUntil(timeout: .seconds(30), "readings still flowing after the backup") { harness.storedReadings > storedAfter }
        #expect(hub.process.isRunning)

        // A restore over the running hub's database is refused, naming it; the database is untouched.
        let refused = try await run(["restore", backup, "--db", path], in: directory, name: "restore-refused")
        #expect(refused.status == 75, "\(refused.log)")
        #expect(refused.log.contains("a hub is running on") && refused.log.contains("--force"), "\(refused.log)")

        load.stop()
        load.thread.cancel()
        try await Task.sleep(for: .milliseconds(200))
        publisher.stop()
        hub.signal(SIGTERM)
        #expect(try await hub.waitForExit() == 0)

        // Restored in a new place: every reading committed before the backup began, every ledger
        // entry with its hash, and the chain checks against the restored anchors.
        let restored = directory.appendingPathComponent("restored/hub.sqlite").path
        try FileManager.default.createDirectory(atPath: directory.appendingPathComponent("restored").path, withIntermediateDirectories: true)
        let restore = try await run(["restore", backup, "--db", restored], in: directory, name: "restore")
        #expect(restore.status == 0, "\(restore.log)")
        let (restoredReadings, restoredEntries) = try HubDatabase.readFile(path: restored) { db in
            (Set(try Row.fetchAll(db, sql: "SELECT device_id, instant, energy_wh FROM reading").map { "\($0[0] as String) \($0[1] as Int64) \($0[2] as Int64)" }),
             try Row.fetchAll(db, sql: "SELECT number, hash FROM carshare_entry ORDER BY number").map { "\($0[0] as Int64) \($0[1] as String)" })
        }
        #expect(committed.isSubset(of: restoredReadings), "\(committed.subtracting(restoredReadings).count) committed readings missing from the restored copy")
        #expect(restoredEntries == entries)
        #expect(FileManager.default.fileExists(atPath: restored + ".anchors"))
        let verify = try await run(["ledger", "verify", "--db", restored], in: directory, name: "verify")
        #expect(verify.status == 0 && verify.log.contains("ledger ok") && verify.log.contains("1 closed months match their anchors"), "\(verify.log)")

        // Restoring again over a database nothing runs on keeps the replaced one beside it.
        let again = try await run(["restore", backup, "--db", restored], in: directory, name: "restore-again")
        #expect(again.status == 0 && again.log.contains("kept the replaced file as"), "\(again.log)")

        // A damaged backup is refused before anything is touched.
        let damaged = directory.appendingPathComponent("backups/damaged.sqlite").path
        try FileManager.default.copyItem(atPath: backup, toPath: damaged)
        try FileManager.default.copyItem(atPath: backup + ".anchors", toPath: damaged + ".anchors")
        let pages = (try FileManager.default.attributesOfItem(atPath: damaged)[.size] as! Int) / 4096
        try Self.corrupt(damaged, page: pages / 2)
        let elsewhere = directory.appendingPathComponent("restored/other.sqlite").path
        let bad = try await run(["restore", damaged, "--db", elsewhere], in: directory, name: "restore-damaged")
        #expect(bad.status == 65 && bad.log.contains("fails SQLite's integrity check"), "\(bad.log)")
        #expect(!FileManager.default.fileExists(atPath: elsewhere))
    }
}

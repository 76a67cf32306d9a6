import Crypto
import Foundation
import GRDB
import HubTestSupport
import HubCore
import Shared
import Testing
@testable import EnergyCore
@testable import EnergyHub

@Suite struct IngestProcessorTests {
    let t0 = Instant.parseRFC3339("2026-11-27T09:13:00Z")!

    func setUp(_ settings: IngestSettings = IngestSettings()) throws -> (HubDatabase, IngestProcessor) {
        let database = try TestSupport.database()
        _ = try RegistryImporter(database: database).importCSV(Data(TestSupport.samplesRegistryCSV.utf8))
        let processor = try IngestProcessor(settings: settings, store: SQLiteReadingStore(database: database))
        try processor.loadState(at: t0)
        return (database, processor)
    }

    func message(_ topic: String, _ payload: String, at seconds: Int64) -> IncomingMessage {
        IncomingMessage(topic: topic, payload: Array(payload.utf8), receivedAt: t0.adding(seconds: seconds))
    }

    func canonical(_ device: String, _ instant: Instant, _ energy: Int64) -> String {
        "{\"ts\":\"\(instant.rfc3339)\",\"energy_wh\":\(energy)}"
    }

    func quarantineReasons(_ database: HubDatabase) throws -> [String] {
        try database.pool.read { db in try String.fetchAll(db, sql: "SELECT reason FROM quarantine ORDER BY id") }
    }

    func readingCount(_ database: HubDatabase, _ device: String? = nil) throws -> Int {
        try database.pool.read { db in
            try device.map { try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM reading WHERE device_id = ?", arguments: [$0])! }
                ?? Int.fetchOne(db, sql: "SELECT COUNT(*) FROM reading")!
        }
    }

    @Test func theWALIsCheckpointedOftenAndCutBack() throws {
        let (database, _) = try setUp()
        // The write connection is the one the ingest writes through (a pool has a single writer).
        let (pages, limit) = try database.pool.write { db in
            (try Int.fetchOne(db, sql: "PRAGMA wal_autocheckpoint"), try Int.fetchOne(db, sql: "PRAGMA journal_size_limit"))
        }
        #expect(pages == 1000, "SQLite's default: the journal's small appends need no longer stretch")
        #expect(limit == HubDatabase.walSizeLimitBytes)
    }

    @Test func theGoodSamplesAreStored() throws {
        let (database, processor) = try setUp()
        var seconds: Int64 = 0
        var report = BatchReport()
        for name in ["teleinfo2mqtt", "tasmota", "opendtu"] {
            for sample in try TestSupport.samples(name) {
                seconds += 1
                report.add(try processor.process([message(sample.topic, sample.payload, at: seconds)]))
            }
        }
        #expect(report.stored == 5, "3 teleinfo + 1 tasmota + 1 OpenDTU yieldtotal")
        #expect(report.quarantined[.unknownTopic] == 3, "OpenDTU yieldday, power and last_update are not subscribed; quarantined if they arrive")
        let stored = try database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT device_id, energy_wh, time_source FROM reading ORDER BY device_id").map { "\($0["device_id"] as String)=\($0["energy_wh"] as Int64)/\($0["time_source"] as String)" }
        }
        #expect(stored == ["021861348497=21403709/received", "041876000117=4512877/received", "041876097381=19290594/received",
                           "116180401234=4512877/received", "box-0042=19290594/device"])
    }

    @Test func everyMisbehavingLineEndsInQuarantineWithTheRightReason() throws {
        let (database, processor) = try setUp()
        // The teleinfo meter's last good index first: 9,058,688 + 12,345,021 Wh.
        let good = try TestSupport.samples("teleinfo2mqtt")[0]
        _ = try processor.process([message(good.topic, good.payload, at: 0)])
        let lines = try TestSupport.samples("misbehaving")
        #expect(lines.count == 6)
        var report = BatchReport()
        for (index, sample) in lines.enumerated() {
            report.add(try processor.process([message(sample.topic, sample.payload, at: Int64(index + 1) * 30)]))
        }
        #expect(report.stored == 0)
        #expect(try quarantineReasons(database) == ["index_backwards", "implausible_jump", "device_clock_unset", "malformed_payload", "unknown_device", "not_a_number"])
        let kept = try database.pool.read { db in try Row.fetchAll(db, sql: "SELECT topic, payload, detail FROM quarantine ORDER BY id") }
        for (row, sample) in zip(kept, lines) {
            #expect(row["topic"] as String == sample.topic)
            #expect(String(decoding: row["payload"] as Data, as: UTF8.self) == sample.payload, "the raw payload is kept")
            #expect(!(row["detail"] as String).isEmpty)
        }
        #expect(try readingCount(database, "021861348497") == 1, "never rebased on the zero or the jump")
    }

    /// Issue 14, defect 6: a Tasmota box with only `ENERGY.Total` (no TIC season letter) goes
    /// through the repeated autumn hour: its local `Time` says 02:00-02:50 twice. Both passes are
    /// stored at their own instants (the receive time chooses), none is a conflicting duplicate.
    @Test func tasmotaWithoutASeasonLetterThroughTheRepeatedAutumnHour() throws {
        let (database, processor) = try setUp()
        let firstPass = Instant.parseRFC3339("2026-10-25T00:00:00Z")!
        var report = BatchReport()
        var energy: Int64 = 19_000_000
        for pass in 0..<2 {
            for minutes in stride(from: 0, through: 50, by: 10) {
                energy += 150
                let payload = #"{"Time": "2026-10-25T02:\#(minutes == 0 ? "00" : String(minutes)):00", "ENERGY": {"Total": \#(Double(energy) / 1000), "Power": 900}}"#
                let received = firstPass.adding(seconds: Int64(pass * 3600 + minutes * 60 + 3))
                report.add(try processor.process([IncomingMessage(topic: "tele/box-0042/SENSOR", payload: Array(payload.utf8), receivedAt: received)]))
            }
        }
        #expect(try quarantineReasons(database) == [])
        #expect(report.stored == 12)
        let instants = try database.pool.read { db in
            try Int64.fetchAll(db, sql: "SELECT instant FROM reading WHERE device_id = 'box-0042' ORDER BY instant")
        }
        let expected = (0..<12).map { firstPass.adding(seconds: Int64($0 * 600)).millisecondsSince1970 }
        #expect(instants == expected, "every ten minutes from 00:00Z to 01:50Z")
    }

    /// Issue 14, defect 4: a hostile payload is kept as its first `quarantinePayloadBytes` with the
    /// size and SHA-256 of the whole, and counted; a small one is kept whole.
    @Test func theQuarantineKeepsTheStartOfALargePayloadWithItsSizeAndHash() async throws {
        let (database, processor) = try setUp()
        let hostile = Array(("{\"ts\": \"" + String(repeating: "é", count: 120 * 1024)).utf8)  // 240 KiB of unclosed string, 2-byte characters
        #expect(hostile.count < IngestSettings().maxPayloadBytes)
        let report = try processor.process([IncomingMessage(topic: "meters/box-7/reading", payload: hostile, receivedAt: t0),
                                            message("meters/box-7/reading", "{oops", at: 1)])
        #expect(report.quarantinedTotal == 2)
        #expect(report.truncatedPayloads == 1)
        let rows = try database.pool.read { db in try Row.fetchAll(db, sql: "SELECT payload, payload_size, payload_sha256 FROM quarantine ORDER BY id") }
        let kept = [UInt8](rows[0]["payload"] as Data)
        #expect(kept.count <= 4096 && kept.count >= 4093)
        #expect(Array(hostile.prefix(kept.count)) == kept)
        #expect(String(validating: kept, as: UTF8.self) != nil, "cut on a character boundary")
        #expect(report.truncatedPayloadBytes == hostile.count - kept.count)
        #expect(rows[0]["payload_size"] as Int == hostile.count)
        #expect(rows[0]["payload_sha256"] as String == SHA256.hash(data: hostile).map { String(format: "%02x", $0) }.joined())
        #expect(String(decoding: rows[1]["payload"] as Data, as: UTF8.self) == "{oops", "a small payload is kept whole")
        #expect(rows[1]["payload_size"] as Int == 5)
        // The API's reader sees it as cut.
        let entries = try await SQLiteReadingStore(database: database).quarantine(since: t0, afterID: nil, limit: 10)
        #expect(entries.map(\.payloadIsTruncated) == [true, false])
    }

    /// 200 hostile payloads of 255 KiB add about 1 MB to the file, not 50 MB (the quarantine is
    /// kept two years).
    @Test func hostilePayloadsDoNotFillTheFile() throws {
        let (database, processor) = try setUp()
        func pages() throws -> Int { try database.pool.read { db in try Int.fetchOne(db, sql: "PRAGMA page_count")! } }
        let before = try pages()
        for index in 0..<200 {
            var payload = [UInt8](repeating: UInt8(ascii: "{"), count: 255 * 1024)
            payload[0] = UInt8(index)
            _ = try processor.process([IncomingMessage(topic: "meters/box-7/reading", payload: payload, receivedAt: t0.adding(seconds: Int64(index)))])
        }
        let addedBytes = (try pages() - before) * 4096
        #expect(addedBytes < 2 * 1024 * 1024, "the quarantine grew the file by \(addedBytes) bytes")
    }

    /// The migration cuts the payloads kept whole before, recording their size and hash.
    @Test func theMigrationCutsPayloadsKeptWholeBefore() throws {
        let queue = try DatabaseQueue(path: TestSupport.temporaryDirectory("quarantine-migration").appendingPathComponent("old.sqlite").path)
        var migrator = DatabaseMigrator()
        SharedSchema.register(&migrator)
        EnergySchema.register(&migrator)
        try migrator.migrate(queue, upTo: "energy-2-reading-journal")
        let big = [UInt8](repeating: UInt8(ascii: "a"), count: 200_000)
        try queue.write { db in
            for payload in [big, Array("{}".utf8)] {
                try db.execute(sql: "INSERT INTO quarantine (received_at, topic, payload, reason, detail) VALUES (0, 't', ?, 'malformed_payload', '')",
                               arguments: [Data(payload)])
            }
        }
        try migrator.migrate(queue)
        let rows = try queue.read { db in try Row.fetchAll(db, sql: "SELECT length(payload) AS kept, payload_size, payload_sha256 FROM quarantine ORDER BY id") }
        #expect(rows.map { $0["kept"] as Int } == [4096, 2])
        #expect(rows.map { $0["payload_size"] as Int } == [200_000, 2])
        #expect(rows[0]["payload_sha256"] as String == SHA256.hash(data: big).map { String(format: "%02x", $0) }.joined())
    }

    @Test func duplicatesAreCountedNotStoredTwice() throws {
        let (database, processor) = try setUp()
        let reading = message("meters/box-7/reading", canonical("box-7", t0, 1000), at: 0)
        let report = try processor.process([reading, reading, message("meters/box-7/reading", canonical("box-7", t0, 1000), at: 5)])
        #expect(report.stored == 1)
        #expect(report.duplicates == 2)
        // A restarted processor (state from the database) still sees the duplicate.
        let restarted = try IngestProcessor(settings: IngestSettings(), store: SQLiteReadingStore(database: database))
        try restarted.loadState(at: t0)
        #expect(try restarted.process([reading]).duplicates == 1)
        let conflict = try restarted.process([message("meters/box-7/reading", canonical("box-7", t0, 1001), at: 9)])
        #expect(conflict.quarantined[.conflictingDuplicate] == 1)
        #expect(try readingCount(database) == 1)
    }

    @Test func lateAndBufferedReadingsAreAccepted() throws {
        let (database, processor) = try setUp()
        _ = try processor.process([message("meters/box-7/reading", canonical("box-7", t0, 10_000), at: 0)])
        // A box that buffered offline publishes an array of older readings, out of order.
        let buffered = "[" + [(-50, 9_000), (-70, 8_000), (-60, 8_500), (-65, 99_999)].map { minutes, energy in
            canonical("box-7", t0.adding(seconds: Int64(minutes) * 60), Int64(energy))
        }.joined(separator: ",") + "]"
        let report = try processor.process([message("meters/box-7/reading", buffered, at: 10)])
        #expect(report.stored == 3)
        #expect(report.quarantined[.indexBackwards] == 1, "99,999 Wh between 8,000 and 8,500 does not fit")
        #expect(try readingCount(database, "box-7") == 4)
        // Changes are recorded when the journal is folded into the device-ordered table.
        #expect(try processor.fold().devices == 1)
        let change = try database.pool.read { db in try Row.fetchOne(db, sql: "SELECT from_instant, to_instant FROM reading_change WHERE device_id = 'box-7'") }
        #expect(change?["from_instant"] as Int64? == t0.adding(seconds: -70 * 60).millisecondsSince1970, "derived figures from the earliest late reading...")
        #expect(change?["to_instant"] as Int64? == t0.millisecondsSince1970, "...to the reading after the last one are recomputed")
    }

    @Test func aConfirmedResetAdmitsTheHeldReadingsInANewSegmentAcrossARestart() throws {
        let (database, processor) = try setUp()
        _ = try processor.process([message("meters/box-7/reading", canonical("box-7", t0, 5_000_000), at: 0)])
        _ = try processor.process([message("meters/box-7/reading", canonical("box-7", t0.adding(seconds: 300), 20), at: 300)])
        _ = try processor.process([message("meters/box-7/reading", canonical("box-7", t0.adding(seconds: 600), 60), at: 600)])
        #expect(try quarantineReasons(database) == ["index_backwards", "index_backwards"])
        // The hub restarts: the held readings are reloaded from quarantine.
        let restarted = try IngestProcessor(settings: IngestSettings(), store: SQLiteReadingStore(database: database))
        try restarted.loadState(at: t0)
        let report = try restarted.process([message("meters/box-7/reading", canonical("box-7", t0.adding(seconds: 900), 100), at: 900)])
        #expect(report.resets == 1)
        #expect(report.released == 2)
        #expect(report.stored == 3)
        let segments = try database.pool.read { db in try Row.fetchAll(db, sql: "SELECT energy_wh, segment FROM reading ORDER BY instant").map { "\($0[0] as Int64)@\($0[1] as Int)" } }
        #expect(segments == ["5000000@0", "20@1", "60@1", "100@1"])
        let released = try database.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM quarantine WHERE released_at IS NOT NULL") }
        #expect(released == 2)
        let segment = try database.pool.read { db in try Row.fetchOne(db, sql: "SELECT index_before_wh, index_after_wh FROM device_segment WHERE device_id = 'box-7'") }
        #expect(segment?["index_before_wh"] as Int64? == 5_000_000)
        #expect(segment?["index_after_wh"] as Int64? == 20)
    }

    @Test func timeChecks() throws {
        let (database, processor) = try setUp()
        let report = try processor.process([
            message("meters/box-7/reading", canonical("box-7", t0.adding(seconds: 301), 10), at: 0),
            message("meters/box-7/reading", canonical("box-7", Instant.parseRFC3339("2024-12-31T22:59:59Z")!, 10), at: 0),
            message("meters/box-7/reading", canonical("box-7", Instant.parseRFC3339("2024-12-31T23:00:00Z")!, 10), at: 0),
            message("meters/box-7/reading", canonical("box-7", Instant(secondsSince1970: 192), 10), at: 0),
            message("meters/box-7/reading", canonical("box-7", t0.adding(seconds: 299), 20), at: 0),
        ])
        #expect(report.quarantined == [.inFuture: 1, .beforeInstallation: 1, .deviceClockUnset: 1])
        #expect(report.stored == 2, "local midnight of the installation day (23:00Z in winter) is allowed; 5 minutes ahead is tolerated")
        #expect(try readingCount(database) == 2)
    }

    @Test func envelopeChecks() throws {
        var settings = IngestSettings()
        settings.maxPayloadBytes = 1000
        settings.maxReadingsPerMessage = 3
        let (_, processor) = try setUp(settings)
        let many = "[" + (0..<4).map { canonical("box-7", t0.adding(seconds: Int64($0)), Int64($0)) }.joined(separator: ",") + "]"
        let report = try processor.process([
            message("meters/box-7/reading", String(repeating: " ", count: 1001), at: 0),
            message("meters/box-7/reading", many, at: 0),
            message("teleinfo/box-7", "{}", at: 0),
            message("meters/nobody/reading", canonical("nobody", t0, 1), at: 0),
            message("weird/topic", "{}", at: 0),
        ])
        #expect(report.quarantined == [.payloadTooLarge: 1, .tooManyReadings: 1, .formatMismatch: 1, .unknownDevice: 1, .unknownTopic: 1])
    }

    @Test func aDeviceImportedWhileRunningIsPickedUp() throws {
        let (database, processor) = try setUp()
        let first = try processor.process([message("meters/box-new/reading", canonical("box-new", t0, 1), at: 0)])
        #expect(first.quarantined[.unknownDevice] == 1)
        _ = try RegistryImporter(database: database).importCSV(Data("estate;building;dwelling;device;kind;format;since\nOutreau;OUT-A;OUT-A-09;box-new;meter;canonical;2025-01-01\n".utf8))
        let second = try processor.process([message("meters/box-new/reading", canonical("box-new", t0, 1), at: 6)])
        #expect(second.stored == 1)
    }
}

extension IngestProcessorTests {
    @Test func clocklessReadingsReceivedInTheSameMillisecondKeepTheirOrder() throws {
        let (database, processor) = try setUp()
        let zero = #"{"ADSC":{"raw":"041876097381","value":"041876097381"},"EAST":{"raw":"000001000","value":1000}}"#
        let next = #"{"ADSC":{"raw":"041876097381","value":"041876097381"},"EAST":{"raw":"000001010","value":1010}}"#
        let report = try processor.process([message("teleinfo/041876097381", zero, at: 0), message("teleinfo/041876097381", next, at: 0)])
        #expect(report.stored == 2)
        #expect(report.quarantinedTotal == 0)
        let instants = try database.pool.read { db in try Int64.fetchAll(db, sql: "SELECT instant FROM reading ORDER BY instant") }
        #expect(instants == [t0.millisecondsSinceEpochForTests, t0.millisecondsSinceEpochForTests + 1])
        // A backlog delivered in a burst: 100 readings 1 ms apart, 10 Wh each (about 1 kW every
        // 36 s in reality) are plausible; a corrupted jump in the same burst is still refused.
        var burst = (2..<102).map { index in
            message("teleinfo/041876097381", #"{"EAST":{"raw":"x","value":\#(1000 + index * 10)}}"#, at: 0)
        }
        burst.insert(message("teleinfo/041876097381", #"{"EAST":{"raw":"x","value":907658688}}"#, at: 0), at: 50)
        let backlog = try processor.process(burst)
        #expect(backlog.stored == 100)
        #expect(backlog.quarantined == [.implausibleJump: 1])
    }
}

extension Instant {
    var millisecondsSinceEpochForTests: Int64 { millisecondsSince1970 }
}

/// The ingest writer fills a batch while it writes it (`process(_:more:)`): what arrives meanwhile
/// goes into the same transaction, and a device the registry may now hold ends the batch.
extension IngestProcessorTests {
    @Test func aBatchTakesInWhatComesWhileItIsWrittenAndCommitsItWhole() throws {
        let (database, processor) = try setUp()
        let chunks = [(1...3).map { minute in message("meters/box-7/reading", canonical("box-7", t0.adding(seconds: Int64(60 * minute)), Int64(1000 + minute)), at: 1) },
                      [message("meters/box-7/reading", canonical("box-7", t0.adding(seconds: 240), 1004), at: 2)]]
        var given = 0
        var seenByReaders: [Int] = []
        let done = try processor.process([message("meters/box-7/reading", canonical("box-7", t0, 1000), at: 0)], more: {
            // Nothing of the batch is committed while it takes more in.
            seenByReaders.append((try? self.readingCount(database)) ?? -1)
            guard given < chunks.count else { return [] }
            given += 1
            return chunks[given - 1]
        })
        #expect(done.leftOver.isEmpty)
        #expect(done.report.messages == 5)
        #expect(done.report.stored == 5)
        #expect(seenByReaders == [0, 0, 0])
        #expect(try readingCount(database, "box-7") == 5)
        // The writer's memory of the device went on through the chunks: the next reading is in order.
        #expect(try processor.process([message("meters/box-7/reading", canonical("box-7", t0.adding(seconds: 300), 1005), at: 3)]).stored == 1)
    }

    @Test func aDeviceTheRegistryMayNowHoldEndsTheBatchAndBeginsTheNext() throws {
        let (database, processor) = try setUp()
        _ = try RegistryImporter(database: database).importCSV(Data("estate;building;dwelling;device;kind;format;since\nOutreau;OUT-A;OUT-A-09;box-new;meter;canonical;2025-01-01\n".utf8))
        let known = message("meters/box-7/reading", canonical("box-7", t0, 1000), at: 6)
        let new = message("meters/box-new/reading", canonical("box-new", t0, 1), at: 6)
        var given = false
        // The registry was read at t0: 6 s later, a device the writer does not know may be new.
        let done = try processor.process([known], more: {
            defer { given = true }
            return given ? [] : [new]
        })
        #expect(done.report.stored == 1)
        #expect(done.report.quarantinedTotal == 0)
        #expect(done.leftOver == [new])
        #expect(try readingCount(database, "box-new") == 0)
        let next = try processor.process(done.leftOver)
        #expect(next.stored == 1, "the next batch reads the registry first")
    }

    @Test func aDeviceUnknownSoonAfterTheRegistryWasReadIsRefusedInTheBatch() throws {
        let (database, processor) = try setUp()
        var given = false
        let done = try processor.process([message("meters/box-7/reading", canonical("box-7", t0, 1000), at: 1)], more: {
            defer { given = true }
            return given ? [] : [self.message("meters/nobody/reading", self.canonical("nobody", self.t0, 1), at: 1)]
        })
        #expect(done.leftOver.isEmpty)
        #expect(done.report.quarantined == [.unknownDevice: 1])
        #expect(try quarantineReasons(database) == ["unknown_device"])
    }
}

extension IngestProcessorTests {
    /// The journal takes its readings `rowsPerInsert` at a time: each keeps its place (arrival
    /// order, consecutive seq) and each device is listed from the seq of its first one.
    @Test func readingsInsertedManyAtATimeKeepTheirOrderAndTheirDevicesFirstSeq() throws {
        let (database, processor) = try setUp()
        _ = try RegistryImporter(database: database).importCSV(Data("""
            estate;building;dwelling;device;kind;format;since
            Outreau;OUT-A;OUT-A-08;box-a;meter;canonical;2025-01-01
            Outreau;OUT-A;OUT-A-09;box-b;meter;canonical;2025-01-01

            """.utf8))
        try processor.loadState(at: t0)
        // 70 readings of three devices, interleaved: two inserts of 32, then the 6 left at the end.
        let devices = ["box-7", "box-a", "box-b"]
        let expected: [(device: String, instant: Instant)] = (0..<70).map { (k: Int) -> (device: String, instant: Instant) in
            let minutes = Int64(k / 3)
            return (device: devices[k % 3], instant: t0.adding(seconds: minutes * 60 - 3_600))
        }
        let report = try processor.process(expected.enumerated().map { k, reading in
            message("meters/\(reading.device)/reading", canonical(reading.device, reading.instant, Int64(1_000 + k)), at: 0)
        })
        #expect(report.stored == 70)
        let rows = try database.pool.read { db in try Row.fetchAll(db, sql: "SELECT seq, device_id, instant FROM reading_journal ORDER BY seq") }
        #expect(rows.map { $0["device_id"] as String } == expected.map(\.device))
        #expect(rows.map { $0["instant"] as Int64 } == expected.map(\.instant.millisecondsSince1970))
        let seqs = rows.map { $0["seq"] as Int64 }
        #expect(zip(seqs, seqs.dropFirst()).allSatisfy { $1 == $0 + 1 }, "consecutive: \(seqs)")
        let listed = try database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT device_id, first_seq FROM reading_journal_device ORDER BY device_id").map { ($0["device_id"] as String, $0["first_seq"] as Int64) }
        }
        #expect(listed.map(\.0) == ["box-7", "box-a", "box-b"])
        #expect(listed.map(\.1) == [seqs[0], seqs[1], seqs[2]])
    }
}

extension IngestProcessorTests {
    /// A batch that fails leaves the writer's memory of each device's sequence as it was before
    /// the batch (the changes are undone one by one, latest first), so the same messages written
    /// again are stored, not taken for duplicates or late readings.
    @Test func aFailedBatchLeavesEveryDevicesSequenceAsItWas() throws {
        let (database, processor) = try setUp()
        _ = try RegistryImporter(database: database).importCSV(Data("""
            estate;building;dwelling;device;kind;format;since
            Outreau;OUT-A;OUT-A-08;box-a;meter;canonical;2025-01-01

            """.utf8))
        try processor.loadState(at: t0)
        _ = try processor.process([message("meters/box-7/reading", canonical("box-7", t0, 1000), at: 0)])
        let before = processor.sequences
        #expect(before["box-7"]?.last?.energy == WattHours(1000))
        #expect(before["box-a"] == nil)
        // box-7 twice (two changes of one sequence), box-a for the first time, then a reading the
        // database refuses: the whole batch fails at its insert.
        try database.pool.write { db in
            try db.execute(sql: "CREATE TRIGGER refuse_for_test BEFORE INSERT ON reading_journal WHEN NEW.energy_wh = 5001 BEGIN SELECT RAISE(ABORT, 'refused for the test'); END")
        }
        let batch = [message("meters/box-7/reading", canonical("box-7", t0.adding(seconds: 60), 1001), at: 61),
                     message("meters/box-a/reading", canonical("box-a", t0.adding(seconds: 60), 5000), at: 61),
                     message("meters/box-7/reading", canonical("box-7", t0.adding(seconds: 120), 1002), at: 121)]
        let refused = message("meters/box-a/reading", canonical("box-a", t0.adding(seconds: 120), 5001), at: 121)
        #expect(throws: DatabaseError.self) { try processor.process(batch + [refused]) }
        #expect(processor.sequences == before)
        #expect(try readingCount(database) == 1)

        try database.pool.write { db in try db.execute(sql: "DROP TRIGGER refuse_for_test") }
        let again = try processor.process(batch)
        #expect(again.stored == 3)
        #expect(again.duplicates == 0)
        #expect(processor.sequences["box-7"]?.last?.energy == WattHours(1002))
        #expect(processor.sequences["box-a"]?.last?.energy == WattHours(5000))
    }
}

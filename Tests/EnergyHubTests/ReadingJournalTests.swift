import Foundation
import GRDB
import HubTestSupport
import HubCore
import Shared
import Testing
@testable import EnergyCore
@testable import EnergyHub

/// The reading journal (issue 12): ingest appends in arrival order, a fold moves the readings
/// into `reading_by_device` in one transaction, and every rule (idempotence, late readings, the
/// figures' change ranges) holds wherever a reading sits.
@Suite struct ReadingJournalTests {
    let t0 = Instant.parseRFC3339("2026-11-27T09:00:00Z")!

    func setUp() throws -> (HubDatabase, IngestProcessor) {
        let database = try TestSupport.database(extraSchemas: [SavingsSchema.register])
        _ = try RegistryImporter(database: database).importCSV(Data(TestSupport.samplesRegistryCSV.utf8))
        let processor = try IngestProcessor(settings: IngestSettings(), store: SQLiteReadingStore(database: database))
        try processor.loadState(at: t0)
        return (database, processor)
    }

    func reading(_ minutes: Int64, _ energy: Int64, received: Int64 = 0) -> IncomingMessage {
        let instant = t0.adding(seconds: minutes * 60)
        return IncomingMessage(topic: "meters/box-7/reading", payload: Array("{\"ts\":\"\(instant.rfc3339)\",\"energy_wh\":\(energy)}".utf8),
                               receivedAt: t0.adding(seconds: max(minutes, received) * 60 + 1))
    }

    func count(_ database: HubDatabase, _ table: String) throws -> Int {
        try database.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)") ?? -1 }
    }

    @Test func ingestAppendsToTheJournalAndTheFoldMovesItWhole() throws {
        let (database, processor) = try setUp()
        _ = try processor.process((0..<10).map { reading(Int64($0), 1000 + Int64($0) * 10) })
        #expect(try count(database, "reading_journal") == 10)
        #expect(try count(database, "reading_by_device") == 0)
        #expect(try count(database, "reading") == 10, "the view shows every stored reading")
        #expect(processor.unfoldedReadings == 10)
        let report = try processor.fold()
        #expect(report == { var r = FoldReport(); r.folded = 10; r.devices = 1; return r }())
        #expect(try count(database, "reading_journal") == 0)
        #expect(try count(database, "reading_by_device") == 10)
        #expect(try count(database, "reading") == 10)
        #expect(processor.unfoldedReadings == 0)
    }

    @Test func aFoldRolledBackLeavesTheJournalAsItWasAndTheNextFoldStoresEachReadingOnce() throws {
        let (database, processor) = try setUp()
        _ = try processor.process((0..<5).map { reading(Int64($0), 1000 + Int64($0) * 10) })
        struct Crash: Error {}
        // Killed after its writes, before its commit: SQLite rolls the transaction back.
        #expect(throws: Crash.self) {
            try database.writeBlocking { db in
                _ = try ReadingJournal.fold(db)
                #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM reading_by_device") == 5)
                throw Crash()
            }
        }
        #expect(try count(database, "reading_journal") == 5)
        #expect(try count(database, "reading_by_device") == 0)
        #expect(try count(database, "reading_change") == 0)
        // A restarted writer folds at start.
        let restarted = try IngestProcessor(settings: IngestSettings(), store: SQLiteReadingStore(database: database))
        try restarted.loadState(at: t0)
        #expect(try count(database, "reading_journal") == 0)
        #expect(try count(database, "reading_by_device") == 5)
        #expect(try count(database, "reading_change") == 1)
        // Its state came from the folded readings: the last one again is a duplicate.
        #expect(try restarted.process([reading(4, 1040, received: 9)]).duplicates == 1)
    }

    @Test func aReadingThatReachedTheJournalTwiceIsFoldedOnce() throws {
        let (database, processor) = try setUp()
        _ = try processor.process([reading(0, 1000), reading(1, 1010)])
        _ = try processor.fold()
        // A second writer on the same file (not how the hub runs) could append one again.
        try database.pool.write { db in
            try db.execute(sql: """
                INSERT INTO reading_journal (device_id, instant, energy_wh, segment, time_source, received_at)
                VALUES ('box-7', ?, 1010, 0, 'device', 0), ('box-7', ?, 1020, 0, 'device', 0), ('box-7', ?, 9999, 0, 'device', 0)
                """, arguments: [t0.adding(seconds: 60).millisecondsSince1970, t0.adding(seconds: 120).millisecondsSince1970, t0.adding(seconds: 120).millisecondsSince1970])
        }
        let report = try database.pool.write { db in try ReadingJournal.fold(db) }
        #expect(report.folded == 3)
        #expect(report.dropped == 2, "the one already folded and the later arrival at the same instant")
        let stored = try database.pool.read { db in try Int64.fetchAll(db, sql: "SELECT energy_wh FROM reading ORDER BY instant") }
        #expect(stored == [1000, 1010, 1020], "the earliest arrival wins")
    }

    @Test func lateReadingsAreCheckedAgainstTheJournalTheFoldedTableAndTheirOwnBatch() throws {
        let (database, processor) = try setUp()
        _ = try processor.process([reading(0, 1000), reading(10, 1100)])
        _ = try processor.fold()
        _ = try processor.process([reading(20, 1200), reading(30, 1300)])
        // In the journal: 20 and 30; folded: 0 and 10. Late readings around and at each of them,
        // and one stored earlier in the same batch.
        let report = try processor.process([
            reading(10, 1100, received: 40),  // duplicate of a folded reading
            reading(20, 1200, received: 40),  // duplicate of a journal reading
            reading(20, 1250, received: 40),  // conflicts with a journal reading
            reading(15, 1150, received: 40),  // between folded 10 and journal 20
            reading(15, 1150, received: 41),  // the same, stored a moment ago in this batch
            reading(25, 1190, received: 41),  // below journal 20's index: does not fit
        ])
        #expect(report.stored == 1)
        #expect(report.duplicates == 3)
        #expect(report.quarantined[.conflictingDuplicate] == 1)
        #expect(report.quarantined[.indexBackwards] == 1)
        _ = try processor.fold()
        let stored = try database.pool.read { db in try Int64.fetchAll(db, sql: "SELECT energy_wh FROM reading_by_device ORDER BY instant") }
        #expect(stored == [1000, 1100, 1150, 1200, 1300])
    }

    @Test func theFoldQueuesTheFiguresBetweenTheNewReadingsFoldedNeighbours() throws {
        let (database, processor) = try setUp()
        _ = try processor.process([reading(0, 1000), reading(60, 1600), reading(120, 2200)])
        _ = try processor.fold()
        try database.pool.write { db in try db.execute(sql: "DELETE FROM reading_change") }
        // A late reading between 0 and 60, and a new one after 120.
        _ = try processor.process([reading(30, 1300, received: 125), reading(180, 2800, received: 181)])
        _ = try processor.fold()
        let change = try database.pool.read { db in try Row.fetchOne(db, sql: "SELECT from_instant, to_instant FROM reading_change WHERE device_id = 'box-7'") }
        #expect(change?["from_instant"] as Int64? == t0.millisecondsSince1970, "from the folded reading before the earliest new one")
        #expect(change?["to_instant"] as Int64? == t0.adding(seconds: 180 * 60).millisecondsSince1970, "to the latest new one (none after it)")
    }

    @Test func theSavingsUpkeepFoldsBeforeItComputes() throws {
        let (database, processor) = try setUp()
        _ = try processor.process((0..<90).map { reading(Int64($0), 1000 + Int64($0) * 10) })
        #expect(try count(database, "reading_by_device") == 0)
        _ = try SavingsUpkeep(database: database, configuration: try EnergySettings().validated()).bringUpToDate(now: t0.adding(seconds: 3 * 3600))
        #expect(try count(database, "reading_journal") == 0)
        #expect(try count(database, "reading_change") == 0)
        let slots = try database.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM device_slot WHERE device_id = 'box-7' AND quality = 1") }
        #expect(slots == 2, "09:00-09:30 and 09:30-10:00 measured from the journal's readings")
    }

    @Test func theDeviceReadingsRouteSeesFoldedAndUnfoldedReadings() async throws {
        let (database, processor) = try setUp()
        _ = try processor.process([reading(0, 1000), reading(1, 1010)])
        _ = try processor.fold()
        _ = try processor.process([reading(2, 1020), reading(3, 1030)])
        let readings = try await SQLiteReadingStore(database: database).readings(device: "box-7", from: t0, to: t0.adding(seconds: 3600), limit: 3)
        #expect(readings.map(\.energy.value) == [1000, 1010, 1020], "oldest first across both tables, cut at the limit")
    }
    /// Devices of the journal not listed in `reading_journal_device`, or listed from after their
    /// oldest journal row: what would make a device's readings miss some (must be none).
    func unlisted(_ database: HubDatabase) throws -> Int {
        try database.pool.read { db in
            try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM (SELECT device_id, MIN(seq) AS oldest FROM reading_journal GROUP BY device_id) j
                LEFT JOIN reading_journal_device d ON d.device_id = j.device_id
                WHERE d.first_seq IS NULL OR d.first_seq > j.oldest
                """) ?? -1
        }
    }

    func listed(_ database: HubDatabase) throws -> [String] {
        try database.pool.read { db in try String.fetchAll(db, sql: "SELECT device_id FROM reading_journal_device ORDER BY device_id") }
    }

    /// The journal lists the devices it holds (so a device's readings skip it when it holds none
    /// of theirs); the list follows every fold, partial or whole, whoever runs it.
    @Test func theJournalListsItsDevicesThroughEveryFold() async throws {
        let (database, processor) = try setUp()
        let store = SQLiteReadingStore(database: database)
        func route() async throws -> [Int64] {
            try await store.readings(device: "box-7", from: t0, to: t0.adding(seconds: 3600), limit: 100).map(\.energy.value)
        }
        _ = try processor.process((0..<4).map { reading(Int64($0), 1000 + Int64($0) * 10) })
        #expect(try listed(database) == ["box-7"])
        #expect(try unlisted(database) == 0)

        // A fold by someone else (the savings upkeep, `energy update`): the list is emptied, and
        // the writer lists the device again with its next reading.
        _ = try await database.pool.write { db in try ReadingJournal.fold(db) }
        #expect(try listed(database).isEmpty)
        _ = try processor.process([reading(4, 1040)])
        #expect(try listed(database) == ["box-7"])
        #expect(try unlisted(database) == 0)
        #expect(try await route() == [1000, 1010, 1020, 1030, 1040])

        // A partial fold (the oldest 3 of 5): the device stays listed from its oldest row left.
        _ = try processor.process((5..<9).map { reading(Int64($0), 1000 + Int64($0) * 10) })
        let partial = try processor.fold(limit: 3)
        #expect(partial.folded == 3)
        #expect(partial.remaining == 2)
        #expect(processor.unfoldedReadings == 2)
        #expect(try count(database, "reading_journal") == 2)
        #expect(try listed(database) == ["box-7"])
        #expect(try unlisted(database) == 0)
        #expect(try await route() == (0..<9).map { 1000 + Int64($0) * 10 })
        // Late readings are still checked against the readings the partial fold moved.
        #expect(try processor.process([reading(5, 1050, received: 20)]).duplicates == 1)

        // The rest: the journal and its list are empty.
        let rest = try processor.fold()
        #expect(rest.folded == 2)
        #expect(rest.remaining == 0)
        #expect(processor.unfoldedReadings == 0)
        #expect(try listed(database).isEmpty)
        #expect(try await route() == (0..<9).map { 1000 + Int64($0) * 10 })
    }

    /// A device with nothing in the journal is read from `reading_by_device` alone, whatever the
    /// journal holds; one with readings there is read from its oldest journal row on.
    @Test func aDevicesReadingsReadTheJournalOnlyForADeviceItHolds() async throws {
        let (database, processor) = try setUp()
        _ = try processor.process([reading(0, 1000), reading(1, 1010)])
        _ = try processor.fold()
        // Another writer's rows (a benchmark's), listed as the writer lists them.
        try await database.pool.write { db in
            for index in 0..<500 {
                try db.execute(sql: "INSERT INTO reading_journal (device_id, instant, energy_wh, segment, time_source, received_at) VALUES (?, ?, ?, 0, 'device', 0)",
                               arguments: ["other-\(index % 50)", t0.adding(seconds: Int64(index) * 60).millisecondsSince1970, index])
            }
            try ReadingJournal.listDevices(db)
        }
        #expect(try unlisted(database) == 0)
        let store = SQLiteReadingStore(database: database)
        let plan = try await database.pool.read { db in
            try Row.fetchAll(db, sql: """
                EXPLAIN QUERY PLAN SELECT seq FROM reading_journal
                WHERE seq >= (SELECT first_seq FROM reading_journal_device WHERE device_id = ?1) AND device_id = ?1
                """, arguments: ["box-7"]).map { $0["detail"] as String }
        }
        #expect(plan.joined(separator: " ").contains("INTEGER PRIMARY KEY (rowid>?)"), "a range of the journal from first_seq, not a scan: \(plan)")
        #expect(try await store.readings(device: "box-7", from: t0, to: t0.adding(seconds: 3600), limit: 100).map(\.energy.value) == [1000, 1010])
        _ = try processor.process([reading(2, 1020)])
        #expect(try await store.readings(device: "box-7", from: t0, to: t0.adding(seconds: 3600), limit: 100).map(\.energy.value) == [1000, 1010, 1020])
        #expect(try await store.readings(device: "other-3", from: t0, to: t0.adding(seconds: 86400), limit: 100).count == 10)
    }

    /// The writer's memory of the unfolded journal keeps readings in arrival order and sorts them
    /// by device only when a lookup asks: the answers are those of a list sorted at every reading,
    /// whether the readings came in order or not, in this transaction or in committed ones.
    @Test func theWritersMemoryOfTheJournalAnswersAsIfSortedAtEveryReading() {
        func at(_ minute: Int64) -> StoredIndex { StoredIndex(instant: t0.adding(seconds: minute * 60), energy: WattHours(1_000 + minute), segment: 0) }
        var committed = JournalIndex()
        var transaction = JournalIndex()
        // Committed: a in order, b out of order; then a lookup sorts them.
        for minute: Int64 in [1, 2, 5] { committed.add(device: "a", at(minute)) }
        for minute: Int64 in [7, 3, 9] { committed.add(device: "b", at(minute)) }
        #expect(committed.stored(device: "b", at: at(3).instant) == at(3))
        // More after the lookup: sorted in at the next one.
        committed.add(device: "a", at(4))
        committed.add(device: "a", at(0))
        #expect(committed.previous(device: "a", before: at(4).instant) == at(2))
        #expect(committed.next(device: "a", after: at(4).instant) == at(5))
        #expect(committed.previous(device: "a", before: at(0).instant) == nil)
        #expect(committed.next(device: "b", after: at(9).instant) == nil)
        #expect(committed.stored(device: "c", at: at(1).instant) == nil)
        // A transaction that looked up before it committed hands over what it sorted too.
        transaction.add(device: "b", at(8))
        #expect(transaction.previous(device: "b", before: at(9).instant) == at(8))
        transaction.add(device: "c", at(6))
        committed.add(transaction)
        #expect(committed.count == 10)
        #expect(committed.previous(device: "b", before: at(9).instant) == at(8))
        #expect(committed.next(device: "b", after: at(3).instant) == at(7))
        #expect(committed.stored(device: "c", at: at(6).instant) == at(6))
        // More than a chunk's worth, out of order across chunks.
        for minute in stride(from: Int64(3 * JournalIndex.chunk), to: 10, by: -1) { committed.add(device: "d", at(minute)) }
        #expect(committed.count == 10 + 3 * JournalIndex.chunk - 10)
        #expect(committed.previous(device: "d", before: at(Int64(2 * JournalIndex.chunk)).instant) == at(Int64(2 * JournalIndex.chunk) - 1))
        #expect(committed.next(device: "d", after: at(10).instant) == at(11))
        #expect(committed.stored(device: "d", at: at(10).instant) == nil)
        committed.removeAll()
        #expect(committed.count == 0)
        #expect(committed.stored(device: "a", at: at(1).instant) == nil)
    }
}

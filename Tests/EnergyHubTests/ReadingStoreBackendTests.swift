import Crypto
import Foundation
import HubCore
import HubTestSupport
import PostgresNIO
import Shared
import Testing
@testable import EnergyCore
@testable import EnergyHub

/// The ingest scenarios of IngestProcessorTests and ReadingJournalTests through both reading
/// stores, SQLite and PostgreSQL (a real server): the same bodies, the same expectations.
@Suite struct ReadingStoreBackendTests {
    static let t0 = Instant.parseRFC3339("2026-11-27T09:13:00Z")!
    var t0: Instant { Self.t0 }

    func message(_ topic: String, _ payload: String, at seconds: Int64) -> IncomingMessage {
        IncomingMessage(topic: topic, payload: Array(payload.utf8), receivedAt: t0.adding(seconds: seconds))
    }

    func canonical(_ instant: Instant, _ energy: Int64) -> String {
        "{\"ts\":\"\(instant.rfc3339)\",\"energy_wh\":\(energy)}"
    }

    func box7(_ seconds: Int64, _ energy: Int64, received: Int64? = nil) -> IncomingMessage {
        message("meters/box-7/reading", canonical(t0.adding(seconds: seconds), energy), at: received ?? seconds)
    }

    @Test(arguments: StoreBackend.allCases) func theGoodSamplesAreStored(_ backend: StoreBackend) async throws {
        try await StoreFixture.run(backend, at: Self.t0) { store in
            var seconds: Int64 = 0
            var report = BatchReport()
            for name in ["teleinfo2mqtt", "tasmota", "opendtu"] {
                for sample in try TestSupport.samples(name) {
                    seconds += 1
                    report.add(try await store.process([message(sample.topic, sample.payload, at: seconds)]))
                }
            }
            #expect(report.stored == 5)
            #expect(report.quarantined[.unknownTopic] == 3)
            let stored = try await store.readings().map { "\($0.device)=\($0.energy)/\($0.timeSource)" }
            #expect(stored == ["021861348497=21403709/received", "041876000117=4512877/received", "041876097381=19290594/received",
                               "116180401234=4512877/received", "box-0042=19290594/device"])
        }
    }

    @Test(arguments: StoreBackend.allCases) func misbehavingLinesAreQuarantinedWithTheirPayload(_ backend: StoreBackend) async throws {
        try await StoreFixture.run(backend, at: Self.t0) { store in
            let good = try TestSupport.samples("teleinfo2mqtt")[0]
            _ = try await store.process([message(good.topic, good.payload, at: 0)])
            let lines = try TestSupport.samples("misbehaving")
            var report = BatchReport()
            for (index, sample) in lines.enumerated() {
                report.add(try await store.process([message(sample.topic, sample.payload, at: Int64(index + 1) * 30)]))
            }
            #expect(report.stored == 0)
            let entries = try await store.quarantine()
            #expect(entries.map(\.reason.rawValue) == ["index_backwards", "implausible_jump", "device_clock_unset", "malformed_payload", "unknown_device", "not_a_number"])
            for (entry, sample) in zip(entries, lines) {
                #expect(entry.topic == sample.topic)
                #expect(String(decoding: entry.payload, as: UTF8.self) == sample.payload)
                #expect(!entry.detail.isEmpty)
            }
            #expect(try await store.readings().filter { $0.device == "021861348497" }.count == 1)
        }
    }

    @Test(arguments: StoreBackend.allCases) func theQuarantineKeepsThePayloadsStartWithItsSizeAndHash(_ backend: StoreBackend) async throws {
        try await StoreFixture.run(backend, at: Self.t0) { store in
            let hostile = Array(("{\"ts\": \"" + String(repeating: "é", count: 120 * 1024)).utf8)
            let report = try await store.process([IncomingMessage(topic: "meters/box-7/reading", payload: hostile, receivedAt: Self.t0),
                                                  self.message("meters/box-7/reading", "{oops", at: 1)])
            #expect(report.quarantinedTotal == 2)
            #expect(report.truncatedPayloads == 1)
            let entries = try await store.quarantine()
            #expect(entries.count == 2)
            let kept = entries[0].payload
            #expect(kept.count <= 4096 && kept.count >= 4093)
            #expect(Array(hostile.prefix(kept.count)) == kept)
            #expect(entries[0].payloadSize == hostile.count)
            #expect(entries[0].payloadSHA256 == SHA256.hash(data: hostile).map { String(format: "%02x", $0) }.joined())
            #expect(entries.map(\.payloadIsTruncated) == [true, false])
            #expect(entries[1].payload == Array("{oops".utf8) && entries[1].payloadSize == 5)
            // Pages by (receive time, id) continue where the previous one stopped.
            let next = try await store.store.quarantine(since: Self.t0, afterID: entries[0].id, limit: 10)
            #expect(next.map(\.id) == [entries[1].id])
        }
    }

    @Test(arguments: StoreBackend.allCases) func duplicatesAreCountedNotStoredTwice(_ backend: StoreBackend) async throws {
        try await StoreFixture.run(backend, at: Self.t0) { store in
            let reading = box7(0, 1000)
            let report = try await store.process([reading, reading, box7(0, 1000, received: 5)])
            #expect(report.stored == 1)
            #expect(report.duplicates == 2)
            try await store.restart(at: Self.t0)
            #expect(try await store.process([reading]).duplicates == 1)
            let conflict = try await store.process([box7(0, 1001, received: 9)])
            #expect(conflict.quarantined[.conflictingDuplicate] == 1)
            #expect(try await store.readings().count == 1)
        }
    }

    @Test(arguments: StoreBackend.allCases) func lateReadingsArePlacedBetweenTheirNeighbours(_ backend: StoreBackend) async throws {
        try await StoreFixture.run(backend, at: Self.t0) { store in
            _ = try await store.process([box7(0, 10_000)])
            let buffered = "[" + [(-50, 9_000), (-70, 8_000), (-60, 8_500), (-65, 99_999)].map { minutes, energy in
                canonical(t0.adding(seconds: Int64(minutes) * 60), Int64(energy))
            }.joined(separator: ",") + "]"
            let report = try await store.process([message("meters/box-7/reading", buffered, at: 10)])
            #expect(report.stored == 3)
            #expect(report.quarantined[.indexBackwards] == 1, "99,999 Wh between 8,000 and 8,500 does not fit")
            // Late readings checked against the stored ones and those of their own batch.
            let late = try await store.process([box7(-55 * 60, 8_700, received: 20), box7(-55 * 60, 8_700, received: 20), box7(-52 * 60, 8_600, received: 20)])
            #expect(late.stored == 1 && late.duplicates == 1 && late.quarantined[.indexBackwards] == 1, "\(late)")
            #expect(try await store.readings().map(\.energy) == [8_000, 8_500, 8_700, 9_000, 10_000])
            try await store.fold()
            let from = t0.adding(seconds: -70 * 60).millisecondsSince1970, to = t0.millisecondsSince1970
            #expect(try await store.changes() == ["box-7:\(from)-\(to)"], "from the earliest late reading to the reading after the last one")
        }
    }

    @Test(arguments: StoreBackend.allCases) func aConfirmedResetReleasesTheHeldReadingsAcrossARestart(_ backend: StoreBackend) async throws {
        try await StoreFixture.run(backend, at: Self.t0) { store in
            _ = try await store.process([box7(0, 5_000_000)])
            _ = try await store.process([box7(300, 20)])
            _ = try await store.process([box7(600, 60)])
            #expect(try await store.quarantine().map(\.reason) == [.indexBackwards, .indexBackwards])
            try await store.restart(at: Self.t0)
            let report = try await store.process([box7(900, 100)])
            #expect(report.resets == 1 && report.released == 2 && report.stored == 3)
            #expect(try await store.readings().map { "\($0.energy)@\($0.segment)" } == ["5000000@0", "20@1", "60@1", "100@1"])
            #expect(try await store.quarantine().map { $0.releasedAt == nil } == [false, false])
            let at = t0.adding(seconds: 300).millisecondsSince1970
            #expect(try await store.segments() == ["box-7#1:\(at) 5000000>20"])
        }
    }

    @Test(arguments: StoreBackend.allCases) func aBurstInOneMillisecondAndADeviceImportedWhileRunning(_ backend: StoreBackend) async throws {
        try await StoreFixture.run(backend, at: Self.t0) { store in
            var burst = (2..<102).map { index in message("teleinfo/041876097381", #"{"EAST":{"raw":"x","value":\#(1000 + index * 10)}}"#, at: 0) }
            burst.insert(message("teleinfo/041876097381", #"{"EAST":{"raw":"x","value":907658688}}"#, at: 0), at: 50)
            let backlog = try await store.process(burst)
            #expect(backlog.stored == 100)
            #expect(backlog.quarantined == [.implausibleJump: 1])
            let first = try await store.process([message("meters/box-new/reading", canonical(t0, 1), at: 0)])
            #expect(first.quarantined[.unknownDevice] == 1)
            try await store.importRegistry("estate;building;dwelling;device;kind;format;since\nOutreau;OUT-A;OUT-A-09;box-new;meter;canonical;2025-01-01\n")
            // The processor re-reads the registry at most once a minute.
            #expect(try await store.process([message("meters/box-new/reading", canonical(t0, 1), at: 61)]).stored == 1)
        }
    }

    /// A meter replaced in its dwelling: the resident sees the old meter only while it served
    /// their dwelling; staff see its whole series; others are refused; installation periods alike.
    @Test(arguments: StoreBackend.allCases) func theReadingsRouteWindowsByIdentity(_ backend: StoreBackend) async throws {
        let csv = TestSupport.samplesRegistryCSV + "\nOutreau;OUT-A;OUT-A-09;box-old;meter;canonical;2025-01-01;;\nOutreau;OUT-A;OUT-A-09;box-new;meter;canonical;2026-11-27;;\n"
        try await StoreFixture.run(backend, registryCSV: csv, at: Self.t0) { store in
            // 2026-11-27 00:00 in Paris is 2026-11-26T23:00Z.
            let replaced = Instant.parseRFC3339("2026-11-26T23:00:00Z")!
            let instants = [-7200, -3600, -60, 0, 60, 3600].map { replaced.adding(seconds: Int64($0)) }
            let payload = "[" + instants.enumerated().map { canonical($0.element, Int64(1000 + $0.offset * 10)) }.joined(separator: ",") + "]"
            #expect(try await store.process([message("meters/box-old/reading", payload, at: 0)]).stored == 6)
            let zone = try LocalTimeZone(identifier: "Europe/Paris")
            let from = replaced.adding(seconds: -86_400), to = replaced.adding(seconds: 86_400)
            func seen(_ identity: Identity) async throws -> [Int64] {
                try await store.store.readings(device: "box-old", from: from, to: to, limit: 100, by: identity, zone: zone).map(\.energy.value)
            }
            #expect(try await seen(.testStaff) == [1000, 1010, 1020, 1030, 1040, 1050])
            #expect(try await seen(Identity(name: "res", role: .resident, dwelling: "OUT-A-09")) == [1000, 1010, 1020])
            for other in [Identity(name: "asso", role: .association, estate: "Outreau"), Identity(name: "other", role: .resident, dwelling: "OUT-A-01")] {
                await #expect(throws: HubError.self, "a meter is its dwelling's") { try await seen(other) }
            }
            await #expect(throws: HubError.forbidden("device nobody is not one you may see", field: "device")) {
                try await store.store.readings(device: "nobody", from: from, to: to, limit: 10, by: Identity(name: "res", role: .resident, dwelling: "OUT-A-09"), zone: zone)
            }
            await #expect(throws: HubError.notFound(field: "device", "no device nobody in the registry")) {
                try await store.store.readings(device: "nobody", from: from, to: to, limit: 10, by: .testStaff, zone: zone)
            }
            let periods = try await store.store.installationPeriods(device: "box-old")
            #expect(periods.map { "\($0.dwelling ?? "-") \($0.since) \($0.until.map { "\($0)" } ?? "...")" } == ["OUT-A-09 2025-01-01 2026-11-27"])
            #expect(try await store.store.installationPeriods(device: "041876000117").map(\.kind) == [.pv])
            #expect(try await store.store.installationPeriods(device: "nobody").isEmpty)
        }
    }

    /// The writer's connection killed by the server: either the store sees it closed and opens
    /// a new one before the batch, or the batch fails with an error the store calls "cannot write
    /// now" (the writer keeps it and pauses intake) and the next attempt opens a new one. Either
    /// way the batch is stored once.
    @Test func aLostConnectionIsReplaced() async throws {
        try await StoreFixture.run(.postgres, at: Self.t0) { fixture in
            let postgres = try #require(fixture.postgres)
            _ = try await fixture.process([box7(0, 1000)])
            _ = try await postgres.transaction { connection in
                try await connection.query("""
                    SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
                    """, logger: postgres.logger)
            }
            try await Task.sleep(for: .milliseconds(200))
            let batch = [box7(60, 1010), box7(120, 1020)]
            let report: BatchReport
            do {
                report = try await fixture.process(batch)
            } catch {
                #expect(fixture.store.isUnavailable(error), "\(String(reflecting: error))")
                report = try await fixture.process(batch)
            }
            #expect(report.stored == 2)
            #expect(try await fixture.readings().map(\.energy) == [1000, 1010, 1020])
        }
    }

    /// The months the writer asks partitions for are UTC months, before 1970 too.
    @Test func theMonthOfAPartitionIsTheUTCMonth() {
        func key(_ text: String) -> Int64 { UTCMonth.key(Instant.parseRFC3339(text)!.millisecondsSince1970) }
        #expect(key("2026-10-31T23:59:59.999Z") == 2026 * 12 + 9)
        #expect(key("2026-11-01T00:00:00Z") == 2026 * 12 + 10)
        #expect(key("2026-11-01T00:30:00+01:00") == 2026 * 12 + 9, "23:30 UTC on October 31st")
        #expect(UTCMonth.key(-1) == 1969 * 12 + 11)
    }

    /// A batch of N readings is one INSERT: the statements the writer's connection sent, counted
    /// by the store (each a round trip): the devices' lock, the check, the insert (alone, its own
    /// transaction), the unlock, and the month's partition once.
    @Test func aBatchOfReadingsIsOneStatementOnPostgres() async throws {
        try await StoreFixture.run(.postgres, at: Self.t0) { fixture in
            let store = try #require(fixture.store as? PostgresReadingStore)
            _ = try await fixture.process([box7(0, 1000)])
            let before = store.statementsSent
            let batch = (1...500).map { box7(Int64($0), 1000 + Int64($0)) }
            #expect(try await fixture.process(batch).stored == 500)
            #expect(store.statementsSent - before == 4, "the device's lock, what other processes wrote, one INSERT of 500 readings (its own transaction), unlock")
            // A new month: its partition first, in a transaction of its own.
            let december = Instant.parseRFC3339("2026-12-01T00:00:00Z")!
            let next = (0..<500).map { index in
                message("meters/box-7/reading", canonical(december.adding(seconds: Int64(index)), 3000 + Int64(index)), at: 4 * 86_400 + 300)
            }
            let settled = store.statementsSent
            #expect(try await fixture.process(next).stored == 500)
            #expect(store.statementsSent - settled == 5, "lock, check, reading_partition, one INSERT, unlock")
            #expect(try await fixture.readings().count == 1001)
        }
    }

    /// Retention (in another process, or this one's lease) drops a month's partition the writer
    /// knew: the next reading of that month fails once, then its batch is stored again.
    @Test func aMonthDroppedByRetentionIsCreatedAgainForALateReading() async throws {
        try await StoreFixture.run(.postgres, at: Self.t0) { fixture in
            let postgres = try #require(fixture.postgres)
            _ = try await fixture.process([box7(-86_400, 500), box7(0, 1000)])
            _ = try await postgres.transaction { connection in
                try await connection.query("DROP TABLE reading_2026_11", logger: postgres.logger)
            }
            let late = [box7(-3_600, 900, received: 60)]
            await #expect(throws: (any Error).self) { try await fixture.process(late) }
            #expect(try await fixture.process(late).stored == 1)
            #expect(try await fixture.readings().map(\.energy) == [900])
        }
    }

    /// A batch's late readings (common when several processes share a device's messages) are
    /// looked up together: one statement for their stored neighbours, not three per reading.
    @Test func aBatchsLateReadingsAreLookedUpInOneStatementOnPostgres() async throws {
        try await StoreFixture.run(.postgres, at: Self.t0) { fixture in
            let store = try #require(fixture.store as? PostgresReadingStore)
            _ = try await fixture.process([box7(-200 * 60, 800), box7(0, 1000)])
            let before = store.statementsSent
            // 100 readings between the two stored ones, one a minute, received after both; the
            // last of them twice (a duplicate within the batch) and one the stored index refuses.
            var late = (1...100).map { box7(Int64(-200 + $0) * 60, 800 + Int64($0), received: 60) }
            late.append(box7(-100 * 60, 900, received: 60))
            late.append(box7(-200 * 60, 801, received: 60))
            let report = try await fixture.process(late)
            #expect(report.stored == 100 && report.duplicates == 1 && report.quarantined[.conflictingDuplicate] == 1, "\(report)")
            #expect(store.statementsSent - before == 9, "lock, check, the late readings' neighbours, BEGIN, a quarantine id, the quarantine row, one INSERT, COMMIT, unlock")
            #expect(try await fixture.readings().map(\.energy) == Array(800...900) + [1000])
        }
    }
}

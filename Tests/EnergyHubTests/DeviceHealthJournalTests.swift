import Foundation
import GRDB
import HubTestSupport
import HubCore
import Shared
import Testing
@testable import EnergyCore
@testable import EnergyHub

/// The devices' health (the staff's devices page, the building statements) reads a device's
/// readings through the journal's list of devices, not the `reading` view that scans the whole
/// journal per device: the same silences whether a reading is still in the journal or folded, and
/// another device's unfolded readings change nothing.
@Suite struct DeviceHealthJournalTests {
    static let registry = """
        estate;building;dwelling;device;kind;format;since
        E;B;D1;m-1;meter;canonical;2026-01-01
        E;B;D2;m-2;meter;canonical;2026-01-01
        """

    @Test func silencesAreTheSameFromTheJournalAndFolded() async throws {
        let fixture = try SavingsFixture(registry: Self.registry)
        // m-1: hourly from 1 to 7 March, silent from 3 March 00:00Z to 5 March 00:00Z; m-2: hourly throughout.
        var m1: [(String, Int64)] = []
        var m2: [(String, Int64)] = []
        for step in 0..<(7 * 24) {
            let time = SavingsFixture.at("2026-03-01T00:00:00Z").adding(seconds: Int64(step) * 3600).rfc3339
            if !(48..<96).contains(step) { m1.append((time, 1_000 + Int64(step) * 100)) }
            m2.append((time, 5_000 + Int64(step) * 100))
        }
        try fixture.publish("m-1", m1)
        try fixture.publish("m-2", m2)
        let (from, to) = (fixture.date("2026-03-01"), fixture.date("2026-03-07"))
        let now = SavingsFixture.at("2026-03-10T00:00:00Z")
        let unfolded = try await fixture.database.pool.read { db in try ReadingJournal.count(db) }
        #expect(unfolded == 168 + 120, "nothing folded yet")
        let fromJournal = try await fixture.reports.deviceHealth("B", from: from, to: to, now: now)
        try await fixture.database.pool.write { db in _ = try ReadingJournal.fold(db) }
        let folded = try await fixture.reports.deviceHealth("B", from: from, to: to, now: now)
        #expect(fromJournal == folded)
        let m1Health = try #require(folded.first { $0.device == "m-1" })
        #expect(m1Health.silences == [DeviceHealth.Silence(from: SavingsFixture.at("2026-03-02T23:00:00Z"), to: SavingsFixture.at("2026-03-05T00:00:00Z"))])
        #expect(folded.first { $0.device == "m-2" }?.silences == [])
    }
}

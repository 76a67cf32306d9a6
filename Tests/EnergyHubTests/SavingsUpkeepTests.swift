import Foundation
import GRDB
import HubTestSupport
import HubCore
import Shared
import Testing
@testable import EnergyCore
@testable import EnergyHub

/// Readings through the real ingest, slot and daily figures kept by the upkeep, compared with
/// figures computed by hand; misbehaving devices (energy.md section 2, misbehaving.jsonl).
@Suite struct SavingsUpkeepTests {
    static let registry = """
        estate;building;dwelling;device;kind;format;since;tariff;share
        E;B;;pv-1;pv;canonical;2026-06-01;;
        E;B;D1;m-1;meter;canonical;2026-06-01;edf-bleu-hphc 11:00-17:00;0.5
        E;B;D2;m-2;meter;canonical;2026-06-01;;0.5
        """

    /// 2026-06-10, summer time (UTC+2): local 10:00-12:00 is 08:00Z-10:00Z.
    /// PV slots 500, 1000, 300, 0; D1 400 a slot; D2 200 a slot. Pro rata:
    /// slot 1: 500 < 600: D1 floor(400*500/600) = 333, D2 500 - 333 = 167;
    /// slot 2: 1000 >= 600: 400 and 200, 400 surplus; slot 3: 300: D1 200, D2 100; slot 4: nothing.
    /// D1 (off-peak 11:00-17:00): 733 Wh at 0.2081 + 200 Wh at 0.1635 = 185,237,300 nano-euros: 19 cents.
    /// D2 (base): 467 Wh at 0.1952 = 91,158,400 nano-euros: 9 cents.
    /// Building: production 1800, allocated 1400, surplus 400 (1.6 cents at 0.04: 2 cents).
    @Test func theFiguresOfADayAreTheOnesComputedByHand() async throws {
        let hub = try SavingsFixture(registry: SavingsUpkeepTests.registry)
        try hub.publish("pv-1", [("2026-06-10T08:00:00Z", 0), ("2026-06-10T08:30:00Z", 500), ("2026-06-10T09:00:00Z", 1500), ("2026-06-10T09:30:00Z", 1800), ("2026-06-10T10:00:00Z", 1800)])
        try hub.publish("m-1", [("2026-06-10T08:00:00Z", 10_000), ("2026-06-10T08:30:00Z", 10_400), ("2026-06-10T09:00:00Z", 10_800), ("2026-06-10T09:30:00Z", 11_200), ("2026-06-10T10:00:00Z", 11_600)])
        try hub.publish("m-2", [("2026-06-10T08:00:00Z", 20_000), ("2026-06-10T08:30:00Z", 20_200), ("2026-06-10T09:00:00Z", 20_400), ("2026-06-10T09:30:00Z", 20_600), ("2026-06-10T10:00:00Z", 20_800)])
        try hub.update(now: "2026-06-11T00:00:00Z")
        let now = SavingsFixture.at("2026-06-11T00:00:00Z")
        let day = hub.date("2026-06-10")

        let d1 = try await hub.reports.dwelling("D1", from: day, to: day, now: now)
        #expect(d1.consumptionWh == 1600)
        #expect(d1.allocatedWh == 933)
        #expect(d1.gridWh == 667)
        #expect(d1.savingsCents == 19)
        #expect(d1.slots == SlotCounts(measured: 4, estimated: 0, missing: 44))
        #expect(d1.days.map(\.savingsCents) == [19])

        let d2 = try await hub.reports.dwelling("D2", from: day, to: day, now: now)
        #expect(d2.consumptionWh == 800)
        #expect(d2.allocatedWh == 467)
        #expect(d2.savingsCents == 9)

        let building = try await hub.reports.building("B", from: day, to: day, now: now)
        #expect(building.productionWh == 1800)
        #expect(building.allocatedWh == 1400)
        #expect(building.surplusWh == 400)
        #expect(building.consumptionWh == 2400)
        #expect(building.selfConsumptionRate == Decimal(string: "0.7778"))
        #expect(building.selfSufficiencyRate == Decimal(string: "0.5833"))
        #expect(building.surplusRevenueCents == 2)
        #expect(building.households == 2)
        #expect(building.allocationKey == "pro_rata")

        // Static 0.5/0.5 leaves surplus; with redistribution it is handed on.
        try hub.admin.setKey(building: "B", key: .staticShares, since: day)
        try hub.update(now: "2026-06-11T00:00:00Z")
        // slot 1: offers 250/250: D1 250, D2 200 (50 surplus); slot 2: 400, 200 (400); slot 3: 150, 150.
        let staticBuilding = try await hub.reports.building("B", from: day, to: day, now: now)
        #expect(staticBuilding.allocatedWh == 1350)
        #expect(staticBuilding.surplusWh == 450)
        #expect(staticBuilding.allocationKey == "static")
        try hub.admin.setKey(building: "B", key: .staticRedistributed, since: day)
        try hub.update(now: "2026-06-11T00:00:00Z")
        // slot 1: the 50 D2 leaves go to D1 (300); slot 3: both short, nothing moves (150, 150).
        let redistributed = try await hub.reports.building("B", from: day, to: day, now: now)
        #expect(redistributed.allocatedWh == 1400)
        #expect(redistributed.surplusWh == 400)
        #expect(try await hub.reports.dwelling("D1", from: day, to: day, now: now).allocatedWh == 300 + 400 + 150)
    }

    @Test func perSlotCoefficientsFromAFile() async throws {
        let hub = try SavingsFixture(registry: SavingsUpkeepTests.registry)
        try hub.publish("pv-1", [("2026-06-10T08:00:00Z", 0), ("2026-06-10T08:30:00Z", 500), ("2026-06-10T09:00:00Z", 1500)])
        try hub.publish("m-1", [("2026-06-10T08:00:00Z", 10_000), ("2026-06-10T08:30:00Z", 10_400), ("2026-06-10T09:00:00Z", 10_800)])
        try hub.publish("m-2", [("2026-06-10T08:00:00Z", 20_000), ("2026-06-10T08:30:00Z", 20_200), ("2026-06-10T09:00:00Z", 20_400)])
        try hub.admin.setKey(building: "B", key: .perSlot, since: hub.date("2026-06-01"))
        // Only the first slot has coefficients (0.9 / 0.1); the second falls back to pro rata.
        let csv = "building;dwelling;slot_start;coefficient\nB;D1;2026-06-10T08:00:00Z;0.9\nB;D2;2026-06-10T08:00:00Z;0.1\n"
        #expect(try hub.admin.importCoefficients(Data(csv.utf8)) == 2)
        let bad = "building;dwelling;slot_start;coefficient\nB;D1;2026-06-10T08:00:00Z;0.9\nB;D2;2026-06-10T08:00:00Z;0.2\n"
        let error = #expect(throws: HubError.self) { try hub.admin.importCoefficients(Data(bad.utf8)) }
        #expect(error?.field == "line 3, column coefficient")
        let misaligned = "building;dwelling;slot_start;coefficient\nB;D1;2026-06-10T08:10:00Z;0.9\n"
        #expect(throws: HubError.self) { try hub.admin.importCoefficients(Data(misaligned.utf8)) }
        try hub.update(now: "2026-06-11T00:00:00Z")
        let now = SavingsFixture.at("2026-06-11T00:00:00Z")
        let day = hub.date("2026-06-10")
        // Slot 1: D1 min(400, 450) = 400, D2 min(200, 50) = 50, surplus 50. Slot 2: 1000 >= 600: 400 + 200.
        #expect(try await hub.reports.dwelling("D1", from: day, to: day, now: now).allocatedWh == 800)
        #expect(try await hub.reports.dwelling("D2", from: day, to: day, now: now).allocatedWh == 250)
        #expect(try await hub.reports.building("B", from: day, to: day, now: now).surplusWh == 50 + 400)
    }

    @Test func staticSharesAddingUpToMoreThanOneAreReportedNotAllocated() async throws {
        let registry = SavingsUpkeepTests.registry.replacingOccurrences(of: ";;0.5", with: ";;0.7")
        let hub = try SavingsFixture(registry: registry)
        try hub.publish("pv-1", [("2026-06-10T08:00:00Z", 0), ("2026-06-10T08:30:00Z", 500)])
        try hub.publish("m-1", [("2026-06-10T08:00:00Z", 10_000), ("2026-06-10T08:30:00Z", 10_400)])
        try hub.publish("m-2", [("2026-06-10T08:00:00Z", 20_000), ("2026-06-10T08:30:00Z", 20_200)])
        try hub.admin.setKey(building: "B", key: .staticShares, since: hub.date("2026-06-01"))
        let report = try hub.update(now: "2026-06-11T00:00:00Z")
        #expect(report.problems.contains { $0.contains("add up to 1.2, more than 1") })
        let building = try await hub.reports.building("B", from: hub.date("2026-06-10"), to: hub.date("2026-06-10"), now: SavingsFixture.at("2026-06-11T00:00:00Z"))
        #expect(building.allocatedWh == 0)
        #expect(building.problems.count == 1)
        #expect(building.slots.measured == 0)
    }

    // MARK: - Misbehaving devices

    func teleinfo(_ index: Int64) -> String {
        "{\"ADCO\": {\"raw\": \"021861348497\", \"value\": \"021861348497\"}, \"OPTARIF\": {\"raw\": \"BASE\", \"value\": \"BASE\"}, \"BASE\": {\"raw\": \"\(String(index + 1_000_000_000).dropFirst())\", \"value\": \(index)}}"
    }

    /// misbehaving.jsonl's transient zero and corrupted jump (a teleinfo meter, stamped on
    /// receipt) between good indexes every 30 minutes: quarantined, never rebased on; the slots
    /// are 400 Wh each, as the good readings say.
    @Test func aTransientZeroAndACorruptedJumpChangeNothing() async throws {
        let registry = SavingsUpkeepTests.registry + "\nE;B;D3;021861348497;meter;teleinfo;2026-06-01;;"
        let hub = try SavingsFixture(registry: registry)
        let lines = try TestSupport.samples("misbehaving")
        let zero = lines[0], jump = lines[1]
        #expect(zero.note.contains("transient zero") && jump.note.contains("corrupted"))
        func receive(_ payload: String, _ time: String) throws -> BatchReport {
            try hub.processor.process([IncomingMessage(topic: "teleinfo/021861348497", payload: Array(payload.utf8), receivedAt: SavingsFixture.at(time))])
        }
        _ = try receive(teleinfo(1_000_000), "2026-06-10T08:00:00Z")
        _ = try receive(teleinfo(1_000_400), "2026-06-10T08:30:00Z")
        #expect(try receive(zero.payload, "2026-06-10T08:40:00Z").quarantined[.indexBackwards] == 1)
        #expect(try receive(jump.payload, "2026-06-10T08:50:00Z").quarantined[.implausibleJump] == 1)
        _ = try receive(teleinfo(1_000_800), "2026-06-10T09:00:00Z")
        _ = try receive(teleinfo(1_001_200), "2026-06-10T09:30:00Z")
        try hub.update(now: "2026-06-11T00:00:00Z")
        #expect(try hub.deviceSlots("021861348497") == [400, 400, 400])
        let d3 = try await hub.reports.dwelling("D3", from: hub.date("2026-06-10"), to: hub.date("2026-06-10"), now: SavingsFixture.at("2026-06-11T00:00:00Z"))
        #expect(d3.consumptionWh == 1200)
        #expect(d3.slots.measured == 3)
    }

    /// A genuine reset: 5000, 5200, then 10, 60, 110 every 30 minutes. After three readings the
    /// reset is confirmed: a new segment. 08:00-08:30 is 200 Wh, 08:30-09:00 spans the reset and
    /// is missing, then 50 and 50.
    @Test func aResetStartsASegmentAndItsSlotIsMissing() async throws {
        let hub = try SavingsFixture(registry: SavingsUpkeepTests.registry)
        let report = try hub.publish("m-2", [("2026-06-10T08:00:00Z", 5000), ("2026-06-10T08:30:00Z", 5200), ("2026-06-10T09:00:00Z", 10),
                                             ("2026-06-10T09:30:00Z", 60), ("2026-06-10T10:00:00Z", 110)])
        #expect(report.resets == 1)
        try hub.update(now: "2026-06-11T00:00:00Z")
        #expect(try hub.deviceSlots("m-2") == [200, 50, 50])
        let d2 = try await hub.reports.dwelling("D2", from: hub.date("2026-06-10"), to: hub.date("2026-06-10"), now: SavingsFixture.at("2026-06-11T00:00:00Z"))
        #expect(d2.consumptionWh == 300)
        #expect(d2.slots == SlotCounts(measured: 3, estimated: 0, missing: 45))
    }

    /// D1's box is replaced: m-1 until 2026-06-11 (local), m-1b from then. The old box still
    /// reports after midnight: not counted. The new box reports from 08:00 local: 00:00-08:00 of the
    /// 11th is missing. 10th: 4 x 100 Wh (22:00-24:00 local); 11th: 2 x 150 Wh.
    @Test func aReplacedBoxContinuesTheDwellingsSeries() async throws {
        let registry = SavingsUpkeepTests.registry + "\nE;B;D1;m-1b;meter;canonical;2026-06-11;;"
        let hub = try SavingsFixture(registry: registry)
        try hub.publish("m-1", [("2026-06-10T20:00:00Z", 3000), ("2026-06-10T20:30:00Z", 3100), ("2026-06-10T21:00:00Z", 3200),
                                ("2026-06-10T21:30:00Z", 3300), ("2026-06-10T22:00:00Z", 3400), ("2026-06-10T22:30:00Z", 3500)])
        try hub.publish("m-1b", [("2026-06-11T06:00:00Z", 12_000_000), ("2026-06-11T06:30:00Z", 12_000_150), ("2026-06-11T07:00:00Z", 12_000_300)])
        try hub.update(now: "2026-06-12T00:00:00Z")
        let now = SavingsFixture.at("2026-06-12T00:00:00Z")
        let d1 = try await hub.reports.dwelling("D1", from: hub.date("2026-06-10"), to: hub.date("2026-06-11"), now: now)
        #expect(d1.days.map(\.consumptionWh) == [400, 300])
        #expect(d1.slots.measured == 6)
        #expect(d1.slots.missing == 96 - 6)
        #expect(try hub.deviceSlots("m-1") == [100, 100, 100, 100, 100], "the old box's own slots are kept, just not counted after its period")
    }

    /// A week without readings (June 1 to June 8, local midnights, 33,600 Wh): every slot of the
    /// week is 100 Wh and estimated; each day 4,800 Wh. The PV gives 60 Wh a slot all week and D1
    /// has no readings (excluded), so D2 gets 60 a slot: 2,880 Wh a day.
    /// Then the box backfills its buffered week: nights (00:00-08:00 local) 50 Wh a slot, days 125:
    /// still 4,800 a day, now measured; D2 gets min(C, 60): 16 x 50 + 32 x 60 = 2,720 a day and
    /// the building a surplus of 16 x 10 = 160 a day. Exactly the week's 336 slots are recomputed,
    /// and June, already exported, is flagged as revised.
    @Test func aWeekLongGapThenTheLateBackfillOfTheBufferedWeek() async throws {
        let hub = try SavingsFixture(registry: SavingsUpkeepTests.registry)
        let grid = hub.configuration.grid
        let start = SavingsFixture.at("2026-05-31T22:00:00Z")
        let end = SavingsFixture.at("2026-06-07T22:00:00Z")
        let pv = stride(from: Int64(0), through: 337, by: 1).map { (start.adding(milliseconds: $0 * grid.milliseconds), 1_000 + 60 * $0) }
        try hub.publishBuffer("pv-1", pv, receivedAt: end.adding(seconds: 1800))
        try hub.publish("m-2", [("2026-05-31T22:00:00Z", 50_000), ("2026-06-07T22:00:00Z", 83_600), ("2026-06-07T22:30:00Z", 83_650)])
        try hub.update(now: "2026-06-08T10:00:00Z")
        let now = SavingsFixture.at("2026-06-08T10:00:00Z")
        let week = (hub.date("2026-06-01"), hub.date("2026-06-07"))

        let before = try await hub.reports.dwelling("D2", from: week.0, to: week.1, now: now)
        #expect(before.days.map(\.consumptionWh) == [Int64](repeating: 4800, count: 7))
        #expect(before.days.map(\.allocatedWh) == [Int64](repeating: 2880, count: 7))
        #expect(before.slots == SlotCounts(measured: 0, estimated: 336, missing: 0))
        #expect(try await hub.reports.building("B", from: week.0, to: week.1, now: now).surplusWh == 0)
        try hub.admin.recordExport(month: "2026-06", at: now)

        // The buffered week arrives late, in one message.
        var backfill: [(Instant, Int64)] = []
        var index: Int64 = 50_000
        for offset in Int64(1)..<336 {
            let slotStart = start.adding(milliseconds: (offset - 1) * grid.milliseconds)
            let local = hub.configuration.zone.localDateTime(of: slotStart)
            index += local.hour < 8 ? 50 : 125
            backfill.append((start.adding(milliseconds: offset * grid.milliseconds), index))
        }
        #expect(index + 125 == 83_600, "the last slot (23:30-24:00) brings it to the stored index")
        let stored = try hub.publishBuffer("m-2", backfill, receivedAt: SavingsFixture.at("2026-06-08T10:05:00Z"))
        #expect(stored.stored == 335)
        let report = try hub.update(now: "2026-06-08T10:10:00Z")
        #expect(report.deviceSlotsChanged == 336)
        #expect(report.buildingSlotsRecomputed == 336, "exactly the slots the late readings touch")
        #expect(report.daysRecomputed == 7)
        #expect(report.monthsRevised == 1)

        let after = try await hub.reports.dwelling("D2", from: week.0, to: week.1, now: now)
        #expect(after.days.map(\.consumptionWh) == [Int64](repeating: 4800, count: 7))
        #expect(after.days.map(\.allocatedWh) == [Int64](repeating: 2720, count: 7))
        #expect(after.slots == SlotCounts(measured: 336, estimated: 0, missing: 0))
        let building = try await hub.reports.building("B", from: week.0, to: week.1, now: now)
        #expect(building.surplusWh == 7 * 160)
        #expect(building.revisedMonths == ["2026-06"])
        #expect(after.revisedMonths == ["2026-06"])
        // Exporting again clears the flag.
        try hub.admin.recordExport(month: "2026-06", at: SavingsFixture.at("2026-06-08T11:00:00Z"))
        #expect(try await hub.reports.building("B", from: week.0, to: week.1, now: now).revisedMonths.isEmpty)
    }

    @Test func aLateReadingInsideAGapRecomputesOnlyTheSlotsItTouches() async throws {
        let hub = try SavingsFixture(registry: SavingsUpkeepTests.registry)
        try hub.publish("m-2", [("2026-06-10T08:00:00Z", 1000), ("2026-06-10T10:00:00Z", 1400), ("2026-06-10T10:30:00Z", 1500)])
        try hub.update(now: "2026-06-11T00:00:00Z")
        #expect(try hub.deviceSlots("m-2") == [100, 100, 100, 100, 100])
        // A late reading at 08:30 (1300): 08:00-08:30 is 300, the three slots after share 100.
        try hub.publish("m-2", [("2026-06-10T08:30:00Z", 1300)])
        let report = try hub.update(now: "2026-06-11T00:00:00Z")
        #expect(try hub.deviceSlots("m-2") == [300, 33, 33, 34, 100])
        // The change lies between the stored readings at 08:00 and 10:00: those four slots are
        // recomputed and reallocated, the building's day summed again.
        #expect(report.deviceSlotsRecomputed == 4)
        #expect(report.deviceSlotsChanged == 4)
        #expect(report.buildingSlotsRecomputed == 4)
        #expect(report.daysRecomputed == 1)
    }

    @Test func changingTheSlotLengthRebuildsFromTheReadings() async throws {
        let hub = try SavingsFixture(registry: SavingsUpkeepTests.registry)
        try hub.publish("m-2", [("2026-06-10T08:00:00Z", 1000), ("2026-06-10T09:00:00Z", 1400)])
        try hub.update(now: "2026-06-11T00:00:00Z")
        #expect(try hub.deviceSlots("m-2") == [200, 200])
        var settings = EnergySettings()
        settings.slotMinutes = 15
        let quarter = SavingsUpkeep(database: hub.database, configuration: try settings.validated())
        let report = try quarter.bringUpToDate(now: SavingsFixture.at("2026-06-11T00:00:00Z"))
        #expect(report.rebuilt)
        #expect(try hub.deviceSlots("m-2") == [100, 100, 100, 100])
        let day = hub.date("2026-06-10")
        let d2 = try await EnergyReports(database: hub.database, configuration: try settings.validated()).dwelling("D2", from: day, to: day, now: SavingsFixture.at("2026-06-11T00:00:00Z"))
        #expect(d2.consumptionWh == 400)
        #expect(d2.slots == SlotCounts(measured: 4, estimated: 0, missing: 92))
    }

    @Test func aTariffChangeWithADateRepricesFromThatDate() async throws {
        let hub = try SavingsFixture(registry: SavingsUpkeepTests.registry)
        // The PV is idle between the two mornings, so only 08:00Z-08:30Z (10:00 local) is shared.
        try hub.publish("pv-1", [("2026-06-10T08:00:00Z", 0), ("2026-06-10T08:30:00Z", 1000), ("2026-06-11T08:00:00Z", 1000), ("2026-06-11T08:30:00Z", 2000)])
        try hub.publish("m-2", [("2026-06-10T08:00:00Z", 0), ("2026-06-10T08:30:00Z", 1000), ("2026-06-11T08:00:00Z", 2000), ("2026-06-11T08:30:00Z", 3000)])
        try hub.update(now: "2026-06-12T00:00:00Z")
        let now = SavingsFixture.at("2026-06-12T00:00:00Z")
        let first = try await hub.reports.dwelling("D2", from: hub.date("2026-06-10"), to: hub.date("2026-06-11"), now: now)
        // Base price 0.1952: 1000 Wh -> 19.52 cents -> 20 each day (D1 has no readings).
        #expect(first.days.map(\.savingsCents) == [20, 20])
        try hub.admin.setTariff(dwelling: "D2", cell: "edf-bleu-hphc 10:00-11:00", since: hub.date("2026-06-11"))
        #expect(throws: HubError.self) { try hub.admin.setTariff(dwelling: "D2", cell: "edf-bleu-hphc 10h-11h", since: hub.date("2026-06-11")) }
        try hub.update(now: "2026-06-12T00:00:00Z")
        // From the 11th, 10:00 local is off-peak: 1000 Wh at 0.1635 = 16.35 -> 16 cents.
        let second = try await hub.reports.dwelling("D2", from: hub.date("2026-06-10"), to: hub.date("2026-06-11"), now: now)
        #expect(second.days.map(\.savingsCents) == [20, 16])
        #expect(second.savingsCents == 36, "19.52 + 16.35 = 35.87 rounded once")
    }

    @Test func theAnnualProjectionWeighsTheDaysCountedByTheSeasons() async throws {
        let hub = try SavingsFixture(registry: SavingsUpkeepTests.registry)
        try hub.publish("pv-1", [("2026-06-10T08:00:00Z", 0), ("2026-06-10T08:30:00Z", 1000)])
        try hub.publish("m-2", [("2026-06-10T08:00:00Z", 0), ("2026-06-10T08:30:00Z", 1000)])
        try hub.update(now: "2026-06-11T00:00:00Z")
        // Served since June 1: 11 days counted up to June 11 (local); 195,200,000 nano-euros so far.
        // No twelve months of the building's own: the profile, June 130 per thousand, so the 11 days
        // usually bring 130,000 x 11 / 30 = 47,666.67 millionths of the year's production;
        // 195,200,000 / 0.04766667 = 4,095,104,895 nano-euros: 409.51 -> 410 cents (the old
        // extrapolation, x 365 / 11, said 648).
        let report = try await hub.reports.dwelling("D2", from: hub.date("2026-06-10"), to: hub.date("2026-06-10"), now: SavingsFixture.at("2026-06-11T00:00:00Z"))
        #expect(report.annualProjection.year == 2026)
        #expect(report.annualProjection.savingsSoFarCents == 20)
        #expect(report.annualProjection.daysCounted == 11)
        #expect(report.annualProjection.basis == .productionProfile)
        #expect(report.annualProjection.productionShareSoFarMillionths == 47_667)
        #expect(report.annualProjection.projectedCents == 410)
        #expect(report.annualProjection.promisedCents == 15_000)
    }

    @Test func retentionPurgesOldPersonalData() async throws {
        let hub = try SavingsFixture(registry: SavingsUpkeepTests.registry)
        try hub.publish("m-2", [("2026-06-10T08:00:00Z", 1000), ("2026-06-10T09:00:00Z", 1400)])
        try hub.publish("m-1", [("2026-06-20T08:00:00Z", 2000), ("2026-06-20T09:00:00Z", 2400)])
        try hub.update(now: "2026-06-21T00:00:00Z")
        var settings = EnergySettings()
        settings.retention.rawDays = 5
        settings.retention.dailyDays = 8
        // On 2026-06-21 (local): raw and slot data before 06-16 goes, daily figures before 06-13.
        let purge = try await SavingsRetention(database: hub.database, configuration: try settings.validated()).purge(now: SavingsFixture.at("2026-06-21T10:00:00Z"))
        #expect(purge.readings == 2)
        #expect(purge.days == 2, "D2's and the building's 06-10")
        #expect(purge.slots == 2 + 2 + 2, "m-2's device slots, D2's slots, the building's slots")
        let readings = try await hub.database.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM reading") }
        #expect(readings == 2)
        let days = try await hub.database.pool.read { db in try String.fetchAll(db, sql: "SELECT dwelling_id || ' ' || day FROM dwelling_day") }
        #expect(days == ["D1 2026-06-20"])
        #expect(try hub.deviceSlots("m-2") == [])
        #expect(try hub.deviceSlots("m-1") == [200, 200])
    }
}

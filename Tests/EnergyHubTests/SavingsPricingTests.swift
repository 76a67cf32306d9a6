import Foundation
import GRDB
import HubTestSupport
import HubCore
import Shared
import Testing
@testable import EnergyCore
@testable import EnergyHub

/// Tariff cells, dated prices, exact money, and the DST months through the building engine.
@Suite struct SavingsPricingTests {
    @Test func tariffCellsAreParsedAndExplained() throws {
        let hphc = try TariffPlan.parse("edf-bleu-hphc 22:26-06:26 12:00-14:00").get()
        #expect(hphc.option == .peakOffPeak)
        #expect(hphc.description == "edf-bleu-hphc 22:26-06:26 12:00-14:00")
        #expect(hphc.isOffPeak(minuteOfDay: 22 * 60 + 26))
        #expect(!hphc.isOffPeak(minuteOfDay: 22 * 60 + 25))
        #expect(hphc.isOffPeak(minuteOfDay: 3 * 60))
        #expect(!hphc.isOffPeak(minuteOfDay: 6 * 60 + 26), "the end is excluded")
        #expect(hphc.isOffPeak(minuteOfDay: 13 * 60 + 59))
        #expect(try TariffPlan.parse("EDF-BLEU-BASE").get() == .standard)
        let wrong: [(String, String)] = [
            ("", "empty"), ("tempo", "unknown plan"), ("edf-bleu-base 22:00-06:00", "no off-peak windows"),
            ("edf-bleu-hphc", "needs its off-peak windows"), ("edf-bleu-hphc 2:26-06:26", "HH:MM-HH:MM"),
            ("edf-bleu-hphc 22:00-24:00", "HH:MM-HH:MM"), ("edf-bleu-hphc 10:00-10:00", "empty"),
            ("edf-bleu-hphc 22:00-06:00 05:00-07:00", "overlap at 05:00"),
        ]
        for (cell, reason) in wrong {
            guard case .failure(let error) = TariffPlan.parse(cell) else { Issue.record("\(cell) was accepted"); continue }
            #expect(error.message.contains(reason), "\(cell): \(error.message)")
            #expect(TariffPlan.registryCheck(cell) == error.message)
        }
    }

    @Test func theRegistryImportRefusesABadTariffCellWithItsLine() throws {
        let database = try TestSupport.database(extraSchemas: [SavingsSchema.register])
        let importer = RegistryImporter(database: database)
        let csv = """
            estate;building;dwelling;device;kind;format;since;tariff
            E;B;D1;m-1;meter;canonical;2026-01-01;edf-bleu-hphc 22:26-06:26
            E;B;D2;m-2;meter;canonical;2026-01-01;edf-bleu-hphc 25:00-06:00
            """
        let error = #expect(throws: HubError.self) { try importer.importCSV(Data(csv.utf8)) }
        #expect(error?.field == "line 3, column tariff")
        #expect(error?.message.contains("HH:MM-HH:MM") == true)
        let stored = try database.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM dwelling_tariff") }
        #expect(stored == 0, "all or nothing")
        _ = try importer.importCSV(Data(csv.replacingOccurrences(of: "25:00", with: "01:00").utf8))
        let tariffs = try database.pool.read { db in try String.fetchAll(db, sql: "SELECT tariff FROM dwelling_tariff ORDER BY dwelling_id") }
        #expect(tariffs == ["edf-bleu-hphc 22:26-06:26", "edf-bleu-hphc 01:00-06:00"])
    }

    @Test func pricesAreDated() {
        let prices = RegulatedPrices.edfBleu
        let hphc = try! TariffPlan.parse("edf-bleu-hphc 11:00-17:00").get()
        func at(_ text: String) -> LocalDateTime { LocalDateTime(parsing: text)! }
        #expect(prices.price(plan: .standard, at: at("2025-01-31T12:00:00")) == 251_600)
        #expect(prices.price(plan: .standard, at: at("2025-02-01T00:00:00")) == 201_600)
        #expect(prices.price(plan: .standard, at: at("2025-08-01T00:00:00")) == 195_200)
        #expect(prices.price(plan: hphc, at: at("2025-11-15T12:30:00")) == 163_500, "an afternoon off-peak window, when PV produces")
        #expect(prices.price(plan: hphc, at: at("2025-11-15T17:00:00")) == 208_100)
        #expect(prices.price(plan: hphc, at: at("2025-03-01T11:00:00")) == 169_600)
        #expect(prices.price(plan: hphc, at: at("2024-06-01T10:30:00")) == 270_000)
    }

    /// A window at odd minutes (12:10-14:40) straddles the midday slots: each is priced by its
    /// minutes in each period, its energy split in proportion (energy.md section 5).
    @Test func aSlotStraddlingAnOffPeakBoundaryIsPricedByItsMinutes() throws {
        let prices = RegulatedPrices.edfBleu
        let plan = try TariffPlan.parse("edf-bleu-hphc 12:10-14:40").get()
        func at(_ text: String) -> LocalDateTime { LocalDateTime(parsing: text)! }
        #expect(plan.offPeakMinutes(from: 12 * 60, length: 30) == 20)
        #expect(plan.offPeakMinutes(from: 12 * 60 + 30, length: 30) == 30)
        #expect(plan.offPeakMinutes(from: 14 * 60 + 30, length: 30) == 10)
        #expect(plan.offPeakMinutes(from: 15 * 60, length: 30) == 0)
        // 12:00-12:30: 20 minutes off-peak (0.1635), 10 peak (0.2081): 300 Wh saves
        // 300 x (20 x 163,500 + 10 x 208,100) / 30 = 53,510,000 nano-euros (5.351 cents).
        #expect(prices.savings(of: 300, plan: plan, slotStart: at("2026-10-05T12:00:00"), minutes: 30, localPrice: 0) == NanoEuros(53_510_000))
        // 14:30-15:00: 10 off-peak, 20 peak: 300 x (10 x 163,500 + 20 x 208,100) / 30 = 57,970,000.
        #expect(prices.savings(of: 300, plan: plan, slotStart: at("2026-10-05T14:30:00"), minutes: 30, localPrice: 0) == NanoEuros(57_970_000))
        // Wholly in one period: the plain price; before, 12:00-12:30 was all peak (62,430,000).
        #expect(prices.savings(of: 300, plan: plan, slotStart: at("2026-10-05T13:00:00"), minutes: 30, localPrice: 0) == NanoEuros(300 * 163_500))
        #expect(prices.savings(of: 300, plan: plan, slotStart: at("2026-10-05T11:30:00"), minutes: 30, localPrice: 0) == NanoEuros(300 * 208_100))
        // A local price for the shared kWh is taken off both periods.
        #expect(prices.savings(of: 300, plan: plan, slotStart: at("2026-10-05T12:00:00"), minutes: 30, localPrice: 10_000) == NanoEuros(53_510_000 - 3_000_000))
        // Windows crossing midnight and slots of 15 minutes.
        let night = try TariffPlan.parse("edf-bleu-hphc 22:26-06:26").get()
        #expect(night.offPeakMinutes(from: 22 * 60 + 15, length: 15) == 4)
        #expect(night.offPeakMinutes(from: 23 * 60 + 45, length: 30) == 30)
        #expect(night.offPeakMinutes(from: 6 * 60 + 15, length: 15) == 11)

        // Through the engine: one household on that plan takes 300 Wh in each slot of a day.
        let configuration = try EnergySettings().validated()
        let grid = configuration.grid
        let day = LocalDate(parsing: "2026-10-05")!
        let slots = grid.slots(of: day, in: configuration.zone)
        let flat = { (value: Int64) in SlotSeries(slots: slots, energy: [Int64](repeating: value, count: slots.count), quality: [SlotQuality](repeating: .measured, count: slots.count)) }
        let input = BuildingInput(building: "B", slots: slots,
                                  dwellings: [DwellingInput(id: "D", meters: [ServedSeries(device: "m", series: flat(300), served: slots)], tariff: Dated([(day, plan)]))],
                                  producers: [ServedSeries(device: "pv", series: flat(1000), served: slots)])
        let result = try BuildingEngine.compute(input, configuration: configuration)
        // 150 off-peak minutes of 1,440: 300 Wh x 48 slots = 14,400 Wh, of which 1,500 off-peak.
        // 1,500 x 163,500 + 12,900 x 208,100 = 2,929,740,000 nano-euros: 292.97 cents.
        #expect(result.savings.reduce(0, +) == 2_929_740_000)
    }

    @Test func moneyIsExactAndRoundedHalfAwayFromZero() {
        #expect(NanoEuros(5_000_000).cents == Cents(1))
        #expect(NanoEuros(4_999_999).cents == Cents(0))
        #expect(NanoEuros(-5_000_000).cents == Cents(-1))
        #expect(NanoEuros(-4_999_999).cents == Cents(0))
        #expect(NanoEuros(15_000_000).cents == Cents(2))
        // 1 Wh at 0.1952 EUR/kWh is 195,200 nano-euros; 100 Wh: 1.952 cents -> 2.
        #expect(NanoEuros.of(100, at: 195_200).cents == Cents(2))
        // Three slots of 0.4 cent each: one line of 1.2 cents rounds to 1, not 3 x 0.
        let line = NanoEuros.of(20, at: 200_000) + NanoEuros.of(20, at: 200_000) + NanoEuros.of(20, at: 200_000)
        #expect(line.cents == Cents(1))
    }

    // MARK: - DST months through the engine

    /// One dwelling consuming 100 Wh a slot all month, a PV giving 60 Wh a slot; off-peak
    /// 01:00-04:00 local, around the changed hour. Per day: consumption = slots x 100, allocated =
    /// slots x 60, savings = 60 Wh x (off-peak slots x 0.1635 + peak slots x 0.2081 EUR/kWh).
    func month(_ first: String, days: Int) throws -> (days: [LocalDate], slots: [Int], consumption: [Int64], allocated: [Int64], savings: [Cents], offPeak: [Int]) {
        let configuration = try EnergySettings().validated()
        let grid = configuration.grid
        let zone = configuration.zone
        let firstDay = LocalDate(parsing: first)!
        let slots = grid.slots(from: firstDay, through: firstDay.advanced(by: days - 1), in: zone)
        let meter = SlotSeries(slots: slots, energy: [Int64](repeating: 100, count: slots.count), quality: [SlotQuality](repeating: .measured, count: slots.count))
        let pv = SlotSeries(slots: slots, energy: [Int64](repeating: 60, count: slots.count), quality: [SlotQuality](repeating: .measured, count: slots.count))
        let plan = try TariffPlan.parse("edf-bleu-hphc 01:00-04:00").get()
        let input = BuildingInput(building: "B", slots: slots,
                                  dwellings: [DwellingInput(id: "D", meters: [ServedSeries(device: "m", series: meter, served: slots)], tariff: Dated([(firstDay, plan)]))],
                                  producers: [ServedSeries(device: "pv", series: pv, served: slots)])
        let result = try BuildingEngine.compute(input, configuration: configuration)
        var out: (days: [LocalDate], slots: [Int], consumption: [Int64], allocated: [Int64], savings: [Cents], offPeak: [Int]) = ([], [], [], [], [], [])
        for offset in 0..<days {
            let day = firstDay.advanced(by: offset)
            let range = grid.slots(of: day, in: zone)
            let indexes = Int(range.lowerBound - slots.lowerBound)..<Int(range.upperBound - slots.lowerBound)
            out.days.append(day)
            out.slots.append(range.count)
            out.consumption.append(result.consumption[indexes].reduce(0, +))
            out.allocated.append(result.allocated[indexes].reduce(0, +))
            out.savings.append(NanoEuros(result.savings[indexes].reduce(0, +)).cents)
            out.offPeak.append(range.filter { slot in
                let local = zone.localDateTime(of: grid.start(of: slot))
                return plan.isOffPeak(minuteOfDay: local.hour * 60 + local.minute)
            }.count)
        }
        return out
    }

    @Test func octoberHasADayOfFiftySlots() throws {
        let october = try month("2026-10-01", days: 31)
        let sunday = october.days.firstIndex(of: LocalDate(parsing: "2026-10-25")!)!
        #expect(october.slots[sunday] == 50)
        #expect(october.slots.enumerated().allSatisfy { $0.offset == sunday || $0.element == 48 })
        let octoberSlots = october.slots.reduce(0, +)
        #expect(octoberSlots == 1490, "31 x 48 + 2")
        #expect(october.consumption[sunday] == 5000)
        #expect(october.allocated[sunday] == 3000)
        // 01:00, 01:30, 02:00, 02:30 (summer time), 02:00, 02:30 (winter time), 03:00, 03:30.
        #expect(october.offPeak[sunday] == 8)
        // 60 x (8 x 163,500 + 42 x 208,100) = 602,892,000 nano-euros = 60.29 cents.
        #expect(october.savings[sunday] == Cents(60))
        // An ordinary day: 60 x (6 x 163,500 + 42 x 208,100) = 583,272,000: 58.33 cents.
        #expect(october.savings[0] == Cents(58))
        #expect(october.consumption[0] == 4800)
    }

    @Test func marchHasADayOfFortySixSlots() throws {
        let march = try month("2026-03-01", days: 31)
        let sunday = march.days.firstIndex(of: LocalDate(parsing: "2026-03-29")!)!
        #expect(march.slots[sunday] == 46)
        let marchSlots = march.slots.reduce(0, +)
        #expect(marchSlots == 1486, "31 x 48 - 2")
        #expect(march.consumption[sunday] == 4600)
        #expect(march.allocated[sunday] == 2760)
        // 02:00-03:00 does not exist: 01:00, 01:30, 03:00, 03:30 are off-peak.
        #expect(march.offPeak[sunday] == 4)
        // 60 x (4 x 163,500 + 42 x 208,100) = 563,652,000 nano-euros: 56.37 cents.
        #expect(march.savings[sunday] == Cents(56))
    }

    @Test func aLocalPriceReducesTheSavingsAndSurplusEarnsTheFeedInPrice() throws {
        var settings = EnergySettings()
        settings.localPrices = [.init(since: "2026-01-01", eurPerKWh: "0.05")]
        let configuration = try settings.validated()
        let grid = configuration.grid
        let slot = grid.slot(containing: Instant.parseRFC3339("2026-06-10T10:00:00Z")!)
        let slots = slot..<(slot + 1)
        func series(_ energy: Int64) -> SlotSeries { SlotSeries(slots: slots, energy: [energy], quality: [.measured]) }
        let input = BuildingInput(building: "B", slots: slots, dwellings: [
            DwellingInput(id: "D1", meters: [ServedSeries(device: "m1", series: series(300), served: slots)]),
            DwellingInput(id: "D2", meters: [ServedSeries(device: "m2", series: series(200), served: slots)]),
        ], producers: [ServedSeries(device: "pv", series: series(1500), served: slots)])
        let result = try BuildingEngine.compute(input, configuration: configuration)
        #expect(result.allocated == [300, 200])
        #expect(result.surplus == [1000])
        // 300 Wh x (0.1952 - 0.05) EUR/kWh = 4.356 cents; 200 Wh x 0.1452 = 2.904 cents.
        let expected: [Int64] = [43_560_000, 29_040_000]
        #expect(result.savings == expected)
        #expect(result.savings.map { NanoEuros($0).cents } == [Cents(4), Cents(3)])
        // 1000 Wh at 0.04 EUR/kWh = 4 cents.
        #expect(NanoEuros(result.revenue[0]).cents == Cents(4))
    }

    @Test func unknownProductionAllocatesNothingAndCountsAsMissing() throws {
        let configuration = try EnergySettings().validated()
        let slot = configuration.grid.slot(containing: Instant.parseRFC3339("2026-06-10T10:00:00Z")!)
        let slots = slot..<(slot + 2)
        let meter = SlotSeries(slots: slots, energy: [300, 300], quality: [.measured, .measured])
        let pv = SlotSeries(slots: slots, energy: [500, 0], quality: [.estimated, .missing])
        let input = BuildingInput(building: "B", slots: slots, dwellings: [DwellingInput(id: "D", meters: [ServedSeries(device: "m", series: meter, served: slots)])],
                                  producers: [ServedSeries(device: "pv", series: pv, served: slots)])
        let result = try BuildingEngine.compute(input, configuration: configuration)
        #expect(result.allocated == [300, 0])
        #expect(result.surplus == [200, 0])
        #expect(result.buildingQuality == [.estimated, .missing])
        #expect(result.quality == [.measured, .measured], "the household's own data is measured; the building's slot is missing")
        #expect(result.consumption == [300, 300], "its consumption is still known")
    }
}

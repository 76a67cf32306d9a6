import EnergyCore
import HubCore
import Testing

/// The pure arithmetic the upkeep and the reports share (`SlotRanges`, `EnergyReportRules`).
@Suite struct ReportRulesTests {
    @Test func rangesAreClampedSortedAndMergedWhereTheyOverlapOrTouch() {
        #expect(SlotRanges.merge([10..<20, 0..<5, 18..<25, 25..<30, 40..<50], lower: 2, upper: 45) == [2..<5, 10..<30, 40..<45])
        #expect(SlotRanges.merge([50..<60], lower: 0, upper: 40) == [], "a range past the upper bound is dropped, not a crash")
        #expect(SlotRanges.merge([]) == [])
    }

    @Test func theFirstChunkIsBoundedAndTheRestGoesBack() {
        let split = SlotRanges.firstChunk([0..<100, 200..<210], maxSlots: 30)
        #expect(split?.chunk == 0..<30)
        #expect(split?.rest == [30..<100, 200..<210])
        #expect(SlotRanges.firstChunk([0..<10], maxSlots: 30)?.rest == [])
        #expect(SlotRanges.firstChunk([], maxSlots: 30) == nil)
    }

    @Test func coveredSlotsCountAnOverlapOnce() {
        #expect(SlotRanges.covered([0..<10, 5..<15, 20..<21]) == 16)
    }

    @Test func theDistributionIsWithheldBelowTheMinimumAndHasAMedian() {
        #expect(EnergyReportRules.distribution([500, 100]) == (2, nil, nil, nil))
        #expect(EnergyReportRules.distribution([300, 100, 200]) == (3, 100, 200, 300))
        #expect(EnergyReportRules.distribution([400, 100, 200, 301]) == (4, 100, 251, 400), "(200 + 301) / 2 rounded half away from zero")
    }

    @Test func theProjectionExtrapolatesTheDaysCounted() {
        // 10 EUR over 73 days of a 365-day year: 50 EUR.
        #expect(EnergyReportRules.annualProjectionCents(soFar: NanoEuros(10 * 100 * 10_000_000), daysCounted: 73, daysInYear: 365) == 5000)
        #expect(EnergyReportRules.annualProjectionCents(soFar: NanoEuros(123), daysCounted: 0, daysInYear: 365) == nil)
    }

    @Test func aPeriodIsInOrderAndBounded() throws {
        let day = LocalDate(year: 2026, month: 3, day: 1)!
        try EnergyReportRules.checkPeriod(from: day, to: day)
        #expect(throws: HubError.self) { try EnergyReportRules.checkPeriod(from: day, to: day.advanced(by: -1)) }
        #expect(throws: HubError.self) { try EnergyReportRules.checkPeriod(from: day, to: day.advanced(by: EnergyReportRules.maximumDays)) }
    }
}

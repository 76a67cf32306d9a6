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

    /// Savings so far over the production share of the days counted (AnnualProjectionTests tests
    /// it against simulated years). The old rule, so far x days in the year / days counted, made
    /// 10 EUR over January and half of February 81.11 EUR a year.
    @Test func theProjectionDividesSavingsSoFarByTheProductionShareOfTheDaysCounted() {
        let profile = MonthlyProductionShares(profilePerMille: EnergySettings.boulogneProductionProfile)
        // January (40 per thousand) and February 1-14 (51 x 14 / 28): 65,500 millionths of the
        // year; 10 EUR / 0.0655 = 152.6717... EUR.
        let winter = EnergyReportRules.seasonalProjection(soFar: NanoEuros(10 * 100 * 10_000_000), countedDays: [31, 14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], year: 2026, shares: profile)
        #expect(winter.productionShareSoFarMillionths == 65_500)
        #expect(winter.projectedCents == 15_267)
        // In a leap year February 1-14 is 14 of 29 days: 40,000 + 51,000 x 14 / 29 = 64,620.69 millionths.
        let leap = EnergyReportRules.seasonalProjection(soFar: NanoEuros(10 * 100 * 10_000_000), countedDays: [31, 14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], year: 2028, shares: profile)
        #expect(leap.productionShareSoFarMillionths == 64_621)
        #expect(leap.projectedCents == 15_475, "10 EUR / 0.0646207 = 154.7492 EUR: the share is exact, not its rounded millionths")
        // A whole year counted projects what was saved.
        let year = EnergyReportRules.seasonalProjection(soFar: NanoEuros(1_234_567_891), countedDays: [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], year: 2026, shares: profile)
        #expect(year.productionShareSoFarMillionths == 1_000_000)
        #expect(year.projectedCents == 123)
        #expect(EnergyReportRules.seasonalProjection(soFar: NanoEuros(123), countedDays: [Int](repeating: 0, count: 12), year: 2026, shares: profile).projectedCents == nil)
    }

    @Test func aPeriodIsInOrderAndBounded() throws {
        let day = LocalDate(year: 2026, month: 3, day: 1)!
        try EnergyReportRules.checkPeriod(from: day, to: day)
        #expect(throws: HubError.self) { try EnergyReportRules.checkPeriod(from: day, to: day.advanced(by: -1)) }
        #expect(throws: HubError.self) { try EnergyReportRules.checkPeriod(from: day, to: day.advanced(by: EnergyReportRules.maximumDays)) }
    }
}

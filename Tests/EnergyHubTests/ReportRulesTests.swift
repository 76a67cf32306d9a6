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

    /// Staff's view: every figure whole, whatever the count (issue 14, defect 10).
    @Test func theDistributionHasAMedian() {
        #expect(EnergyReportRules.distribution([]) == (0, nil, nil, nil))
        #expect(EnergyReportRules.distribution([500, 100]) == (2, 100, 300, 500))
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

    // MARK: - What an association may see (issue 14, defect 10)

    static func day(_ text: String) -> LocalDate { LocalDate(parsing: text)! }

    @Test func aGroupIsShownOnlyWhenEveryDayHasNoneOrEnoughHouseholds() {
        #expect(HouseholdPrivacy.disclosable(householdsPerDay: [0, 10, 12, 0], minimum: 10))
        #expect(!HouseholdPrivacy.disclosable(householdsPerDay: [12, 12, 9, 12], minimum: 10), "one day with nine: that day's sum is nine households'")
        #expect(!HouseholdPrivacy.disclosable(householdsPerDay: [1], minimum: 10))
        #expect(HouseholdPrivacy.disclosable(householdsPerDay: [Int](), minimum: 10))
        #expect(HouseholdPrivacy.smallestGroup(householdsPerDay: [0, 14, 11, 0]) == 11)
    }

    @Test func anAssociationsPeriodIsWholeMonths() {
        #expect(HouseholdPrivacy.wholeMonths(from: Self.day("2026-06-10"), to: Self.day("2026-06-10")) == (Self.day("2026-06-01"), Self.day("2026-06-30")))
        #expect(HouseholdPrivacy.wholeMonths(from: Self.day("2026-01-31"), to: Self.day("2026-02-01")) == (Self.day("2026-01-01"), Self.day("2026-02-28")))
        #expect(HouseholdPrivacy.months(from: Self.day("2026-11-15"), to: Self.day("2027-01-02")).map(\.description) == ["2026-11-01", "2026-12-01", "2027-01-01"])
    }

    /// The estate's totals minus its shown buildings are its withheld buildings together: shown only
    /// when those together are a large enough group every day, month by month.
    @Test func theEstatesTotalsNeverGiveAWithheldBuildingAway() {
        let june = (Self.day("2026-06-01"), Self.day("2026-06-30"))
        let d1 = Self.day("2026-06-01"), d2 = Self.day("2026-06-02")
        let big: [LocalDate: Int] = [d1: 30, d2: 30]
        // One small building: shown buildings are the big ones, the estate's totals are withheld.
        var decision = HouseholdPrivacy.decide(perDay: ["A": big, "B": big, "S": [d1: 4, d2: 4]], buildings: ["A", "B", "S"], from: june.0, to: june.1, minimum: 10)
        #expect(decision.shown == ["A", "B"] && !decision.estateTotalsShown)
        // Two small buildings that make a group of ten together: the totals may show (their sum is ten households').
        decision = HouseholdPrivacy.decide(perDay: ["A": big, "S": [d1: 4, d2: 4], "T": [d1: 6, d2: 6]], buildings: ["A", "S", "T"], from: june.0, to: june.1, minimum: 10)
        #expect(decision.shown == ["A"] && decision.estateTotalsShown)
        // ...unless on one day they were fewer.
        decision = HouseholdPrivacy.decide(perDay: ["A": big, "S": [d1: 4, d2: 4], "T": [d1: 6, d2: 5]], buildings: ["A", "S", "T"], from: june.0, to: june.1, minimum: 10)
        #expect(!decision.estateTotalsShown)
        // A building without any figure (no PV, no meter yet) gives nothing away.
        decision = HouseholdPrivacy.decide(perDay: ["A": big], buildings: ["A", "EMPTY"], from: june.0, to: june.1, minimum: 10)
        #expect(decision.shown == ["A", "EMPTY"] && decision.estateTotalsShown)
        // Several months: shown only where shown every month (a sum of months already published).
        let july = Self.day("2026-07-01")
        decision = HouseholdPrivacy.decide(perDay: ["A": [d1: 30, july: 30], "B": [d1: 30, july: 3], "C": [d1: 3, july: 30], "D": [d1: 30, july: 30]],
                                           buildings: ["A", "B", "C", "D"], from: june.0, to: Self.day("2026-07-31"), minimum: 10)
        #expect(decision.shown == ["A", "D"] && !decision.estateTotalsShown)
    }

    @Test func anAssociationsMedianIsRoundedToTheEuroAndHasNoExtremes() {
        let savings: [Int64] = [120, 340, 560, 1_249, 1_251, 2_000, 2_500, 3_000, 9_999, 15_000]
        #expect(HouseholdPrivacy.median(savings, minimum: 10) == 1_600, "16.26 EUR, the mean of the middle two (12.51 and 20.00), rounded to 16 EUR")
        #expect(HouseholdPrivacy.median(Array(savings.prefix(9)), minimum: 10) == nil)
        let shares = HouseholdShares(allocatedWh: (1...10).map { Int64($0) * 1_234 }, savingsCents: savings, minimum: 10)
        #expect(shares.allocatedWh == .init(lowerQuartile: 4_000, median: 7_000, upperQuartile: 10_000))
        #expect(shares.savingsCents == .init(lowerQuartile: 700, median: 1_600, upperQuartile: 2_900))
        #expect(HouseholdShares(allocatedWh: [1, 2, 3], savingsCents: [1, 2, 3], minimum: 3, disclosable: false).withheld)
    }
}

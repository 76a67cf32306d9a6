import Foundation
import GRDB
import HubCore
import Shared
import Testing
@testable import EnergyCore
@testable import EnergyHub

/// The seasonal annual projection (issue 10): savings so far over the share of a year's
/// production the days counted usually bring, from the building's own twelve months or from the
/// settings' monthly profile, tested against years of simulated production.
@Suite struct AnnualProjectionTests {
    /// The solar model of docs/savings.md ("Annual projection"), in Double: it only shapes the
    /// default profile and the simulated years; no money or stored energy goes through it.
    enum SolarModel {
        static let latitude = 50.7 * Double.pi / 180
        static let tilt = 35 * Double.pi / 180
        static let albedo = 0.2
        static let solarConstant = 1367.0

        /// Irradiation on the panels' plane (south, 35 degrees) on day `n` of the year, in Wh/m2.
        static func planeIrradiation(day n: Int) -> Double {
            let angle = 2 * Double.pi * Double(n) / 365
            let declination = 23.45 * Double.pi / 180 * sin(2 * Double.pi * Double(284 + n) / 365)
            let eccentricity = 1 + 0.033 * cos(angle)
            let sunset = acos(-tan(latitude) * tan(declination))
            let sunsetOnPlane = min(sunset, acos(-tan(latitude - tilt) * tan(declination)))
            let horizontal0 = 24 / Double.pi * solarConstant * eccentricity
                * (cos(latitude) * cos(declination) * sin(sunset) + sunset * sin(latitude) * sin(declination))
            let plane0 = 24 / Double.pi * solarConstant * eccentricity
                * (cos(latitude - tilt) * cos(declination) * sin(sunsetOnPlane) + sunsetOnPlane * sin(latitude - tilt) * sin(declination))
            let sunshine = 0.37 + 0.17 * cos(2 * Double.pi * Double(n - 172) / 365)
            let clearness = 0.25 + 0.50 * sunshine
            let global = clearness * horizontal0
            let diffuseFraction = sunset <= 81.4 * Double.pi / 180
                ? 1.391 - 3.560 * clearness + 4.189 * pow(clearness, 2) - 2.137 * pow(clearness, 3)
                : 1.311 - 3.022 * clearness + 3.427 * pow(clearness, 2) - 1.821 * pow(clearness, 3)
            let diffuse = diffuseFraction * global
            return (global - diffuse) * plane0 / horizontal0 + diffuse * (1 + cos(tilt)) / 2 + global * albedo * (1 - cos(tilt)) / 2
        }

        /// Each month's share of the year in parts per thousand, exact and rounded by largest
        /// remainders (a common year).
        static func profile() -> (exact: [Double], perMille: [Int]) {
            var months = [Double](repeating: 0, count: 12)
            for n in 1...365 { months[LocalDate(year: 2026, month: 1, day: 1)!.advanced(by: n - 1).month - 1] += planeIrradiation(day: n) }
            let exact = months.map { $0 / months.reduce(0, +) * 1000 }
            var perMille = exact.map { Int($0) }
            let order = exact.indices.sorted { exact[$0] - exact[$0].rounded(.down) > exact[$1] - exact[$1].rounded(.down) }
            for index in order.prefix(1000 - perMille.reduce(0, +)) { perMille[index] += 1 }
            return (exact, perMille)
        }
    }

    /// A deterministic day-to-day weather factor (SplitMix64), uniform in `low...high`.
    struct Weather {
        var state: UInt64
        let low: Double, high: Double
        mutating func next() -> Double {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return low + (high - low) * Double(z >> 11) / Double(UInt64(1) << 53)
        }
    }

    /// A building of 30 kWc (85% of the plane's irradiation reaches the grid), day by day.
    static func production(on date: LocalDate, weather: Double = 1) -> Int64 {
        let dayOfYear = LocalDate(year: date.year, month: 1, day: 1)!.distance(to: date) + 1
        return Int64(SolarModel.planeIrradiation(day: min(dayOfYear, 365)) * 30 * 0.85 * weather)
    }

    /// A household receiving a fiftieth of the production, all of it saving the base price
    /// (0.1952 EUR/kWh): savings proportional to production, about 150 EUR a year.
    static func savings(ofProduction wh: Int64) -> NanoEuros { NanoEuros(wh / 50 * 195_200) }

    static let profile = MonthlyProductionShares(profilePerMille: EnergySettings.boulogneProductionProfile)

    static func days(from: LocalDate, through: LocalDate) -> [LocalDate] {
        Array(stride(from: from, through: through, by: 1))
    }

    static func cents(_ nano: NanoEuros) -> Int64 { nano.cents.value }

    // MARK: - The rule against simulated years

    /// The case: three weeks of November, weak sun, must not project a fraction of the
    /// year. The old extrapolation (so far x 365 / 21) gave about half the year.
    @Test func threeNovemberWeeksProjectTheYearNotAFractionOfIt() throws {
        var weather = Weather(state: 10, low: 0.8, high: 1.2)
        var byDay: [LocalDate: NanoEuros] = [:]
        for day in Self.days(from: LocalDate(year: 2026, month: 1, day: 1)!, through: LocalDate(year: 2026, month: 12, day: 31)!) {
            byDay[day] = Self.savings(ofProduction: Self.production(on: day, weather: weather.next()))
        }
        let year = Self.cents(byDay.values.reduce(.zero, +))
        let november = Self.days(from: LocalDate(year: 2026, month: 11, day: 1)!, through: LocalDate(year: 2026, month: 11, day: 21)!)
        let soFar = november.reduce(NanoEuros.zero) { $0 + byDay[$1]! }
        var counted = [Int](repeating: 0, count: 12)
        counted[10] = 21
        let projection = EnergyReportRules.seasonalProjection(soFar: soFar, countedDays: counted, year: 2026, shares: Self.profile)
        #expect(projection.productionShareSoFarMillionths == 29_400, "42 per thousand x 21 / 30")
        let projected = try #require(projection.projectedCents)
        #expect(abs(projected - year) * 10 <= year, "projected \(projected) cents for a year of \(year)")
        let old = NanoEuros.divideRounded(soFar.value * 365, 21 * 10_000_000)
        #expect(old * 10 < year * 6, "the old extrapolation: \(old) cents, a fraction of \(year)")
    }

    /// Three weeks from the first of any month, production following the sun day by day (not
    /// flat within the month): within 10% of the year in every season.
    @Test func threeWeeksOfAnyMonthProjectTheYear() {
        var byDay: [LocalDate: NanoEuros] = [:]
        for day in Self.days(from: LocalDate(year: 2026, month: 1, day: 1)!, through: LocalDate(year: 2026, month: 12, day: 31)!) {
            byDay[day] = Self.savings(ofProduction: Self.production(on: day))
        }
        let year = Self.cents(byDay.values.reduce(.zero, +))
        var worstOld: Int64 = 0
        for month in 1...12 {
            let start = LocalDate(year: 2026, month: month, day: 1)!
            let soFar = Self.days(from: start, through: start.advanced(by: 20)).reduce(NanoEuros.zero) { $0 + byDay[$1]! }
            var counted = [Int](repeating: 0, count: 12)
            counted[month - 1] = 21
            let projected = EnergyReportRules.seasonalProjection(soFar: soFar, countedDays: counted, year: 2026, shares: Self.profile).projectedCents ?? 0
            #expect(abs(projected - year) * 10 <= year, "month \(month): projected \(projected) cents for a year of \(year)")
            worstOld = max(worstOld, abs(NanoEuros.divideRounded(soFar.value * 365, 21 * 10_000_000) - year))
        }
        #expect(worstOld * 10 > year * 4, "the old extrapolation was off by \(worstOld) cents of \(year) in some month")
    }

    @Test func noDayCountedGivesNoProjection() {
        let none = EnergyReportRules.seasonalProjection(soFar: NanoEuros(123), countedDays: [Int](repeating: 0, count: 12), year: 2026, shares: Self.profile)
        #expect(none.projectedCents == nil)
        #expect(none.productionShareSoFarMillionths == 0)
        // Days counted only in a month that usually produces nothing: nothing to divide by.
        var dark = [Int](repeating: 1000 / 11, count: 12)
        dark[11] = 0
        dark[0] += 1000 - dark.reduce(0, +)
        var counted = [Int](repeating: 0, count: 12)
        counted[11] = 10
        let nothing = EnergyReportRules.seasonalProjection(soFar: NanoEuros(123), countedDays: counted, year: 2026, shares: MonthlyProductionShares(profilePerMille: dark))
        #expect(nothing.projectedCents == nil)
    }

    @Test func theDefaultProfileIsTheStatedSolarModel() {
        let model = SolarModel.profile()
        #expect(model.perMille == EnergySettings.boulogneProductionProfile, "exact: \(model.exact)")
        #expect(EnergySettings().monthlyProductionProfile == EnergySettings.boulogneProductionProfile)
        #expect(EnergySettings.boulogneProductionProfile.reduce(0, +) == 1000)
    }

    @Test func aBuildingsMonthsAreApportionedToExactlyAMillion() throws {
        let shares = try #require(MonthlyProductionShares(buildingMonthlyWh: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]))
        #expect(shares.millionths == [83_334, 83_334, 83_334, 83_334, 83_333, 83_333, 83_333, 83_333, 83_333, 83_333, 83_333, 83_333],
                "1,000,000 / 12 = 83,333 remainder 4: the first four months get a unit")
        #expect(shares.basis == .buildingHistory)
        let large = try #require(MonthlyProductionShares(buildingMonthlyWh: [900_000_000_000, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37]))
        #expect(large.millionths.reduce(0, +) == 1_000_000)
        #expect(MonthlyProductionShares(buildingMonthlyWh: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1]) == nil, "a month without production says nothing of the seasons")
    }

    // MARK: - Through the reports: which basis

    static let registry = """
        estate;building;dwelling;device;kind;format;since;tariff;share
        E;B;;pv-1;pv;canonical;2025-01-01;;
        E;B;D1;m-1;meter;canonical;2026-11-01;;
        """

    /// 2026-11-21 23:00 local: November 1 to 21 counted.
    static let now = SavingsFixture.at("2026-11-21T22:00:00Z")

    /// The building's roof is shaded by its neighbour while the sun is low (November to
    /// February): half the production the open sky would give. Its own history knows it; the
    /// site's profile cannot.
    static func shadedProduction(on date: LocalDate) -> Int64 {
        let production = Self.production(on: date)
        return [11, 12, 1, 2].contains(date.month) ? production / 2 : production
    }

    /// Writes the building's daily figures from `from` through `through` (every slot of the
    /// day known unless `short` says otherwise), and the household's savings from November 1
    /// to 21, 2026.
    static func store(_ hub: SavingsFixture, from: LocalDate, through: LocalDate, short: LocalDate? = nil) async throws {
        let grid = hub.configuration.grid, zone = hub.configuration.zone
        try await hub.database.write { db in
            for day in Self.days(from: from, through: through) {
                let slots = grid.slots(of: day, in: zone)
                let known = (slots.upperBound - slots.lowerBound) - (day == short ? 1 : 0)
                try db.execute(sql: """
                    INSERT INTO building_day (building_id, day, production_wh, allocated_wh, surplus_wh, consumption_wh, revenue_nano, measured, estimated)
                    VALUES ('B', ?, ?, 0, 0, 0, 0, ?, 0)
                    """, arguments: [day.description, Self.shadedProduction(on: day), known])
            }
            for day in Self.days(from: LocalDate(year: 2026, month: 11, day: 1)!, through: LocalDate(year: 2026, month: 11, day: 21)!) {
                let production = Self.shadedProduction(on: day)
                try db.execute(sql: """
                    INSERT INTO dwelling_day (dwelling_id, day, building_id, consumption_wh, allocated_wh, savings_nano, measured, estimated)
                    VALUES ('D1', ?, 'B', ?, ?, ?, 48, 0)
                    """, arguments: [day.description, production / 50, production / 50, Self.savings(ofProduction: production).value])
            }
        }
    }

    /// The household's savings over the building's twelve months, had it been served all along.
    static func shadedYearCents() -> Int64 {
        cents(days(from: LocalDate(year: 2025, month: 11, day: 1)!, through: LocalDate(year: 2026, month: 10, day: 31)!)
            .reduce(NanoEuros.zero) { $0 + savings(ofProduction: shadedProduction(on: $1)) })
    }

    @Test func twelveFullMonthsOfTheBuildingsOwnProductionAreTheBasis() async throws {
        let hub = try SavingsFixture(registry: Self.registry)
        // November 2025 to October 2026, the DST days included (46 and 50 slots).
        try await Self.store(hub, from: LocalDate(year: 2025, month: 11, day: 1)!, through: LocalDate(year: 2026, month: 10, day: 31)!)
        let day = LocalDate(year: 2026, month: 11, day: 21)!
        let report = try await hub.reports.dwelling("D1", from: day, to: day, now: Self.now)
        let projection = report.annualProjection
        #expect(projection.basis == .buildingHistory)
        #expect(projection.daysCounted == 21)
        let months = Self.days(from: LocalDate(year: 2025, month: 11, day: 1)!, through: LocalDate(year: 2026, month: 10, day: 31)!)
        let november = months.filter { $0.month == 11 }.reduce(0.0) { $0 + Double(Self.shadedProduction(on: $1)) }
        let total = months.reduce(0.0) { $0 + Double(Self.shadedProduction(on: $1)) }
        let expectedShare = november / total * 21 / 30 * 1_000_000
        #expect(abs(Double(projection.productionShareSoFarMillionths) - expectedShare) <= 1, "\(projection.productionShareSoFarMillionths) against \(expectedShare)")
        let year = Self.shadedYearCents()
        let projected = try #require(projection.projectedCents)
        #expect(abs(projected - year) * 10 <= year, "projected \(projected) cents for a year of \(year)")
        // The site's profile, blind to the shade, would say about half.
        let byProfile = EnergyReportRules.seasonalProjection(soFar: NanoEuros(try await soFarNano(hub)), countedDays: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 21, 0],
                                                             year: 2026, shares: Self.profile).projectedCents ?? 0
        #expect(byProfile * 10 < year * 7, "the profile: \(byProfile) cents for a year of \(year)")
        let table = EnergyTables.dwelling(report)
        #expect(table.contains("projection: an estimate by the months' usual production (the building's last 12 full months)"), "\(table)")
    }

    func soFarNano(_ hub: SavingsFixture) async throws -> Int64 {
        try await hub.database.read { db in try Int64.fetchOne(db, sql: "SELECT SUM(savings_nano) FROM dwelling_day WHERE dwelling_id = 'D1'") ?? 0 }
    }

    @Test func withoutTwelveFullMonthsTheProfileIsTheBasis() async throws {
        let day = LocalDate(year: 2026, month: 11, day: 21)!
        // One slot of one day without a known production.
        let gap = try SavingsFixture(registry: Self.registry)
        try await Self.store(gap, from: LocalDate(year: 2025, month: 11, day: 1)!, through: LocalDate(year: 2026, month: 10, day: 31)!,
                             short: LocalDate(year: 2026, month: 2, day: 14)!)
        // Eleven months only.
        let young = try SavingsFixture(registry: Self.registry)
        try await Self.store(young, from: LocalDate(year: 2025, month: 12, day: 1)!, through: LocalDate(year: 2026, month: 10, day: 31)!)
        // Every day known, but the panels only came on November 15, 2025: the days before
        // "produced" nothing because there was nothing to produce with.
        let late = try SavingsFixture(registry: Self.registry.replacingOccurrences(of: "pv;canonical;2025-01-01", with: "pv;canonical;2025-11-15"))
        try await Self.store(late, from: LocalDate(year: 2025, month: 11, day: 1)!, through: LocalDate(year: 2026, month: 10, day: 31)!)
        for hub in [gap, young, late] {
            let report = try await hub.reports.dwelling("D1", from: day, to: day, now: Self.now)
            let projection = report.annualProjection
            #expect(projection.basis == .productionProfile)
            #expect(projection.productionShareSoFarMillionths == 29_400, "the profile's 42 per thousand x 21 / 30")
            let expected = EnergyReportRules.seasonalProjection(soFar: NanoEuros(try await soFarNano(hub)), countedDays: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 21, 0],
                                                                year: 2026, shares: Self.profile).projectedCents
            #expect(projection.projectedCents == expected)
            #expect(EnergyTables.dwelling(report).contains("(the settings' monthly profile): the days counted usually bring 2.94% of a year's production"))
        }
    }

    @Test func aProfileFromTheSettingsIsTheOneUsed() async throws {
        // A landlord's PVGIS-like profile: November 30 per thousand.
        var settings = EnergySettings()
        settings.monthlyProductionProfile = [35, 55, 85, 115, 125, 125, 125, 115, 90, 70, 30, 30]
        let hub = try SavingsFixture(registry: Self.registry, settings: settings)
        try await Self.store(hub, from: LocalDate(year: 2026, month: 1, day: 1)!, through: LocalDate(year: 2026, month: 10, day: 31)!)
        let day = LocalDate(year: 2026, month: 11, day: 21)!
        let projection = try await hub.reports.dwelling("D1", from: day, to: day, now: Self.now).annualProjection
        #expect(projection.basis == .productionProfile)
        #expect(projection.productionShareSoFarMillionths == 21_000, "30 per thousand x 21 / 30")
    }
}

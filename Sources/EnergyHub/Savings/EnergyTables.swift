import Foundation
import GRDB
import EnergyCore
import HubCore
import Shared

/// The reports as plain-text tables, for the CLI and the demo.
public enum EnergyTables {
    /// "12.345" kWh from Wh, exact.
    public static func kWh(_ wh: Int64) -> String {
        let sign = wh < 0 ? "-" : ""
        let magnitude = wh.magnitude
        return sign + "\(magnitude / 1000)." + String(magnitude % 1000 + 1000).dropFirst()
    }

    public static func euros(_ cents: Int64) -> String { Cents(cents).decimalString }

    static func percent(_ rate: Decimal?) -> String {
        guard let rate else { return "-" }
        return "\(NSDecimalNumber(decimal: rate * 100).stringValue)%"
    }

    /// A share of the year in millionths as a percentage with two decimals ("2.94%"), rounded once.
    static func shareOfYear(_ millionths: Int64) -> String {
        let hundredths = NanoEuros.divideRounded(millionths, 100)
        return "\(hundredths / 100)." + String(hundredths % 100 + 100).dropFirst() + "%"
    }

    /// Left-aligns the first column and right-aligns the others.
    public static func render(_ header: [String], _ rows: [[String]]) -> String {
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { column, cell in
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                return column == 0 ? cell + pad : pad + cell
            }.joined(separator: "  ")
        }
        return ([line(header), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")] + rows.map(line)).joined(separator: "\n")
    }

    public static func dwelling(_ report: DwellingEnergyReport) -> String {
        var rows = report.days.map { day in
            [day.date.description, kWh(day.consumptionWh), kWh(day.allocatedWh), kWh(day.gridWh), euros(day.savingsCents)]
        }
        rows.append(["total", kWh(report.consumptionWh), kWh(report.allocatedWh), kWh(report.gridWh), euros(report.savingsCents)])
        let projection = report.annualProjection
        var text = "Dwelling \(report.dwelling) (building \(report.building)), \(report.from) to \(report.to)\n"
        text += render(["day", "consumption kWh", "PV allocated kWh", "grid kWh", "savings EUR"], rows)
        text += "\nslots: \(report.slots.measured) measured, \(report.slots.estimated) estimated, \(report.slots.missing) missing"
        text += "\n\(projection.year) so far: \(euros(projection.savingsSoFarCents)) EUR over \(projection.daysCounted) days; projected "
            + (projection.projectedCents.map { euros($0) + " EUR" } ?? "-") + " a year (promised: \(euros(projection.promisedCents)) EUR)"
        text += "\nprojection: an estimate by the months' usual production ("
            + (projection.basis == .buildingHistory ? "the building's last 12 full months" : "the settings' monthly profile")
            + "): the days counted usually bring \(shareOfYear(projection.productionShareSoFarMillionths)) of a year's production"
        if !report.revisedMonths.isEmpty { text += "\nrevised after export: \(report.revisedMonths.joined(separator: ", "))" }
        return text
    }

    public static func building(_ report: BuildingEnergyReport) -> String {
        var rows = report.days.map { day in
            [day.date.description, kWh(day.productionWh), kWh(day.allocatedWh), kWh(day.surplusWh), kWh(day.consumptionWh), euros(day.surplusRevenueCents)]
        }
        rows.append(["total", kWh(report.productionWh), kWh(report.allocatedWh), kWh(report.surplusWh), kWh(report.consumptionWh), euros(report.surplusRevenueCents)])
        var text = "Building \(report.building) (estate \(report.estate)), \(report.from) to \(report.to), key \(report.allocationKey), \(report.households) households\n"
        text += render(["day", "production kWh", "allocated kWh", "surplus kWh", "consumption kWh", "surplus revenue EUR"], rows)
        text += "\nself-consumption \(percent(report.selfConsumptionRate)), self-sufficiency \(percent(report.selfSufficiencyRate))"
        text += "\nslots: \(report.slots.measured) measured, \(report.slots.estimated) estimated, \(report.slots.missing) missing"
        for problem in report.problems { text += "\nproblem: \(problem)" }
        if !report.revisedMonths.isEmpty { text += "\nrevised after export: \(report.revisedMonths.joined(separator: ", "))" }
        return text
    }

    public static func estate(_ report: EstateEnergyReport) -> String {
        func row(_ totals: BuildingTotals, _ name: String) -> [String] {
            [name, kWh(totals.productionWh), kWh(totals.allocatedWh), kWh(totals.surplusWh), kWh(totals.consumptionWh),
             percent(totals.selfConsumptionRate), percent(totals.selfSufficiencyRate), euros(totals.surplusRevenueCents)]
        }
        let rows = report.buildings.map { row($0, $0.building ?? "") } + [row(report.totals, "total")]
        var text = "Estate \(report.estate), \(report.from) to \(report.to)\n"
        text += render(["building", "production kWh", "allocated kWh", "surplus kWh", "consumption kWh", "self-consumption", "self-sufficiency", "surplus revenue EUR"], rows)
        let households = report.households
        if let min = households.minCents, let median = households.medianCents, let max = households.maxCents {
            text += "\nhouseholds' savings (\(households.count)): min \(euros(min)) EUR, median \(euros(median)) EUR, max \(euros(max)) EUR"
        } else {
            text += "\nhouseholds' savings: \(households.count) households, too few to show without revealing a neighbour's figure"
        }
        if !report.revisedMonths.isEmpty { text += "\nrevised after export: \(report.revisedMonths.joined(separator: ", "))" }
        return text
    }
}

extension EnergyReports {
    /// Each household's savings over the period, one line per dwelling served by a meter, after
    /// bringing the figures up to date (for the demo and staff).
    public static func householdSavingsTable(database: HubDatabase, from: LocalDate, to: LocalDate,
                                             settings: EnergySettings = EnergySettings(), now: Instant = Instant.now()) async throws -> String {
        let configuration = try settings.validated()
        try SavingsUpkeep(database: database, configuration: configuration).bringUpToDate(now: now)
        let reports = EnergyReports(database: database, configuration: configuration)
        let dwellings = try await database.read { db in
            try String.fetchAll(db, sql: """
                SELECT DISTINCT i.dwelling_id FROM device_installation i JOIN device d ON d.id = i.device_id
                WHERE d.kind = 'meter' AND i.dwelling_id IS NOT NULL ORDER BY i.dwelling_id
                """)
        }
        var rows: [[String]] = []
        var total: Int64 = 0
        for dwelling in dwellings {
            let report = try await reports.dwelling(dwelling, from: from, to: to, now: now)
            total += report.savingsCents
            let share = report.consumptionWh > 0 ? "\(NanoEuros.divideRounded(report.allocatedWh * 100, report.consumptionWh))%" : "-"
            rows.append([dwelling, report.building, EnergyTables.kWh(report.consumptionWh), EnergyTables.kWh(report.allocatedWh), share,
                         EnergyTables.euros(report.savingsCents), "\(report.slots.measured)/\(report.slots.estimated)/\(report.slots.missing)"])
        }
        return "Households' savings, \(from) to \(to)\n"
            + EnergyTables.render(["dwelling", "building", "consumption kWh", "PV allocated kWh", "PV share", "savings EUR", "slots m/e/x"], rows)
            + "\n\(dwellings.count) households, \(EnergyTables.euros(total)) EUR saved in all"
    }
}

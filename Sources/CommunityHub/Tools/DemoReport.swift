import EnergyCore
import EnergyHub
import Foundation
import GRDB
import HubCore
import Shared
import HubApp

/// What the demo prints once the simulated history is stored.
enum DemoReport {
    static func lines(hub: HubProcess, from: LocalDate, to: LocalDate) async throws -> [String] {
        let rows = try await hub.sqlite.read { db in
            try Row.fetchAll(db, sql: """
                SELECT b.estate_id, i.building_id, d.kind, COUNT(DISTINCT d.id) AS devices,
                       (SELECT COUNT(*) FROM reading r WHERE r.device_id IN (SELECT device_id FROM device_installation WHERE building_id = i.building_id)
                          AND r.device_id IN (SELECT id FROM device WHERE kind = d.kind)) AS readings
                FROM device_installation i JOIN device d ON d.id = i.device_id JOIN building b ON b.id = i.building_id
                GROUP BY b.estate_id, i.building_id, d.kind ORDER BY b.estate_id, i.building_id, d.kind
                """).map { row in [row["estate_id"] as String, row["building_id"] as String, row["kind"] as String, String(row["devices"] as Int), String(row["readings"] as Int)] }
        }
        var lines = ["", "Readings stored per building (SIMULATED), \(from) to \(to):",
                     "  estate           building     kind   devices  readings"]
        for row in rows {
            lines.append("  " + [row[0].padding(toLength: 16, withPad: " ", startingAt: 0), row[1].padding(toLength: 12, withPad: " ", startingAt: 0),
                                 row[2].padding(toLength: 6, withPad: " ", startingAt: 0), row[3].leftPadded(7), row[4].leftPadded(9)].joined(separator: " "))
        }
        lines.append("")
        lines.append("Each household's share of its building's solar production and what it saved (SIMULATED), \(from) to \(to):")
        lines += try await EnergyReports.householdSavingsTable(database: hub.sqlite, from: from, to: to, settings: hub.settings.energy)
            .split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }
        return lines
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}

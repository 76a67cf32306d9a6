import EnergyHub
import Foundation
import GRDB
import Shared

/// What the demo prints once the simulated history is stored.
enum DemoReport {
    static func lines(hub: HubProcess, from: LocalDate, to: LocalDate) throws -> [String] {
        let rows = try hub.database.pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT b.estate_id, i.building_id, d.kind, COUNT(DISTINCT d.id) AS devices,
                       (SELECT COUNT(*) FROM reading r WHERE r.device_id IN (SELECT device_id FROM device_installation WHERE building_id = i.building_id)
                          AND r.device_id IN (SELECT id FROM device WHERE kind = d.kind)) AS readings
                FROM device_installation i JOIN device d ON d.id = i.device_id JOIN building b ON b.id = i.building_id
                GROUP BY b.estate_id, i.building_id, d.kind ORDER BY b.estate_id, i.building_id, d.kind
                """)
        }
        var lines = ["", "Readings stored per building (SIMULATED), \(from) to \(to):",
                     "  estate           building     kind   devices  readings"]
        for row in rows {
            lines.append("  " + [(row["estate_id"] as String).padding(toLength: 16, withPad: " ", startingAt: 0),
                                 (row["building_id"] as String).padding(toLength: 12, withPad: " ", startingAt: 0),
                                 (row["kind"] as String).padding(toLength: 6, withPad: " ", startingAt: 0),
                                 String(row["devices"] as Int).leftPadded(7), String(row["readings"] as Int).leftPadded(9)].joined(separator: " "))
        }
        lines.append("")
        lines.append("Each household's share of its building's solar production and what it saved (SIMULATED), \(from) to \(to):")
        lines += try EnergyReports.householdSavingsTable(database: hub.database, from: from, to: to, settings: hub.settings.energy)
            .split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }
        return lines
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}

import Foundation
import EnergyCore
import HubCore
import Shared

extension Installations {
    /// `periodsSQL` for an engine: its period end is the smallest of three dates, SQLite's scalar
    /// MIN, PostgreSQL's LEAST.
    static func periodsSQL(_ dialect: SQLDialect) -> String {
        dialect == .sqlite ? periodsSQL : periodsSQL.replacingOccurrences(of: "MIN(COALESCE(i.until", with: "LEAST(COALESCE(i.until")
    }

    static func periods(_ db: any SQLSession, where clause: String, _ arguments: [any SQLArgument]) throws -> [InstallationPeriod] {
        try db.rows(periodsSQL(db.dialect) + " WHERE " + clause + " ORDER BY i.since, i.device_id", arguments).compactMap { row in
            guard let kind = DeviceKind(rawValue: try row[1].string), let since = LocalDate(parsing: try row[5].string) else { return nil }
            let end = try row[6].string
            return InstallationPeriod(device: try row[0].string, kind: kind, estate: try row[2].string, building: try row[3].string,
                                      dwelling: try row[4].optionalString, since: since, until: end == "9999-12-31" ? nil : LocalDate(parsing: end))
        }
    }

    /// Every installation period of a device, on either engine.
    public static func periods(_ db: any SQLSession, device: String) throws -> [InstallationPeriod] {
        try periods(db, where: "i.device_id = ?", [device])
    }

    /// Every installation period of every device of a building, on either engine.
    public static func periods(_ db: any SQLSession, building: String) throws -> [InstallationPeriod] {
        try periods(db, where: "i.building_id = ?", [building])
    }
}

extension Installations {
    /// The meter periods of a dwelling, oldest first, on either engine.
    public static func meterPeriods(_ db: any SQLSession, dwelling: String) throws -> [InstallationPeriod] {
        try periods(db, where: "i.dwelling_id = ? AND d.kind = 'meter'", [dwelling])
    }
}

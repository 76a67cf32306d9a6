import EnergyCore
import HubCore
import Shared

extension Installations {
    static func periods(_ db: any SQLSession, where clause: String, _ arguments: [any SQLArgument]) throws -> [InstallationPeriod] {
        // PostgreSQL orders text in byte order only when asked (SQLite's order).
        let order = db.dialect == .sqlite ? "i.since, i.device_id" : "i.since COLLATE \"C\", i.device_id COLLATE \"C\""
        return try db.rows(periodsSQL(least: db.dialect == .sqlite ? "MIN" : "LEAST") + " WHERE " + clause + " ORDER BY " + order, arguments).compactMap { row in
            InstallationPeriod.fromStored(device: try row[0].string, kind: try row[1].string, estate: try row[2].string, building: try row[3].string,
                                          dwelling: try row[4].optionalString, since: try row[5].string, periodEnd: try row[6].string)
        }
    }

    /// Every installation period of a device, on either engine.
    public static func periods(_ db: any SQLSession, device: String) throws -> [InstallationPeriod] {
        try periods(db, where: "i.device_id = ?", [device])
    }

    /// Every installation period of several devices, on either engine (in the same order as
    /// each device's own: by `since`, then device).
    public static func periods(_ db: any SQLSession, devices: [String]) throws -> [InstallationPeriod] {
        devices.isEmpty ? [] : try periods(db, where: "i.device_id IN (\(db.placeholderList(devices.count)))", devices)
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

import GRDB
import EnergyCore
import HubCore
import Shared

/// Queries over the registry shared by routes, savings and the car-share's member checks.
public enum Installations {
    static let periodsSQL = """
        SELECT i.device_id, d.kind, b.estate_id, i.building_id, i.dwelling_id, i.since,
               MIN(COALESCE(i.until, '9999-12-31'),
                   COALESCE((SELECT MIN(k.since) FROM device_installation k WHERE k.device_id = i.device_id AND k.since > i.since), '9999-12-31'),
                   CASE WHEN d.kind = 'meter' THEN COALESCE((SELECT MIN(j.since) FROM device_installation j JOIN device dj ON dj.id = j.device_id
                                                            WHERE dj.kind = 'meter' AND j.dwelling_id = i.dwelling_id AND j.since > i.since), '9999-12-31')
                        ELSE '9999-12-31' END) AS period_end
        FROM device_installation i JOIN device d ON d.id = i.device_id JOIN building b ON b.id = i.building_id
        """

    static func periods(_ db: Database, where clause: String, _ arguments: StatementArguments) throws -> [InstallationPeriod] {
        try Row.fetchAll(db, sql: periodsSQL + " WHERE " + clause + " ORDER BY i.since, i.device_id", arguments: arguments).compactMap { row in
            ReadingStoreRows.installationPeriod(device: row["device_id"], kind: row["kind"], estate: row["estate_id"], building: row["building_id"],
                                                dwelling: row["dwelling_id"], since: row["since"], end: row["period_end"])
        }
    }

    /// Every installation period of a device.
    public static func periods(_ db: Database, device: String) throws -> [InstallationPeriod] {
        try periods(db, where: "i.device_id = ?", [device])
    }

    /// The meter periods of a dwelling, oldest first: its consumption series across box replacements.
    public static func meterPeriods(_ db: Database, dwelling: String) throws -> [InstallationPeriod] {
        try periods(db, where: "i.dwelling_id = ? AND d.kind = 'meter'", [dwelling])
    }

    /// Every installation period of every device of a building.
    public static func periods(_ db: Database, building: String) throws -> [InstallationPeriod] {
        try periods(db, where: "i.building_id = ?", [building])
    }
}

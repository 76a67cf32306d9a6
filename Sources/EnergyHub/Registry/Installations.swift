import GRDB
import EnergyCore
import HubCore
import Shared

/// Queries over the registry shared by routes, savings and the car-share's member checks.
public enum Installations {
    /// Each installation with the end of its period (`least` is the engine's n-ary minimum).
    package static func periodsSQL(least: String) -> String {
        """
        SELECT i.device_id, d.kind, b.estate_id, i.building_id, i.dwelling_id, i.since,
               \(least)(COALESCE(i.until, '9999-12-31'),
                   COALESCE((SELECT MIN(k.since) FROM device_installation k WHERE k.device_id = i.device_id AND k.since > i.since), '9999-12-31'),
                   CASE WHEN d.kind = 'meter' THEN COALESCE((SELECT MIN(j.since) FROM device_installation j JOIN device dj ON dj.id = j.device_id
                                                            WHERE dj.kind = 'meter' AND j.dwelling_id = i.dwelling_id AND j.since > i.since), '9999-12-31')
                        ELSE '9999-12-31' END) AS period_end
        FROM device_installation i JOIN device d ON d.id = i.device_id JOIN building b ON b.id = i.building_id
        """
    }

    static let periodsSQL = periodsSQL(least: "MIN")

    /// Each device with its first installation's local date.
    package static let devicesSQL = """
        SELECT d.id, d.kind, d.format, MIN(i.since) AS first_since
        FROM device d JOIN device_installation i ON i.device_id = d.id GROUP BY d.id
        """

    /// Every installation period of a device.
    public static func periods(_ db: Database, device: String) throws -> [InstallationPeriod] {
        try periods(SQLiteSession(db), device: device)
    }

    /// The meter periods of a dwelling, oldest first: its consumption series across box replacements.
    public static func meterPeriods(_ db: Database, dwelling: String) throws -> [InstallationPeriod] {
        try meterPeriods(SQLiteSession(db), dwelling: dwelling)
    }

    /// Every installation period of every device of a building.
    public static func periods(_ db: Database, building: String) throws -> [InstallationPeriod] {
        try periods(SQLiteSession(db), building: building)
    }
}

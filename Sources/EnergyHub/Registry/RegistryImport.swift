import Foundation
import GRDB
import EnergyCore
import HubCore
import Shared

/// Imports the registry CSV into the hub's SQLite file (see `RegistryFile` for the format). All or
/// nothing: the first bad row is reported with its line number and nothing of the file is applied.
/// Importing the same file again changes nothing.
public struct RegistryImporter: Sendable {
    /// Checks a tariff cell; returns why it is wrong, or nil when it is acceptable.
    public typealias TariffCheck = RegistryFile.TariffCheck

    public let database: HubDatabase
    public let file: RegistryFile

    public static let requiredColumns = RegistryFile.requiredColumns
    public static let optionalColumns = RegistryFile.optionalColumns

    public init(database: HubDatabase, tariffCheck: @escaping TariffCheck = TariffPlan.registryCheck) {
        self.database = database
        self.file = RegistryFile(tariffCheck: tariffCheck)
    }

    public func importFile(at path: String) throws -> RegistryImportSummary {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw HubError.badRequest(field: "file", code: "unreadable", "cannot read \(path)")
        }
        return try importCSV(data)
    }

    public func importCSV(_ data: Data) throws -> RegistryImportSummary {
        let (rows, ignored) = try file.parse(data)
        var summary = try database.writeBlocking(Self.applying(rows))
        summary.ignoredColumns = ignored
        return summary
    }

    /// The import of parsed rows, as one write transaction's body: load what the rows name, plan, write.
    static func applying(_ rows: [RegistryRow]) -> @Sendable (Database) throws -> RegistryImportSummary {
        { db in
            let plan = try RegistryPlan(rows: rows, stored: try snapshot(db, RegistryPlan.keys(rows)))
            for change in plan.changes { try write(db, change) }
            return plan.summary
        }
    }

    static func snapshot(_ db: Database, _ keys: RegistryPlan.Keys) throws -> RegistrySnapshot {
        var stored = RegistrySnapshot()
        for estate in keys.estates where try db.exists("SELECT 1 FROM estate WHERE id = ?", estate) { stored.estates.insert(estate) }
        for building in keys.buildings {
            stored.estateOfBuilding[building] = try String.fetchOne(db, sql: "SELECT estate_id FROM building WHERE id = ?", arguments: [building])
        }
        for dwelling in keys.dwellings {
            stored.buildingOfDwelling[dwelling] = try String.fetchOne(db, sql: "SELECT building_id FROM dwelling WHERE id = ?", arguments: [dwelling])
            for row in try Row.fetchAll(db, sql: "SELECT since, tariff FROM dwelling_tariff WHERE dwelling_id = ?", arguments: [dwelling]) {
                stored.tariffs[DatedKey(dwelling, since: row[0])] = row[1]
            }
            for row in try Row.fetchAll(db, sql: "SELECT since, share FROM dwelling_share WHERE dwelling_id = ?", arguments: [dwelling]) {
                stored.shares[DatedKey(dwelling, since: row[0])] = row[1]
            }
        }
        for device in keys.devices {
            if let row = try Row.fetchOne(db, sql: "SELECT kind, format FROM device WHERE id = ?", arguments: [device]) {
                stored.devices[device] = (row[0], row[1])
            }
            for row in try Row.fetchAll(db, sql: "SELECT since, building_id, dwelling_id, until FROM device_installation WHERE device_id = ?", arguments: [device]) {
                stored.installations[DatedKey(device, since: row[0])] = Placement(building: row[1], dwelling: row[2], until: row[3])
            }
        }
        return stored
    }

    static func write(_ db: Database, _ change: RegistryChange) throws {
        switch change {
        case .addEstate(let id):
            try db.execute(sql: "INSERT INTO estate (id) VALUES (?)", arguments: [id])
        case .addBuilding(let id, let estate):
            try db.execute(sql: "INSERT INTO building (id, estate_id) VALUES (?, ?)", arguments: [id, estate])
        case .addDwelling(let id, let building):
            try db.execute(sql: "INSERT INTO dwelling (id, building_id) VALUES (?, ?)", arguments: [id, building])
        case .addDevice(let id, let kind, let format):
            try db.execute(sql: "INSERT INTO device (id, kind, format) VALUES (?, ?, ?)", arguments: [id, kind.rawValue, format.rawValue])
        case .addInstallation(let key, let at):
            try db.execute(sql: "INSERT INTO device_installation (device_id, since, until, building_id, dwelling_id) VALUES (?, ?, ?, ?, ?)",
                           arguments: [key.id, key.since, at.until, at.building, at.dwelling])
        case .moveInstallation(let key, let at):
            try db.execute(sql: "UPDATE device_installation SET building_id = ?, dwelling_id = ?, until = ? WHERE device_id = ? AND since = ?",
                           arguments: [at.building, at.dwelling, at.until, key.id, key.since])
        case .setTariff(let key, let tariff):
            try db.execute(sql: "INSERT INTO dwelling_tariff (dwelling_id, since, tariff) VALUES (?, ?, ?) ON CONFLICT(dwelling_id, since) DO UPDATE SET tariff = excluded.tariff",
                           arguments: [key.id, key.since, tariff])
        case .setShare(let key, let share):
            try db.execute(sql: "INSERT INTO dwelling_share (dwelling_id, since, share) VALUES (?, ?, ?) ON CONFLICT(dwelling_id, since) DO UPDATE SET share = excluded.share",
                           arguments: [key.id, key.since, share])
        }
    }
}

import EnergyCore
import Foundation
import HubCore
import GRDB
import Shared

/// The registry in the hub's SQLite file: `RegistryImporter` and `EnergyAdmin` do the work, each
/// change in one async write transaction, after `AccessPolicy` has let the caller in.
public struct SQLiteRegistryStore: RegistryStore {
    public let database: HubDatabase
    public let configuration: EnergyConfiguration
    let tariffCheck: RegistryFile.TariffCheck

    public init(database: HubDatabase, configuration: EnergyConfiguration, tariffCheck: @escaping RegistryFile.TariffCheck = TariffPlan.registryCheck) {
        self.database = database
        self.configuration = configuration
        self.tariffCheck = tariffCheck
    }

    var admin: EnergyAdmin { EnergyAdmin(database: database, configuration: configuration) }

    static func requireStaff(_ identity: Identity) throws { try RegistryAccess.requireStaff(identity) }

    public func importRegistry(csv: Data, by identity: Identity) async throws -> RegistryImportSummary {
        try Self.requireStaff(identity)
        let (rows, ignored) = try RegistryFile(tariffCheck: tariffCheck).parse(csv)
        var summary = try await database.write(RegistryImporter.applying(rows))
        summary.ignoredColumns = ignored
        return summary
    }

    public func setAllocationKey(building: String, key: AllocationKeyKind, since: LocalDate, by identity: Identity) async throws {
        try Self.requireStaff(identity)
        try await database.write(admin.setting(building: building, key: key, since: since))
    }

    public func setTariff(dwelling: String, cell: String, since: LocalDate, by identity: Identity) async throws {
        try Self.requireStaff(identity)
        try await database.write(try admin.setting(dwelling: dwelling, cell: cell, since: since))
    }

    public func importCoefficients(csv: Data, by identity: Identity) async throws -> Int {
        try Self.requireStaff(identity)
        return try await database.write(try admin.importing(coefficients: csv))
    }

    public func dwellings(estate: String?, by identity: Identity) async throws -> [RegistryDwelling] {
        try RegistryAccess.requireDwellings(estate: estate, identity)
        return try await database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT b.estate_id, d.building_id, d.id FROM dwelling d JOIN building b ON b.id = d.building_id
                WHERE (? IS NULL OR b.estate_id = ?) ORDER BY b.estate_id, d.building_id, d.id
                """, arguments: [estate, estate]).map { RegistryDwelling(estate: $0[0], building: $0[1], dwelling: $0[2]) }
        }
    }

    public func dwelling(_ dwelling: String, by identity: Identity) async throws -> RegistryDwelling {
        try RegistryAccess.requireDwelling(dwelling, identity)
        let found = try await database.read { db in
            try Row.fetchOne(db, sql: "SELECT b.estate_id, d.building_id, d.id FROM dwelling d JOIN building b ON b.id = d.building_id WHERE d.id = ?",
                             arguments: [dwelling]).map { RegistryDwelling(estate: $0[0], building: $0[1], dwelling: $0[2]) }
        }
        guard let found else { throw HubError.notFound(field: "dwelling", "no dwelling \(dwelling) in the registry") }
        return found
    }

    public func recordExport(month: String, buildings: [String], by identity: Identity, at now: Instant) async throws {
        try Self.requireStaff(identity)
        try await database.write(try admin.recording(month: month, buildings: buildings, at: now))
    }
}

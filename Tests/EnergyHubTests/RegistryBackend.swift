import EnergyCore
import Foundation
import GRDB
import HubCore
import HubTestSupport
import Logging
import PostgresNIO
import Shared
@testable import EnergyHub

/// The database engine a registry test runs against: the same test body, either store.
enum RegistryBackend: String, CaseIterable, Sendable {
    case sqlite, postgres

    static let postgresMigrations = SharedSchema.postgres + EnergySchema.postgres + SavingsSchema.postgres
}

/// A registry store on a fresh database of one engine, with what tests read back beside it.
struct RegistryHarness: Sendable {
    let backend: RegistryBackend
    let store: any RegistryStore
    /// Rows of a query giving one text column (the same SQL on both engines).
    let texts: @Sendable (String) async throws -> [String]
    let devices: @Sendable (LocalTimeZone) async throws -> [String: DeviceInfo]
    let periods: @Sendable (String) async throws -> [InstallationPeriod]

    /// Runs `body` with a registry store on a new, empty database of `backend`.
    static func with<T: Sendable>(_ backend: RegistryBackend, _ body: @Sendable (RegistryHarness) async throws -> T) async throws -> T {
        let configuration = try EnergySettings().validated()
        switch backend {
        case .sqlite:
            let database = try TestSupport.database(extraSchemas: [SavingsSchema.register])
            let readings = SQLiteReadingStore(database: database)
            return try await body(RegistryHarness(
                backend: backend, store: SQLiteRegistryStore(database: database, configuration: configuration),
                texts: { sql in try await database.read { db in try String.fetchAll(db, sql: sql) } },
                devices: { zone in try readings.devices(timeZone: zone) },
                periods: { device in try await readings.installationPeriods(device: device) }))
        case .postgres:
            let location = try await PostgresTestServer.database("registry", migrations: RegistryBackend.postgresMigrations)
            let logger = Logger(label: "test.registry", factory: { _ in SwiftLogNoOpLogHandler() })
            return try await HubPostgres(location, maximumConnections: 4, logger: logger).withRunning { database in
                try await body(RegistryHarness(
                    backend: backend, store: PostgresRegistryStore(database: database, configuration: configuration),
                    texts: { sql in try await database.read { try await $0.column(PostgresQuery(unsafeSQL: sql), as: String.self, logger: logger) } },
                    devices: { zone in try await database.read { try await PostgresInstallations.devices($0, timeZone: zone, logger: logger) } },
                    periods: { device in try await database.read { try await PostgresInstallations.periods($0, device: device, logger: logger) } }))
            }
        }
    }

    /// The registry's tables and the savings set-up, each row as text ('∅' for NULL), sorted:
    /// the same lines on both engines when they hold the same rows (`savings_dirty` without its id).
    static let tables: [(String, [String])] = [
        ("estate", ["id"]), ("building", ["id", "estate_id"]), ("dwelling", ["id", "building_id"]), ("device", ["id", "kind", "format"]),
        ("device_installation", ["device_id", "since", "until", "building_id", "dwelling_id"]),
        ("dwelling_tariff", ["dwelling_id", "since", "tariff"]), ("dwelling_share", ["dwelling_id", "since", "share"]),
        ("building_allocation_key", ["building_id", "since", "allocation_key"]),
        ("allocation_coefficient", ["building_id", "slot_start", "dwelling_id", "coefficient"]),
        ("energy_month_export", ["building_id", "month", "exported_at", "revised_at"]),
        ("savings_dirty", ["building_id", "from_instant", "to_instant"]),
    ]

    func dump(_ names: [String]? = nil) async throws -> [String] {
        var lines: [String] = []
        for (table, columns) in Self.tables where names?.contains(table) ?? true {
            let row = columns.map { "COALESCE(CAST(\($0) AS TEXT), '∅')" }.joined(separator: " || '|' || ")
            lines += try await texts("SELECT \(row) FROM \(table)").sorted().map { "\(table) \($0)" }
        }
        return lines
    }

    /// The registry without the savings queue.
    func registry() async throws -> [String] {
        try await dump(["estate", "building", "dwelling", "device", "device_installation", "dwelling_tariff", "dwelling_share"])
    }

    func importCSV(_ csv: String) async throws -> RegistryImportSummary {
        try await store.importRegistry(csv: Data(csv.utf8), by: .testStaff)
    }
}

/// A registry of `dwellings` dwellings (50 per building, 10 buildings per estate), each with a
/// meter box, every building with a PV inverter; every 7th dwelling had its box replaced, every
/// 3rd has a tariff, every 5th a share.
func generatedRegistry(dwellings: Int) -> String {
    var lines = ["estate;building;dwelling;device;kind;format;since;tariff;share;until"]
    for index in 0..<dwellings {
        let buildingIndex = index / 50
        let estate = "E\(buildingIndex / 10)"
        let building = "\(estate)-B\(buildingIndex % 10)"
        let dwelling = "\(building)-\(String(format: "%03d", index % 50))"
        if index % 50 == 0 { lines.append("\(estate);\(building);;pv-\(building);pv;opendtu;2025-01-01;;;") }
        let tariff = index % 3 == 0 ? (index % 2 == 0 ? "edf-bleu-base" : "edf-bleu-hphc 22:26-06:26") : ""
        let share = index % 5 == 0 ? "0,02" : ""
        if index % 7 == 0 {
            lines.append("\(estate);\(building);\(dwelling);box-\(index)-old;meter;teleinfo;2025-01-01;\(tariff);\(share);")
            lines.append("\(estate);\(building);\(dwelling);box-\(index);meter;canonical;2025-09-15;;;")
        } else {
            lines.append("\(estate);\(building);\(dwelling);box-\(index);meter;teleinfo;2025-01-01;\(tariff);\(share);")
        }
    }
    return lines.joined(separator: "\n") + "\n"
}

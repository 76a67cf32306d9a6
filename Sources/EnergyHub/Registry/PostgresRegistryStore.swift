import EnergyCore
import Foundation
import HubCore
import Logging
import PostgresNIO
import Shared

/// The registry on the server database: the same rules as `SQLiteRegistryStore` (`RegistryFile`
/// parses and checks the file, `RegistryPlan` decides the changes, `SavingsSetup` checks the
/// savings set-up, `RegistryAccess` lets the caller in), each change in one transaction. The
/// import loads what the file names and writes each table's changes in one statement (arrays
/// bound to `unnest`), so a file of thousands of rows costs a dozen round trips, not one per row.
public struct PostgresRegistryStore: RegistryStore {
    public let database: HubPostgres
    public let configuration: EnergyConfiguration
    let file: RegistryFile

    public init(database: HubPostgres, configuration: EnergyConfiguration, tariffCheck: @escaping RegistryFile.TariffCheck = TariffPlan.registryCheck) {
        self.database = database
        self.configuration = configuration
        self.file = RegistryFile(tariffCheck: tariffCheck)
    }

    var logger: Logger { database.logger }

    public func importRegistry(csv: Data, by identity: Identity) async throws -> RegistryImportSummary {
        try RegistryAccess.requireStaff(identity)
        let (rows, ignored) = try file.parse(csv)
        // Serializable: two imports at once cannot both add the same estate; one runs again.
        var summary = try await database.transaction(.serializable) { connection in
            let plan = try RegistryPlan(rows: rows, stored: try await snapshot(connection, RegistryPlan.keys(rows)))
            try await write(connection, plan.changes)
            return plan.summary
        }
        summary.ignoredColumns = ignored
        return summary
    }

    func snapshot(_ connection: PostgresConnection, _ keys: RegistryPlan.Keys) async throws -> RegistrySnapshot {
        var stored = RegistrySnapshot()
        stored.estates = Set(try await connection.column("SELECT id FROM estate WHERE id = ANY(\(keys.estates))", as: String.self, logger: logger))
        for try await (id, estate) in try await connection.query("SELECT id, estate_id FROM building WHERE id = ANY(\(keys.buildings))", logger: logger)
            .decode((String, String).self) { stored.estateOfBuilding[id] = estate }
        for try await (id, building) in try await connection.query("SELECT id, building_id FROM dwelling WHERE id = ANY(\(keys.dwellings))", logger: logger)
            .decode((String, String).self) { stored.buildingOfDwelling[id] = building }
        for try await (id, since, tariff) in try await connection.query("SELECT dwelling_id, since, tariff FROM dwelling_tariff WHERE dwelling_id = ANY(\(keys.dwellings))",
                                                                         logger: logger).decode((String, String, String).self) {
            stored.tariffs[DatedKey(id, since: since)] = tariff
        }
        for try await (id, since, share) in try await connection.query("SELECT dwelling_id, since, share FROM dwelling_share WHERE dwelling_id = ANY(\(keys.dwellings))",
                                                                        logger: logger).decode((String, String, String).self) {
            stored.shares[DatedKey(id, since: since)] = share
        }
        for try await (id, kind, format) in try await connection.query("SELECT id, kind, format FROM device WHERE id = ANY(\(keys.devices))", logger: logger)
            .decode((String, String, String).self) { stored.devices[id] = (kind, format) }
        for try await (id, since, building, dwelling, until) in try await connection.query("""
            SELECT device_id, since, building_id, dwelling_id, until FROM device_installation WHERE device_id = ANY(\(keys.devices))
            """, logger: logger).decode((String, String, String, String?, String?).self) {
            stored.installations[DatedKey(id, since: since)] = Placement(building: building, dwelling: dwelling, until: until)
        }
        return stored
    }

    /// Writes a plan's changes table by table, parents first. The savings triggers fire per row,
    /// so they queue the same recomputation as SQLite's row-by-row writes. A missing dwelling or
    /// end date travels as '' (arrays of optionals do not bind), which no identifier or date can be.
    func write(_ connection: PostgresConnection, _ changes: [RegistryChange]) async throws {
        var estates: [String] = [], buildings: ([String], [String]) = ([], []), dwellings: ([String], [String]) = ([], [])
        var devices: ([String], [String], [String]) = ([], [], [])
        typealias InstallationColumns = (device: [String], since: [String], building: [String], dwelling: [String], until: [String])
        var added: InstallationColumns = ([], [], [], [], []), moved: InstallationColumns = ([], [], [], [], [])
        var tariffs: ([String], [String], [String]) = ([], [], []), shares: ([String], [String], [String]) = ([], [], [])
        func append(_ list: inout InstallationColumns, _ key: DatedKey, _ at: Placement) {
            list.device.append(key.id); list.since.append(key.since); list.building.append(at.building)
            list.dwelling.append(at.dwelling ?? ""); list.until.append(at.until ?? "")
        }
        for change in changes {
            switch change {
            case .addEstate(let id): estates.append(id)
            case .addBuilding(let id, let estate): buildings.0.append(id); buildings.1.append(estate)
            case .addDwelling(let id, let building): dwellings.0.append(id); dwellings.1.append(building)
            case .addDevice(let id, let kind, let format): devices.0.append(id); devices.1.append(kind.rawValue); devices.2.append(format.rawValue)
            case .addInstallation(let key, let at): append(&added, key, at)
            case .moveInstallation(let key, let at): append(&moved, key, at)
            case .setTariff(let key, let tariff): tariffs.0.append(key.id); tariffs.1.append(key.since); tariffs.2.append(tariff)
            case .setShare(let key, let share): shares.0.append(key.id); shares.1.append(key.since); shares.2.append(share)
            }
        }
        if !estates.isEmpty { try await connection.query("INSERT INTO estate (id) SELECT unnest(\(estates)::text[])", logger: logger) }
        if !buildings.0.isEmpty {
            try await connection.query("INSERT INTO building (id, estate_id) SELECT * FROM unnest(\(buildings.0)::text[], \(buildings.1)::text[])", logger: logger)
        }
        if !dwellings.0.isEmpty {
            try await connection.query("INSERT INTO dwelling (id, building_id) SELECT * FROM unnest(\(dwellings.0)::text[], \(dwellings.1)::text[])", logger: logger)
        }
        if !devices.0.isEmpty {
            try await connection.query("INSERT INTO device (id, kind, format) SELECT * FROM unnest(\(devices.0)::text[], \(devices.1)::text[], \(devices.2)::text[])",
                                       logger: logger)
        }
        if !added.device.isEmpty {
            try await connection.query("""
                INSERT INTO device_installation (device_id, since, until, building_id, dwelling_id)
                SELECT d, s, NULLIF(u, ''), b, NULLIF(w, '')
                FROM unnest(\(added.device)::text[], \(added.since)::text[], \(added.building)::text[], \(added.dwelling)::text[], \(added.until)::text[]) AS x(d, s, b, w, u)
                """, logger: logger)
        }
        if !moved.device.isEmpty {
            try await connection.query("""
                UPDATE device_installation i SET building_id = x.b, dwelling_id = NULLIF(x.w, ''), until = NULLIF(x.u, '')
                FROM unnest(\(moved.device)::text[], \(moved.since)::text[], \(moved.building)::text[], \(moved.dwelling)::text[], \(moved.until)::text[]) AS x(d, s, b, w, u)
                WHERE i.device_id = x.d AND i.since = x.s
                """, logger: logger)
        }
        if !tariffs.0.isEmpty {
            try await connection.query("""
                INSERT INTO dwelling_tariff (dwelling_id, since, tariff) SELECT * FROM unnest(\(tariffs.0)::text[], \(tariffs.1)::text[], \(tariffs.2)::text[])
                ON CONFLICT (dwelling_id, since) DO UPDATE SET tariff = excluded.tariff
                """, logger: logger)
        }
        if !shares.0.isEmpty {
            try await connection.query("""
                INSERT INTO dwelling_share (dwelling_id, since, share) SELECT * FROM unnest(\(shares.0)::text[], \(shares.1)::text[], \(shares.2)::text[])
                ON CONFLICT (dwelling_id, since) DO UPDATE SET share = excluded.share
                """, logger: logger)
        }
    }

    public func setAllocationKey(building: String, key: AllocationKeyKind, since: LocalDate, by identity: Identity) async throws {
        try RegistryAccess.requireStaff(identity)
        let from = configuration.zone.startOfDay(since).millisecondsSince1970
        try await database.transaction { connection in
            guard try await connection.scalar("SELECT 1 FROM building WHERE id = \(building)", as: Int32.self, logger: logger) != nil else {
                throw SavingsSetup.missingBuilding(building)
            }
            try await connection.query("""
                INSERT INTO building_allocation_key (building_id, since, allocation_key) VALUES (\(building), \(since.description), \(key.rawValue))
                ON CONFLICT (building_id, since) DO UPDATE SET allocation_key = excluded.allocation_key
                """, logger: logger)
            try await connection.query("INSERT INTO savings_dirty (building_id, from_instant, to_instant) VALUES (\(building), \(from), \(SavingsSetup.openEnd))",
                                       logger: logger)
        }
    }

    public func setTariff(dwelling: String, cell: String, since: LocalDate, by identity: Identity) async throws {
        try RegistryAccess.requireStaff(identity)
        let plan = try SavingsSetup.tariffPlan(cell)
        try await database.transaction { connection in
            guard try await connection.scalar("SELECT 1 FROM dwelling WHERE id = \(dwelling)", as: Int32.self, logger: logger) != nil else {
                throw SavingsSetup.missingDwelling(dwelling)
            }
            // The registry triggers queue the recomputation.
            try await connection.query("""
                INSERT INTO dwelling_tariff (dwelling_id, since, tariff) VALUES (\(dwelling), \(since.description), \(plan.description))
                ON CONFLICT (dwelling_id, since) DO UPDATE SET tariff = excluded.tariff
                """, logger: logger)
        }
    }

    public func importCoefficients(csv: Data, by identity: Identity) async throws -> Int {
        try RegistryAccess.requireStaff(identity)
        let grid = configuration.grid
        let entries = try SavingsSetup.coefficients(csv, grid: grid)
        return try await database.transaction { connection in
            var buildingOf: [String: String] = [:]
            let dwellings = Array(Set(entries.map(\.dwelling)))
            for try await (id, building) in try await connection.query("SELECT id, building_id FROM dwelling WHERE id = ANY(\(dwellings))", logger: logger)
                .decode((String, String).self) { buildingOf[id] = building }
            let span = try SavingsSetup.spans(entries, buildingOf: buildingOf)
            // A slot given in the file replaces that slot's coefficients.
            try await connection.query("""
                DELETE FROM allocation_coefficient c USING unnest(\(entries.map(\.building))::text[], \(entries.map(\.slotStart))::bigint[]) AS x(b, s)
                WHERE c.building_id = x.b AND c.slot_start = x.s
                """, logger: logger)
            // A dwelling given twice for a slot: the last line wins, as SQLite's row-by-row upsert.
            var last: [String: SavingsSetup.Coefficient] = [:]
            for entry in entries { last[entry.building + "\u{0}" + String(entry.slotStart) + "\u{0}" + entry.dwelling] = entry }
            let kept = last.values.sorted { $0.line < $1.line }
            try await connection.query("""
                INSERT INTO allocation_coefficient (building_id, slot_start, dwelling_id, coefficient)
                SELECT * FROM unnest(\(kept.map(\.building))::text[], \(kept.map(\.slotStart))::bigint[], \(kept.map(\.dwelling))::text[], \(kept.map(\.coefficient))::bigint[])
                """, logger: logger)
            for (building, (low, high)) in span.sorted(by: { $0.key < $1.key }) {
                try await connection.query("INSERT INTO savings_dirty (building_id, from_instant, to_instant) VALUES (\(building), \(low), \(high + grid.milliseconds))",
                                           logger: logger)
            }
            return entries.count
        }
    }

    public func recordExport(month: String, buildings: [String], by identity: Identity, at now: Instant) async throws {
        try RegistryAccess.requireStaff(identity)
        try SavingsSetup.checkMonth(month)
        try await database.transaction { connection in
            let stored = Set(try await connection.column("SELECT id FROM building WHERE \(buildings.isEmpty) OR id = ANY(\(buildings))", as: String.self, logger: logger))
            let targets = buildings.isEmpty ? stored.sorted() : buildings
            if let missing = targets.first(where: { !stored.contains($0) }) { throw SavingsSetup.missingBuilding(missing) }
            try await connection.query("""
                INSERT INTO energy_month_export (building_id, month, exported_at, revised_at)
                SELECT DISTINCT b, \(month), \(now.millisecondsSince1970)::bigint, NULL::bigint FROM unnest(\(targets)::text[]) AS x(b)
                ON CONFLICT (building_id, month) DO UPDATE SET exported_at = excluded.exported_at, revised_at = NULL
                """, logger: logger)
        }
    }

    /// Ordered byte-wise (COLLATE "C"), as SQLite orders text.
    public func dwellings(estate: String?, by identity: Identity) async throws -> [RegistryDwelling] {
        try RegistryAccess.requireDwellings(estate: estate, identity)
        return try await database.read { connection in
            var dwellings: [RegistryDwelling] = []
            for try await (estate, building, dwelling) in try await connection.query("""
                SELECT b.estate_id, d.building_id, d.id FROM dwelling d JOIN building b ON b.id = d.building_id
                WHERE \(estate)::text IS NULL OR b.estate_id = \(estate) ORDER BY b.estate_id COLLATE "C", d.building_id COLLATE "C", d.id COLLATE "C"
                """, logger: logger).decode((String, String, String).self) {
                dwellings.append(RegistryDwelling(estate: estate, building: building, dwelling: dwelling))
            }
            return dwellings
        }
    }

    public func dwelling(_ dwelling: String, by identity: Identity) async throws -> RegistryDwelling {
        try RegistryAccess.requireDwelling(dwelling, identity)
        let found = try await database.read { (connection) async throws -> RegistryDwelling? in
            for try await (estate, building, id) in try await connection.query("""
                SELECT b.estate_id, d.building_id, d.id FROM dwelling d JOIN building b ON b.id = d.building_id WHERE d.id = \(dwelling)
                """, logger: logger).decode((String, String, String).self) {
                return RegistryDwelling(estate: estate, building: building, dwelling: id)
            }
            return nil
        }
        guard let found else { throw SavingsSetup.missingDwelling(dwelling) }
        return found
    }
}

/// The registry queries other PostgreSQL stores need (the readings store's device list and
/// installation periods), with SQLite's SQL and the same row-to-value functions
/// (`DeviceInfo.fromStored`, `InstallationPeriod.fromStored`).
public enum PostgresInstallations {
    /// Every registered device with the start of its first installation.
    public static func devices(_ connection: PostgresConnection, timeZone: LocalTimeZone, logger: Logger) async throws -> [String: DeviceInfo] {
        var devices: [String: DeviceInfo] = [:]
        for try await (id, kind, format, first) in try await connection.query(PostgresQuery(unsafeSQL: Installations.devicesSQL), logger: logger)
            .decode((String, String, String, String).self) {
            if let device = DeviceInfo.fromStored(id: id, kind: kind, format: format, firstSince: first, timeZone: timeZone) { devices[id] = device }
        }
        return devices
    }

    /// Every installation period of a device, oldest first.
    public static func periods(_ connection: PostgresConnection, device: String, logger: Logger) async throws -> [InstallationPeriod] {
        let query: PostgresQuery = "\(unescaped: Installations.periodsSQL(least: "LEAST")) WHERE i.device_id = \(device) ORDER BY i.since COLLATE \"C\", i.device_id COLLATE \"C\""
        var periods: [InstallationPeriod] = []
        for try await (device, kind, estate, building, dwelling, since, end) in try await connection.query(query, logger: logger)
            .decode((String, String, String, String, String?, String, String).self) {
            if let period = InstallationPeriod.fromStored(device: device, kind: kind, estate: estate, building: building, dwelling: dwelling,
                                                          since: since, periodEnd: end) { periods.append(period) }
        }
        return periods
    }
}

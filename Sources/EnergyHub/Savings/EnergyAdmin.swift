import Foundation
import GRDB
import EnergyCore
import HubCore
import Shared

/// Staff operations on the savings set-up: a building's allocation key, the organiser's per-slot
/// coefficients, a dwelling's tariff plan from a date, and the record of exported months. Each
/// one queues the figures it affects for recomputation in the same transaction.
public struct EnergyAdmin: Sendable {
    public let database: HubDatabase
    public let configuration: EnergyConfiguration

    public init(database: HubDatabase, configuration: EnergyConfiguration) {
        self.database = database
        self.configuration = configuration
    }

    /// Sets a building's allocation key from a local date on.
    public func setKey(building: String, key: AllocationKeyKind, since: LocalDate) throws {
        try database.writeBlocking(setting(building: building, key: key, since: since))
    }

    func setting(building: String, key: AllocationKeyKind, since: LocalDate) -> @Sendable (Database) throws -> Void {
        { db in
            guard try db.exists("SELECT 1 FROM building WHERE id = ?", building) else { throw SavingsSetup.missingBuilding(building) }
            try db.execute(sql: """
                INSERT INTO building_allocation_key (building_id, since, allocation_key) VALUES (?, ?, ?)
                ON CONFLICT (building_id, since) DO UPDATE SET allocation_key = excluded.allocation_key
                """, arguments: [building, since.description, key.rawValue])
            try queue(db, building: building, from: configuration.zone.startOfDay(since), to: nil)
        }
    }

    /// Sets a dwelling's tariff plan (a registry `tariff` cell, e.g. `edf-bleu-hphc 22:26-06:26`)
    /// from a local date on. The registry triggers queue the recomputation.
    public func setTariff(dwelling: String, cell: String, since: LocalDate) throws {
        try database.writeBlocking(try setting(dwelling: dwelling, cell: cell, since: since))
    }

    func setting(dwelling: String, cell: String, since: LocalDate) throws -> @Sendable (Database) throws -> Void {
        let plan = try SavingsSetup.tariffPlan(cell)
        return { db in
            guard try db.exists("SELECT 1 FROM dwelling WHERE id = ?", dwelling) else { throw SavingsSetup.missingDwelling(dwelling) }
            try db.execute(sql: """
                INSERT INTO dwelling_tariff (dwelling_id, since, tariff) VALUES (?, ?, ?)
                ON CONFLICT (dwelling_id, since) DO UPDATE SET tariff = excluded.tariff
                """, arguments: [dwelling, since.description, plan.description])
        }
    }

    /// Imports per-slot coefficients: a `;`-separated CSV with the header
    /// `building;dwelling;slot_start;coefficient`, `slot_start` an RFC 3339 instant on the slot
    /// grid, `coefficient` a decimal in [0, 1] (6 decimals at most). Per building and slot the
    /// coefficients must add up to at most 1. All or nothing; a slot given again is replaced.
    /// Returns the number of coefficients stored.
    @discardableResult
    public func importCoefficients(_ data: Data) throws -> Int {
        try database.writeBlocking(try importing(coefficients: data))
    }

    func importing(coefficients data: Data) throws -> @Sendable (Database) throws -> Int {
        let grid = configuration.grid
        let entries = try SavingsSetup.coefficients(data, grid: grid)
        return { db in
            var buildingOf: [String: String] = [:]
            for dwelling in Set(entries.map(\.dwelling)) {
                buildingOf[dwelling] = try String.fetchOne(db, sql: "SELECT building_id FROM dwelling WHERE id = ?", arguments: [dwelling])
            }
            let span = try SavingsSetup.spans(entries, buildingOf: buildingOf)
            // A slot given in the file replaces that slot's coefficients.
            var cleared = Set<String>()
            for entry in entries where cleared.insert(entry.building + "\u{0}" + String(entry.slotStart)).inserted {
                try db.execute(sql: "DELETE FROM allocation_coefficient WHERE building_id = ? AND slot_start = ?", arguments: [entry.building, entry.slotStart])
            }
            for entry in entries {
                try db.execute(sql: "INSERT INTO allocation_coefficient (building_id, slot_start, dwelling_id, coefficient) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET coefficient = excluded.coefficient",
                               arguments: [entry.building, entry.slotStart, entry.dwelling, entry.coefficient])
            }
            for (building, (low, high)) in span {
                try queue(db, building: building, from: Instant(millisecondsSince1970: low), to: Instant(millisecondsSince1970: high + grid.milliseconds))
            }
            return entries.count
        }
    }

    /// Records that staff exported a month's statements for these buildings (all when empty);
    /// a later change to that month's figures flags it as revised.
    public func recordExport(month: String, buildings: [String] = [], at now: Instant) throws {
        try database.writeBlocking(try recording(month: month, buildings: buildings, at: now))
    }

    func recording(month: String, buildings: [String], at now: Instant) throws -> @Sendable (Database) throws -> Void {
        try SavingsSetup.checkMonth(month)
        return { db in
            let targets = buildings.isEmpty ? try String.fetchAll(db, sql: "SELECT id FROM building ORDER BY id") : buildings
            for building in targets {
                guard try db.exists("SELECT 1 FROM building WHERE id = ?", building) else { throw SavingsSetup.missingBuilding(building) }
                try db.execute(sql: """
                    INSERT INTO energy_month_export (building_id, month, exported_at, revised_at) VALUES (?, ?, ?, NULL)
                    ON CONFLICT (building_id, month) DO UPDATE SET exported_at = excluded.exported_at, revised_at = NULL
                    """, arguments: [building, month, now.millisecondsSince1970])
            }
        }
    }

    func queue(_ db: Database, building: String, from: Instant, to: Instant?) throws {
        try db.execute(sql: "INSERT INTO savings_dirty (building_id, from_instant, to_instant) VALUES (?, ?, ?)",
                       arguments: [building, from.millisecondsSince1970, to?.millisecondsSince1970 ?? SavingsSetup.openEnd])
    }
}

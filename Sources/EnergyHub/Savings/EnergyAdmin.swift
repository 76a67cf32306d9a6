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
            guard try db.exists("SELECT 1 FROM building WHERE id = ?", building) else { throw HubError.notFound(field: "building", "no building \(building) in the registry") }
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
        let plan: TariffPlan
        switch TariffPlan.parse(cell) {
        case .success(let parsed): plan = parsed
        case .failure(let error): throw error
        }
        return { db in
            guard try db.exists("SELECT 1 FROM dwelling WHERE id = ?", dwelling) else { throw HubError.notFound(field: "dwelling", "no dwelling \(dwelling) in the registry") }
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
        guard let text = String(data: data.starts(with: [0xEF, 0xBB, 0xBF]) ? data.dropFirst(3) : data, encoding: .utf8) else {
            throw HubError.badRequest(field: "file", code: "not_utf8", "the file is not UTF-8 text")
        }
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        guard let header = lines.first?.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }),
              header == ["building", "dwelling", "slot_start", "coefficient"] else {
            throw HubError.badRequest(field: "line 1", code: "missing_column", "line 1: the header must be building;dwelling;slot_start;coefficient")
        }
        struct Entry: Sendable { var building: String; var dwelling: String; var slotStart: Int64; var coefficient: Int64; var line: Int }
        var entries: [Entry] = []
        var totals: [String: Int64] = [:]
        let grid = configuration.grid
        for (index, line) in lines.enumerated().dropFirst() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let number = index + 1
            let cells = line.split(separator: ";", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            func fail(_ column: String, _ message: String) -> HubError {
                HubError.badRequest(field: "line \(number), column \(column)", code: "invalid_row", "line \(number), column \(column): \(message)")
            }
            guard cells.count == 4 else { throw fail("coefficient", "expected 4 cells separated by ;") }
            guard let start = Instant.parseRFC3339(cells[2]) else { throw fail("slot_start", "\"\(cells[2])\" is not an RFC 3339 date-time such as 2026-06-01T10:00:00Z") }
            guard start.millisecondsSince1970 % grid.milliseconds == 0 else { throw fail("slot_start", "\(cells[2]) is not the start of a \(grid.minutes)-minute slot") }
            guard let coefficient = Decimal6.parse(cells[3]), (0...1_000_000).contains(coefficient) else {
                throw fail("coefficient", "\"\(cells[3])\" must be a decimal between 0 and 1 with at most 6 decimals")
            }
            let key = cells[0] + "\u{0}" + String(start.millisecondsSince1970)
            totals[key, default: 0] += coefficient
            if totals[key]! > 1_000_000 { throw fail("coefficient", "the coefficients of building \(cells[0]) for \(cells[2]) add up to more than 1") }
            entries.append(Entry(building: cells[0], dwelling: cells[1], slotStart: start.millisecondsSince1970, coefficient: coefficient, line: number))
        }
        guard !entries.isEmpty else { throw HubError.badRequest(field: "file", code: "empty", "the file has a header but no rows") }
        return { [entries] db in
            var span: [String: (Int64, Int64)] = [:]
            for entry in entries {
                guard let building = try String.fetchOne(db, sql: "SELECT building_id FROM dwelling WHERE id = ?", arguments: [entry.dwelling]) else {
                    throw HubError.badRequest(field: "line \(entry.line), column dwelling", code: "invalid_row", "line \(entry.line), column dwelling: no dwelling \(entry.dwelling) in the registry")
                }
                guard building == entry.building else {
                    throw HubError.badRequest(field: "line \(entry.line), column building", code: "invalid_row", "line \(entry.line), column building: dwelling \(entry.dwelling) is in building \(building)")
                }
                if let (low, high) = span[building] { span[building] = (min(low, entry.slotStart), max(high, entry.slotStart)) } else { span[building] = (entry.slotStart, entry.slotStart) }
            }
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
        guard month.count == 7, LocalDate(parsing: month + "-01") != nil else {
            throw HubError.badRequest(field: "month", code: "invalid_date", "month \(month) is not YYYY-MM")
        }
        return { db in
            let targets = buildings.isEmpty ? try String.fetchAll(db, sql: "SELECT id FROM building ORDER BY id") : buildings
            for building in targets {
                guard try db.exists("SELECT 1 FROM building WHERE id = ?", building) else { throw HubError.notFound(field: "building", "no building \(building) in the registry") }
                try db.execute(sql: """
                    INSERT INTO energy_month_export (building_id, month, exported_at, revised_at) VALUES (?, ?, ?, NULL)
                    ON CONFLICT (building_id, month) DO UPDATE SET exported_at = excluded.exported_at, revised_at = NULL
                    """, arguments: [building, month, now.millisecondsSince1970])
            }
        }
    }

    func queue(_ db: Database, building: String, from: Instant, to: Instant?) throws {
        try db.execute(sql: "INSERT INTO savings_dirty (building_id, from_instant, to_instant) VALUES (?, ?, ?)",
                       arguments: [building, from.millisecondsSince1970, to?.millisecondsSince1970 ?? 253_402_300_800_000])
    }
}

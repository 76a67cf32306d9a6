import Foundation
import HubCore

/// The checks of staff's savings set-up that need no database (a tariff cell, the coefficients
/// file, an exported month), shared by every engine's `RegistryStore`.
public enum SavingsSetup {
    /// One coefficient of the file.
    public struct Coefficient: Sendable, Hashable {
        public var building: String
        public var dwelling: String
        public var slotStart: Int64
        /// Millionths.
        public var coefficient: Int64
        public var line: Int
    }

    /// The end of time in `savings_dirty`: a change queued with no end.
    public static let openEnd: Int64 = 253_402_300_800_000

    public static func tariffPlan(_ cell: String) throws -> TariffPlan {
        switch TariffPlan.parse(cell) {
        case .success(let parsed): return parsed
        case .failure(let error): throw error
        }
    }

    /// The coefficients file: `;`-separated with the header `building;dwelling;slot_start;coefficient`,
    /// `slot_start` an RFC 3339 instant on the slot grid, `coefficient` a decimal in [0, 1] (6
    /// decimals at most); per building and slot the coefficients add up to at most 1.
    public static func coefficients(_ data: Data, grid: SlotGrid) throws -> [Coefficient] {
        guard let text = String(data: data.starts(with: [0xEF, 0xBB, 0xBF]) ? data.dropFirst(3) : data, encoding: .utf8) else {
            throw HubError.badRequest(field: "file", code: "not_utf8", "the file is not UTF-8 text")
        }
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        guard let header = lines.first?.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }),
              header == ["building", "dwelling", "slot_start", "coefficient"] else {
            throw HubError.badRequest(field: "line 1", code: "missing_column", "line 1: the header must be building;dwelling;slot_start;coefficient")
        }
        var entries: [Coefficient] = []
        var totals: [String: Int64] = [:]
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
            entries.append(Coefficient(building: cells[0], dwelling: cells[1], slotStart: start.millisecondsSince1970, coefficient: coefficient, line: number))
        }
        guard !entries.isEmpty else { throw HubError.badRequest(field: "file", code: "empty", "the file has a header but no rows") }
        return entries
    }

    /// Checks the coefficients against the registry (`buildingOf` a stored dwelling's building) and
    /// returns each building's first and last slot start, to queue for recomputation.
    public static func spans(_ entries: [Coefficient], buildingOf: [String: String]) throws -> [String: (Int64, Int64)] {
        var span: [String: (Int64, Int64)] = [:]
        for entry in entries {
            guard let building = buildingOf[entry.dwelling] else {
                throw HubError.badRequest(field: "line \(entry.line), column dwelling", code: "invalid_row", "line \(entry.line), column dwelling: no dwelling \(entry.dwelling) in the registry")
            }
            guard building == entry.building else {
                throw HubError.badRequest(field: "line \(entry.line), column building", code: "invalid_row", "line \(entry.line), column building: dwelling \(entry.dwelling) is in building \(building)")
            }
            if let (low, high) = span[building] { span[building] = (min(low, entry.slotStart), max(high, entry.slotStart)) } else { span[building] = (entry.slotStart, entry.slotStart) }
        }
        return span
    }

    public static func checkMonth(_ month: String) throws {
        guard month.count == 7, LocalDate(parsing: month + "-01") != nil else {
            throw HubError.badRequest(field: "month", code: "invalid_date", "month \(month) is not YYYY-MM")
        }
    }

    public static func missingBuilding(_ building: String) -> HubError { HubError.notFound(field: "building", "no building \(building) in the registry") }
    public static func missingDwelling(_ dwelling: String) -> HubError { HubError.notFound(field: "dwelling", "no dwelling \(dwelling) in the registry") }
}

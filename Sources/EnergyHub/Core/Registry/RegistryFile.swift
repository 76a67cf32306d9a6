import Foundation
import HubCore

/// The landlord's registry file as staff keep it: `;`-separated, UTF-8 with or without BOM, a
/// header row naming the columns `estate;building;dwelling;device;kind;format;since` and optionally
/// `tariff`, `share` and `until`. The rules every engine's import shares: parsing and the checks of
/// the file alone (`parse`), then the changes the rows make to what the registry holds (`plan`).
public struct RegistryFile: Sendable {
    /// Checks a tariff cell; returns why it is wrong, or nil when it is acceptable.
    public typealias TariffCheck = TariffPlan.RegistryCheck

    public let tariffCheck: TariffCheck

    public static let requiredColumns = ["estate", "building", "dwelling", "device", "kind", "format", "since"]
    public static let optionalColumns = ["tariff", "share", "until"]

    public init(tariffCheck: @escaping TariffCheck = TariffPlan.registryCheck) {
        self.tariffCheck = tariffCheck
    }

    /// The rows of the file and the columns it ignores; the first bad row is the error.
    public func parse(_ data: Data) throws -> ([RegistryRow], [String]) {
        var bytes = [UInt8](data)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw HubError.badRequest(field: "file", code: "not_utf8", "the file is not UTF-8 text (save it as CSV UTF-8)")
        }
        let records = CSV.records(text, separator: ";")
        guard let header = records.first(where: { !$0.fields.allSatisfy(\.isEmpty) }) else {
            throw HubError.badRequest(field: "file", code: "empty", "the file is empty: it needs a header row and at least one row")
        }
        let names = header.fields.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        var column: [String: Int] = [:]
        for (index, name) in names.enumerated() where !name.isEmpty {
            if column[name] != nil { throw HubError.badRequest(field: "line \(header.line)", code: "duplicate_column", "line \(header.line): the column \(name) appears twice") }
            column[name] = index
        }
        let missing = RegistryFile.requiredColumns.filter { column[$0] == nil }
        guard missing.isEmpty else {
            throw HubError.badRequest(field: "line \(header.line)", code: "missing_column",
                                      "line \(header.line): the header lacks the column(s) \(missing.joined(separator: ", ")); expected \(RegistryFile.requiredColumns.joined(separator: ";")) [;tariff;share;until], separated by ;")
        }
        let known = Set(RegistryFile.requiredColumns + RegistryFile.optionalColumns)
        let ignored = names.filter { !$0.isEmpty && !known.contains($0) }

        var rows: [RegistryRow] = []
        for record in records where record.line > header.line {
            if record.fields.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) { continue }
            func cell(_ name: String) -> String? {
                guard let index = column[name], index < record.fields.count else { return nil }
                let value = record.fields[index].trimmingCharacters(in: .whitespaces)
                return value.isEmpty ? nil : value
            }
            func fail(_ name: String, _ message: String) -> HubError {
                HubError.badRequest(field: "line \(record.line), column \(name)", code: "invalid_row", "line \(record.line), column \(name): \(message)")
            }
            func identifier(_ name: String, required: Bool) throws -> String? {
                guard let value = cell(name) else {
                    if required { throw fail(name, "is empty") }
                    return nil
                }
                guard value.count <= 64, !value.contains(where: { "/+#".contains($0) || $0.isNewline }) else {
                    throw fail(name, "\"\(value)\" must be at most 64 characters without / + # (it names an MQTT topic level or a URL part)")
                }
                return value
            }
            let estate = try identifier("estate", required: true)!
            let building = try identifier("building", required: true)!
            let dwelling = try identifier("dwelling", required: false)
            let device = try identifier("device", required: true)!
            guard let kindText = cell("kind"), let kind = DeviceKind(rawValue: kindText.lowercased()) else {
                throw fail("kind", "\"\(cell("kind") ?? "")\" must be meter or pv")
            }
            guard let formatText = cell("format"), let format = DeviceFormat(rawValue: formatText.lowercased()) else {
                throw fail("format", "\"\(cell("format") ?? "")\" must be one of \(DeviceFormat.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard let sinceText = cell("since") else { throw fail("since", "is empty: the installation date, YYYY-MM-DD") }
            guard let since = LocalDate(parsing: sinceText) else { throw fail("since", "\"\(sinceText)\" is not a date YYYY-MM-DD") }
            var until: LocalDate?
            if let untilText = cell("until") {
                guard let parsed = LocalDate(parsing: untilText) else { throw fail("until", "\"\(untilText)\" is not a date YYYY-MM-DD") }
                guard parsed > since else { throw fail("until", "\(untilText) must be after since (\(sinceText))") }
                until = parsed
            }
            switch kind {
            case .meter:
                guard dwelling != nil else { throw fail("dwelling", "is empty: a meter box belongs to a dwelling") }
            case .pv:
                guard dwelling == nil else { throw fail("dwelling", "must be empty for a pv device: production belongs to the building") }
                if cell("tariff") != nil { throw fail("tariff", "must be empty for a pv device") }
                if cell("share") != nil { throw fail("share", "must be empty for a pv device") }
            }
            var tariff: String?
            if let text = cell("tariff") {
                if let problem = tariffCheck(text) { throw fail("tariff", "\"\(text)\": \(problem)") }
                tariff = text
            }
            var share: String?
            if let text = cell("share") {
                guard let micro = DecimalText.scaled(text.replacingOccurrences(of: ",", with: "."), scale: 6, rounding: .reject), (0...1_000_000).contains(micro) else {
                    throw fail("share", "\"\(text)\" must be a decimal between 0 and 1 with at most 6 decimals, e.g. 0.125")
                }
                share = RegistryFile.normalisedShare(micro)
            }
            rows.append(RegistryRow(line: record.line, estate: estate, building: building, dwelling: dwelling, device: device, kind: kind,
                                    format: format, since: since, until: until, tariff: tariff, share: share))
        }
        guard !rows.isEmpty else {
            throw HubError.badRequest(field: "file", code: "empty", "the file has a header but no rows")
        }
        try checkConsistency(rows)
        return (rows, ignored)
    }

    package static func normalisedShare(_ micro: Int64) -> String {
        if micro == 1_000_000 { return "1" }
        var fraction = String(micro + 1_000_000).dropFirst()
        while fraction.last == "0" { fraction.removeLast() }
        return fraction.isEmpty ? "0" : "0." + fraction
    }

    /// Checks that the rows of one file agree with each other.
    package func checkConsistency(_ rows: [RegistryRow]) throws {
        var estateOfBuilding: [String: (String, Int)] = [:]
        var buildingOfDwelling: [String: (String, Int)] = [:]
        var device: [String: (DeviceKind, DeviceFormat, Int)] = [:]
        var installation: [String: RegistryRow] = [:]
        var meterSince: [String: Int] = [:]
        var tariff: [String: (String, Int)] = [:]
        var share: [String: (String, Int)] = [:]
        func fail(_ row: RegistryRow, _ column: String, _ message: String) -> HubError {
            HubError.badRequest(field: "line \(row.line), column \(column)", code: "inconsistent_row", "line \(row.line), column \(column): \(message)")
        }
        for row in rows {
            if let (estate, line) = estateOfBuilding[row.building], estate != row.estate {
                throw fail(row, "estate", "building \(row.building) is in estate \(estate) on line \(line), not \(row.estate)")
            }
            estateOfBuilding[row.building] = (row.estate, row.line)
            if let dwelling = row.dwelling {
                if let (building, line) = buildingOfDwelling[dwelling], building != row.building {
                    throw fail(row, "building", "dwelling \(dwelling) is in building \(building) on line \(line), not \(row.building)")
                }
                buildingOfDwelling[dwelling] = (row.building, row.line)
                let key = dwelling + "\u{0}" + row.since.description
                if let line = meterSince[key] {
                    throw fail(row, "since", "dwelling \(dwelling) already gets another meter on \(row.since) (line \(line)); a replaced box starts on a later date")
                }
                meterSince[key] = row.line
                if let text = row.tariff {
                    if let (other, line) = tariff[key], other != text { throw fail(row, "tariff", "line \(line) gives dwelling \(dwelling) the tariff \(other) on the same date") }
                    tariff[key] = (text, row.line)
                }
                if let text = row.share {
                    if let (other, line) = share[key], other != text { throw fail(row, "share", "line \(line) gives dwelling \(dwelling) the share \(other) on the same date") }
                    share[key] = (text, row.line)
                }
            }
            if let (kind, format, line) = device[row.device], kind != row.kind || format != row.format {
                throw fail(row, kind != row.kind ? "kind" : "format", "device \(row.device) is a \(kind.rawValue) publishing \(format.rawValue) on line \(line)")
            }
            device[row.device] = (row.kind, row.format, row.line)
            let key = row.device + "\u{0}" + row.since.description
            if let other = installation[key], other.building != row.building || other.dwelling != row.dwelling || other.until != row.until {
                throw fail(row, "since", "device \(row.device) is installed elsewhere from the same date on line \(other.line)")
            }
            installation[key] = row
        }
    }

}

/// A minimal RFC 4180 reader with a configurable separator: quoted fields, doubled quotes, CRLF or LF.
package enum CSV {
    package struct Record {
        /// The 1-based line the record starts on.
        package var line: Int
        package var fields: [String]
    }

    package static func records(_ text: String, separator: Character) -> [Record] {
        var records: [Record] = []
        var fields: [String] = []
        var field = ""
        var inQuotes = false
        var line = 1
        var recordLine = 1
        var iterator = text.makeIterator()
        var pending: Character? = nil
        func next() -> Character? {
            if let character = pending { pending = nil; return character }
            return iterator.next()
        }
        while let character = next() {
            if inQuotes {
                if character == "\"" {
                    if let following = next() {
                        if following == "\"" { field.append("\"") } else { inQuotes = false; pending = following }
                    } else {
                        inQuotes = false
                    }
                } else {
                    if character == "\n" || character == "\r\n" { line += 1 }
                    field.append(character)
                }
            } else if character == "\"" && field.isEmpty {
                inQuotes = true
            } else if character == separator {
                fields.append(field)
                field = ""
            } else if character == "\n" || character == "\r\n" || character == "\r" {
                fields.append(field)
                records.append(Record(line: recordLine, fields: fields))
                fields = []
                field = ""
                line += 1
                recordLine = line
            } else {
                field.append(character)
            }
        }
        if !field.isEmpty || !fields.isEmpty {
            fields.append(field)
            records.append(Record(line: recordLine, fields: fields))
        }
        return records
    }
}

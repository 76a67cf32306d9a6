import CarShareCore
import EnergyCore
import Foundation
import HubCore
import HubStatements

/// Exports a month's household statements (issue 10) through the stores and the access policy:
/// the JSON (cents and Wh), the staff summary (French CSV), the printable HTML (one A4 page per
/// household) and its PDF. Households are written one at a time as they are computed, so memory
/// stays bounded whatever the number of households; a progress line every hundred.
package struct StatementsExport: Sendable {
    package enum Format: String, CaseIterable, Sendable {
        case json, csv, html, pdf
    }

    package struct Summary: Codable, Sendable, Equatable {
        package var month: String
        package var estate: String?
        package var counts: StaffSummary.Counts
        package var files: [String]
    }

    let registry: any RegistryStore
    let figures: any EnergyFigureStore
    let carShare: any CarShareStore
    let landlord: String
    let association: @Sendable (String) -> String?

    package init(registry: any RegistryStore, figures: any EnergyFigureStore, carShare: any CarShareStore, landlord: String,
                 association: @escaping @Sendable (String) -> String?) {
        self.registry = registry
        self.figures = figures
        self.carShare = carShare
        self.landlord = landlord
        self.association = association
    }

    /// Checks a month `YYYY-MM`; answers its first and last local day.
    package static func month(_ text: String) throws -> (first: LocalDate, last: LocalDate) {
        guard text.count == 7, let first = LocalDate(parsing: text + "-01") else {
            throw HubError.badRequest(field: "month", code: "invalid_date", "month \(text) is not YYYY-MM (e.g. 2026-10)")
        }
        return (first, first.firstOfNextMonth.advanced(by: -1))
    }

    /// The statement of one household for a month, as of the month's end (or now, for the current month).
    package func household(_ place: RegistryDwelling, month: String, members: [MemberView], by identity: Identity, now: Instant) async throws -> HouseholdStatement {
        let (first, last) = try Self.month(month)
        let zone = carShare.zone
        // A past month is reported as of its end, so exporting it again gives the same figures.
        let asOf = min(now, zone.startOfDay(first.firstOfNextMonth))
        let energy = try await figures.dwelling(place.dwelling, from: first, to: last, now: asOf, by: identity)
        var months: [HouseholdStatement.MemberMonth] = []
        for member in members where member.dwelling == place.dwelling {
            months.append(HouseholdStatement.MemberMonth(try await carShare.statement(member: member.id, by: identity), month: first, zone: zone))
        }
        return HouseholdStatement(month: month, landlord: landlord, association: association(place.estate), estate: place.estate, energy: energy, carShare: months)
    }

    /// Writes the month's files into `directory`; answers what was written and the counts.
    package func export(month: String, estate: String?, formats: Set<Format>, to directory: URL, by identity: Identity, now: Instant = .now(),
                        progress: (String) -> Void) async throws -> Summary {
        _ = try Self.month(month)
        guard !formats.isEmpty else { throw HubError.badRequest(field: "format", "give at least one of json, csv, html, pdf") }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw HubError.badRequest(field: "out", code: "unwritable", "cannot create \(directory.path): \(error.localizedDescription)")
        }
        let places = try await registry.dwellings(estate: estate, by: identity)
        let members = try await carShare.members(by: identity)
        let base = "releves-" + month + (estate.map { "-" + Self.fileSafe($0) } ?? "")
        let jsonURL = directory.appendingPathComponent(base + ".json")
        let csvURL = directory.appendingPathComponent(base + ".csv")
        let htmlURL = directory.appendingPathComponent(base + ".html")
        let pdfURL = directory.appendingPathComponent(base + ".pdf")
        let json = formats.contains(.json) ? try OutputFile(jsonURL) : nil
        let csv = formats.contains(.csv) ? try OutputFile(csvURL) : nil
        let needsHTML = formats.contains(.html) || formats.contains(.pdf)
        let html = needsHTML ? try OutputFile(htmlURL) : nil
        try json?.write("[\n")
        try csv?.write(StaffSummary.csvHeader())
        try html?.write(StatementPages.head(title: "Relevés de \(French.month(month))"))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var counts = StaffSummary.Counts()
        for (index, place) in places.enumerated() {
            let statement = try await household(place, month: month, members: members, by: identity, now: now)
            counts.add(statement)
            try json?.write((index == 0 ? "" : ",\n") + String(decoding: try encoder.encode(statement), as: UTF8.self))
            try csv?.write(StaffSummary.csvRow(statement))
            try html?.write(StatementPages.page(statement) + "\n")
            if (index + 1) % 100 == 0 || index + 1 == places.count {
                progress("\(index + 1) / \(places.count) logements")
            }
        }
        try json?.write("\n]\n")
        try html?.write("</body>\n</html>\n")
        try json?.close()
        try csv?.close()
        try html?.close()
        var files: [String] = []
        if json != nil { files.append(jsonURL.lastPathComponent) }
        if csv != nil { files.append(csvURL.lastPathComponent) }
        if formats.contains(.pdf) {
            progress("impression du PDF (\(places.count) pages)")
            try await PrintedPDF.render(htmlFile: htmlURL, to: pdfURL.path)
            files.append(pdfURL.lastPathComponent)
        }
        if formats.contains(.html) { files.append(htmlURL.lastPathComponent) } else if needsHTML { try? FileManager.default.removeItem(at: htmlURL) }
        let summary = Summary(month: month, estate: estate, counts: counts, files: files)
        let summaryURL = directory.appendingPathComponent(base + "-resume.json")
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try encoder.encode(summary).write(to: summaryURL)
        return summary
    }

    static func fileSafe(_ text: String) -> String {
        String(text.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" })
    }
}

/// A file written piece by piece, through a buffer: what makes the export stream.
final class OutputFile {
    let handle: FileHandle
    var buffer = Data()

    init(_ url: URL) throws {
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw HubError.badRequest(field: "out", code: "unwritable", "cannot write \(url.path)")
        }
        handle = try FileHandle(forWritingTo: url)
    }

    func write(_ text: String) throws {
        buffer.append(contentsOf: Array(text.utf8))
        if buffer.count >= 1 << 16 { try flush() }
    }

    func flush() throws {
        try handle.write(contentsOf: buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    func close() throws {
        try flush()
        try handle.close()
    }
}

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
        /// The revision written: 1 for the first export, then one more each time changes are issued.
        package var revision: Int
        /// True when this export froze a new revision; false when it sent again what was kept.
        package var issued: Bool
        /// Households whose figures differ from the previous revision (issued in this one, or pending).
        package var changes: [StatementChange]
        /// The buildings' and associations' statements that differ likewise (`building/OUT-A`, `association/Outreau`).
        package var revisedDocuments: [String]
        /// What staff act on besides the households: devices silent for a day or more in the month,
        /// and the messages refused from the buildings' devices, by reason.
        package var silentDevices: [String]
        package var refusedByReason: [String: Int]
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
        var energy = try await figures.dwelling(place.dwelling, from: first, to: last, now: asOf, by: identity)
        // Whether the month was revised since an export is the archive's business (revisions), not
        // part of the statement: a statement holds the month's figures only.
        energy.revisedMonths = []
        var months: [HouseholdStatement.MemberMonth] = []
        for member in members where member.dwelling == place.dwelling {
            months.append(HouseholdStatement.MemberMonth(try await carShare.statement(member: member.id, by: identity), month: first, zone: zone))
        }
        return HouseholdStatement(month: month, landlord: landlord, association: association(place.estate), estate: place.estate, energy: energy, carShare: months)
    }

    /// Writes the month's files into `directory`; answers what was written, the counts and the
    /// revision. The first export of a month (per estate, or for all) freezes it as revision 1:
    /// every household's statement is kept exactly as sent. Exporting it again writes the same
    /// bytes from what was kept, and names the households whose figures have changed since (late
    /// readings); with `newRevision` those changes are issued as the next numbered revision, with a
    /// list of what changed. Only past months are exported.
    /// With `freeze` false (the routes' downloads), nothing is kept: a frozen month is written as
    /// sent, a month never exported as its figures are now.
    package func export(month: String, estate: String?, formats: Set<Format>, to directory: URL, archive: any StatementArchive, newRevision: Bool = false,
                        freeze: Bool = true, by identity: Identity, now: Instant = .now(), progress: (String) -> Void) async throws -> Summary {
        try AccessPolicy.require(identity, freeze ? .manage : .read, .statementExport, field: "role", "the monthly statements are exported by the landlord's staff")
        let (first, _) = try Self.month(month)
        guard carShare.zone.startOfDay(first.firstOfNextMonth) <= now else {
            throw HubError.badRequest(field: "month", code: "month_not_over", "\(French.month(month)) is not over yet: statements are exported once the month has ended")
        }
        guard !formats.isEmpty else { throw HubError.badRequest(field: "format", "give at least one of json, csv, html, pdf") }
        let scope = estate ?? "*"
        let latest = try await archive.latestRevision(month: month, scope: scope)
        let issuing = freeze && (latest == nil || newRevision)
        let revision = issuing ? (latest?.number ?? 0) + 1 : latest?.number ?? 1
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw HubError.badRequest(field: "out", code: "unwritable", "cannot create \(directory.path): \(error.localizedDescription)")
        }
        let places = try await registry.dwellings(estate: estate, by: identity)
        let members = try await carShare.members(by: identity)
        let base = "releves-" + month + (estate.map { "-" + Self.fileSafe($0) } ?? "") + (revision > 1 ? "-r\(revision)" : "")
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
        try html?.write(StatementPages.head(title: "Relevés de \(French.month(month))" + (revision > 1 ? " (révision \(revision))" : "")))
        var counts = StaffSummary.Counts()
        var changes: [StatementChange] = []
        var pending: [(subject: String, json: Data)] = []
        if issuing {
            try await archive.open(StatementRevision(month: month, scope: scope, number: revision, exportedAt: now, exportedBy: identity.name, changes: []))
        }
        for (index, place) in places.enumerated() {
            let fresh = try await household(place, month: month, members: members, by: identity, now: now)
            let freshJSON = try Self.canonical(fresh)
            // What was sent before (the latest revision), to compare and, unless issuing, to send again.
            let sentJSON = try await latest.asyncMap { try await archive.statement(month: month, scope: scope, revision: $0.number, subject: place.dwelling) } ?? nil
            if let sentJSON, sentJSON != freshJSON {
                let sent = try JSONDecoder().decode(HouseholdStatement.self, from: sentJSON)
                changes.append(StatementChange(dwelling: place.dwelling, sentSavingsCents: sent.enoughData ? Cents(sent.energy.savingsCents) : nil,
                                               nowSavingsCents: fresh.enoughData ? Cents(fresh.energy.savingsCents) : nil,
                                               sentConsumptionWh: sent.energy.consumptionWh, nowConsumptionWh: fresh.energy.consumptionWh))
            }
            let (statement, bytes) = issuing || sentJSON == nil
                ? (fresh, freshJSON)
                : (try JSONDecoder().decode(HouseholdStatement.self, from: sentJSON!), sentJSON!)
            if issuing {
                pending.append((place.dwelling, bytes))
                if pending.count == 500 {
                    try await archive.add(month: month, scope: scope, revision: revision, statements: pending)
                    pending.removeAll(keepingCapacity: true)
                }
            }
            counts.add(statement)
            try json?.write((index == 0 ? "" : ",\n") + String(decoding: bytes, as: UTF8.self))
            try csv?.write(StaffSummary.csvRow(statement))
            try html?.write(StatementPages.page(statement, revision: revision) + "\n")
            if (index + 1) % 100 == 0 || index + 1 == places.count {
                progress("\(index + 1) / \(places.count) logements")
            }
        }
        try json?.write("\n]\n")
        try html?.write("</body>\n</html>\n")
        try json?.close()
        try csv?.close()
        try html?.close()

        // The estates' documents: each building's statement, each association's, its month's journal.
        // Kept and compared like the households' (a late reading revises its building too).
        var estateFiles: [String] = []
        var revisedDocuments: [String] = []
        var silentDevices: [String] = []
        var refusedByReason: [String: Int] = [:]
        let estateBase = "residences-" + month + (estate.map { "-" + Self.fileSafe($0) } ?? "") + (revision > 1 ? "-r\(revision)" : "")
        let estateHTMLURL = directory.appendingPathComponent(estateBase + ".html")
        let estateJSON = formats.contains(.json) ? try OutputFile(directory.appendingPathComponent(estateBase + ".json")) : nil
        let estateHTML = needsHTML ? try OutputFile(estateHTMLURL) : nil
        try estateJSON?.write("[\n")
        try estateHTML?.write(EstatePages.head(title: "Immeubles et association, \(French.month(month))"))
        var documentIndex = 0
        func keep(_ subject: String, fresh: Data) async throws -> Data {
            let sent = try await latest.asyncMap { try await archive.statement(month: month, scope: scope, revision: $0.number, subject: subject) } ?? nil
            if let sent, sent != fresh { revisedDocuments.append(subject) }
            let bytes = issuing || sent == nil ? fresh : sent!
            if issuing { pending.append((subject, bytes)) }
            try estateJSON?.write((documentIndex == 0 ? "" : ",\n") + String(decoding: bytes, as: UTF8.self))
            documentIndex += 1
            return bytes
        }
        for estateID in Array(Set(places.map(\.estate))).sorted() {
            let association = try await self.association(estate: estateID, month: month, by: identity, now: now)
            let kept = try JSONDecoder().decode(AssociationStatement.self, from: try await keep("association/" + estateID, fresh: try Self.canonical(association)))
            try estateHTML?.write(EstatePages.page(kept) + "\n")
            for building in Array(Set(places.filter { $0.estate == estateID }.map(\.building))).sorted() {
                let statement = try await self.building(building, month: month, by: identity, now: now)
                let kept = try JSONDecoder().decode(BuildingStatement.self, from: try await keep("building/" + building, fresh: try Self.canonical(statement)))
                try estateHTML?.write(EstatePages.page(kept) + "\n")
                silentDevices += kept.troubledDevices.filter(\.isSilent).map(\.device)
                for device in kept.troubledDevices {
                    for refused in device.refused { refusedByReason[refused.reason.rawValue, default: 0] += refused.count }
                }
            }
            if formats.contains(.json) {
                // The association's month as an hledger journal (closed months do not change).
                let name = "association-" + Self.fileSafe(estateID) + "-" + month + ".journal"
                try Data(try await associationJournal(month: month, estate: estateID, by: identity).utf8).write(to: directory.appendingPathComponent(name))
                estateFiles.append(name)
            }
        }
        try estateJSON?.write("\n]\n")
        try estateHTML?.write("</body>\n</html>\n")
        try estateJSON?.close()
        try estateHTML?.close()
        if estateJSON != nil { estateFiles.insert(estateBase + ".json", at: 0) }

        if issuing {
            if !pending.isEmpty { try await archive.add(month: month, scope: scope, revision: revision, statements: pending) }
            try await archive.complete(month: month, scope: scope, revision: revision)
            // The energy figures of the month are now marked as sent: a later change flags it as revised.
            let buildings = Array(Set(places.map(\.building))).sorted()
            if !buildings.isEmpty { try await registry.recordExport(month: month, buildings: buildings, by: identity, at: now) }
        }
        var files: [String] = []
        if json != nil { files.append(jsonURL.lastPathComponent) }
        if csv != nil { files.append(csvURL.lastPathComponent) }
        if formats.contains(.pdf) {
            progress("impression du PDF (\(places.count) pages)")
            try await PrintedPDF.render(htmlFile: htmlURL, to: pdfURL.path)
            files.append(pdfURL.lastPathComponent)
            let estatePDF = directory.appendingPathComponent(estateBase + ".pdf")
            try await PrintedPDF.render(htmlFile: estateHTMLURL, to: estatePDF.path)
            estateFiles.append(estatePDF.lastPathComponent)
        }
        if formats.contains(.html) {
            files.append(htmlURL.lastPathComponent)
            estateFiles.append(estateHTMLURL.lastPathComponent)
        } else if needsHTML {
            try? FileManager.default.removeItem(at: htmlURL)
            try? FileManager.default.removeItem(at: estateHTMLURL)
        }
        files += estateFiles
        if issuing && revision > 1 {
            // What this revision changes, for staff and for the households concerned.
            let changesURL = directory.appendingPathComponent(base + "-changements.csv")
            var text = FrenchCSV.byteOrderMark + FrenchCSV.line(["Logement", "Économie envoyée (€)", "Économie révisée (€)", "Consommation envoyée (kWh)", "Consommation révisée (kWh)"])
            for change in changes {
                text += FrenchCSV.line([FrenchCSV.text(change.dwelling), change.sentSavingsCents.map(FrenchCSV.euros) ?? "", change.nowSavingsCents.map(FrenchCSV.euros) ?? "",
                                        FrenchCSV.kilowattHours(change.sentConsumptionWh), FrenchCSV.kilowattHours(change.nowConsumptionWh)])
            }
            try Data(text.utf8).write(to: changesURL)
            files.append(changesURL.lastPathComponent)
        }
        let summary = Summary(month: month, estate: estate, revision: revision, issued: issuing, changes: changes, revisedDocuments: revisedDocuments,
                              silentDevices: silentDevices.sorted(), refusedByReason: refusedByReason, counts: counts, files: files)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try encoder.encode(summary).write(to: directory.appendingPathComponent(base + "-resume.json"))
        return summary
    }

    /// A statement's JSON as kept and sent: keys sorted, so the same statement gives the same bytes.
    static func canonical<T: Encodable>(_ statement: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(statement)
    }

    /// A household's statement for an ended month: as sent when the month was exported (the latest
    /// revision for every estate, or else for its estate), otherwise as its figures are now.
    package func household(month: String, dwelling: String, archive: any StatementArchive, by identity: Identity, now: Instant = .now()) async throws -> HouseholdStatement {
        let place = try await registry.dwelling(dwelling, by: identity)
        let (first, _) = try Self.month(month)
        guard carShare.zone.startOfDay(first.firstOfNextMonth) <= now else {
            throw HubError.badRequest(field: "month", code: "month_not_over", "\(French.month(month)) is not over yet: its statement comes once the month has ended")
        }
        if let sent = try await sent(HouseholdStatement.self, subject: dwelling, month: month, estate: place.estate, archive: archive) { return sent }
        return try await household(place, month: month, members: try await carShare.members(by: identity), by: identity, now: now)
    }

    /// An association's statement of an ended month as sent (the latest revision for every
    /// estate, or else for this estate), otherwise as it is now. Access first, then the archive.
    package func association(estate: String, month: String, archive: any StatementArchive, by identity: Identity, now: Instant = .now()) async throws -> AssociationStatement {
        let live = try await association(estate: estate, month: month, by: identity, now: now)
        return try await sent(AssociationStatement.self, subject: "association/" + estate, month: month, estate: estate, archive: archive) ?? live
    }

    /// A building's statement of an ended month as sent, otherwise as it is now.
    package func building(_ building: String, month: String, archive: any StatementArchive, by identity: Identity, now: Instant = .now()) async throws -> BuildingStatement {
        let live = try await self.building(building, month: month, by: identity, now: now)
        return try await sent(BuildingStatement.self, subject: "building/" + building, month: month, estate: live.estate, archive: archive) ?? live
    }

    func sent<T: Decodable>(_ type: T.Type, subject: String, month: String, estate: String, archive: any StatementArchive) async throws -> T? {
        for scope in ["*", estate] {
            if let latest = try await archive.latestRevision(month: month, scope: scope),
               let sent = try await archive.statement(month: month, scope: scope, revision: latest.number, subject: subject) {
                return try JSONDecoder().decode(T.self, from: sent)
            }
        }
        return nil
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

extension Optional {
    /// `map` with an async transform.
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}

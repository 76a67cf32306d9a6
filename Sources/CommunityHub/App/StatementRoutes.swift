import Foundation
import HTTPTypes
import Hummingbird
import HubCore
import HubStatements
import NIOCore
import Shared

/// `GET /api/v1/statements/{month}/...`: a household's statement for that household (and staff),
/// as a printable page, its PDF or JSON; the whole month's files for staff (the JSON, the summary
/// CSV, a ZIP of one PDF per household). Downloads never freeze a month: `statements export` does.
struct StatementRoutes {
    let export: StatementsExport
    let archive: any StatementArchive
    let now: @Sendable () -> Instant

    func add(to api: RouterGroup<HubRequestContext>) {
        let group = api.group("statements")
        group.get("{month}/households/{dwelling}") { request, context in
            let identity = try context.requireIdentity()
            let month = try context.pathParameter("month")
            let statement = try await export.household(month: month, dwelling: try context.pathParameter("dwelling"), archive: archive, by: identity, now: now())
            switch request.query("format") ?? "html" {
            case "json": return try HubJSON.response(statement)
            case "html": return Self.file(Data(StatementPages.document([statement], title: "Relevé de \(French.month(month))").utf8), type: "text/html; charset=utf-8")
            case "pdf":
                let work = try Self.workDirectory()
                defer { try? FileManager.default.removeItem(at: work) }
                let pdf = work.appendingPathComponent("releve.pdf")
                try await PrintedPDF.render(html: StatementPages.document([statement], title: "Relevé de \(French.month(month))"), to: pdf.path)
                return Self.file(try Data(contentsOf: pdf), type: "application/pdf", name: "releve-\(month)-\(statement.dwelling).pdf")
            case let other: throw HubError.badRequest(field: "format", "format=\(other) is not one of html, pdf, json")
            }
        }
        // An estate's pages: its association's statement and each building's, for that association and staff.
        group.get("{month}/estates/{estate}") { request, context in
            let identity = try context.requireIdentity()
            let month = try context.pathParameter("month")
            let estate = try context.pathParameter("estate")
            let statement = try await export.association(estate: estate, month: month, archive: archive, by: identity, now: now())
            return try await Self.answer(request, json: statement, html: EstatePages.document(statement), name: "association-\(estate)-\(month)")
        }
        group.get("{month}/buildings/{building}") { request, context in
            let identity = try context.requireIdentity()
            let month = try context.pathParameter("month")
            let building = try context.pathParameter("building")
            let statement = try await export.building(building, month: month, archive: archive, by: identity, now: now())
            return try await Self.answer(request, json: statement, html: EstatePages.document(statement), name: "immeuble-\(building)-\(month)")
        }
        group.get("{month}/households.json") { request, context in
            try await monthFile(request, context, format: .json, type: "application/json")
        }
        group.get("{month}/summary.csv") { request, context in
            try await monthFile(request, context, format: .csv, type: "text/csv; charset=utf-8")
        }
        group.get("{month}/households.zip") { request, context in
            let identity = try context.requireIdentity()
            let month = try context.pathParameter("month")
            let work = try Self.workDirectory()
            defer { try? FileManager.default.removeItem(at: work) }
            let summary = try await export.export(month: month, estate: request.query("estate"), formats: [.json, .pdf], to: work, archive: archive,
                                                  freeze: false, by: identity, now: now()) { _ in }
            guard let pdfName = summary.files.first(where: { $0.hasSuffix(".pdf") }), let jsonName = summary.files.first(where: { $0.hasSuffix(".json") }) else {
                throw HubError(.unavailable, code: "pdf_failed", message: "the statements could not be printed")
            }
            // One page per household, in the JSON's order: split the month's PDF into one file each.
            let statements = try JSONDecoder().decode([HouseholdStatement].self, from: Data(contentsOf: work.appendingPathComponent(jsonName)))
            try await Self.separate(work.appendingPathComponent(pdfName), into: work.appendingPathComponent("pages"))
            var zip = ZipArchive()
            for (index, statement) in statements.enumerated() {
                let page = work.appendingPathComponent("pages/page-\(index + 1).pdf")
                zip.add(name: "releve-\(month)-\(statement.dwelling).pdf", contents: try Data(contentsOf: page))
            }
            return Self.file(zip.finished(), type: "application/zip", name: "releves-\(month).zip")
        }
    }

    func monthFile(_ request: Request, _ context: HubRequestContext, format: StatementsExport.Format, type: String) async throws -> Response {
        let identity = try context.requireIdentity()
        let work = try Self.workDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        let summary = try await export.export(month: try context.pathParameter("month"), estate: request.query("estate"), formats: [format], to: work, archive: archive,
                                              freeze: false, by: identity, now: now()) { _ in }
        let name = summary.files.first { $0.hasSuffix("." + format.rawValue) } ?? ""
        return Self.file(try Data(contentsOf: work.appendingPathComponent(name)), type: type, name: name)
    }

    /// A statement as `?format=html` (the default), `pdf` or `json`.
    static func answer<T: Encodable>(_ request: Request, json: T, html: String, name: String) async throws -> Response {
        switch request.query("format") ?? "html" {
        case "json": return try HubJSON.response(json)
        case "html": return file(Data(html.utf8), type: "text/html; charset=utf-8")
        case "pdf":
            let work = try workDirectory()
            defer { try? FileManager.default.removeItem(at: work) }
            let pdf = work.appendingPathComponent("statement.pdf")
            try await PrintedPDF.render(html: html, to: pdf.path)
            return file(try Data(contentsOf: pdf), type: "application/pdf", name: name + ".pdf")
        case let other: throw HubError.badRequest(field: "format", "format=\(other) is not one of html, pdf, json")
        }
    }

    static func workDirectory() throws -> URL {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("hub-statements-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        return work
    }

    /// Splits a PDF into one file per page with poppler's `pdfseparate`.
    static func separate(_ pdf: URL, into directory: URL) async throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/pdfseparate")
        process.arguments = [pdf.path, directory.appendingPathComponent("page-%d.pdf").path]
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: HubError.configuration("cannot split the PDF: install poppler-utils (\(error.localizedDescription))"))
            }
        }
        guard status == 0 else { throw HubError(.unavailable, code: "pdf_failed", message: "pdfseparate exited with \(status)") }
    }

    static func file(_ data: Data, type: String, name: String? = nil) -> Response {
        var headers: HTTPFields = [.contentType: type]
        if let name { headers[.contentDisposition] = "attachment; filename=\"\(name)\"" }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

import EnergyHub
import Foundation
import HTTPTypes
import HubCore
import HubStatements
import HubTestSupport
import Hummingbird
import HummingbirdTesting
import NIOCore
import Prometheus
import Shared
import Testing
@testable import HubApp

/// The statements over HTTP, as `AccessPolicy` decides: a resident gets their own household's page
/// and PDF and nobody else's; an association gets no household's; staff get the month's JSON, the
/// summary CSV and a ZIP of one PDF per household. Downloads never freeze a month.
@Suite struct StatementRoutesTests {
    @Test func eachGetsWhatThePolicyAllows() async throws {
        let (_, settings) = try await StatementsExportTests().preparedDatabase()
        let database = try HubSchema.open(settings)
        let users = SQLiteUserStore(database: database, bcryptCost: 4)
        let now = Instant.parseRFC3339("2026-11-30T10:00:00Z")!
        var tokens: [String: String] = [:]
        for (name, role, dwelling, estate) in [("staff", Role.staff, String?.none, String?.none), ("resident-01", .resident, "OUT-A-01", nil),
                                               ("resident-02", .resident, "OUT-A-02", nil), ("asso", .association, nil, "Outreau")] {
            try await users.add(name: name, role: role, dwelling: dwelling, estate: estate, password: "password-123", by: .testStaff, at: now)
            tokens[name] = try await users.createToken(for: name, label: "test", expiresAt: nil, by: .testStaff, at: now)
        }
        let dependencies = HubDependencies(settings: settings, database: database, users: users, readings: SQLiteReadingStore(database: database),
                                           metrics: PrometheusCollectorRegistry(), brokerConnected: nil, now: { now })
        let app = Application(router: buildRouter(dependencies), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        let bearer = tokens
        try await app.test(.router) { client in
            func get(_ path: String, as name: String) async throws -> (HTTPResponse.Status, Data, HTTPFields) {
                try await client.execute(uri: "/api/v1/statements/" + path, method: .get, headers: [.authorization: "Bearer \(bearer[name]!)"]) { response in
                    (response.status, Data(response.body.readableBytesView), response.headers)
                }
            }
            // A resident: their own household's page, JSON and PDF.
            let (pageStatus, page, _) = try await get("2026-10/households/OUT-A-01", as: "resident-01")
            #expect(pageStatus == .ok)
            #expect(String(decoding: page, as: UTF8.self).contains("Votre électricité solaire — octobre 2026"))
            let (jsonStatus, json, _) = try await get("2026-10/households/OUT-A-01?format=json", as: "resident-01")
            #expect(jsonStatus == .ok)
            #expect(try JSONDecoder().decode(HouseholdStatement.self, from: json).dwelling == "OUT-A-01")
            let (pdfStatus, pdf, pdfHeaders) = try await get("2026-10/households/OUT-A-01?format=pdf", as: "resident-01")
            #expect(pdfStatus == .ok && pdf.starts(with: Array("%PDF".utf8)) && pdfHeaders[.contentType] == "application/pdf")
            // Not a neighbour's, not a dwelling that does not exist (the same answer), not the month's files.
            #expect(try await get("2026-10/households/OUT-A-02", as: "resident-01").0 == .forbidden)
            #expect(try await get("2026-10/households/OUT-Z-99", as: "resident-01").0 == .forbidden)
            #expect(try await get("2026-10/summary.csv", as: "resident-01").0 == .forbidden)
            // An association sees no household's statement, but its estate's pages.
            #expect(try await get("2026-10/households/OUT-A-01", as: "asso").0 == .forbidden)
            let (estateStatus, estatePage, _) = try await get("2026-10/estates/Outreau", as: "asso")
            #expect(estateStatus == .ok && String(decoding: estatePage, as: UTF8.self).contains("La voiture de l'association — octobre 2026"))
            let (buildingStatus, buildingJSON, _) = try await get("2026-10/buildings/OUT-A?format=json", as: "asso")
            #expect(buildingStatus == .ok && String(decoding: buildingJSON, as: UTF8.self).contains("\"building\":\"OUT-A\""))
            #expect(try await get("2026-10/estates/Outreau", as: "resident-01").0 == .forbidden)
            #expect(try await get("2026-10/buildings/OUT-A", as: "resident-01").0 == .forbidden)
            #expect(try await get("2026-10/households.json?estate=Outreau", as: "asso").0 == .forbidden)
            // Staff: a month not yet over, a bad month, a dwelling that does not exist.
            #expect(try await get("2026-11/households/OUT-A-01", as: "staff").0 == .badRequest)
            #expect(try await get("2026-13/summary.csv", as: "staff").0 == .badRequest)
            #expect(try await get("2026-10/households/OUT-Z-99", as: "staff").0 == .notFound)
            // Staff: the month's JSON, the summary CSV, a ZIP of one PDF per household.
            let (csvStatus, csv, _) = try await get("2026-10/summary.csv", as: "staff")
            #expect(csvStatus == .ok && String(decoding: csv, as: UTF8.self).hasPrefix("\u{FEFF}Résidence;"))
            let (allStatus, all, _) = try await get("2026-10/households.json?estate=Outreau", as: "staff")
            #expect(allStatus == .ok)
            #expect(try JSONDecoder().decode([HouseholdStatement].self, from: all).map(\.dwelling) == ["OUT-A-01", "OUT-A-02", "OUT-A-03"])
            let (zipStatus, zip, _) = try await get("2026-10/households.zip", as: "staff")
            #expect(zipStatus == .ok)
            let directory = try TestSupport.temporaryDirectory("statements-zip")
            let file = directory.appendingPathComponent("releves.zip")
            try zip.write(to: file)
            let listing = try StatementsExportTests().tool("/usr/bin/unzip", ["-l", file.path])
            for dwelling in ["OUT-A-01", "OUT-A-02", "OUT-A-03"] { #expect(listing.contains("releve-2026-10-\(dwelling).pdf"), "\(listing)") }
            _ = try StatementsExportTests().tool("/usr/bin/unzip", ["-q", file.path, "-d", directory.path])
            let text = try StatementsExportTests().tool("/usr/bin/pdftotext", [directory.appendingPathComponent("releve-2026-10-OUT-A-02.pdf").path, "-"])
            #expect(text.contains("OUT-A-02") && !text.contains("OUT-A-01"), "each PDF is its household's page")
        }
        // Nothing was frozen by the downloads.
        #expect(try await SQLiteStatementArchive(database: database).latestRevision(month: "2026-10", scope: "*") == nil)
    }
}

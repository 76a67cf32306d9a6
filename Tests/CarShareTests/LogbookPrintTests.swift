import ArgumentParser
import CarShare
import CarShareCore
import Foundation
import HubCore
import HubTestSupport
import Testing
@testable import HubApp
@testable import HubCLI

/// The printed logbook of a month, made as staff make it: lines of every kind typed in from the
/// paper sheet with the command line, then `carshare trips logbook --format pdf`, printed by
/// headless Chromium (Debian `chromium`) and read back with poppler (`pdftotext`, `pdftoppm`).
@Suite struct LogbookPrintTests {
    /// Runs a poppler tool; a missing one fails the test (CI installs it) rather than skipping it.
    func tool(_ name: String, _ arguments: [String]) throws -> String {
        let (status, output) = try TestSupport.runTool("/usr/bin/" + name, arguments)
        #expect(status == 0, "\(name) \(arguments)")
        return output
    }

    @Test func theMonthPrintsWithEachKindOfLineAndItsGap() async throws {
        let fixture = try await Fixture()
        let db = fixture.settings.database.path
        func run(_ arguments: [String]) async throws {
            var command = try CommunityHubCommand.parseAsRoot(arguments + ["--db", db])
            if var asyncCommand = command as? any AsyncParsableCommand { try await asyncCommand.run() } else { try command.run() }
        }
        try await run(["carshare", "vehicles", "add", "Zoé", "--plate", "GA-123-BC", "--battery-wh", "52000", "--odometer-km", "12000"])
        try await run(["carshare", "drivers", "add", "Jean Dupont", "--user", "driver-jean", "--licence-checked-on", "2026-01-05", "--trained-on", "2026-01-05"])
        try await run(["carshare", "members", "add", "Alice Martin", "--dwelling", "OUT-A-01"])
        try await run(["carshare", "memberships", "buy", "1", "--on", "2026-03-01"])
        try await run(["carshare", "bookings", "add", "--vehicle", "1", "--rider", "1", "--start", "2026-03-03T10:00:00", "--end", "2026-03-03T11:00:00", "--purpose", "Pharmacie"])
        try await run(["carshare", "bookings", "status", "1", "confirmed", "--driver", "1"])
        // The paper sheet's lines, typed in by staff.
        try await run(["carshare", "trips", "log", "--key", "p1-l1", "--booking", "1", "--start", "2026-03-03T10:00:00", "--end", "2026-03-03T10:50:00",
                       "--start-km", "12000", "--end-km", "12014", "--battery-start", "90", "--battery-end", "84"])
        try await run(["carshare", "trips", "log", "--key", "p1-l2", "--kind", "association_run", "--vehicle", "1", "--driver", "1",
                       "--purpose", "Livraison de pain et d'eau", "--households", "9", "--start", "2026-03-05T09:00:00", "--end", "2026-03-05T11:30:00",
                       "--start-km", "12014", "--end-km", "12041", "--battery-start", "84", "--battery-end", "70", "--incidents", "pneu avant gauche à regonfler"])
        try await run(["carshare", "trips", "log", "--key", "p1-l3", "--kind", "charging_run", "--vehicle", "1", "--driver", "1", "--purpose", "borne de la mairie",
                       "--charged-kwh", "18,5", "--charge-cost", "4,62", "--charge-method", "transfer", "--start", "2026-03-06T14:00:00", "--end", "2026-03-06T16:00:00",
                       "--start-km", "12041", "--end-km", "12047", "--battery-start", "70", "--battery-end", "100"])
        // 12,047 → 12,090: 43 km nobody wrote down before the garage.
        try await run(["carshare", "trips", "log", "--key", "p1-l4", "--kind", "garage", "--vehicle", "1", "--driver", "1", "--purpose", "Révision annuelle",
                       "--start", "2026-03-10T08:00:00", "--end", "2026-03-10T12:00:00", "--start-km", "12090", "--end-km", "12102", "--battery-start", "95", "--battery-end", "90"])

        let directory = try TestSupport.temporaryDirectory("logbook-print")
        let pdf = directory.appendingPathComponent("carnet-2026-03.pdf").path
        try await run(["carshare", "trips", "logbook", "--vehicle", "1", "--month", "2026-03", "--format", "pdf", "--out", pdf])
        let head = try FileHandle(forReadingFrom: URL(fileURLWithPath: pdf)).readData(ofLength: 5)
        #expect(head == Data("%PDF-".utf8))

        // In reading order, each cell's words together; line breaks inside a cell become spaces.
        let text = try tool("pdftotext", ["-raw", pdf, "-"]).split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for expected in ["Carnet de bord", "Zoé", "mars 2026", "Trajet adhérent", "Tournée de l'association", "Recharge", "Garage / entretien",
                         "Livraison de pain et d'eau", "9 foyers servis", "Révision annuelle", "Jean Dupont", "03/03/2026",
                         "Écart de compteur non expliqué", "43 km non expliqués", "pneu avant gauche"] {
            #expect(text.contains(expected), "the PDF's text has \(expected)")
        }
        // One A4 page, rendered to a picture to look at (kept beside the PDF).
        let info = try tool("pdfinfo", [pdf])
        #expect(info.split(separator: "\n").contains { $0.hasPrefix("Pages:") && $0.hasSuffix(" 1") }, "\(info)")
        _ = try tool("pdftoppm", ["-png", "-r", "60", "-singlefile", pdf, directory.appendingPathComponent("carnet-2026-03").path])
        let png = directory.appendingPathComponent("carnet-2026-03.png").path
        #expect(FileManager.default.fileExists(atPath: png))
        let size = (try FileManager.default.attributesOfItem(atPath: png)[.size] as? NSNumber)?.intValue ?? 0
        #expect(size > 10_000, "a page with content, not a blank one (\(size) bytes)")
        if let keep = ProcessInfo.processInfo.environment["HUB_KEEP_PRINTS"] {
            try? FileManager.default.removeItem(atPath: keep + "/carnet-2026-03.png")
            try FileManager.default.copyItem(atPath: png, toPath: keep + "/carnet-2026-03.png")
        }
    }
}

import ArgumentParser
import CarShare
import CarShareCore
import EnergyCore
import EnergyHub
import Foundation
import GRDB
import HubCore
import HubStatements
import HubTestSupport
import Shared
import Testing
@testable import HubApp
@testable import HubCLI

/// A month's statements exported as staff export them (`community-hub statements export`), for a
/// small estate in October 2026 (the 25th has 50 slots: the clocks go back), every format compared
/// with golden files checked into `Tests/StatementsTests/Golden` (`HUB_UPDATE_GOLDEN=1` rewrites
/// them; look at the PDF's pages before committing), the CSV opened by LibreOffice as numbers and
/// the PDF read back by poppler.
@Suite(.serialized) struct StatementsExportTests {
    static let golden = TestSupport.packageRoot.appendingPathComponent("Tests/StatementsTests/Golden")
    static let registry = """
        estate;building;dwelling;device;kind;format;since;tariff
        Outreau;OUT-A;OUT-A-01;m-01;meter;canonical;2026-01-01;edf-bleu-hphc 11:00-17:00
        Outreau;OUT-A;OUT-A-02;m-02;meter;canonical;2026-01-01;
        Outreau;OUT-A;OUT-A-03;m-03;meter;canonical;2026-01-01;
        Outreau;OUT-A;;pv-a;pv;canonical;2026-01-01;
        """

    /// The hub's database after October: readings every 30 minutes through the real ingest
    /// processor (OUT-A-03's meter falls silent on the 10th), the savings brought up to date, and a
    /// car-share member in OUT-A-01 with a trip and a payment.
    func preparedDatabase() async throws -> (path: String, settings: HubSettings) {
        let prepared = try await preparedDatabase(holdingBack: nil)
        return (prepared.path, prepared.settings)
    }

    /// The same; with `holdingBack`, the readings of that device in that span are not ingested but
    /// answered, to be published later (a box that was offline), as (instant, index).
    func preparedDatabase(holdingBack: (device: String, from: Instant, to: Instant)?) async throws -> (path: String, settings: HubSettings, heldBack: [(Instant, Int64)]) {
        var heldBack: [(Instant, Int64)] = []
        let directory = try TestSupport.temporaryDirectory("statements")
        var settings = HubSettings()
        settings.database.path = directory.appendingPathComponent("hub.sqlite").path
        settings.database.synchronous = .normal
        settings.statements.associations = [.init(estate: "Outreau", name: "Association des locataires d'Outreau")]
        let database = try HubSchema.open(settings)
        let configuration = try settings.configuration()
        _ = try await SQLiteRegistryStore(database: database, configuration: configuration.energy).importRegistry(csv: Data(Self.registry.utf8), by: .testStaff)
        let processor = try IngestProcessor(settings: IngestSettings(), store: SQLiteReadingStore(database: database))
        try processor.loadState(at: Instant.parseRFC3339("2026-09-01T00:00:00Z")!)
        // From 2026-09-30T22:00Z (1 October, Paris) to 2026-11-01T00:00Z, a reading every 30 minutes.
        let start = Instant.parseRFC3339("2026-09-30T22:00:00Z")!
        let slots = 31 * 48 + 2 + 2
        var index: [String: Int64] = ["m-01": 1_000_000, "m-02": 2_000_000, "m-03": 3_000_000, "pv-a": 500_000]
        for day in 0..<((slots + 47) / 48) {
            for device in ["m-01", "m-02", "m-03", "pv-a"] {
                var readings: [String] = []
                for step in (day * 48)..<min(slots, (day + 1) * 48) {
                    let instant = start.adding(seconds: Int64(step) * 1800)
                    if device == "m-03" && instant > Instant.parseRFC3339("2026-10-10T12:00:00Z")! { continue }
                    let hour = (step % 48) / 2
                    let increase: Int64 = switch device {
                    // Enough sun, whenever it shines, for every household's use: a household's late
                    // readings then change its own share only (with less sun its neighbours' shares
                    // would change too, and a revision would list them as well).
                    case "pv-a": (9...16).contains(hour) ? Int64(700 + (hour - 9) * (16 - hour) * 20 + day) : 0
                    case "m-01": 150 + Int64(hour % 5) * 10
                    // OUT-A-02 uses most of its electricity in the afternoon, when the sun shines.
                    case "m-02": (12...15).contains(hour) ? 400 : 40 + Int64(day % 4) * 5
                    default: 120
                    }
                    index[device]! += increase
                    if let held = holdingBack, held.device == device, instant > held.from, instant < held.to {
                        heldBack.append((instant, index[device]!))
                        continue
                    }
                    readings.append("{\"ts\":\"\(instant.rfc3339)\",\"energy_wh\":\(index[device]!)}")
                }
                guard !readings.isEmpty else { continue }
                _ = try processor.process([IncomingMessage(topic: "meters/\(device)/reading", payload: Array(("[" + readings.joined(separator: ",") + "]").utf8),
                                                           receivedAt: start.adding(seconds: Int64((day + 1) * 86_400)))])
            }
        }
        try SavingsUpkeep(database: database, configuration: configuration.energy).bringUpToDate(now: Instant.parseRFC3339("2026-11-02T00:00:00Z")!)

        let store = SQLiteCarShareStore(database: database, settings: configuration.carshare)
        let staff = Identity.testStaff
        let at = Instant.parseRFC3339("2026-10-01T08:00:00Z")!
        let vehicle = try await store.addVehicle(NewVehicle(name: "Zoé", plate: "GA-123-BC", batteryCapacityWh: WattHours(52_000), initialOdometerKm: 12_000), by: staff)
        let checked = LocalDate(year: 2026, month: 1, day: 5)!
        let driver = try await store.addDriver(NewDriver(name: "Jean", licenceCheckedOn: checked, trainedOn: checked), by: staff)
        let alice = try await store.addMember(NewMember(name: "Alice Martin", dwelling: "OUT-A-01"), by: staff, at: at)
        _ = try await store.buyMembership(member: alice.id, NewMembership(on: LocalDate(year: 2026, month: 10, day: 1)!), by: staff, at: at)
        let tripStart = Instant.parseRFC3339("2026-10-14T08:00:00Z")!
        _ = try await store.logTrip(NewTrip(idempotencyKey: "p1", vehicle: vehicle.id, driver: driver.id, unbookedReason: "appel du matin", riders: [alice.id],
                                            start: tripStart, end: tripStart.adding(seconds: 3600), startOdometerKm: 12_000, endOdometerKm: 12_018,
                                            batteryStartPct: 90, batteryEndPct: 84), by: staff, at: tripStart.adding(seconds: 3600))
        _ = try await store.recordPayment(NewPayment(idempotencyKey: "r1", member: alice.id, amountCents: Cents(1_000), method: .cash, on: LocalDate(year: 2026, month: 10, day: 14)!),
                                          by: staff, at: tripStart.adding(seconds: 3600))
        return (settings.database.path, settings, heldBack)
    }

    func run(_ arguments: [String]) async throws {
        var command = try CommunityHubCommand.parseAsRoot(arguments)
        if var asyncCommand = command as? any AsyncParsableCommand { try await asyncCommand.run() } else { try command.run() }
    }

    func tool(_ path: String, _ arguments: [String]) throws -> String {
        let (status, output) = try TestSupport.runTool(path, arguments)
        #expect(status == 0, "\(path) \(arguments)")
        return output
    }

    /// Compares a produced file with its golden copy (or writes it when asked to).
    func expectGolden(_ name: String, _ produced: Data, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let file = Self.golden.appendingPathComponent(name)
        if ProcessInfo.processInfo.environment["HUB_UPDATE_GOLDEN"] == "1" {
            try produced.write(to: file)
            return
        }
        let expected = try Data(contentsOf: file)
        #expect(produced == expected, "\(name) differs from its golden file (HUB_UPDATE_GOLDEN=1 rewrites it)", sourceLocation: sourceLocation)
    }

    @Test func theMonthExportsInEveryFormatAsTheGoldenFilesSay() async throws {
        let (path, settings) = try await preparedDatabase()
        let config = try TestSupport.temporaryDirectory("statements-config").appendingPathComponent("hub.json")
        try #"{"statements": {"associations": [{"estate": "Outreau", "name": "Association des locataires d'Outreau"}]}}"#.write(to: config, atomically: true, encoding: .utf8)
        let out = try TestSupport.temporaryDirectory("statements-out")
        try await run(["statements", "export", "--month", "2026-10", "--out", out.path, "--db", path, "--config", config.path])
        let files = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
        #expect(files == ["association-Outreau-2026-10.journal", "releves-2026-10-resume.json", "releves-2026-10.csv", "releves-2026-10.html", "releves-2026-10.json",
                          "releves-2026-10.pdf", "residences-2026-10.html", "residences-2026-10.json", "residences-2026-10.pdf"])

        // The JSON says what the API says, household by household, in cents and Wh.
        let statements = try JSONDecoder().decode([HouseholdStatement].self, from: Data(contentsOf: out.appendingPathComponent("releves-2026-10.json")))
        #expect(statements.map(\.dwelling) == ["OUT-A-01", "OUT-A-02", "OUT-A-03"])
        let database = try HubSchema.open(settings)
        let configuration = try settings.configuration()
        let api = try await EnergyReports(database: database, configuration: configuration.energy)
            .dwelling("OUT-A-01", from: LocalDate(year: 2026, month: 10, day: 1)!, to: LocalDate(year: 2026, month: 10, day: 31)!,
                      now: Instant.parseRFC3339("2026-10-31T23:00:00Z")!)
        #expect(statements[0].energy == api)
        #expect(statements[0].energy.days.first { $0.date == LocalDate(year: 2026, month: 10, day: 25) }?.slots.measured == 50, "the day the clocks go back")
        #expect(statements[0].enoughData && statements[0].energy.savingsCents > 0)
        #expect(statements[0].carShare.map(\.trips) == [1] && statements[0].carShare.first?.paidCents == Cents(1_000))
        // OUT-A-03's meter fell silent on the 10th: no saving printed, and the page says why.
        #expect(!statements[2].enoughData)
        #expect(statements[2].quality.contains { $0.contains("le compteur n'a pas transmis du 10 au 31 octobre") })
        let html = try String(contentsOf: out.appendingPathComponent("releves-2026-10.html"), encoding: .utf8)
        #expect(html.contains("pas transmis assez de relevés pour calculer votre économie"))
        #expect(html.components(separatedBy: "<section class=\"statement\">").count == 4, "one page per household")

        // The counts staff act on: OUT-A-03's box fell silent.
        let summary = try JSONDecoder().decode(StatementsExport.Summary.self, from: Data(contentsOf: out.appendingPathComponent("releves-2026-10-resume.json")))
        #expect(summary.silentDevices == ["m-03"] && summary.counts.withoutEnoughData == 1 && summary.revision == 1 && summary.issued)

        // Every format as the golden files say.
        for name in ["releves-2026-10.json", "releves-2026-10.csv", "releves-2026-10.html", "releves-2026-10-resume.json",
                     "residences-2026-10.json", "residences-2026-10.html", "association-Outreau-2026-10.journal"] {
            try expectGolden(name, try Data(contentsOf: out.appendingPathComponent(name)))
        }
        let pdf = out.appendingPathComponent("releves-2026-10.pdf").path
        let text = try tool("/usr/bin/pdftotext", ["-raw", pdf, "-"])
        try expectGolden("releves-2026-10.pdf.txt", Data(text.utf8))
        #expect(try tool("/usr/bin/pdfinfo", [pdf]).split(separator: "\n").contains { $0.hasPrefix("Pages:") && $0.hasSuffix(" 3") }, "one A4 page per household")
        let flat = text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(flat.contains("Association des locataires d'Outreau") && flat.contains("OUT-A-01") && flat.contains("Alice Martin"))
        #expect(flat.contains(French.euros(Cents(statements[0].energy.savingsCents)).split(whereSeparator: \.isWhitespace).joined(separator: " ")))
        // Pages as pictures, to look at (kept when HUB_KEEP_PRINTS names a folder).
        if let keep = ProcessInfo.processInfo.environment["HUB_KEEP_PRINTS"] {
            _ = try tool("/usr/bin/pdftoppm", ["-png", "-r", "60", pdf, keep + "/releve-2026-10"])
        }

        // The staff summary opens in LibreOffice (French import) with numbers as numbers.
        let converted = try TestSupport.temporaryDirectory("statements-ods")
        _ = try tool("/usr/bin/soffice", ["--headless", "-env:UserInstallation=file://" + converted.appendingPathComponent("profile").path,
                                          "--infilter=Text - txt - csv (StarCalc):59,34,76,1,,1036,false,true", "--convert-to", "ods",
                                          "--outdir", converted.path, out.appendingPathComponent("releves-2026-10.csv").path])
        _ = try tool("/usr/bin/unzip", ["-o", "-q", converted.appendingPathComponent("releves-2026-10.ods").path, "content.xml", "-d", converted.path])
        let content = try String(contentsOf: converted.appendingPathComponent("content.xml"), encoding: .utf8)
        let savings = FrenchCSV.euros(Cents(statements[0].energy.savingsCents)).replacingOccurrences(of: ",", with: ".")
        let consumption = FrenchCSV.kilowattHours(statements[0].energy.consumptionWh).replacingOccurrences(of: ",", with: ".")
        #expect(content.contains("office:value-type=\"float\" office:value=\"\(Decimal(string: savings)!)\""), "the saving is a number: \(savings)")
        #expect(content.contains("office:value-type=\"float\" office:value=\"\(Decimal(string: consumption)!)\""), "the consumption is a number: \(consumption)")
        #expect(content.contains("Résidence") && content.contains("OUT-A-03"))

        // The building's and the association's pages print too, one A4 page each.
        let estatePDF = out.appendingPathComponent("residences-2026-10.pdf").path
        #expect(try tool("/usr/bin/pdfinfo", [estatePDF]).split(separator: "\n").contains { $0.hasPrefix("Pages:") && $0.hasSuffix(" 2") }, "the association's page, then OUT-A's")
        if let keep = ProcessInfo.processInfo.environment["HUB_KEEP_PRINTS"] {
            _ = try tool("/usr/bin/pdftoppm", ["-png", "-r", "60", estatePDF, keep + "/residences-2026-10"])
        }

        // Exporting again gives the same bytes.
        let again = try TestSupport.temporaryDirectory("statements-again")
        try await run(["statements", "export", "--month", "2026-10", "--out", again.path, "--db", path, "--config", config.path, "--format", "json,csv,html"])
        for name in ["releves-2026-10.json", "releves-2026-10.csv", "releves-2026-10.html", "residences-2026-10.json", "residences-2026-10.html"] {
            #expect(try Data(contentsOf: again.appendingPathComponent(name)) == Data(contentsOf: out.appendingPathComponent(name)), "\(name) again")
        }
    }

    @Test func badInputIsACLIErrorAndWritesNothing() async throws {
        let (path, _) = try await preparedDatabase()
        let out = try TestSupport.temporaryDirectory("statements-bad")
        for arguments in [["--month", "2026-13"], ["--month", "octobre"], ["--month", "2026-10", "--format", "docx"]] {
            do {
                try await run(["statements", "export", "--out", out.path, "--db", path] + arguments)
                Issue.record("\(arguments) was accepted")
            } catch let error as ExitCode {
                #expect(error.rawValue != 0)
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.path).isEmpty)
    }
}

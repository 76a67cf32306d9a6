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

/// The building and association statements of October 2026 for the small estate of
/// `EstateFixture`: values checked by hand, JSON, HTML and the month's hledger journal compared
/// with golden files (`HUB_UPDATE_GOLDEN=1` rewrites them), each page printed to one A4 PDF page
/// (`HUB_KEEP_PRINTS=DIR` keeps them as PNG pictures to look at), the distribution never naming a
/// household and withheld below the minimum group, and who may read which statement.
@Suite(.serialized) struct EstateStatementsTests {
    static let golden = TestSupport.packageRoot.appendingPathComponent("Tests/StatementsTests/Golden")
    static let october = LocalDate(year: 2026, month: 10, day: 1)!
    static let outreau = Identity(name: "outreau", role: .association, estate: "Outreau")
    static let portel = Identity(name: "portel", role: .association, estate: "Le Portel")
    static let resident = Identity(name: "resident-1", role: .resident, dwelling: "OUT-A-01")

    static func json<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return try encoder.encode(value) + Data("\n".utf8)
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

    func tool(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw HubError.configuration("\(path) is missing: run ./deploy/install-debian-packages.sh")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    /// Prints a page to PDF as staff would, checks it is one A4 page, and keeps it as a picture when asked.
    func expectOnePrintedPage(_ html: String, name: String) async throws {
        let pdf = try TestSupport.temporaryDirectory("estate-print").appendingPathComponent(name + ".pdf").path
        try await PrintedPDF.render(html: html, to: pdf)
        let info = try tool("/usr/bin/pdfinfo", [pdf]).output.split(separator: "\n")
        #expect(info.contains { $0.hasPrefix("Pages:") && $0.hasSuffix(" 1") }, "\(name) prints on one page: \(info)")
        #expect(info.contains { $0.hasPrefix("Page size:") && $0.hasSuffix("(A4)") }, "\(name) is A4: \(info)")
        if let keep = ProcessInfo.processInfo.environment["HUB_KEEP_PRINTS"] {
            _ = try tool("/usr/bin/pdftoppm", ["-png", "-r", "60", pdf, keep + "/" + name])
        }
    }

    func expectForbidden(_ what: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void) async {
        do {
            try await body()
            Issue.record("\(what) was allowed", sourceLocation: sourceLocation)
        } catch let error as HubError {
            #expect(error.kind == .forbidden, "\(what): \(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("\(what): \(error)", sourceLocation: sourceLocation)
        }
    }

    // MARK: - The building

    @Test func theBuildingStatementOfOctoberAsCheckedByHand() async throws {
        let fixture = try await EstateFixture()
        let statement = try await fixture.export.building("OUT-A", month: "2026-10", by: .testStaff, now: EstateFixture.now)
        // The statement is the association's, whoever prints it: OUT-A has three households, fewer
        // than the minimum group of 10, so only the production of its panels is shown (issue 14,
        // defect 10). Staff's own report has every figure, checked by hand here.
        let energy = try await fixture.export.figures.building("OUT-A", from: Self.october, to: LocalDate(year: 2026, month: 10, day: 31)!,
                                                               now: EstateFixture.now, by: .testStaff)

        // The production is what pv-a's index rose by over the month's 1490 half-hours, the DST hour
        // included (the index is cumulative: the two missing readings lose no energy).
        let production = (1...1490).reduce(Int64(0)) { $0 + EstateFixture.pvIncrease(step: $1) }
        #expect(energy.productionWh == production && !energy.withheld)
        #expect(energy.allocatedWh + energy.surplusWh == production, "what the households did not use was sold")
        #expect(energy.allocatedWh > 0 && energy.surplusWh > 0 && energy.allocatedWh <= energy.consumptionWh)
        #expect(energy.surplusRevenueCents == (energy.surplusWh * 4 + 500) / 1000, "0,04 € per kWh sold, rounded once")
        #expect(energy.selfConsumptionRate == energyRate(energy.allocatedWh, production))
        #expect(energy.days.count == 31 && energy.households == 3 && statement.devicesInService == 4)
        // The 25th has 50 half-hours (the clocks go back); on the 5th three are estimated.
        let day25 = energy.days[24], day5 = energy.days[4]
        #expect(day25.date == LocalDate(year: 2026, month: 10, day: 25)! && day25.slots == SlotCounts(measured: 50, estimated: 0, missing: 0))
        #expect(day25.productionWh == (24 * 48 + 1...24 * 48 + 50).reduce(Int64(0)) { $0 + EstateFixture.pvIncrease(step: $1) })
        #expect(day5.slots == SlotCounts(measured: 45, estimated: 3, missing: 0))
        #expect(energy.slots == SlotCounts(measured: 1487, estimated: 3, missing: 0))

        // The statement: the same production, day by day, and nothing of the households.
        #expect(statement.energy.withheld && statement.energy.productionWh == production && statement.energy.days.map(\.productionWh) == energy.days.map(\.productionWh))
        #expect(statement.energy.allocatedWh == 0 && statement.energy.consumptionWh == 0 && statement.energy.days.allSatisfy(\.withheld))
        #expect(statement.energy.slots == energy.slots && statement.energy.minimumHouseholds == 10)
        #expect(statement.householdShares == HouseholdShares(households: 3, allocatedWh: nil, savingsCents: nil, minimumHouseholds: 10))
        var allocated: [Int64] = []
        for dwelling in ["OUT-A-01", "OUT-A-02", "OUT-A-03"] {
            let report = try await fixture.export.figures.dwelling(dwelling, from: Self.october, to: LocalDate(year: 2026, month: 10, day: 31)!,
                                                                   now: EstateFixture.monthEnd, by: .testStaff)
            allocated.append(report.allocatedWh)
        }
        #expect(allocated.reduce(0, +) == energy.allocatedWh)

        // The silent meter and the refused messages, as facts and in words.
        #expect(statement.troubledDevices.map(\.device) == ["m-02", "m-03", "pv-a"])
        #expect(statement.troubledDevices[0].refused == [.init(reason: .malformedPayload, count: 2)] && statement.troubledDevices[0].silences.isEmpty)
        #expect(statement.troubledDevices[1].silences == [.init(from: EstateFixture.m03SilentAfter, to: EstateFixture.monthEnd)])
        #expect(statement.troubledDevices[2].refused == [.init(reason: .notANumber, count: 1)])
        #expect(statement.quality == [
            "1 jour estimé : la production des panneaux n'a pas été transmise en entier le 5 octobre ; les heures manquantes sont estimées.",
            "Le boîtier m-02 (compteur) : 2 messages refusés (message illisible : 2).",
            "Le boîtier m-03 (compteur) n'a rien transmis du 10 octobre à 14 h 00 à la fin du mois (21 jours).",
            "Le boîtier pv-a (panneaux solaires) : 1 message refusé (lecture du compteur impossible : 1).",
        ])

        // JSON and page as the golden files say; no household is ever named.
        let json = try Self.json(statement)
        let html = EstatePages.document(statement)
        for dwelling in ["OUT-A-01", "OUT-A-02", "OUT-A-03"] {
            #expect(!String(decoding: json, as: UTF8.self).contains(dwelling) && !html.contains(dwelling), "\(dwelling) is named")
        }
        #expect(try JSONDecoder().decode(BuildingStatement.self, from: json) == statement)
        #expect(html.contains("Moins de 10 foyers avec des relevés certains jours : chiffres non publiés pour protéger les voisins"))
        #expect(html.contains("L'immeuble compte 3 logements suivis, moins de 10 : pour ne pas dévoiler la part d'un voisin"))
        #expect(!html.contains(French.kilowattHours(energy.allocatedWh)) && !html.contains(French.kilowattHours(energy.consumptionWh)), "no household figure on paper")
        #expect(!String(decoding: json, as: UTF8.self).contains("\"allocated_wh\" : \(energy.allocatedWh)"))
        #expect(html.contains(French.escape("Association des locataires d'Outreau")) && html.contains("<svg role=\"img\""))
        try expectGolden("immeuble-OUT-A-2026-10.json", json)
        try expectGolden("immeuble-OUT-A-2026-10.html", Data(html.utf8))
        try await expectOnePrintedPage(html, name: "immeuble-OUT-A-2026-10")

        // Asking again gives the same statement: the month is reported as of its end.
        #expect(try await fixture.export.building("OUT-A", month: "2026-10", by: .testStaff, now: EstateFixture.now.adding(seconds: 86_400 * 30)) == statement)
    }

    @Test func aBuildingBelowTheMinimumGroupWithholdsItsDistribution() async throws {
        let fixture = try await EstateFixture()
        let statement = try await fixture.export.building("OUT-B", month: "2026-10", by: Self.outreau, now: EstateFixture.now)
        #expect(statement.householdShares.households == 2 && statement.householdShares.withheld)
        #expect(statement.householdShares.allocatedWh == nil && statement.householdShares.savingsCents == nil)
        let json = String(decoding: try Self.json(statement), as: UTF8.self)
        #expect(!json.contains("median") && !json.contains("OUT-B-01") && !json.contains("OUT-B-02"))
        let html = EstatePages.document(statement)
        #expect(html.contains("L'immeuble compte 2 logements suivis, moins de 10 : pour ne pas dévoiler la part d'un voisin, la répartition entre les logements n'est pas publiée."))
        #expect(!html.contains("un quart des logements"))
        #expect(html.contains("aucun relevé de la production des panneaux n'est arrivé") && !html.contains("<svg"), "no 0 kWh printed as if nothing was produced")
        // Nothing was ever received from OUT-B: every device is silent the whole month.
        #expect(statement.energy.productionWh == 0 && statement.troubledDevices.map(\.device) == ["m-11", "m-12", "pv-b"])
        #expect(statement.quality.contains("Le boîtier pv-b (panneaux solaires) n'a rien transmis de tout le mois (31 jours)."))
        #expect(statement.quality.contains("31 jours sans relevé complet de la production du 1er au 31 octobre : ces heures ne sont pas comptées."))
        try await expectOnePrintedPage(html, name: "immeuble-OUT-B-2026-10")

        // The rule itself: below the minimum group withheld, from it up shown, rounded, with no
        // extreme; quartiles as a spreadsheet's QUARTILE.INC.
        #expect(HouseholdShares(allocatedWh: [5_000, 7_000], savingsCents: [100, 200], minimum: 3) == HouseholdShares(households: 2, allocatedWh: nil, savingsCents: nil, minimumHouseholds: 3))
        #expect(!HouseholdShares(allocatedWh: [5_000, 7_000, 9_000], savingsCents: [100, 200, 300], minimum: 3).withheld)
        #expect(HouseholdShares(allocatedWh: [5_000, 7_000, 9_000], savingsCents: [100, 200, 300]).withheld, "10 by default")
        let shown = HouseholdShares(allocatedWh: [5_000, 7_000, 9_000], savingsCents: [100, 200, 300], minimum: 3)
        let page = EstatePages.shares(shown)
        #expect(page.contains("un quart des logements a reçu moins de 6,0\u{202F}kWh, la moitié moins de 7,0\u{202F}kWh"))
        #expect(page.contains("la moitié moins de 2\u{202F}€") && !page.contains("de 5,0") && !page.contains("à 9,0"), "no smallest or largest share")
        #expect(EnergyReportRules.quartiles([40, 10, 30, 20]) == .init(min: 10, lowerQuartile: 18, median: 25, upperQuartile: 33, max: 40))
        #expect(EnergyReportRules.quartiles([7]) == .init(min: 7, lowerQuartile: 7, median: 7, upperQuartile: 7, max: 7))
        // Silences: a day or more without a reading, at the start, between two readings, at the end.
        let t0 = EstateFixture.start, day: Int64 = 86_400
        let end = t0.adding(seconds: 10 * day)
        #expect(EnergyReportRules.silences(from: t0, to: end, first: nil, last: nil, gaps: []) == [.init(from: t0, to: end)])
        #expect(EnergyReportRules.silences(from: t0, to: end, first: t0.adding(seconds: day), last: t0.adding(seconds: 9 * day),
                                           gaps: [(t0.adding(seconds: 2 * day), t0.adding(seconds: 4 * day))])
                == [.init(from: t0, to: t0.adding(seconds: day)), .init(from: t0.adding(seconds: 2 * day), to: t0.adding(seconds: 4 * day)),
                    .init(from: t0.adding(seconds: 9 * day), to: end)])
        #expect(EnergyReportRules.silences(from: t0, to: end, first: t0.adding(seconds: day - 1), last: end.adding(seconds: 1 - day), gaps: []).isEmpty,
                "just under a day is not a silence")
    }

    // MARK: - The association

    @Test func theAssociationStatementOfOctoberAsCheckedByHand() async throws {
        let fixture = try await EstateFixture()
        let statement = try await fixture.export.association(estate: "Outreau", month: "2026-10", by: .testStaff, now: EstateFixture.now)

        // The car's accounts (one ledger for the car, whoever rides): Alice's trip (2 €), Alice's and
        // Carole's memberships (8 € each; Bob's was September's income); expense: the charge (6 €).
        let income = statement.incomeStatement
        #expect(income.income.map(\.account) == [.tripFees, .memberships] && income.income.map(\.amountCents) == [Cents(200), Cents(1_600)])
        #expect(income.expenses.map(\.account) == [.charging] && income.expenses.map(\.amountCents) == [Cents(600)])
        #expect(income.resultCents == Cents(1_200))
        // The car: one ride of 18 km, one charging run of 8 km and 30 kWh for 6 €.
        let use = statement.carUse
        #expect(use.byKind.first { $0.kind == .ride }.map { ($0.lines, $0.kilometres) } ?? (0, 0) == (1, 18))
        #expect(use.byKind.first { $0.kind == .chargingRun }.map { ($0.lines, $0.kilometres) } ?? (0, 0) == (1, 8))
        #expect(use.totalKm == 26 && use.chargedWh == 30_000 && use.chargingCostCents == Cents(600) && use.unexplainedKm == 0)
        // Members of Outreau only (Carole lives in Le Portel): Alice owes nothing at the month's
        // end; Bob still owes his membership (he pays on 1 November, after the month).
        #expect(statement.members.map(\.name) == ["Bob Leroy", "Alice Martin"])
        let bob = statement.members[0], alice = statement.members[1]
        #expect(alice.trips == 1 && alice.kilometres == 18 && alice.chargedCents == Cents(1_000) && alice.paidCents == Cents(1_000) && alice.balanceCents == .zero)
        #expect(bob.trips == 0 && bob.chargedCents == .zero && bob.paidCents == .zero && bob.balanceCents == Cents(-800))
        #expect(statement.membersUpToDate == 2)
        #expect(statement.membershipsSold.map(\.member) == [fixture.alice] && statement.membershipsSoldCents == Cents(800))
        // The cash box: Alice's 10 € in, the charge's 6 € out.
        #expect(statement.cashBook.openingCents == .zero && statement.cashBook.closingCents == Cents(400))
        #expect(statement.cashBook.lines.map { [$0.inCents, $0.outCents, $0.balanceCents] } == [[Cents(1_000), .zero, Cents(1_000)], [.zero, Cents(600), Cents(400)]])
        // The chain's head at October's close: entry 6 (the charge), the last dated in or before
        // October; Bob's November payment (entry 7) comes after it.
        let six = try await fixture.carShare.entryView(6, by: .testStaff)
        #expect(six.date == LocalDate(year: 2026, month: 10, day: 20)!)
        #expect(statement.ledgerHead == LedgerHead(month: "2026-10", closed: true, entries: 6, lastEntry: 6, hash: six.hash, chainIntact: true))

        let json = try Self.json(statement)
        #expect(try JSONDecoder().decode(AssociationStatement.self, from: json) == statement)
        let html = EstatePages.document(statement)
        #expect(html.contains(French.hashGroups(six.hash)) && html.contains("Le mois est clos."))
        #expect(html.contains("reste à payer 8,00\u{202F}€") && !html.contains("Carole"))
        try expectGolden("association-Outreau-2026-10.json", json)
        try expectGolden("association-Outreau-2026-10.html", Data(html.utf8))
        try await expectOnePrintedPage(html, name: "association-Outreau-2026-10")

        // The month's journal: October's entries only, and hledger accepts it.
        let journal = try await fixture.export.associationJournal(month: "2026-10", by: Self.outreau)
        #expect(journal.contains("2026-10-14 (4) ") && journal.contains("2026-10-20 (6) "))
        #expect(!journal.contains("2026-09-15 (1) ") && !journal.contains("2026-11-01 (7) "))
        try expectGolden("association-2026-10.journal", Data(journal.utf8))
        let file = try TestSupport.temporaryDirectory("estate-journal").appendingPathComponent("octobre.journal")
        try Data(journal.utf8).write(to: file)
        let hledger = try tool("/usr/bin/hledger", ["-f", file.path, "check", "-s", "ordereddates"])
        #expect(hledger.status == 0, "hledger check: \(hledger.output)")
    }

    @Test func theHeadOnPaperShowsALaterChangeToAClosedMonth() async throws {
        let fixture = try await EstateFixture()
        let printed = try await fixture.export.association(estate: "Outreau", month: "2026-10", by: .testStaff, now: EstateFixture.now).ledgerHead
        // Later entries do not move a closed month's head.
        _ = try await fixture.carShare.recordPayment(NewPayment(idempotencyKey: "pay-3", member: fixture.alice, amountCents: Cents(500), method: .cash,
                                                                on: LocalDate(year: 2026, month: 11, day: 5)!),
                                                     by: .testStaff, at: Instant.parseRFC3339("2026-11-05T09:00:00Z")!)
        #expect(try await fixture.carShare.ledgerHead(month: "2026-10", by: .testStaff) == printed)
        // Someone changes an October amount behind the ledger's back (after dropping its guard):
        // the head no longer checks, and the page says so.
        try await fixture.database.pool.write { db in
            try db.execute(sql: "DROP TRIGGER carshare_entry_line_no_update")
            try db.execute(sql: "UPDATE carshare_entry_line SET amount_cents = amount_cents + 100 WHERE entry_number = 5 AND line = 1")
        }
        let after = try await fixture.export.association(estate: "Outreau", month: "2026-10", by: .testStaff, now: EstateFixture.now)
        #expect(!after.ledgerHead.chainIntact)
        #expect(EstatePages.document(after).contains("la vérification des comptes a échoué"))
    }

    // MARK: - Who gets which statement

    @Test func anAssociationGetsItsOwnEstatesStatementsAndAResidentNone() async throws {
        let fixture = try await EstateFixture()
        let export = fixture.export
        let now = EstateFixture.now
        // Outreau's association: its buildings and its statement, the same as staff see.
        let building = try await export.building("OUT-A", month: "2026-10", by: Self.outreau, now: now)
        #expect(building == (try await export.building("OUT-A", month: "2026-10", by: .testStaff, now: now)))
        let association = try await export.association(estate: "Outreau", month: "2026-10", by: Self.outreau, now: now)
        #expect(association == (try await export.association(estate: "Outreau", month: "2026-10", by: .testStaff, now: now)))
        // ...but not another estate's.
        await expectForbidden("Outreau's association reading POR-A") { _ = try await export.building("POR-A", month: "2026-10", by: Self.outreau, now: now) }
        await expectForbidden("Outreau's association reading Le Portel's statement") {
            _ = try await export.association(estate: "Le Portel", month: "2026-10", by: Self.outreau, now: now)
        }
        await expectForbidden("Le Portel's association reading OUT-A") { _ = try await export.building("OUT-A", month: "2026-10", by: Self.portel, now: now) }
        await expectForbidden("Le Portel's association reading Outreau's statement") {
            _ = try await export.association(estate: "Outreau", month: "2026-10", by: Self.portel, now: now)
        }
        // Le Portel's own statement lists Carole, not Outreau's members.
        let portel = try await export.association(estate: "Le Portel", month: "2026-10", by: Self.portel, now: now)
        #expect(portel.members.map(\.name) == ["Carole Petit"])
        // A resident gets neither, not even their own building's.
        await expectForbidden("a resident reading their building") { _ = try await export.building("OUT-A", month: "2026-10", by: Self.resident, now: now) }
        await expectForbidden("a resident reading the association's statement") {
            _ = try await export.association(estate: "Outreau", month: "2026-10", by: Self.resident, now: now)
        }
        await expectForbidden("a resident reading the month's journal") { _ = try await export.associationJournal(month: "2026-10", by: Self.resident) }
        await expectForbidden("a resident asking the building's devices") {
            _ = try await export.figures.deviceHealth(building: "OUT-A", from: Self.october, to: Self.october, now: now, by: Self.resident)
        }
        await expectForbidden("a resident asking the ledger's head") { _ = try await fixture.carShare.ledgerHead(month: "2026-10", by: Self.resident) }
        // Staff naming an estate that does not exist get a 404, not an empty statement.
        do {
            _ = try await export.association(estate: "Nulle-part", month: "2026-10", by: .testStaff, now: now)
            Issue.record("an unknown estate was accepted")
        } catch let error as HubError {
            #expect(error.kind == .notFound)
        }
    }
}

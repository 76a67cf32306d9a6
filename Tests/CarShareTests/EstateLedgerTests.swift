import CarShare
import CarShareCore
import Foundation
import HTTPTypes
import HubTestSupport
import HubCore
import HummingbirdTesting
import Shared
import Testing
@testable import HubApp

/// Issue 14, defect 7: an association saw other estates' members' money (their balances in
/// `reports/balances`, their names in the journal's labels, their entries by number). The
/// car's ledger is one association's, kept for every estate (README, *Car share*): an
/// association login sees the association's own accounts whole and, of the members, only its
/// estate's; an entry naming a member of another estate shows, where the association's own
/// accounts need it, with no name, no member and no label.
@Suite struct EstateLedgerTests {
    static let march12 = LocalDate(year: 2026, month: 3, day: 12)!

    struct World {
        var seed: Fixture.Seed
        var chloePayment: Int64
        var alicePayment: Int64
        var grant: Int64
    }

    /// Alice and Bob (Outreau) and Chloé (Le Portel) with their 2026 memberships; Alice and
    /// Chloé pay in cash; the town's grant reaches the bank.
    func world(_ fixture: Fixture) async throws -> World {
        let seed = try await fixture.seed()
        let chloe = try await fixture.store.recordPayment(NewPayment(idempotencyKey: "chloe-1", member: seed.chloe, amountCents: Cents(1500), method: .cash, on: Self.march12),
                                                          by: Fixture.staff, at: Fixture.now)
        let alice = try await fixture.store.recordPayment(NewPayment(idempotencyKey: "alice-1", member: seed.alice, amountCents: Cents(800), method: .cash, on: Self.march12),
                                                          by: Fixture.staff, at: Fixture.now)
        let grant = try await fixture.store.postManual(NewManualEntry(on: Self.march12, label: "Subvention de la ville", lines: [
            LineInput(account: "512", amountCents: Cents(50_000)), LineInput(account: "741", amountCents: Cents(-50_000))]), by: Fixture.staff, at: Fixture.now)
        return World(seed: seed, chloePayment: chloe.payment.entry, alicePayment: alice.payment.entry, grant: grant.number)
    }

    @Test func anAssociationSeesItsEstatesMembersMoneyAndNoOtherEstates() async throws {
        let fixture = try await Fixture()
        let world = try await world(fixture)
        let seed = world.seed
        try await fixture.app.test(.router) { client in
            // Balances: the association's accounts whole, its own members only.
            let (_, outreauBody) = try await client.send(.get, "\(api)/reports/balances", as: Fixture.association, fixture: fixture)
            let outreau = try decode(BalancesReport.self, outreauBody)
            #expect(Set(outreau.members.map(\.member)) == [seed.alice, seed.bob], "\(outreauBody)")
            #expect(outreau.accounts.first { $0.account == .cash }?.balanceCents == Cents(2300), "the cash box is the association's, counted whole")
            let (_, portelBody) = try await client.send(.get, "\(api)/reports/balances", as: Fixture.otherAssociation, fixture: fixture)
            #expect(try decode(BalancesReport.self, portelBody).members.map(\.member) == [seed.chloe])
            let (_, staffBody) = try await client.send(.get, "\(api)/reports/balances", as: Fixture.staff, fixture: fixture)
            #expect(try Set(decode(BalancesReport.self, staffBody).members.map(\.member)) == [seed.alice, seed.bob, seed.chloe])

            // One entry: its estate's association and staff; the association's own entries to every association.
            let (theirs, theirsBody) = try await client.send(.get, "\(api)/ledger/entries/\(world.chloePayment)", as: Fixture.association, fixture: fixture)
            #expect(try theirs == .forbidden && errorDetail(theirsBody).field == "entry", "\(theirsBody)")
            #expect(!theirsBody.contains("Chloé"))
            let (ours, _) = try await client.send(.get, "\(api)/ledger/entries/\(world.alicePayment)", as: Fixture.association, fixture: fixture)
            #expect(ours == .ok)
            let (portelOwn, _) = try await client.send(.get, "\(api)/ledger/entries/\(world.chloePayment)", as: Fixture.otherAssociation, fixture: fixture)
            #expect(portelOwn == .ok)
            let (notPortels, _) = try await client.send(.get, "\(api)/ledger/entries/\(world.alicePayment)", as: Fixture.otherAssociation, fixture: fixture)
            #expect(notPortels == .forbidden)
            let (grant, _) = try await client.send(.get, "\(api)/ledger/entries/\(world.grant)", as: Fixture.otherAssociation, fixture: fixture)
            #expect(grant == .ok)

            // The journal and the cash book: no name, no member sub-account of another estate, and still whole.
            let (journalStatus, journal) = try await client.send(.get, "\(api)/ledger/journal", as: Fixture.association, fixture: fixture)
            #expect(journalStatus == .ok)
            #expect(!journal.contains("Chloé") && !journal.contains("membre-\(seed.chloe)"), "\(journal)")
            #expect(journal.contains("Alice Martin") && journal.contains("membre-\(seed.alice)") && journal.contains("Subvention de la ville"))
            let file = try TestSupport.temporaryDirectory("estate-journal").appendingPathComponent("outreau.journal").path
            try Data(journal.utf8).write(to: URL(fileURLWithPath: file))
            let (status, output) = try Hledger.run(["-f", file, "check", "-s"])
            #expect(status == 0, "the association's journal still balances: \(output)")
            let (_, cashBody) = try await client.send(.get, "\(api)/reports/cash-book?from=2026-03-01&to=2026-03-31", as: Fixture.association, fixture: fixture)
            #expect(!cashBody.contains("Chloé"), "\(cashBody)")
            #expect(try decode(CashBook.self, cashBody).closingCents == Cents(2300))
            let (_, staffJournal) = try await client.send(.get, "\(api)/ledger/journal", as: Fixture.staff, fixture: fixture)
            #expect(staffJournal.contains("Chloé Petit"), "staff see every estate")

            // Another estate's member's statement stays closed.
            let (statement, _) = try await client.send(.get, "\(api)/members/\(seed.chloe)/statement", as: Fixture.association, fixture: fixture)
            #expect(statement == .forbidden)
        }
    }

    /// The association's monthly statement (and its journal) is made for that association: what
    /// it shows is what the association may see, whoever prints it.
    @Test func theAssociationsStatementShowsNoOtherEstatesMember() async throws {
        let fixture = try await Fixture()
        _ = try await world(fixture)
        try await fixture.app.test(.router) { client in
            for identity in [Fixture.staff, Fixture.association] {
                let (status, body) = try await client.send(.get, "/api/v1/statements/2026-03/estates/Outreau", as: identity, fixture: fixture)
                #expect(status == .ok, "\(body)")
                #expect(!body.contains("Chloé") && body.contains("Alice Martin"), "\(identity.name): \(body)")
            }
            let (other, _) = try await client.send(.get, "/api/v1/statements/2026-03/estates/Outreau", as: Fixture.otherAssociation, fixture: fixture)
            #expect(other == .forbidden)
        }
    }
}

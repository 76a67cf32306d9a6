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

/// Issue 14, defect 12: a clearing account holds money on its way somewhere (the cash box, the
/// cheques not yet deposited, the cash in transit to the bank) and never holds less than nothing.
/// After a 10 EUR cheque payment, a 500 EUR cheque deposit used to be accepted and took 5112 to
/// -490 EUR. Each account is refused with its own named error, through the routes.
@Suite struct ClearingAccountTests {
    static let march12 = LocalDate(year: 2026, month: 3, day: 12)!

    func balance(_ fixture: Fixture, _ account: Account) async throws -> Cents {
        try await fixture.store.balances(by: Fixture.staff).accounts.first { $0.account == account }?.balanceCents ?? .zero
    }

    @Test func aChequeDepositIsLimitedToTheChequesHeld() async throws {
        let fixture = try await Fixture()
        let seed = try await fixture.seed()
        try await fixture.app.test(.router) { client in
            let (paid, paidBody) = try await client.send(.post, "\(api)/payments", as: Fixture.association, fixture: fixture,
                                                         json: try json(NewPayment(idempotencyKey: "cheque-1", member: seed.alice, amountCents: Cents(1000), method: .cheque, on: Self.march12)))
            #expect(paid == .created, "\(paidBody)")
            let before = try fixture.counts()
            let (status, body) = try await client.send(.post, "\(api)/deposits", as: Fixture.association, fixture: fixture,
                                                       json: try json(NewDeposit(kind: .cheques, amountCents: Cents(50_000), on: Self.march12)))
            #expect(status == .unprocessableContent, "\(body)")
            let error = try errorDetail(body)
            #expect(error.code == "cheques_to_deposit_negative" && error.field == "amount", "\(body)")
            #expect(error.message.contains("-490,00 €"), "\(error.message)")
            #expect(try fixture.counts() == before, "nothing written")
            #expect(try await balance(fixture, .chequesToDeposit) == Cents(1000))
            let (exact, exactBody) = try await client.send(.post, "\(api)/deposits", as: Fixture.association, fixture: fixture,
                                                           json: try json(NewDeposit(kind: .cheques, amountCents: Cents(1000), on: Self.march12)))
            #expect(exact == .created, "\(exactBody)")
            let cheques = try await balance(fixture, .chequesToDeposit)
            let bank = try await balance(fixture, .bank)
            #expect(cheques == .zero && bank == Cents(1000))
        }
    }

    @Test func aCashDepositIsLimitedToTheCashBox() async throws {
        let fixture = try await Fixture()
        let seed = try await fixture.seed()
        try await fixture.app.test(.router) { client in
            let (paid, _) = try await client.send(.post, "\(api)/payments", as: Fixture.staff, fixture: fixture,
                                                  json: try json(NewPayment(idempotencyKey: "cash-1", member: seed.alice, amountCents: Cents(1000), method: .cash, on: Self.march12)))
            #expect(paid == .created)
            let before = try fixture.counts()
            let (status, body) = try await client.send(.post, "\(api)/deposits", as: Fixture.staff, fixture: fixture,
                                                       json: try json(NewDeposit(kind: .cash, amountCents: Cents(1001), on: Self.march12)))
            #expect(try status == .unprocessableContent && errorDetail(body).code == "cash_box_negative" && errorDetail(body).field == "amount", "\(body)")
            #expect(try fixture.counts() == before)
            #expect(try await balance(fixture, .cash) == Cents(1000))
        }
    }

    /// 580 holds the money between leaving the cash box (or the cheques) and reaching the bank:
    /// crediting it for money that never left, or cancelling only the first half of a deposit,
    /// is refused.
    @Test func cashInTransitNeverGoesNegative() async throws {
        let fixture = try await Fixture()
        let seed = try await fixture.seed()
        try await fixture.app.test(.router) { client in
            let (paid, _) = try await client.send(.post, "\(api)/payments", as: Fixture.staff, fixture: fixture,
                                                  json: try json(NewPayment(idempotencyKey: "cash-1", member: seed.alice, amountCents: Cents(1000), method: .cash, on: Self.march12)))
            #expect(paid == .created)
            let before = try fixture.counts()
            let (manual, manualBody) = try await client.send(.post, "\(api)/ledger/entries", as: Fixture.staff, fixture: fixture,
                                                             json: try json(NewManualEntry(on: Self.march12, label: "Versement fantôme", lines: [
                                                                 LineInput(account: "512", amountCents: Cents(500)), LineInput(account: "580", amountCents: Cents(-500))])))
            #expect(try manual == .unprocessableContent && errorDetail(manualBody).code == "cash_in_transit_negative", "\(manualBody)")
            #expect(try fixture.counts() == before)
            let (deposited, depositBody) = try await client.send(.post, "\(api)/deposits", as: Fixture.staff, fixture: fixture,
                                                                 json: try json(NewDeposit(kind: .cash, amountCents: Cents(1000), on: Self.march12)))
            #expect(deposited == .created, "\(depositBody)")
            let deposit = try decode(PostedView.self, depositBody)
            // Cancelling the cash's way out of the box while the bank keeps the money.
            let (half, halfBody) = try await client.send(.post, "\(api)/corrections", as: Fixture.staff, fixture: fixture,
                                                         json: try json(NewCorrection(entry: deposit.entries[0].number, reason: "erreur", on: Self.march12)))
            #expect(try half == .unprocessableContent && errorDetail(halfBody).code == "cash_in_transit_negative", "\(halfBody)")
            let transit = try await balance(fixture, .internalTransfers)
            let cash = try await balance(fixture, .cash)
            let bank = try await balance(fixture, .bank)
            #expect(transit == .zero && cash == .zero && bank == Cents(1000))
        }
    }
}

import ArgumentParser
import CarShare
import CarShareCore
import Foundation
import GRDB
import HubTestSupport
import HubCore
import Shared
import Testing
@testable import HubApp
@testable import HubCLI

/// The ledger invariants against a real SQLite file (and, where marked, a real PostgreSQL database too): each one refused with its named error code,
/// and nothing written when it is.
@Suite struct LedgerStoreTests {
    let day = LocalDate(year: 2026, month: 3, day: 10)!

    func pay(_ fixture: any StoreFixture, _ member: Int64, _ cents: Int64, _ method: PaymentMethod = .cash, key: String = UUID().uuidString, on: LocalDate? = nil) async throws -> PaymentView {
        try await fixture.carShare.recordPayment(NewPayment(idempotencyKey: key, member: member, amountCents: Cents(cents), method: method, on: on),
                                             by: Fixture.staff, at: Fixture.now).payment
    }

    @Test(arguments: Backend.allCases) func invariant1_anUnbalancedEntryIsRefusedAndNothingIsWritten(backend: Backend) async throws {
        try await withStoreFixture(backend) { fixture in
            let before = try await fixture.counts()
            await expectHubError("unbalanced_entry", field: "lines") {
                _ = try await fixture.carShare.postManual(NewManualEntry(on: day, label: "Subvention", lines: [
                    LineInput(account: "512", amountCents: Cents(50_000)), LineInput(account: "741", amountCents: Cents(-49_999))]), by: Fixture.staff, at: Fixture.now)
            }
            await expectHubError("too_few_lines", field: "lines") {
                _ = try await fixture.carShare.postManual(NewManualEntry(on: day, label: "x", lines: [LineInput(account: "512", amountCents: Cents(1))]), by: Fixture.staff, at: Fixture.now)
            }
            await expectHubError("unknown_account", field: "lines[1].account") {
                _ = try await fixture.carShare.postManual(NewManualEntry(on: day, label: "x", lines: [LineInput(account: "512", amountCents: Cents(1)),
                                                                                                  LineInput(account: "999", amountCents: Cents(-1))]), by: Fixture.staff, at: Fixture.now)
            }
            #expect(try await fixture.counts() == before)
            let grant = try await fixture.carShare.postManual(NewManualEntry(on: day, label: "Subvention de la ville", lines: [
                LineInput(account: "512", amountCents: Cents(50_000)), LineInput(account: "741", amountCents: Cents(-50_000))]), by: Fixture.staff, at: Fixture.now)
            #expect(grant.number == 1)
        }
    }

    @Test func invariant2_postedRowsCannotBeUpdatedOrDeletedEvenWithSQL() async throws {
        let fixture = try await Fixture()
        let seed = try await fixture.seed()
        _ = seed
        for sql in ["UPDATE carshare_entry SET label = 'x' WHERE number = 1", "DELETE FROM carshare_entry WHERE number = 1",
                    "UPDATE carshare_entry_line SET amount_cents = 1 WHERE entry_number = 1", "DELETE FROM carshare_entry_line WHERE entry_number = 1"] {
            #expect(throws: DatabaseError.self, "\(sql)") { try fixture.database.pool.write { db in try db.execute(sql: sql) } }
        }
        do {
            try await fixture.database.pool.write { db in try db.execute(sql: "DELETE FROM carshare_entry_line") }
        } catch let error as DatabaseError {
            #expect(error.message?.contains("posted_entry_immutable") == true)
            #expect((SQLiteCarShareStore.hubError(error) as? HubError)?.code == "posted_entry_immutable")
        }
    }

    @Test(arguments: Backend.allCases) func invariant2_aCorrectionIsAReversalPlusANewLinkedEntry(backend: Backend) async throws {
        try await withStoreFixture(backend) { fixture in
            let seed = try await fixture.seed()
            let payment = try await pay(fixture, seed.alice, 1000, .cash)
            // The treasurer typed 10 EUR in cash; it was a cheque.
            let corrected = try await fixture.carShare.correct(NewCorrection(entry: payment.entry, reason: "c'était un chèque", lines: [
                LineInput(account: "5112", amountCents: Cents(1000)), LineInput(account: "411", member: seed.alice, amountCents: Cents(-800)),
                LineInput(account: "4191", member: seed.alice, amountCents: Cents(-200))]), by: Fixture.staff, at: Fixture.now)
            #expect(corrected.entries.count == 2)
            #expect(corrected.entries[0].kind == .reversal && corrected.entries[0].reverses == payment.entry)
            #expect(corrected.entries[1].kind == .correction && corrected.entries[1].corrects == payment.entry)
            let original = try await fixture.carShare.entryView(payment.entry, by: Fixture.staff)
            #expect(original.lines.map(\.amountCents) == [Cents(1000), Cents(-800), Cents(-200)], "the original is untouched")
            let balances = try await fixture.carShare.balances(by: Fixture.staff)
            #expect(balances.accounts.first { $0.account == .cash }?.balanceCents == .zero)
            #expect(balances.accounts.first { $0.account == .chequesToDeposit }?.balanceCents == Cents(1000))
            await expectHubError("already_reversed", field: "entry") {
                _ = try await fixture.carShare.correct(NewCorrection(entry: payment.entry, reason: "encore"), by: Fixture.staff, at: Fixture.now)
            }
            await expectHubError("cannot_reverse_reversal", field: "entry") {
                _ = try await fixture.carShare.correct(NewCorrection(entry: corrected.entries[0].number, reason: "non"), by: Fixture.staff, at: Fixture.now)
            }
            await expectHubError("not_found", field: "entry") {
                _ = try await fixture.carShare.correct(NewCorrection(entry: 999, reason: "non"), by: Fixture.staff, at: Fixture.now)
            }
        }
    }

    @Test func invariant3_balancesAreSumsOfTheLines() async throws {
        let fixture = try await Fixture()
        let seed = try await fixture.seed()
        _ = try await pay(fixture, seed.alice, 1500)
        _ = try await pay(fixture, seed.bob, 500, .transfer)
        let report = try await fixture.store.balances(by: Fixture.staff)
        let sums = try await fixture.database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT account, SUM(amount_cents) AS s FROM carshare_entry_line GROUP BY account").reduce(into: [String: Int64]()) {
                $0[$1["account"]] = $1["s"]
            }
        }
        for account in report.accounts { #expect(account.balanceCents.value == sums[account.account.rawValue], "\(account.account)") }
        #expect(report.totalDebitCents == report.totalCreditCents)
        // Alice: 8 EUR membership, paid 15 EUR: 7 EUR credit. Bob: owes 3 EUR.
        let alice = try #require(report.members.first { $0.member == seed.alice })
        let bob = try #require(report.members.first { $0.member == seed.bob })
        #expect(alice.owedCents == .zero && alice.creditCents == Cents(700))
        #expect(bob.owedCents == Cents(300) && bob.creditCents == .zero)
        // No table holds a balance: the schema has no such column.
        let columns = try await fixture.database.pool.read { db in try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info('carshare_member')") }
        #expect(!columns.contains { $0.contains("balance") })
    }

    @Test(arguments: Backend.allCases) func invariant4_aClosedMonthRejectsWrites(backend: Backend) async throws {
        try await withStoreFixture(backend) { fixture in
            let seed = try await fixture.seed()
            let closed = try await fixture.carShare.closeMonth("2026-02", by: Fixture.staff, at: Fixture.now)
            #expect(closed == ["2026-02"])
            let before = try await fixture.counts()
            await expectHubError("closed_period", field: "date") {
                _ = try await pay(fixture, seed.alice, 800, on: LocalDate(year: 2026, month: 2, day: 27)!)
            }
            #expect(try await fixture.counts() == before, "no entry, no receipt, no idempotency record")
            await expectHubError("month_not_over", field: "month") { _ = try await fixture.carShare.closeMonth("2026-03", by: Fixture.staff, at: Fixture.now) }
            await expectHubError("already_closed", field: "month") { _ = try await fixture.carShare.closeMonth("2026-02", by: Fixture.staff, at: Fixture.now) }
            await expectHubError("forbidden") { _ = try await fixture.carShare.closeMonth("2026-01", by: Fixture.association, at: Fixture.now) }
            _ = try await pay(fixture, seed.alice, 800, on: LocalDate(year: 2026, month: 3, day: 1)!)
        }
    }

    @Test(arguments: Backend.allCases) func invariant5_entryAndReceiptNumbersAreGaplessEvenUnderConcurrencyAndFailures(backend: Backend) async throws {
        try await withStoreFixture(backend) { fixture in
            let seed = try await fixture.seed()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<30 {
                    group.addTask {
                        if index % 5 == 0 {
                            // A refund the cash box cannot pay: refused, and it must leave no hole.
                            _ = try? await fixture.carShare.recordRefund(NewRefund(member: seed.alice, amountCents: Cents(100_000), method: .cash), by: Fixture.staff, at: Fixture.now)
                        } else {
                            _ = try await pay(fixture, [seed.alice, seed.bob, seed.chloe][index % 3], 200)
                        }
                    }
                }
                try await group.waitForAll()
            }
            let posted = try await fixture.allEntries()
            let entries = posted.map(\.number)
            let receipts = posted.compactMap(\.receipt).sorted()
            #expect(entries == Array(1...Int64(entries.count)))
            #expect(receipts == Array(1...24))
            #expect(try await fixture.verifyNow().ok)
        }
    }

    @Test(arguments: Backend.allCases) func invariant6_aRetriedPaymentBooksNothingAndAReusedKeyIsRefused(backend: Backend) async throws {
        try await withStoreFixture(backend) { fixture in
            let seed = try await fixture.seed()
            let input = NewPayment(idempotencyKey: "carnet-12-ligne-3", member: seed.alice, amountCents: Cents(1000), method: .cash)
            let first = try await fixture.carShare.recordPayment(input, by: Fixture.driver, at: Fixture.now)
            let before = try await fixture.counts()
            let retry = try await fixture.carShare.recordPayment(input, by: Fixture.driver, at: Fixture.now.adding(seconds: 5))
            #expect(!first.replayed && retry.replayed)
            #expect(retry.payment == first.payment)
            #expect(try await fixture.counts() == before)
            var other = input
            other.amountCents = Cents(2000)
            await expectHubError("idempotency_key_reused", field: "idempotency_key") { _ = try await fixture.carShare.recordPayment(other, by: Fixture.driver, at: Fixture.now) }
            var missing = input
            missing.idempotencyKey = nil
            await expectHubError("missing_field", field: "idempotency_key") { _ = try await fixture.carShare.recordPayment(missing, by: Fixture.driver, at: Fixture.now) }
            #expect(try await fixture.counts() == before)
            #expect(first.payment.receiptText.contains("Reçu n° 1") && first.payment.receiptText.contains("10,00 €"))
            #expect(first.payment.receiptText.contains("n'ouvre pas droit à une réduction d'impôt"))
        }
    }

    @Test(arguments: Backend.allCases) func invariant7_theCashBoxNeverGoesNegative(backend: Backend) async throws {
        try await withStoreFixture(backend) { fixture in
            let seed = try await fixture.seed()
            _ = try await pay(fixture, seed.alice, 2000, .cash)  // 8 EUR membership settled, 12 EUR credit
            await expectHubError("cash_box_negative", field: "amount") {
                _ = try await fixture.carShare.recordDeposit(NewDeposit(kind: .cash, amountCents: Cents(2001)), by: Fixture.staff, at: Fixture.now)
            }
            let deposit = try await fixture.carShare.recordDeposit(NewDeposit(kind: .cash, amountCents: Cents(1500)), by: Fixture.staff, at: Fixture.now)
            #expect(deposit.entries.map { $0.lines.map(\.account) } == [[.internalTransfers, .cash], [.bank, .internalTransfers]])
            // 5 EUR left in the box, 12 EUR of credit: a cash refund of 10 EUR is refused, by transfer it is fine.
            await expectHubError("cash_box_negative") {
                _ = try await fixture.carShare.recordRefund(NewRefund(member: seed.alice, amountCents: Cents(1000), method: .cash), by: Fixture.staff, at: Fixture.now)
            }
            await expectHubError("refund_exceeds_credit") {
                _ = try await fixture.carShare.recordRefund(NewRefund(member: seed.alice, amountCents: Cents(1300), method: .transfer), by: Fixture.staff, at: Fixture.now)
            }
            _ = try await fixture.carShare.recordRefund(NewRefund(member: seed.alice, amountCents: Cents(1000), method: .transfer), by: Fixture.staff, at: Fixture.now)
            // A backdated cash expense that would empty the box before later withdrawals is refused too.
            await expectHubError("cash_box_negative") {
                _ = try await fixture.carShare.logCharging(NewCharging(vehicle: seed.vehicle, at: Fixture.at(10, day: 5), energyWh: WattHours(20_000), costCents: Cents(600), method: .cash),
                                                        by: Fixture.staff, at: Fixture.now)
            }
            let book = try await fixture.carShare.cashBook(from: LocalDate(year: 2026, month: 3, day: 1)!, to: LocalDate(year: 2026, month: 3, day: 31)!, by: Fixture.staff)
            #expect(book.lines.allSatisfy { $0.balanceCents >= .zero })
            #expect(book.closingCents == Cents(500))
        }
    }

    @Test(arguments: Backend.allCases) func invariant7_aCorrectionIsCheckedAsAWholeNotHalfWay(backend: Backend) async throws {
        try await withStoreFixture(backend) { fixture in
            let seed = try await fixture.seed()
            let payment = try await pay(fixture, seed.alice, 1000, .cash)
            _ = try await fixture.carShare.recordDeposit(NewDeposit(kind: .cash, amountCents: Cents(1000)), by: Fixture.staff, at: Fixture.now)
            // The box is empty; the payment's member split was wrong. Its reversal alone would take
            // 10 EUR out of an empty box, but reversal plus the right entry leave the box unchanged.
            let fixed = try await fixture.carShare.correct(NewCorrection(entry: payment.entry, reason: "répartition", lines: [
                LineInput(account: "530", amountCents: Cents(1000)), LineInput(account: "4191", member: seed.alice, amountCents: Cents(-1000))]),
                                                        by: Fixture.staff, at: Fixture.now)
            #expect(fixed.entries.count == 2)
            // A correction that really takes cash out of an empty box is refused whole: no half-correction.
            let before = try await fixture.counts()
            await expectHubError("cash_box_negative") {
                _ = try await fixture.carShare.correct(NewCorrection(entry: fixed.entries[1].number, reason: "c'était un chèque", lines: [
                    LineInput(account: "5112", amountCents: Cents(1000)), LineInput(account: "4191", member: seed.alice, amountCents: Cents(-1000))]),
                                                    by: Fixture.staff, at: Fixture.now)
            }
            #expect(try await fixture.counts() == before)
            #expect(try await fixture.verifyNow().ok)
        }
    }

    @Test func invariant8_ledgerVerifyFindsATamperedRow() async throws {
        let fixture = try await Fixture()
        let seed = try await fixture.seed()
        for index in 0..<5 { _ = try await pay(fixture, seed.bob, 100 + Int64(index)) }
        #expect(try fixture.store.verifySync().ok)
        let path = fixture.settings.database.path
        // The command finds nothing wrong...
        var command = try LedgerCommand.Verify.parseAsRoot(["--db", path]) as! LedgerCommand.Verify
        try await command.run()
        // ...until someone edits an amount behind the ledger's back (after dropping the guard).
        try await fixture.database.pool.write { db in
            try db.execute(sql: "DROP TRIGGER carshare_entry_line_no_update")
            try db.execute(sql: "UPDATE carshare_entry_line SET amount_cents = amount_cents + 100 WHERE entry_number = 6 AND line = 1")
        }
        let report = try fixture.store.verifySync()
        #expect(!report.ok && report.brokenEntry == 6, "\(report)")
        command = try LedgerCommand.Verify.parseAsRoot(["--db", path]) as! LedgerCommand.Verify
        do {
            try await command.run()
            Issue.record("ledger verify passed a tampered ledger")
        } catch let error as ExitCode {
            #expect(error.rawValue == 65)
        }
        // Via the built binary as an operator runs it, when it is there: non-zero exit, entry named.
        let binary = TestSupport.packageRoot.appendingPathComponent(".build/debug/community-hub").path
        if FileManager.default.isExecutableFile(atPath: binary) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["ledger", "verify", "--db", path]
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = Pipe()
            try process.run()
            process.waitUntilExit()
            let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(process.terminationStatus == 65, "\(message)")
            #expect(message.contains("entry 6"), "\(message)")
        }
    }
}

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

/// Issue 14, defect 13: the hash chain lives in the database, so whoever can write the file can
/// change an entry and recompute every later hash, and `ledger verify` passed again. Closing a
/// month keeps the chain's head outside the database (the anchors file beside it), and `ledger
/// verify` checks the chain against every anchor.
@Suite struct LedgerAnchorTests {
    static let april2 = LocalDate(year: 2026, month: 4, day: 2)!

    func run(_ arguments: [String]) async throws {
        var command = try CommunityHubCommand.parseAsRoot(arguments)
        if var asyncCommand = command as? any AsyncParsableCommand {
            try await asyncCommand.run()
        } else {
            try command.run()
        }
    }

    /// Changes entry `number`'s label behind the ledger's back and rewrites every hash from it on,
    /// as someone who can write the file would: the chain checks again on its own.
    static func tamperAndRecompute(_ database: HubDatabase, entry number: Int64, entries: [PostedEntry]) async throws {
        var previous = entries.first { $0.number == number - 1 }?.hash ?? HashChain.genesis
        var rewritten: [PostedEntry] = []
        for var entry in entries where entry.number >= number {
            if entry.number == number { entry.label += " (modifié)" }
            entry.previousHash = previous
            entry.hash = HashChain.hash(of: entry)
            previous = entry.hash
            rewritten.append(entry)
        }
        let changed = rewritten
        try await database.pool.write { db in
            try db.execute(sql: "DROP TRIGGER carshare_entry_no_update")
            for entry in changed {
                try db.execute(sql: "UPDATE carshare_entry SET label = ?, previous_hash = ?, hash = ? WHERE number = ?",
                               arguments: [entry.label, entry.previousHash, entry.hash, entry.number])
            }
        }
    }

    @Test func aRecomputedChainFailsAgainstTheAnchorOfTheMonthItChanged() async throws {
        let fixture = try await Fixture()
        let seed = try await fixture.seed()
        let path = fixture.settings.database.path
        for (index, member) in [seed.alice, seed.bob].enumerated() {
            _ = try await fixture.store.recordPayment(NewPayment(idempotencyKey: "march-\(index)", member: member, amountCents: Cents(1000), method: .cash,
                                                                 on: LocalDate(year: 2026, month: 3, day: 20)!), by: Fixture.staff, at: Fixture.now)
        }
        try await run(["ledger", "close-month", "2026-03", "--db", path])
        _ = try await fixture.store.postManual(NewManualEntry(on: Self.april2, label: "Subvention", lines: [
            LineInput(account: "512", amountCents: Cents(50_000)), LineInput(account: "741", amountCents: Cents(-50_000))]), by: Fixture.staff, at: Fixture.now)
        try await run(["ledger", "verify", "--db", path])
        let entries = try await fixture.store.entries(from: LocalDate(year: 2026, month: 1, day: 1)!, to: LocalDate(year: 2026, month: 12, day: 31)!, by: Fixture.staff)
        #expect(entries.count == 6)

        try await Self.tamperAndRecompute(fixture.database, entry: 2, entries: entries)
        let report = try fixture.store.verifySync()
        #expect(!report.ok, "\(report)")
        #expect(report.problem?.contains("2026-03") == true, "\(report)")
        do {
            try await run(["ledger", "verify", "--db", path])
            Issue.record("ledger verify passed a recomputed chain")
        } catch let error as ExitCode {
            #expect(error.rawValue == 65)
        }
        // As an operator runs it: non-zero exit, the month named.
        let binary = TestSupport.packageRoot.appendingPathComponent(".build/debug/community-hub").path
        if FileManager.default.isExecutableFile(atPath: binary) {
            let (status, message) = try await BlockingWork.run { () throws -> (Int32, String) in
                let process = Process()
                process.executableURL = URL(fileURLWithPath: binary)
                process.arguments = ["ledger", "verify", "--db", path]
                let errors = Pipe()
                process.standardError = errors
                process.standardOutput = Pipe()
                try process.run()
                process.waitUntilExit()
                return (process.terminationStatus, String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
            }
            #expect(status == 65, "\(message)")
            #expect(message.contains("2026-03"), "\(message)")
        }
    }
}

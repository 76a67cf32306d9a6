@testable import CarShare
@testable import CarShareCore
import Foundation
import GRDB
import HubTestSupport
import HubCore
import Shared
import HubTools
import Testing
@testable import HubApp


/// hledger, found on PATH; the property test fails (not skips) without it.
enum Hledger {
    static var path: String? {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin"]
        return directories.map { $0 + "/hledger" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs hledger with these arguments; returns exit status and output (stdout + stderr).
    static func run(_ arguments: [String]) throws -> (Int32, String) {
        guard let path else { throw HubError.configuration("hledger is not installed (apt-get install hledger); the ledger property test needs it") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// `hledger bal -O csv` as account name → cents.
    static func balances(_ file: String, depth: Int?) throws -> [String: Cents] {
        var arguments = ["-f", file, "bal", "-O", "csv", "-N", "-E"]
        arguments += depth.map { ["--depth", "\($0)"] } ?? ["--flat"]
        let (status, text) = try run(arguments)
        guard status == 0 else { throw HubError.configuration("hledger bal failed: \(text)") }
        var result: [String: Cents] = [:]
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: "\",\"").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            guard fields.count == 2, let cents = Cents(parsing: fields[1].replacingOccurrences(of: " EUR", with: "")) else {
                throw HubError.configuration("unexpected hledger line: \(line)")
            }
            result[fields[0]] = cents
        }
        return result
    }
}

/// Random sequences of memberships, bookings, trips, cancellations, payments, deposits, refunds,
/// charging and corrections keep every ledger invariant, and hledger agrees with the hub.
@Suite struct LedgerPropertyTests {
    struct World {
        var fixture: any StoreFixture
        var seed: Fixture.Seed
        var members: [Int64]
        var now: Instant
        var odometer: Int64 = 12_000
        var usedKeys: [String] = []
        var closed: Set<String> = []
        var operations: [String: (ok: Int, refused: Int)] = [:]
    }

    @Test(arguments: [UInt64(1), 2, 3, 4, 5, 6, 7, 8])
    func randomOperationsKeepEveryInvariantAndHledgerAgrees(seed: UInt64) async throws {
        _ = try await run(seed: seed, on: .sqlite)
    }

    /// The same seeded sequence through the SQLite and the PostgreSQL store: the same journal, to
    /// the character, the same balances, statements, ledger heads and verification.
    @Test(arguments: [UInt64(1), 2, 3, 4, 5, 6, 7, 8])
    func theSameSequenceGivesTheSameLedgerOnSQLiteAndPostgreSQL(seed: UInt64) async throws {
        let sqlite = try await run(seed: seed, on: .sqlite)
        let postgres = try await run(seed: seed, on: .postgres)
        #expect(postgres.operations == sqlite.operations)
        #expect(postgres.journal == sqlite.journal)
        #expect(postgres.balances == sqlite.balances)
        #expect(postgres.verify == sqlite.verify && postgres.verify.ok)
        #expect(postgres.statements == sqlite.statements)
        #expect(postgres.heads == sqlite.heads)
        #expect(postgres.cashBook == sqlite.cashBook)
        #expect(postgres.journal.count > 1000, "the sequence posted entries")
    }

    /// What a sequence leaves, compared between the stores.
    struct Outcome: Sendable {
        var operations: [String: [Int]]
        var journal: String
        var balances: BalancesReport
        var verify: VerifyReport
        var statements: [MemberStatement]
        var heads: [LedgerHead]
        var cashBook: CashBook
    }

    /// Runs the seeded sequence on a new store of `backend`, checking every invariant after each
    /// step and hledger's agreement at the end.
    func run(seed: UInt64, on backend: Backend) async throws -> Outcome {
        let hledger = try #require(Hledger.path, "hledger is not installed: apt-get install hledger (.ci/run installs it)")
        _ = hledger
        // The project's seeded generator, started where SplitMix64 from `seed` starts: a failing seed replays.
        var random = SeededGenerator(seed: seed &- 0x9E37_79B9_7F4A_7C15)
        var settings = CarShareSettings()
        settings.usePrepaidCreditFirst = Bool.random(using: &random)
        settings.lateCancellationKeepsFee = Bool.random(using: &random)
        settings.socialTransport.enabled = Bool.random(using: &random)
        return try await withStoreFixture(backend, carshare: settings) { fixture in
            let people = try await fixture.seed(memberships: false)
            var members = [people.alice, people.bob, people.chloe]
            for name in ["Gaston", "Hélène"] { members.append(try await fixture.carShare.addMember(NewMember(name: name), by: Fixture.staff, at: Fixture.now).id) }
            var world = World(fixture: fixture, seed: people, members: members, now: Instant.parseRFC3339("2026-02-20T08:00:00Z")!)
            for _ in 0..<90 {
                world.now = world.now.adding(seconds: Int64.random(in: 1...20, using: &random) * 3600)
                let name = try await step(&world, &random)
                try await checkInvariants(world, after: name)
            }
            // Every kind of operation happened and was sometimes refused: the sequence really explored.
            #expect(world.operations.values.reduce(0) { $0 + $1.ok } > 30, "\(world.operations)")
            try await compareWithHledger(world)
            let store = fixture.carShare
            var statements: [MemberStatement] = []
            for member in world.members { statements.append(try await store.statement(member: member, by: Fixture.staff)) }
            var heads: [LedgerHead] = []
            var month = LocalDate(year: 2026, month: 2, day: 1)!
            while month <= store.zone.localDate(of: world.now) {
                heads.append(try await store.ledgerHead(month: month.monthKey, by: Fixture.staff))
                month = month.firstOfNextMonth
            }
            return Outcome(operations: world.operations.mapValues { [$0.ok, $0.refused] }, journal: try await store.journal(by: Fixture.staff),
                           balances: try await store.balances(by: Fixture.staff), verify: try await store.verify(by: Fixture.staff),
                           statements: statements, heads: heads,
                           cashBook: try await store.cashBook(from: LocalDate(year: 2026, month: 1, day: 1)!, to: LocalDate(year: 2026, month: 12, day: 31)!, by: Fixture.staff))
        }
    }

    /// One random operation; a refusal must be a HubError (a user's mistake), anything else fails.
    func step(_ world: inout World, _ random: inout SeededGenerator) async throws -> String {
        let store = world.fixture.carShare
        let staff = Fixture.staff
        let now = world.now
        let today = store.zone.localDate(of: now)
        let member = world.members.randomElement(using: &random)!
        let choice = Int.random(in: 0..<100, using: &random)
        var name = ""
        do {
            switch choice {
            case 0..<12:
                name = "membership"
                let start = Int.random(in: 0..<5, using: &random) == 0 ? LocalDate(year: today.year + 1, month: 1, day: 1)! : today
                _ = try await store.buyMembership(member: member, NewMembership(start: start), by: staff, at: now)
            case 12..<30:
                name = "booking"
                let start = now.adding(seconds: Int64.random(in: -30...72, using: &random) * 3600)
                let driver: Int64? = Bool.random(using: &random) ? [world.seed.jean, world.seed.paul].randomElement(using: &random) : nil
                _ = try await store.createBooking(NewBooking(vehicle: world.seed.vehicle, rider: member, start: start,
                                                             end: start.adding(seconds: Int64.random(in: 1...3, using: &random) * 3600), driver: driver),
                                                  by: staff, at: now)
            case 30..<40:
                name = "status"
                let live = try await store.bookings(vehicle: nil, from: nil, to: nil, by: staff).filter(\.status.isLive)
                guard let booking = live.randomElement(using: &random) else { return "status (none)" }
                let target: BookingStatus = [.cancelled, .noShow, .turnedDown, .confirmed].randomElement(using: &random)!
                _ = try await store.changeStatus(booking.id, BookingStatusChange(version: booking.version, status: target, reason: "test",
                                                                                 driver: target == .confirmed ? world.seed.jean : nil), by: staff, at: now)
            case 40..<55:
                name = "trip"
                let live = try await store.bookings(vehicle: nil, from: nil, to: now, by: staff).filter { $0.status.isLive && $0.end <= now }
                let distance = Int64.random(in: 0...60, using: &random)
                let key = "trip-\(UUID().uuidString)"
                let start = world.odometer + Int64.random(in: 0...2, using: &random)
                let input: NewTrip
                if let booking = live.randomElement(using: &random) {
                    input = NewTrip(idempotencyKey: key, booking: booking.id, driver: booking.driver ?? world.seed.paul, start: booking.start, end: booking.end,
                                    startOdometerKm: start, endOdometerKm: start + distance, batteryStartPct: 90, batteryEndPct: 70)
                } else {
                    let begin = now.adding(seconds: -7200)
                    input = NewTrip(idempotencyKey: key, vehicle: world.seed.vehicle, driver: world.seed.jean, unbookedReason: "urgence",
                                    riders: Array(Set([member, world.members.randomElement(using: &random)!])).sorted(), start: begin, end: begin.adding(seconds: 3600),
                                    startOdometerKm: start, endOdometerKm: start + distance, batteryStartPct: 80, batteryEndPct: 60)
                }
                let logged = try await store.logTrip(input, by: staff, at: now)
                world.odometer = max(world.odometer, logged.trip.endOdometerKm)
                // A retry of the same log books nothing.
                let before = try await world.fixture.counts()
                let retry = try await store.logTrip(input, by: staff, at: now)
                let after = try await world.fixture.counts()
                #expect(retry.replayed && retry.trip == logged.trip && after == before)
            case 55..<72:
                name = "payment"
                let retry = Int.random(in: 0..<4, using: &random) == 0 && !world.usedKeys.isEmpty
                let key = retry ? world.usedKeys.randomElement(using: &random)! : "pay-\(UUID().uuidString)"
                if retry {
                    // Replays only the exact same request; anything else is refused by name.
                    let before = try await world.fixture.counts()
                    do {
                        _ = try await store.recordPayment(NewPayment(idempotencyKey: key, member: member, amountCents: Cents(100), method: .cash, on: today), by: staff, at: now)
                        #expect(try await world.fixture.counts() == before)
                    } catch let error as HubError {
                        #expect(error.code == "idempotency_key_reused" || error.code == "closed_period", "\(error)")
                    }
                    return "payment retry"
                }
                let method = PaymentMethod.allCases.randomElement(using: &random)!
                _ = try await store.recordPayment(NewPayment(idempotencyKey: key, member: member, amountCents: Cents(Int64.random(in: 1...30, using: &random) * 100),
                                                             method: method, on: today), by: staff, at: now)
                world.usedKeys.append(key)
            case 72..<78:
                name = "deposit"
                _ = try await store.recordDeposit(NewDeposit(kind: Bool.random(using: &random) ? .cash : .cheques, amountCents: Cents(Int64.random(in: 1...40, using: &random) * 100)),
                                                  by: staff, at: now)
            case 78..<83:
                name = "refund"
                _ = try await store.recordRefund(NewRefund(member: member, amountCents: Cents(Int64.random(in: 1...10, using: &random) * 100),
                                                           method: Bool.random(using: &random) ? .cash : .transfer), by: staff, at: now)
            case 83..<88:
                name = "charging"
                _ = try await store.logCharging(NewCharging(vehicle: world.seed.vehicle, at: now.adding(seconds: -600), energyWh: WattHours(Int64.random(in: 1_000...40_000, using: &random)),
                                                            costCents: Cents(Int64.random(in: 0...900, using: &random)), method: Bool.random(using: &random) ? .cash : .transfer),
                                                by: staff, at: now)
            case 88..<95:
                name = "correction"
                let count = Int64(try await world.fixture.allEntries().count)
                guard count > 0 else { return "correction (none)" }
                let original = try await store.entryView(Int64.random(in: 1...count, using: &random), by: staff)
                let repost = Bool.random(using: &random)
                _ = try await store.correct(NewCorrection(entry: original.number, reason: "erreur de saisie",
                                                          lines: repost ? original.lines.map { LineInput(account: $0.account.rawValue, member: $0.member, amountCents: $0.amountCents) } : nil),
                                            by: staff, at: now)
            case 95..<97:
                name = "close month"
                let previous = today.firstOfMonth.advanced(by: -1).monthKey
                _ = try await store.closeMonth(previous, by: staff, at: now)
                world.closed.insert(previous)
            default:
                name = "recognition"
                _ = try await store.recognizeDeferredMemberships(on: today, by: staff, at: now)
            }
            world.operations[name, default: (0, 0)].ok += 1
        } catch let error as HubError {
            #expect(error.kind != .configuration && error.kind != .unavailable, "\(name): \(error)")
            world.operations[name, default: (0, 0)].refused += 1
        }
        return name
    }

    /// Every invariant of carshare.md section 3, checked from the stored rows.
    func checkInvariants(_ world: World, after name: String) async throws {
        let fixture = world.fixture
        let entries = try await fixture.allEntries()
        // 1. balanced, at least two lines, integer cents (the column is INTEGER, STRICT)
        for entry in entries {
            #expect(throws: Never.self, "entry \(entry.number) after \(name)") {
                try LedgerRules.validate(EntryDraft(date: entry.date, kind: entry.kind, label: entry.label, lines: entry.lines, member: entry.member))
            }
        }
        // 2 + 5 + 8. numbers gapless, chain intact (nothing edited), receipts gapless
        let report = try await fixture.verifyNow()
        #expect(report.ok, "after \(name): \(report)")
        // 2. reversals mirror their original exactly
        for entry in entries where entry.kind == .reversal {
            let original: PostedEntry = entries[Int(entry.reverses!) - 1]
            let mirrored: [LedgerLine] = original.lines.map { (line: LedgerLine) -> LedgerLine in LedgerLine(line.account, -line.amount, member: line.member) }
            #expect(entry.lines == mirrored)
        }
        // 3. the balance report is the sum of the lines
        let balances = try await fixture.carShare.balances(by: Fixture.staff)
        let allLines: [LedgerLine] = entries.flatMap { (entry: PostedEntry) -> [LedgerLine] in entry.lines }
        let derived: [Account: Cents] = LedgerRules.balances(allLines)
        for account in Account.allCases {
            let reported: Cents = balances.accounts.first(where: { $0.account == account })?.balanceCents ?? .zero
            let summed: Cents = derived[account] ?? .zero
            #expect(reported == summed, "\(account) after \(name)")
        }
        // 4. no entry dated in a month that was closed before it was posted
        let closings = try await fixture.closings()
        for (month, closedAt) in closings {
            #expect(!entries.contains { $0.date.monthKey == month && $0.postedAt > closedAt }, "entry posted in closed \(month)")
        }
        // 7. the cash box is never negative, on any day
        var byDay: [LocalDate: Cents] = [:]
        for entry in entries {
            for line in entry.lines where line.account == .cash { byDay[entry.date, default: .zero] = byDay[entry.date, default: .zero] + line.amount }
        }
        var cash = Cents.zero
        for day in byDay.keys.sorted() {
            cash = cash + byDay[day]!
            #expect(cash >= .zero, "cash box \(cash) on \(day) after \(name)")
        }
    }

    /// Exports the journal, has hledger check it (balanced, every running balance asserted, every
    /// account and the commodity declared, dates in order) and compares every balance.
    func compareWithHledger(_ world: World) async throws {
        let journal = try await world.fixture.carShare.journal(by: Fixture.staff)
        let directory = try TestSupport.temporaryDirectory("hledger")
        let file = directory.appendingPathComponent("carshare.journal").path
        try journal.write(toFile: file, atomically: true, encoding: .utf8)
        let (status, output) = try Hledger.run(["-f", file, "check", "-s", "ordereddates"])
        #expect(status == 0, "hledger check: \(output)")
        let report = try await world.fixture.carShare.balances(by: Fixture.staff)
        let top = try Hledger.balances(file, depth: 1)
        for account in Account.allCases {
            let hub = report.accounts.first { $0.account == account }?.balanceCents ?? .zero
            #expect((top[HledgerJournal.accountName(account, member: nil)] ?? .zero) == hub, "\(account.rawValue): hledger \(top), hub \(hub)")
        }
        #expect(Set(top.keys).isSubset(of: Set(Account.allCases.map { HledgerJournal.accountName($0, member: nil) })), "\(top.keys)")
        let leaves = try Hledger.balances(file, depth: nil)
        for member in report.members {
            #expect((leaves[HledgerJournal.accountName(.members, member: member.member)] ?? .zero) == member.owedCents, "411 of member \(member.member)")
            #expect((leaves[HledgerJournal.accountName(.memberCredit, member: member.member)] ?? .zero) == -member.creditCents, "4191 of member \(member.member)")
        }
        // The check can fail: a journal whose last assertion is off by a cent is refused.
        if let range = journal.range(of: " EUR = ", options: .backwards) {
            var broken = journal
            let after = broken[range.upperBound...].prefix { $0 != " " }
            let wrong = (Cents(parsing: String(after)) ?? .zero) + Cents(1)
            broken.replaceSubrange(range.upperBound..<broken.index(range.upperBound, offsetBy: after.count), with: wrong.decimalString)
            let brokenFile = directory.appendingPathComponent("broken.journal").path
            try broken.write(toFile: brokenFile, atomically: true, encoding: .utf8)
            let (brokenStatus, _) = try Hledger.run(["-f", brokenFile, "check", "-s"])
            #expect(brokenStatus != 0, "hledger must refuse a wrong balance assertion")
        }
    }
}

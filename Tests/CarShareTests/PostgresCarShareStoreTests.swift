@testable import CarShare
import CarShareCore
import Foundation
import HubCore
import HubTestSupport
import PostgresNIO
import Shared
import Testing

/// The PostgreSQL store's own guarantees, against a real PostgreSQL 15 server: the ledger's
/// triggers refuse what the code never does, and two hub processes (two pools on one database)
/// writing at once neither double-book a car nor replay a payment twice.
@Suite struct PostgresCarShareStoreTests {
    @Test func postedRowsCannotBeUpdatedDeletedOrTruncatedEvenWithSQL() async throws {
        try await withStoreFixture(.postgres) { fixture in
            _ = try await fixture.seed()
            _ = try await fixture.carShare.closeMonth("2026-02", by: Fixture.staff, at: Fixture.now)
            let before = try await fixture.counts()
            for sql in ["UPDATE carshare_entry SET label = 'x' WHERE number = 1", "DELETE FROM carshare_entry WHERE number = 1",
                        "UPDATE carshare_entry_line SET amount_cents = 1 WHERE entry_number = 1", "DELETE FROM carshare_entry_line WHERE entry_number = 1",
                        "DELETE FROM carshare_entry_line", "TRUNCATE carshare_entry_line", "TRUNCATE carshare_entry CASCADE"] {
                do {
                    try await fixture.execute(sql)
                    Issue.record("\(sql) was allowed")
                } catch {
                    #expect(HubPostgres.sqlState(error) == "P0001", "\(sql): \(error)")
                    #expect(HubPostgres.serverMessage(error) == CarShareSchema.immutableMessage, "\(sql)")
                    #expect((PostgresCarShareStore.hubError(error) as? HubError)?.code == "posted_entry_immutable")
                }
            }
            #expect(try await fixture.counts() == before)
            // A closed month stays closed.
            await #expect(throws: (any Error).self) { try await fixture.execute("DELETE FROM carshare_closed_month") }
            await #expect(throws: (any Error).self) { try await fixture.execute("UPDATE carshare_closed_month SET month = '2026-01'") }
        }
    }

    @Test func theServerRefusesAnEntryThatBreaksTheLedgerWrittenBehindTheStoresBack() async throws {
        try await withStoreFixture(.postgres) { fixture in
            _ = try await fixture.seed()
            let entries = try await fixture.allEntries()
            let last = try #require(entries.last)
            let next = last.number + 1
            let columns = "INSERT INTO carshare_entry (number, date, kind, label, posted_at, posted_by, previous_hash, hash)"
            let refused: [(String, String)] = [
                // A number that skips one.
                ("\(columns) VALUES (\(next + 1), '2026-03-10', 'manual', 'x', 0, 'sql', '\(last.hash)', 'h')", "entry_number_gap"),
                // A link to anything but the last entry's hash.
                ("\(columns) VALUES (\(next), '2026-03-10', 'manual', 'x', 0, 'sql', 'forged', 'h')", "hash_chain_broken"),
                // An entry with no lines: unbalanced at commit.
                ("\(columns) VALUES (\(next), '2026-03-10', 'manual', 'x', 0, 'sql', '\(last.hash)', 'h')", "entry_unbalanced"),
            ]
            for (sql, message) in refused {
                do {
                    try await fixture.execute(sql)
                    Issue.record("\(sql) was allowed")
                } catch {
                    #expect(HubPostgres.serverMessage(error)?.hasPrefix(message) == true, "\(sql): \(String(reflecting: error))")
                }
            }
            _ = try await fixture.carShare.closeMonth("2026-02", by: Fixture.staff, at: Fixture.now)
            do {
                try await fixture.execute("\(columns) VALUES (\(next), '2026-02-10', 'manual', 'x', 0, 'sql', '\(last.hash)', 'h')")
                Issue.record("an entry in a closed month was allowed")
            } catch {
                #expect(HubPostgres.serverMessage(error)?.hasPrefix("month_closed") == true, "\(String(reflecting: error))")
            }
            #expect(try await fixture.allEntries() == entries)
            #expect(try await fixture.verifyNow().ok)
        }
    }

    static func request(_ seed: Fixture.Seed, _ index: Int) -> NewBooking {
        // Every slot overlaps every other: they all contain 14:30-15:00.
        let begin = Fixture.at(14).adding(seconds: Int64(index % 4) * 600)
        return NewBooking(vehicle: seed.vehicle, rider: [seed.alice, seed.bob, seed.chloe][index % 3], start: begin, end: begin.adding(seconds: 3600))
    }

    /// Many requests for the same car and overlapping slots at once, through two pools standing for
    /// two hub processes: one booking, and every other request gets the conflict SQLite gives.
    @Test func concurrentBookingsOfOneCarFromTwoProcessesGiveOneBookingAndTheSQLiteConflict() async throws {
        // What SQLite answers a request that meets booking 1.
        let expected = try await withStoreFixture(.sqlite) { fixture in
            let seed = try await fixture.seed()
            _ = try await fixture.carShare.createBooking(Self.request(seed, 0), by: Fixture.staff, at: Fixture.now)
            do {
                _ = try await fixture.carShare.createBooking(Self.request(seed, 1), by: Fixture.staff, at: Fixture.now)
                return nil as HubError?
            } catch let error as HubError {
                return error
            }
        }
        #expect(expected?.code == "vehicle_overlap")
        let location = try await PostgresFixture.location()
        let anchors = LedgerAnchorFile(path: try TestSupport.temporaryDirectory("carshare-pg").appendingPathComponent("ledger.anchors").path, key: nil)
        try await withPostgres(location, maximumConnections: 8) { first in
            try await withPostgres(location, maximumConnections: 8) { second in
                let processes = [PostgresCarShareStore(database: first, anchors: anchors), PostgresCarShareStore(database: second, anchors: anchors)]
                let seed = try await Fixture.seed(processes[0])
                let results = await withTaskGroup(of: Result<BookingView, HubError>.self) { group in
                    for index in 0..<24 {
                        group.addTask {
                            do {
                                return .success(try await processes[index % 2].createBooking(Self.request(seed, index), by: Fixture.staff, at: Fixture.now))
                            } catch let error as HubError {
                                return .failure(error)
                            } catch {
                                return .failure(HubError(.unavailable, code: "unexpected", message: String(reflecting: error)))
                            }
                        }
                    }
                    return await group.reduce(into: []) { $0.append($1) }
                }
                let won = results.compactMap { try? $0.get() }
                #expect(won.count == 1)
                let errors = results.compactMap { result -> HubError? in if case .failure(let error) = result { return error } else { return nil } }
                #expect(errors.count == 23)
                for error in errors {
                    #expect(error.kind == expected?.kind && error.code == expected?.code && error.field == expected?.field, "\(error)")
                    // The message names the booking that won and its slot (which request won is the race's).
                    if let winner = won.first {
                        #expect(error.message == BookingError.vehicleOverlap(booking: winner.id, span: TimeSpan(start: winner.start, end: winner.end)!).hubError.message)
                    }
                }
                let bookings = try await processes[1].bookings(vehicle: seed.vehicle, from: nil, to: nil, by: Fixture.staff)
                #expect(bookings.map(\.id) == won.map(\.id))
            }
        }
    }

    /// The same payment and the same trip log sent at once through both processes (a retry racing
    /// its first attempt): booked once, every other answer is the replay of the first.
    @Test func concurrentRetriesOfAPaymentAndATripFromTwoProcessesBookOnce() async throws {
        let location = try await PostgresFixture.location()
        let anchors = LedgerAnchorFile(path: try TestSupport.temporaryDirectory("carshare-pg").appendingPathComponent("ledger.anchors").path, key: nil)
        try await withPostgres(location, maximumConnections: 6) { first in
            try await withPostgres(location, maximumConnections: 6) { second in
                let processes = [PostgresCarShareStore(database: first, anchors: anchors), PostgresCarShareStore(database: second, anchors: anchors)]
                let seed = try await Fixture.seed(processes[0])
                let payment = NewPayment(idempotencyKey: "carnet-3-ligne-7", member: seed.alice, amountCents: Cents(1200), method: .cash)
                let payments = try await withThrowingTaskGroup(of: (payment: PaymentView, replayed: Bool).self) { group in
                    for index in 0..<12 { group.addTask { try await processes[index % 2].recordPayment(payment, by: Fixture.staff, at: Fixture.now) } }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(payments.filter { !$0.replayed }.count == 1)
                #expect(Set(payments.map(\.payment.entry)).count == 1 && Set(payments.map(\.payment.receipt)) == [1])
                let trip = NewTrip(idempotencyKey: "feuille-12", vehicle: seed.vehicle, driver: seed.jean, unbookedReason: "urgence", riders: [seed.bob],
                                   start: Fixture.at(8), end: Fixture.at(9), startOdometerKm: 12_000, endOdometerKm: 12_030, batteryStartPct: 90, batteryEndPct: 70)
                let trips = try await withThrowingTaskGroup(of: (trip: TripView, replayed: Bool).self) { group in
                    for index in 0..<12 { group.addTask { try await processes[index % 2].logTrip(trip, by: Fixture.staff, at: Fixture.now) } }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(trips.filter { !$0.replayed }.count == 1)
                #expect(Set(trips.map(\.trip.id)).count == 1)
                let list = try await processes[1].tripList(from: LocalDate(year: 2026, month: 3, day: 1)!, to: LocalDate(year: 2026, month: 3, day: 31)!, by: Fixture.staff)
                #expect(list.trips.count == 1)
                #expect(try await processes[0].verify(by: Fixture.staff).ok)
            }
        }
    }
}

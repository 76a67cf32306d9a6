@testable import CarShare
import CarShareCore
import Foundation
import HubCore
import HubTestSupport
import Shared
import Testing

/// One scenario through the SQLite and the PostgreSQL store: every answer, for every role,
/// compared value by value, errors included (kind, code, field and message).
@Suite struct BothStoresTests {
    static let march12 = LocalDate(year: 2026, month: 3, day: 12)!
    static let roles = [Fixture.staff, Fixture.association, Fixture.otherAssociation, Fixture.resident, Fixture.otherResident, Fixture.driver, Fixture.otherDriver]

    /// An answer as text: the JSON of the value, or the error.
    static func answer<T: Encodable>(_ body: () async throws -> T) async -> String {
        do {
            return String(decoding: try HubJSON.encoder.encode(try await body()), as: UTF8.self)
        } catch let error as HubError {
            return "error \(error.kind) \(error.code) \(error.field ?? "-"): \(error.message)"
        } catch {
            return "unexpected \(String(reflecting: error))"
        }
    }

    /// Members of two estates, bookings, a ride, payments, a charge, a grant, a correction, a
    /// closed month; then what each role reads and what each is refused.
    static func scenario(_ fixture: any StoreFixture) async throws -> [String] {
        let store = fixture.carShare
        let now = Fixture.now
        let seed = try await fixture.seed()
        var answers: [String] = []
        func record<T: Encodable>(_ label: String, _ body: () async throws -> T) async {
            answers.append("\(label): \(await answer(body))")
        }
        await record("chloe pays") { try await store.recordPayment(NewPayment(idempotencyKey: "chloe-1", member: seed.chloe, amountCents: Cents(1500), method: .cash, on: march12), by: Fixture.staff, at: now).payment }
        await record("alice pays") { try await store.recordPayment(NewPayment(idempotencyKey: "alice-1", member: seed.alice, amountCents: Cents(800), method: .cash, on: march12), by: Fixture.driver, at: now).payment }
        await record("alice retries") { try await store.recordPayment(NewPayment(idempotencyKey: "alice-1", member: seed.alice, amountCents: Cents(800), method: .cash, on: march12), by: Fixture.driver, at: now).replayed }
        await record("key reused") { try await store.recordPayment(NewPayment(idempotencyKey: "alice-1", member: seed.alice, amountCents: Cents(900), method: .cash, on: march12), by: Fixture.driver, at: now).payment }
        await record("grant") { try await store.postManual(NewManualEntry(on: march12, label: "Subvention de la ville", lines: [
            LineInput(account: "512", amountCents: Cents(50_000)), LineInput(account: "741", amountCents: Cents(-50_000))]), by: Fixture.staff, at: now) }
        await record("booking") { try await store.createBooking(NewBooking(vehicle: seed.vehicle, rider: seed.alice, start: Fixture.at(14), end: Fixture.at(15), driver: seed.jean), by: Fixture.staff, at: now) }
        await record("overlap") { try await store.createBooking(NewBooking(vehicle: seed.vehicle, rider: seed.bob, start: Fixture.at(14, 30), end: Fixture.at(16)), by: Fixture.association, at: now) }
        await record("other estate") { try await store.createBooking(NewBooking(vehicle: seed.vehicle, rider: seed.chloe, start: Fixture.at(16), end: Fixture.at(17)), by: Fixture.association, at: now) }
        await record("bob books") { try await store.createBooking(NewBooking(vehicle: seed.vehicle, rider: seed.bob, start: Fixture.at(16, day: 14), end: Fixture.at(17, day: 14), purpose: "médecin"), by: Fixture.otherResident, at: now) }
        await record("edit stale") { try await store.editBooking(2, BookingEdit(version: 7, start: Fixture.at(10, day: 14), end: Fixture.at(11, day: 14)), by: Fixture.staff, at: now) }
        await record("edit") { try await store.editBooking(2, BookingEdit(version: 1, start: Fixture.at(10, day: 14), end: Fixture.at(11, day: 14)), by: Fixture.otherResident, at: now) }
        await record("no show") { try await store.changeStatus(2, BookingStatusChange(version: 2, status: .cancelled, reason: "malade"), by: Fixture.otherResident, at: now) }
        await record("ride") { try await store.logTrip(NewTrip(idempotencyKey: "ride-1", booking: 1, start: Fixture.at(14), end: Fixture.at(15), startOdometerKm: 12_000,
                                                               endOdometerKm: 12_018, batteryStartPct: 80, batteryEndPct: 70), by: Fixture.driver, at: now).trip }
        await record("ride again") { try await store.logTrip(NewTrip(idempotencyKey: "ride-1", booking: 1, start: Fixture.at(14), end: Fixture.at(15), startOdometerKm: 12_000,
                                                                     endOdometerKm: 12_018, batteryStartPct: 80, batteryEndPct: 70), by: Fixture.driver, at: now).replayed }
        await record("charge") { try await store.logCharging(NewCharging(vehicle: seed.vehicle, at: Fixture.at(18), energyWh: WattHours(20_000), costCents: Cents(500), method: .cash), by: Fixture.staff, at: now) }
        await record("deposit") { try await store.recordDeposit(NewDeposit(kind: .cash, amountCents: Cents(1000)), by: Fixture.staff, at: now) }
        await record("refund") { try await store.recordRefund(NewRefund(member: seed.chloe, amountCents: Cents(300), method: .transfer), by: Fixture.staff, at: now) }
        await record("correction") { try await store.correct(NewCorrection(entry: 5, reason: "montant", lines: [
            LineInput(account: "512", amountCents: Cents(40_000)), LineInput(account: "741", amountCents: Cents(-40_000))]), by: Fixture.staff, at: now) }
        await record("note") { try await store.addOdometerNote(vehicle: seed.vehicle, NewOdometerNote(fromKm: 12_018, toKm: 12_030, note: "essai"), by: Fixture.association, at: now) }
        await record("driver update") { try await store.updateDriver(seed.paul, DriverUpdate(version: 1, licenceCheckedOn: nil, trainedOn: nil, active: false, phone: nil), by: Fixture.staff) }
        await record("close") { try await store.closeMonth("2026-02", by: Fixture.staff, at: now) }
        await record("in closed month") { try await store.postManual(NewManualEntry(on: LocalDate(year: 2026, month: 2, day: 3)!, label: "x", lines: [
            LineInput(account: "512", amountCents: Cents(1)), LineInput(account: "741", amountCents: Cents(-1))]), by: Fixture.staff, at: now) }
        let march = (LocalDate(year: 2026, month: 3, day: 1)!, LocalDate(year: 2026, month: 3, day: 31)!)
        for identity in roles {
            let who = identity.name
            await record("\(who) members") { try await store.members(by: identity) }
            await record("\(who) member chloe") { try await store.member(seed.chloe, by: identity) }
            await record("\(who) drivers") { try await store.drivers(by: identity) }
            await record("\(who) vehicles") { try await store.vehicles(by: identity) }
            await record("\(who) bookings") { try await store.bookings(vehicle: nil, from: nil, to: nil, by: identity) }
            await record("\(who) booking 1") { try await store.booking(1, by: identity) }
            await record("\(who) contacts") { try await store.riderContacts(bookings: [1, 2, 3], by: identity).sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.name) \($0.value.phone)" } }
            await record("\(who) balances") { try await store.balances(by: identity) }
            await record("\(who) statement alice") { try await store.statement(member: seed.alice, by: identity) }
            await record("\(who) statement chloe") { try await store.statement(member: seed.chloe, by: identity) }
            await record("\(who) cash book") { try await store.cashBook(from: march.0, to: march.1, by: identity) }
            await record("\(who) income") { try await store.incomeStatement(month: "2026-03", by: identity) }
            await record("\(who) trips") { try await store.tripList(from: march.0, to: march.1, by: identity) }
            await record("\(who) prefect") { try await store.prefectReport(year: 2026, by: identity) }
            await record("\(who) journal") { try await store.journal(by: identity) }
            await record("\(who) entries") { try await store.entries(from: march.0, to: march.1, by: identity) }
            await record("\(who) entry 1") { try await store.entryView(1, by: identity) }
            await record("\(who) head") { try await store.ledgerHead(month: "2026-03", by: identity) }
            await record("\(who) verify") { try await store.verify(by: identity).ok }
            await record("\(who) logbook") { try await store.logbook(vehicle: seed.vehicle, month: "2026-03", by: identity) }
            await record("\(who) activity") { try await store.activityReport(from: march.0, to: march.1, by: identity) }
        }
        return answers
    }

    @Test func everyAnswerToEveryRoleIsTheSameOnSQLiteAndPostgreSQL() async throws {
        let sqlite = try await withStoreFixture(.sqlite) { try await Self.scenario($0) }
        let postgres = try await withStoreFixture(.postgres) { try await Self.scenario($0) }
        #expect(sqlite.count == postgres.count)
        for (expected, got) in zip(sqlite, postgres) { #expect(got == expected) }
        // The scenario is not vacuous: some writes were refused, some reads too.
        #expect(sqlite.filter { $0.contains(": error ") }.count > 10)
        #expect(!sqlite.contains { $0.contains("unexpected") }, "\(sqlite.filter { $0.contains("unexpected") })")
    }
}

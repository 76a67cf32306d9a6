import CarShare
import CarShareCore
import EnergyCore
import EnergyHub
import Foundation
import HubCore
import HubStatements
import HubTestSupport
import Shared
import Testing
@testable import HubApp

/// A small estate's October 2026 for the building and association statements (the preparation of
/// `StatementsExportTests`, widened): readings every 30 minutes through the real ingest processor,
/// the 25th with 50 slots (the clocks go back); OUT-A-03's meter silent from the 10th; two pv-a
/// readings missing on the 5th (three slots estimated); refused messages (two unreadable from m-02,
/// one "nan" from pv-a); OUT-B with two households and no readings at all; a Le Portel dwelling for
/// the other estate. The car share: Bob (OUT-A-02) bought his 2026 membership in September and pays
/// it on 1 November; Alice (OUT-A-01) buys hers on 1 October, rides on the 14th and pays 10 € in
/// cash; Carole (Le Portel) buys one on 2 October; a charging run on the 20th paid 6 € from the cash
/// box; October is closed on 2 November.
struct EstateFixture {
    static let registry = """
        estate;building;dwelling;device;kind;format;since;tariff
        Outreau;OUT-A;OUT-A-01;m-01;meter;canonical;2026-01-01;edf-bleu-hphc 11:00-17:00
        Outreau;OUT-A;OUT-A-02;m-02;meter;canonical;2026-01-01;
        Outreau;OUT-A;OUT-A-03;m-03;meter;canonical;2026-01-01;
        Outreau;OUT-A;;pv-a;pv;canonical;2026-01-01;
        Outreau;OUT-B;OUT-B-01;m-11;meter;canonical;2026-01-01;
        Outreau;OUT-B;OUT-B-02;m-12;meter;canonical;2026-01-01;
        Outreau;OUT-B;;pv-b;pv;canonical;2026-01-01;
        Le Portel;POR-A;POR-A-01;m-21;meter;canonical;2026-01-01;
        """
    /// 2026-09-30T22:00Z: midnight on 1 October in Paris; the month ends 1490 half-hours later (31 days and the extra hour).
    static let start = Instant.parseRFC3339("2026-09-30T22:00:00Z")!
    static let monthEnd = Instant.parseRFC3339("2026-10-31T23:00:00Z")!
    static let now = Instant.parseRFC3339("2026-11-02T08:00:00Z")!
    static let m03SilentAfter = Instant.parseRFC3339("2026-10-10T12:00:00Z")!
    static let pvMissing: Set<Instant> = [Instant.parseRFC3339("2026-10-05T10:00:00Z")!, Instant.parseRFC3339("2026-10-05T10:30:00Z")!]

    /// What pv-a's index rises by over the half-hour ending at step `step` after `start`: the
    /// generator below and the hand check of the month's production both use it.
    static func pvIncrease(step: Int) -> Int64 {
        let hour = (step % 48) / 2
        let day = step / 48
        return (9...16).contains(hour) ? Int64(200 + (hour - 9) * (16 - hour) * 20 + day) : 0
    }

    let settings: HubSettings
    let database: HubDatabase
    let configuration: HubConfiguration
    let carShare: SQLiteCarShareStore
    let alice: Int64, bob: Int64, carole: Int64

    var export: StatementsExport {
        let statements = settings.statements
        return StatementsExport(registry: SQLiteRegistryStore(database: database, configuration: configuration.energy),
                                figures: EnergyReports(database: database, configuration: configuration.energy),
                                carShare: carShare, landlord: statements.landlord, association: { statements.association(of: $0) })
    }

    init() async throws {
        let directory = try TestSupport.temporaryDirectory("estate-statements")
        var settings = HubSettings()
        settings.database.path = directory.appendingPathComponent("hub.sqlite").path
        settings.database.synchronous = .normal
        settings.statements.associations = [.init(estate: "Outreau", name: "Association des locataires d'Outreau"),
                                            .init(estate: "Le Portel", name: "Les voisins du Portel")]
        self.settings = settings
        database = try HubSchema.open(settings)
        configuration = try settings.configuration()
        _ = try await SQLiteRegistryStore(database: database, configuration: configuration.energy).importRegistry(csv: Data(Self.registry.utf8), by: .testStaff)

        let processor = try IngestProcessor(settings: IngestSettings(), store: SQLiteReadingStore(database: database))
        try processor.loadState(at: Instant.parseRFC3339("2026-09-01T00:00:00Z")!)
        let slots = 31 * 48 + 2 + 2
        var index: [String: Int64] = ["m-01": 1_000_000, "m-02": 2_000_000, "m-03": 3_000_000, "pv-a": 500_000]
        for day in 0..<((slots + 47) / 48) {
            let receivedAt = Self.start.adding(seconds: Int64((day + 1) * 86_400))
            for device in ["m-01", "m-02", "m-03", "pv-a"] {
                var readings: [String] = []
                for step in (day * 48)..<min(slots, (day + 1) * 48) {
                    let instant = Self.start.adding(seconds: Int64(step) * 1800)
                    let hour = (step % 48) / 2
                    let increase: Int64 = switch device {
                    case "pv-a": Self.pvIncrease(step: step)
                    case "m-01": 150 + Int64(hour % 5) * 10
                    case "m-02": 90 + Int64(day % 4) * 5
                    default: 120
                    }
                    index[device]! += increase
                    if device == "m-03" && instant > Self.m03SilentAfter { continue }
                    // The index keeps rising while a reading is missing: the next one carries the energy.
                    if device == "pv-a" && Self.pvMissing.contains(instant) { continue }
                    readings.append("{\"ts\":\"\(instant.rfc3339)\",\"energy_wh\":\(index[device]!)}")
                }
                guard !readings.isEmpty else { continue }
                _ = try processor.process([IncomingMessage(topic: "meters/\(device)/reading", payload: Array(("[" + readings.joined(separator: ",") + "]").utf8),
                                                           receivedAt: receivedAt)])
            }
        }
        // Refused messages, received in October: two unreadable ones from m-02, a failed reading from pv-a.
        let refusedAt = Instant.parseRFC3339("2026-10-12T09:00:00Z")!
        for (device, payload) in [("m-02", "{\"ts\":\"2026-10-12T08:30:00Z\",\"energy_wh\":"), ("m-02", "not json"),
                                  ("pv-a", "{\"ts\":\"2026-10-12T08:30:00Z\",\"energy_wh\":\"nan\"}")] {
            _ = try processor.process([IncomingMessage(topic: "meters/\(device)/reading", payload: Array(payload.utf8), receivedAt: refusedAt)])
        }
        try SavingsUpkeep(database: database, configuration: configuration.energy).bringUpToDate(now: Self.now)

        let store = SQLiteCarShareStore(database: database, settings: configuration.carshare)
        carShare = store
        let staff = Identity.testStaff
        func at(_ text: String) -> Instant { Instant.parseRFC3339(text)! }
        func on(_ day: Int, _ month: Int = 10) -> LocalDate { LocalDate(year: 2026, month: month, day: day)! }
        let vehicle = try await store.addVehicle(NewVehicle(name: "Zoé", plate: "GA-123-BC", batteryCapacityWh: WattHours(52_000), initialOdometerKm: 12_000), by: staff)
        let checked = LocalDate(year: 2026, month: 1, day: 5)!
        let driver = try await store.addDriver(NewDriver(name: "Jean", licenceCheckedOn: checked, trainedOn: checked), by: staff)
        bob = try await store.addMember(NewMember(name: "Bob Leroy", dwelling: "OUT-A-02"), by: staff, at: at("2026-09-15T08:00:00Z")).id
        _ = try await store.buyMembership(member: bob, NewMembership(on: on(15, 9)), by: staff, at: at("2026-09-15T08:00:00Z"))
        alice = try await store.addMember(NewMember(name: "Alice Martin", dwelling: "OUT-A-01"), by: staff, at: at("2026-10-01T08:00:00Z")).id
        _ = try await store.buyMembership(member: alice, NewMembership(on: on(1)), by: staff, at: at("2026-10-01T08:00:00Z"))
        carole = try await store.addMember(NewMember(name: "Carole Petit", dwelling: "POR-A-01"), by: staff, at: at("2026-10-02T08:00:00Z")).id
        _ = try await store.buyMembership(member: carole, NewMembership(on: on(2)), by: staff, at: at("2026-10-02T08:00:00Z"))
        let ride = at("2026-10-14T08:00:00Z")
        _ = try await store.logTrip(NewTrip(idempotencyKey: "ride-1", vehicle: vehicle.id, driver: driver.id, unbookedReason: "appel du matin", riders: [alice],
                                            start: ride, end: ride.adding(seconds: 3600), startOdometerKm: 12_000, endOdometerKm: 12_018,
                                            batteryStartPct: 90, batteryEndPct: 84), by: staff, at: ride.adding(seconds: 3600))
        _ = try await store.recordPayment(NewPayment(idempotencyKey: "pay-1", member: alice, amountCents: Cents(1_000), method: .cash, on: on(14)),
                                          by: staff, at: ride.adding(seconds: 3700))
        let charging = at("2026-10-20T13:00:00Z")
        _ = try await store.logTrip(NewTrip(idempotencyKey: "charge-1", vehicle: vehicle.id, driver: driver.id, start: charging, end: charging.adding(seconds: 3600),
                                            startOdometerKm: 12_018, endOdometerKm: 12_026, batteryStartPct: 40, batteryEndPct: 95, kind: .chargingRun,
                                            purpose: "borne de la mairie", chargedWh: 30_000, chargeCostCents: Cents(600), chargeMethod: .cash),
                                    by: staff, at: charging.adding(seconds: 3600))
        _ = try await store.recordPayment(NewPayment(idempotencyKey: "pay-2", member: bob, amountCents: Cents(800), method: .cash, on: on(1, 11)),
                                          by: staff, at: at("2026-11-01T09:00:00Z"))
        _ = try await store.closeMonth("2026-09", by: staff, at: Self.now)
        _ = try await store.closeMonth("2026-10", by: staff, at: Self.now)
    }
}

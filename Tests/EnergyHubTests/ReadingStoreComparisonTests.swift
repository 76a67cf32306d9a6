import Foundation
import HubCore
import HubTestSupport
import Shared
import Testing
@testable import EnergyCore
@testable import EnergyHub

/// One seeded scenario through both stores, compared value by value; and the writer's cost on
/// each, printed (no timing assertion).
@Suite struct ReadingStoreComparisonTests {
    /// What one run of a scenario left in a store.
    struct Outcome: Equatable, Sendable {
        var report = BatchReport()
        var readings: [StoredRow] = []
        var segments: [String] = []
        var changes: [String] = []
        var quarantine: [QuarantineEntry] = []
        var periods: [InstallationPeriod] = []
        var route: [Reading] = []
    }

    static func registryCSV(devices: Int, prefix: String = "dev") -> String {
        TestSupport.samplesRegistryCSV + "\n" + (0..<devices).map { index in
            let name = String(format: "%@-%04d", prefix, index)
            return "Outreau;OUT-B;OUT-B-\(name);\(name);meter;canonical;2025-01-01;;"
        }.joined(separator: "\n") + "\n"
    }

    /// Readings every five minutes from 40 devices across the end of a UTC month, delivered
    /// mostly in order with late ones, duplicates, conflicting duplicates, genuine resets,
    /// implausible jumps, readings buffered in arrays, and hostile payloads (IngestFuzzTests's
    /// mutations of the real samples), in batches of random size.
    static func scenario(seed: UInt64, devices: Int = 40, readingsPerDevice: Int = 100) throws -> [[IncomingMessage]] {
        var random = IngestFuzzTests.Generator(state: seed)
        let start = Instant.parseRFC3339("2026-10-31T20:00:00Z")!
        let samples = try IngestFuzzTests.samples()
        var messages: [IncomingMessage] = []
        func canonical(_ instant: Instant, _ energy: Int64) -> String { "{\"ts\":\"\(instant.rfc3339)\",\"energy_wh\":\(energy)}" }
        for device in 0..<devices {
            let topic = String(format: "meters/dev-%04d/reading", device)
            var energy = Int64(1_000_000 + device * 1000)
            var pending: [(Instant, Int64)] = []
            for index in 0..<readingsPerDevice {
                let instant = start.adding(seconds: Int64(index * 300))
                energy += Int64.random(in: 0...200, using: &random)
                if device % 13 == 5 && index == readingsPerDevice / 2 { energy = 40 }  // a meter replaced: a genuine reset
                var value = energy
                if Int.random(in: 0..<150, using: &random) == 0 { value += 50_000_000 }  // a corrupted jump
                var received = instant.adding(seconds: Int64.random(in: 0...20, using: &random))
                if Int.random(in: 0..<20, using: &random) == 0 { received = received.adding(seconds: Int64.random(in: 600...7200, using: &random)) }  // late
                // Some boxes buffer three readings and publish them as one array.
                if device % 7 == 3 {
                    pending.append((instant, value))
                    if pending.count == 3 {
                        let payload = "[" + pending.reversed().map { canonical($0.0, $0.1) }.joined(separator: ",") + "]"
                        messages.append(IncomingMessage(topic: topic, payload: Array(payload.utf8), receivedAt: received))
                        pending = []
                    }
                    continue
                }
                let message = IncomingMessage(topic: topic, payload: Array(canonical(instant, value).utf8), receivedAt: received)
                messages.append(message)
                switch Int.random(in: 0..<100, using: &random) {
                case 0..<3:  // a duplicate, delivered again later
                    messages.append(IncomingMessage(topic: topic, payload: message.payload, receivedAt: received.adding(seconds: 30)))
                case 3:  // a conflicting duplicate
                    messages.append(IncomingMessage(topic: topic, payload: Array(canonical(instant, value + 7).utf8), receivedAt: received.adding(seconds: 45)))
                case 4, 5:  // hostile
                    let (hostileTopic, payload) = IngestFuzzTests.input(samples, using: &random)
                    messages.append(IncomingMessage(topic: hostileTopic, payload: payload, receivedAt: received.adding(seconds: 1)))
                case 6:  // a large payload, kept cut
                    var payload = [UInt8](repeating: UInt8(ascii: "{"), count: Int.random(in: 4000...9000, using: &random))
                    payload[0] = UInt8.random(in: 0...255, using: &random)
                    messages.append(IncomingMessage(topic: topic, payload: payload, receivedAt: received.adding(seconds: 2)))
                default:
                    break
                }
            }
        }
        // Delivered in receive order (stable), in batches of 1 to 300 messages.
        messages = messages.enumerated().sorted { ($0.element.receivedAt, $0.offset) < ($1.element.receivedAt, $1.offset) }.map(\.element)
        var batches: [[IncomingMessage]] = []
        var index = 0
        while index < messages.count {
            let end = min(messages.count, index + Int.random(in: 1...300, using: &random))
            batches.append(Array(messages[index..<end]))
            index = end
        }
        return batches
    }

    static func run(_ backend: StoreBackend, _ batches: [[IncomingMessage]], devices: Int) async throws -> Outcome {
        try await StoreFixture.run(backend, registryCSV: registryCSV(devices: devices), at: batches[0][0].receivedAt) { store in
            var result = Outcome()
            for batch in batches { result.report.add(try await store.process(batch)) }
            try await store.fold()
            result.readings = try await store.readings()
            result.segments = try await store.segments()
            result.changes = try await store.changes()
            result.quarantine = try await store.quarantine().map { entry in
                var entry = entry
                entry.id = nil
                return entry
            }
            for device in ["dev-0005", "dev-0018", "box-7", "041876000117"] {
                result.periods += try await store.store.installationPeriods(device: device)
            }
            let zone = try LocalTimeZone(identifier: "Europe/Paris")
            result.route = try await store.store.readings(device: "dev-0005", from: Instant(millisecondsSince1970: 0), to: Instant(millisecondsSince1970: Int64.max),
                                                           limit: 10_000, by: Identity(name: "res", role: .resident, dwelling: "OUT-B-dev-0005"), zone: zone)
            return result
        }
    }

    @Test func oneScenarioThroughBothStoresLeavesTheSameRows() async throws {
        let seed = ProcessInfo.processInfo.environment["HUB_FUZZ_SEED"].flatMap(UInt64.init) ?? 0x5EED_0011
        let batches = try Self.scenario(seed: seed)
        let sqlite = try await Self.run(.sqlite, batches, devices: 40)
        let postgres = try await Self.run(.postgres, batches, devices: 40)
        // The scenario has what it claims, then each part is compared on its own (a readable failure).
        #expect(sqlite.readings.count > 3000, "seed \(seed)")
        #expect(sqlite.report.resets >= 3 && sqlite.report.duplicates > 0 && sqlite.report.truncatedPayloads > 0)
        #expect(sqlite.report.quarantined[.conflictingDuplicate, default: 0] > 0 && sqlite.report.quarantined[.implausibleJump, default: 0] > 0)
        #expect(Set(sqlite.readings.map { UTCMonth.key($0.instant) }).count == 2, "the readings span two months")
        #expect(!sqlite.changes.isEmpty && !sqlite.route.isEmpty && sqlite.periods.count == 4)
        #expect(sqlite.report == postgres.report, "seed \(seed)")
        #expect(sqlite.readings == postgres.readings, "seed \(seed)")
        #expect(sqlite.segments == postgres.segments, "seed \(seed)")
        #expect(sqlite.changes == postgres.changes, "seed \(seed)")
        #expect(sqlite.quarantine == postgres.quarantine, "seed \(seed)")
        #expect(sqlite.periods == postgres.periods)
        #expect(sqlite.route == postgres.route)
    }

    /// Several hub processes share one PostgreSQL server and the broker hands each a share of the
    /// meters' messages: a device's readings reach them in turn. Three writers taking the batches
    /// in turn (the order of delivery kept) store exactly what one writer stores: each batch first
    /// takes in what the others wrote of its devices (a later reading, a reading held aside as a
    /// possible reset), so resets confirmed across writers, duplicates and jumps come out the same.
    @Test func threeWritersTakingTurnsStoreWhatOneWriterStores() async throws {
        let seed = ProcessInfo.processInfo.environment["HUB_FUZZ_SEED"].flatMap(UInt64.init) ?? 0x5EED_0011
        let batches = try Self.scenario(seed: seed)
        let alone = try await Self.run(.sqlite, batches, devices: 40)
        let shared = try await StoreFixture.run(.postgres, registryCSV: Self.registryCSV(devices: 40), at: batches[0][0].receivedAt) { fixture in
            let postgres = try #require(fixture.postgres)
            var writers = [fixture.processor]
            var stores: [PostgresReadingStore] = []
            for _ in 1..<3 {
                let store = PostgresReadingStore(postgres: postgres)
                let processor = try IngestProcessor(settings: fixture.settings, store: store)
                try await fixture.onThread { try processor.loadState(at: batches[0][0].receivedAt) }
                stores.append(store)
                writers.append(processor)
            }
            var result = Outcome()
            for (index, batch) in batches.enumerated() {
                let writer = writers[index % writers.count]
                result.report.add(try await fixture.onThread { try writer.process(batch) })
            }
            for store in stores { await BlockingWork.run { store.close() } }
            result.readings = try await fixture.readings()
            result.segments = try await fixture.segments()
            result.quarantine = try await fixture.quarantine().map { entry in
                var entry = entry
                entry.id = nil
                return entry
            }
            return result
        }
        #expect(alone.report.resets >= 3 && alone.report.released > 0, "the scenario confirms resets")
        #expect(alone.report == shared.report, "seed \(seed)")
        #expect(alone.readings == shared.readings, "seed \(seed)")
        #expect(alone.segments == shared.segments, "seed \(seed)")
        #expect(alone.quarantine.map(\.reason) == shared.quarantine.map(\.reason), "seed \(seed)")
        #expect(alone.quarantine.map(\.releasedAt) == shared.quarantine.map(\.releasedAt), "seed \(seed)")
    }

    /// The writer alone (no MQTT): 200,000 readings from 2,000 devices, one a minute each, in
    /// batches of `maxBatch` through `IngestProcessor.process` on a thread of its own (SQLite
    /// folding as the service does); then a month of one device's readings through the route.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["HUB_BENCH_TESTS"] == "1", "a benchmark: set HUB_BENCH_TESTS=1 and run it alone")) func theWritersCostOnBothStores() async throws {
        let devices = 2000, rounds = 100
        let start = Instant.parseRFC3339("2026-11-02T00:00:00Z")!
        var messages: [IncomingMessage] = []
        messages.reserveCapacity(devices * rounds)
        for round in 0..<rounds {
            let instant = start.adding(seconds: Int64(round * 60))
            for device in 0..<devices {
                let payload = "{\"ts\":\"\(instant.rfc3339)\",\"energy_wh\":\(1_000_000 + round * 20 + device)}"
                messages.append(IncomingMessage(topic: String(format: "meters/dev-%04d/reading", device), payload: Array(payload.utf8), receivedAt: instant))
            }
        }
        // One device's October, a reading a minute, published in batches of a day.
        let october = Instant.parseRFC3339("2026-10-01T00:00:00Z")!
        let month = (0..<31).map { day in
            (0..<1440).map { minute in
                let instant = october.adding(seconds: Int64((day * 1440 + minute) * 60))
                return IncomingMessage(topic: "meters/dev-0000/reading", payload: Array("{\"ts\":\"\(instant.rfc3339)\",\"energy_wh\":\(100_000 + day * 1440 + minute)}".utf8),
                                       receivedAt: instant)
            }
        }
        let all = messages, limit = IngestSettings().maxBatch, foldRows = IngestSettings().foldRows
        for backend in StoreBackend.allCases {
            try await StoreFixture.run(backend, registryCSV: Self.registryCSV(devices: devices), at: october) { store in
                for day in month { _ = try await store.process(day) }
                try await store.fold()
                let processor = store.processor
                let (seconds, stored) = try await store.onThread { () throws -> (Double, Int) in
                    let clock = ContinuousClock.now
                    var stored = 0, index = 0
                    while index < all.count {
                        let end = min(all.count, index + limit)
                        stored += try processor.process(Array(all[index..<end])).stored
                        index = end
                        if processor.unfoldedReadings >= foldRows { _ = try processor.fold() }
                    }
                    _ = try processor.fold()
                    let elapsed = ContinuousClock.now - clock
                    return (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18, stored)
                }
                #expect(stored == all.count)
                print(String(format: "%@ writer alone: %d readings from %d devices in batches of %d: %.2f s = %.0f readings/s, %.1f µs per reading",
                             backend.rawValue, stored, devices, limit, seconds, Double(stored) / seconds, seconds / Double(stored) * 1e6))
                let zone = try LocalTimeZone(identifier: "Europe/Paris")
                var best = Double.infinity, count = 0
                for _ in 0..<5 {
                    let clock = ContinuousClock.now
                    count = try await store.store.readings(device: "dev-0000", from: october, to: Instant.parseRFC3339("2026-11-01T00:00:00Z")!, limit: 50_000,
                                                           by: Identity(name: "res", role: .resident, dwelling: "OUT-B-dev-0000"), zone: zone).count
                    let elapsed = ContinuousClock.now - clock
                    best = min(best, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
                }
                #expect(count == 31 * 1440)
                print(String(format: "%@ route: a month of one device (%d readings) as its resident: %.1f ms (best of 5)", backend.rawValue, count, best * 1000))
            }
        }
    }
}

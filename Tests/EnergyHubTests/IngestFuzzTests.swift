import Foundation
import GRDB
import HubCore
import HubTestSupport
import Shared
import Testing
@testable import EnergyCore
@testable import EnergyHub

/// A seeded fuzzer over every payload decoder and the registry importer (issue 14, "also build"):
/// inputs made by mutating the real devices' samples (bytes flipped, cut, repeated; numbers swapped
/// for the extremes that once crashed the hub; structures nested, emptied or retyped) and by
/// generating JSON from nothing, sent through the ingest processor and the store as ingest does.
/// Every message must end stored, a duplicate, or quarantined with a reason; none may crash the
/// process or take long. `HUB_FUZZ_COUNT` sets the number of payloads (CI runs more: `.ci/run`),
/// `HUB_FUZZ_SEED` the seed (printed, so a failure can be replayed).
@Suite struct IngestFuzzTests {
    static var count: Int { ProcessInfo.processInfo.environment["HUB_FUZZ_COUNT"].flatMap(Int.init) ?? 5_000 }
    static var seed: UInt64 { ProcessInfo.processInfo.environment["HUB_FUZZ_SEED"].flatMap(UInt64.init) ?? UInt64(Date().timeIntervalSince1970) }

    /// SplitMix64: small, fast, and the same sequence for the same seed on every machine.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let tokens = ["9223372036854775807", "-9223372036854775808", "18446744073709551616", "2e17", "1e999", "-1e999", "NaN", "Infinity", "-0", "0.0005",
                         "4.9e-324", "1e308", "null", "true", "[]", "{}", "\"\"", "\"x\"", String(repeating: "9", count: 300), "0x10", "01", "1.", ".5",
                         "\"0000-01-01T00:00:00Z\"", "\"9999-12-31T23:59:59+23:59\"", "\"2026-02-30T00:00:00Z\"", "253402300800", "-62135596801"]

    static func samples() throws -> [(topic: String, payload: [UInt8])] {
        var all: [(String, [UInt8])] = []
        for name in ["teleinfo2mqtt", "tasmota", "opendtu", "misbehaving"] {
            for sample in try TestSupport.samples(name) { all.append((sample.topic, Array(sample.payload.utf8))) }
        }
        let now = Int64(Date().timeIntervalSince1970)
        all.append(("meters/box-7/reading", Array("{\"ts\": \(now), \"energy_wh\": 123456, \"power_w\": 300}".utf8)))
        all.append(("meters/box-7/reading", Array("[{\"ts\": \(now - 60), \"energy_wh\": 123400}, {\"ts\": \(now), \"energy_wh\": 123456}]".utf8)))
        return all
    }

    static let topics = ["meters/box-7/reading", "teleinfo/021861348497", "teleinfo/041876000117", "tele/box-0042/SENSOR", "solar/116180401234/0/yieldtotal",
                         "meters/unknown/reading", "meters//reading", "meters/\u{0}/reading", "tele/box-0042/STATE", "x", ""]

    /// One input: a sample changed in one to four ways, or a JSON value made from nothing.
    static func input(_ samples: [(topic: String, payload: [UInt8])], using random: inout Generator) -> (String, [UInt8]) {
        var (topic, payload) = samples.randomElement(using: &random)!
        if Int.random(in: 0..<10, using: &random) == 0 { return (topics.randomElement(using: &random)!, Array(randomJSON(depth: 0, using: &random).utf8)) }
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            switch Int.random(in: 0..<9, using: &random) {
            case 0 where !payload.isEmpty:  // flip a byte
                let index = Int.random(in: 0..<payload.count, using: &random)
                payload[index] = UInt8.random(in: 0...255, using: &random)
            case 1 where !payload.isEmpty:  // cut
                payload = Array(payload.prefix(Int.random(in: 0..<payload.count, using: &random)))
            case 2:  // a number (or a string, a value) replaced by an extreme
                let text = String(decoding: payload, as: UTF8.self)
                let numbers = text.ranges(of: /-?[0-9][0-9.eE+\-]*/)
                if let range = numbers.randomElement(using: &random) {
                    payload = Array(text.replacingCharacters(in: range, with: tokens.randomElement(using: &random)!).utf8)
                }
            case 3:  // repeated
                payload += payload
            case 4:  // another topic
                topic = topics.randomElement(using: &random)!
            case 5 where !payload.isEmpty:  // a byte inserted: a quote, a brace, a NUL, invalid UTF-8
                let index = Int.random(in: 0...payload.count, using: &random)
                payload.insert([0x22, 0x7B, 0x7D, 0x5B, 0x00, 0xFF, 0xC3, 0x5C].randomElement(using: &random)!, at: index)
            case 6:  // wrapped in an array, or an array of many
                payload = Array("[".utf8) + Array(repeating: payload, count: Int.random(in: 1...50, using: &random)).joined(separator: Array(",".utf8)) + Array("]".utf8)
            case 7:  // deeply nested
                let depth = Int.random(in: 1...600, using: &random)
                payload = Array(String(repeating: "[", count: depth).utf8) + payload + Array(String(repeating: "]", count: depth).utf8)
            default:  // a key renamed or dropped
                let text = String(decoding: payload, as: UTF8.self)
                if let range = text.ranges(of: /"[A-Za-z_]+"\s*:/).randomElement(using: &random) {
                    payload = Array(text.replacingCharacters(in: range, with: ["\"energy_wh\":", "\"ts\":", "\"Time\":", "\"BASE\":", "\"ENERGY\":", ""].randomElement(using: &random)!).utf8)
                }
            }
        }
        return (topic, payload)
    }

    static func randomJSON(depth: Int, using random: inout Generator) -> String {
        switch Int.random(in: 0..<(depth > 4 ? 3 : 6), using: &random) {
        case 0: return tokens.randomElement(using: &random)!
        case 1: return "\(Int64.random(in: Int64.min...Int64.max, using: &random))"
        case 2: return "\"\(String(repeating: "é", count: Int.random(in: 0...5, using: &random)))\""
        case 3: return "[" + (0..<Int.random(in: 0...4, using: &random)).map { _ in randomJSON(depth: depth + 1, using: &random) }.joined(separator: ",") + "]"
        default:
            let keys = ["ts", "energy_wh", "power_w", "Time", "ENERGY", "Total", "TIC", "BASE", "EAST", "EAIT", "value", "raw", "ADCO", "DATE"]
            return "{" + (0..<Int.random(in: 0...4, using: &random)).map { _ in
                "\"\(keys.randomElement(using: &random)!)\":\(randomJSON(depth: depth + 1, using: &random))"
            }.joined(separator: ",") + "}"
        }
    }

    @Test func everyPayloadEndsStoredOrQuarantinedAndNothingCrashes() async throws {
        let seed = Self.seed, count = Self.count
        print("fuzzing the decoders: \(count) payloads, seed \(seed) (HUB_FUZZ_SEED=\(seed) replays it)")
        let (messages, slowest, unaccounted) = try await BlockingWork.run { () throws -> (Int, Double, [String]) in
            let database = try TestSupport.database()
            _ = try RegistryImporter(database: database).importCSV(Data(TestSupport.samplesRegistryCSV.utf8))
            let processor = try IngestProcessor(settings: IngestSettings(), store: SQLiteReadingStore(database: database))
            try processor.loadState(at: Instant.now())
            let samples = try Self.samples()
            var random = Generator(state: seed)
            var slowest = 0.0
            var unaccounted: [String] = []
            var done = 0
            while done < count {
                // Batches of 50, as ingest commits them; then each message must be accounted for.
                let batch = (0..<min(50, count - done)).map { _ in
                    let (topic, payload) = Self.input(samples, using: &random)
                    return IncomingMessage(topic: topic, payload: payload, receivedAt: Instant.now())
                }
                let start = Date()
                let report = try processor.process(batch)
                slowest = max(slowest, Date().timeIntervalSince(start))
                if report.messages != batch.count || report.stored + report.duplicates + report.quarantinedTotal < batch.count {
                    unaccounted.append("batch at \(done): \(report.messages) messages, \(report.stored) stored, \(report.duplicates) duplicates, \(report.quarantinedTotal) quarantined")
                }
                done += batch.count
            }
            return (done, slowest, unaccounted)
        }
        print("fuzzed \(messages) payloads; slowest batch of 50: \(Int(slowest * 1000)) ms")
        #expect(unaccounted.isEmpty, "seed \(seed): \(unaccounted.prefix(5))")
        #expect(slowest < 5, "seed \(seed): a batch of 50 took \(slowest) s")
    }

    @Test func everyRegistryFileIsImportedWholeOrRefusedWithItsLine() async throws {
        let seed = Self.seed
        let files = max(500, Self.count / 20)
        let (refused, imported, wrong) = try await BlockingWork.run { () throws -> (Int, Int, [String]) in
            let database = try TestSupport.database()
            let importer = RegistryImporter(database: database)
            _ = try importer.importCSV(Data(TestSupport.samplesRegistryCSV.utf8))
            let dwellings = { try database.readBlocking { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM dwelling") ?? 0 } }
            let base = Array(TestSupport.samplesRegistryCSV.utf8)
            var random = Generator(state: seed ^ 0x5EED)
            var refused = 0, imported = 0
            var wrong: [String] = []
            for _ in 0..<files {
                var file = base
                for _ in 0..<Int.random(in: 1...3, using: &random) {
                    let index = Int.random(in: 0..<file.count, using: &random)
                    switch Int.random(in: 0..<5, using: &random) {
                    case 0: file[index] = UInt8.random(in: 0...255, using: &random)
                    case 1: file.insert([0x3B, 0x22, 0x0A, 0x0D, 0x00, 0xEF, 0x2C].randomElement(using: &random)!, at: index)
                    case 2: file.removeSubrange(index..<min(file.count, index + Int.random(in: 1...30, using: &random)))
                    case 3: file = [0xEF, 0xBB, 0xBF] + file
                    default: file += Array("\nOutreau;OUT-Z;OUT-Z-\(Int.random(in: 0...99, using: &random));d-\(Int.random(in: 0...9, using: &random));meter;canonical;2025-0\(Int.random(in: 0...9, using: &random))-01;;".utf8)
                    }
                }
                let before = try dwellings()
                do {
                    _ = try importer.importCSV(Data(file))
                    imported += 1
                } catch let error as HubError {
                    refused += 1
                    // All or nothing: a refused file changed nothing, and its error names where.
                    if try dwellings() != before { wrong.append("a refused file changed the registry: \(error.message)") }
                    if error.field == nil { wrong.append("an error without a field or line: \(error.message)") }
                } catch {
                    wrong.append("not a HubError: \(error)")
                }
            }
            return (refused, imported, wrong)
        }
        print("fuzzed \(refused + imported) registry files: \(imported) imported, \(refused) refused")
        #expect(wrong.isEmpty, "seed \(seed): \(wrong.prefix(5))")
    }
}

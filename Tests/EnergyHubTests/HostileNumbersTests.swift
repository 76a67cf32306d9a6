import Foundation
import GRDB
import HubTestSupport
import HubCore
import Shared
import Testing
@testable import EnergyCore
@testable import EnergyHub

// Issue 14, defect 1: an index that jumped by 1.5e17 Wh or more within a minute overflowed while
// the implied power was worked out for the `implausible_jump` message, and the trap killed the
// hub. Every numeric field a device sends is tried here at its extremes, through the decoders,
// the sequence rules and the store: each must end as a stored reading or a quarantined one with a
// reason, never a trap.

/// The numbers a hostile or broken device can put where a number belongs, as JSON text: the ends
/// of Int64 and of Double, just beyond them, tiny fractions, the non-finite tokens (bare, as the
/// parser's extension reads them, and in strings), exponents no type can hold, very long digit runs.
private let extremes: [String] = [
    "9223372036854775807", "-9223372036854775808", "9223372036854775808", "-9223372036854775809", "18446744073709551616",
    "4611686018427387904", "2e17", "200000000000000000", "150000000000000000", "9.3e18", "9300000000000000000",
    "9223372036854775.807", "9223372036854775.808", "9.223372036854775807e18",
    "-1", "0", "-0", "1", "0.5", "0.0004", "0.0005", "1e-7", "4.9e-324", "2.2250738585072014e-308",
    "1e308", "-1e308", "1.7976931348623157e308", "-1.7976931348623157e308", "1E+308",
    "1e999", "-1e999", "1e-999", "1e0000000000000000000000000000000000000005", "1e9223372036854775807", "1e-9223372036854775808",
    "NaN", "-NaN", "Infinity", "-Infinity", "inf", "-inf",
    "\"NaN\"", "\"Infinity\"", "\"-Infinity\"", "\"1e999\"", "\"9223372036854775807\"", "\"-1\"",
    String(repeating: "9", count: 400),
    "1" + String(repeating: "0", count: 1_999),
    "1" + String(repeating: "0", count: 5_000),
    "0." + String(repeating: "0", count: 3_000) + "1",
    String(repeating: "1", count: 20) + "." + String(repeating: "1", count: 20),
]

/// Timestamps at the ends of what the formats can spell: year 0, year 1, year 9999, just past it,
/// offsets that push them over, impossible fields, and Unix seconds at the RFC 3339 range's edges.
private let instantExtremes: [String] = [
    "\"0000-01-01T00:00:00Z\"", "\"0001-01-01T00:00:00Z\"", "\"0001-01-01T00:00:00+23:59\"", "\"0001-01-01T00:00:00-23:59\"",
    "\"9999-12-31T23:59:59.999Z\"", "\"9999-12-31T23:59:59-23:59\"", "\"9999-12-31T23:59:59+23:59\"", "\"10000-01-01T00:00:00Z\"",
    "\"1970-01-01T00:00:00Z\"", "\"1969-12-31T23:59:59.999Z\"", "\"2026-13-01T00:00:00Z\"", "\"2026-02-30T00:00:00Z\"",
    "\"2026-11-27T24:00:00Z\"", "\"2026-11-27T10:00:60Z\"", "\"2026-11-27T10:00:00+99:99\"", "\"-2026-11-27T10:00:00Z\"",
    "\"2026-11-27T10:00:00." + String(repeating: "9", count: 400) + "Z\"",
    "\"0000-01-01T00:00:00\"", "\"0001-01-01T00:00:00\"", "\"9999-12-31T23:59:59\"",
    "253402300799", "253402300799.999", "253402300800", "-62135596800", "-62135596801", "-1", "0",
]

/// A quoted JSON string holding `value` (as is when it already is one).
private func quoted(_ value: String) -> String { value.hasPrefix("\"") ? value : "\"\(value)\"" }

/// Tasmota's `Time`: the Paris wall-clock time of an instant, without an offset.
private func localTime(_ instant: Instant) -> String { quoted(LocalTimeZone.paris.localDateTime(of: instant).description) }

/// An index in kWh with three decimals, exactly (OpenDTU, Tasmota's ENERGY.Total).
private func kilowattHours(_ energy: Int64) -> String {
    "\(energy / 1000)." + String(String(energy % 1000 + 1000).dropFirst())
}

/// One device's payloads: an ordinary one, and one with a hostile value in a given field.
struct HostileField: Sendable, CustomStringConvertible {
    var description: String
    var topic: String
    var values: [String]
    /// The payload with `value` in the field, the other fields ordinary (this instant, this index).
    var payload: @Sendable (_ value: String, _ instant: Instant, _ energy: Int64) -> String

    /// An ordinary payload of the device the topic names.
    static func ordinary(_ topic: String, _ instant: Instant, _ energy: Int64) -> String {
        switch topic {
        case "meters/box-7/reading":
            return "{\"ts\":\"\(instant.rfc3339)\",\"energy_wh\":\(energy),\"power_w\":120}"
        case "teleinfo/021861348497":
            return "{\"ADCO\":{\"raw\":\"021861348497\",\"value\":\"021861348497\"},\"BASE\":{\"raw\":\"\(energy)\",\"value\":\(energy)}}"
        case "teleinfo/041876000117":
            return "{\"ADSC\":{\"raw\":\"041876000117\",\"value\":\"041876000117\"},\"EAIT\":{\"raw\":\"\(energy)\",\"value\":\(energy)}}"
        case "tele/box-0042/SENSOR":
            return tasmota(time: localTime(instant), energy: "\"Total\":\(kilowattHours(energy)),\"Power\":208")
        case "solar/116180401234/0/yieldtotal":
            return kilowattHours(energy)
        default:
            fatalError("no ordinary payload for \(topic)")
        }
    }

    static func tasmota(time: String, tic: String? = nil, energy: String? = nil) -> String {
        "{\"Time\":\(time)" + (tic.map { ",\"TIC\":{\($0)}" } ?? "") + (energy.map { ",\"ENERGY\":{\($0)}" } ?? "") + "}"
    }

    static func teleinfo(_ labels: String) -> String {
        "{\"ADCO\":{\"raw\":\"021861348497\",\"value\":\"021861348497\"},\(labels)}"
    }

    /// Every numeric field of every format.
    static let all: [HostileField] = {
        var fields: [HostileField] = []
        // Canonical: ts (Unix seconds or RFC 3339), energy_wh, power_w.
        let canonical = "meters/box-7/reading"
        fields.append(HostileField(description: "canonical energy_wh", topic: canonical, values: extremes) { value, instant, _ in
            "{\"ts\":\"\(instant.rfc3339)\",\"energy_wh\":\(value)}"
        })
        fields.append(HostileField(description: "canonical ts", topic: canonical, values: extremes + instantExtremes) { value, _, energy in
            "{\"ts\":\(value),\"energy_wh\":\(energy)}"
        })
        fields.append(HostileField(description: "canonical power_w", topic: canonical, values: extremes) { value, instant, energy in
            "{\"ts\":\"\(instant.rfc3339)\",\"energy_wh\":\(energy),\"power_w\":\(value)}"
        })
        fields.append(HostileField(description: "canonical array element", topic: canonical, values: extremes) { value, instant, _ in
            "[{\"ts\":\"\(instant.rfc3339)\",\"energy_wh\":\(value)}]"
        })
        // teleinfo2mqtt: each index label as {"raw", "value"}, value alone, raw alone, bare; the
        // labels of a sum with the others ordinary; apparent power labels, which are not used.
        let meterLabels: [(label: String, others: [String])] = [
            ("BASE", []), ("EAST", []), ("HCHC", ["HCHP"]), ("HCHP", ["HCHC"]), ("EJPHN", ["EJPHPM"]), ("EJPHPM", ["EJPHN"]),
        ] + TICLabels.tempoLabels.map { label in (label, TICLabels.tempoLabels.filter { $0 != label }) }
        for (label, others) in meterLabels {
            // The other registers of the option hold the ordinary index between them (the last one all of it).
            let rest: @Sendable (Int64) -> String = { energy in
                others.enumerated().map { index, other in ",\"\(other)\":{\"value\":\(index == others.count - 1 ? energy : 0)}" }.joined()
            }
            let forms: [(name: String, entry: @Sendable (String) -> String)] = [
                ("raw and value", { "{\"raw\":\(quoted($0)),\"value\":\($0)}" }),
                ("value", { "{\"value\":\($0)}" }),
                ("raw", { "{\"raw\":\(quoted($0))}" }),
                ("bare", { $0 }),
            ]
            for form in forms {
                fields.append(HostileField(description: "teleinfo \(label) (\(form.name))", topic: "teleinfo/021861348497", values: extremes) { value, _, energy in
                    teleinfo("\"\(label)\":\(form.entry(value))" + rest(energy))
                })
            }
        }
        fields.append(HostileField(description: "teleinfo EAIT (producer)", topic: "teleinfo/041876000117", values: extremes) { value, _, _ in
            "{\"ADSC\":{\"raw\":\"041876000117\",\"value\":\"041876000117\"},\"EAIT\":{\"raw\":\(quoted(value)),\"value\":\(value)}}"
        })
        for label in ["PAPP", "SINSTS", "IINST", "ISOUSC"] {
            fields.append(HostileField(description: "teleinfo \(label) (not an index)", topic: "teleinfo/021861348497", values: extremes) { value, _, energy in
                teleinfo("\"BASE\":{\"value\":\(energy)},\"\(label)\":{\"raw\":\(quoted(value)),\"value\":\(value)}")
            })
        }
        // Tasmota: Time, the TIC index (strings of Wh, or numbers), ENERGY.Total (kWh), ENERGY.Power.
        let tasmotaTopic = "tele/box-0042/SENSOR"
        fields.append(HostileField(description: "Tasmota Time", topic: tasmotaTopic, values: extremes + instantExtremes) { value, _, energy in
            tasmota(time: value, energy: "\"Total\":\(kilowattHours(energy))")
        })
        for label in ["EAST", "BASE"] {
            fields.append(HostileField(description: "Tasmota TIC \(label) as a string", topic: tasmotaTopic, values: extremes) { value, instant, _ in
                tasmota(time: localTime(instant), tic: "\"\(label)\":\(quoted(value))")
            })
            fields.append(HostileField(description: "Tasmota TIC \(label) as a number", topic: tasmotaTopic, values: extremes) { value, instant, _ in
                tasmota(time: localTime(instant), tic: "\"\(label)\":\(value)")
            })
        }
        fields.append(HostileField(description: "Tasmota TIC HCHC", topic: tasmotaTopic, values: extremes) { value, instant, energy in
            tasmota(time: localTime(instant), tic: "\"HCHC\":\(quoted(value)),\"HCHP\":\"\(energy)\"")
        })
        fields.append(HostileField(description: "Tasmota ENERGY.Total", topic: tasmotaTopic, values: extremes) { value, instant, _ in
            tasmota(time: localTime(instant), energy: "\"Total\":\(value)")
        })
        fields.append(HostileField(description: "Tasmota ENERGY.Power", topic: tasmotaTopic, values: extremes) { value, instant, energy in
            tasmota(time: localTime(instant), energy: "\"Total\":\(kilowattHours(energy)),\"Power\":\(value)")
        })
        fields.append(HostileField(description: "Tasmota ENERGY.Power channels", topic: tasmotaTopic, values: extremes) { value, instant, energy in
            tasmota(time: localTime(instant), energy: "\"Total\":\(kilowattHours(energy)),\"Power\":[\(value),\(value)]")
        })
        // OpenDTU: the bare kWh number.
        fields.append(HostileField(description: "OpenDTU yieldtotal", topic: "solar/116180401234/0/yieldtotal", values: extremes) { value, _, _ in value })
        return fields
    }()
}

// One case at a time: each runs the processor and SQLite for a field's 52 extremes, and 67 of them
// at once would hold both threads of Swift's pool that the other suites' waits need.
@Suite(.serialized) struct HostileNumbersTests {
    let t0 = Instant.parseRFC3339("2026-11-27T09:00:00Z")!

    func setUp() throws -> (HubDatabase, IngestProcessor) {
        let database = try TestSupport.database()
        _ = try RegistryImporter(database: database).importCSV(Data(TestSupport.samplesRegistryCSV.utf8))
        let processor = try IngestProcessor(settings: IngestSettings(), store: SQLiteReadingStore(database: database))
        try processor.loadState(at: t0)
        return (database, processor)
    }

    func message(_ topic: String, _ payload: String, at instant: Instant) -> IncomingMessage {
        IncomingMessage(topic: topic, payload: Array(payload.utf8), receivedAt: instant)
    }

    func lastQuarantined(_ database: HubDatabase) throws -> (reason: String, detail: String)? {
        try database.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT reason, detail FROM quarantine ORDER BY id DESC LIMIT 1").map { ($0["reason"], $0["detail"]) }
        }
    }

    // MARK: - Every field of every format, through the decoders, the sequence rules and the store

    /// Each hostile value comes between two ordinary readings of the same device, so an index it
    /// yields meets the sequence rules (where the overflow was), and the next ordinary reading shows
    /// the device's series goes on.
    @Test(arguments: HostileField.all)
    func everyExtremeOfEveryFieldIsStoredOrQuarantinedWithAReason(_ field: HostileField) throws {
        let (database, processor) = try setUp()
        var instant = t0
        var energy: Int64 = 5_000_000
        for value in field.values {
            let shown = value.count > 60 ? String(value.prefix(40)) + "… (\(value.count) characters)" : value
            let before = try processor.process([message(field.topic, HostileField.ordinary(field.topic, instant, energy), at: instant)])
            #expect(before.stored == 1, "\(field): the ordinary reading before \(shown) is stored")
            instant = instant.adding(seconds: 60)
            let report = try processor.process([message(field.topic, field.payload(value, instant, energy + 50), at: instant)])
            #expect(report.stored + report.duplicates + report.quarantinedTotal == 1, "\(field) \(shown): \(report)")
            if report.quarantinedTotal == 1 {
                let kept = try lastQuarantined(database)
                #expect(kept.flatMap { QuarantineReason(rawValue: $0.reason) } != nil, "\(field) \(shown): a known reason")
                #expect(kept?.detail.isEmpty == false, "\(field) \(shown): a detail saying what was wrong")
            }
            instant = instant.adding(seconds: 60)
            energy += 100
        }
        let after = try processor.process([message(field.topic, HostileField.ordinary(field.topic, instant, energy), at: instant)])
        #expect(after.stored == 1, "\(field): the last ordinary reading is stored")
    }

    /// What the decoders promise (`ReadingDecoder`) and the arithmetic after them relies on: an
    /// index that is whole, non-negative and fits in an Int64; an instant within years 1 to 9999.
    @Test(arguments: HostileField.all)
    func decodedReadingsKeepTheDecodersPromise(_ field: HostileField) throws {
        let (format, kind): (DeviceFormat, DeviceKind) = switch field.topic {
        case "meters/box-7/reading": (.canonical, .meter)
        case "teleinfo/041876000117": (.teleinfo, .pv)
        case "tele/box-0042/SENSOR": (.tasmota, .meter)
        case "solar/116180401234/0/yieldtotal": (.opendtu, .pv)
        default: (.teleinfo, .meter)
        }
        let context = DecodeContext(device: DeviceInfo(id: "device-1", kind: kind, format: format, installedFrom: t0), receivedAt: t0)
        let day: Int64 = 86_400_000
        let instants = (DecoderSupport.instantRange.lowerBound - day)...(DecoderSupport.instantRange.upperBound + day)
        for value in field.values {
            for result in Decoders.decoder(for: format).decode(Array(field.payload(value, t0, 5_000_050).utf8), context: context) {
                switch result {
                case .success(let reading):
                    #expect(reading.energy.value >= 0, "\(field) \(value.prefix(60))")
                    #expect(instants.contains(reading.instant.millisecondsSince1970), "\(field) \(value.prefix(60))")
                    #expect(reading.powerWatts?.isFinite ?? true, "\(field) \(value.prefix(60))")
                case .failure(let rejection):
                    #expect(!rejection.detail.isEmpty, "\(field) \(value.prefix(60))")
                }
            }
        }
    }

    /// The payloads that killed the hub, and the same largest indexes in the other formats: after an
    /// ordinary reading of the device, each is an implausible jump whose message says a true power.
    @Test(arguments: [
        ("meters/box-7/reading", "9223372036854775807"), ("meters/box-7/reading", "4611686018427387904"),
        ("meters/box-7/reading", "200000000000000000"),
        ("teleinfo/021861348497", "9223372036854775807"), ("teleinfo/041876000117", "9223372036854775807"),
        ("tele/box-0042/SENSOR", "9223372036854775807"), ("tele/box-0042/SENSOR", "9223372036854775.807"),
        ("solar/116180401234/0/yieldtotal", "9223372036854775.807"),
    ])
    func theLargestIndexesAfterAnOrdinaryReadingAreImplausibleJumps(_ topic: String, _ index: String) throws {
        let (database, processor) = try setUp()
        let first = try processor.process([message(topic, HostileField.ordinary(topic, t0, 21_403_709), at: t0)])
        #expect(first.stored == 1)
        let next = t0.adding(seconds: 60)
        let payload: String
        switch topic {
        case "meters/box-7/reading": payload = "{\"ts\":\"\(next.rfc3339)\",\"energy_wh\":\(index)}"
        case "teleinfo/021861348497": payload = HostileField.teleinfo("\"BASE\":{\"raw\":\"\(index)\",\"value\":\(index)}")
        case "teleinfo/041876000117": payload = "{\"EAIT\":{\"raw\":\"\(index)\",\"value\":\(index)}}"
        case "tele/box-0042/SENSOR" where index.contains("."): payload = HostileField.tasmota(time: localTime(next), energy: "\"Total\":\(index)")
        case "tele/box-0042/SENSOR": payload = HostileField.tasmota(time: localTime(next), tic: "\"EAST\":\"\(index)\"")
        default: payload = index
        }
        let report = try processor.process([message(topic, payload, at: next)])
        #expect(report.quarantined == [.implausibleJump: 1], "\(report)")
        let kept = try #require(try lastQuarantined(database))
        #expect(kept.reason == "implausible_jump")
        #expect(kept.detail.contains("more than 9.2e18 W"), "the implied power does not fit in 64 bits: \(kept.detail)")
        let after = try processor.process([message(topic, HostileField.ordinary(topic, next.adding(seconds: 60), 21_403_800), at: next.adding(seconds: 60))])
        #expect(after.stored == 1, "the device's series goes on")
    }

    // MARK: - The sequence rules at the ends of Int64

    func point(_ instant: Instant, _ energy: Int64) -> (instant: Instant, energy: WattHours) { (instant, WattHours(energy)) }

    static let oneYear: Int64 = 365 * 86_400_000
    static let spans: [Int64] = [1, 60_000, 2 * oneYear, 9_998 * oneYear]

    @Test(arguments: [(0, Int64.max), (Int64.min, Int64.max), (0, 1 << 62), (0, 200_000_000_000_000_000), (21_403_709, Int64.max), (Int64.min, 0)] as [(Int64, Int64)])
    func anEnormousJumpIsImplausibleAcrossAnySpan(_ from: Int64, _ to: Int64) {
        for span in Self.spans {
            let a = point(Instant(millisecondsSince1970: -62_135_596_800_000), from)
            let b = point(a.instant.adding(milliseconds: span), to)
            #expect(!SequenceRules.isPlausible(from: a, to: b, maxPowerW: 36_000), "\(from) to \(to) across \(span) ms")
            #expect(!SequenceRules.isPlausible(from: a, to: b, maxPowerW: 250_000, minimumMilliseconds: 60_000), "\(from) to \(to) across \(span) ms")
            #expect(SequenceRules.impliedPowerW(from: a, to: b) > 36_000, "\(from) to \(to) across \(span) ms")
        }
    }

    @Test func theImpliedPowerSaturates() {
        let a = point(t0, 0)
        // The jumps of the issue, within a minute: 5.5e20, 2.8e20 and 1.2e19 W.
        for index in [Int64.max, 1 << 62, 200_000_000_000_000_000] {
            #expect(SequenceRules.impliedPowerW(from: a, to: point(t0.adding(seconds: 60), index)) == Int64.max)
        }
        #expect(SequenceRules.impliedPowerW(from: point(t0, Int64.min), to: point(t0.adding(milliseconds: 1), Int64.max)) == Int64.max)
        #expect(SequenceRules.impliedPowerW(from: point(t0, Int64.max), to: point(t0.adding(seconds: 60), 0)) == Int64.min)
        // Ordinary jumps keep their exact figure: 601 Wh in a minute is 36,060 W.
        #expect(SequenceRules.impliedPowerW(from: a, to: point(t0.adding(seconds: 60), 601)) == 36_060)
        // Just below the limit (1.5e17 Wh across 59 s is 9.15e18 W) the figure is still given.
        let nearLimit = SequenceRules.impliedPowerW(from: a, to: point(t0.adding(seconds: 59), 150_000_000_000_000_000))
        #expect(nearLimit > 9_150_000_000_000_000_000 && nearLimit < 9_160_000_000_000_000_000)
    }

    @Test func theMessageSaysATruePower() {
        var sequence = DeviceSequence(last: StoredIndex(instant: t0, energy: WattHours(21_403_709), segment: 0))
        guard case .holdAsCandidate(let ordinary) = admit(&sequence, t0.adding(seconds: 60), 21_404_310) else { Issue.record("held"); return }
        #expect(ordinary.detail.contains("implies 36060 W, above 36000 W"), "\(ordinary.detail)")
        guard case .holdAsCandidate(let huge) = admit(&sequence, t0.adding(seconds: 120), Int64.max) else { Issue.record("held"); return }
        #expect(huge.detail.contains("implies more than 9.2e18 W, above 36000 W"), "\(huge.detail)")
    }

    @Test func ordinaryPlausibilityIsUnchanged() {
        // 36 kW for one minute is exactly 600 Wh; no change, any span, is plausible; backwards never is.
        #expect(SequenceRules.isPlausible(from: point(t0, 0), to: point(t0.adding(seconds: 60), 600), maxPowerW: 36_000))
        #expect(!SequenceRules.isPlausible(from: point(t0, 0), to: point(t0.adding(seconds: 60), 601), maxPowerW: 36_000))
        #expect(SequenceRules.isPlausible(from: point(t0, Int64.max), to: point(t0, Int64.max), maxPowerW: 36_000))
        #expect(!SequenceRules.isPlausible(from: point(t0, Int64.max), to: point(t0.adding(seconds: 60), 0), maxPowerW: 36_000))
        #expect(!SequenceRules.isPlausible(from: point(t0, 1), to: point(t0.adding(seconds: 60), Int64.min), maxPowerW: Int64.max))
        // A limit so large its product with the span leaves 64 bits: still compared exactly.
        #expect(SequenceRules.isPlausible(from: point(t0, 0), to: point(t0.adding(seconds: 3_600), Int64.max), maxPowerW: Int64.max))
        #expect(!SequenceRules.isPlausible(from: point(t0, 0), to: point(t0.adding(seconds: 3_599), Int64.max), maxPowerW: Int64.max))
        // Instants at the ends of Int64 (no decoder gives them): the span saturates, nothing traps.
        let first = point(Instant(millisecondsSince1970: Int64.min), 0)
        let last = point(Instant(millisecondsSince1970: Int64.max), 1)
        #expect(SequenceRules.isPlausible(from: first, to: last, maxPowerW: 36_000))
        #expect(!SequenceRules.isPlausible(from: last, to: first, maxPowerW: 36_000))
        #expect(SequenceRules.impliedPowerW(from: first, to: last) == 0)
    }

    func admit(_ sequence: inout DeviceSequence, _ instant: Instant, _ energy: Int64) -> Admission {
        sequence.admit(DecodedReading(instant: instant, energy: WattHours(energy), timeSource: .device), maxPowerW: 36_000, confirmReadings: 3,
                       confirmMilliseconds: 600_000)
    }

    @Test(arguments: spans)
    func aJumpFromZeroToInt64MaxIsHeldAsImplausible(_ span: Int64) {
        let start = Instant(millisecondsSince1970: -62_135_596_800_000)
        var sequence = DeviceSequence(last: StoredIndex(instant: start, energy: WattHours(0), segment: 0))
        guard case .holdAsCandidate(let rejection) = admit(&sequence, start.adding(milliseconds: span), Int64.max) else {
            Issue.record("a jump to Int64.max across \(span) ms must be held aside")
            return
        }
        #expect(rejection.reason == .implausibleJump)
        #expect(rejection.detail.contains("more than 9.2e18 W") || span > Self.oneYear, "\(rejection.detail)")
        #expect(sequence.last?.energy == WattHours(0), "never rebased on the jump")
    }

    @Test func aDropFromInt64MaxToZeroIsHeldAsBackwards() {
        var sequence = DeviceSequence(last: StoredIndex(instant: t0, energy: WattHours(Int64.max), segment: 0))
        guard case .holdAsCandidate(let rejection) = admit(&sequence, t0.adding(milliseconds: 1), 0) else {
            Issue.record("a drop to zero must be held aside")
            return
        }
        #expect(rejection.reason == .indexBackwards)
    }

    @Test func aJumpFromInt64MinToInt64MaxIsHeldAsImplausible() {
        var sequence = DeviceSequence(last: StoredIndex(instant: t0, energy: WattHours(Int64.min), segment: 0))
        guard case .holdAsCandidate(let rejection) = admit(&sequence, t0.adding(milliseconds: 1), Int64.max) else {
            Issue.record("the jump must be held aside")
            return
        }
        #expect(rejection.reason == .implausibleJump)
        #expect(rejection.detail.contains("more than 9.2e18 W"), "\(rejection.detail)")
    }

    @Test func aResetFromInt64MaxIsConfirmedInANewSegment() {
        // A device that really goes on from zero after Int64.max: held, then admitted as a reset.
        var sequence = DeviceSequence(last: StoredIndex(instant: t0, energy: WattHours(Int64.max), segment: 0))
        for minute in [1, 6] as [Int64] {
            let instant = t0.adding(seconds: minute * 60)
            guard case .holdAsCandidate = admit(&sequence, instant, minute) else { Issue.record("held"); return }
            sequence.hold(ResetCandidate(reading: DecodedReading(instant: instant, energy: WattHours(minute), timeSource: .device), receivedAt: instant, quarantineID: minute))
        }
        guard case .confirmReset(let segment, let released) = admit(&sequence, t0.adding(seconds: 11 * 60), 11) else { Issue.record("confirmed"); return }
        #expect(segment == 1)
        #expect(released.count == 2)
    }

    @Test func lateReadingsAtTheEndsOfInt64AreRefusedWithATrueMessage() {
        let previous = StoredIndex(instant: t0, energy: WattHours(0), segment: 0)
        let jump = DecodedReading(instant: t0.adding(seconds: 60), energy: WattHours(Int64.max), timeSource: .device)
        guard case .failure(let rejection) = SequenceRules.placeLate(jump, previous: previous, next: nil, maxPowerW: 36_000) else {
            Issue.record("a late jump to Int64.max must be refused")
            return
        }
        #expect(rejection.reason == .implausibleJump)
        #expect(rejection.detail.contains("index jump of 9223372036854775807 Wh"), "\(rejection.detail)")
        #expect(rejection.detail.contains("more than 9.2e18 W"), "\(rejection.detail)")
        // From Int64.min the jump is 2^64 - 1 Wh: said exactly, not wrapped.
        let lowest = StoredIndex(instant: t0, energy: WattHours(Int64.min), segment: 0)
        guard case .failure(let wide) = SequenceRules.placeLate(jump, previous: lowest, next: nil, maxPowerW: 36_000) else {
            Issue.record("a late jump from Int64.min must be refused")
            return
        }
        #expect(wide.detail.contains("index jump of 18446744073709551615 Wh"), "\(wide.detail)")
        let next = StoredIndex(instant: t0.adding(seconds: 120), energy: WattHours(Int64.max), segment: 0)
        #expect(SequenceRules.placeLate(DecodedReading(instant: t0.adding(seconds: 60), energy: WattHours(Int64.max), timeSource: .device),
                                        previous: previous, next: next, maxPowerW: 36_000).isFailure)
        #expect(SequenceRules.placeLate(DecodedReading(instant: t0.adding(seconds: 60), energy: WattHours(Int64.min), timeSource: .device),
                                        previous: lowest, next: nil, maxPowerW: 36_000) == .success(0))
    }
}

private extension Result {
    var isFailure: Bool {
        if case .failure = self { return true }
        return false
    }
}

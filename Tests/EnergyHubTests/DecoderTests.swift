import Foundation
import HubTestSupport
import HubTools
import Testing
@testable import EnergyCore
@testable import EnergyHub
import HubCore
import Shared

// MARK: - Helpers

private func utc(_ text: String) -> Instant {
    guard let instant = Instant.parseRFC3339(text) else { fatalError("bad test instant \(text)") }
    return instant
}

private let receivedAt = utc("2026-11-27T09:13:00Z")

private func context(_ format: DeviceFormat, kind: DeviceKind = .meter, maxReadings: Int = 10_000) -> DecodeContext {
    DecodeContext(
        device: DeviceInfo(id: "device-1", kind: kind, format: format, installedFrom: utc("2025-01-01T00:00:00Z")),
        receivedAt: receivedAt, timeZone: .paris, maxReadingsPerMessage: maxReadings)
}

private func decodeAll(_ format: DeviceFormat, _ payload: String, kind: DeviceKind = .meter, maxReadings: Int = 10_000) -> [Result<DecodedReading, Rejection>] {
    Decoders.decoder(for: format).decode(Array(payload.utf8), context: context(format, kind: kind, maxReadings: maxReadings))
}

/// The one result a single-reading payload gives (a failed expectation if there are several).
private func decodeOne(_ format: DeviceFormat, _ payload: String, kind: DeviceKind = .meter, sourceLocation: SourceLocation = #_sourceLocation) -> Result<DecodedReading, Rejection> {
    let results = decodeAll(format, payload, kind: kind)
    #expect(results.count == 1, "expected one result, got \(results.count)", sourceLocation: sourceLocation)
    return results.first ?? .failure(Rejection(.malformedPayload, "no result at all"))
}

extension Result where Success == DecodedReading, Failure == Rejection {
    var reading: DecodedReading? { try? get() }
    var rejection: Rejection? {
        if case .failure(let rejection) = self { return rejection }
        return nil
    }
    var reason: QuarantineReason? { rejection?.reason }
    var wattHours: Int64? { reading?.energy.value }
}

// MARK: - Canonical

@Suite("Canonical decoder")
struct CanonicalDecoderTests {
    @Test func objectWithUTCTimestamp() throws {
        let reading = try #require(decodeOne(.canonical, #"{"ts":"2026-11-27T10:00:00Z","energy_wh":19290594,"power_w":208.5}"#).reading)
        #expect(reading == DecodedReading(instant: utc("2026-11-27T10:00:00Z"), energy: WattHours(19_290_594), powerWatts: 208.5, timeSource: .device))
    }

    @Test func offsetAndFractionalTimestamps() {
        #expect(decodeOne(.canonical, #"{"ts":"2026-11-27T11:00:00+01:00","energy_wh":1}"#).reading?.instant == utc("2026-11-27T10:00:00Z"))
        #expect(decodeOne(.canonical, #"{"ts":"2026-07-01T08:30:00-02:30","energy_wh":1}"#).reading?.instant == utc("2026-07-01T11:00:00Z"))
        #expect(decodeOne(.canonical, #"{"ts":"2026-11-27T10:00:00.250Z","energy_wh":1}"#).reading?.instant.millisecondsSince1970 == utc("2026-11-27T10:00:00Z").millisecondsSince1970 + 250)
    }

    @Test func unixSecondsTimestamps() {
        let base = utc("2026-11-27T10:00:00Z")
        let seconds = base.secondsSince1970
        #expect(decodeOne(.canonical, "{\"ts\":\(seconds),\"energy_wh\":5}").reading?.instant == base)
        #expect(decodeOne(.canonical, "{\"ts\":\(seconds).5,\"energy_wh\":5}").reading?.instant == base.adding(milliseconds: 500))
        #expect(decodeOne(.canonical, "{\"ts\":\(seconds).1234,\"energy_wh\":5}").reading?.instant == base.adding(milliseconds: 123))
        #expect(decodeOne(.canonical, "{\"ts\":\(seconds).0005,\"energy_wh\":5}").reading?.instant == base.adding(milliseconds: 1))
        #expect(decodeOne(.canonical, #"{"ts":1.7642376e9,"energy_wh":5}"#).reading?.instant == Instant(secondsSince1970: 1_764_237_600))
        // Before 2000 still decodes: refusing unset clocks is the validator's job.
        #expect(decodeOne(.canonical, #"{"ts":0,"energy_wh":5}"#).reading?.instant == Instant(millisecondsSince1970: 0))
    }

    @Test func timestampWithoutOffsetIsMalformed() throws {
        let rejection = try #require(decodeOne(.canonical, #"{"ts":"2026-11-27T10:00:00","energy_wh":1}"#).rejection)
        #expect(rejection.reason == .malformedPayload)
        #expect(rejection.detail.contains("offset"))
        #expect(rejection.detail.contains("Z"))
    }

    @Test(arguments: [
        #"{"ts":"yesterday","energy_wh":1}"#, #"{"ts":"2026-02-30T10:00:00Z","energy_wh":1}"#, #"{"ts":true,"energy_wh":1}"#,
        #"{"ts":{},"energy_wh":1}"#, #"{"ts":1e30,"energy_wh":1}"#, #"{"ts":-99999999999999,"energy_wh":1}"#,
        #"{"ts":"2026-11-27T25:00:00Z","energy_wh":1}"#, #"{"ts":"","energy_wh":1}"#,
    ])
    func badTimestampsAreMalformed(_ payload: String) {
        #expect(decodeOne(.canonical, payload).reason == .malformedPayload)
    }

    @Test func nonFiniteTimestampIsNotANumber() {
        #expect(decodeOne(.canonical, #"{"ts":NaN,"energy_wh":1}"#).reason == .notANumber)
    }

    @Test func missingFieldsAreNamed() throws {
        let noTs = try #require(decodeOne(.canonical, #"{"energy_wh":1}"#).rejection)
        #expect(noTs.reason == .missingField)
        #expect(noTs.detail.hasPrefix("ts "))
        let noEnergy = try #require(decodeOne(.canonical, #"{"ts":"2026-11-27T10:00:00Z","power_w":3}"#).rejection)
        #expect(noEnergy.reason == .missingField)
        #expect(noEnergy.detail.hasPrefix("energy_wh "))
        let neither = try #require(decodeOne(.canonical, #"{}"#).rejection)
        #expect(neither.reason == .missingField)
        #expect(neither.detail.hasPrefix("ts and energy_wh"))
        #expect(decodeOne(.canonical, #"{"ts":"2026-11-27T10:00:00Z","energy_wh":null}"#).reason == .missingField)
        #expect(decodeOne(.canonical, #"{"ts":null,"energy_wh":3}"#).reason == .missingField)
    }

    @Test func energyMustBeAWholeNonNegativeNumber() throws {
        let ts = #""ts":"2026-11-27T10:00:00Z""#
        let asString = try #require(decodeOne(.canonical, "{\(ts),\"energy_wh\":\"19290594\"}").rejection)
        #expect(asString.reason == .nonNumericField)
        #expect(asString.detail.contains("string"))
        let asObject = try #require(decodeOne(.canonical, "{\(ts),\"energy_wh\":{\"value\":3}}").rejection)
        #expect(asObject.reason == .nonNumericField)
        #expect(asObject.detail.contains("object"))
        let fraction = try #require(decodeOne(.canonical, "{\(ts),\"energy_wh\":12.5}").rejection)
        #expect(fraction.reason == .nonNumericField)
        #expect(fraction.detail.contains("whole"))
        let negative = try #require(decodeOne(.canonical, "{\(ts),\"energy_wh\":-5}").rejection)
        #expect(negative.reason == .nonNumericField)
        #expect(negative.detail.contains("negative"))
        let huge = try #require(decodeOne(.canonical, "{\(ts),\"energy_wh\":99999999999999999999}").rejection)
        #expect(huge.reason == .nonNumericField)
        #expect(huge.detail.contains("64 bits"))
        #expect(decodeOne(.canonical, "{\(ts),\"energy_wh\":true}").reason == .nonNumericField)
        #expect(decodeOne(.canonical, "{\(ts),\"energy_wh\":[1]}").reason == .nonNumericField)
        // Exactly representable whole numbers in other spellings are accepted.
        #expect(decodeOne(.canonical, "{\(ts),\"energy_wh\":12.0}").wattHours == 12)
        #expect(decodeOne(.canonical, "{\(ts),\"energy_wh\":1.5e3}").wattHours == 1_500)
        #expect(decodeOne(.canonical, "{\(ts),\"energy_wh\":0}").wattHours == 0)
        #expect(decodeOne(.canonical, "{\(ts),\"energy_wh\":-0}").wattHours == 0)
        #expect(decodeOne(.canonical, "{\(ts),\"energy_wh\":9223372036854775807}").wattHours == Int64.max)
    }

    @Test func hugeExponentsDoNotTrap() {
        // DecimalText takes abs() of the parsed exponent: Int.min would trap without the guard.
        let ts = #""ts":"2026-11-27T10:00:00Z""#
        #expect(decodeOne(.canonical, "{\(ts),\"energy_wh\":1e-9223372036854775808}").reason == .nonNumericField)
        #expect(decodeOne(.canonical, "{\(ts),\"energy_wh\":1e-0009223372036854775808}").reason == .nonNumericField)
        #expect(decodeOne(.canonical, "{\(ts),\"energy_wh\":1e99999999999999999999}").reason == .nonNumericField)
        #expect(decodeOne(.canonical, "{\"ts\":1e-9223372036854775808,\"energy_wh\":1}").reason == .malformedPayload)
        #expect(decodeOne(.canonical, "{\(ts),\"energy_wh\":1,\"power_w\":1e-9223372036854775808}").reading?.powerWatts == 0)
    }

    @Test(arguments: ["NaN", "nan", "Infinity", "-Infinity", "inf", "\"nan\"", "\"NaN\"", "\"inf\"", "\"-inf\"", "\"Infinity\""])
    func notANumberEnergyAndPower(_ token: String) {
        let ts = #""ts":"2026-11-27T10:00:00Z""#
        #expect(decodeOne(.canonical, "{\(ts),\"energy_wh\":\(token)}").reason == .notANumber)
        #expect(decodeOne(.canonical, "{\(ts),\"energy_wh\":5,\"power_w\":\(token)}").reason == .notANumber)
    }

    @Test func powerIsOptional() throws {
        let ts = #""ts":"2026-11-27T10:00:00Z""#
        #expect(decodeOne(.canonical, "{\(ts),\"energy_wh\":5}").reading?.powerWatts == nil)
        #expect(decodeOne(.canonical, "{\(ts),\"energy_wh\":5,\"power_w\":null}").reading?.powerWatts == nil)
        #expect(decodeOne(.canonical, "{\(ts),\"energy_wh\":5,\"power_w\":-120}").reading?.powerWatts == -120)
        #expect(decodeOne(.canonical, "{\(ts),\"energy_wh\":5,\"power_w\":\"208\"}").reason == .nonNumericField)
        #expect(decodeOne(.canonical, "{\(ts),\"energy_wh\":5,\"power_w\":{}}").reason == .nonNumericField)
        #expect(decodeOne(.canonical, "{\(ts),\"energy_wh\":5,\"power_w\":1e400}").reason == .nonNumericField)
        // Unknown members are ignored.
        #expect(decodeOne(.canonical, "{\(ts),\"energy_wh\":5,\"fw\":\"1.2\"}").wattHours == 5)
    }

    /// The plain payload's fast path reads `power_w` from its bytes (a whole number of up to 15
    /// digits exactly, anything else through `strtod`) and the time from its bytes: the same
    /// values as the general JSON path, which the same text with a member it does not know takes.
    @Test(arguments: ["0", "-0", "7", "-120", "208", "999999999999999", "-999999999999999", "1234567890123456", "12345678901234567890",
                      "1.5", "-0.25", "1e3", "2E-2", "3.000", "0.1"])
    func powerReadFromBytesIsWhatTheGeneralPathReads(_ power: String) throws {
        let fast = decodeOne(.canonical, "{\"ts\":\"2026-11-27T10:00:00.250+01:00\",\"energy_wh\":5,\"power_w\":\(power)}")
        let general = decodeOne(.canonical, "{\"ts\":\"2026-11-27T10:00:00.250+01:00\",\"energy_wh\":5,\"power_w\":\(power),\"fw\":\"1.2\"}")
        let expected = try #require(Double(power))
        #expect(fast.reading?.powerWatts == expected)
        #expect(fast.reading?.powerWatts?.sign == expected.sign)
        #expect(general.reading?.powerWatts == expected)
        #expect(fast.reading?.instant == utc("2026-11-27T09:00:00.250Z"))
        #expect(fast.reading?.instant == general.reading?.instant)
    }

    @Test func arrayOfReadings() throws {
        let payload = #"[{"ts":"2026-11-27T10:00:00Z","energy_wh":100},{"ts":"2026-11-27T10:15:00Z","energy_wh":150,"power_w":200},{"ts":\#(utc("2026-11-27T10:15:00Z").secondsSince1970),"energy_wh":175}]"#
        let results = decodeAll(.canonical, payload)
        #expect(results.map(\.wattHours) == [100, 150, 175])
        #expect(results.map { $0.reading?.instant } == [utc("2026-11-27T10:00:00Z"), utc("2026-11-27T10:15:00Z"), utc("2026-11-27T10:15:00Z")])
        #expect(results.allSatisfy { $0.reading?.timeSource == .device })
    }

    @Test func badElementsFailAloneAndSayWhichOne() throws {
        var elements = (1...12).map { "{\"ts\":\"2026-11-27T10:\(10 + $0):00Z\",\"energy_wh\":\($0 * 10)}" }
        elements[2] = #"{"ts":"2026-11-27T10:13:00Z","energy_wh":"thirty"}"#
        elements[6] = "42"
        elements[9] = #"{"ts":"2026-11-27T10:20:00Z","energy_wh":nan}"#
        let results = decodeAll(.canonical, "[" + elements.joined(separator: ",") + "]")
        #expect(results.count == 12)
        let third = try #require(results[2].rejection)
        #expect(third.reason == .nonNumericField)
        #expect(third.detail.hasPrefix("reading 3 of 12: energy_wh"))
        let seventh = try #require(results[6].rejection)
        #expect(seventh.reason == .malformedPayload)
        #expect(seventh.detail.hasPrefix("reading 7 of 12: "))
        #expect(results[9].rejection?.reason == .notANumber)
        #expect(results[9].rejection?.detail.hasPrefix("reading 10 of 12: ") == true)
        let good = results.enumerated().filter { ![2, 6, 9].contains($0.offset) }
        #expect(good.allSatisfy { $0.element.wattHours == Int64(($0.offset + 1) * 10) })
    }

    @Test func emptyArrayIsMalformed() {
        #expect(decodeAll(.canonical, "[]").map(\.reason) == [.malformedPayload])
        #expect(decodeAll(.canonical, " [ ] ").map(\.reason) == [.malformedPayload])
    }

    @Test func tooManyReadingsIsOneFailure() {
        let one = #"{"ts":"2026-11-27T10:00:00Z","energy_wh":1}"#
        let three = "[" + [one, one, one].joined(separator: ",") + "]"
        let results = decodeAll(.canonical, three, maxReadings: 2)
        #expect(results.map(\.reason) == [.tooManyReadings])
        #expect(results.first?.rejection?.detail.contains("3") == true)
        #expect(decodeAll(.canonical, three, maxReadings: 3).count == 3)
    }

    @Test(arguments: ["42", "\"reading\"", "null", "true", "NaN"])
    func nonObjectTopLevelIsMalformed(_ payload: String) {
        #expect(decodeAll(.canonical, payload).map(\.reason) == [.malformedPayload])
    }

    @Test func invalidJSONCarriesTheParserMessage() throws {
        let results = decodeAll(.canonical, #"{"ts":"2026-11-27T10:00:00Z","energy_wh":12"#)
        #expect(results.count == 1)
        let rejection = try #require(results.first?.rejection)
        #expect(rejection.reason == .malformedPayload)
        #expect(rejection.detail.contains("invalid JSON"))
        #expect(rejection.detail.contains("end of input"))
        #expect(rejection.detail.contains("at byte 43"))
        #expect(decodeAll(.canonical, "").map(\.reason) == [.malformedPayload])
    }
}

// MARK: - Teleinfo

private func label(_ name: String, raw: String, value: String) -> String {
    "\"\(name)\": {\"raw\": \"\(raw)\", \"value\": \(value)}"
}

private func frame(_ labels: String...) -> String {
    "{" + labels.joined(separator: ", ") + "}"
}

@Suite("teleinfo2mqtt decoder")
struct TeleinfoDecoderTests {
    @Test func offPeakOptionSumsHCHCAndHCHP() throws {
        let payload = frame(label("ADCO", raw: "021861348497", value: "\"021861348497\""), label("HCHC", raw: "009058688", value: "9058688"),
                            label("HCHP", raw: "012345021", value: "12345021"), label("PAPP", raw: "00740", value: "740"))
        let reading = try #require(decodeOne(.teleinfo, payload).reading)
        #expect(reading == DecodedReading(instant: receivedAt, energy: WattHours(21_403_709), powerWatts: nil, timeSource: .received))
    }

    @Test func standardModeUsesEAST() throws {
        let payload = frame(label("EAST", raw: "019290594", value: "19290594"), label("EASF01", raw: "008120330", value: "8120330"),
                            label("SINSTS", raw: "00208", value: "208"))
        let reading = try #require(decodeOne(.teleinfo, payload).reading)
        #expect(reading.energy == WattHours(19_290_594))
        #expect(reading.powerWatts == nil, "SINSTS is VA, not W")
    }

    @Test func eastWinsOverHistoricLabels() {
        let payload = frame(label("BASE", raw: "000000100", value: "100"), label("EAST", raw: "000000200", value: "200"))
        #expect(decodeOne(.teleinfo, payload).wattHours == 200)
    }

    @Test func baseOption() {
        #expect(decodeOne(.teleinfo, frame(label("BASE", raw: "000000100", value: "100"))).wattHours == 100)
    }

    @Test func ejpOption() {
        let payload = frame(label("EJPHN", raw: "000001000", value: "1000"), label("EJPHPM", raw: "000000234", value: "234"))
        #expect(decodeOne(.teleinfo, payload).wattHours == 1_234)
        let rejection = decodeOne(.teleinfo, frame(label("EJPHN", raw: "000001000", value: "1000"))).rejection
        #expect(rejection?.reason == .missingField)
        #expect(rejection?.detail.hasPrefix("EJPHPM") == true)
    }

    @Test func tempoOptionSumsSixRegisters() throws {
        let values: [Int64] = [1, 20, 300, 4_000, 50_000, 600_000]
        let labels = zip(TICLabels.tempoLabels, values).map { label($0, raw: String(format: "%09d", $1), value: "\($1)") }
        #expect(decodeOne(.teleinfo, "{" + labels.joined(separator: ",") + "}").wattHours == 654_321)
        let missingOne = "{" + labels.dropLast().joined(separator: ",") + "}"
        let rejection = try #require(decodeOne(.teleinfo, missingOne).rejection)
        #expect(rejection.reason == .missingField)
        #expect(rejection.detail.hasPrefix("BBRHPJR"))
    }

    @Test func offPeakNeedsBothLabels() throws {
        let onlyHCHC = try #require(decodeOne(.teleinfo, frame(label("HCHC", raw: "009058688", value: "9058688"))).rejection)
        #expect(onlyHCHC.reason == .missingField)
        #expect(onlyHCHC.detail.hasPrefix("HCHP"))
        let onlyHCHP = try #require(decodeOne(.teleinfo, frame(label("HCHP", raw: "009058688", value: "9058688"))).rejection)
        #expect(onlyHCHP.detail.hasPrefix("HCHC"))
    }

    @Test func noIndexLabelSaysWhatWasExpected() throws {
        let rejection = try #require(decodeOne(.teleinfo, frame(label("ADCO", raw: "021861348497", value: "\"021861348497\""))).rejection)
        #expect(rejection.reason == .missingField)
        #expect(rejection.detail.contains("EAST"))
        #expect(rejection.detail.contains("HCHC+HCHP"))
        #expect(decodeOne(.teleinfo, "{}").reason == .missingField)
    }

    @Test func producerUsesEAIT() throws {
        let payload = frame(label("EAST", raw: "000000007", value: "7"), label("EAIT", raw: "004512877", value: "4512877"), label("SINSTI", raw: "01820", value: "1820"))
        #expect(decodeOne(.teleinfo, payload, kind: .pv).wattHours == 4_512_877)
        #expect(decodeOne(.teleinfo, payload, kind: .meter).wattHours == 7)
        let noEAIT = try #require(decodeOne(.teleinfo, frame(label("EAST", raw: "000000007", value: "7")), kind: .pv).rejection)
        #expect(noEAIT.reason == .missingField)
        #expect(noEAIT.detail.hasPrefix("EAIT"))
        #expect(decodeOne(.teleinfo, frame(label("EAIT", raw: "004512877", value: "4512877")), kind: .meter).reason == .missingField)
    }

    @Test func rawDigitsAreTheFallback() {
        // value not an integer number: the raw digits are used.
        #expect(decodeOne(.teleinfo, frame(label("BASE", raw: "000000100", value: "\"000000100\""))).wattHours == 100)
        #expect(decodeOne(.teleinfo, frame(label("BASE", raw: "000000100", value: "null"))).wattHours == 100)
        #expect(decodeOne(.teleinfo, frame("\"BASE\": {\"raw\": \"000000100\"}")).wattHours == 100)
        #expect(decodeOne(.teleinfo, frame("\"BASE\": {\"value\": 100}")).wattHours == 100)
        // An integer value wins over a disagreeing raw.
        #expect(decodeOne(.teleinfo, frame(label("BASE", raw: "000000999", value: "100"))).wattHours == 100)
    }

    @Test(arguments: [
        #""BASE": {"raw": "nan", "value": "nan"}"#, #""BASE": {"raw": "NaN", "value": NaN}"#, #""BASE": {"raw": "000000100", "value": NaN}"#,
        #""BASE": {"value": Infinity}"#, #""BASE": {"raw": "inf"}"#,
    ])
    func notANumberLabels(_ member: String) {
        // A NaN value with good raw digits: the raw digits are still used.
        let expectRaw = member.contains("000000100")
        let result = decodeOne(.teleinfo, frame(member))
        if expectRaw {
            #expect(result.wattHours == 100)
        } else {
            #expect(result.reason == .notANumber)
        }
    }

    @Test(arguments: [
        #""BASE": {"raw": "12a", "value": "12a"}"#, #""BASE": {"raw": "12.5", "value": 12.5}"#, #""BASE": {"raw": "-5", "value": -5}"#,
        #""BASE": {"raw": "", "value": ""}"#, #""BASE": {}"#, #""BASE": {"raw": 100, "value": true}"#, #""BASE": {"raw": " 100", "value": 1e2}"#,
        #""BASE": {"raw": "99999999999999999999", "value": 99999999999999999999}"#, #""BASE": true"#, #""BASE": [100]"#, #""BASE": "1 0""#,
    ])
    func nonNumericLabels(_ member: String) {
        #expect(decodeOne(.teleinfo, frame(member)).reason == .nonNumericField)
    }

    @Test func nonNumericDetailNamesTheLabel() throws {
        let rejection = try #require(decodeOne(.teleinfo, frame(label("HCHP", raw: "0123X5021", value: "\"0123X5021\""), label("HCHC", raw: "1", value: "1"))).rejection)
        #expect(rejection.detail.hasPrefix("HCHP"))
        #expect(rejection.detail.contains("0123X5021"))
    }

    @Test func sumOverflowIsNonNumeric() {
        let payload = frame(label("HCHC", raw: "9223372036854775807", value: "9223372036854775807"), label("HCHP", raw: "1", value: "1"))
        #expect(decodeOne(.teleinfo, payload).reason == .nonNumericField)
    }

    @Test func bareLabelValuesAreAcceptedToo() {
        #expect(decodeOne(.teleinfo, #"{"BASE": "000000100"}"#).wattHours == 100)
        #expect(decodeOne(.teleinfo, #"{"BASE": 100}"#).wattHours == 100)
        #expect(decodeOne(.teleinfo, #"{"BASE": "nan"}"#).reason == .notANumber)
    }

    @Test(arguments: ["[]", "42", "\"BASE\"", "{\"BASE\": {\"raw\": \"1\"", "", "null"])
    func malformedPayloads(_ payload: String) {
        #expect(decodeAll(.teleinfo, payload).map(\.reason) == [.malformedPayload])
    }
}

// MARK: - Tasmota

private func tasmota(time: String?, tic: String? = nil, energy: String? = nil) -> String {
    var members: [String] = []
    if let time { members.append("\"Time\": \"\(time)\"") }
    if let tic { members.append("\"TIC\": {\(tic)}") }
    if let energy { members.append("\"ENERGY\": {\(energy)}") }
    return "{" + members.joined(separator: ", ") + "}"
}

@Suite("Tasmota decoder")
struct TasmotaDecoderTests {
    @Test func ticEASTAndLocalWinterTime() throws {
        let payload = tasmota(time: "2026-11-27T10:12:54", tic: #""ADSC": "041876097999", "DATE": "H261127101254", "EAST": "019290594", "SINSTS": "00208""#,
                              energy: #""Total": 19290.594, "Power": 208, "ApparentPower": 208"#)
        let reading = try #require(decodeOne(.tasmota, payload).reading)
        #expect(reading == DecodedReading(instant: utc("2026-11-27T09:12:54Z"), energy: WattHours(19_290_594), powerWatts: 208, timeSource: .device))
    }

    @Test func summerTimeIsTwoHoursAhead() {
        #expect(decodeOne(.tasmota, tasmota(time: "2026-07-01T12:00:00", energy: #""Total": 1"#)).reading?.instant == utc("2026-07-01T10:00:00Z"))
    }

    @Test func energyTotalInKilowattHours() {
        #expect(decodeOne(.tasmota, tasmota(time: "2026-11-27T10:12:54", energy: #""Total": 19291.002"#)).wattHours == 19_291_002)
        #expect(decodeOne(.tasmota, tasmota(time: "2026-11-27T10:12:54", energy: #""Total": 1290.817"#)).wattHours == 1_290_817)
        #expect(decodeOne(.tasmota, tasmota(time: "2026-11-27T10:12:54", energy: #""Total": 7"#)).wattHours == 7_000)
        #expect(decodeOne(.tasmota, tasmota(time: "2026-11-27T10:12:54", energy: #""Total": 1.0005"#)).wattHours == 1_001)
        #expect(decodeOne(.tasmota, tasmota(time: "2026-11-27T10:12:54", energy: #""Total": 1.0004"#)).wattHours == 1_000)
        #expect(decodeOne(.tasmota, tasmota(time: "2026-11-27T10:12:54", energy: #""Total": 1.2e1"#)).wattHours == 12_000)
        // 0.1 + 0.2 style binary drift cannot happen: this is exact.
        #expect(decodeOne(.tasmota, tasmota(time: "2026-11-27T10:12:54", energy: #""Total": 4512.877"#)).wattHours == 4_512_877)
    }

    @Test func springForwardGapIsInvalidLocalTime() throws {
        let rejection = try #require(decodeOne(.tasmota, tasmota(time: "2026-03-29T02:30:00", energy: #""Total": 1"#)).rejection)
        #expect(rejection.reason == .invalidLocalTime)
        #expect(rejection.detail.contains("2026-03-29T02:30:00"))
        #expect(decodeOne(.tasmota, tasmota(time: "2026-03-29T01:59:59", energy: #""Total": 1"#)).reading?.instant == utc("2026-03-29T00:59:59Z"))
        #expect(decodeOne(.tasmota, tasmota(time: "2026-03-29T03:00:00", energy: #""Total": 1"#)).reading?.instant == utc("2026-03-29T01:00:00Z"))
    }

    @Test func repeatedAutumnHourFollowsAnUpperCaseSeasonLetter() {
        let time = "2026-10-25T02:30:00"
        let summer = tasmota(time: time, tic: #""DATE": "E261025023000", "EAST": "000000100""#)
        let winter = tasmota(time: time, tic: #""DATE": "H261025023000", "EAST": "000000100""#)
        #expect(decodeOne(.tasmota, summer).reading?.instant == utc("2026-10-25T00:30:00Z"))
        #expect(decodeOne(.tasmota, winter).reading?.instant == utc("2026-10-25T01:30:00Z"))
        // The letter wins over the receive time (a message held back by the box).
        let early = DecodeContext(device: DeviceInfo(id: "device-1", kind: .meter, format: .tasmota, installedFrom: utc("2025-01-01T00:00:00Z")),
                                  receivedAt: utc("2026-10-25T00:31:00Z"))
        #expect(TasmotaDecoder().decode(Array(winter.utf8), context: early).first?.reading?.instant == utc("2026-10-25T01:30:00Z"))
        // Outside the repeated hour the letter changes nothing.
        let later = tasmota(time: "2026-10-25T03:30:00", tic: #""DATE": "E261025033000", "EAST": "000000100""#)
        #expect(decodeOne(.tasmota, later).reading?.instant == utc("2026-10-25T02:30:00Z"))
    }

    /// Issue 14, defect 6: without a season letter (ENERGY.Total only), or with a lower-case one
    /// (the meter's clock is not synchronised), the receive time chooses: the second pass of the
    /// repeated hour is winter time, not a conflicting duplicate of the first.
    @Test(arguments: [#""ENERGY": {"Total": 0.1}"#, #""TIC": {"EAST": "000000100"}"#,
                      #""TIC": {"DATE": "e261025023000", "EAST": "000000100"}"#, #""TIC": {"DATE": "h261025023000", "EAST": "000000100"}"#])
    func repeatedAutumnHourWithoutATrustedLetterFollowsTheReceiveTime(body: String) {
        let payload = Array(#"{"Time": "2026-10-25T02:30:00", \#(body)}"#.utf8)
        func instant(receivedAt: String) -> Instant? {
            let context = DecodeContext(device: DeviceInfo(id: "device-1", kind: .meter, format: .tasmota, installedFrom: utc("2025-01-01T00:00:00Z")),
                                        receivedAt: utc(receivedAt))
            return TasmotaDecoder().decode(payload, context: context).first?.reading
                .map { $0.instant }
        }
        // First pass (summer time, 00:30Z): received a few seconds later, or even slightly before
        // (a box's clock a little ahead).
        #expect(instant(receivedAt: "2026-10-25T00:30:04Z") == utc("2026-10-25T00:30:00Z"))
        #expect(instant(receivedAt: "2026-10-25T00:28:00Z") == utc("2026-10-25T00:30:00Z"))
        // 50 minutes late is still the first pass: the second would be 10 minutes in the future.
        #expect(instant(receivedAt: "2026-10-25T01:20:00Z") == utc("2026-10-25T00:30:00Z"))
        // Second pass (winter time, 01:30Z).
        #expect(instant(receivedAt: "2026-10-25T01:30:03Z") == utc("2026-10-25T01:30:00Z"))
        #expect(instant(receivedAt: "2026-10-25T01:27:00Z") == utc("2026-10-25T01:30:00Z"))
        #expect(instant(receivedAt: "2026-10-25T03:00:00Z") == utc("2026-10-25T01:30:00Z"))
    }

    @Test func timeWithAnOffsetIsHonoured() {
        #expect(decodeOne(.tasmota, tasmota(time: "2026-11-27T10:12:54Z", energy: #""Total": 1"#)).reading?.instant == utc("2026-11-27T10:12:54Z"))
        #expect(decodeOne(.tasmota, tasmota(time: "2026-11-27T10:12:54+02:00", energy: #""Total": 1"#)).reading?.instant == utc("2026-11-27T08:12:54Z"))
        // Even inside a local gap: an explicit offset is unambiguous.
        #expect(decodeOne(.tasmota, tasmota(time: "2026-03-29T02:30:00Z", energy: #""Total": 1"#)).reading?.instant == utc("2026-03-29T02:30:00Z"))
    }

    @Test func clockAt1970StillDecodes() {
        let reading = decodeOne(.tasmota, tasmota(time: "1970-01-01T00:03:12", energy: #""Total": 19291.002"#)).reading
        #expect(reading?.instant == utc("1969-12-31T23:03:12Z"))
        #expect(reading?.energy == WattHours(19_291_002))
    }

    @Test func missingTime() throws {
        let rejection = try #require(decodeOne(.tasmota, tasmota(time: nil, energy: #""Total": 1"#)).rejection)
        #expect(rejection.reason == .missingField)
        #expect(rejection.detail.hasPrefix("Time"))
        #expect(decodeOne(.tasmota, #"{"Time": null, "ENERGY": {"Total": 1}}"#).reason == .missingField)
    }

    @Test(arguments: [#"{"Time": 1764238374, "ENERGY": {"Total": 1}}"#, #"{"Time": "soon", "ENERGY": {"Total": 1}}"#,
                      #"{"Time": "2026-11-27", "ENERGY": {"Total": 1}}"#, #"{"Time": "2026-13-27T10:12:54", "ENERGY": {"Total": 1}}"#])
    func badTimeIsMalformed(_ payload: String) {
        #expect(decodeOne(.tasmota, payload).reason == .malformedPayload)
    }

    @Test func missingIndex() throws {
        let nothing = try #require(decodeOne(.tasmota, tasmota(time: "2026-11-27T10:12:54", energy: #""Power": 200"#)).rejection)
        #expect(nothing.reason == .missingField)
        #expect(nothing.detail.contains("ENERGY.Total"))
        let ticWithoutIndex = try #require(decodeOne(.tasmota, tasmota(time: "2026-11-27T10:12:54", tic: #""ADSC": "041876097999""#)).rejection)
        #expect(ticWithoutIndex.reason == .missingField)
        #expect(ticWithoutIndex.detail.contains("EAST"))
        #expect(ticWithoutIndex.detail.contains("ENERGY.Total"))
        #expect(decodeOne(.tasmota, #"{"Time": "2026-11-27T10:12:54"}"#).reason == .missingField)
        #expect(decodeOne(.tasmota, #"{"Time": "2026-11-27T10:12:54", "ENERGY": {"Total": null}}"#).reason == .missingField)
    }

    @Test func ticWithoutAnIndexFallsBackToEnergyTotal() {
        let payload = tasmota(time: "2026-11-27T10:12:54", tic: #""ADSC": "041876097999", "HCHC": "000000001""#, energy: #""Total": 2.5"#)
        #expect(decodeOne(.tasmota, payload).wattHours == 2_500)
    }

    @Test func ticOptionsAndProducer() {
        let offPeak = tasmota(time: "2026-11-27T10:12:54", tic: #""HCHC": "009058688", "HCHP": "012345021""#, energy: #""Total": 1"#)
        #expect(decodeOne(.tasmota, offPeak).wattHours == 21_403_709)
        let base = tasmota(time: "2026-11-27T10:12:54", tic: #""BASE": "000000100""#)
        #expect(decodeOne(.tasmota, base).wattHours == 100)
        let producer = tasmota(time: "2026-11-27T10:12:54", tic: #""EAST": "000000007", "EAIT": "004512877""#)
        #expect(decodeOne(.tasmota, producer, kind: .pv).wattHours == 4_512_877)
        #expect(decodeOne(.tasmota, producer, kind: .meter).wattHours == 7)
        let numeric = tasmota(time: "2026-11-27T10:12:54", tic: #""EAST": 19290594"#)
        #expect(decodeOne(.tasmota, numeric).wattHours == 19_290_594)
    }

    @Test func badTICValues() {
        #expect(decodeOne(.tasmota, tasmota(time: "2026-11-27T10:12:54", tic: #""EAST": "nan""#, energy: #""Total": 1"#)).reason == .notANumber)
        #expect(decodeOne(.tasmota, tasmota(time: "2026-11-27T10:12:54", tic: #""EAST": NaN"#)).reason == .notANumber)
        #expect(decodeOne(.tasmota, tasmota(time: "2026-11-27T10:12:54", tic: #""EAST": "01929O594""#, energy: #""Total": 1"#)).reason == .nonNumericField)
        #expect(decodeOne(.tasmota, tasmota(time: "2026-11-27T10:12:54", tic: #""EAST": 19290.594"#)).reason == .nonNumericField)
        #expect(decodeOne(.tasmota, tasmota(time: "2026-11-27T10:12:54", tic: #""EAST": "-19290594""#)).reason == .nonNumericField)
    }

    @Test func badEnergyTotal() {
        let time = "2026-11-27T10:12:54"
        #expect(decodeOne(.tasmota, tasmota(time: time, energy: #""Total": "nan""#)).reason == .notANumber)
        #expect(decodeOne(.tasmota, tasmota(time: time, energy: #""Total": NaN"#)).reason == .notANumber)
        #expect(decodeOne(.tasmota, tasmota(time: time, energy: #""Total": -Infinity"#)).reason == .notANumber)
        #expect(decodeOne(.tasmota, tasmota(time: time, energy: #""Total": -1.5"#)).reason == .nonNumericField)
        #expect(decodeOne(.tasmota, tasmota(time: time, energy: #""Total": "12.5""#)).reason == .nonNumericField)
        #expect(decodeOne(.tasmota, tasmota(time: time, energy: #""Total": [1, 2]"#)).reason == .nonNumericField)
        #expect(decodeOne(.tasmota, tasmota(time: time, energy: #""Total": 99999999999999999"#)).reason == .nonNumericField)
        #expect(decodeOne(.tasmota, tasmota(time: time, energy: #""Total": 1e-9223372036854775808"#)).reason == .nonNumericField)
        #expect(decodeOne(.tasmota, #"{"Time": "2026-11-27T10:12:54", "ENERGY": 19291}"#).reason == .malformedPayload)
    }

    @Test func power() {
        let time = "2026-11-27T10:12:54"
        #expect(decodeOne(.tasmota, tasmota(time: time, energy: #""Total": 1, "Power": 208.5"#)).reading?.powerWatts == 208.5)
        #expect(decodeOne(.tasmota, tasmota(time: time, energy: #""Total": 1, "Power": [100, 50.5, 0]"#)).reading?.powerWatts == 150.5)
        #expect(decodeOne(.tasmota, tasmota(time: time, energy: #""Total": 1"#)).reading?.powerWatts == nil)
        // Power is informational: an unusable one is dropped, the index is kept.
        #expect(decodeOne(.tasmota, tasmota(time: time, energy: #""Total": 1, "Power": "nan""#)).reading?.powerWatts == nil)
        #expect(decodeOne(.tasmota, tasmota(time: time, energy: #""Total": 1, "Power": NaN"#)).wattHours == 1_000)
        #expect(decodeOne(.tasmota, tasmota(time: time, energy: #""Total": 1, "Power": [1, "x"]"#)).reading?.powerWatts == nil)
        // With a TIC index, SINSTS (VA) never becomes power.
        #expect(decodeOne(.tasmota, tasmota(time: time, tic: #""EAST": "1", "SINSTS": "00208""#)).reading?.powerWatts == nil)
    }

    @Test(arguments: [#"{"Time":"2026-11-27T10:1"#, "[]", "\"SENSOR\"", "", "{\"Time\": \"2026-11-27T10:12:54\",}"])
    func malformedPayloads(_ payload: String) {
        #expect(decodeAll(.tasmota, payload).map(\.reason) == [.malformedPayload])
    }
}

// MARK: - OpenDTU

@Suite("OpenDTU decoder")
struct OpenDTUDecoderTests {
    @Test func yieldTotalInKilowattHours() throws {
        let reading = try #require(decodeOne(.opendtu, "4512.877", kind: .pv).reading)
        #expect(reading == DecodedReading(instant: receivedAt, energy: WattHours(4_512_877), powerWatts: nil, timeSource: .received))
    }

    @Test(arguments: [("4512", 4_512_000), ("0", 0), ("0.0005", 1), ("0.0004", 0), (" 4512.877\n", 4_512_877), ("12.5", 12_500), ("1e3", 1_000_000), ("-0", 0)] as [(String, Int64)])
    func exactConversion(_ payload: String, _ wattHours: Int64) {
        #expect(decodeOne(.opendtu, payload, kind: .pv).wattHours == wattHours)
    }

    @Test(arguments: ["nan", "NaN", "inf", "-inf", "Infinity", " nan\n"])
    func notANumber(_ payload: String) {
        #expect(decodeOne(.opendtu, payload, kind: .pv).reason == .notANumber)
    }

    @Test(arguments: ["", " ", "\n\r\t"])
    func emptyIsMalformed(_ payload: String) {
        #expect(decodeOne(.opendtu, payload, kind: .pv).reason == .malformedPayload)
    }

    @Test(arguments: ["abc", "4512,877", "4512.877 kWh", "\"4512.877\"", "{\"v\":1}", "-1.5", "99999999999999999", "1e400", "1e-9223372036854775808", "1.2.3", "0x10", "\u{0}"])
    func otherTextIsNonNumeric(_ payload: String) {
        #expect(decodeOne(.opendtu, payload, kind: .pv).reason == .nonNumericField)
    }

    @Test func negativeSaysSo() {
        #expect(decodeOne(.opendtu, "-1.5", kind: .pv).rejection?.detail.contains("negative") == true)
    }

    @Test func nonUTF8BytesDoNotCrash() {
        let results = OpenDTUDecoder().decode([0xFF, 0xC3, 0x00, 0x31], context: context(.opendtu, kind: .pv))
        #expect(results.map(\.reason) == [.nonNumericField])
    }
}

// MARK: - Registry of decoders

@Test(arguments: DeviceFormat.allCases)
func decoderForEachFormat(_ format: DeviceFormat) {
    #expect(Decoders.decoder(for: format).format == format)
}

// MARK: - Sample replay

/// The project's default topic filters and the format each one carries.
private let defaultRoutes: [(filter: String, format: DeviceFormat)] = [
    ("meters/+/reading", .canonical),
    ("teleinfo/+", .teleinfo),
    ("tele/+/SENSOR", .tasmota),
    ("solar/+/0/yieldtotal", .opendtu),
]

/// The sample devices that are PV producers; every other one is a consumer's meter box.
private let producerDevices: Set<String> = ["041876000117", "116180401234"]

private enum Expected {
    /// A reading: Wh index, the device instant (nil: the receive time) and the power in W.
    case reading(Int64, at: String? = nil, power: Double? = nil)
    case rejected(QuarantineReason)
    /// The topic matches none of the filters: never decoded.
    case unrouted
}

/// Every line of every sample file, by "file#line".
private let expectedSamples: [String: Expected] = [
    "teleinfo2mqtt.jsonl#1": .reading(21_403_709),            // HCHC 9058688 + HCHP 12345021; PAPP is VA
    "teleinfo2mqtt.jsonl#2": .reading(19_290_594),            // EAST; SINSTS is VA
    "teleinfo2mqtt.jsonl#3": .reading(4_512_877),             // EAIT of a producer
    "tasmota.jsonl#1": .reading(19_290_594, at: "2026-11-27T09:12:54Z", power: 208),
    "opendtu.jsonl#1": .reading(4_512_877),                   // 4512.877 kWh
    "opendtu.jsonl#2": .unrouted,                             // yieldday: Wh, resets daily
    "opendtu.jsonl#3": .unrouted,                             // power
    "opendtu.jsonl#4": .unrouted,                             // status/last_update
    "misbehaving.jsonl#1": .reading(0),                       // transient zero: the validator's business
    "misbehaving.jsonl#2": .reading(907_658_688),             // corrupted line: the validator's business
    "misbehaving.jsonl#3": .reading(19_291_002, at: "1969-12-31T23:03:12Z"),  // 1970 clock: the validator's business
    "misbehaving.jsonl#4": .rejected(.malformedPayload),      // truncated JSON
    "misbehaving.jsonl#5": .reading(100),                     // unregistered device: the ingest's business
    "misbehaving.jsonl#6": .rejected(.notANumber),            // OpenDTU "nan"
]

private struct SampleLine {
    var key: String
    var topic: String
    var payload: String
}

private func sampleDirectory() -> URL { TestSupport.samplesDirectory }

private func loadSamples() throws -> [SampleLine] {
    let directory = sampleDirectory()
    let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".jsonl") }.sorted()
    #expect(Set(names).isSuperset(of: ["misbehaving.jsonl", "opendtu.jsonl", "tasmota.jsonl", "teleinfo2mqtt.jsonl"]))
    var lines: [SampleLine] = []
    for name in names {
        let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
        for (offset, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.allSatisfy(\.isWhitespace) {
            let object = try JSONValue.parse(String(line))
            let topic = try #require(object["topic"]?.stringValue, "\(name) line \(offset + 1) has no topic")
            let payload = try #require(object["payload"]?.stringValue, "\(name) line \(offset + 1) has no payload")
            lines.append(SampleLine(key: "\(name)#\(offset + 1)", topic: topic, payload: payload))
        }
    }
    return lines
}

@Suite("Sample payloads")
struct SampleReplayTests {
    @Test func everySampleLineDecodesAsExpected() throws {
        let routes = try defaultRoutes.map { (pattern: try TopicPattern($0.filter), format: $0.format) }
        let samples = try loadSamples()
        #expect(samples.count == expectedSamples.count, "a sample line without an expectation, or an expectation without its line")
        #expect(Set(samples.map(\.key)) == Set(expectedSamples.keys))

        for sample in samples {
            let expected = try #require(expectedSamples[sample.key], "no expectation for \(sample.key)")
            let matches = routes.compactMap { route in route.pattern.device(in: sample.topic).map { (device: $0, format: route.format) } }
            #expect(matches.count <= 1, "\(sample.key): \(sample.topic) matches several filters")

            guard let match = matches.first else {
                guard case .unrouted = expected else {
                    Issue.record("\(sample.key): \(sample.topic) matches no filter")
                    continue
                }
                continue
            }
            if case .unrouted = expected {
                Issue.record("\(sample.key): \(sample.topic) should match no filter, matched \(match.format)")
                continue
            }

            let kind: DeviceKind = producerDevices.contains(match.device) ? .pv : .meter
            let info = DeviceInfo(id: match.device, kind: kind, format: match.format, installedFrom: utc("2025-01-01T00:00:00Z"))
            let context = DecodeContext(device: info, receivedAt: receivedAt, timeZone: .paris)
            let results = Decoders.decoder(for: match.format).decode(Array(sample.payload.utf8), context: context)
            #expect(results.count == 1, "\(sample.key)")
            let result = try #require(results.first)

            switch expected {
            case .reading(let wattHours, let at, let power):
                let reading = try #require(result.reading, "\(sample.key): \(String(describing: result.rejection))")
                #expect(reading.energy == WattHours(wattHours), "\(sample.key)")
                #expect(reading.instant == (at.map(utc) ?? receivedAt), "\(sample.key)")
                #expect(reading.powerWatts == power, "\(sample.key)")
                #expect(reading.timeSource == (match.format == .tasmota || match.format == .canonical ? .device : .received), "\(sample.key)")
            case .rejected(let reason):
                #expect(result.reason == reason, "\(sample.key): \(String(describing: result))")
                if reason == .malformedPayload { #expect(result.rejection?.detail.contains("invalid JSON") == true) }
            case .unrouted:
                break
            }
        }
    }

    @Test func sampleDevicesAndTopics() throws {
        let teleinfo = try TopicPattern("teleinfo/+")
        #expect(teleinfo.device(in: "teleinfo/021861348497") == "021861348497")
        let opendtu = try TopicPattern("solar/+/0/yieldtotal")
        #expect(opendtu.device(in: "solar/116180401234/0/yieldtotal") == "116180401234")
        let tasmota = try TopicPattern("tele/+/SENSOR")
        #expect(tasmota.device(in: "tele/box-0042/SENSOR") == "box-0042")
        #expect(tasmota.device(in: "tele/box-0042/STATE") == nil)
        // Level by level, byte for byte: no empty device, no missing or extra level, no prefix match.
        let canonical = try TopicPattern("meters/+/reading")
        for topic in ["meters//reading", "meters/box-7", "meters/box-7/reading/extra", "meters/box-7/readings", "meter/box-7/reading",
                      "/meters/box-7/reading", "meters/box-7/reading/", "", "meters/box/7/reading"] {
            #expect(canonical.device(in: topic) == nil, "\(topic)")
        }
        #expect(canonical.device(in: "meters/bâtiment-é/reading") == "bâtiment-é")
        #expect(try TopicPattern("+").device(in: "box-7") == "box-7")
        #expect(try TopicPattern("+").device(in: "") == nil)
        #expect(try TopicPattern("$share/hub/meters/+/reading").device(in: "meters/box-7/reading") == "box-7")
        #expect(try TopicPattern("a/b/+").device(in: "a/b/c") == "c")
        #expect(try TopicPattern("a/b/+").device(in: "a/x/c") == nil)
        // Not a single default filter takes OpenDTU's other topics.
        let routes = try defaultRoutes.map { try TopicPattern($0.filter) }
        for topic in ["solar/116180401234/0/yieldday", "solar/116180401234/0/power", "solar/116180401234/status/last_update"] {
            #expect(routes.allSatisfy { $0.device(in: topic) == nil }, "\(topic)")
        }
    }

    @Test func producerSampleReadAsAMeterLacksAnIndex() throws {
        let samples = try loadSamples()
        let producer = try #require(samples.first { $0.key == "teleinfo2mqtt.jsonl#3" })
        let results = TeleinfoDecoder().decode(Array(producer.payload.utf8), context: context(.teleinfo, kind: .meter))
        #expect(results.map(\.reason) == [.missingField])
    }
}

// MARK: - Fuzzing


@Suite("Fuzzing")
struct FuzzTests {
    static let seeds: [String] = [
        #"{"ts":"2026-11-27T10:00:00Z","energy_wh":19290594,"power_w":208.5}"#,
        #"[{"ts":1764237600.5,"energy_wh":1},{"ts":"2026-11-27T10:00:00+01:00","energy_wh":2}]"#,
        #"{"HCHC": {"raw": "009058688", "value": 9058688}, "HCHP": {"raw": "012345021", "value": 12345021}, "PAPP": {"raw": "00740", "value": 740}}"#,
        #"{"EAIT": {"raw": "004512877", "value": 4512877}, "EAST": {"raw": "0", "value": 0}}"#,
        #"{"Time": "2026-10-25T02:30:00", "TIC": {"DATE": "H261025023000", "EAST": "019290594"}, "ENERGY": {"Total": 19290.594, "Power": [208, 1]}}"#,
        #"{"Time":"1970-01-01T00:03:12","ENERGY":{"Total":19291.002}}"#,
        "4512.877", "nan", "\"\\ud83d\\ude00\\u00e9\"",
    ]

    static let tokens: [String] = [
        "{", "}", "[", "]", "\"", ",", ":", "\\", "\\u", "\\ud800", "\\udc00", "NaN", "-Infinity", "inf", "null", "true",
        "-", ".", "e", "E+", "0", "9223372036854775807", "9223372036854775808", "1e-9223372036854775808", "1e999999",
        "-0.0", "\"Time\":", "\"EAST\":", "\"energy_wh\":", "\"ts\":", "2026-03-29T02:30:00", "9999-12-31T23:59:59",
        "0001-01-01T00:00:00", "+14:00", "Z", "\u{0}", "\u{7F}", "é", "😀",
    ]

    fileprivate static func mutate(_ input: [UInt8], using rng: inout SeededGenerator) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            switch Int.random(in: 0..<7, using: &rng) {
            case 0 where !bytes.isEmpty:
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            case 1 where !bytes.isEmpty:
                bytes.removeSubrange(Int.random(in: 0..<bytes.count, using: &rng)..<bytes.count)
            case 2 where !bytes.isEmpty:
                let start = Int.random(in: 0..<bytes.count, using: &rng)
                bytes.removeSubrange(start..<min(bytes.count, start + Int.random(in: 1...8, using: &rng)))
            case 3:
                let token = tokens.randomElement(using: &rng) ?? ""
                bytes.insert(contentsOf: Array(token.utf8), at: Int.random(in: 0...bytes.count, using: &rng))
            case 4 where !bytes.isEmpty:
                let start = Int.random(in: 0..<bytes.count, using: &rng)
                let chunk = bytes[start..<min(bytes.count, start + Int.random(in: 1...16, using: &rng))]
                bytes.insert(contentsOf: chunk, at: Int.random(in: 0...bytes.count, using: &rng))
            case 5:
                let digits = (0..<Int.random(in: 1...30, using: &rng)).map { _ in UInt8.random(in: 48...57, using: &rng) }
                bytes.insert(contentsOf: digits, at: Int.random(in: 0...bytes.count, using: &rng))
            default:
                if !bytes.isEmpty { bytes.swapAt(Int.random(in: 0..<bytes.count, using: &rng), Int.random(in: 0..<bytes.count, using: &rng)) }
            }
        }
        return bytes
    }

    @Test func parserAndDecodersNeverCrash() {
        // The sequence SplitMix64 gives from state 0x00C0FFEE: deterministic, so a failure is reproducible.
        var rng = SeededGenerator(seed: 0x00C0_FFEE &- 0x9E37_79B9_7F4A_7C15)
        let decoders = DeviceFormat.allCases.map { Decoders.decoder(for: $0) }
        let contexts = [DeviceKind.meter, .pv].map { context(.canonical, kind: $0, maxReadings: 3) }
        let seeds = Self.seeds.map { Array($0.utf8) }
        var parsedCount = 0
        var decodedCount = 0

        for iteration in 0..<4_000 {
            let input: [UInt8]
            switch iteration % 4 {
            case 0:
                input = (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 1:
                let alphabet = Array("{}[]\",:-+.0123456789eEtrufalsnNIi \\u\n".utf8)
                input = (0..<Int.random(in: 0...48, using: &rng)).map { _ in alphabet.randomElement(using: &rng) ?? 0 }
            default:
                input = Self.mutate(seeds.randomElement(using: &rng) ?? [], using: &rng)
            }

            do {
                _ = try JSONValue.parse(input)
                parsedCount += 1
            } catch {
                #expect((0...input.count).contains(error.offset), "offset \(error.offset) outside \(input.count) bytes")
                #expect(!error.message.isEmpty)
            }
            for decoder in decoders {
                for context in contexts {
                    let results = decoder.decode(input, context: context)
                    #expect(!results.isEmpty, "\(decoder.format) gave no result for \(input)")
                    #expect(results.count <= context.maxReadingsPerMessage || results.count == 1)
                    decodedCount += results.count(where: { (try? $0.get()) != nil })
                }
            }
        }
        // The mutations must keep enough inputs valid for the decoders' deeper paths to be reached.
        #expect(parsedCount > 200)
        #expect(decodedCount > 200)
    }

    @Test func pathologicalInputs() {
        let inputs: [[UInt8]] = [
            Array(repeating: UInt8(ascii: "["), count: 100_000),
            Array(repeating: UInt8(ascii: "{"), count: 100_000),
            Array(("[" + String(repeating: "1,", count: 20_000) + "1]").utf8),
            Array(("{\"ts\":\"2026-11-27T10:00:00Z\",\"energy_wh\":" + String(repeating: "9", count: 50_000) + "}").utf8),
            Array(("{\"ts\":\"2026-11-27T10:00:00Z\",\"energy_wh\":0." + String(repeating: "0", count: 50_000) + "1}").utf8),
            Array(("\"" + String(repeating: "\\u00e9", count: 10_000) + "\"").utf8),
            Array(String(repeating: "9", count: 100_000).utf8),
            [],
        ]
        for input in inputs {
            for format in DeviceFormat.allCases {
                let results = Decoders.decoder(for: format).decode(input, context: context(format))
                #expect(!results.isEmpty)
            }
        }
    }
}

// MARK: - The canonical fast path

@Suite struct CanonicalFastPathTests {
    /// The fast path reads the canonical payload straight from its bytes; for every payload it
    /// accepts it must give what the JSON tree gives, and it must leave to the tree everything
    /// else. Payloads built from valid and invalid pieces in every order and spacing, then the
    /// same with one byte changed, inserted or removed.
    @Test func theCanonicalFastPathGivesWhatTheGeneralPathGives() {
        var random = SeededGenerator(seed: 0x5EED_CA11)
        let decoder = CanonicalDecoder()
        let context = context(.canonical)
        let timestamps = ["\"2026-11-27T10:00:00Z\"", "\"2026-03-29T01:59:59.999+01:00\"", "\"2026-10-25T02:30:00-02:30\"", "\"2026-11-27T10:00:00z\"",
                          "\"2026-11-27T10:00:00\"", "\"2026-11-27 10:00:00Z\"", "\"nan\"", "\"\"", "\"2026-11-27T10:00:00\\u005A\"", "\"2026-02-30T10:00:00Z\"",
                          "1796100000", "1796100000.5", "null", "\"2026-11-27T10:00:00+24:00\"", "\"2026-11-27T10:00:00.1234567Z\"", "\"é2026\""]
        let energies = ["0", "7", "1234567", "999999999999999999", "9223372036854775807", "9223372036854775808", "-1", "-0", "01", "12.0", "12.5",
                        "1e3", "1E3", "null", "\"12\"", "NaN", "12x", "1.", "true"]
        let powers = ["0", "-0", "12", "-3", "2.5", "1e2", "1E-2", "2.5e+3", "null", "01", "1.", ".5", "1e", "-", "\"3\"", "nan", "1e999", "123456789012345678901234567890"]
        let spaces = ["", " ", "\n", "\t ", "\r\n  "]
        func space() -> String { spaces.randomElement(using: &random)! }
        var payloads: [[UInt8]] = []
        for _ in 0..<4_000 {
            var members: [String] = []
            if Int.random(in: 0..<10, using: &random) > 0 { members.append("\"ts\"\(space()):\(space())\(timestamps.randomElement(using: &random)!)") }
            if Int.random(in: 0..<10, using: &random) > 0 { members.append("\"energy_wh\"\(space()):\(space())\(energies.randomElement(using: &random)!)") }
            if Bool.random(using: &random) { members.append("\"power_w\":\(space())\(powers.randomElement(using: &random)!)") }
            if Int.random(in: 0..<12, using: &random) == 0 { members.append("\"ts\":\"2026-11-27T11:00:00Z\"") }
            if Int.random(in: 0..<12, using: &random) == 0 { members.append("\"note\":1") }
            members.shuffle(using: &random)
            let text = space() + "{" + space() + members.joined(separator: space() + "," + space()) + space() + "}" + space()
            payloads.append(Array(text.utf8))
        }
        let mutated = payloads.prefix(4_000).map { payload -> [UInt8] in
            var bytes = payload
            let position = Int.random(in: 0..<bytes.count, using: &random)
            let byte = [UInt8(ascii: "\""), UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "\\"), UInt8(ascii: "0"), UInt8(ascii: "."), 0x00, 0xC3, UInt8.random(in: 0...255, using: &random)]
                .randomElement(using: &random)!
            switch Int.random(in: 0..<3, using: &random) {
            case 0: bytes[position] = byte
            case 1: bytes.insert(byte, at: position)
            default: bytes.remove(at: position)
            }
            return bytes
        }
        var accepted = 0
        var treeSuccesses = 0
        for payload in payloads + mutated {
            let tree = decoder.decodeTree(payload, context: context)
            if tree.count == 1, case .success = tree[0] { treeSuccesses += 1 }
            #expect(decoder.decode(payload, context: context) == (CanonicalPlainReading.decode(payload).map { [.success($0)] } ?? tree))
            guard let fast = CanonicalPlainReading.decode(payload) else { continue }
            accepted += 1
            #expect(tree == [.success(fast)], "\(String(decoding: payload, as: UTF8.self))")
        }
        #expect(accepted > 100, "\(accepted) on the fast path, \(treeSuccesses) readings in all")

        // Not vacuous: a plain payload (an RFC 3339 string, a whole number of at most 18 digits, a
        // plain number or null, in any order and spacing) always takes the fast path. The tree's
        // other readings (Unix seconds, another member, an escape, `-0`, `12.0`, `1e3`, 19 digits)
        // are left to it.
        for _ in 0..<2_000 {
            var members = ["\"ts\"\(space()):\(space())\(timestamps.prefix(3).randomElement(using: &random)!)",
                           "\"energy_wh\"\(space()):\(space())\(energies.prefix(4).randomElement(using: &random)!)"]
            if Bool.random(using: &random) { members.append("\"power_w\":\(space())\(powers.prefix(9).randomElement(using: &random)!)") }
            members.shuffle(using: &random)
            let payload = Array((space() + "{" + space() + members.joined(separator: space() + "," + space()) + space() + "}" + space()).utf8)
            let fast = CanonicalPlainReading.decode(payload)
            #expect(fast != nil && decoder.decodeTree(payload, context: context) == [.success(fast!)], "\(String(decoding: payload, as: UTF8.self))")
        }
    }

    /// What the meters and the simulator send takes the fast path.
    @Test func theSimulatorsPayloadsTakeTheFastPath() {
        for (energy, power) in [(0, nil), (1_234_567, 350.0), (42, 0.0)] as [(Int64, Double?)] {
            let device = SimulatedDevice(id: "m1", kind: .meter, format: .canonical, nominalW: 500, seed: 1, initialIndex: WattHours(0))
            let message = MeterSimulator.message(for: device, at: utc("2026-11-27T10:00:00Z"), index: WattHours(energy), powerW: power)
            let reading = CanonicalPlainReading.decode(message.payload)
            #expect(reading == DecodedReading(instant: utc("2026-11-27T10:00:00Z"), energy: WattHours(energy), powerWatts: power, timeSource: .device))
        }
    }
}

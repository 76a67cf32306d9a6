import HubCore

/// The decoder of each payload format.
public enum Decoders {
    public static func decoder(for format: DeviceFormat) -> any ReadingDecoder {
        switch format {
        case .canonical: return CanonicalDecoder()
        case .teleinfo: return TeleinfoDecoder()
        case .tasmota: return TasmotaDecoder()
        case .opendtu: return OpenDTUDecoder()
        }
    }
}

// MARK: - Canonical

/// The project's own format: `{"ts", "energy_wh", "power_w"}` or an array of them (a box that
/// buffered offline). `ts` is RFC 3339 with `Z` or an offset, or Unix seconds.
public struct CanonicalDecoder: ReadingDecoder {
    public init() {}

    public var format: DeviceFormat { .canonical }

    public func decode(_ payload: [UInt8], context: DecodeContext) -> [Result<DecodedReading, Rejection>] {
        if let reading = CanonicalPlainReading.decode(payload) { return [.success(reading)] }
        return decodeTree(payload, context: context)
    }

    /// The general path: the payload parsed as a JSON tree, every rejection with its reason.
    func decodeTree(_ payload: [UInt8], context: DecodeContext) -> [Result<DecodedReading, Rejection>] {
        let json: JSONValue
        switch DecoderSupport.parseJSON(payload) {
        case .success(let value): json = value
        case .failure(let rejection): return [.failure(rejection)]
        }
        switch json {
        case .object(let members):
            return [reading(members)]
        case .array(let elements):
            guard !elements.isEmpty else {
                return [.failure(Rejection(.malformedPayload, "an empty array holds no reading"))]
            }
            guard elements.count <= context.maxReadingsPerMessage else {
                return [.failure(Rejection(.tooManyReadings, "\(elements.count) readings in one message, more than the \(context.maxReadingsPerMessage) allowed"))]
            }
            let total = elements.count
            return elements.enumerated().map { offset, element in
                let result: Result<DecodedReading, Rejection>
                if case .object(let members) = element {
                    result = reading(members)
                } else {
                    result = .failure(Rejection(.malformedPayload, "expected an object, got \(element.kindDescription)"))
                }
                return result.mapError { Rejection($0.reason, "reading \(offset + 1) of \(total): \($0.detail)") }
            }
        default:
            return [.failure(Rejection(.malformedPayload, "expected a JSON object or an array of objects, got \(json.kindDescription)"))]
        }
    }

    private func reading(_ members: [String: JSONValue]) -> Result<DecodedReading, Rejection> {
        let ts = members["ts"].flatMap { $0.isNull ? nil : $0 }
        let energyValue = members["energy_wh"].flatMap { $0.isNull ? nil : $0 }
        guard let ts, let energyValue else {
            let missing = [ts == nil ? "ts" : nil, energyValue == nil ? "energy_wh" : nil].compactMap { $0 }
            return .failure(Rejection(.missingField, "\(missing.joined(separator: " and ")) missing: a reading needs ts and energy_wh"))
        }
        let instant: Instant
        switch timestamp(ts) {
        case .success(let value): instant = value
        case .failure(let rejection): return .failure(rejection)
        }
        let energy: Int64
        switch DecoderSupport.wattHoursIndex(energyValue, field: "energy_wh") {
        case .success(let value): energy = value
        case .failure(let rejection): return .failure(rejection)
        }
        var power: Double?
        if let powerValue = members["power_w"] {
            switch DecoderSupport.watts(powerValue, field: "power_w") {
            case .success(let value): power = value
            case .failure(let rejection): return .failure(rejection)
            }
        }
        return .success(DecodedReading(instant: instant, energy: WattHours(energy), powerWatts: power, timeSource: .device))
    }

    /// RFC 3339 text with an offset, or Unix seconds (fractions kept to the millisecond).
    private func timestamp(_ value: JSONValue) -> Result<Instant, Rejection> {
        switch value {
        case .string(let text):
            if let instant = Instant.parseRFC3339(text) { return .success(instant) }
            if LocalDateTime(parsing: text) != nil {
                return .failure(Rejection(.malformedPayload, "ts \(DecoderSupport.quoted(text)) has no offset: a UTC time needs Z or an offset such as +01:00"))
            }
            if DecoderSupport.isNotANumberText(text) {
                return .failure(Rejection(.notANumber, "ts is \(DecoderSupport.quoted(text))"))
            }
            return .failure(Rejection(.malformedPayload, "ts \(DecoderSupport.quoted(text)) is not an RFC 3339 date-time such as 2026-11-27T10:00:00Z"))
        case .number(let text):
            guard let milliseconds = DecoderSupport.scaled(text, scale: 3), DecoderSupport.instantRange.contains(milliseconds) else {
                return .failure(Rejection(.malformedPayload, "ts \(text) is out of range for Unix seconds"))
            }
            return .success(Instant(millisecondsSince1970: milliseconds))
        case .nonFinite(let token):
            return .failure(Rejection(.notANumber, "ts is \(token)"))
        default:
            return .failure(Rejection(.malformedPayload, "ts is \(value.kindDescription): it must be an RFC 3339 string or Unix seconds"))
        }
    }
}

/// The canonical payload as meters send it nearly always: one flat object of `ts` (an RFC 3339
/// string), `energy_wh` (a whole, non-negative number) and optionally `power_w` (a number or
/// null), read straight from the bytes without building a JSON tree. Anything else (another
/// member, an escape, a non-ASCII byte, a fraction in `energy_wh`, a duplicate, a `ts` that does
/// not parse...) gives nil, and the general path decides, with its messages. For every payload
/// it accepts, it gives what the general path gives (`theCanonicalFastPathGivesWhatTheGeneralPathGives`).
enum CanonicalPlainReading {
    static func decode(_ payload: [UInt8]) -> DecodedReading? {
        payload.withUnsafeBufferPointer { bytes -> DecodedReading? in
            var scanner = Scanner(bytes: bytes)
            scanner.skipWhitespace()
            guard scanner.take(UInt8(ascii: "{")) else { return nil }
            var instant: Instant?
            var energy: Int64?
            var power: Double??
            repeat {
                scanner.skipWhitespace()
                guard let key = scanner.plainString() else { return nil }
                scanner.skipWhitespace()
                guard scanner.take(UInt8(ascii: ":")) else { return nil }
                scanner.skipWhitespace()
                // Bytes compared and parsed where they are, without strings: the ingest writer's
                // hot path (a string for the key's comparison and two for the time cost a tenth of
                // its time).
                switch key.count {
                case 2 where Scanner.equal(key, "ts"):
                    guard instant == nil, let text = scanner.plainString(),
                          let value = Instant.parseRFC3339(utf8: UnsafeBufferPointer(rebasing: text)) else { return nil }
                    instant = value
                case 9 where Scanner.equal(key, "energy_wh"):
                    guard energy == nil, let value = scanner.wholeNumber() else { return nil }
                    energy = value
                case 7 where Scanner.equal(key, "power_w"):
                    guard power == nil else { return nil }
                    if scanner.take(literal: "null") {
                        power = .some(nil)
                    } else {
                        guard let text = scanner.number(), let value = Scanner.double(text), value.isFinite else { return nil }
                        power = .some(value)
                    }
                default:
                    return nil
                }
                scanner.skipWhitespace()
            } while scanner.take(UInt8(ascii: ","))
            guard scanner.take(UInt8(ascii: "}")) else { return nil }
            scanner.skipWhitespace()
            guard scanner.atEnd, let instant, let energy else { return nil }
            return DecodedReading(instant: instant, energy: WattHours(energy), powerWatts: power ?? nil, timeSource: .device)
        }
    }

    private struct Scanner {
        let bytes: UnsafeBufferPointer<UInt8>
        var position = 0

        var atEnd: Bool { position == bytes.count }

        mutating func skipWhitespace() {
            while position < bytes.count, DecoderSupport.isWhitespace(bytes[position]) { position += 1 }
        }

        mutating func take(_ byte: UInt8) -> Bool {
            guard position < bytes.count, bytes[position] == byte else { return false }
            position += 1
            return true
        }

        static func equal(_ bytes: UnsafeBufferPointer<UInt8>.SubSequence, _ literal: StaticString) -> Bool {
            guard bytes.count == literal.utf8CodeUnitCount else { return false }
            for (offset, byte) in bytes.enumerated() where byte != literal.utf8Start[offset] { return false }
            return true
        }

        /// A JSON number's value: a whole number of at most 15 digits exactly (every such number
        /// is a Double), anything else as `strtod` reads it.
        static func double(_ text: UnsafeBufferPointer<UInt8>.SubSequence) -> Double? {
            let negative = text.first == UInt8(ascii: "-")
            let digits = negative ? text.dropFirst() : text[...]
            if !digits.isEmpty, digits.count <= 15, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
                var value: Int64 = 0
                for byte in digits { value = value * 10 + Int64(byte - UInt8(ascii: "0")) }
                return negative ? -Double(value) : Double(value)
            }
            return Double(String(decoding: text, as: UTF8.self))
        }

        mutating func take(literal: StaticString) -> Bool {
            let count = literal.utf8CodeUnitCount
            guard bytes.count - position >= count, Self.equal(bytes[position..<(position + count)], literal) else { return false }
            position += count
            return true
        }

        /// A string of printable ASCII without escapes: its bytes between the quotes.
        mutating func plainString() -> UnsafeBufferPointer<UInt8>.SubSequence? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            let start = position
            while position < bytes.count {
                let byte = bytes[position]
                if byte == UInt8(ascii: "\"") {
                    position += 1
                    return bytes[start..<(position - 1)]
                }
                guard byte >= 0x20, byte < 0x7F, byte != UInt8(ascii: "\\") else { return nil }
                position += 1
            }
            return nil
        }

        /// A JSON number without fraction or exponent, not negative, of at most 18 digits (so it
        /// fits in Int64): what `energy_wh` holds.
        mutating func wholeNumber() -> Int64? {
            let start = position
            var value: Int64 = 0
            while position < bytes.count, bytes[position] >= UInt8(ascii: "0"), bytes[position] <= UInt8(ascii: "9") {
                // Wrapping: a number of more than 18 digits is refused below, its value unused.
                value = value &* 10 &+ Int64(bytes[position] - UInt8(ascii: "0"))
                position += 1
            }
            let digits = position - start
            guard digits >= 1, digits <= 18, digits == 1 || bytes[start] != UInt8(ascii: "0") else { return nil }
            // A fraction or an exponent: the general path says whether it is a whole number.
            if position < bytes.count, bytes[position] == UInt8(ascii: ".") || bytes[position] | 0x20 == UInt8(ascii: "e") { return nil }
            return value
        }

        /// The text of a number by JSON's grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
        mutating func number() -> UnsafeBufferPointer<UInt8>.SubSequence? {
            let start = position
            _ = take(UInt8(ascii: "-"))
            guard let first = digits(), first == 1 || bytes[position - first] != UInt8(ascii: "0") else { return nil }
            if take(UInt8(ascii: ".")) { guard digits() != nil else { return nil } }
            if take(UInt8(ascii: "e")) || take(UInt8(ascii: "E")) {
                if !take(UInt8(ascii: "+")) { _ = take(UInt8(ascii: "-")) }
                guard digits() != nil else { return nil }
            }
            return bytes[start..<position]
        }

        /// How many digits were read (nil for none).
        private mutating func digits() -> Int? {
            let start = position
            while position < bytes.count, bytes[position] >= UInt8(ascii: "0"), bytes[position] <= UInt8(ascii: "9") { position += 1 }
            return position > start ? position - start : nil
        }
    }
}

// MARK: - Teleinfo

/// teleinfo2mqtt: one `{"raw", "value"}` object per TIC label, no clock (the receive time is used).
public struct TeleinfoDecoder: ReadingDecoder {
    public init() {}

    public var format: DeviceFormat { .teleinfo }

    public func decode(_ payload: [UInt8], context: DecodeContext) -> [Result<DecodedReading, Rejection>] {
        let labels: [String: JSONValue]
        switch DecoderSupport.parseObject(payload) {
        case .success(let members): labels = members
        case .failure(let rejection): return [.failure(rejection)]
        }
        switch TICLabels.index(in: labels, kind: context.device.kind) {
        case .absent(let detail):
            return [.failure(Rejection(.missingField, detail))]
        case .found(.failure(let rejection)):
            return [.failure(rejection)]
        case .found(.success(let energy)):
            // PAPP / SINSTS are apparent power (VA), not W: left out on purpose.
            return [.success(DecodedReading(instant: context.receivedAt, energy: WattHours(energy), powerWatts: nil, timeSource: .received))]
        }
    }
}

// MARK: - Tasmota

/// Tasmota: `Time` device-local (no offset), index from the `TIC` block (Wh strings) or
/// `ENERGY.Total` (kWh).
public struct TasmotaDecoder: ReadingDecoder {
    public init() {}

    public var format: DeviceFormat { .tasmota }

    public func decode(_ payload: [UInt8], context: DecodeContext) -> [Result<DecodedReading, Rejection>] {
        let members: [String: JSONValue]
        switch DecoderSupport.parseObject(payload) {
        case .success(let value): members = value
        case .failure(let rejection): return [.failure(rejection)]
        }
        return [reading(members, context: context)]
    }

    private func reading(_ members: [String: JSONValue], context: DecodeContext) -> Result<DecodedReading, Rejection> {
        guard let timeValue = members["Time"], !timeValue.isNull else {
            return .failure(Rejection(.missingField, "Time missing: Tasmota's SENSOR message carries the device clock in Time"))
        }
        let tic = members["TIC"]?.objectValue
        let instant: Instant
        switch self.instant(timeValue, tic: tic, context: context) {
        case .success(let value): instant = value
        case .failure(let rejection): return .failure(rejection)
        }

        let energyBlock = members["ENERGY"]?.objectValue
        var ticAbsence: String?
        var energy: Int64?
        if let tic {
            switch TICLabels.index(in: tic, kind: context.device.kind) {
            case .found(.success(let value)): energy = value
            case .found(.failure(let rejection)): return .failure(rejection)
            case .absent(let detail): ticAbsence = detail
            }
        }
        if energy == nil {
            if let block = members["ENERGY"], !block.isNull, energyBlock == nil {
                return .failure(Rejection(.malformedPayload, "ENERGY is \(block.kindDescription), expected an object"))
            }
            guard let total = energyBlock?["Total"], !total.isNull else {
                let ticPart = ticAbsence.map { "TIC: \($0); " } ?? "no TIC block; "
                return .failure(Rejection(.missingField, ticPart + "no ENERGY.Total either: no energy index in the message"))
            }
            switch DecoderSupport.kilowattHoursIndex(total, field: "ENERGY.Total") {
            case .success(let value): energy = value
            case .failure(let rejection): return .failure(rejection)
            }
        }
        guard let energy else {
            return .failure(Rejection(.missingField, "no energy index in the message"))
        }
        return .success(DecodedReading(instant: instant, energy: WattHours(energy), powerWatts: power(energyBlock?["Power"]), timeSource: .device))
    }

    /// The device clock as an instant: local time in `timeZone`, or honoured as given when it
    /// carries `Z` or an offset. In the repeated autumn hour (02:00-02:59 happens twice), the TIC
    /// `DATE` season letter decides when it is upper-case (`E` summer time, `H` winter time: the
    /// meter's clock is synchronised); a lower-case letter is the meter saying its clock is not
    /// (Enedis' "mode dégradé"), and without a letter (`ENERGY.Total` only) nothing in the
    /// payload tells. Then the receive time does: the later of the two instants unless it would
    /// put the device clock more than `clockLeadSeconds` ahead of the receive time. A message is
    /// delivered seconds after it is made, so this is right unless it was held back an hour.
    private func instant(_ value: JSONValue, tic: [String: JSONValue]?, context: DecodeContext) -> Result<Instant, Rejection> {
        guard case .string(let text) = value else {
            return .failure(Rejection(.malformedPayload, "Time is \(value.kindDescription), expected a date-time string"))
        }
        if let local = LocalDateTime(parsing: text) {
            let candidates = context.timeZone.instants(of: local)
            switch candidates.count {
            case 0:
                return .failure(Rejection(.invalidLocalTime, "Time \(text) does not exist in \(context.timeZone.identifier) (clocks jump forward then)"))
            case 1:
                return .success(candidates[0])
            default:
                return .success(TasmotaDecoder.repeatedHourInstant(candidates, season: tic?["DATE"]?.stringValue?.first, context: context))
            }
        }
        if let instant = Instant.parseRFC3339(text) { return .success(instant) }
        return .failure(Rejection(.malformedPayload, "Time \(DecoderSupport.quoted(text)) is not a date-time such as 2026-11-27T10:12:54"))
    }

    /// Chooses between the instants of a repeated local time (earliest first): see `instant`.
    static func repeatedHourInstant(_ candidates: [Instant], season: Character?, context: DecodeContext) -> Instant {
        switch season {
        case "E": return candidates[0]
        case "H": return candidates[candidates.count - 1]
        default:
            let latestAllowed = context.receivedAt.adding(seconds: context.clockLeadSeconds)
            return candidates.last { $0 <= latestAllowed } ?? candidates[0]
        }
    }

    /// ENERGY.Power in W, informational: a value that is not a finite number is dropped rather
    /// than costing the reading its index. Multi-channel devices publish an array (summed).
    private func power(_ value: JSONValue?) -> Double? {
        switch value {
        case .number?:
            return value?.doubleValue
        case .array(let channels)?:
            var sum = 0.0
            for channel in channels {
                guard let watts = channel.doubleValue else { return nil }
                sum += watts
            }
            return sum.isFinite ? sum : nil
        default:
            return nil
        }
    }
}

// MARK: - OpenDTU

/// OpenDTU `yieldtotal`: a bare decimal number of kWh, no clock (the receive time is used).
public struct OpenDTUDecoder: ReadingDecoder {
    public init() {}

    public var format: DeviceFormat { .opendtu }

    public func decode(_ payload: [UInt8], context: DecodeContext) -> [Result<DecodedReading, Rejection>] {
        var start = 0
        var end = payload.count
        while start < end, DecoderSupport.isWhitespace(payload[start]) { start += 1 }
        while end > start, DecoderSupport.isWhitespace(payload[end - 1]) { end -= 1 }
        guard start < end else {
            return [.failure(Rejection(.malformedPayload, "empty payload: yieldtotal carries the total yield in kWh"))]
        }
        let text = String(decoding: payload[start..<end], as: UTF8.self)
        if DecoderSupport.isNotANumberText(text) {
            return [.failure(Rejection(.notANumber, "yieldtotal is \(DecoderSupport.quoted(text))"))]
        }
        guard let scaled = DecoderSupport.scaled(text, scale: 3) else {
            return [.failure(Rejection(.nonNumericField, "yieldtotal \(DecoderSupport.quoted(text)) is not a decimal number of kWh (or is too large)"))]
        }
        guard scaled >= 0 else {
            return [.failure(Rejection(.nonNumericField, "yieldtotal \(DecoderSupport.quoted(text)) is negative: a cumulative yield cannot be"))]
        }
        return [.success(DecodedReading(instant: context.receivedAt, energy: WattHours(scaled), powerWatts: nil, timeSource: .received))]
    }
}

// MARK: - TIC labels

/// The index rules shared by teleinfo2mqtt and Tasmota's TIC block.
enum TICLabels {
    enum Lookup {
        /// The labels of an index were there: its value in Wh, or why it is unusable.
        case found(Result<Int64, Rejection>)
        /// No index label (or an incomplete set of them): what was expected.
        case absent(String)
    }

    static let tempoLabels = ["BBRHCJB", "BBRHPJB", "BBRHCJW", "BBRHPJW", "BBRHCJR", "BBRHPJR"]

    /// The cumulative index in Wh: EAIT for a producer; for a consumer EAST (standard mode), else
    /// BASE, HCHC+HCHP, EJPHN+EJPHPM or the six Tempo registers (historic mode).
    static func index(in labels: [String: JSONValue], kind: DeviceKind) -> Lookup {
        if kind == .pv {
            guard labels["EAIT"] != nil else {
                return .absent("EAIT missing: a producer's index is EAIT, the injected energy (standard TIC mode)")
            }
            return sum(["EAIT"], in: labels, option: "producer")
        }
        if labels["EAST"] != nil { return sum(["EAST"], in: labels, option: "standard mode") }
        if labels["BASE"] != nil { return sum(["BASE"], in: labels, option: "base option") }
        if labels["HCHC"] != nil || labels["HCHP"] != nil { return sum(["HCHC", "HCHP"], in: labels, option: "off-peak option") }
        if labels["EJPHN"] != nil || labels["EJPHPM"] != nil { return sum(["EJPHN", "EJPHPM"], in: labels, option: "EJP option") }
        if tempoLabels.contains(where: { labels[$0] != nil }) { return sum(tempoLabels, in: labels, option: "Tempo option") }
        return .absent("no index label: expected EAST, BASE, HCHC+HCHP, EJPHN+EJPHPM or the six Tempo BBRH* labels")
    }

    private static func sum(_ names: [String], in labels: [String: JSONValue], option: String) -> Lookup {
        if let missing = names.first(where: { labels[$0] == nil }) {
            return .absent("\(missing) missing: the \(option) index is \(names.joined(separator: " + "))")
        }
        var total: Int64 = 0
        for name in names {
            guard let entry = labels[name] else { continue }
            switch wattHours(entry, label: name) {
            case .failure(let rejection):
                return .found(.failure(rejection))
            case .success(let value):
                let (sum, overflow) = total.addingReportingOverflow(value)
                guard !overflow else { return .found(.failure(Rejection(.nonNumericField, "\(names.joined(separator: " + ")) does not fit in 64 bits"))) }
                total = sum
            }
        }
        return .found(.success(total))
    }

    /// A label's Wh value. teleinfo2mqtt: `{"raw": "009058688", "value": 9058688}`: the value when
    /// it is an integer JSON number, else the raw text when it is all digits. Tasmota: a string
    /// of digits (an integer JSON number is accepted too).
    static func wattHours(_ entry: JSONValue, label: String) -> Result<Int64, Rejection> {
        if case .object(let fields) = entry {
            let value = fields["value"]
            let raw = fields["raw"]
            if let value, case .number(let text) = value, let wh = digits(text) { return .success(wh) }
            if let raw, case .string(let text) = raw, let wh = digits(text) { return .success(wh) }
            if value.map(isNotANumber) == true || raw.map(isNotANumber) == true {
                return .failure(Rejection(.notANumber, "\(label) is not a number (raw \(show(raw)), value \(show(value)))"))
            }
            return .failure(Rejection(.nonNumericField, "\(label) is not a whole number of Wh (raw \(show(raw)), value \(show(value)))"))
        }
        switch entry {
        case .string(let text):
            if let wh = digits(text) { return .success(wh) }
        case .number(let text):
            if let wh = digits(text) { return .success(wh) }
        default:
            break
        }
        if isNotANumber(entry) {
            return .failure(Rejection(.notANumber, "\(label) is not a number (\(show(entry)))"))
        }
        return .failure(Rejection(.nonNumericField, "\(label) is not a whole number of Wh (\(show(entry)))"))
    }

    /// A non-empty run of ASCII digits as a non-negative integer; nil otherwise or on overflow.
    static func digits(_ text: String) -> Int64? {
        var value: Int64 = 0
        var count = 0
        for byte in text.utf8 {
            guard byte >= 48 && byte <= 57 else { return nil }
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(Int64(byte - 48))
            guard !overflow1 && !overflow2 else { return nil }
            value = sum
            count += 1
        }
        return count > 0 ? value : nil
    }

    private static func isNotANumber(_ value: JSONValue) -> Bool {
        switch value {
        case .nonFinite: return true
        case .string(let text): return DecoderSupport.isNotANumberText(text)
        default: return false
        }
    }

    private static func show(_ value: JSONValue?) -> String {
        switch value {
        case nil: return "absent"
        case .string(let text)?: return DecoderSupport.quoted(text)
        case .number(let text)?, .nonFinite(let text)?: return DecoderSupport.quoted(text, quote: "")
        case let other?: return other.kindDescription
        }
    }
}

// MARK: - Shared helpers

enum DecoderSupport {
    /// Instants from 0001-01-01 to 9999-12-31 (the RFC 3339 range), in ms: keeps later
    /// arithmetic on instants far from Int64 overflow.
    static let instantRange: ClosedRange<Int64> = -62_135_596_800_000 ... 253_402_300_799_999

    static func parseJSON(_ payload: [UInt8]) -> Result<JSONValue, Rejection> {
        do throws(JSONParseError) {
            return .success(try JSONValue.parse(payload))
        } catch {
            return .failure(Rejection(.malformedPayload, "invalid JSON: \(error)"))
        }
    }

    static func parseObject(_ payload: [UInt8]) -> Result<[String: JSONValue], Rejection> {
        parseJSON(payload).flatMap { json in
            guard case .object(let members) = json else {
                return .failure(Rejection(.malformedPayload, "expected a JSON object, got \(json.kindDescription)"))
            }
            return .success(members)
        }
    }

    /// A cumulative index given in Wh: a whole, non-negative JSON number.
    static func wattHoursIndex(_ value: JSONValue, field: String) -> Result<Int64, Rejection> {
        switch value {
        case .number(let text):
            guard let wh = scaled(text, scale: 0, rounding: .reject) else {
                if text.utf8.contains(where: { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }),
                   scaled(text, scale: 0) != nil {
                    return .failure(Rejection(.nonNumericField, "\(field) \(text) is not a whole number of Wh"))
                }
                return .failure(Rejection(.nonNumericField, "\(field) \(quoted(text, quote: "")) does not fit in 64 bits or is not a whole number of Wh"))
            }
            guard wh >= 0 else {
                return .failure(Rejection(.nonNumericField, "\(field) \(text) is negative: a cumulative index cannot be"))
            }
            return .success(wh)
        default:
            return .failure(nonNumber(value, field: field, expected: "an integer JSON number of Wh"))
        }
    }

    /// A cumulative index given in kWh (a JSON number), converted exactly to Wh.
    static func kilowattHoursIndex(_ value: JSONValue, field: String) -> Result<Int64, Rejection> {
        switch value {
        case .number(let text):
            guard let wh = scaled(text, scale: 3) else {
                return .failure(Rejection(.nonNumericField, "\(field) \(quoted(text, quote: "")) kWh does not fit in 64 bits of Wh"))
            }
            guard wh >= 0 else {
                return .failure(Rejection(.nonNumericField, "\(field) \(text) is negative: a cumulative index cannot be"))
            }
            return .success(wh)
        default:
            return .failure(nonNumber(value, field: field, expected: "a JSON number of kWh"))
        }
    }

    /// An optional power in W: a finite JSON number, or null / absent.
    static func watts(_ value: JSONValue, field: String) -> Result<Double?, Rejection> {
        switch value {
        case .null:
            return .success(nil)
        case .number(let text):
            guard let watts = value.doubleValue else {
                return .failure(Rejection(.nonNumericField, "\(field) \(quoted(text, quote: "")) is out of range"))
            }
            return .success(watts)
        default:
            return .failure(nonNumber(value, field: field, expected: "a JSON number of W"))
        }
    }

    /// Why a value that should be a number is not: `notANumber` for NaN / infinity, in a bare
    /// token or a string; `nonNumericField` for anything else.
    static func nonNumber(_ value: JSONValue, field: String, expected: String) -> Rejection {
        switch value {
        case .nonFinite(let token):
            return Rejection(.notANumber, "\(field) is \(token)")
        case .string(let text) where isNotANumberText(text):
            return Rejection(.notANumber, "\(field) is \(quoted(text))")
        case .string(let text):
            return Rejection(.nonNumericField, "\(field) is a string (\(quoted(text))): it must be \(expected)")
        default:
            return Rejection(.nonNumericField, "\(field) is \(value.kindDescription): it must be \(expected)")
        }
    }

    /// `nan`, `NaN`, `inf`, `-Infinity`...: what a device writes when it failed to read its meter.
    static func isNotANumberText(_ text: String) -> Bool {
        var body = Substring(text)
        while let first = body.first, first == " " { body = body.dropFirst() }
        while let last = body.last, last == " " { body = body.dropLast() }
        if body.first == "-" || body.first == "+" { body = body.dropFirst() }
        guard body.utf8.count <= 8 else { return false }
        let lower = body.lowercased()
        return lower == "nan" || lower == "inf" || lower == "infinity"
    }

    /// `DecimalText.scaled`, refusing exponents it cannot take safely (its `abs` of a parsed
    /// exponent traps on Int.min), and at most 2,000 characters of text.
    static func scaled(_ text: String, scale: Int, rounding: DecimalText.Rounding = .halfAwayFromZero) -> Int64? {
        let utf8 = text.utf8
        guard utf8.count <= 2_000 else { return nil }
        if let mark = utf8.firstIndex(where: { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) {
            var exponent = utf8[utf8.index(after: mark)...]
            if let sign = exponent.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { exponent = exponent.dropFirst() }
            guard exponent.drop(while: { $0 == UInt8(ascii: "0") }).count <= 3 else { return nil }
        }
        return DecimalText.scaled(text, scale: scale, rounding: rounding)
    }

    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }

    /// Text for a rejection detail: at most 40 characters, control characters replaced.
    static func quoted(_ text: String, quote: String = "\"") -> String {
        let limit = 40
        var shown = ""
        var count = 0
        for scalar in text.unicodeScalars {
            if count == limit {
                shown += "…"
                break
            }
            shown.unicodeScalars.append(scalar.value < 0x20 || scalar.value == 0x7F ? "?" : scalar)
            count += 1
        }
        return quote + shown + quote
    }
}

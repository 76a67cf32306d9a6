/// A JSON value read by a strict parser over UTF-8 bytes. Numbers keep their literal text so that
/// decimals convert exactly (through `DecimalText`), never through binary floating point.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    /// A number as written, e.g. `4512.877` or `-1e3` (valid JSON number syntax).
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])
    /// A bare `NaN`, `nan`, `Infinity`, `-Infinity`, `inf`... token: not JSON, but buggy devices emit
    /// it where a number belongs, and the decoders must say "not a number" rather than "malformed".
    case nonFinite(String)

    /// The deepest nesting of arrays and objects accepted (a guard against stack exhaustion).
    public static let maxDepth = 32

    /// Parses one JSON document: a single value, optionally surrounded by whitespace, nothing else.
    /// Strict: no comments, no trailing commas, no duplicate keys, no control characters or invalid
    /// UTF-8 inside strings, no lone surrogates; the only extension is the `nonFinite` tokens.
    public static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError> = bytes.withUnsafeBufferPointer { buffer in
            var parser = JSONParser(buffer)
            do throws(JSONParseError) {
                return .success(try parser.parseDocument())
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Parses the UTF-8 bytes of `text`.
    public static func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        try parse(Array(text.utf8))
    }

    /// The member named `key` when this is an object that has one.
    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    /// The element at `index` when this is an array long enough.
    public subscript(index: Int) -> JSONValue? {
        if case .array(let elements) = self, elements.indices.contains(index) { return elements[index] }
        return nil
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let members) = self { return members }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    public var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    /// The literal text of a number.
    public var numberText: String? {
        if case .number(let text) = self { return text }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let flag) = self { return flag }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// A number as a `Double` when it is finite as one (for informational values such as power,
    /// never for energy or money).
    public var doubleValue: Double? {
        guard case .number(let text) = self, let value = Double(text), value.isFinite else { return nil }
        return value
    }

    /// What kind of value this is, for messages: "a string", "an object"...
    public var kindDescription: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        case .nonFinite(let token): return "the non-finite token \(token)"
        }
    }
}

/// Why a payload is not JSON, with the byte offset where the parser stopped.
public struct JSONParseError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    /// Offset of the offending byte from the start of the input (the input's length at its end).
    public var offset: Int

    public init(_ message: String, offset: Int) {
        self.message = message
        self.offset = offset
    }

    public var description: String { "\(message) at byte \(offset)" }
}

private extension UInt8 {
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let slash = UInt8(ascii: "/")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
    static let colon = UInt8(ascii: ":")
    static let comma = UInt8(ascii: ",")
    static let minus = UInt8(ascii: "-")
    static let plus = UInt8(ascii: "+")
    static let dot = UInt8(ascii: ".")
    static let digit0 = UInt8(ascii: "0")
    static let digit9 = UInt8(ascii: "9")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")
    static let newline = UInt8(ascii: "\n")
    static let carriageReturn = UInt8(ascii: "\r")

    var isDigit: Bool { self >= .digit0 && self <= .digit9 }
    var isLetter: Bool { (self | 0x20) >= UInt8(ascii: "a") && (self | 0x20) <= UInt8(ascii: "z") }
    var isJSONWhitespace: Bool { self == .space || self == .newline || self == .carriageReturn || self == .tab }
}

/// Recursive descent over a borrowed buffer; `index` is the next unread byte.
private struct JSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0
    var depth = 0
    /// Reused for strings with escapes, the only ones that are not a plain slice of the input.
    var scratch: [UInt8] = []

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    mutating func parseDocument() throws(JSONParseError) -> JSONValue {
        skipWhitespace()
        let value = try parseValue()
        skipWhitespace()
        guard index == bytes.count else { throw failure("unexpected data after the JSON value") }
        return value
    }

    // MARK: Values

    mutating func parseValue() throws(JSONParseError) -> JSONValue {
        guard index < bytes.count else { throw failure("unexpected end of input, expected a value") }
        let byte = bytes[index]
        switch byte {
        case .openBrace:
            return try parseObject()
        case .openBracket:
            return try parseArray()
        case .quote:
            return .string(try parseString())
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n") where hasLiteral("null"):
            index += 4
            return .null
        case .minus where index + 1 < bytes.count && bytes[index + 1].isLetter:
            return try parseNonFinite()
        case .minus, .digit0 ... .digit9:
            return try parseNumber()
        case _ where byte.isLetter:
            return try parseNonFinite()
        default:
            throw failure("unexpected character \(Self.show(byte)), expected a value")
        }
    }

    mutating func parseObject() throws(JSONParseError) -> JSONValue {
        try enterContainer()
        index += 1
        skipWhitespace()
        // Room for a meter's usual handful of members, so the first ones do not regrow it.
        var members: [String: JSONValue] = Dictionary(minimumCapacity: 8)
        if index < bytes.count, bytes[index] == .closeBrace {
            index += 1
            depth -= 1
            return .object(members)
        }
        while true {
            guard index < bytes.count, bytes[index] == .quote else { throw failure(expected: "a string key") }
            let keyOffset = index
            let key = try parseString()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == .colon else { throw failure(expected: "':' after a key") }
            index += 1
            skipWhitespace()
            let value = try parseValue()
            // Last-wins would let two devices' views of one label disagree silently.
            if members.updateValue(value, forKey: key) != nil {
                throw JSONParseError("duplicate key \(Self.shorten(key))", offset: keyOffset)
            }
            skipWhitespace()
            guard index < bytes.count else { throw failure(expected: "',' or '}'") }
            if bytes[index] == .comma {
                index += 1
                skipWhitespace()
            } else if bytes[index] == .closeBrace {
                index += 1
                depth -= 1
                return .object(members)
            } else {
                throw failure(expected: "',' or '}'")
            }
        }
    }

    mutating func parseArray() throws(JSONParseError) -> JSONValue {
        try enterContainer()
        index += 1
        skipWhitespace()
        var elements: [JSONValue] = []
        if index < bytes.count, bytes[index] == .closeBracket {
            index += 1
            depth -= 1
            return .array(elements)
        }
        while true {
            elements.append(try parseValue())
            skipWhitespace()
            guard index < bytes.count else { throw failure(expected: "',' or ']'") }
            if bytes[index] == .comma {
                index += 1
                skipWhitespace()
            } else if bytes[index] == .closeBracket {
                index += 1
                depth -= 1
                return .array(elements)
            } else {
                throw failure(expected: "',' or ']'")
            }
        }
    }

    mutating func enterContainer() throws(JSONParseError) {
        depth += 1
        guard depth <= JSONValue.maxDepth else {
            throw failure("arrays and objects nested deeper than \(JSONValue.maxDepth) levels")
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, kept as text.
    mutating func parseNumber() throws(JSONParseError) -> JSONValue {
        let start = index
        if bytes[index] == .minus { index += 1 }
        guard index < bytes.count, bytes[index].isDigit else { throw failure(expected: "a digit in a number") }
        if bytes[index] == .digit0 {
            index += 1
            if index < bytes.count, bytes[index].isDigit { throw failure("a number cannot have a leading zero") }
        } else {
            skipDigits()
        }
        if index < bytes.count, bytes[index] == .dot {
            index += 1
            guard index < bytes.count, bytes[index].isDigit else { throw failure(expected: "a digit after the decimal point") }
            skipDigits()
        }
        if index < bytes.count, (bytes[index] | 0x20) == UInt8(ascii: "e") {
            index += 1
            if index < bytes.count, bytes[index] == .plus || bytes[index] == .minus { index += 1 }
            guard index < bytes.count, bytes[index].isDigit else { throw failure(expected: "a digit in the exponent") }
            skipDigits()
        }
        return .number(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))
    }

    /// `NaN`, `nan`, `inf`, `Infinity`, with an optional leading minus, in any letter case.
    mutating func parseNonFinite() throws(JSONParseError) -> JSONValue {
        let start = index
        if bytes[index] == .minus { index += 1 }
        let lettersStart = index
        while index < bytes.count, bytes[index].isLetter, index - lettersStart < 9 { index += 1 }
        let letters = String(decoding: UnsafeBufferPointer(rebasing: bytes[lettersStart..<index]), as: UTF8.self).lowercased()
        guard letters == "nan" || letters == "inf" || letters == "infinity",
              index == bytes.count || !bytes[index].isLetter
        else {
            index = start
            throw failure("unexpected character \(Self.show(bytes[start])), expected a value")
        }
        return .nonFinite(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))
    }

    // MARK: Strings

    /// Reads a string whose opening quote is at `index`. Without escapes (the usual case) the
    /// content is decoded straight from the input slice, once.
    mutating func parseString() throws(JSONParseError) -> String {
        index += 1
        let start = index
        var isASCII = true
        while index < bytes.count {
            let byte = bytes[index]
            if byte == .quote {
                let content = UnsafeBufferPointer(rebasing: bytes[start..<index])
                index += 1
                if isASCII { return String(decoding: content, as: UTF8.self) }
                guard let text = String(validating: content, as: UTF8.self) else {
                    throw JSONParseError("invalid UTF-8 in a string", offset: start)
                }
                return text
            }
            if byte == .backslash { return try parseEscapedString(from: start) }
            if byte < 0x20 { throw failure("control character \(Self.show(byte)) in a string (it must be escaped)") }
            if byte >= 0x80 { isASCII = false }
            index += 1
        }
        throw JSONParseError("unterminated string", offset: start - 1)
    }

    /// Continues a string at its first backslash, building the UTF-8 content in `scratch`.
    mutating func parseEscapedString(from start: Int) throws(JSONParseError) -> String {
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            if byte == .quote {
                index += 1
                guard let text = String(validating: scratch, as: UTF8.self) else {
                    throw JSONParseError("invalid UTF-8 in a string", offset: start)
                }
                return text
            }
            if byte < 0x20 { throw failure("control character \(Self.show(byte)) in a string (it must be escaped)") }
            if byte != .backslash {
                scratch.append(byte)
                index += 1
                continue
            }
            let escapeOffset = index
            index += 1
            guard index < bytes.count else { break }
            let escaped = bytes[index]
            index += 1
            switch escaped {
            case .quote, .backslash, .slash: scratch.append(escaped)
            case UInt8(ascii: "b"): scratch.append(0x08)
            case UInt8(ascii: "f"): scratch.append(0x0C)
            case UInt8(ascii: "n"): scratch.append(0x0A)
            case UInt8(ascii: "r"): scratch.append(0x0D)
            case UInt8(ascii: "t"): scratch.append(0x09)
            case UInt8(ascii: "u"):
                let unit = try readHex4()
                var scalarValue = UInt32(unit)
                if (0xD800...0xDBFF).contains(unit) {
                    guard index + 1 < bytes.count, bytes[index] == .backslash, bytes[index + 1] == UInt8(ascii: "u") else {
                        throw JSONParseError("high surrogate without a low surrogate after it", offset: escapeOffset)
                    }
                    index += 2
                    let low = try readHex4()
                    guard (0xDC00...0xDFFF).contains(low) else {
                        throw JSONParseError("high surrogate without a low surrogate after it", offset: escapeOffset)
                    }
                    scalarValue = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(unit) {
                    throw JSONParseError("low surrogate without a high surrogate before it", offset: escapeOffset)
                }
                appendUTF8(scalarValue)
            default:
                throw JSONParseError("invalid escape \\\(Self.show(escaped, quoted: false)) in a string", offset: escapeOffset)
            }
        }
        throw JSONParseError("unterminated string", offset: start - 1)
    }

    mutating func readHex4() throws(JSONParseError) -> UInt16 {
        guard index + 4 <= bytes.count else { throw failure("unexpected end of input in a \\u escape") }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case .digit0 ... .digit9: digit = byte - .digit0
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw failure("invalid hex digit \(Self.show(byte)) in a \\u escape")
            }
            value = value << 4 | UInt16(digit)
            index += 1
        }
        return value
    }

    mutating func appendUTF8(_ scalar: UInt32) {
        switch scalar {
        case ..<0x80:
            scratch.append(UInt8(scalar))
        case ..<0x800:
            scratch.append(UInt8(0xC0 | scalar >> 6))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        case ..<0x10000:
            scratch.append(UInt8(0xE0 | scalar >> 12))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        default:
            scratch.append(UInt8(0xF0 | scalar >> 18))
            scratch.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        }
    }

    // MARK: Helpers

    @inline(__always) mutating func skipWhitespace() {
        while index < bytes.count, bytes[index].isJSONWhitespace { index += 1 }
    }

    @inline(__always) mutating func skipDigits() {
        while index < bytes.count, bytes[index].isDigit { index += 1 }
    }

    func hasLiteral(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { return false }
        let pointer = literal.utf8Start
        for offset in 0..<count where bytes[index + offset] != pointer[offset] { return false }
        return true
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        guard hasLiteral(literal) else {
            throw failure(index + literal.utf8CodeUnitCount > bytes.count ? "unexpected end of input in \(literal)" : "invalid literal, expected \(literal)")
        }
        index += literal.utf8CodeUnitCount
    }

    func failure(_ message: String) -> JSONParseError {
        JSONParseError(message, offset: index)
    }

    func failure(expected: String) -> JSONParseError {
        if index >= bytes.count { return JSONParseError("unexpected end of input, expected \(expected)", offset: index) }
        return JSONParseError("unexpected character \(Self.show(bytes[index])), expected \(expected)", offset: index)
    }

    /// A byte as a person can read it in a message: 'x' when printable ASCII, else 0xNN.
    static func show(_ byte: UInt8, quoted: Bool = true) -> String {
        if byte >= 0x21 && byte < 0x7F {
            let character = String(decoding: [byte], as: UTF8.self)
            return quoted ? "'\(character)'" : character
        }
        let hex = String(byte, radix: 16, uppercase: true)
        return "0x" + (hex.count < 2 ? "0" : "") + hex
    }

    static func shorten(_ text: String) -> String {
        let limit = 40
        return text.count <= limit ? "\"\(text)\"" : "\"\(text.prefix(limit))…\""
    }
}

import Testing
@testable import EnergyCore
@testable import EnergyHub
import HubCore
import Shared

/// The parse error of `text`, or nil when it parses.
private func parseError(_ text: String) -> JSONParseError? {
    parseError(Array(text.utf8))
}

private func parseError(_ bytes: [UInt8]) -> JSONParseError? {
    do {
        _ = try JSONValue.parse(bytes)
        return nil
    } catch {
        return error
    }
}

private func parsed(_ text: String) -> JSONValue? {
    try? JSONValue.parse(text)
}

@Suite("JSONValue parser")
struct JSONValueTests {
    @Test func scalars() throws {
        #expect(try JSONValue.parse("null") == .null)
        #expect(try JSONValue.parse("true") == .bool(true))
        #expect(try JSONValue.parse("false") == .bool(false))
        #expect(try JSONValue.parse("\"hé\"") == .string("hé"))
        #expect(try JSONValue.parse("\"\"") == .string(""))
    }

    @Test(arguments: ["0", "-0", "4512.877", "19290594", "-12.5", "1e3", "1E+3", "0.5e-2", "-0.0", "123456789012345678901234567890"])
    func numbersKeepTheirLiteralText(_ text: String) throws {
        #expect(try JSONValue.parse(text) == .number(text))
        #expect(try JSONValue.parse("[\(text)]") == .array([.number(text)]))
    }

    @Test(arguments: ["01", "-", "1.", ".5", "1e", "1e+", "+1", "--1", "0x10", "1.2.3", "-.5", "00", "1ee2", "- 1"])
    func invalidNumbersAreRejected(_ text: String) {
        #expect(parseError(text) != nil, "\(text) should not parse")
    }

    @Test func numberAtEndOfObject() throws {
        let value = try JSONValue.parse(#"{"ts":"2026-11-27T10:00:00Z","energy_wh":19290594,"power_w":208.5}"#)
        #expect(value["ts"] == .string("2026-11-27T10:00:00Z"))
        #expect(value["energy_wh"] == .number("19290594"))
        #expect(value["power_w"] == .number("208.5"))
        #expect(value.objectValue?.count == 3)
    }

    @Test func whitespaceAroundAndInsideIsAccepted() throws {
        let value = try JSONValue.parse(" \t\r\n{ \"a\" :\n[ 1 ,\t2 ] , \"b\" : { } }\n\r\t ")
        #expect(value == .object(["a": .array([.number("1"), .number("2")]), "b": .object([:])]))
    }

    @Test(arguments: ["", " ", "\n\t", "{} {}", "{}x", "1 2", "null,", "[1]]", "\"a\" \"b\"", "{}\u{0}", "\u{FEFF}{}"])
    func emptyInputOrTrailingGarbageIsRejected(_ text: String) {
        #expect(parseError(text) != nil, "\(text.debugDescription) should not parse")
    }

    @Test func trailingGarbageErrorSaysWhere() throws {
        let error = try #require(parseError("{\"a\":1} x"))
        #expect(error.offset == 8)
        #expect(error.message.contains("after the JSON value"))
        #expect(error.description == "\(error.message) at byte 8")
    }

    @Test(arguments: [
        "{\"a\":1,}", "[1,]", "[,1]", "{,}", "{\"a\" 1}", "{\"a\":}", "{'a':1}", "{a:1}", "[1 2]",
        "{\"a\":1 \"b\":2}", "// c\n{}", "/* c */ {}", "{\"a\":1}//", "[", "{", "{\"a\"", "{\"a\":", "[1,",
        "tru", "fals", "nul", "True", "NULL", "undefined", "[true false]", "\"abc", "{\"a\":1]", "[1}",
    ])
    func structuralErrorsAreRejected(_ text: String) {
        #expect(parseError(text) != nil, "\(text.debugDescription) should not parse")
    }

    @Test func errorOffsets() throws {
        #expect(parseError("{\"a\":1,}")?.offset == 7)
        #expect(parseError("[1,2")?.offset == 4)
        #expect(parseError("[1,2")?.message.contains("end of input") == true)
        let truncated = try #require(parseError("{\"Time\":\"2026-11-27T10:1"))
        #expect(truncated.message.contains("unterminated string"))
        #expect(truncated.offset == 8)
        #expect(parseError("{\"a\":x}")?.offset == 5)
    }

    @Test func escapes() throws {
        #expect(try JSONValue.parse(#""a\"b\\c\/d""#) == .string("a\"b\\c/d"))
        #expect(try JSONValue.parse(#""\b\f\n\r\t""#) == .string("\u{8}\u{C}\n\r\t"))
        #expect(try JSONValue.parse(#""\u00e9t\u00C9""#) == .string("étÉ"))
        #expect(try JSONValue.parse(#""\u20AC 5""#) == .string("€ 5"))
        #expect(try JSONValue.parse(#""\u0000""#) == .string("\u{0}"))
        #expect(try JSONValue.parse(#""\ud83d\ude00!""#) == .string("😀!"))
        #expect(try JSONValue.parse(#""x\uD834\uDD1Ey""#) == .string("x𝄞y"))
        #expect(try JSONValue.parse(#""raw é then \n escape""#) == .string("raw é then \n escape"))
        #expect(try JSONValue.parse(#"{"k\u0065y":1}"#) == .object(["key": .number("1")]))
        // Two escaped strings in a row reuse the scratch buffer.
        #expect(try JSONValue.parse(#"["a\nb","c\td"]"#) == .array([.string("a\nb"), .string("c\td")]))
    }

    @Test(arguments: [
        #""\ud83d""#, #""\ud83d x""#, #""\ud83d\u0041""#, #""\ude00""#, #""\ud83d\n""#,
        #""\x41""#, #""\'""#, #""\u12G4""#, #""\u12""#, #""\u""#, #""\"#, #""abc\"#,
    ])
    func invalidEscapesAreRejected(_ text: String) {
        #expect(parseError(text) != nil, "\(text) should not parse")
    }

    @Test func rawControlCharactersInStringsAreRejected() throws {
        for byte in UInt8(0)..<0x20 {
            let bytes: [UInt8] = [UInt8(ascii: "\""), UInt8(ascii: "a"), byte, UInt8(ascii: "\"")]
            let error = parseError(bytes)
            #expect(error?.message.contains("control character") == true, "byte \(byte)")
            #expect(error?.offset == 2)
            // Also after an escape (the slow path).
            let escaped: [UInt8] = Array(#""\n"#.utf8) + [byte, UInt8(ascii: "\"")]
            #expect(parseError(escaped) != nil, "byte \(byte) after an escape")
        }
        #expect(try JSONValue.parse([0x22, 0x7F, 0x22]) == .string("\u{7F}"))
    }

    @Test func utf8IsValidated() throws {
        #expect(try JSONValue.parse(Array("\"Hélène 😀 €\"".utf8)) == .string("Hélène 😀 €"))
        let invalid: [[UInt8]] = [
            [0x22, 0xFF, 0x22],               // never valid
            [0x22, 0xC3, 0x22],               // truncated sequence
            [0x22, 0xC0, 0x80, 0x22],         // overlong NUL
            [0x22, 0xED, 0xA0, 0x80, 0x22],   // an encoded surrogate
            [0x22, 0x5C, 0x6E, 0xFF, 0x22],   // after an escape
        ]
        for bytes in invalid {
            #expect(parseError(bytes)?.message.contains("UTF-8") == true, "\(bytes)")
        }
        // Outside strings, a non-ASCII byte is just an unexpected character.
        #expect(parseError([0xC3, 0xA9]) != nil)
    }

    @Test func nestingUpToTheLimitIsAccepted() throws {
        let depth = JSONValue.maxDepth
        let arrays = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        #expect(parseError(arrays) == nil)
        let objects = String(repeating: "{\"a\":", count: depth - 1) + "{}" + String(repeating: "}", count: depth - 1)
        #expect(parseError(objects) == nil)
    }

    @Test func nestingBeyondTheLimitIsRejected() throws {
        let depth = JSONValue.maxDepth + 1
        let arrays = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        #expect(parseError(arrays)?.message.contains("nested deeper") == true)
        let mixed = String(repeating: "{\"a\":[", count: 17) + String(repeating: "]}", count: 17)
        #expect(parseError(mixed) != nil)
        // Far deeper input must fail fast, not exhaust the stack.
        #expect(parseError(String(repeating: "[", count: 200_000)) != nil)
        #expect(parseError(String(repeating: "{\"a\":", count: 100_000)) != nil)
    }

    @Test func siblingsDoNotCountAsDepth() throws {
        let wide = "[" + Array(repeating: "[[1]]", count: 1_000).joined(separator: ",") + "]"
        #expect(try JSONValue.parse(wide).arrayValue?.count == 1_000)
    }

    @Test func duplicateKeysAreRejected() throws {
        let error = try #require(parseError(#"{"EAST": 1, "EAST": 2}"#))
        #expect(error.message.contains("duplicate key"))
        #expect(error.offset == 12)
        #expect(parseError(#"{"a": {"x": 1}, "b": {"x": 1}}"#) == nil)
    }

    @Test(arguments: ["NaN", "nan", "NAN", "Infinity", "-Infinity", "inf", "-inf", "INF", "infinity", "-nan"])
    func nonFiniteTokens(_ token: String) throws {
        #expect(try JSONValue.parse(token) == .nonFinite(token))
        #expect(try JSONValue.parse("{\"v\": \(token)}") == .object(["v": .nonFinite(token)]))
        #expect(try JSONValue.parse("[\(token),1]") == .array([.nonFinite(token), .number("1")]))
    }

    @Test(arguments: ["nanx", "Nope", "infinit", "infinityy", "-", "-x", "Inf1", "nan-", "NaNaN", "i"])
    func otherBareWordsAreRejected(_ text: String) {
        #expect(parseError(text) != nil, "\(text) should not parse")
    }

    @Test func nonFiniteDoesNotShadowNull() throws {
        #expect(try JSONValue.parse("[null,nan]") == .array([.null, .nonFinite("nan")]))
    }

    @Test func accessors() throws {
        let value = try JSONValue.parse(#"{"s":"x","n":208.5,"i":3,"b":true,"z":null,"a":[1,"two"],"o":{"k":"v"},"big":1e400}"#)
        #expect(value["s"]?.stringValue == "x")
        #expect(value["n"]?.numberText == "208.5")
        #expect(value["n"]?.doubleValue == 208.5)
        #expect(value["big"]?.doubleValue == nil)
        #expect(value["s"]?.doubleValue == nil)
        #expect(value["b"]?.boolValue == true)
        #expect(value["z"]?.isNull == true)
        #expect(value["s"]?.isNull == false)
        #expect(value["a"]?[1]?.stringValue == "two")
        #expect(value["a"]?[2] == nil)
        #expect(value["a"]?[-1] == nil)
        #expect(value["o"]?["k"]?.stringValue == "v")
        #expect(value["o"]?.objectValue?.count == 1)
        #expect(value["a"]?.arrayValue?.count == 2)
        #expect(value["missing"] == nil)
        #expect(value["s"]?["k"] == nil)
        #expect(value[0] == nil)
        #expect(value.stringValue == nil)
        #expect(value["i"]?.kindDescription == "a number")
        #expect(JSONValue.nonFinite("NaN").kindDescription.contains("NaN"))
    }

    @Test func objectEqualityIgnoresKeyOrder() throws {
        #expect(try JSONValue.parse(#"{"a":1,"b":[true,null]}"#) == JSONValue.parse(#"{"b":[true,null],"a":1}"#))
        #expect(try JSONValue.parse("1.0") != JSONValue.parse("1"))
    }

    @Test func sampleFrameParses() throws {
        let text = #"{"ADSC": {"raw": "041876097381", "value": "041876097381"}, "SMAXSN": {"raw": "02740", "value": 2740, "timestamp": {"date": "2026-11-27T05:53:34.000Z", "dst": "winter"}}}"#
        let value = try JSONValue.parse(text)
        #expect(value["SMAXSN"]?["timestamp"]?["dst"] == .string("winter"))
        #expect(value["ADSC"]?["raw"] == .string("041876097381"))
    }
}

import Foundation
@testable import HubCore
import Shared
import Testing

@Suite struct DecimalTextTests {
    /// Plain integers take a path without arrays; it gives what the general path gives (or
    /// leaves the text to it), sign, leading zeros, scale and Int64's ends included.
    @Test func plainIntegersGiveWhatTheGeneralPathGives() {
        var texts = ["0", "-0", "+0", "7", "007", "-42", "+42", "1000000", "21403709", "-", "+", "", "--1", "1-", "12a", " 1", "1.0", "1e3",
                     "9223372036854775807", "-9223372036854775807", "-9223372036854775808", "9223372036854775808", "92233720368547758070"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let digits = Int.random(in: 1...20, using: &generator)
            let sign = ["", "-", "+"].randomElement(using: &generator)!
            texts.append(sign + String((0..<digits).map { _ in Character(String(Int.random(in: 0...9, using: &generator))) }))
        }
        for text in texts {
            for scale in 0...6 {
                for rounding in [DecimalText.Rounding.reject, .halfAwayFromZero] {
                    let general = DecimalText.generalScaled(text, scale: scale, rounding: rounding)
                    if let plain = DecimalText.plainIntegerScaled(text, scale: scale) {
                        #expect(plain == general, "\(text) at scale \(scale)")
                    }
                    #expect(DecimalText.scaled(text, scale: scale, rounding: rounding) == general, "\(text) at scale \(scale)")
                }
            }
        }
        #expect(DecimalText.plainIntegerScaled("1000000", scale: 0) == 1_000_000)
        #expect(DecimalText.plainIntegerScaled("-42", scale: 3) == -42_000)
        #expect(DecimalText.plainIntegerScaled("1.5", scale: 3) == nil, "left to the general path")
    }

    @Test func scalesExactly() {
        #expect(DecimalText.scaled("4512.877", scale: 3, rounding: .reject) == 4_512_877)
        #expect(DecimalText.scaled("4512.877", scale: 6, rounding: .reject) == 4_512_877_000)
        #expect(DecimalText.scaled("0.1", scale: 1, rounding: .reject) == 1, "no binary floating point on the way")
        #expect(DecimalText.scaled("0.3", scale: 17, rounding: .reject) == 30_000_000_000_000_000)
        #expect(DecimalText.scaled("-0.5", scale: 1, rounding: .reject) == -5)
        #expect(DecimalText.scaled("+2", scale: 2, rounding: .reject) == 200)
        #expect(DecimalText.scaled("-0", scale: 2, rounding: .reject) == 0)
        #expect(DecimalText.scaled("007.50", scale: 2, rounding: .reject) == 750)
        #expect(DecimalText.scaled("1.", scale: 0, rounding: .reject) == 1)
        #expect(DecimalText.scaled(".25", scale: 2, rounding: .reject) == 25)
        #expect(DecimalText.scaled("1.2300", scale: 2, rounding: .reject) == 123, "trailing zeros beyond the scale are exact")
        #expect(DecimalText.scaled("1e3", scale: 0, rounding: .reject) == 1000)
        #expect(DecimalText.scaled("1E+3", scale: 0, rounding: .reject) == 1000)
        #expect(DecimalText.scaled("4.512877e3", scale: 3, rounding: .reject) == 4_512_877)
        #expect(DecimalText.scaled("12345e-3", scale: 3, rounding: .reject) == 12_345)
        #expect(DecimalText.scaled("21403.709"[...], scale: 3, rounding: .reject) == 21_403_709, "substrings too")
    }

    @Test func rejectsDigitsBeyondTheScale() {
        #expect(DecimalText.scaled("0.125", scale: 2, rounding: .reject) == nil)
        #expect(DecimalText.scaled("1.5", scale: 0, rounding: .reject) == nil)
        #expect(DecimalText.scaled("1e-39", scale: 0, rounding: .reject) == nil)
        #expect(DecimalText.scaled("0e-39", scale: 0, rounding: .reject) == 0)
    }

    @Test func roundsHalfAwayFromZero() {
        let cases: [(String, Int64)] = [
            ("0.125", 13), ("0.124", 12), ("0.1249999", 12), ("0.135", 14), ("-0.125", -13), ("-0.124", -12),
            ("0.005", 1), ("0.0049", 0), ("-0.005", -1), ("2.5e-2", 3), ("5e-3", 1), ("5e-4", 0), ("1e-30", 0), ("99.995", 10_000),
        ]
        for (text, expected) in cases {
            #expect(DecimalText.scaled(text, scale: 2, rounding: .halfAwayFromZero) == expected, "\(text)")
        }
        #expect(DecimalText.scaled("2.5", scale: 0, rounding: .halfAwayFromZero) == 3)
        #expect(DecimalText.scaled("-2.5", scale: 0, rounding: .halfAwayFromZero) == -3)
        #expect(DecimalText.scaled("0.5", scale: 0, rounding: .halfAwayFromZero) == 1)
        #expect(DecimalText.scaled("0.49999", scale: 0, rounding: .halfAwayFromZero) == 0)
    }

    @Test(arguments: ["", "-", "+", ".", "-.", "e5", "1e", "1e+", "1e5.5", "1e 5", "1.2.3", "--1", "+-1", "1-", "abc", "1a", " 1", "1 ",
                      "0x10", "1,5", "NaN", "nan", "inf", "-inf", "Infinity", "1_000", "١٢", "½"])
    func rejectsWhatIsNotADecimal(_ text: String) {
        #expect(DecimalText.scaled(text, scale: 2, rounding: .reject) == nil, "\(text)")
        #expect(DecimalText.scaled(text, scale: 2, rounding: .halfAwayFromZero) == nil, "\(text)")
    }

    @Test func overflowIsNil() {
        #expect(DecimalText.scaled("9223372036854775807", scale: 0, rounding: .reject) == Int64.max)
        #expect(DecimalText.scaled("-9223372036854775807", scale: 0, rounding: .reject) == -Int64.max)
        #expect(DecimalText.scaled("9223372036854775808", scale: 0, rounding: .reject) == nil)
        #expect(DecimalText.scaled("92233720368547758.07", scale: 2, rounding: .reject) == Int64.max)
        #expect(DecimalText.scaled("92233720368547758.08", scale: 2, rounding: .reject) == nil)
        #expect(DecimalText.scaled("9223372036854775807.5", scale: 0, rounding: .halfAwayFromZero) == nil, "rounding up overflows")
        #expect(DecimalText.scaled("9223372036854775807.4", scale: 0, rounding: .halfAwayFromZero) == Int64.max)
        #expect(DecimalText.scaled("100000000000000000000", scale: 0, rounding: .reject) == nil)
        #expect(DecimalText.scaled(String(repeating: "9", count: 100_000), scale: 2, rounding: .reject) == nil)
        #expect(DecimalText.scaled(String(repeating: "0", count: 1000) + "42", scale: 2, rounding: .reject) == 4200, "leading zeros do not overflow")
    }

    @Test func hugeExponentsAreNilWithoutCrashing() {
        for text in ["1e39", "1e40", "1e-40", "1e400", "1e-400", "1e999999999999999999999999", "1e-999999999999999999999999",
                     "1e9223372036854775807", "1e-9223372036854775808", "9.99e38", "0.1e1000"] {
            #expect(DecimalText.scaled(text, scale: 3, rounding: .reject) == nil, "\(text)")
        }
        #expect(DecimalText.scaled("1e15", scale: 3, rounding: .reject) == 1_000_000_000_000_000_000)
        #expect(DecimalText.scaled("1e16", scale: 3, rounding: .reject) == nil)
    }
}

@Suite struct CentsTests {
    @Test func parsesEurosIntoCentsExactly() {
        #expect(Cents(parsing: "8")?.value == 800)
        #expect(Cents(parsing: "8.5")?.value == 850)
        #expect(Cents(parsing: "8.50")?.value == 850)
        #expect(Cents(parsing: "12,34")?.value == 1234, "French decimal comma")
        #expect(Cents(parsing: "-2,00")?.value == -200)
        #expect(Cents(parsing: "0.01")?.value == 1)
        #expect(Cents(parsing: "0,1")?.value == 10)
        #expect(Cents(parsing: "150")?.value == 15_000)
    }

    @Test(arguments: ["", "8.505", "0,001", "abc", "8 €", "€8", "8€", " 8", "1,234.50", "1.234,50", "12,3,4", "nan", "-"])
    func rejects(_ text: String) {
        #expect(Cents(parsing: text) == nil, "\(text)")
    }

    @Test func formatsForPeopleAndForFiles() {
        #expect(Cents(1234).euros == "12,34 €")
        #expect(Cents(-1234).euros == "-12,34 €")
        #expect(Cents(5).euros == "0,05 €")
        #expect(Cents(-5).euros == "-0,05 €")
        #expect(Cents(0).euros == "0,00 €")
        #expect(Cents(800).euros == "8,00 €")
        #expect(Cents(1_500_000).euros == "15000,00 €")
        #expect(Cents(1234).decimalString == "12.34")
        #expect(Cents(-200).decimalString == "-2.00")
        #expect(Cents(1234).description == "12.34 EUR")
        #expect(Cents(Int64.min).decimalString == "-92233720368547758.08", "the magnitude of the smallest value does not trap")
        #expect(Cents(Int64.max).decimalString == "92233720368547758.07")
    }

    @Test func parseAndFormatRoundTrip() {
        for value in [Int64(0), 1, 9, 10, 99, 100, 101, 1234, -1, -99, -100, -1234, 987_654_321] {
            #expect(Cents(parsing: Cents(value).decimalString)?.value == value)
            #expect(Cents(parsing: String(Cents(value).euros.dropLast(2)))?.value == value)
        }
    }

    @Test func arithmeticAndCoding() throws {
        #expect(Cents(800) + Cents(200) == Cents(1000))
        #expect(Cents(800) - Cents(1000) == Cents(-200))
        #expect(-Cents(5) == Cents(-5))
        #expect([Cents(200), Cents(800)].reduce(.zero, +) == Cents(1000))
        #expect(Cents(1) < Cents(2))
        #expect(String(decoding: try JSONEncoder().encode([Cents(1234)]), as: UTF8.self) == "[1234]", "JSON carries integer cents")
        #expect(try JSONDecoder().decode([Cents].self, from: Data("[-5]".utf8)) == [Cents(-5)])
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([Cents].self, from: Data("[12.5]".utf8)) }
    }

    @Test func wattHours() throws {
        #expect(WattHours(1500) + WattHours(500) == WattHours(2000))
        #expect(WattHours(1500) - WattHours(2000) == WattHours(-500))
        #expect(WattHours(7).description == "7 Wh")
        #expect(String(decoding: try JSONEncoder().encode([WattHours(21_403_709)]), as: UTF8.self) == "[21403709]")
    }
}

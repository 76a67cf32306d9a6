import Foundation

/// An amount of electrical energy in whole watt-hours. Energy is never carried by a `Double`.
public struct WattHours: Hashable, Comparable, Sendable, Codable, CustomStringConvertible, AdditiveArithmetic {
    public var value: Int64

    public init(_ value: Int64) { self.value = value }

    public static let zero = WattHours(0)

    public static func < (lhs: WattHours, rhs: WattHours) -> Bool { lhs.value < rhs.value }
    public static func + (lhs: WattHours, rhs: WattHours) -> WattHours { WattHours(lhs.value + rhs.value) }
    public static func - (lhs: WattHours, rhs: WattHours) -> WattHours { WattHours(lhs.value - rhs.value) }

    public var description: String { "\(value) Wh" }

    public init(from decoder: any Decoder) throws {
        value = try decoder.singleValueContainer().decode(Int64.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }
}

/// An amount of money in whole euro cents. Money is never carried by a `Double`.
public struct Cents: Hashable, Comparable, Sendable, Codable, CustomStringConvertible, AdditiveArithmetic {
    public var value: Int64

    public init(_ value: Int64) { self.value = value }

    public static let zero = Cents(0)

    public static func < (lhs: Cents, rhs: Cents) -> Bool { lhs.value < rhs.value }
    public static func + (lhs: Cents, rhs: Cents) -> Cents { Cents(lhs.value + rhs.value) }
    public static func - (lhs: Cents, rhs: Cents) -> Cents { Cents(lhs.value - rhs.value) }
    public static prefix func - (amount: Cents) -> Cents { Cents(-amount.value) }

    /// "12.34" style, with a leading minus for negative amounts; never rounds.
    public var decimalString: String {
        let sign = value < 0 ? "-" : ""
        let magnitude = value.magnitude
        let units = magnitude / 100
        let fraction = magnitude % 100
        return "\(sign)\(units).\(fraction < 10 ? "0" : "")\(fraction)"
    }

    /// French display, e.g. "12,34 €".
    public var euros: String { decimalString.replacingOccurrences(of: ".", with: ",") + " €" }

    public var description: String { decimalString + " EUR" }

    /// Parses "8", "8.5", "8.50", "-2,00" (comma or point) into cents exactly; nil for anything else
    /// (more than two decimals, letters, empty).
    public init?(parsing text: String) {
        guard let scaled = DecimalText.scaled(text.replacingOccurrences(of: ",", with: "."), scale: 2, rounding: .reject)
        else { return nil }
        self.value = scaled
    }

    public init(from decoder: any Decoder) throws {
        value = try decoder.singleValueContainer().decode(Int64.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }
}

/// Exact conversion of decimal text ("4512.877", "-0.5", "1e3") to a scaled integer, without
/// passing through binary floating point.
public enum DecimalText {
    public enum Rounding: Sendable {
        /// Digits beyond the scale make the text invalid.
        case reject
        /// Round half away from zero at the scale.
        case halfAwayFromZero
    }

    /// `scaled("4512.877", scale: 3)` is 4512877. Returns nil for text that is not a finite decimal
    /// number, or that does not fit in an Int64.
    public static func scaled<S: StringProtocol>(_ text: S, scale: Int, rounding: Rounding) -> Int64? {
        plainIntegerScaled(text, scale: scale) ?? generalScaled(text, scale: scale, rounding: rounding)
    }

    /// A plain integer ("1000000", "-42": a meter's index, nearly always) without the general
    /// path's arrays: the same result, or nil to let the general path decide (anything else,
    /// and an overflow, which the general path refuses too).
    static func plainIntegerScaled<S: StringProtocol>(_ text: S, scale: Int) -> Int64? {
        guard scale >= 0 else { return nil }
        var result: Int64 = 0
        var negative = false
        var sawDigit = false
        var first = true
        for byte in text.utf8 {
            defer { first = false }
            if first && (byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+")) {
                negative = byte == UInt8(ascii: "-")
                continue
            }
            guard byte >= 48 && byte <= 57 else { return nil }
            let (times, overflow1) = result.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(Int64(byte - 48))
            if overflow1 || overflow2 { return nil }
            result = sum
            sawDigit = true
        }
        guard sawDigit else { return nil }
        for _ in 0..<scale {
            let (times, overflow) = result.multipliedReportingOverflow(by: 10)
            if overflow { return nil }
            result = times
        }
        return negative ? -result : result
    }

    /// Any decimal text: digits kept exactly, then scaled and rounded.
    static func generalScaled<S: StringProtocol>(_ text: S, scale: Int, rounding: Rounding) -> Int64? {
        var bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return nil }
        var negative = false
        var index = 0
        if bytes[0] == UInt8(ascii: "-") || bytes[0] == UInt8(ascii: "+") {
            negative = bytes[0] == UInt8(ascii: "-")
            index = 1
        }
        var digits: [UInt8] = []
        var fractionDigits = 0
        var sawPoint = false
        var sawDigit = false
        var exponent = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte >= 48 && byte <= 57 {
                digits.append(byte - 48)
                if sawPoint { fractionDigits += 1 }
                sawDigit = true
            } else if byte == UInt8(ascii: ".") && !sawPoint {
                sawPoint = true
            } else if (byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E")) && sawDigit {
                let rest = String(decoding: bytes[(index + 1)...], as: UTF8.self)
                guard let parsed = Int(rest), parsed > -40, parsed < 40 else { return nil }
                exponent = parsed
                break
            } else {
                return nil
            }
            index += 1
        }
        bytes.removeAll()
        guard sawDigit else { return nil }
        // value = digits * 10^(exponent - fractionDigits); we want value * 10^scale.
        let shift = exponent - fractionDigits + scale
        var kept = digits
        var roundUp = false
        if shift < 0 {
            let drop = -shift
            if drop > kept.count {
                let allZero = kept.allSatisfy { $0 == 0 }
                if rounding == .reject && !allZero { return nil }
                kept = []
            } else {
                let dropped = kept.suffix(drop)
                kept.removeLast(drop)
                let anyNonZero = dropped.contains { $0 != 0 }
                if rounding == .reject && anyNonZero { return nil }
                if rounding == .halfAwayFromZero, let first = dropped.first { roundUp = first >= 5 }
            }
        } else {
            kept.append(contentsOf: repeatElement(0, count: shift))
        }
        var result: Int64 = 0
        for digit in kept {
            let (times, overflow1) = result.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(Int64(digit))
            if overflow1 || overflow2 { return nil }
            result = sum
        }
        if roundUp {
            let (sum, overflow) = result.addingReportingOverflow(1)
            if overflow { return nil }
            result = sum
        }
        return negative ? -result : result
    }
}

import Foundation
import HubCore

/// What people type, read the French way: dates as the browser's date field sends them or as
/// staff type them from paper (`03/12/2026`), times as `14:00`, `14h` or `14 h 30`, amounts as
/// `8`, `8,50` or `8,50 €`, whole numbers with spaces between thousands. nil means "not
/// understood", and the page says how to write it.
public enum FrenchInput {
    public static func date(_ text: String) -> LocalDate? {
        let text = text.trimmingCharacters(in: .whitespaces)
        if let date = LocalDate(parsing: text) { return date }
        let parts = text.split(whereSeparator: { $0 == "/" || $0 == "." || $0 == "-" }).map(String.init)
        guard parts.count == 3, let day = Int(parts[0]), let month = Int(parts[1]), var year = Int(parts[2]) else { return nil }
        if parts[2].count == 2 { year += 2000 }
        return LocalDate(year: year, month: month, day: day)
    }

    public static func time(_ text: String) -> (hour: Int, minute: Int)? {
        let cleaned = text.lowercased().replacingOccurrences(of: " ", with: "")
        let parts = cleaned.split(omittingEmptySubsequences: false, whereSeparator: { $0 == ":" || $0 == "h" }).map(String.init)
        guard (1...2).contains(parts.count), let hour = Int(parts[0]), (0...23).contains(hour) else { return nil }
        let minute = parts.count == 2 && !parts[1].isEmpty ? Int(parts[1]) : 0
        guard let minute, (0...59).contains(minute) else { return nil }
        return (hour, minute)
    }

    /// Euros to cents, exactly: "8" → 800, "8,5" → 850, "1 234,56 €" → 123456. At most two decimals.
    public static func cents(_ text: String) -> Cents? {
        var cleaned = text.replacingOccurrences(of: "€", with: "").replacingOccurrences(of: "EUR", with: "")
        cleaned = cleaned.filter { !$0.isWhitespace }.replacingOccurrences(of: ".", with: ",")
        let parts = cleaned.split(separator: ",", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), !parts[0].isEmpty, parts[0].count <= 9, parts[0].allSatisfy(\.isASCII), let euros = Int64(parts[0]), euros >= 0 else { return nil }
        var cents: Int64 = 0
        if parts.count == 2 {
            let decimals = parts[1]
            guard (1...2).contains(decimals.count), decimals.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int64(decimals) else { return nil }
            cents = decimals.count == 1 ? value * 10 : value
        }
        return Cents(euros * 100 + cents)
    }

    /// A whole number, spaces allowed between thousands ("12 345"); at most 12 digits.
    public static func integer(_ text: String) -> Int64? {
        let cleaned = text.filter { !$0.isWhitespace && $0 != "\u{202F}" && $0 != "\u{00A0}" }
        guard !cleaned.isEmpty, cleaned.count <= 12, cleaned.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int64(cleaned)
    }

    /// Watt-hours from kWh as typed: "22,5" → 22500. At most three decimals.
    public static func wattHours(kWh text: String) -> Int64? {
        let cleaned = text.replacingOccurrences(of: "kWh", with: "").filter { !$0.isWhitespace }.replacingOccurrences(of: ".", with: ",")
        let parts = cleaned.split(separator: ",", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), !parts[0].isEmpty, parts[0].count <= 6, let whole = Int64(parts[0]), whole >= 0 else { return nil }
        var fraction: Int64 = 0
        if parts.count == 2 {
            let digits = parts[1]
            guard (1...3).contains(digits.count), digits.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int64(digits) else { return nil }
            fraction = value * [100, 10, 1][digits.count - 1]
        }
        return whole * 1000 + fraction
    }

    /// The instant of a local day and time in the hub's zone; nil for a time skipped by the spring
    /// change of hour. In the repeated autumn hour the first one is taken.
    public static func instant(_ date: LocalDate, _ time: (hour: Int, minute: Int), zone: LocalTimeZone) -> Instant? {
        zone.instants(of: LocalDateTime(date: date, hour: time.hour, minute: time.minute)).first
    }

    /// The Monday of the week holding `date`.
    public static func monday(of date: LocalDate) -> LocalDate {
        let weekday = Int(((date.daysSince1970 % 7) + 7 + 3) % 7)  // 0 = Monday; 1970-01-01 was a Thursday
        return date.advanced(by: -weekday)
    }
}

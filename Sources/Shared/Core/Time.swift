import Foundation

/// A point in time, stored and compared as whole milliseconds since 1970-01-01T00:00:00Z (UTC).
public struct Instant: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public var millisecondsSince1970: Int64

    public init(millisecondsSince1970: Int64) { self.millisecondsSince1970 = millisecondsSince1970 }
    public init(secondsSince1970: Int64) { self.millisecondsSince1970 = secondsSince1970 * 1000 }
    public init(_ date: Date) { self.millisecondsSince1970 = Int64((date.timeIntervalSince1970 * 1000).rounded()) }

    /// The current time. Only edges (MQTT receive, HTTP, CLI) call this; the core takes instants as input.
    public static func now() -> Instant { Instant(Date()) }

    public var date: Date { Date(timeIntervalSince1970: Double(millisecondsSince1970) / 1000) }
    public var secondsSince1970: Int64 { millisecondsSince1970.floorDiv(1000) }

    public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.millisecondsSince1970 < rhs.millisecondsSince1970 }

    public func adding(milliseconds: Int64) -> Instant { Instant(millisecondsSince1970: millisecondsSince1970 + milliseconds) }
    public func adding(seconds: Int64) -> Instant { adding(milliseconds: seconds * 1000) }
    public func milliseconds(since other: Instant) -> Int64 { millisecondsSince1970 - other.millisecondsSince1970 }

    /// RFC 3339 in UTC, e.g. `2026-11-27T10:12:54Z` (milliseconds shown only when not zero).
    public var rfc3339: String {
        let seconds = millisecondsSince1970.floorDiv(1000)
        let millis = millisecondsSince1970 - seconds * 1000
        let days = seconds.floorDiv(86_400)
        let secondOfDay = seconds - days * 86_400
        let date = LocalDate(daysSince1970: days)
        var text = date.description + "T" + pad2(secondOfDay / 3600) + ":" + pad2(secondOfDay / 60 % 60) + ":" + pad2(secondOfDay % 60)
        if millis != 0 { text += "." + String(millis + 1000).dropFirst() }
        return text + "Z"
    }

    public var description: String { rfc3339 }

    /// Parses RFC 3339 / ISO 8601 date-times with `Z` or a `+hh:mm` / `-hh:mm` offset, optional
    /// fractional seconds (kept to the millisecond, truncated). Text without an offset is rejected:
    /// use `LocalDateTime` for device-local clocks.
    public static func parseRFC3339<S: StringProtocol>(_ text: S) -> Instant? {
        var string = String(text)
        return string.withUTF8 { parseRFC3339(utf8: $0) }
    }

    /// The same from UTF-8 bytes (a payload's, without making a string of them: the ingest
    /// writer's hot path).
    public static func parseRFC3339(utf8 bytes: UnsafeBufferPointer<UInt8>) -> Instant? {
        guard let (local, restStart) = LocalDateTime.parsePrefix(utf8: bytes) else { return nil }
        let rest = UnsafeBufferPointer(rebasing: bytes[restStart...])
        let offsetSeconds: Int64
        if rest.count == 1 && (rest[0] == UInt8(ascii: "Z") || rest[0] == UInt8(ascii: "z")) {
            offsetSeconds = 0
        } else {
            guard rest.count == 6, rest[0] == UInt8(ascii: "+") || rest[0] == UInt8(ascii: "-"), rest[3] == UInt8(ascii: ":"),
                  // Digits only: Int64("+1") would let "++1:00" or "+-1:00" through as an offset.
                  let hours = Int(digits: rest[1...2]), let minutes = Int(digits: rest[4...5]),
                  hours < 24, minutes < 60
            else { return nil }
            let magnitude = Int64(hours * 3600 + minutes * 60)
            offsetSeconds = rest[0] == UInt8(ascii: "-") ? -magnitude : magnitude
        }
        return Instant(millisecondsSince1970: local.millisecondsAsIfUTC - offsetSeconds * 1000)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let parsed = Instant.parseRFC3339(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an RFC 3339 date-time: \(text)")
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rfc3339)
    }
}

@inline(__always) func pad2<T: BinaryInteger>(_ value: T) -> String { value < 10 ? "0\(value)" : "\(value)" }

extension Int64 {
    /// Division rounding toward negative infinity (instants before 1970 stay on the right day).
    @inline(__always) public func floorDiv(_ divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}

/// A calendar date with no time zone: a local day. Parsed strictly from `YYYY-MM-DD`.
public struct LocalDate: Hashable, Comparable, Sendable, Codable, CustomStringConvertible, Strideable {
    public let year: Int
    public let month: Int
    public let day: Int

    public init?(year: Int, month: Int, day: Int) {
        guard (1...9999).contains(year), (1...12).contains(month), day >= 1, day <= LocalDate.daysIn(year: year, month: month) else { return nil }
        self.year = year
        self.month = month
        self.day = day
    }

    /// The civil date `days` after 1970-01-01 (Howard Hinnant's algorithm).
    public init(daysSince1970 days: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        self.year = Int(yoe + era * 400 + (m <= 2 ? 1 : 0))
        self.month = Int(m)
        self.day = Int(d)
    }

    public var daysSince1970: Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    public static func daysIn(year: Int, month: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Strict `YYYY-MM-DD`; nil for anything else, including impossible dates like 2026-02-30.
    public init?<S: StringProtocol>(parsing text: S) {
        var string = String(text)
        guard let date = string.withUTF8({ LocalDate(utf8: $0) }) else { return nil }
        self = date
    }

    /// Parses `YYYY-MM-DD` from UTF-8 bytes.
    init?(utf8 bytes: UnsafeBufferPointer<UInt8>) {
        guard bytes.count == 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
              let year = Int(digits: bytes[0..<4]), let month = Int(digits: bytes[5..<7]), let day = Int(digits: bytes[8..<10])
        else { return nil }
        self.init(year: year, month: month, day: day)
    }

    public var description: String {
        let y = String(year)
        return String(repeating: "0", count: max(0, 4 - y.count)) + y + "-" + pad2(month) + "-" + pad2(day)
    }

    public static func < (lhs: LocalDate, rhs: LocalDate) -> Bool { lhs.daysSince1970 < rhs.daysSince1970 }

    public func distance(to other: LocalDate) -> Int { Int(other.daysSince1970 - daysSince1970) }
    public func advanced(by n: Int) -> LocalDate { LocalDate(daysSince1970: daysSince1970 + Int64(n)) }

    /// The first day of this date's month.
    public var firstOfMonth: LocalDate { LocalDate(year: year, month: month, day: 1)! }
    /// The first day of the next month.
    public var firstOfNextMonth: LocalDate {
        month == 12 ? LocalDate(year: year + 1, month: 1, day: 1)! : LocalDate(year: year, month: month + 1, day: 1)!
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let parsed = LocalDate(parsing: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a YYYY-MM-DD date: \(text)")
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

extension Int {
    init?<C: Collection>(digits: C) where C.Element == UInt8 {
        guard !digits.isEmpty else { return nil }
        var value = 0
        for byte in digits {
            guard byte >= 48 && byte <= 57 else { return nil }
            value = value * 10 + Int(byte - 48)
        }
        self = value
    }
}

/// A wall-clock date and time with no offset (a device-local clock, a local tariff boundary).
public struct LocalDateTime: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var date: LocalDate
    public var hour: Int
    public var minute: Int
    public var second: Int
    public var millisecond: Int

    public init(date: LocalDate, hour: Int = 0, minute: Int = 0, second: Int = 0, millisecond: Int = 0) {
        self.date = date
        self.hour = hour
        self.minute = minute
        self.second = second
        self.millisecond = millisecond
    }

    /// The same wall-clock reading interpreted as if it were UTC: a sortable scalar.
    public var millisecondsAsIfUTC: Int64 {
        (date.daysSince1970 * 86_400 + Int64(hour * 3600 + minute * 60 + second)) * 1000 + Int64(millisecond)
    }

    public init(millisecondsAsIfUTC ms: Int64) {
        let seconds = ms.floorDiv(1000)
        let days = seconds.floorDiv(86_400)
        let secondOfDay = Int(seconds - days * 86_400)
        self.init(date: LocalDate(daysSince1970: days), hour: secondOfDay / 3600, minute: secondOfDay / 60 % 60,
                  second: secondOfDay % 60, millisecond: Int(ms - seconds * 1000))
    }

    public static func < (lhs: LocalDateTime, rhs: LocalDateTime) -> Bool { lhs.millisecondsAsIfUTC < rhs.millisecondsAsIfUTC }

    public var description: String {
        date.description + "T" + pad2(hour) + ":" + pad2(minute) + ":" + pad2(second)
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fff]` (a space is accepted for `T`) with nothing after it.
    public init?<S: StringProtocol>(parsing text: S) {
        var string = String(text)
        guard let value = string.withUTF8({ bytes in LocalDateTime.parsePrefix(utf8: bytes).flatMap { $0.rest == bytes.count ? $0.0 : nil } }) else { return nil }
        self = value
    }

    /// Parses the date-time prefix of UTF-8 bytes; what follows it (an offset, `Z`, or nothing)
    /// starts at `rest`.
    static func parsePrefix(utf8 bytes: UnsafeBufferPointer<UInt8>) -> (LocalDateTime, rest: Int)? {
        guard bytes.count >= 19, bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t") || bytes[10] == UInt8(ascii: " "),
              bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
              let date = LocalDate(utf8: UnsafeBufferPointer(rebasing: bytes[0..<10])),
              let hour = Int(digits: bytes[11..<13]), let minute = Int(digits: bytes[14..<16]), let second = Int(digits: bytes[17..<19]),
              hour < 24, minute < 60, second < 60
        else { return nil }
        var index = 19
        var millisecond = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            var scale = 100
            let start = index
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                millisecond += Int(bytes[index] - 48) * scale
                scale /= 10
                index += 1
            }
            guard index > start else { return nil }
        }
        return (LocalDateTime(date: date, hour: hour, minute: minute, second: second, millisecond: millisecond), index)
    }
}

/// Time-zone rules for local days (Europe/Paris by default): conversions between instants and
/// local wall-clock times, including the 23- and 25-hour days.
public struct LocalTimeZone: Sendable, Hashable {
    public let identifier: String
    private let timeZone: TimeZone

    public init(identifier: String) throws {
        guard let timeZone = TimeZone(identifier: identifier) else {
            throw HubError.configuration("unknown time zone \(identifier): is the tzdata package installed?")
        }
        self.identifier = identifier
        self.timeZone = timeZone
    }

    /// Europe/Paris: where the estates are. Days and months in reports are Paris days and months.
    public static let paris: LocalTimeZone = {
        do { return try LocalTimeZone(identifier: "Europe/Paris") } catch { fatalError("the Europe/Paris time zone is unavailable: install the tzdata package (\(error))") }
    }()

    /// Offset from UTC in seconds at an instant (3600 in winter, 7200 in summer for Paris).
    public func offsetSeconds(at instant: Instant) -> Int64 {
        Int64(timeZone.secondsFromGMT(for: instant.date))
    }

    public func localDateTime(of instant: Instant) -> LocalDateTime {
        LocalDateTime(millisecondsAsIfUTC: instant.millisecondsSince1970 + offsetSeconds(at: instant) * 1000)
    }

    public func localDate(of instant: Instant) -> LocalDate { localDateTime(of: instant).date }

    /// Every instant showing this wall-clock time: none in a spring-forward gap, two in the repeated
    /// autumn hour (earlier first), one otherwise.
    public func instants(of local: LocalDateTime) -> [Instant] {
        let asIfUTC = local.millisecondsAsIfUTC
        let probe = Instant(millisecondsSince1970: asIfUTC)
        let offsets = Set([offsetSeconds(at: probe.adding(seconds: -86_400)), offsetSeconds(at: probe), offsetSeconds(at: probe.adding(seconds: 86_400))])
        return offsets.compactMap { offset -> Instant? in
            let candidate = Instant(millisecondsSince1970: asIfUTC - offset * 1000)
            return offsetSeconds(at: candidate) == offset ? candidate : nil
        }.sorted()
    }

    /// The instant a local day starts (its first existing instant).
    public func startOfDay(_ date: LocalDate) -> Instant {
        var local = LocalDateTime(date: date)
        for _ in 0..<6 {
            if let first = instants(of: local).first { return first }
            local = LocalDateTime(millisecondsAsIfUTC: local.millisecondsAsIfUTC + 1_800_000)
        }
        return Instant(millisecondsSince1970: local.millisecondsAsIfUTC - offsetSeconds(at: Instant(millisecondsSince1970: local.millisecondsAsIfUTC)) * 1000)
    }

    /// The half-open interval of instants of a local day: [start of day, start of next day).
    public func interval(of date: LocalDate) -> Range<Instant> { startOfDay(date)..<startOfDay(date.advanced(by: 1)) }

    public static func == (lhs: LocalTimeZone, rhs: LocalTimeZone) -> Bool { lhs.identifier == rhs.identifier }
    public func hash(into hasher: inout Hasher) { hasher.combine(identifier) }
}

import Foundation
import HubCore
import Shared
import Testing

@Suite struct InstantTests {
    @Test func parsesUTCAndFormatsBack() throws {
        let instant = try #require(Instant.parseRFC3339("2026-11-27T10:12:54Z"))
        #expect(instant.millisecondsSince1970 == 1_795_774_374_000)
        #expect(instant.rfc3339 == "2026-11-27T10:12:54Z", "no fraction shown for a whole second")
        #expect(Instant.parseRFC3339("2026-11-27t10:12:54z") == instant, "lower-case t and z are RFC 3339 too")
        #expect(Instant.parseRFC3339("2026-11-27 10:12:54Z") == instant, "a space for T")
        #expect(Instant(secondsSince1970: 0).rfc3339 == "1970-01-01T00:00:00Z")
    }

    @Test func appliesOffsets() throws {
        let utc = try #require(Instant.parseRFC3339("2026-11-27T10:12:54Z"))
        #expect(Instant.parseRFC3339("2026-11-27T11:12:54+01:00") == utc)
        #expect(Instant.parseRFC3339("2026-11-27T04:42:54-05:30") == utc)
        #expect(Instant.parseRFC3339("2026-11-28T00:12:54+14:00") == utc, "crossing the date line moves the day")
        #expect(Instant.parseRFC3339("2026-11-27T10:12:54+00:00") == utc)
        #expect(Instant.parseRFC3339("2026-11-27T10:12:54-00:00") == utc)
    }

    @Test func keepsFractionsToTheMillisecondTruncated() throws {
        let base = try #require(Instant.parseRFC3339("2026-11-27T10:12:54Z")).millisecondsSince1970
        #expect(Instant.parseRFC3339("2026-11-27T10:12:54.123Z")?.millisecondsSince1970 == base + 123)
        #expect(Instant.parseRFC3339("2026-11-27T10:12:54.5Z")?.millisecondsSince1970 == base + 500)
        #expect(Instant.parseRFC3339("2026-11-27T10:12:54.07Z")?.millisecondsSince1970 == base + 70)
        #expect(Instant.parseRFC3339("2026-11-27T10:12:54.123999999Z")?.millisecondsSince1970 == base + 123, "truncated, not rounded")
        #expect(Instant.parseRFC3339("2026-11-27T11:12:54.250+01:00")?.millisecondsSince1970 == base + 250)
        #expect(Instant(millisecondsSince1970: base + 7).rfc3339 == "2026-11-27T10:12:54.007Z")
        #expect(Instant(millisecondsSince1970: base + 120).rfc3339 == "2026-11-27T10:12:54.120Z")
    }

    @Test func formatsInstantsBefore1970OnTheRightDay() {
        #expect(Instant(millisecondsSince1970: -1).rfc3339 == "1969-12-31T23:59:59.999Z")
        #expect(Instant(millisecondsSince1970: -86_400_000).rfc3339 == "1969-12-31T00:00:00Z")
        #expect(Instant.parseRFC3339("1969-12-31T23:59:59.999Z")?.millisecondsSince1970 == -1)
    }

    @Test func roundTripsOverAWideRange() {
        // Every ~37 hours and a few milliseconds, from 1900 to 2100: format then parse gives the same instant.
        let start = Instant.parseRFC3339("1900-01-01T00:00:00Z")!.millisecondsSince1970
        let end = Instant.parseRFC3339("2100-01-01T00:00:00Z")!.millisecondsSince1970
        var failures = 0
        for ms in stride(from: start, to: end, by: 133_200_007) {
            let instant = Instant(millisecondsSince1970: ms)
            if Instant.parseRFC3339(instant.rfc3339) != instant { failures += 1 }
        }
        #expect(failures == 0)
    }

    @Test(arguments: [
        "2026-11-27T10:12:54",          // no offset: a device-local clock, not an instant
        "2026-11-27",                   // a date alone
        "garbage",
        "",
        "2026-11-27T10:12:54ZZ",
        "2026-11-27T10:12:54Z ",
        "2026-11-27T10:12:54+0100",     // offset without colon
        "2026-11-27T10:12:54+01",
        "2026-11-27T10:12:54+24:00",
        "2026-11-27T10:12:54+01:60",
        "2026-11-27T10:12:54++1:00",    // a sign where a digit belongs
        "2026-11-27T10:12:54+-1:00",
        "2026-11-27T10:12:54+01:-5",
        "2026-11-27T10:12:54+ 1:00",
        "2026-11-27T10:12:54.Z",        // a point without digits
        "2026-11-27T24:00:00Z",
        "2026-11-27T10:60:00Z",
        "2026-11-27T10:12:60Z",         // no leap seconds
        "2026-02-29T10:12:54Z",         // not a leap year
        "2026-13-01T00:00:00Z",
        "2026-11-27X10:12:54Z",
        "2026-11-27T1:12:54Z",
    ])
    func rejects(_ text: String) {
        #expect(Instant.parseRFC3339(text) == nil, "\(text)")
    }

    @Test func decodesAndEncodesAsRFC3339() throws {
        let instant = try JSONDecoder().decode([Instant].self, from: Data(#"["2026-11-27T11:12:54.5+01:00"]"#.utf8))
        #expect(instant.first?.rfc3339 == "2026-11-27T10:12:54.500Z")
        #expect(String(decoding: try JSONEncoder().encode(instant), as: UTF8.self) == #"["2026-11-27T10:12:54.500Z"]"#)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([Instant].self, from: Data(#"["2026-11-27T10:12:54"]"#.utf8)) }
    }
}

@Suite struct LocalDateTests {
    @Test func parsesStrictly() {
        #expect(LocalDate(parsing: "2026-02-28") == LocalDate(year: 2026, month: 2, day: 28))
        #expect(LocalDate(parsing: "2026-02-29") == nil, "2026 is not a leap year")
        #expect(LocalDate(parsing: "2028-02-29") == LocalDate(year: 2028, month: 2, day: 29))
        #expect(LocalDate(parsing: "2000-02-29") != nil, "divisible by 400")
        #expect(LocalDate(parsing: "2100-02-29") == nil, "divisible by 100, not 400")
        for text in ["2026-04-31", "2026-13-01", "2026-00-10", "2026-01-00", "2026-1-01", "2026-01-1", "26-01-01", " 2026-01-01",
                     "2026-01-01 ", "2026/01/01", "2026-01-01T00:00", "+026-01-01", "2026--1-01", "0000-01-01", "yesterday", ""] {
            #expect(LocalDate(parsing: text) == nil, "\(text)")
        }
        #expect(LocalDate(year: 2026, month: 2, day: 29) == nil)
        #expect(LocalDate(year: 10_000, month: 1, day: 1) == nil)
    }

    @Test func formatsWithFourDigitYears() {
        #expect(LocalDate(year: 2026, month: 3, day: 9)!.description == "2026-03-09")
        #expect(LocalDate(year: 987, month: 12, day: 31)!.description == "0987-12-31")
        #expect(LocalDate(parsing: "0987-12-31")?.year == 987)
    }

    @Test func knownDaysSince1970() {
        #expect(LocalDate(year: 1970, month: 1, day: 1)!.daysSince1970 == 0)
        #expect(LocalDate(year: 1969, month: 12, day: 31)!.daysSince1970 == -1)
        #expect(LocalDate(year: 2000, month: 3, day: 1)!.daysSince1970 == 11_017)
        #expect(LocalDate(year: 2026, month: 11, day: 27)!.daysSince1970 == 20_784)
        #expect(LocalDate(daysSince1970: 20_784) == LocalDate(year: 2026, month: 11, day: 27))
    }

    @Test func everyDayFromYear1To9999RoundTrips() {
        // Walk the calendar day by day with our own carry, and check both conversions agree.
        var (year, month, day) = (1, 1, 1)
        var days = LocalDate(year: 1, month: 1, day: 1)!.daysSince1970
        var failures: [String] = []
        while year <= 9999 {
            let date = LocalDate(daysSince1970: days)
            if date.year != year || date.month != month || date.day != day || date.daysSince1970 != days {
                if failures.count < 5 { failures.append("\(days): \(date) instead of \(year)-\(month)-\(day)") }
            }
            days += 1
            day += 1
            if day > LocalDate.daysIn(year: year, month: month) {
                day = 1
                month += 1
                if month > 12 { month = 1; year += 1 }
            }
        }
        #expect(failures.isEmpty, "\(failures)")
        #expect(LocalDate(year: 9999, month: 12, day: 31)!.daysSince1970 == days - 1)
    }

    @Test func stridesAndMonths() {
        let date = LocalDate(year: 2028, month: 2, day: 28)!
        #expect(date.advanced(by: 1).description == "2028-02-29")
        #expect(date.advanced(by: 2).description == "2028-03-01")
        #expect(date.distance(to: LocalDate(year: 2029, month: 2, day: 28)!) == 366)
        #expect(date.firstOfMonth.description == "2028-02-01")
        #expect(LocalDate(year: 2026, month: 12, day: 15)!.firstOfNextMonth.description == "2027-01-01")
        #expect(Array(LocalDate(year: 2026, month: 1, day: 30)!...LocalDate(year: 2026, month: 2, day: 2)!).map(\.description)
                == ["2026-01-30", "2026-01-31", "2026-02-01", "2026-02-02"])
    }

    @Test func decodingRejectsImpossibleDates() throws {
        #expect(try JSONDecoder().decode([LocalDate].self, from: Data(#"["2028-02-29"]"#.utf8)).first?.day == 29)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([LocalDate].self, from: Data(#"["2026-02-29"]"#.utf8)) }
    }
}

@Suite struct LocalTimeZoneTests {
    let paris = LocalTimeZone.paris

    func date(_ text: String) -> LocalDate { LocalDate(parsing: text)! }
    func instant(_ text: String) -> Instant { Instant.parseRFC3339(text)! }
    func local(_ day: String, _ hour: Int, _ minute: Int = 0) -> LocalDateTime { LocalDateTime(date: date(day), hour: hour, minute: minute) }

    func hours(_ day: String) -> Int64 {
        let interval = paris.interval(of: date(day))
        return interval.upperBound.milliseconds(since: interval.lowerBound) / 3_600_000
    }

    @Test func daysLast23And25HoursAtTheChanges() {
        #expect(hours("2026-03-29") == 23, "spring forward")
        #expect(hours("2026-10-25") == 25, "fall back")
        #expect(hours("2026-03-28") == 24)
        #expect(hours("2026-03-30") == 24)
        #expect(hours("2026-10-24") == 24)
        #expect(hours("2026-07-14") == 24)
        #expect(hours("2027-03-28") == 23)
        #expect(hours("2027-10-31") == 25)
    }

    @Test func startOfDayIsLocalMidnight() {
        #expect(paris.startOfDay(date("2026-01-15")) == instant("2026-01-14T23:00:00Z"), "winter: UTC+1")
        #expect(paris.startOfDay(date("2026-07-01")) == instant("2026-06-30T22:00:00Z"), "summer: UTC+2")
        #expect(paris.startOfDay(date("2026-03-29")) == instant("2026-03-28T23:00:00Z"))
        #expect(paris.startOfDay(date("2026-03-30")) == instant("2026-03-29T22:00:00Z"))
        #expect(paris.startOfDay(date("2026-10-25")) == instant("2026-10-24T22:00:00Z"))
        #expect(paris.startOfDay(date("2026-10-26")) == instant("2026-10-25T23:00:00Z"))
    }

    @Test func startOfDayWhenMidnightDoesNotExist() throws {
        // Chile sprang forward at midnight on 2022-09-11: that day begins at 01:00 local (UTC-3).
        let santiago = try LocalTimeZone(identifier: "America/Santiago")
        #expect(santiago.startOfDay(date("2022-09-11")) == instant("2022-09-11T04:00:00Z"))
        #expect(santiago.instants(of: local("2022-09-11", 0, 30)).isEmpty)
    }

    @Test func instantsOfAWallClockTime() {
        #expect(paris.instants(of: local("2026-03-29", 2, 30)).isEmpty, "02:30 does not exist on the spring-forward night")
        #expect(paris.instants(of: local("2026-03-29", 2, 0)).isEmpty)
        #expect(paris.instants(of: local("2026-03-29", 1, 59)) == [instant("2026-03-29T00:59:00Z")])
        #expect(paris.instants(of: local("2026-03-29", 3, 0)) == [instant("2026-03-29T01:00:00Z")])
        #expect(paris.instants(of: local("2026-10-25", 2, 30)) == [instant("2026-10-25T00:30:00Z"), instant("2026-10-25T01:30:00Z")],
                "the repeated hour: summer time first")
        #expect(paris.instants(of: local("2026-10-25", 1, 59)) == [instant("2026-10-24T23:59:00Z")])
        #expect(paris.instants(of: local("2026-10-25", 3, 0)) == [instant("2026-10-25T02:00:00Z")])
        #expect(paris.instants(of: local("2026-11-27", 11, 12)) == [instant("2026-11-27T10:12:00Z")])
    }

    @Test func localDateAndTimeOfInstants() {
        #expect(paris.localDate(of: instant("2026-06-30T21:59:59.999Z")) == date("2026-06-30"))
        #expect(paris.localDate(of: instant("2026-06-30T22:00:00Z")) == date("2026-07-01"))
        #expect(paris.localDateTime(of: instant("2026-10-25T00:30:00Z")) == local("2026-10-25", 2, 30))
        #expect(paris.localDateTime(of: instant("2026-10-25T01:30:00Z")) == local("2026-10-25", 2, 30))
        #expect(paris.offsetSeconds(at: instant("2026-01-01T00:00:00Z")) == 3600)
        #expect(paris.offsetSeconds(at: instant("2026-08-01T00:00:00Z")) == 7200)
    }

    @Test func everyLocalDayOfAYearIsContiguous() {
        // Day intervals of 2026 tile the year with no gap or overlap: 363 × 24 h + 23 h + 25 h.
        var day = date("2026-01-01")
        var total: Int64 = 0
        while day.year == 2026 {
            let interval = paris.interval(of: day)
            #expect(paris.localDate(of: interval.lowerBound) == day)
            #expect(paris.localDate(of: interval.upperBound.adding(milliseconds: -1)) == day)
            total += interval.upperBound.milliseconds(since: interval.lowerBound)
            day = day.advanced(by: 1)
        }
        #expect(total == 365 * 86_400_000)
    }

    @Test func anUnknownZoneIsAConfigurationError() {
        #expect(throws: HubError.self) { try LocalTimeZone(identifier: "Europe/Atlantis") }
        do {
            _ = try LocalTimeZone(identifier: "Europe/Atlantis")
        } catch let error as HubError {
            #expect(error.kind == .configuration && error.message.contains("Europe/Atlantis"))
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func localDateTimeParsing() {
        #expect(LocalDateTime(parsing: "2026-03-29T02:30:00") == local("2026-03-29", 2, 30))
        #expect(LocalDateTime(parsing: "2026-03-29T02:30:00Z") == nil, "an offset is not a local time")
        #expect(LocalDateTime(parsing: "2026-03-29T25:30:00") == nil)
    }
}

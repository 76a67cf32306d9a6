import CarShare
import CarShareCore
import Foundation
import HubCore
import Shared
import Testing

@Suite struct BookingRulesTests {
    let t0 = Instant.parseRFC3339("2026-03-12T09:00:00Z")!
    func span(_ fromHour: Int64, _ toHour: Int64) -> TimeSpan { TimeSpan(start: t0.adding(seconds: fromHour * 3600), end: t0.adding(seconds: toHour * 3600))! }
    func slot(_ id: Int64, vehicle: Int64 = 1, driver: Int64? = nil, _ from: Int64, _ to: Int64) -> BookingSlot {
        BookingSlot(id: id, vehicle: vehicle, driver: driver, span: span(from, to))
    }

    @Test func anEmptyOrBackwardIntervalIsNotASpan() {
        #expect(TimeSpan(start: t0, end: t0) == nil)
        #expect(TimeSpan(start: t0, end: t0.adding(seconds: -1)) == nil)
    }

    @Test func aBookingThatEnclosesAnotherOverlapsIt() {
        // 10:00-11:00 is booked; 09:00-12:00 has neither end point inside it, yet collides.
        let existing = [slot(1, 1, 2)]
        #expect(BookingRules.conflict(id: nil, vehicle: 1, driver: nil, span: span(0, 3), existing: existing) == .vehicleOverlap(booking: 1, span: span(1, 2)))
        #expect(BookingRules.conflict(id: nil, vehicle: 1, driver: nil, span: span(1, 2), existing: [slot(2, 0, 3)]) == .vehicleOverlap(booking: 2, span: span(0, 3)))
    }

    @Test func partialOverlapsEitherSideCollide() {
        let existing = [slot(1, 1, 3)]
        #expect(BookingRules.conflict(id: nil, vehicle: 1, driver: nil, span: span(0, 2), existing: existing) != nil)
        #expect(BookingRules.conflict(id: nil, vehicle: 1, driver: nil, span: span(2, 4), existing: existing) != nil)
        #expect(BookingRules.conflict(id: nil, vehicle: 1, driver: nil, span: span(1, 3), existing: existing) != nil, "the same interval")
    }

    @Test func adjacentBookingsDoNotCollide() {
        let existing = [slot(1, 1, 2)]
        #expect(BookingRules.conflict(id: nil, vehicle: 1, driver: nil, span: span(2, 3), existing: existing) == nil, "starts when the other ends")
        #expect(BookingRules.conflict(id: nil, vehicle: 1, driver: nil, span: span(0, 1), existing: existing) == nil, "ends when the other starts")
    }

    @Test func anotherCarIsFreeButTheSameDriverIsNot() {
        let existing = [slot(1, vehicle: 1, driver: 7, 1, 2)]
        #expect(BookingRules.conflict(id: nil, vehicle: 2, driver: nil, span: span(1, 2), existing: existing) == nil)
        #expect(BookingRules.conflict(id: nil, vehicle: 2, driver: 8, span: span(1, 2), existing: existing) == nil)
        #expect(BookingRules.conflict(id: nil, vehicle: 2, driver: 7, span: span(0, 3), existing: existing) == .driverOverlap(booking: 1, span: span(1, 2)))
    }

    @Test func anEditIsNotInConflictWithItself() {
        #expect(BookingRules.conflict(id: 1, vehicle: 1, driver: nil, span: span(1, 3), existing: [slot(1, 1, 2)]) == nil)
    }

    @Test func statusTransitionsFollowTheGraph() throws {
        try BookingRules.checkTransition(from: .requested, to: .confirmed, hasDriver: true, reason: nil)
        #expect(throws: BookingError.driverRequired) { try BookingRules.checkTransition(from: .requested, to: .confirmed, hasDriver: false, reason: nil) }
        #expect(throws: BookingError.reasonRequired(.cancelled)) { try BookingRules.checkTransition(from: .requested, to: .cancelled, hasDriver: false, reason: "  ") }
        #expect(throws: BookingError.reasonRequired(.noShow)) { try BookingRules.checkTransition(from: .confirmed, to: .noShow, hasDriver: true, reason: nil) }
        #expect(throws: BookingError.transitionNotAllowed(from: .requested, to: .noShow)) {
            try BookingRules.checkTransition(from: .requested, to: .noShow, hasDriver: false, reason: "absent")
        }
        for terminal in [BookingStatus.completed, .cancelled, .lateCancellation, .noShow, .turnedDown] {
            #expect(!terminal.isLive)
            #expect(throws: BookingError.transitionNotAllowed(from: terminal, to: .confirmed)) {
                try BookingRules.checkTransition(from: terminal, to: .confirmed, hasDriver: true, reason: "x")
            }
        }
    }

    @Test func aCancellationCloseToTheStartIsLate() {
        let start = t0.adding(seconds: 48 * 3600)
        #expect(BookingRules.effectiveStatus(requested: .cancelled, start: start, now: t0, lateHours: 24) == .cancelled)
        #expect(BookingRules.effectiveStatus(requested: .cancelled, start: start, now: t0.adding(seconds: 25 * 3600), lateHours: 24) == .lateCancellation)
        #expect(BookingRules.effectiveStatus(requested: .noShow, start: start, now: t0, lateHours: 24) == .noShow)
    }

    @Test func whetherTheFeeIsKeptIsASetting() {
        var settings = CarShareSettings()
        #expect(BookingRules.keepsFee(.lateCancellation, settings: settings))
        #expect(BookingRules.keepsFee(.noShow, settings: settings))
        #expect(!BookingRules.keepsFee(.cancelled, settings: settings))
        settings.lateCancellationKeepsFee = false
        settings.noShowKeepsFee = false
        #expect(!BookingRules.keepsFee(.lateCancellation, settings: settings))
        #expect(!BookingRules.keepsFee(.noShow, settings: settings))
    }

    @Test func aDriverNeedsTrainingAndARecentLicenceCheck() {
        let day = LocalDate(year: 2026, month: 3, day: 12)!
        let checked = LocalDate(year: 2026, month: 1, day: 5)!
        #expect(DriverProfile(id: 1, active: true, licenceCheckedOn: checked, trainedOn: checked).refusal(on: day, licenceCheckValidDays: 366) == nil)
        #expect(DriverProfile(id: 1, active: false, licenceCheckedOn: checked, trainedOn: checked).refusal(on: day, licenceCheckValidDays: 366) != nil)
        #expect(DriverProfile(id: 1, active: true, licenceCheckedOn: checked, trainedOn: nil).refusal(on: day, licenceCheckValidDays: 366) != nil)
        #expect(DriverProfile(id: 1, active: true, licenceCheckedOn: nil, trainedOn: checked).refusal(on: day, licenceCheckValidDays: 366) != nil)
        #expect(DriverProfile(id: 1, active: true, licenceCheckedOn: LocalDate(year: 2024, month: 1, day: 1)!, trainedOn: checked)
            .refusal(on: day, licenceCheckValidDays: 366) != nil, "a licence checked two years ago")
    }

    @Test func feesAreDatedAndMembershipsCoverAPeriod() {
        let fees = [DatedAmount(from: LocalDate(year: 2000, month: 1, day: 1)!, cents: Cents(800)), DatedAmount(from: LocalDate(year: 2027, month: 1, day: 1)!, cents: Cents(1000))]
        #expect(fees.amount(on: LocalDate(year: 2026, month: 12, day: 31)!) == Cents(800))
        #expect(fees.amount(on: LocalDate(year: 2027, month: 1, day: 1)!) == Cents(1000))
        #expect(fees.amount(on: LocalDate(year: 1999, month: 1, day: 1)!) == nil)
        let year = MembershipPeriod.starting(LocalDate(year: 2026, month: 6, day: 15)!, kind: .calendarYear)
        #expect(year.start == LocalDate(year: 2026, month: 1, day: 1)! && year.end == LocalDate(year: 2027, month: 1, day: 1)!)
        #expect(year.covers(LocalDate(year: 2026, month: 12, day: 31)!) && !year.covers(LocalDate(year: 2027, month: 1, day: 1)!))
        #expect(year.frenchLabel == "année 2026")
        let twelve = MembershipPeriod.starting(LocalDate(year: 2026, month: 3, day: 15)!, kind: .twelveMonths)
        #expect(twelve.end == LocalDate(year: 2027, month: 3, day: 15)!)
        #expect(twelve.frenchLabel == "du 15/03/2026 au 14/03/2027")
        #expect(MembershipRules.isValid([year], on: LocalDate(year: 2026, month: 3, day: 12)!))
        #expect(!MembershipRules.isValid([year], on: LocalDate(year: 2027, month: 3, day: 12)!), "expired")
        #expect(MembershipRules.incomeAccount(period: MembershipPeriod.starting(LocalDate(year: 2027, month: 1, day: 1)!, kind: .calendarYear),
                                              purchase: LocalDate(year: 2026, month: 12, day: 10)!, deferNextYear: true) == .deferredIncome)
        #expect(MembershipRules.incomeAccount(period: year, purchase: LocalDate(year: 2026, month: 2, day: 1)!, deferNextYear: true) == .memberships)
    }
}

@Suite struct TripRulesTests {
    @Test func theOdometerNeverGoesBelowTheLastReading() {
        #expect(throws: TripError.odometerBelowLastReading(start: 12_340, last: 12_430, trip: 17)) {
            try TripRules.checkOdometer(start: 12_340, end: 12_360, previous: OdometerNeighbour(trip: 17, kilometres: 12_430), next: nil, maxKilometres: 400)
        }
        let message = TripError.odometerBelowLastReading(start: 12_340, last: 12_430, trip: 17).hubError.message
        #expect(message.contains("12430 km") && message.contains("12340 km"), "the message says what the last reading was: \(message)")
        #expect(throws: TripError.odometerEndBeforeStart(start: 100, end: 90)) {
            try TripRules.checkOdometer(start: 100, end: 90, previous: nil, next: nil, maxKilometres: 400)
        }
        #expect(throws: TripError.distanceTooLong(kilometres: 1000, max: 400)) {
            try TripRules.checkOdometer(start: 100, end: 1100, previous: nil, next: nil, maxKilometres: 400)
        }
        #expect(throws: TripError.odometerAboveNextReading(end: 200, next: 150, trip: 3)) {
            try TripRules.checkOdometer(start: 100, end: 200, previous: nil, next: OdometerNeighbour(trip: 3, kilometres: 150), maxKilometres: 400)
        }
        #expect(throws: Never.self) { try TripRules.checkOdometer(start: 12_430, end: 12_450, previous: OdometerNeighbour(trip: 17, kilometres: 12_430), next: nil, maxKilometres: 400) }
    }

    @Test func batteryRidersAndEnergy() {
        #expect(throws: TripError.batteryOutOfRange(field: "battery_end_pct", value: 101)) { try TripRules.checkBattery(start: 80, end: 101) }
        #expect(throws: TripError.noRiders) { try TripRules.checkRiders([]) }
        #expect(throws: TripError.duplicateRider(member: 2)) { try TripRules.checkRiders([1, 2, 2]) }
        #expect(TripRules.energyUsed(batteryStart: 90, batteryEnd: 80, capacity: WattHours(52_000)) == WattHours(5_200))
        #expect(TripRules.energyUsed(batteryStart: 80, batteryEnd: 90, capacity: WattHours(52_000)) == nil, "charged during the trip: no estimate")
    }

    @Test func theSocialTransportCheckFlagsButOnlyWhenEnabled() {
        var rules = CarShareSettings.SocialTransport()
        #expect(SocialTransportRules.flags(kilometres: 150, feePerRider: [Cents(200)], ridersAreMembers: true, settings: rules).isEmpty)
        rules.enabled = true
        #expect(SocialTransportRules.flags(kilometres: 150, feePerRider: [Cents(200)], ridersAreMembers: true, settings: rules) == [.tooLong])
        // 2 EUR for 5 km is 0.40 EUR/km, above the 0.32 cap; 2 EUR for 7 km is fine.
        #expect(SocialTransportRules.flags(kilometres: 5, feePerRider: [Cents(200)], ridersAreMembers: true, settings: rules) == [.participationTooHigh])
        #expect(SocialTransportRules.flags(kilometres: 7, feePerRider: [Cents(200)], ridersAreMembers: true, settings: rules).isEmpty)
        #expect(SocialTransportRules.flags(kilometres: 7, feePerRider: [Cents(200)], ridersAreMembers: false, settings: rules) == [.riderNotMember])
    }

    @Test func thePrefectReportCountsDistinctPeopleAndTheMeanDistance() {
        let report = PrefectReport.make(year: 2026, trips: [
            TripFacts(kilometres: 10, driver: 1, vehicle: 1, riders: [1, 2], participation: Cents(400)),
            TripFacts(kilometres: 15, driver: 2, vehicle: 1, riders: [2], participation: Cents(200)),
            TripFacts(kilometres: 12, driver: 1, vehicle: 1, riders: [3], participation: Cents(200)),
        ])
        #expect(report.trips == 3 && report.totalKilometres == 37 && report.meanDistanceTenthsKm == 123)
        #expect(report.drivers == 2 && report.beneficiaries == 3 && report.vehicles == 1 && report.participation == Cents(800))
        #expect(report.frenchText.contains("Distance moyenne : 12,3 km"))
        #expect(PrefectReport.make(year: 2026, trips: []).meanDistanceTenthsKm == 0)
    }
}

/// The rules that used to sit in the store: a booking's length, who may set which status, a
/// logged trip's times and odometer.
@Suite struct StoreRulesTests {
    static let start = Instant.parseRFC3339("2026-03-12T10:00:00Z")!

    @Test func aBookingLastsAtMostAWeek() throws {
        try BookingRules.checkLength(TimeSpan(start: Self.start, end: Self.start.adding(seconds: 7 * 86_400))!)
        #expect(throws: HubError.self) { try BookingRules.checkLength(TimeSpan(start: Self.start, end: Self.start.adding(seconds: 7 * 86_400 + 1))!) }
    }

    @Test func eachRoleSetsOnlyItsStatuses() {
        for status in BookingStatus.allCases {
            #expect(throws: Never.self) { try BookingRules.checkRoleMaySet(.staff, status) }
            #expect(throws: Never.self) { try BookingRules.checkRoleMaySet(.association, status) }
        }
        #expect(throws: Never.self) { try BookingRules.checkRoleMaySet(.resident, .cancelled) }
        #expect(throws: HubError.self) { try BookingRules.checkRoleMaySet(.resident, .confirmed) }
        #expect(throws: HubError.self) { try BookingRules.checkRoleMaySet(.resident, .noShow) }
        #expect(throws: Never.self) { try BookingRules.checkRoleMaySet(.driver, .noShow) }
        #expect(throws: HubError.self) { try BookingRules.checkRoleMaySet(.driver, .confirmed) }
    }

    @Test func aLoggedTripIsAtMost48HoursNotInTheFutureAndHasAnOdometer() throws {
        let now = Self.start.adding(seconds: 3 * 86_400)
        try TripRules.checkLogged(span: TimeSpan(start: Self.start, end: Self.start.adding(seconds: 48 * 3600))!, now: now, startOdometerKm: 0)
        #expect(throws: HubError.self) { try TripRules.checkLogged(span: TimeSpan(start: Self.start, end: Self.start.adding(seconds: 48 * 3600 + 1))!, now: now, startOdometerKm: 10) }
        #expect(throws: HubError.self) { try TripRules.checkLogged(span: TimeSpan(start: Self.start, end: now.adding(seconds: 901))!, now: now, startOdometerKm: 10) }
        #expect(throws: HubError.self) { try TripRules.checkLogged(span: TimeSpan(start: Self.start, end: Self.start.adding(seconds: 3600))!, now: now, startOdometerKm: -1) }
    }
}

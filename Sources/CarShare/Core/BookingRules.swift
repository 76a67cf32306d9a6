import Foundation
import HubCore

/// A half-open interval of instants, [start, end): a booking that ends at 10:00 and one that starts
/// at 10:00 do not overlap.
public struct TimeSpan: Hashable, Codable, Sendable, CustomStringConvertible {
    public let start: Instant
    public let end: Instant

    /// Nil when `end` is not after `start`.
    public init?(start: Instant, end: Instant) {
        guard start < end else { return nil }
        self.start = start
        self.end = end
    }

    /// True when the two intervals share at least one instant. Comparing both starts with both
    /// ends also catches a span that encloses the other, which end-point-inside checks miss.
    public func overlaps(_ other: TimeSpan) -> Bool { start < other.end && other.start < end }

    public func contains(_ instant: Instant) -> Bool { start <= instant && instant < end }

    public var durationMilliseconds: Int64 { end.milliseconds(since: start) }

    public var description: String { "[\(start.rfc3339), \(end.rfc3339))" }
}

/// Where a booking is in its life. Only `requested` and `confirmed` bookings hold the car.
public enum BookingStatus: String, Codable, Sendable, CaseIterable {
    case requested
    /// A driver is assigned.
    case confirmed
    case completed
    case cancelled
    /// Cancelled too close to the start (see `CarShareSettings.lateCancellationHours`).
    case lateCancellation = "late_cancellation"
    /// The rider was not there.
    case noShow = "no_show"
    /// The association could not serve it.
    case turnedDown = "turned_down"

    /// A live booking holds its car and driver: no other live booking may overlap it.
    public var isLive: Bool { self == .requested || self == .confirmed }

    /// The statuses a booking may move to from this one.
    public var allowedNext: Set<BookingStatus> {
        switch self {
        case .requested: return [.confirmed, .cancelled, .lateCancellation, .turnedDown]
        case .confirmed: return [.confirmed, .requested, .completed, .cancelled, .lateCancellation, .noShow]
        case .completed, .cancelled, .lateCancellation, .noShow, .turnedDown: return []
        }
    }

    /// What a person reads on a statement.
    public var frenchLabel: String {
        switch self {
        case .requested: return "demandée"
        case .confirmed: return "confirmée"
        case .completed: return "effectuée"
        case .cancelled: return "annulée"
        case .lateCancellation: return "annulée tardivement"
        case .noShow: return "absence"
        case .turnedDown: return "refusée"
        }
    }
}

/// A live booking as the overlap rules see it.
public struct BookingSlot: Hashable, Sendable {
    public var id: Int64
    public var vehicle: Int64
    public var driver: Int64?
    public var span: TimeSpan

    public init(id: Int64, vehicle: Int64, driver: Int64?, span: TimeSpan) {
        self.id = id
        self.vehicle = vehicle
        self.driver = driver
        self.span = span
    }
}

/// Why a booking rule refused something. Each case is a named rule with its own test.
public enum BookingError: Error, Equatable, Sendable {
    /// The end is not after the start.
    case emptyInterval
    /// Another live booking holds the same car during part of the interval.
    case vehicleOverlap(booking: Int64, span: TimeSpan)
    /// The driver is already assigned to another live booking during part of the interval.
    case driverOverlap(booking: Int64, span: TimeSpan)
    /// The status change is not one of `BookingStatus.allowedNext`.
    case transitionNotAllowed(from: BookingStatus, to: BookingStatus)
    /// A confirmed booking needs an assigned driver.
    case driverRequired
    /// Cancellations, no-shows and refusals must say why.
    case reasonRequired(BookingStatus)
    /// The edit was made on an old copy of the booking.
    case staleVersion(current: Int64, given: Int64)
    /// The rider has no membership covering the trip date.
    case membershipNotValid(member: Int64, date: LocalDate)
    /// The driver is inactive, untrained or their licence check is missing or too old.
    case driverNotAllowed(driver: Int64, reason: String)
    /// A finished booking cannot be edited.
    case notEditable(BookingStatus)

    public var hubError: HubError {
        switch self {
        case .emptyInterval:
            return HubError.badRequest(field: "end", code: "invalid_interval", "the end must be after the start")
        case .vehicleOverlap(let booking, let span):
            return HubError.conflict(field: "start", code: "vehicle_overlap", "the car is already booked \(span) (booking \(booking))")
        case .driverOverlap(let booking, let span):
            return HubError.conflict(field: "driver", code: "driver_overlap", "the driver is already assigned \(span) (booking \(booking))")
        case .transitionNotAllowed(let from, let to):
            return HubError(.unprocessable, code: "transition_not_allowed", field: "status",
                            message: "a \(from.rawValue) booking cannot become \(to.rawValue)")
        case .driverRequired:
            return HubError.badRequest(field: "driver", code: "driver_required", "a confirmed booking needs a driver")
        case .reasonRequired(let status):
            return HubError.badRequest(field: "reason", code: "reason_required", "say why the booking is \(status.rawValue)")
        case .staleVersion(let current, let given):
            return HubError.conflict(field: "version", code: "stale_version",
                                     "the booking changed since you read it (version \(given), now \(current)): reload it and try again")
        case .membershipNotValid(let member, let date):
            return HubError(.unprocessable, code: "membership_not_valid", field: "rider",
                            message: "member \(member) has no membership valid on \(date)")
        case .driverNotAllowed(let driver, let reason):
            return HubError(.unprocessable, code: "driver_not_allowed", field: "driver", message: "driver \(driver) cannot drive: \(reason)")
        case .notEditable(let status):
            return HubError(.unprocessable, code: "not_editable", field: "status", message: "a \(status.rawValue) booking can no longer be edited")
        }
    }
}

/// The booking rules: pure functions over values.
public enum BookingRules {
    /// The longest booking: a week. It also bounds the index range scanned for conflicts.
    public static let maxBookingMilliseconds: Int64 = 7 * 86_400_000

    /// A booking lasts at most `maxBookingMilliseconds`.
    public static func checkLength(_ span: TimeSpan) throws {
        guard span.durationMilliseconds <= maxBookingMilliseconds else {
            throw HubError.badRequest(field: "end", code: "invalid_interval", "a booking lasts at most 7 days")
        }
    }

    /// Which status each role may set: staff and the association any; a resident only cancels; a
    /// driver cancels or records a no-show.
    public static func checkRoleMaySet(_ role: Role, _ target: BookingStatus) throws {
        switch role {
        case .staff, .association: return
        case .resident:
            guard target == .cancelled || target == .lateCancellation else { throw denied("status", "a resident may only cancel a booking") }
        case .driver:
            guard [.cancelled, .lateCancellation, .noShow].contains(target) else { throw denied("status", "a driver may cancel or record a no-show, not \(target.rawValue)") }
        }
    }

    /// The first live booking that the candidate would collide with, by car or by driver.
    /// `existing` should hold live bookings only; the candidate's own id is ignored (an edit).
    public static func conflict(id: Int64?, vehicle: Int64, driver: Int64?, span: TimeSpan, existing: [BookingSlot]) -> BookingError? {
        for slot in existing where slot.id != id && slot.span.overlaps(span) {
            if slot.vehicle == vehicle { return .vehicleOverlap(booking: slot.id, span: slot.span) }
        }
        if let driver {
            for slot in existing where slot.id != id && slot.driver == driver && slot.span.overlaps(span) {
                return .driverOverlap(booking: slot.id, span: slot.span)
            }
        }
        return nil
    }

    /// The status a requested change really leads to: a cancellation less than `lateHours`
    /// before the start is a late cancellation.
    public static func effectiveStatus(requested: BookingStatus, start: Instant, now: Instant, lateHours: Int) -> BookingStatus {
        guard requested == .cancelled else { return requested }
        return now.adding(seconds: Int64(lateHours) * 3600) > start ? .lateCancellation : .cancelled
    }

    /// Checks a status change: allowed by the status graph, with a driver when confirming and a
    /// reason when the booking ends without a trip.
    public static func checkTransition(from: BookingStatus, to: BookingStatus, hasDriver: Bool, reason: String?) throws(BookingError) {
        guard from.allowedNext.contains(to) else { throw .transitionNotAllowed(from: from, to: to) }
        if to == .confirmed && !hasDriver { throw .driverRequired }
        if [.cancelled, .lateCancellation, .noShow, .turnedDown].contains(to), (reason ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
            throw .reasonRequired(to)
        }
    }

    /// Whether the trip fee is charged when a booking ends with this status without a trip.
    public static func keepsFee(_ status: BookingStatus, settings: CarShareSettings) -> Bool {
        switch status {
        case .lateCancellation: return settings.lateCancellationKeepsFee
        case .noShow: return settings.noShowKeepsFee
        default: return false
        }
    }
}

/// A volunteer driver as the assignment rules see them.
public struct DriverProfile: Hashable, Sendable {
    public var id: Int64
    public var active: Bool
    public var licenceCheckedOn: LocalDate?
    public var trainedOn: LocalDate?

    public init(id: Int64, active: Bool, licenceCheckedOn: LocalDate?, trainedOn: LocalDate?) {
        self.id = id
        self.active = active
        self.licenceCheckedOn = licenceCheckedOn
        self.trainedOn = trainedOn
    }

    /// Nil when the driver may drive on `date`; else why not.
    public func refusal(on date: LocalDate, licenceCheckValidDays: Int) -> BookingError? {
        guard active else { return .driverNotAllowed(driver: id, reason: "not active") }
        guard let trainedOn, trainedOn <= date else { return .driverNotAllowed(driver: id, reason: "not trained by \(date)") }
        guard let checked = licenceCheckedOn, checked <= date else { return .driverNotAllowed(driver: id, reason: "licence not checked by \(date)") }
        guard checked.distance(to: date) <= licenceCheckValidDays else {
            return .driverNotAllowed(driver: id, reason: "licence last checked on \(checked), more than \(licenceCheckValidDays) days before \(date)")
        }
        return nil
    }
}

/// A 403 that names what the caller's role or scope does not reach (`role`, `member`, `booking`...).
package func denied(_ field: String, _ message: String) -> HubError {
    HubError(.forbidden, code: "forbidden", field: field, message: message)
}

import HubCore

/// Why a trip log was refused. Each case is a named rule with a message that says what to fix.
public enum TripError: Error, Equatable, Sendable {
    case emptyInterval
    case odometerEndBeforeStart(start: Int64, end: Int64)
    /// The start reading is below the car's last known reading before this trip.
    case odometerBelowLastReading(start: Int64, last: Int64, trip: Int64?)
    /// The end reading is above the start reading of the car's next logged trip.
    case odometerAboveNextReading(end: Int64, next: Int64, trip: Int64)
    case distanceTooLong(kilometres: Int64, max: Int64)
    case batteryOutOfRange(field: String, value: Int)
    case noRiders
    case duplicateRider(member: Int64)
    case unbookedNeedsReason
    case overlapsAnotherTrip(trip: Int64)
    case bookingNotOpen(booking: Int64, status: BookingStatus)

    public var hubError: HubError {
        switch self {
        case .emptyInterval:
            return HubError.badRequest(field: "end", code: "invalid_interval", "the trip must end after it starts")
        case .odometerEndBeforeStart(let start, let end):
            return HubError.badRequest(field: "end_odometer_km", code: "odometer_end_before_start", "the end reading \(end) km is below the start reading \(start) km")
        case .odometerBelowLastReading(let start, let last, let trip):
            return HubError(.unprocessable, code: "odometer_below_last_reading", field: "start_odometer_km",
                            message: "the start reading \(start) km is below the car's last known reading, \(last) km\(trip.map { " (trip \($0))" } ?? ""): check the figure")
        case .odometerAboveNextReading(let end, let next, let trip):
            return HubError(.unprocessable, code: "odometer_above_next_reading", field: "end_odometer_km",
                            message: "the end reading \(end) km is above \(next) km, where the car's next logged trip (trip \(trip)) started: check the figure")
        case .distanceTooLong(let kilometres, let max):
            return HubError(.unprocessable, code: "distance_too_long", field: "end_odometer_km",
                            message: "\(kilometres) km in one trip is more than the \(max) km allowed: check the readings")
        case .batteryOutOfRange(let field, let value):
            return HubError.badRequest(field: field, code: "battery_out_of_range", "battery \(value)% is not between 0 and 100")
        case .noRiders:
            return HubError.badRequest(field: "riders", code: "no_riders", "a trip carries at least one member")
        case .duplicateRider(let member):
            return HubError.badRequest(field: "riders", code: "duplicate_rider", "member \(member) is listed twice")
        case .unbookedNeedsReason:
            return HubError.badRequest(field: "unbooked_reason", code: "reason_required", "a trip without a booking must say why")
        case .overlapsAnotherTrip(let trip):
            return HubError.conflict(field: "start", code: "trip_overlap", "the car was already on trip \(trip) at that time")
        case .bookingNotOpen(let booking, let status):
            return HubError(.unprocessable, code: "booking_not_open", field: "booking", message: "booking \(booking) is \(status.rawValue): no trip can be logged on it")
        }
    }
}

/// A neighbouring logged trip of the same car, as the odometer rule sees it.
public struct OdometerNeighbour: Hashable, Sendable {
    public var trip: Int64?
    public var kilometres: Int64
    public init(trip: Int64?, kilometres: Int64) {
        self.trip = trip
        self.kilometres = kilometres
    }
}

/// The trip log rules: pure functions over values.
public enum TripRules {
    /// The longest trip: 48 hours. It also bounds the index range scanned for overlapping trips.
    public static let maxTripMilliseconds: Int64 = 2 * 86_400_000

    /// What a logged trip's times and odometer must be before anything is read: at most 48 hours,
    /// not ending in the future (a quarter of an hour's slack for clocks), a start reading not
    /// negative.
    public static func checkLogged(span: TimeSpan, now: Instant, startOdometerKm: Int64) throws {
        guard span.durationMilliseconds <= maxTripMilliseconds else { throw HubError.badRequest(field: "end", code: "invalid_interval", "a trip lasts at most 48 hours") }
        // A log records what happened: a trip ending in the future is a typo in the date.
        guard span.end <= now.adding(seconds: 900) else {
            throw HubError.badRequest(field: "end", code: "in_future", "the trip ends after now (\(now.rfc3339)): check the date")
        }
        guard startOdometerKm >= 0 else { throw HubError.badRequest(field: "start_odometer_km", "an odometer reading cannot be negative") }
    }

    /// Checks the readings: start not below the car's last known reading before the trip, end not
    /// above the next trip's start (a paper log typed in late), and a plausible distance.
    public static func checkOdometer(start: Int64, end: Int64, previous: OdometerNeighbour?, next: OdometerNeighbour?, maxKilometres: Int64) throws(TripError) {
        guard end >= start else { throw .odometerEndBeforeStart(start: start, end: end) }
        if let previous, start < previous.kilometres { throw .odometerBelowLastReading(start: start, last: previous.kilometres, trip: previous.trip) }
        if let next, let trip = next.trip, end > next.kilometres { throw .odometerAboveNextReading(end: end, next: next.kilometres, trip: trip) }
        guard end - start <= maxKilometres else { throw .distanceTooLong(kilometres: end - start, max: maxKilometres) }
    }

    public static func checkBattery(start: Int, end: Int) throws(TripError) {
        guard (0...100).contains(start) else { throw .batteryOutOfRange(field: "battery_start_pct", value: start) }
        guard (0...100).contains(end) else { throw .batteryOutOfRange(field: "battery_end_pct", value: end) }
    }

    public static func checkRiders(_ riders: [Int64]) throws(TripError) {
        guard !riders.isEmpty else { throw .noRiders }
        var seen = Set<Int64>()
        for rider in riders where !seen.insert(rider).inserted { throw .duplicateRider(member: rider) }
    }

    /// The energy a trip used, estimated from the battery gauge and the car's capacity.
    public static func energyUsed(batteryStart: Int, batteryEnd: Int, capacity: WattHours?) -> WattHours? {
        guard let capacity, batteryStart >= batteryEnd else { return nil }
        return WattHours(capacity.value * Int64(batteryStart - batteryEnd) / 100)
    }
}

/// A flag raised by the optional social-transport check.
public enum SocialTransportFlag: String, Codable, Sendable, CaseIterable {
    /// Longer than the regime's 100 km.
    case tooLong = "over_max_kilometres"
    /// A rider paid more than 0.32 EUR per km travelled.
    case participationTooHigh = "participation_over_cap"
    /// A rider was not a member on the trip date.
    case riderNotMember = "rider_not_member"
}

/// The French "transport d'utilité sociale" rules as an optional check: it flags, it does not block.
public enum SocialTransportRules {
    public static func flags(kilometres: Int64, feePerRider: [Cents], ridersAreMembers: Bool, settings: CarShareSettings.SocialTransport) -> [SocialTransportFlag] {
        guard settings.enabled else { return [] }
        var flags: [SocialTransportFlag] = []
        if kilometres > settings.maxKilometres { flags.append(.tooLong) }
        if feePerRider.contains(where: { $0.value > settings.maxCentsPerKilometre * kilometres }) { flags.append(.participationTooHigh) }
        if !ridersAreMembers { flags.append(.riderNotMember) }
        return flags
    }
}

/// What the préfet report needs from one trip.
public struct TripFacts: Hashable, Sendable {
    public var kilometres: Int64
    public var driver: Int64
    public var vehicle: Int64
    public var riders: [Int64]
    public var participation: Cents

    public init(kilometres: Int64, driver: Int64, vehicle: Int64, riders: [Int64], participation: Cents) {
        self.kilometres = kilometres
        self.driver = driver
        self.vehicle = vehicle
        self.riders = riders
        self.participation = participation
    }
}

/// The annual report for the préfet (before 1 March): trips, mean distance, drivers,
/// beneficiaries, vehicles, participation charged.
public struct PrefectReport: Codable, Sendable, Equatable {
    public var year: Int
    public var trips: Int
    public var totalKilometres: Int64
    /// Tenths of a kilometre, rounded half up: 12.4 km is 124.
    public var meanDistanceTenthsKm: Int64
    public var drivers: Int
    public var beneficiaries: Int
    public var vehicles: Int
    public var participation: Cents

    enum CodingKeys: String, CodingKey {
        case year, trips, drivers, beneficiaries, vehicles
        case totalKilometres = "total_km", meanDistanceTenthsKm = "mean_distance_tenths_km", participation = "participation_cents"
    }

    public static func make(year: Int, trips: [TripFacts]) -> PrefectReport {
        let total = trips.reduce(Int64(0)) { $0 + $1.kilometres }
        let mean = trips.isEmpty ? 0 : (total * 20 + Int64(trips.count)) / (2 * Int64(trips.count))
        return PrefectReport(year: year, trips: trips.count, totalKilometres: total, meanDistanceTenthsKm: mean,
                             drivers: Set(trips.map(\.driver)).count, beneficiaries: Set(trips.flatMap(\.riders)).count,
                             vehicles: Set(trips.map(\.vehicle)).count, participation: trips.reduce(Cents.zero) { $0 + $1.participation })
    }

    /// The report as the association would send it, in French.
    public var frenchText: String {
        """
        Transport d'utilité sociale — rapport annuel \(year)
        Nombre de trajets : \(trips)
        Distance totale : \(totalKilometres) km
        Distance moyenne : \(meanDistanceTenthsKm / 10),\(meanDistanceTenthsKm % 10) km
        Conducteurs bénévoles : \(drivers)
        Bénéficiaires : \(beneficiaries)
        Véhicules : \(vehicles)
        Participation demandée : \(participation.euros)
        Seuls les trajets d'adhérents sont comptés : les tournées de l'association, les recharges et le garage n'y figurent pas.
        """
    }
}

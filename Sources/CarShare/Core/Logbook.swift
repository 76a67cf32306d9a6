import Foundation
import HubCore

/// What a use of the car was: every use is a line of the car's logbook (issue 15), not only paid
/// rides, so the odometer has no unexplained holes and the association can show how much its car
/// served its own mission.
public enum TripKind: String, Codable, Sendable, CaseIterable {
    /// A ride for members: riders, the trip fee, the préfet's social-transport report.
    case ride
    /// A run for the association itself (a delivery round, an errand): no rider, no fee; a purpose,
    /// and for deliveries the number of households served.
    case associationRun = "association_run"
    /// To a charging point and back: the energy charged and what it cost.
    case chargingRun = "charging_run"
    /// To the garage: maintenance, repairs, tyres, inspection.
    case garage

    /// The words on the paper sheet and the printed logbook.
    public var frenchLabel: String {
        switch self {
        case .ride: return "Trajet adhérent"
        case .associationRun: return "Tournée de l'association"
        case .chargingRun: return "Recharge"
        case .garage: return "Garage / entretien"
        }
    }
}

/// A logbook line refused for its kind. Each case names the rule and says what to fix.
public enum LogbookError: Error, Equatable, Sendable {
    case ridersOnlyOnRides(TripKind)
    case bookingOnlyOnRides(TripKind)
    case purposeRequired(TripKind)
    case chargeOnlyOnChargingRuns(TripKind)
    case chargedEnergyRequired
    case chargedEnergyOutOfRange(Int64)
    case chargeMethodRequired
    case householdsOnlyOnAssociationRuns(TripKind)
    case householdsServedBelowList(count: Int, listed: Int)
    case householdsServedOutOfRange(Int)

    public var hubError: HubError {
        switch self {
        case .ridersOnlyOnRides(let kind):
            return HubError.badRequest(field: "riders", code: "riders_on_ride_only", "a \(kind.rawValue) carries no members: riders are for kind ride")
        case .bookingOnlyOnRides(let kind):
            return HubError.badRequest(field: "booking", code: "booking_on_ride_only", "a \(kind.rawValue) has no booking: bookings are for rides with members")
        case .purposeRequired(let kind):
            return HubError.badRequest(field: "purpose", code: "purpose_required", "say what the \(kind.rawValue) was for (e.g. \"livraison de pain\", \"révision\")")
        case .chargeOnlyOnChargingRuns(let kind):
            return HubError.badRequest(field: "charged_wh", code: "charge_on_charging_run_only", "the energy charged belongs on a charging_run, not a \(kind.rawValue)")
        case .chargedEnergyRequired:
            return HubError.badRequest(field: "charged_wh", code: "missing_field", "a charging run says how much energy went into the car (Wh)")
        case .chargedEnergyOutOfRange(let wh):
            return HubError.badRequest(field: "charged_wh", "\(wh) Wh: the energy charged must be between 1 Wh and 200 kWh")
        case .chargeMethodRequired:
            return HubError.badRequest(field: "charge_method", code: "missing_field", "say how the charge was paid (cash, cheque or transfer)")
        case .householdsOnlyOnAssociationRuns(let kind):
            return HubError.badRequest(field: "households_served", code: "households_on_association_run_only", "households served belong on an association_run, not a \(kind.rawValue)")
        case .householdsServedBelowList(let count, let listed):
            return HubError.badRequest(field: "households_served", "\(count) households served, but \(listed) dwellings are listed")
        case .householdsServedOutOfRange(let count):
            return HubError.badRequest(field: "households_served", "\(count) households in one run: give a number between 0 and 1000")
        }
    }
}

/// What a logbook line carries besides times, odometer and battery, as the rules check it.
public struct LogbookLineFacts: Sendable, Equatable {
    public var kind: TripKind
    public var hasBooking: Bool
    public var riders: Int
    public var purpose: String?
    public var householdsServed: Int?
    public var dwellingsServed: Int
    public var chargedWh: Int64?
    public var chargeCostCents: Cents?
    public var chargeMethodGiven: Bool

    public init(kind: TripKind, hasBooking: Bool, riders: Int, purpose: String?, householdsServed: Int?, dwellingsServed: Int,
                chargedWh: Int64?, chargeCostCents: Cents?, chargeMethodGiven: Bool) {
        self.kind = kind
        self.hasBooking = hasBooking
        self.riders = riders
        self.purpose = purpose
        self.householdsServed = householdsServed
        self.dwellingsServed = dwellingsServed
        self.chargedWh = chargedWh
        self.chargeCostCents = chargeCostCents
        self.chargeMethodGiven = chargeMethodGiven
    }
}

/// The rules of the logbook: pure functions over values.
public enum LogbookRules {
    /// Checks what a line of this kind must and must not carry (rides keep `TripRules`' checks).
    public static func check(_ line: LogbookLineFacts) throws(LogbookError) {
        let purpose = line.purpose?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if line.kind != .ride {
            if line.riders > 0 { throw .ridersOnlyOnRides(line.kind) }
            if line.hasBooking { throw .bookingOnlyOnRides(line.kind) }
        }
        if line.kind != .chargingRun && (line.chargedWh != nil || line.chargeCostCents != nil) { throw .chargeOnlyOnChargingRuns(line.kind) }
        if line.kind != .associationRun && (line.householdsServed != nil || line.dwellingsServed > 0) { throw .householdsOnlyOnAssociationRuns(line.kind) }
        switch line.kind {
        case .ride:
            break
        case .associationRun, .garage:
            if purpose.isEmpty { throw .purposeRequired(line.kind) }
            if let count = line.householdsServed {
                guard (0...1000).contains(count) else { throw .householdsServedOutOfRange(count) }
                if count < line.dwellingsServed { throw .householdsServedBelowList(count: count, listed: line.dwellingsServed) }
            }
        case .chargingRun:
            guard let wh = line.chargedWh else { throw .chargedEnergyRequired }
            guard wh > 0, wh <= 200_000 else { throw .chargedEnergyOutOfRange(wh) }
            if (line.chargeCostCents ?? .zero) > .zero && !line.chargeMethodGiven { throw .chargeMethodRequired }
        }
    }
}

/// A gap in the odometer: the car travelled `kilometres` between two logbook lines (or between
/// its first known reading and its first line) that nobody wrote down.
public struct OdometerGap: Codable, Sendable, Equatable {
    public var fromKm: Int64
    public var toKm: Int64
    public var kilometres: Int64
    /// When the line before it ended (nil when it follows the car's first reading).
    public var after: Instant?
    /// When the line after it started.
    public var before: Instant
    /// The note that explains it, if someone wrote one.
    public var explanation: String?

    enum CodingKeys: String, CodingKey {
        case kilometres, after, before, explanation
        case fromKm = "from_km", toKm = "to_km"
    }

    public init(fromKm: Int64, toKm: Int64, after: Instant?, before: Instant, explanation: String?) {
        self.fromKm = fromKm
        self.toKm = toKm
        self.kilometres = toKm - fromKm
        self.after = after
        self.before = before
        self.explanation = explanation
    }
}

/// A note that explains kilometres nobody logged (e.g. "oubli du carnet, trajet au garage").
public struct OdometerNote: Codable, Sendable, Equatable {
    public var id: Int64
    public var vehicle: Int64
    public var fromKm: Int64
    public var toKm: Int64
    public var note: String
    public var notedBy: String
    public var notedAt: Instant

    enum CodingKeys: String, CodingKey {
        case id, vehicle, note
        case fromKm = "from_km", toKm = "to_km", notedBy = "noted_by", notedAt = "noted_at"
    }

    public init(id: Int64, vehicle: Int64, fromKm: Int64, toKm: Int64, note: String, notedBy: String, notedAt: Instant) {
        self.id = id
        self.vehicle = vehicle
        self.fromKm = fromKm
        self.toKm = toKm
        self.note = note
        self.notedBy = notedBy
        self.notedAt = notedAt
    }
}

/// `POST /carshare/vehicles/{id}/odometer-notes`.
public struct NewOdometerNote: Codable, Sendable, Equatable {
    public var fromKm: Int64
    public var toKm: Int64
    public var note: String

    enum CodingKeys: String, CodingKey {
        case note
        case fromKm = "from_km", toKm = "to_km"
    }

    public init(fromKm: Int64, toKm: Int64, note: String) {
        self.fromKm = fromKm
        self.toKm = toKm
        self.note = note
    }
}

/// The figures of the car's use over a period: kilometres by kind of use, the energy charged and
/// its cost, the charging cost per 100 km, and the deliveries made for the association's mission.
public struct LogbookFigures: Codable, Sendable, Equatable {
    public struct KindFigures: Codable, Sendable, Equatable {
        public var kind: TripKind
        public var lines: Int
        public var kilometres: Int64
    }

    public var byKind: [KindFigures]
    public var totalKm: Int64
    public var unexplainedKm: Int64
    public var chargedWh: Int64
    public var chargingCostCents: Cents
    /// The charging cost per 100 km driven (logged and unexplained), to the cent; nil without kilometres.
    public var chargingCostPer100KmCents: Cents?
    /// Association runs that served households, and how many households in all.
    public var deliveryRuns: Int
    public var householdsServed: Int

    enum CodingKeys: String, CodingKey {
        case byKind = "by_kind", totalKm = "total_km", unexplainedKm = "unexplained_km", chargedWh = "charged_wh",
             chargingCostCents = "charging_cost_cents", chargingCostPer100KmCents = "charging_cost_per_100km_cents",
             deliveryRuns = "delivery_runs", householdsServed = "households_served"
    }

    /// Sums lines (kind, kilometres, households served) and charges into figures.
    public static func make(lines: [(kind: TripKind, kilometres: Int64, householdsServed: Int?)], gaps: [OdometerGap],
                            chargedWh: Int64, chargingCost: Cents) -> LogbookFigures {
        let byKind = TripKind.allCases.map { kind in
            let ofKind = lines.filter { $0.kind == kind }
            return KindFigures(kind: kind, lines: ofKind.count, kilometres: ofKind.reduce(0) { $0 + $1.kilometres })
        }
        let logged = lines.reduce(Int64(0)) { $0 + $1.kilometres }
        let unexplained = gaps.filter { $0.explanation == nil }.reduce(Int64(0)) { $0 + $1.kilometres }
        let driven = logged + gaps.reduce(Int64(0)) { $0 + $1.kilometres }
        // Cents per 100 km, rounded half up: cost * 100 / km.
        let per100 = driven > 0 ? Cents((chargingCost.value * 100 * 2 + driven) / (2 * driven)) : nil
        let deliveries = lines.filter { $0.kind == .associationRun && ($0.householdsServed ?? 0) > 0 }
        return LogbookFigures(byKind: byKind, totalKm: logged, unexplainedKm: unexplained, chargedWh: chargedWh, chargingCostCents: chargingCost,
                              chargingCostPer100KmCents: per100, deliveryRuns: deliveries.count,
                              householdsServed: deliveries.reduce(0) { $0 + ($1.householdsServed ?? 0) })
    }
}

/// Odometer continuity: where consecutive lines of a car do not meet.
public enum OdometerContinuity {
    /// The gaps between lines sorted by start (each with its start and end reading and times),
    /// starting from `previousKm` (the car's reading before the first line: the last line before
    /// the period, or the car's first reading). A gap is explained by a note that covers it.
    public static func gaps(lines: [(start: Instant, end: Instant, startKm: Int64, endKm: Int64)], previousKm: Int64, previousEnd: Instant?,
                            notes: [OdometerNote]) -> [OdometerGap] {
        var gaps: [OdometerGap] = []
        var lastKm = previousKm
        var lastEnd = previousEnd
        for line in lines {
            if line.startKm > lastKm {
                let explanation = notes.first { $0.fromKm <= lastKm && $0.toKm >= line.startKm }?.note
                gaps.append(OdometerGap(fromKm: lastKm, toKm: line.startKm, after: lastEnd, before: line.start, explanation: explanation))
            }
            lastKm = max(lastKm, line.endKm)
            lastEnd = line.end
        }
        return gaps
    }
}

/// One line of the printed logbook: the use of the car and who drove.
public struct LogbookLine: Codable, Sendable, Equatable {
    public var trip: TripView
    public var driverName: String

    enum CodingKeys: String, CodingKey {
        case trip
        case driverName = "driver_name"
    }

    public init(trip: TripView, driverName: String) {
        self.trip = trip
        self.driverName = driverName
    }
}

/// A car's logbook for a month (`GET /carshare/vehicles/{id}/logbook?month=`): every line, the
/// odometer gaps between them, and the month's figures.
public struct LogbookView: Codable, Sendable, Equatable {
    public var vehicle: VehicleView
    public var month: String
    public var lines: [LogbookLine]
    public var gaps: [OdometerGap]
    public var figures: LogbookFigures

    public init(vehicle: VehicleView, month: String, lines: [LogbookLine], gaps: [OdometerGap], figures: LogbookFigures) {
        self.vehicle = vehicle
        self.month = month
        self.lines = lines
        self.gaps = gaps
        self.figures = figures
    }
}

/// The association's activity over a period (`GET /carshare/reports/activity`): what funders and
/// the landlord ask for, the kilometres and deliveries of its own mission beside the members' rides.
public struct ActivityReport: Codable, Sendable, Equatable {
    public var from: LocalDate
    public var to: LocalDate
    public var figures: LogbookFigures
    public var unexplainedGaps: Int

    enum CodingKeys: String, CodingKey {
        case from, to, figures
        case unexplainedGaps = "unexplained_gaps"
    }

    public init(from: LocalDate, to: LocalDate, figures: LogbookFigures, unexplainedGaps: Int) {
        self.from = from
        self.to = to
        self.figures = figures
        self.unexplainedGaps = unexplainedGaps
    }

    /// The report in French, as the association sends it.
    public var frenchText: String {
        func km(_ kind: TripKind) -> Int64 { figures.byKind.first { $0.kind == kind }?.kilometres ?? 0 }
        func count(_ kind: TripKind) -> Int { figures.byKind.first { $0.kind == kind }?.lines ?? 0 }
        return """
        Activité de la voiture associative du \(from.frenchText) au \(to.frenchText)
        Tournées de l'association : \(count(.associationRun)) (\(km(.associationRun)) km), dont \(French.count(figures.deliveryRuns, "livraison")) à \(French.count(figures.householdsServed, "foyer"))
        Trajets d'adhérents : \(count(.ride)) (\(km(.ride)) km)
        Recharges : \(French.count(count(.chargingRun), "déplacement")) (\(km(.chargingRun)) km), \(figures.chargedWh / 1000) kWh pour \(figures.chargingCostCents.euros)
        Garage et entretien : \(count(.garage)) (\(km(.garage)) km)
        Kilomètres non expliqués : \(figures.unexplainedKm) km\(unexplainedGaps > 0 ? " (\(unexplainedGaps) écarts de compteur)" : "")
        """
    }
}

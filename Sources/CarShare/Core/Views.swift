import Foundation
import HubCore

// Request and response bodies shared by the HTTP routes and the CLI. JSON keys are snake_case.

/// `POST /carshare/members`.
public struct NewMember: Codable, Sendable, Equatable {
    public var name: String
    public var phone: String?
    /// A dwelling of the registry, when the member lives on an estate.
    public var dwelling: String?
    public init(name: String, phone: String? = nil, dwelling: String? = nil) {
        self.name = name
        self.phone = phone
        self.dwelling = dwelling
    }
}

public struct MembershipView: Codable, Sendable, Equatable {
    public var id: Int64
    public var member: Int64
    public var periodStart: LocalDate
    public var periodEnd: LocalDate
    public var feeCents: Cents
    public var purchasedOn: LocalDate
    public var entry: Int64?
    public var deferred: Bool
    public var label: String
    enum CodingKeys: String, CodingKey {
        case id, member, entry, deferred, label
        case periodStart = "period_start", periodEnd = "period_end", feeCents = "fee_cents", purchasedOn = "purchased_on"
    }

    package init(id: Int64, member: Int64, periodStart: LocalDate, periodEnd: LocalDate, feeCents: Cents, purchasedOn: LocalDate, entry: Int64?, deferred: Bool, label: String) {
        self.id = id
        self.member = member
        self.periodStart = periodStart
        self.periodEnd = periodEnd
        self.feeCents = feeCents
        self.purchasedOn = purchasedOn
        self.entry = entry
        self.deferred = deferred
        self.label = label
    }
}

public struct MemberView: Codable, Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var phone: String
    public var dwelling: String?
    public var estate: String?
    public var memberships: [MembershipView]

    package init(id: Int64, name: String, phone: String, dwelling: String?, estate: String?, memberships: [MembershipView]) {
        self.id = id
        self.name = name
        self.phone = phone
        self.dwelling = dwelling
        self.estate = estate
        self.memberships = memberships
    }
}

/// `POST /carshare/members/{id}/memberships`.
public struct NewMembership: Codable, Sendable, Equatable {
    /// A day of the period wanted (its year, for calendar-year memberships); default: `on`.
    public var start: LocalDate?
    /// The purchase date (the entry's date); default: today.
    public var on: LocalDate?
    public init(start: LocalDate? = nil, on: LocalDate? = nil) {
        self.start = start
        self.on = on
    }
}

/// `POST /carshare/drivers`.
public struct NewDriver: Codable, Sendable, Equatable {
    public var name: String
    /// The hub user who logs trips as this driver.
    public var user: String?
    public var phone: String?
    public var licenceCheckedOn: LocalDate?
    public var trainedOn: LocalDate?
    public var active: Bool?
    enum CodingKeys: String, CodingKey {
        case name, user, phone, active
        case licenceCheckedOn = "licence_checked_on", trainedOn = "trained_on"
    }
    public init(name: String, user: String? = nil, phone: String? = nil, licenceCheckedOn: LocalDate? = nil, trainedOn: LocalDate? = nil, active: Bool? = nil) {
        self.name = name
        self.user = user
        self.phone = phone
        self.licenceCheckedOn = licenceCheckedOn
        self.trainedOn = trainedOn
        self.active = active
    }
}

/// `PATCH /carshare/drivers/{id}`.
public struct DriverUpdate: Codable, Sendable, Equatable {
    public var version: Int64
    public var licenceCheckedOn: LocalDate?
    public var trainedOn: LocalDate?
    public var active: Bool?
    public var phone: String?
    enum CodingKeys: String, CodingKey {
        case version, active, phone
        case licenceCheckedOn = "licence_checked_on", trainedOn = "trained_on"
    }

    package init(version: Int64, licenceCheckedOn: LocalDate?, trainedOn: LocalDate?, active: Bool?, phone: String?) {
        self.version = version
        self.licenceCheckedOn = licenceCheckedOn
        self.trainedOn = trainedOn
        self.active = active
        self.phone = phone
    }
}

public struct DriverView: Codable, Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var user: String?
    public var phone: String
    public var licenceCheckedOn: LocalDate?
    public var trainedOn: LocalDate?
    public var active: Bool
    public var version: Int64
    enum CodingKeys: String, CodingKey {
        case id, name, user, phone, active, version
        case licenceCheckedOn = "licence_checked_on", trainedOn = "trained_on"
    }

    package init(id: Int64, name: String, user: String?, phone: String, licenceCheckedOn: LocalDate?, trainedOn: LocalDate?, active: Bool, version: Int64) {
        self.id = id
        self.name = name
        self.user = user
        self.phone = phone
        self.licenceCheckedOn = licenceCheckedOn
        self.trainedOn = trainedOn
        self.active = active
        self.version = version
    }
}

/// `POST /carshare/vehicles`.
public struct NewVehicle: Codable, Sendable, Equatable {
    public var name: String
    public var plate: String
    public var batteryCapacityWh: WattHours?
    public var initialOdometerKm: Int64?
    enum CodingKeys: String, CodingKey {
        case name, plate
        case batteryCapacityWh = "battery_capacity_wh", initialOdometerKm = "initial_odometer_km"
    }
    public init(name: String, plate: String, batteryCapacityWh: WattHours? = nil, initialOdometerKm: Int64? = nil) {
        self.name = name
        self.plate = plate
        self.batteryCapacityWh = batteryCapacityWh
        self.initialOdometerKm = initialOdometerKm
    }
}

public struct VehicleView: Codable, Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var plate: String
    public var batteryCapacityWh: WattHours?
    public var initialOdometerKm: Int64
    /// The car's last known odometer reading (its latest trip's end, or its initial reading).
    public var lastOdometerKm: Int64
    public var active: Bool
    enum CodingKeys: String, CodingKey {
        case id, name, plate, active
        case batteryCapacityWh = "battery_capacity_wh", initialOdometerKm = "initial_odometer_km", lastOdometerKm = "last_odometer_km"
    }

    package init(id: Int64, name: String, plate: String, batteryCapacityWh: WattHours?, initialOdometerKm: Int64, lastOdometerKm: Int64, active: Bool) {
        self.id = id
        self.name = name
        self.plate = plate
        self.batteryCapacityWh = batteryCapacityWh
        self.initialOdometerKm = initialOdometerKm
        self.lastOdometerKm = lastOdometerKm
        self.active = active
    }
}

/// `POST /carshare/bookings`.
public struct NewBooking: Codable, Sendable, Equatable {
    public var vehicle: Int64
    public var rider: Int64
    public var start: Instant
    public var end: Instant
    public var purpose: String?
    /// Assigning a driver at once makes the booking confirmed.
    public var driver: Int64?
    public init(vehicle: Int64, rider: Int64, start: Instant, end: Instant, purpose: String? = nil, driver: Int64? = nil) {
        self.vehicle = vehicle
        self.rider = rider
        self.start = start
        self.end = end
        self.purpose = purpose
        self.driver = driver
    }
}

/// `PATCH /carshare/bookings/{id}`: only the fields sent change; `version` must be current.
public struct BookingEdit: Codable, Sendable, Equatable {
    public var version: Int64
    public var start: Instant?
    public var end: Instant?
    public var purpose: String?
    public var vehicle: Int64?
    public init(version: Int64, start: Instant? = nil, end: Instant? = nil, purpose: String? = nil, vehicle: Int64? = nil) {
        self.version = version
        self.start = start
        self.end = end
        self.purpose = purpose
        self.vehicle = vehicle
    }
}

/// `POST /carshare/bookings/{id}/status`.
public struct BookingStatusChange: Codable, Sendable, Equatable {
    public var version: Int64
    public var status: BookingStatus
    public var reason: String?
    /// The driver to assign (needed to confirm).
    public var driver: Int64?
    public init(version: Int64, status: BookingStatus, reason: String? = nil, driver: Int64? = nil) {
        self.version = version
        self.status = status
        self.reason = reason
        self.driver = driver
    }
}

public struct BookingEventView: Codable, Sendable, Equatable {
    public var at: Instant
    public var by: String
    public var from: BookingStatus?
    public var to: BookingStatus
    public var reason: String

    package init(at: Instant, by: String, from: BookingStatus?, to: BookingStatus, reason: String) {
        self.at = at
        self.by = by
        self.from = from
        self.to = to
        self.reason = reason
    }
}

public struct BookingView: Codable, Sendable, Equatable {
    public var id: Int64
    public var vehicle: Int64
    public var rider: Int64
    public var driver: Int64?
    public var bookedBy: String
    public var start: Instant
    public var end: Instant
    public var purpose: String
    public var status: BookingStatus
    public var statusLabel: String
    public var feeEntry: Int64?
    public var version: Int64
    public var events: [BookingEventView]
    enum CodingKeys: String, CodingKey {
        case id, vehicle, rider, driver, start, end, purpose, status, version, events
        case bookedBy = "booked_by", statusLabel = "status_label", feeEntry = "fee_entry"
    }

    package init(id: Int64, vehicle: Int64, rider: Int64, driver: Int64?, bookedBy: String, start: Instant, end: Instant, purpose: String, status: BookingStatus, statusLabel: String, feeEntry: Int64?, version: Int64, events: [BookingEventView]) {
        self.id = id
        self.vehicle = vehicle
        self.rider = rider
        self.driver = driver
        self.bookedBy = bookedBy
        self.start = start
        self.end = end
        self.purpose = purpose
        self.status = status
        self.statusLabel = statusLabel
        self.feeEntry = feeEntry
        self.version = version
        self.events = events
    }
}

/// `POST /carshare/trips`: a driver's logbook line.
public struct NewTrip: Codable, Sendable, Equatable {
    public var idempotencyKey: String?
    public var booking: Int64?
    /// Needed for a trip without a booking.
    public var vehicle: Int64?
    /// Staff typing a paper log say who drove; a driver user logs as themself.
    public var driver: Int64?
    public var unbookedReason: String?
    /// Default: the booking's rider.
    public var riders: [Int64]?
    public var start: Instant
    public var end: Instant
    public var startOdometerKm: Int64
    public var endOdometerKm: Int64
    public var batteryStartPct: Int
    public var batteryEndPct: Int
    public var incidents: String?
    /// What the use of the car was (default: a ride for members).
    public var kind: TripKind?
    /// What an association run, a charging run or a visit to the garage was for.
    public var purpose: String?
    /// An association run's deliveries: how many households, and optionally which dwellings.
    public var householdsServed: Int?
    public var dwellingsServed: [String]?
    /// A charging run's energy charged and what it cost (paid in cash, by cheque or transfer).
    public var chargedWh: Int64?
    public var chargeCostCents: Cents?
    public var chargeMethod: PaymentMethod?
    enum CodingKeys: String, CodingKey {
        case booking, vehicle, driver, riders, start, end, incidents, kind, purpose
        case idempotencyKey = "idempotency_key", unbookedReason = "unbooked_reason", startOdometerKm = "start_odometer_km",
             endOdometerKm = "end_odometer_km", batteryStartPct = "battery_start_pct", batteryEndPct = "battery_end_pct",
             householdsServed = "households_served", dwellingsServed = "dwellings_served", chargedWh = "charged_wh",
             chargeCostCents = "charge_cost_cents", chargeMethod = "charge_method"
    }
    public init(idempotencyKey: String?, booking: Int64? = nil, vehicle: Int64? = nil, driver: Int64? = nil, unbookedReason: String? = nil,
                riders: [Int64]? = nil, start: Instant, end: Instant, startOdometerKm: Int64, endOdometerKm: Int64,
                batteryStartPct: Int, batteryEndPct: Int, incidents: String? = nil, kind: TripKind? = nil, purpose: String? = nil,
                householdsServed: Int? = nil, dwellingsServed: [String]? = nil, chargedWh: Int64? = nil, chargeCostCents: Cents? = nil,
                chargeMethod: PaymentMethod? = nil) {
        self.kind = kind
        self.purpose = purpose
        self.householdsServed = householdsServed
        self.dwellingsServed = dwellingsServed
        self.chargedWh = chargedWh
        self.chargeCostCents = chargeCostCents
        self.chargeMethod = chargeMethod
        self.idempotencyKey = idempotencyKey
        self.booking = booking
        self.vehicle = vehicle
        self.driver = driver
        self.unbookedReason = unbookedReason
        self.riders = riders
        self.start = start
        self.end = end
        self.startOdometerKm = startOdometerKm
        self.endOdometerKm = endOdometerKm
        self.batteryStartPct = batteryStartPct
        self.batteryEndPct = batteryEndPct
        self.incidents = incidents
    }
}

public struct TripRiderView: Codable, Sendable, Equatable {
    public var member: Int64
    public var feeCents: Cents
    public var entry: Int64?
    enum CodingKeys: String, CodingKey {
        case member, entry
        case feeCents = "fee_cents"
    }

    package init(member: Int64, feeCents: Cents, entry: Int64?) {
        self.member = member
        self.feeCents = feeCents
        self.entry = entry
    }
}

public struct TripView: Codable, Sendable, Equatable {
    public var id: Int64
    public var booking: Int64?
    public var vehicle: Int64
    public var driver: Int64
    public var unbookedReason: String?
    public var start: Instant
    public var end: Instant
    public var startOdometerKm: Int64
    public var endOdometerKm: Int64
    public var distanceKm: Int64
    public var batteryStartPct: Int
    public var batteryEndPct: Int
    /// Estimated from the battery gauge and the car's capacity, when known.
    public var energyWh: WattHours?
    public var incidents: String
    /// Raised by the optional social-transport check.
    public var flags: [SocialTransportFlag]
    public var riders: [TripRiderView]
    public var kind: TripKind = .ride
    public var purpose: String?
    public var householdsServed: Int?
    public var dwellingsServed: [String] = []
    /// A charging run's charge (also in the charging log, with its ledger entry when paid).
    public var charging: ChargingView?
    enum CodingKeys: String, CodingKey {
        case id, booking, vehicle, driver, start, end, incidents, flags, riders, kind, purpose, charging
        case unbookedReason = "unbooked_reason", startOdometerKm = "start_odometer_km", endOdometerKm = "end_odometer_km",
             distanceKm = "distance_km", batteryStartPct = "battery_start_pct", batteryEndPct = "battery_end_pct", energyWh = "energy_wh",
             householdsServed = "households_served", dwellingsServed = "dwellings_served"
    }

    /// Decodes answers remembered for idempotent retries before the logbook existed (no `kind`: a ride).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(Int64.self, forKey: .id)
        booking = try c.decodeIfPresent(Int64.self, forKey: .booking)
        vehicle = try c.decode(Int64.self, forKey: .vehicle)
        driver = try c.decode(Int64.self, forKey: .driver)
        unbookedReason = try c.decodeIfPresent(String.self, forKey: .unbookedReason)
        start = try c.decode(Instant.self, forKey: .start)
        end = try c.decode(Instant.self, forKey: .end)
        startOdometerKm = try c.decode(Int64.self, forKey: .startOdometerKm)
        endOdometerKm = try c.decode(Int64.self, forKey: .endOdometerKm)
        distanceKm = try c.decode(Int64.self, forKey: .distanceKm)
        batteryStartPct = try c.decode(Int.self, forKey: .batteryStartPct)
        batteryEndPct = try c.decode(Int.self, forKey: .batteryEndPct)
        energyWh = try c.decodeIfPresent(WattHours.self, forKey: .energyWh)
        incidents = try c.decode(String.self, forKey: .incidents)
        flags = try c.decode([SocialTransportFlag].self, forKey: .flags)
        riders = try c.decode([TripRiderView].self, forKey: .riders)
        kind = try c.decodeIfPresent(TripKind.self, forKey: .kind) ?? .ride
        purpose = try c.decodeIfPresent(String.self, forKey: .purpose)
        householdsServed = try c.decodeIfPresent(Int.self, forKey: .householdsServed)
        dwellingsServed = try c.decodeIfPresent([String].self, forKey: .dwellingsServed) ?? []
        charging = try c.decodeIfPresent(ChargingView.self, forKey: .charging)
    }

    package init(id: Int64, booking: Int64?, vehicle: Int64, driver: Int64, unbookedReason: String?, start: Instant, end: Instant, startOdometerKm: Int64, endOdometerKm: Int64, distanceKm: Int64, batteryStartPct: Int, batteryEndPct: Int, energyWh: WattHours?, incidents: String, flags: [SocialTransportFlag], riders: [TripRiderView],
                 kind: TripKind = .ride, purpose: String? = nil, householdsServed: Int? = nil, dwellingsServed: [String] = [], charging: ChargingView? = nil) {
        self.kind = kind
        self.purpose = purpose
        self.householdsServed = householdsServed
        self.dwellingsServed = dwellingsServed
        self.charging = charging
        self.id = id
        self.booking = booking
        self.vehicle = vehicle
        self.driver = driver
        self.unbookedReason = unbookedReason
        self.start = start
        self.end = end
        self.startOdometerKm = startOdometerKm
        self.endOdometerKm = endOdometerKm
        self.distanceKm = distanceKm
        self.batteryStartPct = batteryStartPct
        self.batteryEndPct = batteryEndPct
        self.energyWh = energyWh
        self.incidents = incidents
        self.flags = flags
        self.riders = riders
    }
}

/// `POST /carshare/charging`.
public struct NewCharging: Codable, Sendable, Equatable {
    public var vehicle: Int64
    public var at: Instant
    public var energyWh: WattHours
    public var costCents: Cents
    /// How the cost was paid; needed when it is not zero.
    public var method: PaymentMethod?
    public var note: String?
    enum CodingKeys: String, CodingKey {
        case vehicle, at, method, note
        case energyWh = "energy_wh", costCents = "cost_cents"
    }
    public init(vehicle: Int64, at: Instant, energyWh: WattHours, costCents: Cents, method: PaymentMethod? = nil, note: String? = nil) {
        self.vehicle = vehicle
        self.at = at
        self.energyWh = energyWh
        self.costCents = costCents
        self.method = method
        self.note = note
    }
}

public struct ChargingView: Codable, Sendable, Equatable {
    public var id: Int64
    public var vehicle: Int64
    public var at: Instant
    public var energyWh: WattHours
    public var costCents: Cents
    public var method: PaymentMethod?
    public var entry: Int64?
    enum CodingKeys: String, CodingKey {
        case id, vehicle, at, method, entry
        case energyWh = "energy_wh", costCents = "cost_cents"
    }

    package init(id: Int64, vehicle: Int64, at: Instant, energyWh: WattHours, costCents: Cents, method: PaymentMethod?, entry: Int64?) {
        self.id = id
        self.vehicle = vehicle
        self.at = at
        self.energyWh = energyWh
        self.costCents = costCents
        self.method = method
        self.entry = entry
    }
}

/// `POST /carshare/payments`.
public struct NewPayment: Codable, Sendable, Equatable {
    public var idempotencyKey: String?
    public var member: Int64
    public var amountCents: Cents
    public var method: PaymentMethod
    public var on: LocalDate?
    public var note: String?
    enum CodingKeys: String, CodingKey {
        case member, method, on, note
        case idempotencyKey = "idempotency_key", amountCents = "amount_cents"
    }
    public init(idempotencyKey: String?, member: Int64, amountCents: Cents, method: PaymentMethod, on: LocalDate? = nil, note: String? = nil) {
        self.idempotencyKey = idempotencyKey
        self.member = member
        self.amountCents = amountCents
        self.method = method
        self.on = on
        self.note = note
    }
}

public struct PaymentView: Codable, Sendable, Equatable {
    public var entry: Int64
    public var receipt: Int64
    public var member: Int64
    public var amountCents: Cents
    public var method: PaymentMethod
    public var date: LocalDate
    /// The part that settled what the member owed; the rest is prepaid credit.
    public var settledCents: Cents
    public var creditCents: Cents
    /// The plain receipt, in French (a membership with consideration is not a tax receipt).
    public var receiptText: String
    enum CodingKeys: String, CodingKey {
        case entry, receipt, member, method, date
        case amountCents = "amount_cents", settledCents = "settled_cents", creditCents = "credit_cents", receiptText = "receipt_text"
    }

    package init(entry: Int64, receipt: Int64, member: Int64, amountCents: Cents, method: PaymentMethod, date: LocalDate, settledCents: Cents, creditCents: Cents, receiptText: String) {
        self.entry = entry
        self.receipt = receipt
        self.member = member
        self.amountCents = amountCents
        self.method = method
        self.date = date
        self.settledCents = settledCents
        self.creditCents = creditCents
        self.receiptText = receiptText
    }
}

/// `POST /carshare/deposits`: cash or cheques taken to the bank.
public struct NewDeposit: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case cash, cheques }
    public var idempotencyKey: String?
    public var kind: Kind
    public var amountCents: Cents
    public var on: LocalDate?
    enum CodingKeys: String, CodingKey {
        case kind, on
        case idempotencyKey = "idempotency_key", amountCents = "amount_cents"
    }
    public init(idempotencyKey: String? = nil, kind: Kind, amountCents: Cents, on: LocalDate? = nil) {
        self.idempotencyKey = idempotencyKey
        self.kind = kind
        self.amountCents = amountCents
        self.on = on
    }
}

/// `POST /carshare/refunds`: prepaid credit given back.
public struct NewRefund: Codable, Sendable, Equatable {
    public var idempotencyKey: String?
    public var member: Int64
    public var amountCents: Cents
    public var method: PaymentMethod
    public var on: LocalDate?
    public var reason: String?
    enum CodingKeys: String, CodingKey {
        case member, method, on, reason
        case idempotencyKey = "idempotency_key", amountCents = "amount_cents"
    }
    public init(idempotencyKey: String? = nil, member: Int64, amountCents: Cents, method: PaymentMethod, on: LocalDate? = nil, reason: String? = nil) {
        self.idempotencyKey = idempotencyKey
        self.member = member
        self.amountCents = amountCents
        self.method = method
        self.on = on
        self.reason = reason
    }
}

/// One line typed by a person: account code, member for 411/4191, signed cents (debit positive).
public struct LineInput: Codable, Sendable, Equatable {
    public var account: String
    public var member: Int64?
    public var amountCents: Cents
    enum CodingKeys: String, CodingKey {
        case account, member
        case amountCents = "amount_cents"
    }
    public init(account: String, member: Int64? = nil, amountCents: Cents) {
        self.account = account
        self.member = member
        self.amountCents = amountCents
    }
}

/// `POST /carshare/corrections`: reverses an entry and, when lines are given, posts the right one.
public struct NewCorrection: Codable, Sendable, Equatable {
    public var entry: Int64
    public var reason: String
    public var on: LocalDate?
    public var label: String?
    public var lines: [LineInput]?
    public init(entry: Int64, reason: String, on: LocalDate? = nil, label: String? = nil, lines: [LineInput]? = nil) {
        self.entry = entry
        self.reason = reason
        self.on = on
        self.label = label
        self.lines = lines
    }
}

/// `POST /carshare/ledger/entries`: a staff entry (grant, insurance, maintenance...).
public struct NewManualEntry: Codable, Sendable, Equatable {
    public var on: LocalDate
    public var label: String
    public var lines: [LineInput]
    public init(on: LocalDate, label: String, lines: [LineInput]) {
        self.on = on
        self.label = label
        self.lines = lines
    }
}

public struct LineView: Codable, Sendable, Equatable {
    public var account: Account
    public var accountLabel: String
    public var member: Int64?
    public var amountCents: Cents
    enum CodingKeys: String, CodingKey {
        case account, member
        case accountLabel = "account_label", amountCents = "amount_cents"
    }

    package init(account: Account, accountLabel: String, member: Int64?, amountCents: Cents) {
        self.account = account
        self.accountLabel = accountLabel
        self.member = member
        self.amountCents = amountCents
    }
}

public struct EntryView: Codable, Sendable, Equatable {
    public var number: Int64
    public var date: LocalDate
    public var kind: EntryKind
    public var label: String
    public var member: Int64?
    public var reverses: Int64?
    public var corrects: Int64?
    public var receipt: Int64?
    public var lines: [LineView]
    public var hash: String

    public init(_ entry: PostedEntry) {
        number = entry.number
        date = entry.date
        kind = entry.kind
        label = entry.label
        member = entry.member
        reverses = entry.reverses
        corrects = entry.corrects
        receipt = entry.receipt
        lines = entry.lines.map { LineView(account: $0.account, accountLabel: $0.account.label, member: $0.member, amountCents: $0.amount) }
        hash = entry.hash
    }
}

/// The entries an operation posted.
public struct PostedView: Codable, Sendable, Equatable {
    public var entries: [EntryView]

    package init(entries: [EntryView]) {
        self.entries = entries
    }
}

// Money and energy are decoded as keyed integers: a wrong value (2.5 cents, a string) then names
// its field, which a single-value decoder inside `Cents` loses.
extension KeyedDecodingContainer {
    func cents(_ key: Key) throws -> Cents { Cents(try wholeNumber(key, unit: "cents")) }
    func wattHours(_ key: Key) throws -> WattHours { WattHours(try wholeNumber(key, unit: "Wh")) }
    func wattHoursIfPresent(_ key: Key) throws -> WattHours? {
        guard contains(key), try !decodeNil(forKey: key) else { return nil }
        return try wattHours(key)
    }

    /// An integer; a fractional number (which Foundation on Linux reports as invalid JSON,
    /// without the key) is refused naming the key.
    func wholeNumber(_ key: Key, unit: String) throws -> Int64 {
        do {
            return try decode(Int64.self, forKey: key)
        } catch {
            if (try? decode(Double.self, forKey: key)) != nil {
                throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: "\(key.stringValue) must be a whole number of \(unit)")
            }
            throw error
        }
    }
}

extension NewVehicle {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(name: try c.decode(String.self, forKey: .name), plate: try c.decode(String.self, forKey: .plate),
                  batteryCapacityWh: try c.wattHoursIfPresent(.batteryCapacityWh), initialOdometerKm: try c.decodeIfPresent(Int64.self, forKey: .initialOdometerKm))
    }
}

extension NewCharging {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(vehicle: try c.decode(Int64.self, forKey: .vehicle), at: try c.decode(Instant.self, forKey: .at), energyWh: try c.wattHours(.energyWh),
                  costCents: try c.cents(.costCents), method: try c.decodeIfPresent(PaymentMethod.self, forKey: .method), note: try c.decodeIfPresent(String.self, forKey: .note))
    }
}

extension NewPayment {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(idempotencyKey: try c.decodeIfPresent(String.self, forKey: .idempotencyKey), member: try c.decode(Int64.self, forKey: .member),
                  amountCents: try c.cents(.amountCents), method: try c.decode(PaymentMethod.self, forKey: .method),
                  on: try c.decodeIfPresent(LocalDate.self, forKey: .on), note: try c.decodeIfPresent(String.self, forKey: .note))
    }
}

extension NewDeposit {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(idempotencyKey: try c.decodeIfPresent(String.self, forKey: .idempotencyKey), kind: try c.decode(Kind.self, forKey: .kind),
                  amountCents: try c.cents(.amountCents), on: try c.decodeIfPresent(LocalDate.self, forKey: .on))
    }
}

extension NewRefund {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(idempotencyKey: try c.decodeIfPresent(String.self, forKey: .idempotencyKey), member: try c.decode(Int64.self, forKey: .member),
                  amountCents: try c.cents(.amountCents), method: try c.decode(PaymentMethod.self, forKey: .method),
                  on: try c.decodeIfPresent(LocalDate.self, forKey: .on), reason: try c.decodeIfPresent(String.self, forKey: .reason))
    }
}

extension LineInput {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(account: try c.decode(String.self, forKey: .account), member: try c.decodeIfPresent(Int64.self, forKey: .member), amountCents: try c.cents(.amountCents))
    }
}

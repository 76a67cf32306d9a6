import HubCore

/// Everything the routes, the commands and the demo read or write in the car share: async, for a
/// caller whose access `AccessPolicy` decides, answering the value types of this module. Each
/// operation checks and writes in one transaction. `SQLiteCarShareStore` (CarShare) implements
/// it over the hub's SQLite file; a server database adds another implementation of the same
/// protocol, with the same invariants (balanced entries, immutable with reversals, gapless
/// numbers, closed months, the hash chain).
public protocol CarShareStore: Sendable {
    /// The time zone of the car share's days and months.
    var zone: LocalTimeZone { get }

    // Members, memberships, drivers, vehicles.
    func addMember(_ input: NewMember, by identity: Identity, at now: Instant) async throws -> MemberView
    func member(_ id: Int64, by identity: Identity) async throws -> MemberView
    func members(by identity: Identity) async throws -> [MemberView]
    func buyMembership(member memberID: Int64, _ input: NewMembership, by identity: Identity, at now: Instant) async throws -> MembershipView
    func recognizeDeferredMemberships(on date: LocalDate, by identity: Identity, at now: Instant) async throws -> PostedView
    func addDriver(_ input: NewDriver, by identity: Identity) async throws -> DriverView
    func updateDriver(_ id: Int64, _ input: DriverUpdate, by identity: Identity) async throws -> DriverView
    func drivers(by identity: Identity) async throws -> [DriverView]
    func addVehicle(_ input: NewVehicle, by identity: Identity) async throws -> VehicleView
    func vehicles(by identity: Identity) async throws -> [VehicleView]

    // Bookings.
    func createBooking(_ input: NewBooking, by identity: Identity, at now: Instant) async throws -> BookingView
    func booking(_ id: Int64, by identity: Identity) async throws -> BookingView
    func bookings(vehicle: Int64?, from: Instant?, to: Instant?, by identity: Identity) async throws -> [BookingView]
    /// Who rides on each of these bookings, for those the caller may read (a driver calls them).
    func riderContacts(bookings: [Int64], by identity: Identity) async throws -> [Int64: RiderContact]
    func editBooking(_ id: Int64, _ input: BookingEdit, by identity: Identity, at now: Instant) async throws -> BookingView
    func changeStatus(_ id: Int64, _ input: BookingStatusChange, by identity: Identity, at now: Instant) async throws -> BookingView

    // Trips and charging.
    func logTrip(_ input: NewTrip, by identity: Identity, at now: Instant) async throws -> (trip: TripView, replayed: Bool)
    func logCharging(_ input: NewCharging, by identity: Identity, at now: Instant) async throws -> ChargingView

    // The logbook: every use of the car, its odometer gaps, the association's activity.
    func logbook(vehicle: Int64, month: String, by identity: Identity) async throws -> LogbookView
    func addOdometerNote(vehicle: Int64, _ input: NewOdometerNote, by identity: Identity, at now: Instant) async throws -> OdometerNote
    func activityReport(from: LocalDate, to: LocalDate, by identity: Identity) async throws -> ActivityReport

    // Money and the ledger.
    func recordPayment(_ input: NewPayment, by identity: Identity, at now: Instant) async throws -> (payment: PaymentView, replayed: Bool)
    func recordDeposit(_ input: NewDeposit, by identity: Identity, at now: Instant) async throws -> PostedView
    func recordRefund(_ input: NewRefund, by identity: Identity, at now: Instant) async throws -> PostedView
    func correct(_ input: NewCorrection, by identity: Identity, at now: Instant) async throws -> PostedView
    func postManual(_ input: NewManualEntry, by identity: Identity, at now: Instant) async throws -> EntryView
    func closeMonth(_ month: String, by identity: Identity, at now: Instant) async throws -> [String]
    func entryView(_ number: Int64, by identity: Identity) async throws -> EntryView

    // Reports.
    func balances(by identity: Identity) async throws -> BalancesReport
    func statement(member memberID: Int64, by identity: Identity) async throws -> MemberStatement
    func cashBook(from: LocalDate, to: LocalDate, by identity: Identity) async throws -> CashBook
    func incomeStatement(month: String, by identity: Identity) async throws -> IncomeStatement
    func tripList(from: LocalDate, to: LocalDate, vehicle: Int64?, by identity: Identity) async throws -> TripList
    func prefectReport(year: Int, by identity: Identity) async throws -> PrefectReport
    func journal(by identity: Identity) async throws -> String
    /// The posted entries dated in local days [from, to], in number order (a month's journal).
    func entries(from: LocalDate, to: LocalDate, by identity: Identity) async throws -> [PostedEntry]
    /// The hash chain's head at the close of a month (`YYYY-MM`): printed on the association's statement.
    func ledgerHead(month: String, by identity: Identity) async throws -> LedgerHead
    func verify(by identity: Identity) async throws -> VerifyReport
}

/// A booking's rider as the people taking them there need them: their name and phone.
public struct RiderContact: Sendable, Equatable {
    public var member: Int64
    public var name: String
    public var phone: String

    public init(member: Int64, name: String, phone: String) {
        self.member = member
        self.name = name
        self.phone = phone
    }
}

extension CarShareStore {
    /// The trips of every vehicle.
    public func tripList(from: LocalDate, to: LocalDate, by identity: Identity) async throws -> TripList {
        try await tripList(from: from, to: to, vehicle: nil, by: identity)
    }
}

import ArgumentParser
import CarShare
import CarShareCore
import Foundation
import HubCore
import Shared
import HubApp
import HubTools

/// What every car-share command needs: the store and the staff identity the CLI acts as.
struct CarShareCLI {
    let store: any CarShareStore
    let identity: Identity

    init(_ common: CommonOptions) async throws {
        let settings = try common.settings()
        // Every setting checked once, with the hub's one time zone, as `serve` does.
        let configuration = try settings.configuration()
        if let postgres = try await common.runningPostgres(settings) {
            store = PostgresCarShareStore(database: postgres, settings: configuration.carshare)
        } else {
            store = SQLiteCarShareStore(database: try HubSchema.open(settings), settings: configuration.carshare)
        }
        identity = .commandLine
    }

    static func printJSON<T: Encodable>(_ value: T) throws {
        print(try json(value))
    }

    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = HubJSON.encoder
        encoder.outputFormatting.insert(.prettyPrinted)
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Writes text to a file, or prints it when no file is given.
    static func write(_ text: String, to path: String?) throws {
        guard let path else { print(text); return }
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        } catch {
            throw HubError.badRequest(field: "out", code: "unwritable", "cannot write \(path): \(error.localizedDescription)")
        }
    }

    static func cents(_ text: String, field: String) throws -> Cents {
        guard let cents = Cents(parsing: text) else { throw HubError.badRequest(field: field, "\(text) is not an amount in euros (e.g. 8 or 2,50)") }
        return cents
    }

    static func date(_ text: String?, field: String) throws -> LocalDate? {
        guard let text else { return nil }
        guard let date = LocalDate(parsing: text) else { throw HubError.badRequest(field: field, code: "invalid_date", "\(text) is not a date YYYY-MM-DD") }
        return date
    }

    static func instant(_ text: String, field: String, zone: LocalTimeZone) throws -> Instant {
        if let instant = Instant.parseRFC3339(text) { return instant }
        if let local = LocalDateTime(parsing: text), let instant = zone.instants(of: local).first { return instant }
        throw HubError.badRequest(field: field, code: "invalid_date", "\(text) is not a date-time (2026-11-27T10:00 local time, or RFC 3339)")
    }
}

struct CarShareCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "carshare", abstract: "The association's electric car: members, bookings, trips, money and reports (as staff).",
        subcommands: [Members.self, Memberships.self, Drivers.self, Vehicles.self, Bookings.self, Trips.self, Payments.self,
                      Deposits.self, Refunds.self, Corrections.self, Reports.self, Export.self])

    struct Members: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "members", abstract: "People who may ride.", subcommands: [Add.self, List.self])
        struct Add: AsyncParsableCommand {
            @OptionGroup var common: CommonOptions
            @Argument(help: "The member's name.") var name: String
            @Option var phone: String?
            @Option(help: "Their dwelling in the registry.") var dwelling: String?
            func run() async throws {
                try await reportingErrors {
                    let cli = try await CarShareCLI(common)
                    try CarShareCLI.printJSON(try await cli.store.addMember(NewMember(name: name, phone: phone, dwelling: dwelling), by: cli.identity, at: .now()))
                }
            }
        }
        struct List: AsyncParsableCommand {
            @OptionGroup var common: CommonOptions
            func run() async throws {
                try await reportingErrors {
                    let cli = try await CarShareCLI(common)
                    try CarShareCLI.printJSON(try await cli.store.members(by: cli.identity))
                }
            }
        }
    }

    struct Memberships: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "memberships", abstract: "Memberships and their fees.", subcommands: [Buy.self, Recognize.self])
        struct Buy: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Charge a member the membership fee for a period.")
            @OptionGroup var common: CommonOptions
            @Argument(help: "The member id.") var member: Int64
            @Option(help: "A day of the period wanted (default: --on).") var start: String?
            @Option(help: "The purchase date (default: today).") var on: String?
            func run() async throws {
                try await reportingErrors {
                    let cli = try await CarShareCLI(common)
                    let input = NewMembership(start: try CarShareCLI.date(start, field: "start"), on: try CarShareCLI.date(on, field: "on"))
                    try CarShareCLI.printJSON(try await cli.store.buyMembership(member: member, input, by: cli.identity, at: .now()))
                }
            }
        }
        struct Recognize: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Move next-year membership fees (487) to income (756) once their year has started.")
            @OptionGroup var common: CommonOptions
            @Option(help: "The date (default: today).") var on: String?
            func run() async throws {
                try await reportingErrors {
                    let cli = try await CarShareCLI(common)
                    let date = try CarShareCLI.date(on, field: "on") ?? cli.store.zone.localDate(of: .now())
                    try CarShareCLI.printJSON(try await cli.store.recognizeDeferredMemberships(on: date, by: cli.identity, at: .now()))
                }
            }
        }
    }

    struct Drivers: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "drivers", abstract: "Volunteer drivers.", subcommands: [Add.self, List.self])
        struct Add: AsyncParsableCommand {
            @OptionGroup var common: CommonOptions
            @Argument var name: String
            @Option(help: "The hub user (role driver) who logs trips as this driver.") var user: String?
            @Option var phone: String?
            @Option(name: .customLong("licence-checked-on")) var licenceCheckedOn: String?
            @Option(name: .customLong("trained-on")) var trainedOn: String?
            func run() async throws {
                try await reportingErrors {
                    let cli = try await CarShareCLI(common)
                    let input = NewDriver(name: name, user: user, phone: phone, licenceCheckedOn: try CarShareCLI.date(licenceCheckedOn, field: "licence_checked_on"),
                                          trainedOn: try CarShareCLI.date(trainedOn, field: "trained_on"))
                    try CarShareCLI.printJSON(try await cli.store.addDriver(input, by: cli.identity))
                }
            }
        }
        struct List: AsyncParsableCommand {
            @OptionGroup var common: CommonOptions
            func run() async throws {
                try await reportingErrors {
                    let cli = try await CarShareCLI(common)
                    try CarShareCLI.printJSON(try await cli.store.drivers(by: cli.identity))
                }
            }
        }
    }

    struct Vehicles: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "vehicles", abstract: "The cars.", subcommands: [Add.self, List.self])
        struct Add: AsyncParsableCommand {
            @OptionGroup var common: CommonOptions
            @Argument var name: String
            @Option var plate: String
            @Option(name: .customLong("battery-wh")) var batteryWh: Int64?
            @Option(name: .customLong("odometer-km")) var odometerKm: Int64?
            func run() async throws {
                try await reportingErrors {
                    let cli = try await CarShareCLI(common)
                    let input = NewVehicle(name: name, plate: plate, batteryCapacityWh: batteryWh.map(WattHours.init), initialOdometerKm: odometerKm)
                    try CarShareCLI.printJSON(try await cli.store.addVehicle(input, by: cli.identity))
                }
            }
        }
        struct List: AsyncParsableCommand {
            @OptionGroup var common: CommonOptions
            func run() async throws {
                try await reportingErrors {
                    let cli = try await CarShareCLI(common)
                    try CarShareCLI.printJSON(try await cli.store.vehicles(by: cli.identity))
                }
            }
        }
    }

    struct Bookings: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "bookings", abstract: "Bookings of the cars.", subcommands: [Add.self, List.self, Status.self])
        struct Add: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Book a car for a member (for example on behalf of a resident who phoned).")
            @OptionGroup var common: CommonOptions
            @Option var vehicle: Int64
            @Option var rider: Int64
            @Option(help: "Local date-time 2026-11-27T10:00 or RFC 3339.") var start: String
            @Option var end: String
            @Option var purpose: String?
            @Option var driver: Int64?
            func run() async throws {
                try await reportingErrors {
                    let cli = try await CarShareCLI(common)
                    let input = NewBooking(vehicle: vehicle, rider: rider, start: try CarShareCLI.instant(start, field: "start", zone: cli.store.zone),
                                           end: try CarShareCLI.instant(end, field: "end", zone: cli.store.zone), purpose: purpose, driver: driver)
                    try CarShareCLI.printJSON(try await cli.store.createBooking(input, by: cli.identity, at: .now()))
                }
            }
        }
        struct List: AsyncParsableCommand {
            @OptionGroup var common: CommonOptions
            @Option var vehicle: Int64?
            @Option var from: String?
            @Option var to: String?
            func run() async throws {
                try await reportingErrors {
                    let cli = try await CarShareCLI(common)
                    let zone = cli.store.zone
                    try CarShareCLI.printJSON(try await cli.store.bookings(vehicle: vehicle, from: try CarShareCLI.date(from, field: "from").map { zone.startOfDay($0) },
                                                                           to: try CarShareCLI.date(to, field: "to").map { zone.startOfDay($0.advanced(by: 1)) },
                                                                           by: cli.identity))
                }
            }
        }
        struct Status: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Confirm (with --driver), cancel, turn down or record a no-show, with a reason.")
            @OptionGroup var common: CommonOptions
            @Argument var booking: Int64
            @Argument(help: "confirmed, requested, cancelled, late_cancellation, no_show or turned_down.") var status: String
            @Option var reason: String?
            @Option var driver: Int64?
            func run() async throws {
                try await reportingErrors {
                    guard let target = BookingStatus(rawValue: status) else {
                        throw HubError.badRequest(field: "status", "status must be one of \(BookingStatus.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    let cli = try await CarShareCLI(common)
                    let current = try await cli.store.booking(booking, by: cli.identity)
                    try CarShareCLI.printJSON(try await cli.store.changeStatus(booking, BookingStatusChange(version: current.version, status: target, reason: reason, driver: driver),
                                                                               by: cli.identity, at: .now()))
                }
            }
        }
    }

    struct Trips: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "trips", abstract: "The logbook: every use of the car.",
                                                        subcommands: [Log.self, List.self, Charging.self, Logbook.self, OdometerNote.self])
        struct Log: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Type in a trip from a paper log (once per --key).")
            @OptionGroup var common: CommonOptions
            @Option(help: "A key unique to this log line (e.g. the paper log's page and line).") var key: String
            @Option var booking: Int64?
            @Option var vehicle: Int64?
            @Option var driver: Int64?
            @Option(name: .customLong("unbooked-reason")) var unbookedReason: String?
            @Option(help: "Member ids, comma separated (default: the booking's rider).") var riders: String?
            @Option var start: String
            @Option var end: String
            @Option(name: .customLong("start-km")) var startKm: Int64
            @Option(name: .customLong("end-km")) var endKm: Int64
            @Option(name: .customLong("battery-start")) var batteryStart: Int
            @Option(name: .customLong("battery-end")) var batteryEnd: Int
            @Option var incidents: String?
            @Option(help: "ride (members, the default), association_run, charging_run or garage.") var kind: String?
            @Option(help: "What an association run, a charging run or the garage was for.") var purpose: String?
            @Option(help: "An association run's deliveries: how many households were served.") var households: Int?
            @Option(name: .customLong("dwellings"), help: "The dwellings delivered to, comma separated (optional).") var dwellings: String?
            @Option(name: .customLong("charged-kwh"), help: "A charging run's energy charged, in kWh (e.g. 18,5).") var chargedKWh: String?
            @Option(name: .customLong("charge-cost"), help: "What the charge cost, in euros (e.g. 4,20).") var chargeCost: String?
            @Option(name: .customLong("charge-method"), help: "How the charge was paid: cash, cheque or transfer.") var chargeMethod: String?
            func run() async throws {
                try await reportingErrors {
                    let cli = try await CarShareCLI(common)
                    let tripKind = try kind.map { text -> TripKind in
                        guard let kind = TripKind(rawValue: text) else {
                            throw HubError.badRequest(field: "kind", "--kind must be one of \(TripKind.allCases.map(\.rawValue).joined(separator: ", "))")
                        }
                        return kind
                    }
                    let charged = try chargedKWh.map { text -> Int64 in
                        guard let wh = DecimalText.scaled(text.replacingOccurrences(of: ",", with: "."), scale: 3, rounding: .reject) else {
                            throw HubError.badRequest(field: "charged_wh", "--charged-kwh \(text) is not a number of kWh (e.g. 18,5)")
                        }
                        return wh
                    }
                    let cost = try chargeCost.map { try CarShareCLI.cents($0, field: "charge_cost_cents") }
                    let method = try chargeMethod.map { text -> PaymentMethod in
                        guard let method = PaymentMethod(rawValue: text) else { throw HubError.badRequest(field: "charge_method", "--charge-method must be cash, cheque or transfer") }
                        return method
                    }
                    let served = dwellings.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
                    let riderIDs = try riders.map { text in
                        try text.split(separator: ",").map { part -> Int64 in
                            guard let id = Int64(part.trimmingCharacters(in: .whitespaces)) else { throw HubError.badRequest(field: "riders", "\(part) is not a member id") }
                            return id
                        }
                    }
                    let input = NewTrip(idempotencyKey: key, booking: booking, vehicle: vehicle, driver: driver, unbookedReason: unbookedReason, riders: riderIDs,
                                        start: try CarShareCLI.instant(start, field: "start", zone: cli.store.zone),
                                        end: try CarShareCLI.instant(end, field: "end", zone: cli.store.zone), startOdometerKm: startKm, endOdometerKm: endKm,
                                        batteryStartPct: batteryStart, batteryEndPct: batteryEnd, incidents: incidents, kind: tripKind, purpose: purpose,
                                        householdsServed: households, dwellingsServed: served, chargedWh: charged, chargeCostCents: cost, chargeMethod: method)
                    let result = try await cli.store.logTrip(input, by: cli.identity, at: .now())
                    if result.replayed { FileHandle.standardError.write(Data("already logged with this key: nothing was booked again\n".utf8)) }
                    try CarShareCLI.printJSON(result.trip)
                }
            }
        }
        struct Logbook: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "A car's logbook for a month: every line, the odometer gaps, the month's figures (json, printable html, or pdf through headless Chromium).")
            @OptionGroup var common: CommonOptions
            @Option var vehicle: Int64
            @Option(help: "The month, YYYY-MM.") var month: String
            @Option(help: "json (default), html or pdf.") var format: String = "json"
            @Option(help: "Where to write it (default: standard output; needed for pdf).") var out: String?
            func run() async throws {
                try await reportingErrors {
                    let cli = try await CarShareCLI(common)
                    let logbook = try await cli.store.logbook(vehicle: vehicle, month: month, by: cli.identity)
                    switch format {
                    case "json":
                        try CarShareCLI.write(try CarShareCLI.json(logbook), to: out)
                    case "html":
                        try CarShareCLI.write(LogbookSheet.html(logbook, zone: cli.store.zone), to: out)
                    case "pdf":
                        guard let out else { throw HubError.badRequest(field: "out", code: "missing_field", "--out FILE.pdf: where to write the PDF") }
                        try await PrintedPDF.render(html: LogbookSheet.html(logbook, zone: cli.store.zone), to: out)
                        FileHandle.standardError.write(Data("wrote \(out)\n".utf8))
                    default:
                        throw HubError.badRequest(field: "format", "--format must be json, html or pdf")
                    }
                }
            }
        }
        struct OdometerNote: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "odometer-note", abstract: "Explain kilometres nobody logged (a gap in the odometer).")
            @OptionGroup var common: CommonOptions
            @Option var vehicle: Int64
            @Option(name: .customLong("from-km")) var fromKm: Int64
            @Option(name: .customLong("to-km")) var toKm: Int64
            @Argument(help: "What the car did over those kilometres.") var note: String
            func run() async throws {
                try await reportingErrors {
                    let cli = try await CarShareCLI(common)
                    try CarShareCLI.printJSON(try await cli.store.addOdometerNote(vehicle: vehicle, NewOdometerNote(fromKm: fromKm, toKm: toKm, note: note),
                                                                                 by: cli.identity, at: .now()))
                }
            }
        }
        struct List: AsyncParsableCommand {
            @OptionGroup var common: CommonOptions
            @Option var from: String
            @Option var to: String
            @Option var vehicle: Int64?
            func run() async throws {
                try await reportingErrors {
                    let cli = try await CarShareCLI(common)
                    try CarShareCLI.printJSON(try await cli.store.tripList(from: try CarShareCLI.date(from, field: "from")!, to: try CarShareCLI.date(to, field: "to")!,
                                                                           vehicle: vehicle, by: cli.identity))
                }
            }
        }
        struct Charging: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Log a charge of a car (kWh and cost).")
            @OptionGroup var common: CommonOptions
            @Option var vehicle: Int64
            @Option var at: String
            @Option(name: .customLong("energy-wh")) var energyWh: Int64
            @Option(help: "Cost in euros (e.g. 4,35).") var cost: String = "0"
            @Option(help: "cash, cheque or transfer (needed when the cost is not zero).") var method: String?
            func run() async throws {
                try await reportingErrors {
                    let cli = try await CarShareCLI(common)
                    let paid = try method.map { text -> PaymentMethod in
                        guard let method = PaymentMethod(rawValue: text) else { throw HubError.badRequest(field: "method", "method must be cash, cheque or transfer") }
                        return method
                    }
                    let input = NewCharging(vehicle: vehicle, at: try CarShareCLI.instant(at, field: "at", zone: cli.store.zone), energyWh: WattHours(energyWh),
                                            costCents: try CarShareCLI.cents(cost, field: "cost"), method: paid)
                    try CarShareCLI.printJSON(try await cli.store.logCharging(input, by: cli.identity, at: .now()))
                }
            }
        }
    }

    static func method(_ text: String) throws -> PaymentMethod {
        guard let method = PaymentMethod(rawValue: text) else { throw HubError.badRequest(field: "method", "method must be cash, cheque or transfer") }
        return method
    }

    struct Payments: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "payments", abstract: "Money received from members.", subcommands: [Add.self])
        struct Add: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Record a payment (once per --key) and print its receipt.")
            @OptionGroup var common: CommonOptions
            @Option(help: "A key unique to this payment (e.g. the receipt book's stub).") var key: String
            @Argument var member: Int64
            @Argument(help: "Euros, e.g. 10 or 2,50.") var amount: String
            @Option(help: "cash, cheque or transfer.") var method: String
            @Option var on: String?
            @Option var note: String?
            func run() async throws {
                try await reportingErrors {
                    let cli = try await CarShareCLI(common)
                    let input = NewPayment(idempotencyKey: key, member: member, amountCents: try CarShareCLI.cents(amount, field: "amount"),
                                           method: try CarShareCommand.method(method), on: try CarShareCLI.date(on, field: "on"), note: note)
                    let result = try await cli.store.recordPayment(input, by: cli.identity, at: .now())
                    if result.replayed { FileHandle.standardError.write(Data("already recorded with this key: nothing was booked again\n".utf8)) }
                    print(result.payment.receiptText)
                }
            }
        }
    }

    struct Deposits: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "deposits", abstract: "Cash or cheques taken to the bank.", subcommands: [Add.self])
        struct Add: AsyncParsableCommand {
            @OptionGroup var common: CommonOptions
            @Argument(help: "Euros.") var amount: String
            @Option(help: "cash or cheques.") var kind: String = "cash"
            @Option var on: String?
            @Option var key: String?
            func run() async throws {
                try await reportingErrors {
                    guard let kind = NewDeposit.Kind(rawValue: kind) else { throw HubError.badRequest(field: "kind", "kind must be cash or cheques") }
                    let cli = try await CarShareCLI(common)
                    try CarShareCLI.printJSON(try await cli.store.recordDeposit(NewDeposit(idempotencyKey: key, kind: kind, amountCents: try CarShareCLI.cents(amount, field: "amount"),
                                                                                           on: try CarShareCLI.date(on, field: "on")), by: cli.identity, at: .now()))
                }
            }
        }
    }

    struct Refunds: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "refunds", abstract: "Prepaid credit given back.", subcommands: [Add.self])
        struct Add: AsyncParsableCommand {
            @OptionGroup var common: CommonOptions
            @Argument var member: Int64
            @Argument(help: "Euros.") var amount: String
            @Option(help: "cash or transfer.") var method: String
            @Option var reason: String?
            @Option var on: String?
            @Option var key: String?
            func run() async throws {
                try await reportingErrors {
                    let cli = try await CarShareCLI(common)
                    let input = NewRefund(idempotencyKey: key, member: member, amountCents: try CarShareCLI.cents(amount, field: "amount"),
                                          method: try CarShareCommand.method(method), on: try CarShareCLI.date(on, field: "on"), reason: reason)
                    try CarShareCLI.printJSON(try await cli.store.recordRefund(input, by: cli.identity, at: .now()))
                }
            }
        }
    }

    struct Corrections: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "corrections", abstract: "Correct a posted entry (reversal plus new entry).", subcommands: [Add.self])
        struct Add: AsyncParsableCommand {
            @OptionGroup var common: CommonOptions
            @Argument(help: "The entry number to correct.") var entry: Int64
            @Option var reason: String
            @Option(name: .customLong("line"), help: "ACCOUNT[/MEMBER]=EUROS of the right entry, debit positive (repeat). None: only reverse.") var lines: [String] = []
            @Option var on: String?
            func run() async throws {
                try await reportingErrors {
                    let cli = try await CarShareCLI(common)
                    let parsed = try lines.enumerated().map { index, text -> LineInput in
                        let parts = text.split(separator: "=", maxSplits: 1)
                        guard parts.count == 2 else { throw HubError.badRequest(field: "lines[\(index)]", "write a line as ACCOUNT[/MEMBER]=EUROS, e.g. 411/12=-2") }
                        let target = parts[0].split(separator: "/")
                        let member = try target.count > 1 ? Int64(target[1]) ?? { throw HubError.badRequest(field: "lines[\(index)].member", "\(target[1]) is not a member id") }() : nil
                        return LineInput(account: String(target[0]), member: member, amountCents: try CarShareCLI.cents(String(parts[1]), field: "lines[\(index)].amount"))
                    }
                    let input = NewCorrection(entry: entry, reason: reason, on: try CarShareCLI.date(on, field: "on"), lines: parsed.isEmpty ? nil : parsed)
                    try CarShareCLI.printJSON(try await cli.store.correct(input, by: cli.identity, at: .now()))
                }
            }
        }
    }

    struct Reports: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "reports", abstract: "Balances, statements, cash book, income statement, trips, préfet report.",
                                                        subcommands: [Balances.self, Statement.self, CashBook.self, Income.self, TripsReport.self, Prefect.self, Activity.self])
        struct Activity: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "The association's activity: km by kind of use, deliveries and households served, charging.")
            @OptionGroup var common: CommonOptions
            @Option var from: String
            @Option var to: String
            @Flag(help: "The report in French, as the association sends it.") var text = false
            func run() async throws {
                try await reportingErrors {
                    let cli = try await CarShareCLI(common)
                    let report = try await cli.store.activityReport(from: try CarShareCLI.date(from, field: "from")!, to: try CarShareCLI.date(to, field: "to")!, by: cli.identity)
                    if text { print(report.frenchText) } else { try CarShareCLI.printJSON(report) }
                }
            }
        }
        struct Balances: AsyncParsableCommand {
            @OptionGroup var common: CommonOptions
            func run() async throws {
                try await reportingErrors {
                    let cli = try await CarShareCLI(common)
                    try CarShareCLI.printJSON(try await cli.store.balances(by: cli.identity))
                }
            }
        }
        struct Statement: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "A member's statement, printable, in French.")
            @OptionGroup var common: CommonOptions
            @Argument var member: Int64
            @Flag var json = false
            func run() async throws {
                try await reportingErrors {
                    let cli = try await CarShareCLI(common)
                    let statement = try await cli.store.statement(member: member, by: cli.identity)
                    if json { try CarShareCLI.printJSON(statement) } else { print(statement.text) }
                }
            }
        }
        struct CashBook: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "cash-book")
            @OptionGroup var common: CommonOptions
            @Option var from: String
            @Option var to: String
            func run() async throws {
                try await reportingErrors {
                    let cli = try await CarShareCLI(common)
                    try CarShareCLI.printJSON(try await cli.store.cashBook(from: try CarShareCLI.date(from, field: "from")!, to: try CarShareCLI.date(to, field: "to")!, by: cli.identity))
                }
            }
        }
        struct Income: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "income-statement")
            @OptionGroup var common: CommonOptions
            @Option(help: "YYYY-MM") var month: String
            func run() async throws {
                try await reportingErrors {
                    let cli = try await CarShareCLI(common)
                    try CarShareCLI.printJSON(try await cli.store.incomeStatement(month: month, by: cli.identity))
                }
            }
        }
        struct TripsReport: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "trips")
            @OptionGroup var common: CommonOptions
            @Option var from: String
            @Option var to: String
            func run() async throws {
                try await reportingErrors {
                    let cli = try await CarShareCLI(common)
                    try CarShareCLI.printJSON(try await cli.store.tripList(from: try CarShareCLI.date(from, field: "from")!, to: try CarShareCLI.date(to, field: "to")!, by: cli.identity))
                }
            }
        }
        struct Prefect: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "prefect", abstract: "The annual social-transport report for the préfet.")
            @OptionGroup var common: CommonOptions
            @Option var year: Int
            func run() async throws {
                try await reportingErrors {
                    let cli = try await CarShareCLI(common)
                    print(try await cli.store.prefectReport(year: year, by: cli.identity).frenchText)
                }
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "export", abstract: "The ledger as an hledger journal (check it with: hledger -f FILE check -s).")
        @OptionGroup var common: CommonOptions
        @Option(help: "Write to this file instead of standard output.") var output: String?
        func run() async throws {
            try await reportingErrors {
                let cli = try await CarShareCLI(common)
                let journal = try await cli.store.journal(by: cli.identity)
                if let output {
                    guard FileManager.default.createFile(atPath: output, contents: Data(journal.utf8)) else {
                        throw HubError.badRequest(field: "output", "cannot write \(output)")
                    }
                } else {
                    print(journal, terminator: "")
                }
            }
        }
    }
}

struct LedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ledger", abstract: "The car-share ledger's integrity.", subcommands: [Verify.self, CloseMonth.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: """
            Check the hash chain and the gapless numbering of every posted entry, and the chain against each closed month's anchor kept outside \
            the database; exit 65 on tampering.
            """)
        @OptionGroup var common: CommonOptions
        func run() async throws {
            try await reportingErrors {
                let cli = try await CarShareCLI(common)
                let report = try await cli.store.verify(by: cli.identity)
                guard report.ok else {
                    throw HubError(.unprocessable, code: "hash_chain_broken", field: report.brokenEntry.map { "entry \($0)" } ?? report.brokenMonth.map { "month \($0)" },
                                   message: "the ledger fails verification: \(report.problem ?? "unknown problem")")
                }
                print("ledger ok: \(report.entries) entries, last hash \(report.lastHash), \(report.anchoredMonths ?? 0) closed months match their anchors")
            }
        }
    }

    struct CloseMonth: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "close-month", abstract: """
            Close a month: no entry may be dated in it afterwards; the chain's head at the close is kept in the anchors file outside the database.
            """)
        @OptionGroup var common: CommonOptions
        @Argument(help: "YYYY-MM") var month: String
        func run() async throws {
            try await reportingErrors {
                let cli = try await CarShareCLI(common)
                let closed = try await cli.store.closeMonth(month, by: cli.identity, at: .now())
                print("closed months: \(closed.joined(separator: ", "))")
            }
        }
    }
}

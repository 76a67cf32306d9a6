import ArgumentParser
import EnergyCore
import EnergyHub
import Foundation
import HubCore
import Shared
import HubApp
import HubTools

/// `community-hub energy ...`: savings reports and their set-up.
struct EnergyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "energy", abstract: "Per-household savings: reports, allocation keys, tariffs, coefficients, exports.",
        subcommands: [Report.self, Update.self, SetKey.self, SetTariff.self, ImportCoefficients.self, MarkExported.self, Purge.self])

    /// Opens the database with the energy settings checked.
    static func open(_ common: CommonOptions) throws -> (HubDatabase, EnergyConfiguration) {
        let settings = try common.settings()
        // Every setting checked once, with the hub's one time zone, as `serve` does.
        let configuration = try settings.configuration()
        return (try HubSchema.open(settings), configuration.energy)
    }

    /// The registry store, for the commands that change the savings set-up.
    static func registry(_ common: CommonOptions) async throws -> any RegistryStore {
        let settings = try common.settings()
        let configuration = try settings.configuration()
        if let postgres = try await common.runningPostgres(settings) {
            return PostgresRegistryStore(database: postgres, configuration: configuration.energy)
        }
        return SQLiteRegistryStore(database: try HubSchema.open(settings), configuration: configuration.energy)
    }

    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the savings figures of a dwelling, a building or an estate (every estate when none is given), as the API returns them (`energy update` recomputes them first; the hub does it every few minutes).")

        @OptionGroup var common: CommonOptions
        @Option(help: "First local day, YYYY-MM-DD.") var from: String
        @Option(help: "Last local day (included), YYYY-MM-DD.") var to: String
        @Option(help: "A dwelling.") var dwelling: String?
        @Option(help: "A building.") var building: String?
        @Option(help: "An estate.") var estate: String?

        func run() async throws {
            try await reportingErrors {
                guard let from = LocalDate(parsing: from) else { throw HubError.badRequest(field: "from", code: "invalid_date", "--from \(from) is not a date YYYY-MM-DD") }
                guard let to = LocalDate(parsing: to) else { throw HubError.badRequest(field: "to", code: "invalid_date", "--to \(to) is not a date YYYY-MM-DD") }
                try EnergyReports.checkPeriod(from: from, to: to)
                guard [dwelling, building, estate].compactMap({ $0 }).count <= 1 else {
                    throw HubError.badRequest(field: "dwelling", "give at most one of --dwelling, --building, --estate")
                }
                let now = Instant.now()
                let (dwelling, building, estate) = (dwelling, building, estate)
                // The same store and the same access policy as the API, so both print the same figures.
                try await common.withStores { stores, _ in
                let reports = try stores.energy.get().figures
                let caller = Identity.commandLine
                if let dwelling {
                    print(EnergyTables.dwelling(try await reports.dwelling(dwelling, from: from, to: to, now: now, by: caller)))
                } else if let building {
                    print(EnergyTables.building(try await reports.building(building, from: from, to: to, now: now, by: caller)))
                } else {
                    var estates = estate.map { [$0] } ?? []
                    if estate == nil { estates = try await reports.estates(by: caller) }
                    var tables: [String] = []
                    for estate in estates { tables.append(EnergyTables.estate(try await reports.estate(estate, from: from, to: to, now: now, by: caller))) }
                    print(tables.joined(separator: "\n\n"))
                }
                }
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "update", abstract: "Bring every savings figure up to date with the stored readings now.")

        @OptionGroup var common: CommonOptions

        func run() async throws {
            try await reportingErrors {
                let settings = try common.settings()
                let configuration = try settings.configuration().energy
                let report: UpkeepReport
                if let location = try settings.database.postgres() {
                    // Beside running hubs: each step waits for the one a hub may be running.
                    report = try await BlockingWork.run { try PostgresSavingsUpkeep(location: location, configuration: configuration).bringUpToDate(now: Instant.now()) }
                } else {
                    report = try SavingsUpkeep(database: try HubSchema.open(settings), configuration: configuration).bringUpToDate(now: Instant.now())
                }
                print("\(report.readingChanges) devices with new readings, \(report.deviceSlotsChanged) device slots changed, "
                      + "\(report.buildingSlotsRecomputed) building slots and \(report.daysRecomputed) days recomputed, \(report.monthsRevised) exported months revised")
                for problem in Set(report.problems).sorted() { print("problem: \(problem)") }
            }
        }
    }

    struct SetKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "key", abstract: "Set a building's allocation key from a date on.")

        @OptionGroup var common: CommonOptions
        @Option(help: "The building.") var building: String
        @Option(help: "pro_rata, static, static_redistributed or per_slot.") var key: String
        @Option(help: "First local day it applies, YYYY-MM-DD.") var since: String

        func run() async throws {
            try await reportingErrors {
                guard let kind = AllocationKeyKind(rawValue: key) else {
                    throw HubError.badRequest(field: "key", "key must be one of \(AllocationKeyKind.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                guard let date = LocalDate(parsing: since) else { throw HubError.badRequest(field: "since", code: "invalid_date", "--since \(since) is not a date YYYY-MM-DD") }
                try await EnergyCommand.registry(common).setAllocationKey(building: building, key: kind, since: date, by: .commandLine)
                print("building \(building): key \(kind.rawValue) from \(date)")
            }
        }
    }

    struct SetTariff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "tariff", abstract: "Set a dwelling's tariff plan from a date on, e.g. \"edf-bleu-hphc 22:26-06:26\".")

        @OptionGroup var common: CommonOptions
        @Option(help: "The dwelling.") var dwelling: String
        @Option(help: "First local day it applies, YYYY-MM-DD.") var since: String
        @Argument(help: "The plan: edf-bleu-base, or edf-bleu-hphc followed by its off-peak windows HH:MM-HH:MM (local time).") var plan: String

        func run() async throws {
            try await reportingErrors {
                guard let date = LocalDate(parsing: since) else { throw HubError.badRequest(field: "since", code: "invalid_date", "--since \(since) is not a date YYYY-MM-DD") }
                try await EnergyCommand.registry(common).setTariff(dwelling: dwelling, cell: plan, since: date, by: .commandLine)
                print("dwelling \(dwelling): \(plan) from \(date)")
            }
        }
    }

    struct ImportCoefficients: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "coefficients",
                                                        abstract: "Import per-slot coefficients (CSV: building;dwelling;slot_start;coefficient). All or nothing.")

        @OptionGroup var common: CommonOptions
        @Argument(help: "The CSV file.") var file: String

        func run() async throws {
            try await reportingErrors {
                guard let data = FileManager.default.contents(atPath: file) else { throw HubError.badRequest(field: "file", code: "unreadable", "cannot read \(file)") }
                let count = try await EnergyCommand.registry(common).importCoefficients(csv: data, by: .commandLine)
                print("\(count) coefficients imported")
            }
        }
    }

    struct MarkExported: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "mark-exported",
                                                        abstract: "Record that a month's statements were exported; later changes flag the month as revised.")

        @OptionGroup var common: CommonOptions
        @Option(help: "The month, YYYY-MM.") var month: String
        @Option(help: "One building (default: every building).") var building: String?

        func run() async throws {
            try await reportingErrors {
                try await EnergyCommand.registry(common).recordExport(month: month, buildings: building.map { [$0] } ?? [], by: .commandLine, at: Instant.now())
                print("\(month) recorded as exported")
            }
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete raw readings, slot and daily figures past their retention now (the hub also does it daily).")

        @OptionGroup var common: CommonOptions

        func run() async throws {
            try await reportingErrors {
                let settings = try common.settings()
                let report: SavingsRetention.Report
                if let location = try settings.database.postgres() {
                    let configuration = try settings.configuration().energy
                    report = try await HubPostgres(location, maximumConnections: 2).withRunning { db in
                        try await PostgresRetention(database: db, configuration: configuration).purge(now: Instant.now())
                    }
                } else {
                    let (database, configuration) = try EnergyCommand.open(common)
                    report = try await SavingsRetention(database: database, configuration: configuration).purge(now: Instant.now())
                }
                print("deleted \(report.readings) readings, \(report.quarantine) quarantined messages, \(report.slots) slot rows, \(report.days) daily rows")
            }
        }
    }
}

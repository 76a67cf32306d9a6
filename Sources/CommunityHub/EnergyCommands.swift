import ArgumentParser
import EnergyCore
import EnergyHub
import Foundation
import HubCore
import Shared

/// `community-hub energy ...`: savings reports and their set-up.
struct EnergyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "energy", abstract: "Per-household savings: reports, allocation keys, tariffs, coefficients, exports.",
        subcommands: [Report.self, Update.self, SetKey.self, SetTariff.self, ImportCoefficients.self, MarkExported.self, Purge.self])

    /// Opens the database with the energy settings checked.
    static func open(_ common: CommonOptions) throws -> (HubDatabase, EnergyConfiguration) {
        let settings = try common.settings()
        let configuration = try settings.energy.validated()
        return (try HubSchema.open(settings), configuration)
    }

    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the savings figures of a dwelling, a building or an estate (every estate when none is given), as the API returns them.")

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
                let (database, configuration) = try EnergyCommand.open(common)
                let now = Instant.now()
                try SavingsUpkeep(database: database, configuration: configuration).bringUpToDate(now: now)
                let reports = EnergyReports(database: database, configuration: configuration)
                if let dwelling {
                    print(EnergyTables.dwelling(try await reports.dwelling(dwelling, from: from, to: to, now: now)))
                } else if let building {
                    print(EnergyTables.building(try await reports.building(building, from: from, to: to, now: now)))
                } else {
                    var estates = estate.map { [$0] } ?? []
                    if estate == nil { estates = try await reports.estates() }
                    var tables: [String] = []
                    for estate in estates { tables.append(EnergyTables.estate(try await reports.estate(estate, from: from, to: to, now: now))) }
                    print(tables.joined(separator: "\n\n"))
                }
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "update", abstract: "Bring every savings figure up to date with the stored readings now.")

        @OptionGroup var common: CommonOptions

        func run() async throws {
            try await reportingErrors {
                let (database, configuration) = try EnergyCommand.open(common)
                let report = try SavingsUpkeep(database: database, configuration: configuration).bringUpToDate(now: Instant.now())
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
                let (database, configuration) = try EnergyCommand.open(common)
                try EnergyAdmin(database: database, configuration: configuration).setKey(building: building, key: kind, since: date)
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
                let (database, configuration) = try EnergyCommand.open(common)
                try EnergyAdmin(database: database, configuration: configuration).setTariff(dwelling: dwelling, cell: plan, since: date)
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
                let (database, configuration) = try EnergyCommand.open(common)
                let count = try EnergyAdmin(database: database, configuration: configuration).importCoefficients(data)
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
                let (database, configuration) = try EnergyCommand.open(common)
                try EnergyAdmin(database: database, configuration: configuration).recordExport(month: month, buildings: building.map { [$0] } ?? [], at: Instant.now())
                print("\(month) recorded as exported")
            }
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete raw readings, slot and daily figures past their retention now (the hub also does it daily).")

        @OptionGroup var common: CommonOptions

        func run() async throws {
            try await reportingErrors {
                let (database, configuration) = try EnergyCommand.open(common)
                let report = try await SavingsRetention(database: database, configuration: configuration).purge(now: Instant.now())
                print("deleted \(report.readings) readings, \(report.quarantine) quarantined messages, \(report.slots) slot rows, \(report.days) daily rows")
            }
        }
    }
}

extension BenchCommand {

    struct Savings: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Allocation of a month for 1,000/10,000/40,000 dwellings against a plain summing loop; a month's figures from the database with 10- vs 1-minute readings.")

        @Option(help: "Dwelling counts for the allocation benchmark, comma-separated.") var counts = "1000,10000,40000"
        @Option(name: .customLong("db-dwellings"), help: "Dwellings in the database benchmark.") var databaseDwellings = 10_000
        @Option(help: "Days in the month.") var days = 31
        @Option(help: "Runs per figure (the best is kept).") var repetitions = 3
        @Option(help: "Where the benchmark databases are written (deleted afterwards).") var directory = FileManager.default.temporaryDirectory.path
        @Flag(name: .customLong("skip-database"), help: "Only the allocation benchmark.") var skipDatabase = false

        func run() async throws {
            try await reportingErrors {
                var options = SavingsBenchmark.Options(directory: URL(fileURLWithPath: directory))
                options.allocationCounts = try counts.split(separator: ",").map { text in
                    guard let value = Int(text.trimmingCharacters(in: .whitespaces)), value > 0 else { throw HubError.badRequest(field: "counts", "\(text) is not a positive count") }
                    return value
                }
                guard days >= 1, days <= 31 else { throw HubError.badRequest(field: "days", "days must be between 1 and 31") }
                options.databaseDwellings = databaseDwellings
                options.days = days
                options.repetitions = repetitions
                options.skipDatabase = skipDatabase
                try await SavingsBenchmark.run(options) { print($0) }
            }
        }
    }

    struct Reports: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The estate and landlord energy reports on a large synthetic registry (10 estates of 4,000 dwellings), against the estate's dwelling scan.")

        @Option(help: "Estates in the synthetic registry.") var estates = 10
        @Option(name: .customLong("dwellings-per-estate"), help: "Dwellings per estate.") var dwellingsPerEstate = 4_000
        @Option(help: "Runs per figure (the best is kept).") var repetitions = 5
        @Option(help: "Where the benchmark database is written (deleted afterwards).") var directory = FileManager.default.temporaryDirectory.path

        func run() async throws {
            try await reportingErrors {
                guard (1...100).contains(estates) else { throw HubError.badRequest(field: "estates", "estates must be from 1 to 100") }
                guard (40...100_000).contains(dwellingsPerEstate) else { throw HubError.badRequest(field: "dwellings-per-estate", "dwellings-per-estate must be from 40 to 100000") }
                guard (1...100).contains(repetitions) else { throw HubError.badRequest(field: "repetitions", "repetitions must be from 1 to 100") }
                var options = ReportsBenchmark.Options(directory: URL(fileURLWithPath: directory))
                options.estates = estates
                options.dwellingsPerEstate = dwellingsPerEstate
                options.repetitions = repetitions
                try await ReportsBenchmark.run(options) { print($0) }
            }
        }
    }
}

import ArgumentParser
import EnergyCore
import EnergyHub
import Foundation
import HubCore
import Shared
import HubApp

extension BenchCommand {

    struct Savings: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Allocation of a month for 1,000/10,000/40,000 dwellings against a plain summing loop; a month's figures from the database with 10- vs 1-minute readings.")

        @Option(help: "Dwelling counts for the allocation benchmark, comma-separated.") var counts = "1000,10000,40000"
        @Option(name: .customLong("db-dwellings"), help: "Dwellings in the database benchmark.") var databaseDwellings = 10_000
        @Option(name: .customLong("db-minutes"), help: "Minutes between readings in the database benchmark, comma-separated (10,1 compares them; 10 alone is much shorter).")
        var databaseMinutes = "10,1"
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
                options.databaseMinutes = try databaseMinutes.split(separator: ",").map { text in
                    guard let value = Int(text.trimmingCharacters(in: .whitespaces)), (1...60).contains(value) else {
                        throw HubError.badRequest(field: "db-minutes", "\(text) is not a number of minutes between 1 and 60")
                    }
                    return value
                }
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

    struct Engines: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A month's energy figures for 10,000 and 40,000 dwellings read from PostgreSQL against SQLite (the baseline), in the same run.")

        @Option(name: .customLong("database-url"), help: "A PostgreSQL server where the bench may create its own database (dropped afterwards): postgres://USER@HOST:PORT/DATABASE (password: HUB_DATABASE_PASSWORD).")
        var databaseURL: String
        @Option(help: "Dwelling counts, comma-separated.") var dwellings = "10000,40000"
        @Option(name: .customLong("dwellings-per-estate"), help: "Dwellings per estate.") var dwellingsPerEstate = 2_000
        @Option(help: "Runs per figure (the best is kept).") var repetitions = 5
        @Flag(name: .customLong("dwelling-slots"), help: "Also write every dwelling's slot figures (not read by the reports; a larger database).") var dwellingSlots = false
        @Flag(help: "Also time the upkeep computing one building's month on both engines.") var upkeep = false
        @Option(help: "Where the SQLite database is written (deleted afterwards).") var directory = FileManager.default.temporaryDirectory.path

        func run() async throws {
            try await reportingErrors {
                var server = try PostgresLocation(url: databaseURL)
                if server.password == nil, let password = ProcessInfo.processInfo.environment["HUB_DATABASE_PASSWORD"] { server.password = password }
                var options = EnginesBenchmark.Options(directory: URL(fileURLWithPath: directory), server: server)
                options.dwellings = try dwellings.split(separator: ",").map { text in
                    guard let value = Int(text.trimmingCharacters(in: .whitespaces)), (40...1_000_000).contains(value) else {
                        throw HubError.badRequest(field: "dwellings", "\(text) is not a count from 40 to 1000000")
                    }
                    return value
                }
                guard (40...100_000).contains(dwellingsPerEstate) else { throw HubError.badRequest(field: "dwellings-per-estate", "dwellings-per-estate must be from 40 to 100000") }
                guard (1...100).contains(repetitions) else { throw HubError.badRequest(field: "repetitions", "repetitions must be from 1 to 100") }
                options.dwellingsPerEstate = dwellingsPerEstate
                options.repetitions = repetitions
                options.dwellingSlots = dwellingSlots
                options.upkeep = upkeep
                try await EnginesBenchmark.run(options) { print($0) }
            }
        }
    }
}

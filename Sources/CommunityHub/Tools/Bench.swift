import ArgumentParser
import HubApp
import EnergyHub
import EnergyCore
import HubCore
import Shared

/// `community-hub bench ...`: benchmarks that print their figures (never timed tests).
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "Benchmarks that print their figures (use a release build).",
                                                    subcommands: [IngestBench.self, ProcessesBench.self, Savings.self, Reports.self, Engines.self, CarShareBench.self, Statements.self])
}

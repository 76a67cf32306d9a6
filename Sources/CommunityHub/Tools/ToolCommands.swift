import ArgumentParser

/// The tools' commands as the command line lists them: the demo and the benchmarks.
package enum ToolCommands {
    package static let demo: any ParsableCommand.Type = Demo.self
    package static let bench: any ParsableCommand.Type = BenchCommand.self
}

import EnergyCore
import EnergyHub
import Foundation
import HubCore
import Shared
import HubTools

/// The built `community-hub` executable run as a child process (`serve`, `demo`), so tests can kill it
/// with SIGKILL or SIGTERM like an operator or the kernel would.
public final class HubChild: @unchecked Sendable {
    public let process = Process()
    public let logURL: URL
    /// The HTTP port `serve` was given (nil for other commands).
    public private(set) var httpPort: Int?

    /// The executable next to the test bundle (`swift build` builds it with the tests).
    public static var executable: URL {
        let nextToTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("community-hub")
        if FileManager.default.isExecutableFile(atPath: nextToTests.path) { return nextToTests }
        return TestSupport.packageRoot.appendingPathComponent(".build/debug/community-hub")
    }

    /// `community-hub serve` on the given database and broker, on a free HTTP port.
    public convenience init(database: String, mqttPort: Int, directory: URL, name: String, extraArguments: [String] = [],
                            environment: [String: String] = [:], logThroughPipe: Bool = false) throws {
        let httpPort = try BrokerProcess.freeLoopbackPort()
        try self.init(arguments: ["serve", "--db", database, "--mqtt-port", "\(mqttPort)", "--http-port", "\(httpPort)"] + extraArguments,
                      directory: directory, name: name, environment: environment, logThroughPipe: logThroughPipe)
        self.httpPort = httpPort
    }

    /// `community-hub` with these arguments; standard output and error go to `<name>.log` in `directory`
    /// (through a pipe this process copies to the file when `logThroughPipe`: then the child
    /// writes no regular file of its own, so a file size limit put on it spares its log).
    public init(arguments: [String], directory: URL, name: String, environment extra: [String: String] = [:], logThroughPipe: Bool = false) throws {
        logURL = directory.appendingPathComponent("\(name).log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        process.executableURL = HubChild.executable
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["LOG_LEVEL"] = "info"
        environment.merge(extra) { _, new in new }
        process.environment = environment
        let log = try FileHandle(forWritingTo: logURL)
        if logThroughPipe {
            let pipe = Pipe()
            pipe.fileHandleForReading.readabilityHandler = { handle in
                let data = handle.availableData
                if data.isEmpty { handle.readabilityHandler = nil } else { log.write(data) }
            }
            process.standardOutput = pipe
            process.standardError = pipe
        } else {
            process.standardOutput = log
            process.standardError = log
        }
        // An empty signal mask, so the child honours SIGTERM (Swift's threads block it).
        try BrokerProcess.runWithDefaultSignalMask(process)
    }

    public var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    public func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// Waits for the child to exit; returns its status, or nil on timeout (then kills it).
    public func waitForExit(timeout: TimeInterval = 20) async throws -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            return nil
        }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

extension TestSupport {
    /// Runs a program to its end on a thread of its own (never one of Swift's pool): its exit
    /// status and its output and errors together; `input` is written to its standard input.
    public static func run(_ path: String, _ arguments: [String], input: String? = nil,
                           environment: [String: String] = [:]) async throws -> (status: Int32, output: String) {
        try await BlockingWork.run {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = arguments
            if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            let stdin = Pipe()
            process.standardInput = stdin
            try process.run()
            if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
            try stdin.fileHandleForWriting.close()
            let output = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: output, as: UTF8.self))
        }
    }
}

/// `community-hub demo` running as a child on a free port, once it serves: its log, its port and
/// the bearer token it printed for each demo login (by role).
public struct RunningDemo {
    public let child: HubChild
    public let httpPort: Int
    public let tokens: [String: String]

    public static func start(name: String) async throws -> RunningDemo {
        let directory = try TestSupport.temporaryDirectory(name)
        let httpPort = try BrokerProcess.freeLoopbackPort()
        let child = try HubChild(arguments: ["demo", "--db", directory.appendingPathComponent("demo.sqlite").path, "--http-port", "\(httpPort)",
                                             "--weeks", "1", "--step-minutes", "30"], directory: directory, name: name)
        try await waitUntil(timeout: .seconds(180), "the demo serves") { child.log.contains("is running") || !child.process.isRunning }
        var tokens: [String: String] = [:]
        for line in child.log.split(separator: "\n") {
            let words = line.split(separator: " ")
            if words.count == 3, words[1] == "demo-\(words[0])", words[2].hasPrefix("chub_") { tokens[String(words[0])] = String(words[2]) }
        }
        return RunningDemo(child: child, httpPort: httpPort, tokens: tokens)
    }
}

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
                            environment: [String: String] = [:]) throws {
        let httpPort = try BrokerProcess.freeLoopbackPort()
        try self.init(arguments: ["serve", "--db", database, "--mqtt-port", "\(mqttPort)", "--http-port", "\(httpPort)"] + extraArguments,
                      directory: directory, name: name, environment: environment)
        self.httpPort = httpPort
    }

    /// `community-hub` with these arguments; standard output and error go to `<name>.log` in `directory`.
    public init(arguments: [String], directory: URL, name: String, environment extra: [String: String] = [:]) throws {
        logURL = directory.appendingPathComponent("\(name).log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        process.executableURL = HubChild.executable
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["LOG_LEVEL"] = "info"
        environment.merge(extra) { _, new in new }
        process.environment = environment
        let log = try FileHandle(forWritingTo: logURL)
        process.standardOutput = log
        process.standardError = log
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

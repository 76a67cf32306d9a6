import ArgumentParser
import Foundation
import HubCore
import Logging

/// Runs a command body, turning a user's mistake into a message and a non-zero exit status.
package func reportingErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as HubError {
        FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
        throw ExitCode(error.exitCode)
    }
}

extension Identity {
    /// Who a command acts as: the landlord's staff running it on the server, under their login
    /// name, which is recorded as the author of what it changes. Commands ask `AccessPolicy`
    /// through the stores like every route does.
    package static var commandLine: Identity {
        Identity(name: "cli:" + (ProcessInfo.processInfo.environment["USER"] ?? "staff"), role: .staff)
    }
}

package func bootstrapLogging(defaultLevel: Logger.Level = .info) {
    let level = ProcessInfo.processInfo.environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? defaultLevel
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
}

import Foundation
import HubTestSupport
import Testing

/// Keeps blocking database calls off Swift's cooperative pool (issue 16: two threads blocked in a
/// synchronous GRDB read froze the whole hub). The compiler refuses `readBlocking`/`writeBlocking`
/// in async code (`noasync`), `BlockingAccessGuard` stops on one reached through synchronous code
/// while serving, and this lint keeps every access going through those methods.
@Suite struct DatabaseAccessLintTests {
    /// Every Swift file under `Sources/`, with its path relative to the package.
    static func sources() throws -> [(path: String, lines: [Substring])] {
        let root = TestSupport.packageRoot.appendingPathComponent("Sources")
        guard let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else { return [] }
        var files: [(String, [Substring])] = []
        for case let url as URL in enumerator where url.pathExtension == "swift" {
            let text = try String(contentsOf: url, encoding: .utf8)
            files.append((url.path.replacingOccurrences(of: TestSupport.packageRoot.path + "/", with: ""), text.split(separator: "\n", omittingEmptySubsequences: false)))
        }
        return files
    }

    /// Lines outside `Database.swift` that reach GRDB's pool directly.
    static func poolOffenders(_ files: [(path: String, lines: [Substring])]) -> [String] {
        var offenders: [String] = []
        for (path, lines) in files where path != "Sources/Shared/Database.swift" {
            for (number, line) in lines.enumerated() where line.contains(".pool.") || line.contains(".pool ") || line.hasSuffix(".pool") {
                offenders.append("\(path):\(number + 1): \(line.trimmingCharacters(in: .whitespaces))")
            }
        }
        return offenders
    }

    @Test func onlyTheDatabaseFileTouchesGRDBsPool() throws {
        let files = try Self.sources()
        #expect(files.count > 20, "the sources were found")
        let offenders = Self.poolOffenders(files)
        #expect(offenders.isEmpty, "use HubDatabase.read/write (async) or readBlocking/writeBlocking (off the pool):\n\(offenders.joined(separator: "\n"))")
    }

    /// A detached task loses the task-local that marks server work, so a blocking call inside it
    /// would go unnoticed; blocking work goes to `BlockingWork.run` (a thread of its own) instead.
    @Test func noDetachedTasksInTheServer() throws {
        var offenders: [String] = []
        for (path, lines) in try Self.sources() {
            for (number, line) in lines.enumerated() where line.contains("Task.detached") {
                offenders.append("\(path):\(number + 1)")
            }
        }
        #expect(offenders.isEmpty, "\(offenders)")
    }

    @Test func theLintCatchesADirectPoolCall() {
        let file: (path: String, lines: [Substring]) = ("Sources/EnergyHub/Example.swift", ["func f() async throws {", "    let rows = try database.pool.read { db in 1 }", "}"])
        let allowed: (path: String, lines: [Substring]) = ("Sources/Shared/Database.swift", ["    try pool.read(body)", "    try await self.pool.read(body)"])
        #expect(Self.poolOffenders([file, allowed]) == ["Sources/EnergyHub/Example.swift:2: let rows = try database.pool.read { db in 1 }"])
    }
}

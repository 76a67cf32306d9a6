import Foundation
import Logging
import PostgresNIO
import Shared

/// A real PostgreSQL 15 server for the tests that run against the server database.
///
/// `.ci/run` starts one and exports its URL as `HUB_TEST_POSTGRES_URL`; without it, the first test
/// that asks starts one for this test process with `Tests/Postgres/start-server.sh` (a temporary
/// data directory, a free loopback port, as the `postgres` user under root) and stops it at exit.
/// Each test gets a database of its own (`database()`), so tests run side by side.
public enum PostgresTestServer {
    /// The server's URL (its `postgres` database), starting the server if needed.
    public static func location() async throws -> PostgresLocation {
        try await BlockingWork.run { try started.get() }
    }

    /// A new, empty database on the test server, with the hub's migrations applied when `migrations` is given.
    public static func database(_ label: String = "hub", migrations: [PostgresMigration] = []) async throws -> PostgresLocation {
        let server = try await location()
        let name = "\(label.lowercased().filter { $0.isLetter || $0.isNumber })_\(UUID().uuidString.prefix(12).lowercased().filter { $0.isLetter || $0.isNumber })"
        let admin = HubPostgres(server, maximumConnections: 1, logger: quiet)
        try await admin.withRunning { admin in
            _ = try await admin.client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \"\(name)\""))
        }
        let location = server.with(database: name)
        if !migrations.isEmpty {
            let database = HubPostgres(location, maximumConnections: 1, logger: quiet)
            _ = try await database.withRunning { try await $0.migrate(migrations) }
        }
        return location
    }

    /// The URL of `database()` as a hub setting (`database.url`).
    public static func url(_ location: PostgresLocation) -> String {
        "postgres://\(location.user)@\(location.host):\(location.port)/\(location.database)?sslmode=disable"
    }

    static let quiet = Logger(label: "test.postgres", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Started once per test process (thread-safe lazy initialisation of a static).
    static let started: Result<PostgresLocation, any Error> = Result {
        if let url = ProcessInfo.processInfo.environment["HUB_TEST_POSTGRES_URL"], !url.isEmpty {
            var location = try PostgresLocation(url: url)
            location.tls = .disable
            return location
        }
        stopServersOfEndedTestProcesses()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hub-pg-\(getpid())-\(UUID().uuidString.prefix(8))")
        let script = TestSupport.packageRoot.appendingPathComponent("Tests/Postgres/start-server.sh").path
        // The script's output goes to a file, not a pipe: the server it starts would hold a pipe's
        // write end open, and reading the pipe to its end would wait for the server to stop.
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("hub-pg-\(getpid())-\(UUID().uuidString.prefix(8)).out")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: output) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script, directory.path]
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try? handle.close()
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        guard process.terminationStatus == 0, let line = text.split(separator: "\n").last else {
            throw PostgresServerDidNotStart(output: text)
        }
        stopAtExit(directory)
        var location = try PostgresLocation(url: String(line))
        location.tls = .disable
        return location
    }

    static func stopAtExit(_ directory: URL) {
        serverDirectory.value = directory.path
        atexit {
            guard let path = PostgresTestServer.serverDirectory.value else { return }
            let stop = TestSupport.packageRoot.appendingPathComponent("Tests/Postgres/stop-server.sh").path
            _ = try? TestSupport.runTool("/bin/bash", [stop, path])
        }
    }

    static let serverDirectory = Locked<String?>(nil)

    /// A test process killed (a timeout's SIGKILL) never runs its `atexit`: its server is stopped
    /// here, by the next test process, once the process named in the directory's name is gone.
    static func stopServersOfEndedTestProcesses() {
        let temporary = FileManager.default.temporaryDirectory
        let stop = TestSupport.packageRoot.appendingPathComponent("Tests/Postgres/stop-server.sh").path
        for name in (try? FileManager.default.contentsOfDirectory(atPath: temporary.path)) ?? [] where name.hasPrefix("hub-pg-") {
            let parts = name.split(separator: "-")
            guard parts.count >= 4, let pid = Int32(parts[2]), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            let path = temporary.appendingPathComponent(name).path
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                _ = try? TestSupport.runTool("/bin/bash", [stop, path])
            } else {
                try? FileManager.default.removeItem(atPath: path)
            }
        }
    }
}

public struct PostgresServerDidNotStart: Error, CustomStringConvertible {
    public var output: String
    public var description: String { "the test PostgreSQL server did not start (install Debian's postgresql-15):\n\(output)" }
}

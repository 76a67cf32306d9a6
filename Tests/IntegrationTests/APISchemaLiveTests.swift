import Foundation
import HubCore
import HubTestSupport
import HubTools
import Shared
import Testing

/// schemathesis (PyPI, installed in `.venv-api` by `Tests/API/setup.sh`) against the live demo with
/// `docs/openapi.yaml`: generated requests to every operation, as staff, and the hub must never
/// answer 5xx and every answer must match the spec (status, body schema). Seeded and bounded, so
/// it takes a few minutes; logout is left out, as it would revoke the token the rest runs with.
///
/// It needs the demo (a broker, a week of readings) and Python, and takes a core for minutes: it
/// runs alone, `HUB_API_SCHEMA_TESTS=1 swift test --skip-build --filter APISchemaLiveTests` (the
/// README's test command and `.ci/run` do). `HUB_API_SCHEMA_EXAMPLES` changes the number of
/// examples per operation (default 30).
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["HUB_API_SCHEMA_TESTS"] == "1", "set HUB_API_SCHEMA_TESTS=1 and run it alone"))
struct APISchemaLiveTests {
    static var schemathesis: String {
        ProcessInfo.processInfo.environment["HUB_SCHEMATHESIS"] ?? TestSupport.packageRoot.appendingPathComponent(".venv-api/bin/schemathesis").path
    }

    static var examples: Int { Int(ProcessInfo.processInfo.environment["HUB_API_SCHEMA_EXAMPLES"] ?? "") ?? 30 }

    /// The command line, also printed so it can be run by hand against a demo.
    static func arguments(port: Int, token: String, report: String) -> [String] {
        ["run", TestSupport.packageRoot.appendingPathComponent("docs/openapi.yaml").path,
         "--url", "http://127.0.0.1:\(port)",
         "--header", "Authorization: Bearer \(token)",
         "--checks", "not_a_server_error,response_schema_conformance",
         "--exclude-operation-id", "logout",
         "--max-examples", "\(examples)",
         "--seed", "14",
         "--workers", "1",
         "--request-timeout", "60",
         "--suppress-health-check", "all",
         "--report", "junit", "--report-junit-path", report]
    }

    @Test func schemathesisFindsNoServerErrorAndNoSchemaViolation() async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.schemathesis) else {
            Issue.record("no schemathesis at \(Self.schemathesis): run Tests/API/setup.sh (the README's test command does)")
            return
        }
        let directory = try TestSupport.temporaryDirectory("api-schema")
        let demo = try await RunningDemo.start(name: "demo-api-schema")
        let child = demo.child, httpPort = demo.httpPort
        // SIGTERM: the demo stops its hub and the broker it started (a SIGKILL would leave the broker running).
        defer { child.signal(SIGTERM) }
        #expect(child.process.isRunning, "\(child.log)")
        let token = try #require(demo.tokens["staff"], "the demo prints no staff token: \(child.log)")

        let report = directory.appendingPathComponent("schemathesis.xml").path
        let arguments = Self.arguments(port: httpPort, token: token, report: report)
        print("schemathesis \(arguments.map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " "))")
        let (status, output) = try await TestSupport.run(Self.schemathesis, arguments, environment: ["NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"])
        print("schemathesis output:\n\(output)")
        #expect(status == 0, "schemathesis found failures:\n\(output.suffix(20_000))\nhub log:\n\(child.log.suffix(3000))")
        #expect(!child.log.contains("internal error"), "the hub logged an internal error:\n\(child.log.suffix(5000))")
        #expect(child.process.isRunning, "the hub stopped during the run:\n\(child.log.suffix(5000))")
        // Stopped before the test ends, so the demo has time to stop the broker it started.
        child.signal(SIGTERM)
        _ = try await child.waitForExit(timeout: 20)
    }
}

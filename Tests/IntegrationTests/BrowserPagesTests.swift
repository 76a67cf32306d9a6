import Foundation
import HubTestSupport
import HubTools
import Shared
import Testing

/// The pages in a real headless Chromium (Debian's `chromium` and `chromium-driver`) driven by
/// Selenium (`Tests/Browser/pages_test.py`), against the real binary running `demo`: a real
/// broker, simulated meters publishing through it, the car share. Each role logs in, does its
/// main task end to end (the resident's page says the API's saving; a booking taken for a
/// resident; a double booking refused next to the field; a payment with its receipt; the driver
/// logs the trip and the member's balance moves by 2 €; the same form resent records one trip;
/// staff create an account whose first login asks for a new password), every page visited passes
/// axe-core's WCAG 2.1 A/AA rules, screenshots at 390 and 1280 px go to the folder printed, and
/// each role logs out.
///
/// Chromium takes both cores for most of a minute, which would starve the suites that wait on a
/// broker, so it runs alone, after them: `HUB_BROWSER_TESTS=1 swift test --skip-build --filter
/// BrowserPagesTests` (the README's test command and `.ci/run` do).
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["HUB_BROWSER_TESTS"] == "1", "set HUB_BROWSER_TESTS=1 and run it alone"))
struct BrowserPagesTests {
    static var python: String {
        ProcessInfo.processInfo.environment["HUB_BROWSER_PYTHON"] ?? TestSupport.packageRoot.appendingPathComponent(".venv-browser/bin/python").path
    }

    @Test func everyRoleDoesItsMainTaskInARealBrowser() async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.python) else {
            Issue.record("no Python with Selenium at \(Self.python): run Tests/Browser/setup.sh (the README's test command does)")
            return
        }
        let demo = try await RunningDemo.start(name: "demo-browser")
        let child = demo.child, httpPort = demo.httpPort
        // SIGTERM: the demo stops its hub and the broker it started (a SIGKILL would leave the broker running).
        defer { child.signal(SIGTERM) }
        #expect(child.process.isRunning, "\(child.log)")
        #expect(child.log.contains("Open http://127.0.0.1:\(httpPort)/ in a browser"), "the demo does not print the pages' address")

        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
        let shots = ProcessInfo.processInfo.environment["HUB_SCREENSHOTS"]
            ?? TestSupport.packageRoot.appendingPathComponent(".build/browser-screenshots/\(stamp)").path
        let script = TestSupport.packageRoot.appendingPathComponent("Tests/Browser/pages_test.py").path
        let (status, output) = try await TestSupport.run(Self.python, [script, "--base", "http://127.0.0.1:\(httpPort)", "--password", "demo-password", "--shots", shots])
        print("browser test output:\n\(output)")
        #expect(status == 0, "the browser test failed:\n\(output)\nhub log:\n\(child.log.suffix(3000))")
        #expect(output.contains("all browser checks passed"))
        let pictures = (try? FileManager.default.contentsOfDirectory(atPath: shots).filter { $0.hasSuffix(".png") }) ?? []
        #expect(pictures.count >= 40, "only \(pictures.count) screenshots in \(shots)")
        // Stopped before the test ends, so the demo has time to stop the broker it started.
        child.signal(SIGTERM)
        _ = try await child.waitForExit(timeout: 20)
    }
}

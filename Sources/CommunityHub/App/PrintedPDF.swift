import Foundation
import HubCore

/// Prints a page of HTML to PDF with headless Chromium (Debian's `chromium`), the same HTML the
/// browser prints: what staff file or post. Chromium runs as a child process; this awaits its exit
/// without holding a thread of Swift's pool.
package enum PrintedPDF {
    /// `HUB_CHROMIUM`, or the first of chromium, chromium-browser, google-chrome found on PATH.
    package static func browser() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        if let chosen = environment["HUB_CHROMIUM"], !chosen.isEmpty { return chosen }
        let directories = (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init) + ["/usr/bin"]
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            for directory in directories where FileManager.default.isExecutableFile(atPath: directory + "/" + name) { return directory + "/" + name }
        }
        throw HubError.configuration("no Chromium to print PDFs with: install the Debian package chromium (or set HUB_CHROMIUM)")
    }

    package static func render(html: String, to path: String, timeout: Duration = .seconds(90)) async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("hub-print-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let page = work.appendingPathComponent("page.html")
        try Data(html.utf8).write(to: page)
        try await render(htmlFile: page, to: path, timeout: timeout)
    }

    /// Prints an HTML file (a document of many pages is printed without being held in memory here).
    package static func render(htmlFile page: URL, to path: String, timeout: Duration = .seconds(600)) async throws {
        let browser = try browser()
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("hub-print-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let page = page.standardizedFileURL
        let output = URL(fileURLWithPath: path).standardizedFileURL
        try? FileManager.default.removeItem(at: output)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: browser)
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                             "--user-data-dir=" + work.appendingPathComponent("profile").path,
                             "--no-pdf-header-footer", "--print-to-pdf-no-header", "--print-to-pdf=" + output.path, page.absoluteString]
        let log = work.appendingPathComponent("chromium.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        defer { try? handle.close() }
        process.standardOutput = handle
        process.standardError = handle
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { finished in continuation.resume(returning: finished.terminationStatus) }
            do { try process.run() } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: HubError.configuration("cannot start \(browser): \(error.localizedDescription)"))
                return
            }
            // A browser that hangs is stopped: the command fails instead of waiting for ever. A
            // timer on a dispatch queue, so nothing waits on Swift's pool.
            let pid = process.processIdentifier
            let seconds = Double(timeout.components.seconds)
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds) {
                if process.isRunning { kill(pid, SIGKILL) }
            }
        }
        let written = (try? Data(contentsOf: output, options: .alwaysMapped)) ?? Data()
        guard status == 0, written.starts(with: Array("%PDF".utf8)) else {
            let detail = (try? String(contentsOf: log, encoding: .utf8))?.split(separator: "\n").suffix(5).joined(separator: " | ") ?? ""
            throw HubError(.unavailable, code: "pdf_failed", message: "Chromium could not print the PDF (exit \(status)): \(detail)")
        }
    }
}

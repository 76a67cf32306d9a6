import EnergyCore
import EnergyHub
import Foundation
import HubCore
import Shared

/// Helpers shared by the test targets: temporary directories and databases, the shared samples.
public enum TestSupport {
    /// The package's root directory (where Package.swift is).
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The device payload samples, copied from the team's `../shared/samples/mqtt` into
    /// `Tests/Fixtures/mqtt` so a clone tests alone (`SampleFixtureTests` keeps the copy in step).
    public static let samplesDirectory = packageRoot.appendingPathComponent("Tests/Fixtures/mqtt")

    /// The team's shared samples next to the package, when this checkout has them.
    public static let sharedSamplesDirectory = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/samples/mqtt")

    /// A new empty directory under the system's temporary directory.
    public static func temporaryDirectory(_ prefix: String = "hub-test") throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A real SQLite file with the shared and energy schemas (plus any extra).
    public static func database(extraSchemas: [HubDatabase.Schema] = []) throws -> HubDatabase {
        let directory = try temporaryDirectory("hub-db")
        return try HubDatabase.open(path: directory.appendingPathComponent("hub.sqlite").path,
                                    schemas: [SharedSchema.register, EnergySchema.register] + extraSchemas, synchronous: .normal)
    }

    /// One line of a shared sample file.
    public struct Sample: Sendable {
        public var topic: String
        public var payload: String
        public var note: String
    }

    /// The lines of `Tests/Fixtures/mqtt/<name>.jsonl`.
    public static func samples(_ name: String) throws -> [Sample] {
        let text = try String(contentsOf: samplesDirectory.appendingPathComponent("\(name).jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.map { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return Sample(topic: object["topic"] as! String, payload: object["payload"] as! String, note: object["note"] as? String ?? "")
        }
    }

    /// A registry CSV for the devices in the shared samples, installed on 2025-01-01.
    public static let samplesRegistryCSV = """
        estate;building;dwelling;device;kind;format;since;tariff;share
        Outreau;OUT-A;OUT-A-01;021861348497;meter;teleinfo;2025-01-01;edf-bleu-hphc 22:26-06:26;
        Outreau;OUT-A;OUT-A-02;041876097381;meter;teleinfo;2025-01-01;;
        Outreau;OUT-A;;041876000117;pv;teleinfo;2025-01-01;;
        Outreau;OUT-A;OUT-A-03;box-0042;meter;tasmota;2025-01-01;;
        Outreau;OUT-A;;116180401234;pv;opendtu;2025-01-01;;
        Outreau;OUT-A;OUT-A-04;box-7;meter;canonical;2025-01-01;;
        """
}

extension Identity {
    /// The landlord's staff, as tests act when they set up accounts and the registry.
    public static let testStaff = Identity(name: "test-staff", role: .staff)
}

extension TestSupport {
    /// Runs a Debian tool a test reads its output back with (pdftotext, soffice, unzip...): its exit
    /// status and standard output. A missing tool is an error naming it: CI installs them, so a test
    /// fails rather than skipping.
    public static func runTool(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw HubError.configuration("\(path) is missing: run ./deploy/install-debian-packages.sh")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }
}

import Foundation
import GRDB
import HubCore
import HubTestSupport
import Logging
import Shared
import Testing

/// Staff's energy commands run as the real binary on the SQLite file and on PostgreSQL
/// (`--database-url`), over the same registry and readings: `energy update`, `energy report` and
/// `statements export` print and write the same figures on both.
@Suite struct EnergyCommandsOnBothEnginesTests {
    static let registry = """
        estate;building;dwelling;device;kind;format;since;tariff
        E;B;;pv-1;pv;canonical;2026-06-01;
        E;B;D1;m-1;meter;canonical;2026-06-01;edf-bleu-hphc 22:26-06:26
        E;B;D2;m-2;meter;canonical;2026-06-01;
        E;B;D3;m-3;meter;canonical;2026-06-01;
        """

    /// October 2026 (Paris) every 15 minutes, the hour repeated on the 25th included: a production
    /// by day and three uneven households, the same rows for both engines.
    static func readings() -> [[SQLValue]] {
        let start = Instant.parseRFC3339("2026-09-30T22:00:00Z")!.millisecondsSince1970
        let end = Instant.parseRFC3339("2026-10-31T23:00:00Z")!.millisecondsSince1970
        var index: [String: Int64] = ["pv-1": 0, "m-1": 1_000, "m-2": 2_000, "m-3": 3_000]
        var rows: [[SQLValue]] = []
        var step: Int64 = 0
        for instant in stride(from: start, through: end, by: 900_000) {
            let hour = (instant / 3_600_000) % 24
            for device in index.keys.sorted() {
                let usage: Int64 = switch device {
                case "pv-1": (8...15).contains(hour) ? 40 + (step * 7) % 90 : 0
                case "m-1": 20 + (step * 13) % 60
                case "m-2": 5 + (step * 5) % 25
                default: 10 + (step * 11) % 40
                }
                index[device]! += usage
                rows.append([.text(device), .integer(instant), .integer(index[device]!), .integer(0), .text("device"), .integer(instant + 2_000)])
            }
            step += 1
        }
        return rows
    }

    func run(_ arguments: [String]) async throws -> String {
        let (status, output) = try await TestSupport.run(HubChild.executable.path, arguments)
        #expect(status == 0, "\(arguments): \(output)")
        return output
    }

    /// The engine's arguments, once its registry and readings are in.
    func prepare(_ engine: String, in directory: URL, config: String) async throws -> [String] {
        let csv = directory.appendingPathComponent("registry.csv").path
        try Data(Self.registry.utf8).write(to: URL(fileURLWithPath: csv))
        let readings = Self.readings()
        let insert = "INSERT INTO %@ (device_id, instant, energy_wh, segment, time_source, received_at) VALUES (?, ?, ?, ?, ?, ?)"
        switch engine {
        case "sqlite":
            let path = directory.appendingPathComponent("hub.sqlite").path
            let target = ["--config", config, "--db", path]
            _ = try await run(["registry", "import", csv] + target)
            // As the fold leaves them: in the device-ordered table, each device's range queued.
            let queue = try DatabaseQueue(path: path)
            try await queue.write { db in
                let session = SQLiteSession(db)
                for row in readings { _ = try session.execute(String(format: insert, "reading_by_device"), row) }
                try db.execute(sql: """
                    INSERT INTO reading_change (device_id, from_instant, to_instant)
                    SELECT device_id, MIN(instant), MAX(instant) FROM reading_by_device GROUP BY device_id
                    """)
            }
            try queue.close()
            return target
        default:
            let location = try await PostgresTestServer.database("energy-cli")
            let target = ["--config", config, "--database-url", PostgresTestServer.url(location)]
            _ = try await run(["registry", "import", csv] + target)
            try await BlockingWork.run {
                let session = try PostgresBlockingSession(location, logger: Logger(label: "test.energy-cli"))
                defer { session.close() }
                try session.transaction { db in
                    for month in ["2026-09-30T22:00:00Z", "2026-10-15T00:00:00Z"] {
                        _ = try db.rows("SELECT reading_partition(?)", Instant.parseRFC3339(month)!.millisecondsSince1970)
                    }
                }
                try session.transaction { db in
                    for row in readings { _ = try db.execute(String(format: insert, "reading"), row) }
                    _ = try db.execute("""
                        INSERT INTO reading_change_log (device_id, from_instant, to_instant)
                        SELECT device_id, MIN(instant), MAX(instant) FROM reading GROUP BY device_id
                        """)
                }
            }
            return target
        }
    }

    @Test func updateReportAndExportGiveTheSameFiguresOnBothEngines() async throws {
        var printed: [String: [String]] = [:]
        var exported: [String: [String: Data]] = [:]
        for engine in ["sqlite", "postgres"] {
            let directory = try TestSupport.temporaryDirectory("energy-cli-\(engine)")
            let config = directory.appendingPathComponent("hub.json").path
            try Data(#"{"auth": {"bcryptCost": 4}, "database": {"startupCheckSeconds": 0}}"#.utf8).write(to: URL(fileURLWithPath: config))
            let target = try await prepare(engine, in: directory, config: config)
            var outputs: [String] = []
            outputs.append(try await run(["energy", "update"] + target))
            for scope in [["--estate", "E"], ["--building", "B"], ["--dwelling", "D1"], ["--dwelling", "D3"]] {
                outputs.append(try await run(["energy", "report", "--from", "2026-10-01", "--to", "2026-10-31"] + scope + target))
            }
            let out = directory.appendingPathComponent("statements")
            outputs.append(try await run(["statements", "export", "--month", "2026-10", "--out", out.path, "--format", "json,csv"] + target)
                .replacingOccurrences(of: out.path, with: "OUT"))
            printed[engine] = outputs
            var files: [String: Data] = [:]
            for name in try FileManager.default.contentsOfDirectory(atPath: out.path).sorted() {
                files[name] = try Data(contentsOf: out.appendingPathComponent(name))
            }
            exported[engine] = files
        }
        let (sqlite, postgres) = (try #require(printed["sqlite"]), try #require(printed["postgres"]))
        #expect(sqlite.count == postgres.count)
        for (fromFile, fromServer) in zip(sqlite, postgres) {
            #expect(fromFile == fromServer)
        }
        #expect(sqlite[1].contains("households' savings (3)") && !sqlite[1].contains(" 0.000 "), "the estate's report has figures: \(sqlite[1])")
        let files = try #require(exported["sqlite"])
        #expect(files.keys.sorted() == exported["postgres"]?.keys.sorted())
        #expect(files.count >= 2, "\(files.keys.sorted())")
        for (name, data) in files {
            #expect(data == exported["postgres"]?[name], "\(name) differs")
        }
    }
}

import ArgumentParser
import EnergyCore
import EnergyHub
import Foundation
import GRDB
import HubCore
import HubStatements
import HubTestSupport
import HubTools
import HummingbirdTesting
import Logging
import Shared
import Testing
@testable import HubApp
@testable import HubCLI

/// Exporting a month freezes it (issue 10): a box that was offline sends its readings after the
/// export, through a real broker into the running hub; the month's statements do not change what
/// was sent, staff are told which household's figures were revised, and the next export issues
/// them as revision 2, listing exactly that household.
@Suite struct StatementsRevisionTests {
    @Test func lateReadingsAfterAnExportMakeARevisionListingExactlyThatHousehold() async throws {
        let preparation = StatementsExportTests()
        // OUT-A-02's box is offline from 20 to 22 October: its consumption there is estimated.
        let (path, baseSettings, heldBack) = try await preparation.preparedDatabase(
            holdingBack: ("m-02", Instant.parseRFC3339("2026-10-19T22:00:00Z")!, Instant.parseRFC3339("2026-10-22T22:00:00Z")!))
        #expect(heldBack.count > 100)
        let out = try TestSupport.temporaryDirectory("statements-revision")
        let first = out.appendingPathComponent("first")
        try await preparation.run(["statements", "export", "--month", "2026-10", "--out", first.path, "--db", path, "--format", "json,csv,html"])
        let sent = try JSONDecoder().decode([HouseholdStatement].self, from: Data(contentsOf: first.appendingPathComponent("releves-2026-10.json")))

        // The box comes back: its readings go through a real broker into the running hub.
        let directory = try TestSupport.temporaryDirectory("statements-broker")
        let broker = try BrokerProcess(workingDirectory: directory.appendingPathComponent("broker"))
        try broker.start()
        defer { broker.stop() }
        var settings = baseSettings
        settings.mqtt = broker.clientSettings
        settings.mqtt.clientId = "hub-statements-\(UUID().uuidString.prefix(8))"
        settings.mqtt.reconnectMinSeconds = 1
        settings.mqtt.reconnectMaxSeconds = 2
        settings.http.port = 0
        settings.energy.upkeepIntervalMilliseconds = 100
        let logger = Logger(label: "statements", factory: { _ in SwiftLogNoOpLogHandler() })
        let hub = try HubProcess(settings: settings, logger: logger)
        let publisher = MosquittoClient(settings: broker.clientSettings, password: nil, clientId: "box-\(UUID().uuidString.prefix(8))", cleanSession: true,
                                        logger: logger, onMessage: { _ in })
        try publisher.start()
        defer { _ = publisher.stop() }
        let database = try hub.sqlite
        let ingest = hub.ingest
        try await hub.application().test(.live) { _ in
            try await waitUntil("the hub subscribed") { ingest.isConnected && publisher.isConnected }
            // A probe until the hub's subscription is up, then the box's buffered readings.
            try await waitUntil("the hub receives") {
                try? publisher.publish(topic: "meters/probe/reading", payload: Array("{}".utf8))
                return ingest.totals.messages > 0
            }
            for chunk in stride(from: 0, to: heldBack.count, by: 48) {
                let readings = heldBack[chunk..<min(heldBack.count, chunk + 48)].map { "{\"ts\":\"\($0.0.rfc3339)\",\"energy_wh\":\($0.1)}" }
                try publisher.publish(topic: "meters/m-02/reading", payload: Array(("[" + readings.joined(separator: ",") + "]").utf8))
            }
            #expect(publisher.waitUntilAcknowledged(timeout: .seconds(30)))
            let expected = heldBack.count
            try await waitUntil(timeout: .seconds(60), "the late readings stored and the savings brought up to date") {
                try database.pool.read { db in
                    let stored = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM reading WHERE device_id = 'm-02' AND instant > ? AND instant < ?",
                                                  arguments: [Instant.parseRFC3339("2026-10-19T22:00:00Z")!.millisecondsSince1970,
                                                              Instant.parseRFC3339("2026-10-22T22:00:00Z")!.millisecondsSince1970]) ?? 0
                    let pending = try Int.fetchOne(db, sql: "SELECT (SELECT COUNT(*) FROM reading_journal) + (SELECT COUNT(*) FROM reading_change) + (SELECT COUNT(*) FROM savings_dirty)") ?? 1
                    return stored == expected && pending == 0
                }
            }
        }

        // Exporting again sends the same bytes, and names the revised household.
        let again = out.appendingPathComponent("again")
        try await preparation.run(["statements", "export", "--month", "2026-10", "--out", again.path, "--db", path, "--format", "json,csv,html"])
        for name in ["releves-2026-10.json", "releves-2026-10.csv", "releves-2026-10.html", "residences-2026-10.json", "residences-2026-10.html"] {
            #expect(try Data(contentsOf: again.appendingPathComponent(name)) == Data(contentsOf: first.appendingPathComponent(name)), "\(name) as sent")
        }
        let pending = try JSONDecoder().decode(StatementsExport.Summary.self, from: Data(contentsOf: again.appendingPathComponent("releves-2026-10-resume.json")))
        #expect(pending.revision == 1 && !pending.issued)
        #expect(pending.changes.map(\.dwelling) == ["OUT-A-02"], "only the household whose box came back")
        #expect(pending.revisedDocuments == ["building/OUT-A"], "and its building's statement; the association's accounts did not change")

        // The next revision issues it, listing exactly that household's change.
        let second = out.appendingPathComponent("second")
        try await preparation.run(["statements", "export", "--month", "2026-10", "--out", second.path, "--db", path, "--format", "json,csv,html", "--new-revision"])
        let summary = try JSONDecoder().decode(StatementsExport.Summary.self, from: Data(contentsOf: second.appendingPathComponent("releves-2026-10-r2-resume.json")))
        #expect(summary.revision == 2 && summary.issued)
        let change = try #require(summary.changes.first)
        #expect(summary.changes.count == 1 && change.dwelling == "OUT-A-02")
        let revised = try JSONDecoder().decode([HouseholdStatement].self, from: Data(contentsOf: second.appendingPathComponent("releves-2026-10-r2.json")))
        let before = try #require(sent.first { $0.dwelling == "OUT-A-02" })
        let after = try #require(revised.first { $0.dwelling == "OUT-A-02" })
        #expect(change.sentSavingsCents == Cents(before.energy.savingsCents) && change.nowSavingsCents == Cents(after.energy.savingsCents))
        #expect(after.energy.savingsCents != before.energy.savingsCents, "the afternoon use the box reported late shares more sun")
        #expect(zip(sent, revised).allSatisfy { $0.dwelling == "OUT-A-02" || $0 == $1 }, "the other households unchanged")
        let changes = try String(contentsOf: second.appendingPathComponent("releves-2026-10-r2-changements.csv"), encoding: .utf8)
        #expect(changes.split(separator: "\r\n").count == 2 && changes.contains("OUT-A-02;"))
        let html = try String(contentsOf: second.appendingPathComponent("releves-2026-10-r2.html"), encoding: .utf8)
        #expect(html.contains("Révision 2"))
        // Revision 1 is still what it was: exporting it again (no new revision) now sends revision 2.
        let third = out.appendingPathComponent("third")
        try await preparation.run(["statements", "export", "--month", "2026-10", "--out", third.path, "--db", path, "--format", "json"])
        #expect(try Data(contentsOf: third.appendingPathComponent("releves-2026-10-r2.json")) == Data(contentsOf: second.appendingPathComponent("releves-2026-10-r2.json")))
    }
}

import EnergyCore
import EnergyHub
import Foundation
import GRDB
import HubTestSupport
import HubTools
import HubCore
import Shared
import Testing

/// Issue 14, defect 1, where it was seen: the real `community-hub serve` process, a real broker
/// and a real SQLite file. An index jumping by 2e17 Wh or more within a minute overflowed while
/// the hub worked out the implied power for the quarantine message, and the trap killed the
/// process with the readings other devices had sent in the same seconds. Here the jumps that
/// killed it are published between ordinary readings of other devices: the process must live on,
/// store every ordinary reading and quarantine each jump with its reason.
@Suite(.serialized) struct HostileNumbersProcessTests {
    static let ordinaryDevices = 8
    static let steps = 30

    /// The payloads that crashed the hub, each on a device of its own that first sent an ordinary reading.
    static let hostile: [(device: String, topic: String, payload: @Sendable (Instant) -> [UInt8])] = [
        ("jump-max", "meters/jump-max/reading", { Array("{\"ts\":\"\($0.rfc3339)\",\"energy_wh\":9223372036854775807}".utf8) }),
        ("jump-2p62", "meters/jump-2p62/reading", { Array("{\"ts\":\"\($0.rfc3339)\",\"energy_wh\":4611686018427387904}".utf8) }),
        ("jump-2e17", "meters/jump-2e17/reading", { Array("{\"ts\":\"\($0.rfc3339)\",\"energy_wh\":200000000000000000}".utf8) }),
        ("tic-max", "teleinfo/tic-max", { _ in HostileNumbersProcessTests.teleinfoPayload("9223372036854775807") }),
    ]

    static var registry: String {
        "estate;building;dwelling;device;kind;format;since\n"
            + (1...ordinaryDevices).map { "E;B;D\($0);sim-\($0);meter;canonical;2025-01-01" }.joined(separator: "\n")
            + "\nE;B;T1;tic-1;meter;teleinfo;2025-01-01"
            + "\nE;B;H1;jump-max;meter;canonical;2025-01-01\nE;B;H2;jump-2p62;meter;canonical;2025-01-01"
            + "\nE;B;H3;jump-2e17;meter;canonical;2025-01-01\nE;B;H4;tic-max;meter;teleinfo;2025-01-01"
    }

    static func teleinfoPayload(_ base: String) -> [UInt8] {
        Array("{\"OPTARIF\":{\"raw\":\"BASE\",\"value\":\"BASE\"},\"BASE\":{\"raw\":\"\(base)\",\"value\":\(base)}}".utf8)
    }

    @Test func indexJumpsBeyond64BitsOfPowerAreQuarantinedAndTheHubLivesOn() async throws {
        let harness = try IngestHarness(registryCSV: Self.registry)
        let hub = try HubChild(database: harness.database.path, mqttPort: harness.broker.port, directory: harness.directory, name: "hostile")
        try await waitUntil("the hub connected") { hub.log.contains("connected to the MQTT broker") || !hub.process.isRunning }
        try #require(hub.process.isRunning, "\(hub.log.suffix(2000))")
        let publisher = try harness.publisher()
        let start = Instant.now().adding(seconds: -Int64(Self.steps + 5) * 60)
        var ordinary = 0
        for step in 0..<Self.steps {
            let instant = start.adding(seconds: Int64(step) * 60)
            for device in 1...Self.ordinaryDevices {
                try publisher.publish(topic: "meters/sim-\(device)/reading", payload: canonicalPayload(instant, 1_000_000 + Int64(step * 100 + device)))
                ordinary += 1
            }
            try publisher.publish(topic: "teleinfo/tic-1", payload: Self.teleinfoPayload("\(2_000_000 + step * 10)"))
            ordinary += 1
            // The hostile devices: an ordinary reading, the jump a minute later in the middle of the
            // stream, and an ordinary reading again at the end (the series goes on).
            for (index, hostile) in Self.hostile.enumerated() {
                let payload: [UInt8]?
                switch step {
                case 9 + 3 * index, Self.steps - 1:
                    payload = hostile.topic.hasPrefix("teleinfo/")
                        ? Self.teleinfoPayload("\(21_403_709 + step * 10)")
                        : canonicalPayload(instant, 21_403_709 + Int64(step * 10))
                    ordinary += 1
                case 10 + 3 * index:
                    payload = hostile.payload(instant)
                default:
                    payload = nil
                }
                if let payload { try publisher.publish(topic: hostile.topic, payload: payload) }
            }
        }
        #expect(publisher.waitUntilAcknowledged(timeout: .seconds(30)))
        let expected = ordinary
        try await waitUntil(timeout: .seconds(60), "every message handled, or the hub gone") {
            guard hub.process.isRunning else { return true }
            return try harness.storedReadings == expected && harness.count("SELECT COUNT(*) FROM quarantine") == Self.hostile.count
        }
        let log = hub.log
        let crash = log.range(of: "Fatal error").map { String(log[$0.lowerBound...].prefix(600)) } ?? String(log.suffix(3000))
        #expect(hub.process.isRunning, "the hub died: \(crash)")
        #expect(harness.storedReadings == expected, "every ordinary reading is stored")
        for device in (1...Self.ordinaryDevices).map({ "sim-\($0)" }) + ["tic-1"] {
            #expect(try harness.count("SELECT COUNT(*) FROM reading WHERE device_id = '\(device)'") == Self.steps, "\(device)")
        }
        let kept = try await harness.database.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT device_id, reason, detail FROM quarantine ORDER BY id")
                .map { (device: $0["device_id"] as String, reason: $0["reason"] as String, detail: $0["detail"] as String) }
        }
        #expect(kept.map(\.device) == Self.hostile.map(\.device))
        for entry in kept {
            #expect(entry.reason == "implausible_jump", "\(entry)")
            #expect(entry.detail.contains("more than 9.2e18 W"), "\(entry)")
            #expect(try harness.count("SELECT COUNT(*) FROM reading WHERE device_id = '\(entry.device)'") == 2, "\(entry.device): the ordinary readings around the jump")
        }
        publisher.stop()
        hub.signal(SIGTERM)
        #expect(try await hub.waitForExit() == 0, "\(hub.log.suffix(2000))")
    }
}

import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import HubTestSupport
import Logging
import HubCore
import Shared
import Testing
@testable import HubApp
@testable import EnergyCore
@testable import EnergyHub
import HubTools

/// Readings published through a real mosquitto broker, ingested and kept up to date by the hub's
/// own services, then read back through its HTTP routes: figures computed by hand.
@Suite struct SavingsEndToEndTests {
    static let registry = """
        estate;building;dwelling;device;kind;format;since;tariff;share
        Outreau;OUT-A;;pv-a;pv;canonical;2026-06-01;;
        Outreau;OUT-A;OUT-A-01;box-1;meter;canonical;2026-06-01;edf-bleu-base;
        Outreau;OUT-A;OUT-A-02;box-2;meter;canonical;2026-06-01;edf-bleu-hphc 11:00-17:00;
        Outreau;OUT-A;OUT-A-03;box-3;meter;canonical;2026-06-01;;
        """

    /// Three local days, 2026-06-08 to 06-10 (summer time, UTC+2), a reading every 30 minutes.
    /// Households draw 100, 200 and 300 Wh a slot. The PV gives, in the 8 slots from 10:00 to
    /// 14:00 local, 300 Wh a slot on the 8th, 900 on the 9th, 600 on the 10th, nothing otherwise.
    static func index(of device: String, after slots: Int64) -> Int64 {
        switch device {
        case "box-1": return 1_000_000 + 100 * slots
        case "box-2": return 2_000_000 + 200 * slots
        case "box-3": return 3_000_000 + 300 * slots
        default:
            var total: Int64 = 500_000
            for slot in 0..<slots {
                let day = slot / 48, ofDay = slot % 48
                if ofDay >= 20 && ofDay < 28 { total += [300, 900, 600][Int(day)] }
            }
            return total
        }
    }

    @Test func readingsThroughARealBrokerComeOutOfTheRoutesAsComputedByHand() async throws {
        let directory = try TestSupport.temporaryDirectory("savings-e2e")
        let broker = try BrokerProcess(workingDirectory: directory.appendingPathComponent("broker"))
        try broker.start()
        defer { broker.stop() }

        var settings = HubSettings()
        settings.database.path = directory.appendingPathComponent("hub.sqlite").path
        settings.database.synchronous = .normal
        settings.mqtt = broker.clientSettings
        settings.mqtt.clientId = "hub-e2e-\(UUID().uuidString.prefix(8))"
        settings.mqtt.reconnectMinSeconds = 1
        settings.mqtt.reconnectMaxSeconds = 2
        settings.http.port = 0
        settings.auth.bcryptCost = 4
        settings.energy.upkeepIntervalMilliseconds = 100
        let logger = Logger(label: "e2e", factory: { _ in SwiftLogNoOpLogHandler() })
        let hub = try HubProcess(settings: settings, logger: logger)
        _ = try RegistryImporter(database: hub.sqlite).importCSV(Data(SavingsEndToEndTests.registry.utf8))
        let users = hub.dependencies.users
        let now = Instant.now()
        try await users.add(name: "staff", role: .staff, dwelling: nil, estate: nil, password: "staff-password", by: .testStaff, at: now)
        try await users.add(name: "outreau", role: .association, dwelling: nil, estate: "Outreau", password: "assoc-password", by: .testStaff, at: now)
        try await users.add(name: "resident-2", role: .resident, dwelling: "OUT-A-02", estate: nil, password: "resident-password", by: .testStaff, at: now)
        var tokens: [String: String] = [:]
        for name in ["staff", "outreau", "resident-2"] { tokens[name] = try await users.createToken(for: name, label: "e2e", expiresAt: nil, by: .testStaff, at: now) }
        let bearer = tokens

        let publisher = MosquittoClient(settings: broker.clientSettings, password: nil, clientId: "meters-\(UUID().uuidString.prefix(8))", cleanSession: true,
                                        logger: logger, onMessage: { _ in })
        try publisher.start()
        defer { _ = publisher.stop() }

        let ingest = hub.ingest
        let database = try hub.sqlite
        try await hub.application().test(.live) { client in
            // Until the hub's subscription is up, a probe on an unregistered device is all we send.
            var subscribed = false
            for _ in 0..<150 where !subscribed {
                if publisher.isConnected { try? publisher.publish(topic: "meters/probe/reading", payload: Array("{}".utf8)) }
                try await Task.sleep(for: .milliseconds(100))
                subscribed = ingest.totals.messages > 0
            }
            #expect(subscribed, "the hub subscribed to the broker")

            let start = Instant.parseRFC3339("2026-06-07T22:00:00Z")!
            for slot in Int64(0)...144 {
                let instant = start.adding(milliseconds: slot * 1_800_000)
                for device in ["pv-a", "box-1", "box-2", "box-3"] {
                    let payload = "{\"ts\":\"\(instant.rfc3339)\",\"energy_wh\":\(SavingsEndToEndTests.index(of: device, after: slot))}"
                    try publisher.publish(topic: "meters/\(device)/reading", payload: Array(payload.utf8))
                }
            }
            #expect(publisher.waitUntilAcknowledged(timeout: .seconds(30)))
            // Wait until ingest stored everything and the savings service consumed every change.
            var settled = false
            for _ in 0..<300 where !settled {
                try await Task.sleep(for: .milliseconds(100))
                let pending = try await database.pool.read { db in
                    // Readings still in the journal have no reading_change row yet: the fold writes it.
                    try Int.fetchOne(db, sql: """
                        SELECT (SELECT COUNT(*) FROM reading_journal) + (SELECT COUNT(*) FROM reading_change) + (SELECT COUNT(*) FROM savings_dirty)
                        """) ?? 1
                }
                settled = ingest.totals.stored == 4 * 145 && pending == 0
            }
            #expect(settled, "stored \(ingest.totals.stored) readings")

            func get(_ path: String, as user: String) async throws -> (HTTPResponse.Status, [String: Any]) {
                try await client.execute(uri: path, method: .get, headers: [.authorization: "Bearer \(bearer[user]!)"]) { response in
                    (response.status, (try? JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8))) as? [String: Any] ?? [:])
                }
            }
            let period = "from=2026-06-08&to=2026-06-10"

            // OUT-A-02 (off-peak 11:00-17:00): 8th: 100 Wh in each of the 8 sunny slots (300 pro rata
            // over 600: 50/100/150), 9th and 10th: all 200. 10:00 and 10:30 are peak (0.2081), the
            // other six off-peak (0.1635): 139,720,000 + 2 x 279,440,000 nano-euros = 69.86 -> 70 cents.
            let (status, household) = try await get("/api/v1/dwellings/OUT-A-02/energy?\(period)", as: "resident-2")
            #expect(status == .ok)
            #expect(household["consumption_wh"] as? Int == 200 * 144)
            #expect(household["allocated_wh"] as? Int == 800 + 1600 + 1600)
            #expect(household["grid_wh"] as? Int == 28_800 - 4000)
            #expect(household["savings_cents"] as? Int == 70)
            #expect(household["slots"] as? [String: Int] == ["measured": 144, "estimated": 0, "missing": 0])
            let days = household["days"] as? [[String: Any]] ?? []
            #expect(days.map { $0["savings_cents"] as? Int } == [14, 28, 28])
            #expect(days.map { $0["allocated_wh"] as? Int } == [800, 1600, 1600])
            let projection = household["annual_projection"] as? [String: Any] ?? [:]
            #expect(projection["promised_cents"] as? Int == 15_000)
            #expect(projection["savings_so_far_cents"] as? Int == 70)

            // A resident does not see a neighbour, nor the building.
            #expect(try await get("/api/v1/dwellings/OUT-A-01/energy?\(period)", as: "resident-2").0 == .forbidden)
            #expect(try await get("/api/v1/buildings/OUT-A/energy?\(period)", as: "resident-2").0 == .forbidden)

            // The building: production 8 x (300 + 900 + 600) = 14,400; allocated 2,400 + 4,800 + 4,800;
            // surplus 2,400 on the 9th at 0.04 EUR/kWh: 9.6 -> 10 cents.
            let (_, building) = try await get("/api/v1/buildings/OUT-A/energy?\(period)", as: "staff")
            #expect(building["production_wh"] as? Int == 14_400)
            #expect(building["allocated_wh"] as? Int == 12_000)
            #expect(building["surplus_wh"] as? Int == 2_400)
            #expect(building["consumption_wh"] as? Int == 86_400)
            #expect((building["self_consumption_rate"] as? NSNumber)?.decimalValue == Decimal(string: "0.8333"))
            #expect((building["self_sufficiency_rate"] as? NSNumber)?.decimalValue == Decimal(string: "0.1389"))
            #expect(building["surplus_revenue_cents"] as? Int == 10)
            #expect((building["days"] as? [[String: Any]])?.map { $0["surplus_wh"] as? Int } == [0, 2400, 0])

            // The estate: households' savings as a distribution. OUT-A-01 (base): 2,000 Wh at 0.1952 =
            // 39.04 -> 39 cents; OUT-A-03: 6,000 Wh: 117.12 -> 117 cents; OUT-A-02: 70.
            let (_, estate) = try await get("/api/v1/estates/Outreau/energy?\(period)", as: "staff")
            #expect(estate["households"] as? [String: Int] == ["count": 3, "min_cents": 39, "median_cents": 70, "max_cents": 117])
            #expect((estate["totals"] as? [String: Any])?["production_wh"] as? Int == 14_400)
            // The estate's association (issue 14, defect 10): three households are fewer than the
            // minimum group of 10, so the production alone, and no household's saving.
            let (_, seen) = try await get("/api/v1/estates/Outreau/energy?\(period)", as: "outreau")
            #expect(seen["households"] as? [String: Int] == ["count": 3])
            #expect((seen["totals"] as? [String: Any])?["production_wh"] as? Int == 14_400)
            #expect((seen["totals"] as? [String: Any])?["withheld"] as? Bool == true && (seen["totals"] as? [String: Any])?["allocated_wh"] is NSNull)
            let (_, seenBuilding) = try await get("/api/v1/buildings/OUT-A/energy?\(period)", as: "outreau")
            #expect(seenBuilding["production_wh"] as? Int == 14_400 && seenBuilding["consumption_wh"] is NSNull)

            // Staff see a household's detail; the CLI's table says the same.
            let (_, first) = try await get("/api/v1/dwellings/OUT-A-01/energy?\(period)", as: "staff")
            #expect(first["savings_cents"] as? Int == 39)
            let table = try await EnergyReports.householdSavingsTable(database: database, from: LocalDate(parsing: "2026-06-08")!, to: LocalDate(parsing: "2026-06-10")!)
            #expect(table.contains("OUT-A-02") && table.contains("0.70") && table.contains("1.17") && table.contains("0.39"))
            #expect(table.contains("2.26 EUR saved in all"))
        }

        // The CLI prints the same figures from the same database, and refuses a bad date.
        let report = try runCLI(["energy", "report", "--db", settings.database.path, "--from", "2026-06-08", "--to", "2026-06-10", "--dwelling", "OUT-A-02"])
        #expect(report.status == 0)
        #expect(report.output.contains("total") && report.output.contains("28.800") && report.output.contains("4.000") && report.output.contains("0.70"))
        let estate = try runCLI(["energy", "report", "--db", settings.database.path, "--from", "2026-06-08", "--to", "2026-06-10", "--estate", "Outreau"])
        #expect(estate.output.contains("min 0.39 EUR, median 0.70 EUR, max 1.17 EUR"))
        let wrong = try runCLI(["energy", "report", "--db", settings.database.path, "--from", "2026-06-31", "--to", "2026-06-10"])
        #expect(wrong.status == 65)
        #expect(wrong.error.contains("--from 2026-06-31 is not a date"))
    }

    /// Runs the built `community-hub` executable.
    func runCLI(_ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = TestSupport.packageRoot.appendingPathComponent(".build/debug/community-hub")
        process.arguments = arguments
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }
}

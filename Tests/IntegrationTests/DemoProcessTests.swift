import EnergyCore
import EnergyHub
import Foundation
import GRDB
import HTTPTypes
import HubTestSupport
import HummingbirdTesting
import NIOCore
import HubCore
import Shared
import Testing
import HubTools

/// The README's first command runs `community-hub demo`: the real binary starts its own broker,
/// publishes a simulated week through it, fills the car-share, then serves HTTP with the logins it
/// prints. Here it runs as a child process and is asked over HTTP what a newcomer would ask.
@Suite(.serialized) struct DemoProcessTests {
    struct Started {
        var child: HubChild
        var httpPort: Int
        var database: String
        /// The bearer token printed for each demo login.
        var tokens: [Role: String]
        var residentMember: String
    }

    func startDemo() async throws -> Started {
        let directory = try TestSupport.temporaryDirectory("demo")
        let httpPort = try BrokerProcess.freeLoopbackPort()
        let database = directory.appendingPathComponent("demo.sqlite").path
        let child = try HubChild(arguments: ["demo", "--db", database, "--http-port", "\(httpPort)", "--weeks", "1", "--step-minutes", "30"],
                                 directory: directory, name: "demo")
        try await waitUntil(timeout: .seconds(180), "the demo serves") { child.log.contains("is running") || !child.process.isRunning }
        let log = child.log
        #expect(child.process.isRunning, "\(log)")
        var tokens: [Role: String] = [:]
        for line in log.split(separator: "\n") {
            let words = line.split(separator: " ")
            if words.count == 3, let role = Role(rawValue: String(words[0])), words[1] == "demo-\(role.rawValue)", words[2].hasPrefix("chub_") {
                tokens[role] = String(words[2])
            }
        }
        let member = log.components(separatedBy: "/api/v1/carshare/members/").dropFirst().first?.prefix { $0.isNumber } ?? ""
        return Started(child: child, httpPort: httpPort, database: database, tokens: tokens, residentMember: String(member))
    }

    func get(_ started: Started, _ path: String, as role: Role?) async throws -> (status: Int, json: [String: Any]) {
        var headers: HTTPFields = [:]
        if let role, let token = started.tokens[role] { headers[.authorization] = "Bearer \(token)" }
        let request = headers
        let response = try await TestClient.withClient(host: "127.0.0.1", port: started.httpPort) { client in
            try await client.get(path, headers: request)
        }
        let body = response.body.map { Data($0.readableBytesView) } ?? Data()
        let json = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:]
        return (response.head.status.code, json)
    }

    @Test func theDemoStoresASimulatedWeekFillsTheCarShareAndServesEachLogin() async throws {
        let started = try await startDemo()
        let log = started.child.log
        #expect(log.contains("SIMULATED DATA"))
        #expect(Set(started.tokens.keys) == Set(Role.allCases), "a token is printed for every role: \(log)")
        #expect(!started.residentMember.isEmpty, "the demo prints the resident's car-share statement route")

        // Every simulated message went through the broker and was stored; none was refused.
        let stored = try #require(log.firstMatch(of: /history stored: (\d+) readings, (\d+) quarantined, (\d+) duplicates/))
        let readings = try await DatabaseQueue(path: started.database).read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM reading")! }
        #expect(Int(stored.1)! > 40_000 && readings >= Int(stored.1)!, "130 devices, a reading every 30 minutes for a week")
        #expect(stored.2 == "0" && stored.3 == "0")

        let today = LocalTimeZone.paris.localDate(of: Instant.now())
        let period = "from=\(today.advanced(by: -7))&to=\(today)"
        #expect(try await get(started, "/readyz", as: nil).status == 200)

        // The resident: their own household's figures, with solar shared to it and savings.
        let own = try await get(started, "/api/v1/dwellings/DEMO-OUT-A-01/energy?\(period)", as: .resident)
        #expect(own.status == 200)
        #expect((own.json["consumption_wh"] as? Int ?? 0) > 0)
        #expect((own.json["allocated_wh"] as? Int ?? 0) > 0, "building A has PV: \(own.json)")
        #expect((own.json["savings_cents"] as? Int ?? 0) > 0)
        // ... never a neighbour's.
        #expect(try await get(started, "/api/v1/dwellings/DEMO-OUT-A-02/energy?\(period)", as: .resident).status == 403)
        // ... and their car-share statement: trips charged, payments, a balance.
        let statement = try await get(started, "/api/v1/carshare/members/\(started.residentMember)/statement", as: .resident)
        #expect(statement.status == 200, "\(statement.json)")
        #expect(!(statement.json["lines"] as? [Any] ?? []).isEmpty, "\(statement.json)")

        // The association sees its estate's distribution; the driver their assignments; staff the ledger.
        let estate = try await get(started, "/api/v1/estates/DEMO-OUTREAU/energy?\(period)", as: .association)
        #expect(estate.status == 200)
        // Its buildings have 18 households each, more than the minimum group of 10: the figures
        // show, as whole months, with a rounded median and no minimum or maximum (issue 14, defect 10).
        let totals = estate.json["totals"] as? [String: Any] ?? [:]
        #expect(totals["withheld"] as? Bool == false && (totals["allocated_wh"] as? Int ?? 0) > 0, "\(totals)")
        let households = estate.json["households"] as? [String: Any] ?? [:]
        #expect(households["count"] as? Int == 54 && households["median_cents"] is Int, "\(households)")
        #expect(households["min_cents"] == nil && households["max_cents"] == nil)
        #expect((estate.json["buildings"] as? [[String: Any]] ?? []).allSatisfy { $0["withheld"] as? Bool == false })
        #expect(try await get(started, "/api/v1/estates/DEMO-BOULOGNE/energy?\(period)", as: .association).status == 403)
        let bookings = try await get(started, "/api/v1/carshare/bookings", as: .driver)
        #expect(bookings.status == 200)
        let verify = try await get(started, "/api/v1/carshare/ledger/verify", as: .staff)
        #expect(verify.status == 200 && verify.json["ok"] as? Bool == true, "\(verify.json)")
        #expect(try await get(started, "/api/v1/carshare/ledger/verify", as: .resident).status == 403)

        // Ctrl-C / SIGTERM: the demo stops its hub and its broker and exits cleanly.
        started.child.signal(SIGTERM)
        #expect(try await started.child.waitForExit(timeout: 30) == 0, "\(started.child.log)")
        #expect(started.child.log.contains("[demo] stopped."))

        let beforeKeep = try await DatabaseQueue(path: started.database).read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM reading")! }

        // `demo --keep` on the same file: logins, car-share and readings stay; republished readings are duplicates.
        let directory = URL(fileURLWithPath: started.database).deletingLastPathComponent()
        let again = try HubChild(arguments: ["demo", "--db", started.database, "--keep", "--no-serve", "--weeks", "1", "--step-minutes", "30"],
                                 directory: directory, name: "demo-keep")
        #expect(try await again.waitForExit(timeout: 180) == 0, "\(again.log)")
        #expect(again.log.contains("kept from the earlier run"), "\(again.log)")
        let kept = try #require(again.log.firstMatch(of: /history stored: (\d+) readings, (\d+) quarantined, (\d+) duplicates/))
        #expect(Int(kept.3)! > 40_000, "the week already stored is counted as duplicates, not stored twice")
        let after = try await DatabaseQueue(path: started.database).read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM reading")! }
        #expect(after == beforeKeep + Int(kept.1)!)
    }
}

import ArgumentParser
import CarShare
import CarShareCore
import EnergyCore
import EnergyHub
import Foundation
import Logging
import ServiceLifecycle
import HubCore
import Shared
import UnixSignals
import HubApp

/// `community-hub demo`: the main job with embedded defaults. A local broker, a demo registry of
/// 3 estates and 126 dwellings, simulated meters publishing the last weeks through the real broker,
/// then the HTTP API with demo logins. Everything it creates is marked as simulated (DEMO-).
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the hub on SIMULATED data: local broker, demo registry (3 estates, 126 dwellings), weeks of readings, HTTP API.")

    @Option(name: .customLong("db"), help: "The demo database (recreated at each run unless --keep).")
    var database = "community-hub-demo.sqlite"
    @Option(name: .customLong("mqtt-host"), help: "Use this broker instead of starting one.") var mqttHost = "127.0.0.1"
    @Option(name: .customLong("mqtt-port"), help: "Use the broker on this port instead of starting one.") var mqttPort: Int?
    @Option(name: .customLong("http-host")) var httpHost = "127.0.0.1"
    @Option(name: .customLong("http-port")) var httpPort = 8080
    @Option(help: "How many weeks of history to simulate.") var weeks = 3
    @Option(name: .customLong("step-minutes"), help: "Minutes between two readings of a meter.") var stepMinutes = 10
    @Flag(help: "Keep the existing demo database instead of starting afresh.") var keep = false
    @Flag(name: .customLong("no-serve"), help: "Stop once the history is stored (for scripts).") var noServe = false

    func validate() throws {
        guard (1...12).contains(weeks) else { throw ValidationError("--weeks must be between 1 and 12") }
        guard (1...60).contains(stepMinutes) else { throw ValidationError("--step-minutes must be between 1 and 60") }
    }

    func run() async throws {
        bootstrapLogging(defaultLevel: .warning)
        try await reportingErrors { try await runDemo() }
    }

    func say(_ text: String) { out("[demo] " + text) }

    func runDemo() async throws {
        let logger = Logger(label: "community-hub-demo")
        say("SIMULATED DATA: nothing shown by this demo comes from a real household.")
        if !keep {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: database + suffix) }
        }
        // The broker: the given one, or a mosquitto child process on a free loopback port.
        var broker: BrokerProcess?
        var mqtt = MQTTSettings()
        mqtt.host = mqttHost
        mqtt.clientId = "community-hub-demo"
        if let mqttPort {
            mqtt.port = mqttPort
            say("using the MQTT broker at \(mqttHost):\(mqttPort)")
        } else {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("community-hub-demo-broker-\(getpid())")
            let started = try BrokerProcess(workingDirectory: directory, persistence: false)
            try started.start()
            broker = started
            mqtt.port = started.port
            say("started a mosquitto broker on 127.0.0.1:\(started.port) (log: \(started.logPath))")
        }
        defer { broker?.stop() }

        var settings = HubSettings()
        settings.database.path = database
        settings.database.synchronous = .normal
        settings.mqtt = mqtt
        settings.http.host = httpHost
        settings.http.port = httpPort
        settings.auth.bcryptCost = 8
        let history = DemoData.history(weeks: weeks, stepMinutes: stepMinutes, now: Instant.now())
        let hub = try HubProcess(settings: settings, logger: logger)
        let summary = try RegistryImporter(database: hub.sqlite).importCSV(Data(DemoData.registryCSV(since: history.registrySince).utf8))
        say("demo registry: \(summary)")
        let logins = try await DemoData.createLogins(hub: hub)
        let carShare = try await DemoCarShare.populate(store: SQLiteCarShareStore(database: hub.sqlite, settings: settings.carshare),
                                                      firstDay: history.firstDay, now: Instant.now(), driverLogin: "demo-driver")
        let cashBox = carShare.balances.accounts.first { $0.account == .cash }?.balanceCents ?? .zero
        let owed = carShare.balances.members.reduce(Cents.zero) { $0 + $1.owedCents }
        let added = carShare.added.map { "\($0.trips) trips logged by the volunteer driver, \($0.payments) payments, \($0.bookingsAhead) bookings ahead" }
            ?? "kept from the earlier run"
        say("car-share (SIMULATED): \(carShare.vehicle), \(carShare.members) members of DEMO-OUTREAU, \(added); "
            + "cash box \(cashBox), owed by members \(owed), \(carShare.balances.lines) ledger lines")

        let group = hub.serviceGroup()
        let shutdownDeadline = hub.armShutdownDeadline()
        defer { shutdownDeadline.disarm() }
        let running = Task { try await group.run() }
        let deadline = Date().addingTimeInterval(15)
        while !hub.ingest.isConnected && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        guard hub.ingest.isConnected else {
            await group.triggerGracefulShutdown()
            throw HubError(.unavailable, code: "broker_unreachable", message: "the hub could not connect to the MQTT broker at \(mqtt.host):\(mqtt.port)")
        }

        let publisher = MosquittoClient(settings: mqtt, password: nil, clientId: "demo-meters-\(getpid())", cleanSession: true, logger: logger, onMessage: { _ in })
        try publisher.start()
        while !publisher.isConnected { try await Task.sleep(for: .milliseconds(10)) }
        say("simulating \(weeks) weeks of readings every \(stepMinutes) min for \(history.devices.count) devices "
            + "(\(history.messageCount) messages), published through the broker at QoS 1...")
        let started = ContinuousClock.now
        let published = try await history.publish(with: publisher, progress: { sent in
            let stored = hub.ingest.totals
            say(String(format: "published %d / %d (%.0f%%), stored %d", sent, history.messageCount, 100 * Double(sent) / Double(history.messageCount), stored.stored))
        })
        _ = publisher.waitUntilAcknowledged(timeout: .seconds(60))
        while hub.ingest.totals.messages < published { try await Task.sleep(for: .milliseconds(50)) }
        let elapsed = ContinuousClock.now - started
        let totals = hub.ingest.totals
        say("history stored: \(totals.stored) readings, \(totals.quarantinedTotal) quarantined, \(totals.duplicates) duplicates in \(elapsed.formatted(.units(allowed: [.seconds], fractionalPart: .show(length: 1))))")
        for line in try await DemoReport.lines(hub: hub, from: history.firstDay, to: history.lastDay) { out(line) }

        if noServe {
            publisher.stop()
            await group.triggerGracefulShutdown()
            try await running.value
            return
        }
        let base = "http://\(httpHost):\(httpPort)"
        out("""

            ================================================================
             Community hub demo (SIMULATED DATA) is running: press Ctrl-C to stop.

             Open \(base)/ in a browser (pages in French) and log in with one of these,
             password \(DemoData.password):
               demo-resident     a resident: the household's savings, bookings, asking for a trip
               demo-association  the estate's association: savings, the car's week, members, cash
               demo-driver       a volunteer driver: trips to do, logging a trip or a charge
               demo-staff        the landlord's staff: paper sheets, devices, accounts, statements

             Health:   \(base)/healthz   Ready: \(base)/readyz   Metrics: \(base)/metrics
             Database: \(database)    Broker: \(mqtt.host):\(mqtt.port)
             Demo logins (password \(DemoData.password)) and their bearer tokens:
            """)
        for login in logins { out("   \(login.role.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)) \(login.name.padding(toLength: 16, withPad: " ", startingAt: 0)) \(login.token)") }
        func token(_ role: Role) -> String { logins.first { $0.role == role }!.token }
        let period = "from=\(history.firstDay)&to=\(history.lastDay)"
        out("""
             Try:
               curl -H 'Authorization: Bearer \(token(.resident))' '\(base)/api/v1/dwellings/\(DemoData.residentDwelling)/energy?\(period)'
               curl -H 'Authorization: Bearer \(token(.resident))' '\(base)/api/v1/carshare/members/\(carShare.residentMember)/statement'
               curl -H 'Authorization: Bearer \(token(.association))' '\(base)/api/v1/estates/DEMO-OUTREAU/energy?\(period)'
               curl -H 'Authorization: Bearer \(token(.driver))' '\(base)/api/v1/carshare/bookings'
               curl -H 'Authorization: Bearer \(token(.staff))' '\(base)/api/v1/carshare/reports/balances'
               curl -H 'Authorization: Bearer \(token(.staff))' '\(base)/api/v1/devices/\(DemoData.sampleDevice)/readings?from=\(history.lastDay)'
               curl -H 'Authorization: Bearer \(token(.staff))' '\(base)/api/v1/quarantine'
             Live: every meter keeps publishing a reading each minute.
            ================================================================
            """)
        let live = Task { try await history.publishLive(with: publisher) }
        try await running.value
        live.cancel()
        publisher.stop()
        say("stopped.")
    }
}

/// The demo's registry, simulated devices and logins. Ids start with DEMO so nobody mistakes them.
enum DemoData {
    static let password = "demo-password"
    static let sampleDevice = "demo-box-OUT-A-01"

    struct Building {
        var estate: String
        var id: String
        var dwellings: Int
        /// Installed PV peak power in W, nil without panels.
        var pvPeakW: Double?
    }

    /// 3 estates, 6 buildings, 126 dwellings; PV on 4 buildings.
    static let buildings = [
        Building(estate: "DEMO-OUTREAU", id: "OUT-A", dwellings: 18, pvPeakW: 9_000),
        Building(estate: "DEMO-OUTREAU", id: "OUT-B", dwellings: 18, pvPeakW: 12_000),
        Building(estate: "DEMO-OUTREAU", id: "OUT-C", dwellings: 18, pvPeakW: nil),
        Building(estate: "DEMO-BOULOGNE", id: "BOU-D", dwellings: 24, pvPeakW: 15_000),
        Building(estate: "DEMO-BOULOGNE", id: "BOU-E", dwellings: 24, pvPeakW: nil),
        Building(estate: "DEMO-LE-PORTEL", id: "POR-F", dwellings: 24, pvPeakW: 9_000),
    ]

    static func dwelling(_ building: Building, _ number: Int) -> String { "DEMO-\(building.id)-\(number < 10 ? "0" : "")\(number)" }

    static var devices: [(device: SimulatedDevice, building: Building, dwelling: String?)] {
        var result: [(SimulatedDevice, Building, String?)] = []
        var random = SeededGenerator(seed: 2026)
        for building in buildings {
            if let peak = building.pvPeakW {
                result.append((SimulatedDevice(id: "demo-pv-\(building.id)", kind: .pv, format: .canonical, nominalW: peak * 0.85,
                                               seed: random.next(), initialIndex: WattHours(Int64.random(in: 1_000_000...9_000_000, using: &random))), building, nil))
            }
            for number in 1...building.dwellings {
                let dwelling = dwelling(building, number)
                // Every seventh box is a Tasmota with a device-local clock; the rest speak the project's format.
                let format: DeviceFormat = number % 7 == 0 ? .tasmota : .canonical
                result.append((SimulatedDevice(id: "demo-box-\(building.id)-\(number < 10 ? "0" : "")\(number)", kind: .meter, format: format,
                                               nominalW: Double.random(in: 120...320, using: &random), seed: random.next(),
                                               initialIndex: WattHours(Int64.random(in: 2_000_000...40_000_000, using: &random))), building, dwelling))
            }
        }
        return result
    }

    static func registryCSV(since: LocalDate) -> String {
        var lines = ["estate;building;dwelling;device;kind;format;since;tariff;share"]
        for (device, building, dwelling) in devices {
            let share = dwelling == nil ? "" : DemoData.share(of: building)
            lines.append([building.estate, "DEMO-\(building.id)", dwelling ?? "", device.id, device.kind.rawValue, device.format.rawValue,
                          since.description, dwelling.map(DemoData.tariff(of:)) ?? "", share].joined(separator: ";"))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Most households are on the base tariff; every third has off-peak hours, some of them in the
    /// afternoon (as from November 2025) and some starting at odd minutes.
    static func tariff(of dwelling: String) -> String {
        let number = Int(dwelling.suffix(2)) ?? 0
        switch number % 6 {
        case 1: return "edf-bleu-hphc 22:26-06:26"
        case 4: return "edf-bleu-hphc 02:00-07:00 11:00-14:00"
        default: return "edf-bleu-base"
        }
    }

    /// Equal static shares, used only by buildings set to a static key.
    static func share(of building: Building) -> String {
        let micro = 1_000_000 / Int64(building.dwellings)
        return "0." + String(micro + 1_000_000).dropFirst()
    }

    struct Login {
        var name: String
        var role: Role
        var token: String
    }

    /// The demo resident's dwelling (also a car-share member's).
    static let residentDwelling = "DEMO-OUT-A-01"

    static func createLogins(hub: HubProcess) async throws -> [Login] {
        let users = hub.dependencies.users
        let now = Instant.now()
        let people: [(String, Role, String?, String?)] = [
            ("demo-staff", .staff, nil, nil),
            ("demo-association", .association, nil, "DEMO-OUTREAU"),
            ("demo-resident", .resident, residentDwelling, nil),
            ("demo-driver", .driver, nil, nil),
        ]
        var logins: [Login] = []
        for (name, role, dwelling, estate) in people {
            // `demo --keep` keeps the logins of the earlier run and gives each a fresh token.
            if try await !users.exists(name: name, by: .commandLine) {
                try await users.add(name: name, role: role, dwelling: dwelling, estate: estate, password: password, by: .commandLine, at: now)
            }
            logins.append(Login(name: name, role: role, token: try await users.createToken(for: name, label: "demo", expiresAt: nil, by: .commandLine, at: now)))
        }
        return logins
    }

    static func history(weeks: Int, stepMinutes: Int, now: Instant) -> DemoHistory {
        let step = Int64(stepMinutes) * 60_000
        let end = Instant(millisecondsSince1970: now.millisecondsSince1970 - now.millisecondsSince1970 % step)
        let lastDay = LocalTimeZone.paris.localDate(of: end)
        let firstDay = lastDay.advanced(by: -7 * weeks)
        let start = LocalTimeZone.paris.startOfDay(firstDay)
        return DemoHistory(devices: devices.map(\.device), start: start, end: end, step: step, firstDay: firstDay, lastDay: lastDay,
                           registrySince: firstDay.advanced(by: -1))
    }
}

/// The simulated readings of every device from `start` to `end`, one every `step`.
struct DemoHistory: Sendable {
    var devices: [SimulatedDevice]
    var start: Instant
    var end: Instant
    var step: Int64
    var firstDay: LocalDate
    var lastDay: LocalDate
    var registrySince: LocalDate

    var instants: [Instant] { Array(stride(from: start.millisecondsSince1970, through: end.millisecondsSince1970, by: Int64.Stride(step)).map(Instant.init(millisecondsSince1970:))) }
    var messageCount: Int { instants.count * devices.count }

    /// Publishes the history in time order (all devices at each instant), reporting progress each second.
    func publish(with publisher: MosquittoClient, progress: @escaping @Sendable (Int) -> Void) async throws -> Int {
        let instants = self.instants
        let indexes = devices.map { MeterSimulator.indexes(of: $0, from: start, at: instants) }
        var sent = 0
        var lastReport = ContinuousClock.now
        for (position, instant) in instants.enumerated() {
            for (number, device) in devices.enumerated() {
                let power = MeterSimulator.power(of: device, at: instant)
                let message = MeterSimulator.message(for: device, at: instant, index: indexes[number][position], powerW: power)
                try publisher.publish(topic: message.topic, payload: message.payload)
                sent += 1
            }
            if ContinuousClock.now - lastReport > .seconds(1) {
                lastReport = .now
                progress(sent)
                await Task.yield()
            }
        }
        progress(sent)
        return sent
    }

    /// After the history: each device publishes a reading every minute, in real time, until cancelled.
    func publishLive(with publisher: MosquittoClient) async throws {
        var cursor = end
        var index = devices.map { MeterSimulator.indexes(of: $0, from: start, at: [end])[0] }
        while !Task.isCancelled {
            try await Task.sleep(for: .seconds(60))
            let now = Instant.now()
            for (number, device) in devices.enumerated() {
                index[number] = MeterSimulator.indexes(of: SimulatedDevice(id: device.id, kind: device.kind, format: device.format, nominalW: device.nominalW,
                                                                           seed: device.seed, initialIndex: index[number]), from: cursor, at: [now])[0]
                let message = MeterSimulator.message(for: device, at: now, index: index[number], powerW: MeterSimulator.power(of: device, at: now))
                try publisher.publish(topic: message.topic, payload: message.payload)
            }
            cursor = now
        }
    }
}

/// Writes a line to standard output at once (unbuffered even into a file or a pipe), so progress
/// and the logins show as they happen.
func out(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

import Foundation
import GRDB
import Logging
import ServiceLifecycle
import EnergyCore
import HubCore
import Shared

/// Keeps the savings figures up to date as readings arrive: every `upkeepIntervalMilliseconds`
/// it runs upkeep steps (each its own short write transaction) until nothing is queued. Stops
/// between two steps on graceful shutdown; a step in flight commits or rolls back whole.
public struct SavingsService: Service {
    public let upkeep: any SavingsUpkeepRunner
    let interval: Duration
    let logger: Logger
    let now: @Sendable () -> Instant

    public init(database: HubDatabase, settings: EnergySettings, logger: Logger, now: @escaping @Sendable () -> Instant = Instant.now) throws {
        try self.init(upkeep: SavingsUpkeep(database: database, configuration: try settings.validated()), settings: settings, logger: logger, now: now)
    }

    /// Over either engine's upkeep (on PostgreSQL it runs in the process holding the background lease).
    public init(upkeep: any SavingsUpkeepRunner, settings: EnergySettings, logger: Logger, now: @escaping @Sendable () -> Instant = Instant.now) throws {
        self.upkeep = upkeep
        self.interval = .milliseconds(settings.upkeepIntervalMilliseconds)
        self.logger = logger
        self.now = now
    }

    public func run() async throws {
        let upkeep = self.upkeep
        // Checked in the loop, so a database that fails (a damaged file: issue 14, defect 14) is
        // logged and retried rather than ending the hub's service group, and with it the process.
        do {
            try await cancelWhenGracefulShutdown {
                var settingsChecked = false
                while !Task.isCancelled {
                    var total = UpkeepReport()
                    do {
                        if !settingsChecked {
                            let report = try await upkeep.checkSettings()
                            if report.rebuilt { logger.notice("savings: settings changed, rebuilding every slot figure from the stored readings") }
                            settingsChecked = true
                        }
                        while !Task.isCancelled {
                            let step = try await upkeep.step(now: self.now())
                            total.add(step)
                            if !step.didWork { break }
                        }
                    } catch is CancellationError {
                        throw CancellationError()
                    } catch {
                        // The step rolled back whole; its queue rows are still there for the next pass.
                        logger.error("savings upkeep failed; retrying at the next interval", metadata: ["error": "\(HubPostgres.describe(error))"])
                    }
                    if total.didWork {
                        logger.debug("savings upkeep", metadata: ["device_slots_changed": "\(total.deviceSlotsChanged)", "building_slots": "\(total.buildingSlotsRecomputed)",
                                                                 "days": "\(total.daysRecomputed)", "months_revised": "\(total.monthsRevised)"])
                        for problem in Set(total.problems) { logger.warning("savings: \(problem)") }
                    }
                    try await Task.sleep(for: interval)
                }
            }
        } catch is CancellationError {
            logger.info("savings upkeep stopped")
        }
    }
}

/// A retention purge on one engine: `RetentionService` runs whichever the hub's database is.
public protocol RetentionPurge: Sendable {
    /// Deletes what is past retention at `now`; says what it removed.
    @discardableResult
    func purge(now: Instant) async throws -> SavingsRetention.Report
}

/// Deletes personal data past its retention (energy.md section 7): raw readings, quarantined
/// payloads and slot figures after `retention.rawDays` (2 years by default), daily figures after
/// `retention.dailyDays` (3 years). Works per device, building and dwelling in small
/// transactions so ingest is never held up long.
public struct SavingsRetention: RetentionPurge {
    public let database: HubDatabase
    public let configuration: EnergyConfiguration

    public init(database: HubDatabase, configuration: EnergyConfiguration) {
        self.database = database
        self.configuration = configuration
    }

    /// What a purge removed.
    public struct Report: Sendable, Equatable {
        public var readings = 0
        public var quarantine = 0
        public var slots = 0
        public var days = 0

        mutating func add(_ other: Report) {
            readings += other.readings
            quarantine += other.quarantine
            slots += other.slots
            days += other.days
        }
    }

    /// The first local day still kept for raw and slot data, and for daily figures.
    public func horizons(now: Instant) -> (raw: LocalDate, daily: LocalDate) {
        RetentionPlan.horizons(configuration, now: now)
    }

    @discardableResult
    public func purge(now: Instant) async throws -> Report {
        let plan = RetentionPlan(configuration, now: now)
        var report = Report()
        // Folded readings: one still in the ingest journal is purged once folded, at the next run.
        let devices = try await database.read { db in try plan.devices(SQLiteSession(db)) }
        for device in devices {
            report.add(try await database.write { db in try plan.run(plan.device(device, .sqlite), SQLiteSession(db)) })
        }
        let buildings = try await database.read { db in try plan.buildings(SQLiteSession(db)) }
        for building in buildings {
            report.add(try await database.write { db in try plan.run(plan.building(building), SQLiteSession(db)) })
        }
        report.add(try await database.write { db in try plan.run([plan.quarantine], SQLiteSession(db)) })
        return report
    }
}

/// One purge's horizons and its statements, the same SQL on SQLite and PostgreSQL: each list of
/// statements is one small transaction, and each statement says what its deleted rows count as.
struct RetentionPlan: Sendable {
    /// What a statement's deleted rows count as in the report (nil: not counted).
    enum Counted: Sendable { case readings, quarantine, slots, days }

    struct Statement: Sendable {
        let sql: String
        let arguments: [SQLValue]
        let counted: Counted?
    }

    /// The first instant and slot kept for raw and slot data; the first local day kept for daily figures.
    let rawInstant: Int64
    let rawSlot: Int64
    let daily: LocalDate

    static func horizons(_ configuration: EnergyConfiguration, now: Instant) -> (raw: LocalDate, daily: LocalDate) {
        let today = configuration.zone.localDate(of: now)
        return (today.advanced(by: -configuration.rawRetentionDays), today.advanced(by: -configuration.dailyRetentionDays))
    }

    init(_ configuration: EnergyConfiguration, now: Instant) {
        let (raw, daily) = Self.horizons(configuration, now: now)
        rawInstant = configuration.zone.startOfDay(raw).millisecondsSince1970
        rawSlot = configuration.grid.slot(startingAtOrAfter: configuration.zone.startOfDay(raw))
        self.daily = daily
    }

    /// The devices with folded readings or slot figures before the horizon.
    static func devicesSQL(_ dialect: SQLDialect) -> String {
        "SELECT DISTINCT device_id FROM \(dialect.foldedReadings) WHERE instant < ? UNION SELECT DISTINCT device_id FROM device_slot WHERE slot < ?"
    }

    var devicesArguments: [any SQLArgument] { [rawInstant, rawSlot] }

    static let buildingsSQL = "SELECT id FROM building"

    func devices(_ db: any SQLSession) throws -> [String] {
        try db.rows(Self.devicesSQL(db.dialect), devicesArguments).map { try $0[0].string }
    }

    func buildings(_ db: any SQLSession) throws -> [String] {
        try db.rows(Self.buildingsSQL, []).map { try $0[0].string }
    }

    /// A device's readings (what is left of them on PostgreSQL once whole months are dropped) and slot figures.
    func device(_ device: String, _ dialect: SQLDialect) -> [Statement] {
        [Statement(sql: "DELETE FROM \(dialect.foldedReadings) WHERE device_id = ? AND instant < ?", arguments: [.text(device), .integer(rawInstant)], counted: .readings),
         Statement(sql: "DELETE FROM device_slot WHERE device_id = ? AND slot < ?", arguments: [.text(device), .integer(rawSlot)], counted: .slots)]
    }

    /// A building's slot figures, allocation coefficients and daily figures.
    func building(_ building: String) -> [Statement] {
        ["dwelling_slot", "building_slot"].map {
            Statement(sql: "DELETE FROM \($0) WHERE building_id = ? AND slot < ?", arguments: [.text(building), .integer(rawSlot)], counted: .slots)
        }
        + [Statement(sql: "DELETE FROM allocation_coefficient WHERE building_id = ? AND slot_start < ?", arguments: [.text(building), .integer(rawInstant)], counted: nil)]
        + ["dwelling_day", "building_day"].map {
            Statement(sql: "DELETE FROM \($0) WHERE building_id = ? AND day < ?", arguments: [.text(building), .text(daily.description)], counted: .days)
        }
    }

    var quarantine: Statement {
        Statement(sql: "DELETE FROM quarantine WHERE received_at < ?", arguments: [.integer(rawInstant)], counted: .quarantine)
    }

    /// Runs `statements` in the caller's transaction.
    func run(_ statements: [Statement], _ db: any SQLSession) throws -> SavingsRetention.Report {
        var report = SavingsRetention.Report()
        for statement in statements { report.count(statement.counted, try db.execute(statement.sql, statement.arguments)) }
        return report
    }
}

extension SavingsRetention.Report {
    mutating func count(_ counted: RetentionPlan.Counted?, _ rows: Int) {
        switch counted {
        case .readings: readings += rows
        case .quarantine: quarantine += rows
        case .slots: slots += rows
        case .days: days += rows
        case nil: break
        }
    }
}

/// Runs the retention purge at start and then every `retention.intervalHours`.
public struct RetentionService: Service {
    public let retention: any RetentionPurge
    let interval: Duration
    let logger: Logger

    /// The purge on the SQLite file.
    public init(database: HubDatabase, settings: EnergySettings, logger: Logger) throws {
        try self.init(SavingsRetention(database: database, configuration: try settings.validated()), settings: settings, logger: logger)
    }

    /// Any engine's purge (`PostgresRetention` on the server database).
    public init(_ retention: any RetentionPurge, settings: EnergySettings, logger: Logger) throws {
        _ = try settings.validated()
        self.retention = retention
        self.interval = .seconds(Int64(settings.retention.intervalHours) * 3600)
        self.logger = logger
    }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    let retention = self.retention
                    do {
                        let report = try await retention.purge(now: Instant.now())
                        logger.info("retention purge", metadata: ["readings": "\(report.readings)", "quarantine": "\(report.quarantine)",
                                                                  "slots": "\(report.slots)", "days": "\(report.days)"])
                    } catch {
                        logger.error("retention purge failed; retrying at the next interval", metadata: ["error": "\(error)"])
                    }
                    try await Task.sleep(for: interval)
                }
            }
        } catch is CancellationError {
            logger.info("retention job stopped")
        }
    }
}

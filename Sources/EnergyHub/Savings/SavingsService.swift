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

/// Deletes personal data past its retention (energy.md section 7): raw readings, quarantined
/// payloads and slot figures after `retention.rawDays` (2 years by default), daily figures after
/// `retention.dailyDays` (3 years). Works per device, building and dwelling in small
/// transactions so ingest is never held up long.
public struct SavingsRetention: Sendable {
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
    }

    /// The first local day still kept for raw and slot data, and for daily figures.
    public func horizons(now: Instant) -> (raw: LocalDate, daily: LocalDate) {
        let today = configuration.zone.localDate(of: now)
        return (today.advanced(by: -configuration.rawRetentionDays), today.advanced(by: -configuration.dailyRetentionDays))
    }

    @discardableResult
    public func purge(now: Instant) async throws -> Report {
        var report = Report()
        let (raw, daily) = horizons(now: now)
        let rawInstant = configuration.zone.startOfDay(raw).millisecondsSince1970
        let rawSlot = configuration.grid.slot(startingAtOrAfter: configuration.zone.startOfDay(raw))
        // Folded readings: one still in the ingest journal is purged once folded, at the next run.
        let devices = try await database.read { db in try String.fetchAll(db, sql: "SELECT DISTINCT device_id FROM reading_by_device UNION SELECT DISTINCT device_id FROM device_slot") }
        for device in devices {
            let (readings, slots) = try await database.write { db in
                try db.execute(sql: "DELETE FROM reading_by_device WHERE device_id = ? AND instant < ?", arguments: [device, rawInstant])
                let readings = db.changesCount
                try db.execute(sql: "DELETE FROM device_slot WHERE device_id = ? AND slot < ?", arguments: [device, rawSlot])
                return (readings, db.changesCount)
            }
            report.readings += readings
            report.slots += slots
        }
        let buildings = try await database.read { db in try String.fetchAll(db, sql: "SELECT id FROM building") }
        for building in buildings {
            let (slots, days) = try await database.write { db in
                var slots = 0, days = 0
                for table in ["dwelling_slot", "building_slot"] {
                    try db.execute(sql: "DELETE FROM \(table) WHERE building_id = ? AND slot < ?", arguments: [building, rawSlot])
                    slots += db.changesCount
                }
                try db.execute(sql: "DELETE FROM allocation_coefficient WHERE building_id = ? AND slot_start < ?", arguments: [building, rawInstant])
                for table in ["dwelling_day", "building_day"] {
                    try db.execute(sql: "DELETE FROM \(table) WHERE building_id = ? AND day < ?", arguments: [building, daily.description])
                    days += db.changesCount
                }
                return (slots, days)
            }
            report.slots += slots
            report.days += days
        }
        report.quarantine += try await database.write { db in
            try db.execute(sql: "DELETE FROM quarantine WHERE received_at < ?", arguments: [rawInstant])
            return db.changesCount
        }
        return report
    }
}

/// Runs the retention purge at start and then every `retention.intervalHours`.
public struct RetentionService: Service {
    public let retention: SavingsRetention
    let interval: Duration
    let logger: Logger

    public init(database: HubDatabase, settings: EnergySettings, logger: Logger) throws {
        self.retention = SavingsRetention(database: database, configuration: try settings.validated())
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

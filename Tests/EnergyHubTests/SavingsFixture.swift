import Foundation
import GRDB
import HubTestSupport
import HubCore
import Shared
@testable import EnergyCore
@testable import EnergyHub

/// A real SQLite hub with the savings schema, fed through the real ingest processor.
struct SavingsFixture {
    let database: HubDatabase
    let processor: IngestProcessor
    let configuration: EnergyConfiguration
    var upkeep: SavingsUpkeep { SavingsUpkeep(database: database, configuration: configuration) }
    var reports: EnergyReports { EnergyReports(database: database, configuration: configuration) }
    var admin: EnergyAdmin { EnergyAdmin(database: database, configuration: configuration) }

    init(registry: String, settings: EnergySettings = EnergySettings()) throws {
        database = try TestSupport.database(extraSchemas: [SavingsSchema.register])
        _ = try RegistryImporter(database: database).importCSV(Data(registry.utf8))
        processor = try IngestProcessor(settings: IngestSettings(), store: SQLiteReadingStore(database: database))
        try processor.loadState(at: Instant.parseRFC3339("2026-01-01T00:00:00Z")!)
        configuration = try settings.validated()
    }

    static func at(_ text: String) -> Instant { Instant.parseRFC3339(text)! }

    static func canonical(_ instant: Instant, _ energy: Int64) -> String { "{\"ts\":\"\(instant.rfc3339)\",\"energy_wh\":\(energy)}" }

    /// Publishes canonical readings of a device, one message each, received a second after.
    @discardableResult
    func publish(_ device: String, _ readings: [(String, Int64)]) throws -> BatchReport {
        var report = BatchReport()
        for (time, energy) in readings {
            let instant = SavingsFixture.at(time)
            report.add(try processor.process([IncomingMessage(topic: "meters/\(device)/reading", payload: Array(SavingsFixture.canonical(instant, energy).utf8),
                                                              receivedAt: instant.adding(seconds: 1))]))
        }
        return report
    }

    /// Publishes a buffered array of readings in one message, received at `receivedAt`.
    @discardableResult
    func publishBuffer(_ device: String, _ readings: [(Instant, Int64)], receivedAt: Instant) throws -> BatchReport {
        let payload = "[" + readings.map { SavingsFixture.canonical($0.0, $0.1) }.joined(separator: ",") + "]"
        return try processor.process([IncomingMessage(topic: "meters/\(device)/reading", payload: Array(payload.utf8), receivedAt: receivedAt)])
    }

    @discardableResult
    func update(now: String) throws -> UpkeepReport { try upkeep.bringUpToDate(now: SavingsFixture.at(now)) }

    func deviceSlots(_ device: String) throws -> [Int64] {
        try database.pool.read { db in try Int64.fetchAll(db, sql: "SELECT energy_wh FROM device_slot WHERE device_id = ? ORDER BY slot", arguments: [device]) }
    }

    func date(_ text: String) -> LocalDate { LocalDate(parsing: text)! }
}

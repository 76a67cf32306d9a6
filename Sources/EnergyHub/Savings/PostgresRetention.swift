import EnergyCore
import HubCore
import Logging
import PostgresNIO
import Shared

/// Retention on the server database: the same horizons, tables and counts as `SavingsRetention`,
/// but raw readings go a month at a time. Each partition of `reading` (a UTC month) that ends at
/// or before the raw horizon is dropped whole, its rows counted first; the month straddling the
/// horizon loses its earlier rows device by device, as SQLite's readings do. Figures and
/// quarantine go through the same statements as on SQLite, per building in small transactions.
public struct PostgresRetention: RetentionPurge {
    public let database: HubPostgres
    public let configuration: EnergyConfiguration
    /// How long dropping a partition may wait for its lock on `reading`: while it waits, every new
    /// statement on `reading` (ingest's inserts) queues behind it. A month not dropped in time is
    /// emptied row by row instead, and dropped at the next run.
    public var lockTimeout: Duration = .seconds(5)

    public init(database: HubPostgres, configuration: EnergyConfiguration) {
        self.database = database
        self.configuration = configuration
    }

    /// A partition of `reading` and the instants it holds, `from` included, `to` excluded.
    public struct Partition: Sendable, Equatable {
        public var name: String
        public var from: Int64
        public var to: Int64
    }

    @discardableResult
    public func purge(now: Instant) async throws -> SavingsRetention.Report {
        let plan = RetentionPlan(configuration, now: now)
        var report = SavingsRetention.Report()
        for partition in try await partitions() where partition.to <= plan.rawInstant {
            if let rows = try await drop(partition) { report.readings += rows }
        }
        let logger = database.logger
        let devices = try await database.read { connection in
            try await connection.rows(sql: RetentionPlan.devicesSQL(.postgres), plan.devicesArguments, logger: logger).map { try $0[0].string }
        }
        for device in devices {
            report.add(try await database.transaction { connection in try await run(plan.device(device, .postgres), connection) })
        }
        let buildings = try await database.read { connection in
            try await connection.rows(sql: RetentionPlan.buildingsSQL, [], logger: logger).map { try $0[0].string }
        }
        for building in buildings {
            report.add(try await database.transaction { connection in try await run(plan.building(building), connection) })
        }
        report.add(try await database.transaction { connection in try await run([plan.quarantine], connection) })
        return report
    }

    /// Every partition of `reading`, oldest first, with its bounds as the server states them.
    public func partitions() async throws -> [Partition] {
        let logger = database.logger
        let rows = try await database.read { connection in
            try await connection.rows(sql: """
                SELECT i.inhrelid::regclass::text, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = 'reading'::regclass
                """, [], logger: logger)
        }
        return try rows.compactMap { row in Self.partition(name: try row[0].string, bound: try row[1].string) }.sorted { $0.from < $1.from }
    }

    /// Reads `FOR VALUES FROM ('1759276800000') TO ('1761955200000')`; nil for any other bound
    /// (a default partition is never dropped: its rows go row by row).
    static func partition(name: String, bound: String) -> Partition? {
        guard bound.hasPrefix("FOR VALUES FROM ("), !bound.contains("MINVALUE"), !bound.contains("MAXVALUE") else { return nil }
        let numbers = bound.split { !($0.isNumber || $0 == "-") }.compactMap { Int64($0) }
        guard numbers.count == 2, numbers[0] < numbers[1] else { return nil }
        return Partition(name: name, from: numbers[0], to: numbers[1])
    }

    /// Drops a partition in a transaction of its own (the drop locks `reading` until it commits),
    /// and returns how many readings it held; nil when its lock was not granted in time.
    func drop(_ partition: Partition) async throws -> Int? {
        let logger = database.logger
        do {
            return try await database.transaction { connection in
                try await connection.query(PostgresQuery(unsafeSQL: "SET LOCAL lock_timeout = '\(lockTimeout.components.seconds * 1000 + lockTimeout.components.attoseconds / 1_000_000_000_000_000)ms'"),
                                           logger: logger)
                // The name is the server's own, quoted by regclass.
                let rows = try await connection.scalar(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(partition.name)"), as: Int64.self, logger: logger) ?? 0
                try await connection.query(PostgresQuery(unsafeSQL: "DROP TABLE \(partition.name)"), logger: logger)
                return Int(rows)
            }
        } catch where HubPostgres.sqlState(error) == "55P03" {
            logger.warning("retention: \(partition.name) was not dropped (its lock waited too long); its readings go row by row, the table at the next run")
            return nil
        }
    }

    func run(_ statements: [RetentionPlan.Statement], _ connection: PostgresConnection) async throws -> SavingsRetention.Report {
        var report = SavingsRetention.Report()
        for statement in statements {
            report.count(statement.counted, try await connection.execute(sql: statement.sql, statement.arguments, logger: database.logger))
        }
        return report
    }
}

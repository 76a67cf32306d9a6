import Foundation
import GRDB

/// The hub's SQLite database: one file, WAL, named append-only migrations registered by each module.
public struct HubDatabase: Sendable {
    /// A module's schema: registers its named migrations, in order, on the shared migrator.
    public typealias Schema = @Sendable (inout DatabaseMigrator) -> Void

    public let pool: DatabasePool
    public let path: String

    /// How durable a commit is. `full` syncs the WAL on every commit (nothing committed is lost on
    /// power loss); `normal` survives a process crash but may lose the last commits on power loss.
    public enum Synchronous: String, Sendable, Codable {
        case full, normal
    }

    /// Opens (creating if needed) the database and applies every migration not yet applied.
    public static func open(path: String, schemas: [Schema], synchronous: Synchronous = .full, readers: Int = 4) throws -> HubDatabase {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)
        configuration.maximumReaderCount = readers
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous == .full ? "FULL" : "NORMAL")")
        }
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        if !FileManager.default.fileExists(atPath: directory) {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw HubError.configuration("cannot open the database at \(path): \(error)")
        }
        var migrator = DatabaseMigrator()
        for schema in schemas { schema(&migrator) }
        try migrator.migrate(pool)
        return HubDatabase(pool: pool, path: path)
    }

    /// True when a write transaction can be taken and committed now (used by `/readyz`).
    public func isWritable() async -> Bool {
        do {
            try await pool.write { db in
                try db.execute(sql: "INSERT INTO health_probe (id, checked_at) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET checked_at = excluded.checked_at",
                               arguments: [Instant.now().millisecondsSince1970])
            }
            return true
        } catch {
            return false
        }
    }
}

/// The schema every module builds on: the estates, buildings and dwellings of the registry, and
/// the users, roles and tokens that guard the API.
public enum SharedSchema {
    public static let register: HubDatabase.Schema = { migrator in
        migrator.registerMigration("shared-1-registry-and-users") { db in
            try db.execute(sql: """
                CREATE TABLE health_probe (
                    id INTEGER PRIMARY KEY,
                    checked_at INTEGER NOT NULL
                ) STRICT;
                CREATE TABLE estate (
                    id TEXT PRIMARY KEY NOT NULL
                ) STRICT;
                CREATE TABLE building (
                    id TEXT PRIMARY KEY NOT NULL,
                    estate_id TEXT NOT NULL REFERENCES estate(id)
                ) STRICT;
                CREATE INDEX building_by_estate ON building(estate_id);
                CREATE TABLE dwelling (
                    id TEXT PRIMARY KEY NOT NULL,
                    building_id TEXT NOT NULL REFERENCES building(id)
                ) STRICT;
                CREATE INDEX dwelling_by_building ON dwelling(building_id);
                CREATE TABLE hub_user (
                    name TEXT PRIMARY KEY NOT NULL,
                    role TEXT NOT NULL CHECK (role IN ('staff', 'association', 'driver', 'resident')),
                    dwelling_id TEXT REFERENCES dwelling(id),
                    estate_id TEXT REFERENCES estate(id),
                    password_hash TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    CHECK ((role = 'resident') = (dwelling_id IS NOT NULL)),
                    CHECK ((role = 'association') = (estate_id IS NOT NULL))
                ) STRICT;
                CREATE TABLE api_token (
                    token_hash TEXT PRIMARY KEY NOT NULL,
                    user_name TEXT NOT NULL REFERENCES hub_user(name),
                    label TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER,
                    revoked_at INTEGER
                ) STRICT;
                CREATE INDEX api_token_by_user ON api_token(user_name);
                """)
        }
    }
}

extension Database {
    /// True when the query returns at least one row.
    public func exists(_ sql: String, _ arguments: any DatabaseValueConvertible...) throws -> Bool {
        try Row.fetchOne(self, sql: sql, arguments: StatementArguments(arguments.map { $0 as (any DatabaseValueConvertible)? })) != nil
    }
}

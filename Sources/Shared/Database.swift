import Dispatch
import Foundation
import GRDB
import GRDBSQLite
import HubCore
import Logging
import Synchronization

/// The hub's SQLite database: one file, WAL, named append-only migrations registered by each module.
public struct HubDatabase: Sendable {
    /// A module's schema: registers its named migrations, in order, on the shared migrator.
    public typealias Schema = @Sendable (inout DatabaseMigrator) -> Void

    public let pool: DatabasePool
    public let path: String
    /// When a write last succeeded for `isWritable` (shared by the copies of this value).
    let probe = WriteProbe()
    /// Whether the file was found damaged (start-up check, or a "malformed" error since): `/readyz`
    /// answers 503 naming it (shared by the copies of this value).
    public let health = DatabaseHealth()

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
            // The WAL is checkpointed every 1,000 pages (SQLite's default); without a limit its file
            // keeps the size of its largest stretch between checkpoints forever (issue 14, defect 5:
            // 27 MB beside a 5 MB database after a clean stop). With one, each checkpoint that
            // empties the WAL cuts the file back to this size; `truncateWAL` empties it at shutdown.
            try db.execute(sql: "PRAGMA journal_size_limit = \(HubDatabase.walSizeLimitBytes)")
        }
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        if !FileManager.default.fileExists(atPath: directory) {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch where DatabaseHealth.isCorruption(error) {
            // Its schema cannot even be read: nothing can be served from it.
            throw HubError.configuration("the database file \(path) is damaged (\(error)): run community-hub db check, then restore the last backup (community-hub restore FILE)")
        } catch {
            throw HubError.configuration("cannot open the database at \(path): \(error)")
        }
        var migrator = DatabaseMigrator()
        for schema in schemas { schema(&migrator) }
        do {
            try migrator.migrate(pool)
        } catch where DatabaseHealth.isCorruption(error) {
            throw HubError.configuration("the database file \(path) is damaged (\(error)): run community-hub db check, then restore the last backup (community-hub restore FILE)")
        }
        return HubDatabase(pool: pool, path: path)
    }

    /// The size the WAL file is cut back to after a checkpoint has copied it all (it grows past it
    /// only for a transaction larger than this, such as a fold of the reading journal).
    public static let walSizeLimitBytes = 16 * 1024 * 1024

    /// Copies the whole WAL into the database file and truncates it to zero bytes (a clean stop:
    /// the files left behind are the database and an empty WAL). Returns false when a reader kept
    /// part of it from being copied (nothing is lost: SQLite copies it at the next checkpoint).
    @available(*, noasync, message: "blocks a thread of Swift's pool: call it from BlockingWork.run")
    @discardableResult
    public func truncateWALBlocking() throws -> Bool {
        try writeWithoutTransactionBlocking { db in
            let row = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)")
            return (row?[0] as Int?) == 0
        }
    }

    /// True when a write transaction can be taken and committed now (used by `/readyz`).
    /// How many times `isWritable` actually wrote since this database was opened.
    public var writeProbes: Int { probe.count }

    /// A success stands for `maxAge`: a load balancer or a monitor polling `/readyz` many times a
    /// second does not put a synced write beside the ingest writer each time (issue 14, defect 15).
    /// A failure is never remembered: the next call writes again.
    public func isWritable(maxAge: Duration = .seconds(2)) async -> Bool {
        if probe.succeededWithin(maxAge) { return true }
        do {
            try await write { db in
                try db.execute(sql: "INSERT INTO health_probe (id, checked_at) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET checked_at = excluded.checked_at",
                               arguments: [Instant.now().millisecondsSince1970])
            }
            probe.succeeded()
            return true
        } catch {
            return false
        }
    }
}

/// The time of the last successful write probe.
final class WriteProbe: @unchecked Sendable {
    private let lock = NSLock()
    private var last: ContinuousClock.Instant?
    private var writes = 0

    func succeeded() { lock.withLock { last = .now; writes += 1 } }

    /// How many probes wrote (what a test of the cache counts).
    var count: Int { lock.withLock { writes } }

    func succeededWithin(_ age: Duration) -> Bool {
        lock.withLock { last.map { ContinuousClock.now - $0 < age } ?? false }
    }
}

// MARK: - Access: async on Swift's pool, blocking only off it

/// Every database access of the hub goes through these methods (a test keeps `.pool` out of the
/// rest of `Sources`). The async ones wait for a connection without holding one of the few threads
/// of Swift's cooperative pool: a synchronous GRDB call there blocks that thread while it waits for
/// a reader, and with every thread so blocked the readers held by suspended tasks are never given
/// back, so the whole process freezes (issue 16: eight concurrent requests). The blocking ones are
/// for the ingest writer's own thread, the CLI and tests; the compiler refuses them in async code,
/// and `BlockingAccessGuard` catches them in synchronous code reached from a request or a service.
extension HubDatabase {
    /// Reads in one transaction, suspending (not blocking) while no reader connection is free.
    public func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do { return try await pool.read(body) } catch { throw health.noticing(error) }
    }

    /// Writes in one transaction, suspending while another write holds the writer.
    public func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do { return try await pool.write(body) } catch { throw health.noticing(error) }
    }

    /// Writes with the transaction managed by `body` (e.g. `BEGIN IMMEDIATE`).
    public func writeWithoutTransaction<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do { return try await pool.writeWithoutTransaction(body) } catch { throw health.noticing(error) }
    }

    /// A blocking read: for threads of the hub's own (the ingest writer), the CLI and tests.
    @available(*, noasync, message: "blocks a thread of Swift's pool and can freeze the server: use `try await database.read`")
    public func readBlocking<T>(_ body: (Database) throws -> T) throws -> T {
        BlockingAccessGuard.check("read")
        do { return try pool.read(body) } catch { throw health.noticing(error) }
    }

    /// A blocking write transaction: for the ingest writer's thread, the CLI and tests.
    @available(*, noasync, message: "blocks a thread of Swift's pool and can freeze the server: use `try await database.write`")
    public func writeBlocking<T>(_ body: (Database) throws -> T) throws -> T {
        BlockingAccessGuard.check("write")
        do { return try pool.write(body) } catch { throw health.noticing(error) }
    }

    /// A blocking write whose transaction `body` manages.
    @available(*, noasync, message: "blocks a thread of Swift's pool and can freeze the server: use `try await database.writeWithoutTransaction`")
    public func writeWithoutTransactionBlocking<T>(_ body: (Database) throws -> T) throws -> T {
        BlockingAccessGuard.check("writeWithoutTransaction")
        do { return try pool.writeWithoutTransaction(body) } catch { throw health.noticing(error) }
    }

    /// Closes every connection (benchmarks that delete the file afterwards).
    public func close() throws { try pool.close() }

    /// Bytes the write connection has written to the WAL since it was opened: SQLite's own count
    /// of the pages it wrote (`SQLITE_DBSTATUS_CACHE_WRITE`), each a WAL frame of a page and its
    /// 24-byte header. Checkpoints (copies into the database file) are not counted.
    @available(*, noasync, message: "blocks a thread of Swift's pool: call it from BlockingWork.run")
    public func walBytesWrittenBlocking() throws -> Int {
        try writeWithoutTransactionBlocking { db in
            var pages: Int32 = 0
            var highwater: Int32 = 0
            guard sqlite3_db_status(db.sqliteConnection, SQLITE_DBSTATUS_CACHE_WRITE, &pages, &highwater, 0) == SQLITE_OK else { return 0 }
            let pageSize = try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
            return Int(pages) * (pageSize + 24)
        }
    }
}

// MARK: - Integrity (issue 14, defect 14)

/// What the hub knows of its database file's integrity: damaged or not, and how many corruption
/// errors it has seen ("database disk image is malformed", SQLITE_CORRUPT, SQLITE_NOTADB), from the
/// start-up check or from any access since. Once damaged it stays so until the process restarts
/// (on a restored or repaired file): `/readyz` answers 503 naming it.
public final class DatabaseHealth: @unchecked Sendable {
    private let lock = NSLock()
    private var firstProblem: String?
    private var errors = 0
    private var observer: (@Sendable (_ problem: String, _ count: Int) -> Void)?

    public init() {}

    /// The first problem seen, nil while the file is believed sound.
    public var corruption: String? { lock.withLock { firstProblem } }
    /// Corruption errors seen since the process started.
    public var corruptionErrors: Int { lock.withLock { errors } }

    /// Called on each corruption error with how many there have been (1 for the one that marks the
    /// file damaged): the hub logs and counts them.
    public func onCorruption(_ observer: @escaping @Sendable (_ problem: String, _ count: Int) -> Void) {
        lock.withLock { self.observer = observer }
    }

    public func recordCorruption(_ problem: String) {
        let (observer, count) = lock.withLock { () -> ((@Sendable (String, Int) -> Void)?, Int) in
            errors += 1
            if firstProblem == nil { firstProblem = problem }
            return (self.observer, errors)
        }
        observer?(problem, count)
    }

    /// True for SQLite's "the file is damaged" errors.
    public static func isCorruption(_ error: any Error) -> Bool {
        guard let error = error as? DatabaseError else { return false }
        return error.resultCode.primaryResultCode == .SQLITE_CORRUPT || error.resultCode.primaryResultCode == .SQLITE_NOTADB
    }

    /// Records `error` when it says the file is damaged; returns it unchanged to be thrown on.
    func noticing(_ error: any Error) -> any Error {
        if Self.isCorruption(error) { recordCorruption(String(describing: error)) }
        return error
    }
}

/// Set once, read from another thread.
final class DoneFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func done() { lock.withLock { value = true } }
    var isDone: Bool { lock.withLock { value } }
}

/// The outcome of SQLite's integrity check on a file.
public struct IntegrityReport: Sendable, Equatable {
    /// What the check found wrong (empty when the file is sound), at most `IntegrityCheck.maxProblems`.
    public var problems: [String]
    /// True when the time bound stopped the check before the end (nothing found so far).
    public var interrupted: Bool
    public var seconds: Double
    /// `quick_check` (pages, records and their order, not the indexes' contents) or `integrity_check` (everything).
    public var kind: String

    public var ok: Bool { problems.isEmpty && !interrupted }
}

public enum IntegrityCheck {
    public static let maxProblems = 20

    /// Runs `PRAGMA quick_check` (or `integrity_check` when `full`) on `db`; a SQLite error that
    /// says the file is damaged (it can stop the check itself) is a problem, not a failure.
    static func run(_ db: Database, full: Bool) throws -> [String] {
        do {
            let rows = try String.fetchAll(db, sql: "PRAGMA \(full ? "integrity_check" : "quick_check")(\(maxProblems))")
            return rows == ["ok"] ? [] : rows
        } catch let error as DatabaseError where DatabaseHealth.isCorruption(error) {
            return [error.message ?? "\(error)"]
        }
    }
}

extension HubDatabase {
    /// Checks the file's integrity on a reader (WAL: ingest goes on meanwhile), interrupted after
    /// `timeout` if given. A damaged file is recorded in `health`.
    @available(*, noasync, message: "a check of a large file takes seconds: run it through BlockingWork.run")
    public func checkIntegrityBlocking(full: Bool = false, timeout: Duration? = nil) throws -> IntegrityReport {
        let started = ContinuousClock.now
        let finished = DoneFlag()
        if let timeout {
            let pool = self.pool
            DispatchQueue.global().asyncAfter(deadline: .now() + Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18) {
                if !finished.isDone { pool.interrupt() }
            }
        }
        defer { finished.done() }
        var report: IntegrityReport
        do {
            let problems = try pool.read { db in try IntegrityCheck.run(db, full: full) }
            report = IntegrityReport(problems: problems, interrupted: false, seconds: 0, kind: full ? "integrity_check" : "quick_check")
        } catch let error as DatabaseError where error.resultCode == .SQLITE_INTERRUPT {
            report = IntegrityReport(problems: [], interrupted: true, seconds: 0, kind: full ? "integrity_check" : "quick_check")
        } catch let error where DatabaseHealth.isCorruption(error) {
            report = IntegrityReport(problems: ["\(error)"], interrupted: false, seconds: 0, kind: full ? "integrity_check" : "quick_check")
        }
        let elapsed = ContinuousClock.now - started
        report.seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        if let first = report.problems.first { health.recordCorruption("\(report.kind): \(first)") }
        return report
    }

    /// Checks a database file without opening it as the hub does (no migration, nothing written): for
    /// `community-hub db check` on a file that may not even open, and for a backup before it is
    /// restored. A file that is not a database, or cannot be read, is a problem.
    public static func checkFile(path: String, full: Bool = false) throws -> IntegrityReport {
        guard FileManager.default.fileExists(atPath: path) else {
            throw HubError.notFound(field: "database", "no database file at \(path)")
        }
        let started = ContinuousClock.now
        var problems: [String]
        do {
            // Not opened read-only: SQLite cannot open a WAL file read-only without its -shm (a
            // copied file has none); nothing is written.
            let queue = try DatabaseQueue(path: path)
            problems = try queue.read { db in try IntegrityCheck.run(db, full: full) }
            try queue.close()
        } catch let error where DatabaseHealth.isCorruption(error) {
            problems = ["\(error)"]
        }
        let elapsed = ContinuousClock.now - started
        return IntegrityReport(problems: problems, interrupted: false,
                               seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
                               kind: full ? "integrity_check" : "quick_check")
    }
}

// MARK: - Backup and restore (issue 14, "Also build")

extension HubDatabase {
    /// Copies the whole database to a new file at `path` through SQLite's online backup API, in one
    /// step under one read transaction: a consistent snapshot as of its start, while the hub (this
    /// or another process) goes on writing in WAL mode. `path` must not exist.
    @available(*, noasync, message: "copies the whole file: run it through BlockingWork.run or from the CLI")
    public func backupBlocking(to path: String) throws {
        guard !FileManager.default.fileExists(atPath: path) else { throw HubError.conflict(field: "out", code: "exists", "\(path) already exists") }
        let destination = try DatabaseQueue(path: path)
        do { try pool.backup(to: destination) } catch { throw health.noticing(error) }
        try destination.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = DELETE") }
        try destination.close()
    }

    /// Replaces this database's content with `source`'s through SQLite's backup API, in one write
    /// transaction: other connections (a hub still running on it) see the old content or the new,
    /// never a mix.
    @available(*, noasync, message: "copies the whole file: run it through BlockingWork.run or from the CLI")
    public func restoreBlocking(from source: String) throws {
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: source, configuration: configuration)
        defer { try? queue.close() }
        do { try queue.backup(to: pool) } catch { throw health.noticing(error) }
    }

    /// Reads a database file that is not the hub's own (a backup), without migrating it (nothing
    /// is written; not opened read-only, which a WAL file without its -shm refuses).
    public static func readFile<T>(path: String, _ body: (Database) throws -> T) throws -> T {
        let queue = try DatabaseQueue(path: path)
        defer { try? queue.close() }
        return try queue.read(body)
    }
}

/// An advisory lock on `<database>.lock`, held by `community-hub serve` for as long as it runs, so
/// that `community-hub restore` knows a hub is using the database (the kernel drops it when the
/// process ends, however it ends).
public final class RunningLock: @unchecked Sendable {
    private let descriptor: Int32
    public let path: String

    private init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
    }

    public static func path(database: String) -> String { database + ".lock" }

    /// Takes the lock of this database; nil when another process holds it.
    public static func acquire(database: String) throws -> RunningLock? {
        let path = path(database: database)
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else { throw HubError.configuration("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            return nil
        }
        // The holder's process id, for the message of whoever finds it taken.
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(descriptor, 0)
        _ = text.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        return RunningLock(descriptor: descriptor, path: path)
    }

    /// The process id written by the holder, if it can be read.
    public static func holder(database: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path(database: database)) else { return nil }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }

    /// Held until the process ends (closing the descriptor would drop it).
    deinit { close(descriptor) }
}

/// Catches a blocking database call made, through synchronous code, by a request handler or a
/// long-running service, where the compiler's `noasync` cannot see it: the router and the
/// services run inside `BlockingAccessGuard.serving`, and a blocking call there is a bug. Debug
/// builds (every test) stop on it with the place named; release builds log it once per kind.
public enum BlockingAccessGuard {
    @TaskLocal public static var isServing = false

    /// Runs `body` as part of the server: blocking database calls inside it are reported.
    public static func serving<T: Sendable>(_ body: () async throws -> T) async rethrows -> T {
        try await $isServing.withValue(true) { try await body() }
    }

    static let reported = Mutex<Set<String>>([])

    public static func check(_ kind: String, file: StaticString = #fileID, line: UInt = #line) {
        guard isServing else { return }
        #if DEBUG
        fatalError("blocking database \(kind) on Swift's cooperative pool while serving: use the async variant or run it off the pool (BlockingWork.run)")
        #else
        let first = reported.withLock { $0.insert(kind).inserted }
        if first { Logger(label: "community-hub").error("blocking database call on Swift's cooperative pool while serving", metadata: ["kind": "\(kind)"]) }
        #endif
    }
}

/// Runs blocking work (a bcrypt hash, a thread join, a synchronous store of the ingest side) on a
/// thread of its own, so no thread of Swift's cooperative pool waits on it.
public enum BlockingWork {
    public static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let thread = Thread { continuation.resume(with: Result { try work() }) }
            thread.start()
        }
    }

    public static func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            let thread = Thread { continuation.resume(returning: work()) }
            thread.start()
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
        // Issue 9: a first password printed on a sheet by staff is changed at the first login.
        migrator.registerMigration("shared-2-password-change") { db in
            try db.execute(sql: "ALTER TABLE hub_user ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0 CHECK (must_change_password IN (0, 1))")
        }
    }
}

extension Database {
    /// True when the query returns at least one row.
    public func exists(_ sql: String, _ arguments: any DatabaseValueConvertible...) throws -> Bool {
        try Row.fetchOne(self, sql: sql, arguments: StatementArguments(arguments.map { $0 as (any DatabaseValueConvertible)? })) != nil
    }
}

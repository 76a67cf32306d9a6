import Foundation
import GRDB
import HubCore
import Logging
import PostgresNIO

/// A value going into or coming out of SQL, the same for both engines.
public enum SQLValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])

    public var int64: Int64 {
        get throws {
            guard case .integer(let value) = self else { throw HubError.configuration("SQL: expected an integer, found \(self)") }
            return value
        }
    }

    public var optionalInt64: Int64? {
        get throws { self == .null ? nil : try int64 }
    }

    public var string: String {
        get throws {
            guard case .text(let value) = self else { throw HubError.configuration("SQL: expected text, found \(self)") }
            return value
        }
    }

    public var optionalString: String? {
        get throws { self == .null ? nil : try string }
    }
}

/// What can be bound to a `?` of an `SQLSession` statement.
public protocol SQLArgument {
    var sqlValue: SQLValue { get }
}

extension Int64: SQLArgument { public var sqlValue: SQLValue { .integer(self) } }
extension Int: SQLArgument { public var sqlValue: SQLValue { .integer(Int64(self)) } }
extension UInt8: SQLArgument { public var sqlValue: SQLValue { .integer(Int64(self)) } }
extension String: SQLArgument { public var sqlValue: SQLValue { .text(self) } }
extension Double: SQLArgument { public var sqlValue: SQLValue { .real(self) } }
extension SQLValue: SQLArgument { public var sqlValue: SQLValue { self } }
extension Optional: SQLArgument where Wrapped: SQLArgument {
    public var sqlValue: SQLValue { self?.sqlValue ?? .null }
}

/// Which engine a statement goes to, for the few places their SQL differs.
public enum SQLDialect: Sendable {
    case sqlite, postgres

    /// The smallest of several values: SQLite's scalar MIN, PostgreSQL's LEAST.
    public func least(_ values: String...) -> String {
        (self == .sqlite ? "MIN(" : "LEAST(") + values.joined(separator: ", ") + ")"
    }

    public func greatest(_ values: String...) -> String {
        (self == .sqlite ? "MAX(" : "GREATEST(") + values.joined(separator: ", ") + ")"
    }

    /// The table holding every folded reading: SQLite's device-ordered table beside its journal,
    /// PostgreSQL's partitioned table.
    public var foldedReadings: String { self == .sqlite ? "reading_by_device" : "reading" }

    /// Run first by each step of the savings upkeep: on PostgreSQL, the changed ranges the ingest
    /// writers appended to `reading_change_log` are merged into `reading_change` (writers never
    /// update a row the upkeep holds, so ingest never waits for it); SQLite's fold writes
    /// `reading_change` itself.
    public var readingChangeIntake: String? {
        guard self == .postgres else { return nil }
        return """
            WITH taken AS (DELETE FROM reading_change_log RETURNING device_id, from_instant, to_instant)
            INSERT INTO reading_change (device_id, from_instant, to_instant)
            SELECT device_id, MIN(from_instant), MAX(to_instant) FROM taken GROUP BY device_id ORDER BY device_id
            ON CONFLICT (device_id) DO UPDATE SET from_instant = LEAST(reading_change.from_instant, excluded.from_instant),
                                                  to_instant = GREATEST(reading_change.to_instant, excluded.to_instant)
            """
    }
}

/// One engine's connection inside a transaction, as the synchronous code that runs on both sees it
/// (the savings upkeep): statements with `?` placeholders, rows of `SQLValue`s. Written in the
/// SQL both engines accept; where they differ, `dialect` says which to write. Sums are cast to
/// BIGINT (PostgreSQL's SUM of bigint is numeric). Blocking: for a thread of its own, never
/// Swift's pool.
public protocol SQLSession {
    var dialect: SQLDialect { get }
    func rows(_ sql: String, _ arguments: [any SQLArgument]) throws -> [[SQLValue]]
    /// Runs a statement; returns how many rows it changed.
    @discardableResult
    func execute(_ sql: String, _ arguments: [any SQLArgument]) throws -> Int
}

extension SQLSession {
    public func rows(_ sql: String, _ arguments: any SQLArgument...) throws -> [[SQLValue]] { try rows(sql, arguments) }

    /// The first column of the first row (nil when there is no row or it is NULL).
    public func int64(_ sql: String, _ arguments: any SQLArgument...) throws -> Int64? {
        try rows(sql, arguments).first?.first?.optionalInt64
    }

    public func string(_ sql: String, _ arguments: any SQLArgument...) throws -> String? {
        try rows(sql, arguments).first?.first?.optionalString
    }

    @discardableResult
    public func execute(_ sql: String, _ arguments: any SQLArgument...) throws -> Int { try execute(sql, arguments) }
}

/// SQLite through GRDB, in the caller's transaction.
public struct SQLiteSession: SQLSession {
    public let db: Database

    public init(_ db: Database) { self.db = db }

    public var dialect: SQLDialect { .sqlite }

    public func rows(_ sql: String, _ arguments: [any SQLArgument]) throws -> [[SQLValue]] {
        try Row.fetchAll(db.cachedStatement(sql: sql), arguments: Self.arguments(arguments)).map { row in
            row.databaseValues.map { value in
                switch value.storage {
                case .null: return .null
                case .int64(let integer): return .integer(integer)
                case .double(let double): return .real(double)
                case .string(let string): return .text(string)
                case .blob(let data): return .blob(Array(data))
                }
            }
        }
    }

    public func execute(_ sql: String, _ arguments: [any SQLArgument]) throws -> Int {
        try db.cachedStatement(sql: sql).execute(arguments: Self.arguments(arguments))
        return db.changesCount
    }

    static func arguments(_ values: [any SQLArgument]) -> StatementArguments {
        StatementArguments(values.map { argument -> (any DatabaseValueConvertible)? in
            switch argument.sqlValue {
            case .null: return nil
            case .integer(let value): return value
            case .real(let value): return value
            case .text(let value): return value
            case .blob(let value): return Data(value)
            }
        })
    }
}

/// PostgreSQL on one connection of its own, blocking its caller's thread while the server answers
/// (postgres-nio's futures, waited for off the event loop and off Swift's pool).
public final class PostgresBlockingSession: SQLSession {
    public let connection: PostgresConnection
    let logger: Logger

    public var dialect: SQLDialect { .postgres }

    /// Connects; `close()` when done.
    @available(*, noasync, message: "blocks its thread: call it from BlockingWork.run or a thread of its own")
    public init(_ location: PostgresLocation, logger: Logger) throws {
        self.connection = try HubPostgres.connect(location, id: Int.random(in: 1...Int(Int32.max)), logger: logger).wait()
        self.logger = logger
    }

    @available(*, noasync, message: "blocks its thread")
    public func close() {
        closed = true
        try? connection.close().wait()
    }

    private var closed = false

    /// A session dropped without `close()` (a caller that threw past it) still closes its
    /// connection, without waiting: postgres-nio requires every connection closed.
    deinit {
        // The connection is kept until its close completes (one released before asserts).
        if !closed {
            let connection = self.connection
            let closing: EventLoopFuture<Void> = connection.close()
            closing.whenComplete { _ in withExtendedLifetime(connection) {} }
        }
    }

    /// Runs `body` in one transaction on this connection (a serialization failure is the caller's to retry).
    @available(*, noasync, message: "blocks its thread")
    public func transaction<T>(_ body: (PostgresBlockingSession) throws -> T) throws -> T {
        try execute("BEGIN")
        do {
            let value = try body(self)
            try execute("COMMIT")
            return value
        } catch {
            _ = try? execute("ROLLBACK")
            throw error
        }
    }

    public func rows(_ sql: String, _ arguments: [any SQLArgument]) throws -> [[SQLValue]] {
        let result = try connection.query(Self.query(sql, arguments), logger: logger).wait()
        return try result.map { row in try row.map(Self.value) }
    }

    public func execute(_ sql: String, _ arguments: [any SQLArgument]) throws -> Int {
        let result = try connection.query(Self.query(sql, arguments), logger: logger).wait()
        return result.metadata.rows ?? 0
    }

    /// `?` placeholders (outside quotes) become `$1`, `$2`..., SQLite's numbered `?NNN` become
    /// `$NNN`; the values are bound, never spliced.
    static func query(_ sql: String, _ arguments: [any SQLArgument]) -> PostgresQuery {
        PostgresQuery(unsafeSQL: placeholders(sql), binds: bindings(arguments))
    }

    static func placeholders(_ sql: String) -> String {
        // Over the UTF-8 bytes, not Characters: a batch of a few hundred rows is a statement of
        // tens of thousands of characters, sent hundreds of times by the savings upkeep.
        let bytes = Array(sql.utf8)
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count + bytes.count / 4)
        var number = 0
        var quote: UInt8?
        var index = 0
        let digits = UInt8(ascii: "0")...UInt8(ascii: "9")
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            if let open = quote {
                if byte == open { quote = nil }
                text.append(byte)
            } else if byte == UInt8(ascii: "'") || byte == UInt8(ascii: "\"") {
                quote = byte
                text.append(byte)
            } else if byte == UInt8(ascii: "?") {
                let start = index
                while index < bytes.count, digits.contains(bytes[index]) { index += 1 }
                text.append(UInt8(ascii: "$"))
                if index > start {
                    text.append(contentsOf: bytes[start..<index])
                } else {
                    number += 1
                    text.append(contentsOf: String(number).utf8)
                }
            } else {
                text.append(byte)
            }
        }
        return String(decoding: text, as: UTF8.self)
    }

    static func bindings(_ arguments: [any SQLArgument]) -> PostgresBindings {
        var bindings = PostgresBindings(capacity: arguments.count)
        for argument in arguments {
            switch argument.sqlValue {
            case .null: bindings.appendNull()
            case .integer(let value): bindings.append(value)
            case .real(let value): bindings.append(value)
            case .text(let value): bindings.append(value)
            case .blob(let value): bindings.append(ByteBuffer(bytes: value))
            }
        }
        return bindings
    }

    static func value(_ cell: PostgresCell) throws -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int2, .int4, .int8: return .integer(try cell.decode(Int64.self))
        case .bool: return .integer(try cell.decode(Bool.self) ? 1 : 0)
        case .float4, .float8: return .real(try cell.decode(Double.self))
        case .numeric:
            let decimal = try cell.decode(Decimal.self)
            guard let integer = Int64(exactly: NSDecimalNumber(decimal: decimal).int64Value), Decimal(integer) == decimal else {
                throw HubError.configuration("SQL: \(decimal) in column \(cell.columnName) is not a whole number")
            }
            return .integer(integer)
        case .bytea: return .blob(Array(buffer: try cell.decode(ByteBuffer.self)))
        default: return .text(try cell.decode(String.self))
        }
    }
}

extension PostgresConnection {
    /// Runs a statement written for `SQLSession` (`?` placeholders, the same text SQLite runs)
    /// from async code, without blocking; returns how many rows it changed.
    @discardableResult
    public func execute(sql: String, _ arguments: [any SQLArgument], logger: Logger) async throws -> Int {
        // The future's variant: the async one streams rows and does not give the command's count.
        let result: EventLoopFuture<PostgresQueryResult> = query(PostgresBlockingSession.query(sql, arguments), logger: logger)
        return try await result.get().metadata.rows ?? 0
    }

    /// Every row of a query written for `SQLSession`, from async code.
    public func rows(sql: String, _ arguments: [any SQLArgument], logger: Logger) async throws -> [[SQLValue]] {
        let result: EventLoopFuture<PostgresQueryResult> = query(PostgresBlockingSession.query(sql, arguments), logger: logger)
        return try await result.get().map { row in try row.map(PostgresBlockingSession.value) }
    }
}

/// Reads in one transaction through an `SQLSession`, from async code: SQLite's reader pool, or a
/// few PostgreSQL connections used from threads of their own. What reads the same tables on both
/// engines (the energy figures) is written once against this.
public protocol SQLReading: Sendable {
    func readSQL<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T
}

extension HubDatabase: SQLReading {
    public func readSQL<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try await read { db in try body(SQLiteSession(db)) }
    }
}

/// A few PostgreSQL connections for `SQLReading`: each read takes one (waiting on a thread of its
/// own while all are busy, never on Swift's pool), runs in a read-only transaction with one
/// snapshot, and gives it back. A connection that failed is closed and replaced at the next read.
public final class PostgresReaders: SQLReading, @unchecked Sendable {
    public let location: PostgresLocation
    let limit: Int
    let logger: Logger
    private let condition = NSCondition()
    private var idle: [PostgresBlockingSession] = []
    private var open = 0

    public init(_ location: PostgresLocation, connections: Int = 4, logger: Logger = Logger(label: "hub.postgres.readers")) {
        self.location = location
        self.limit = max(1, connections)
        self.logger = logger
    }

    public func readSQL<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try await BlockingWork.run { [self] in
            let session = try lease()
            do {
                let value = try session.transaction { session in
                    try session.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    return try body(session)
                }
                release(session, healthy: true)
                return value
            } catch {
                release(session, healthy: !HubPostgres.isUnavailable(error))
                throw error
            }
        }
    }

    @available(*, noasync, message: "waits for a connection: from a thread of its own")
    func lease() throws -> PostgresBlockingSession {
        condition.lock()
        while idle.isEmpty && open >= limit { condition.wait() }
        if let session = idle.popLast() {
            condition.unlock()
            return session
        }
        open += 1
        condition.unlock()
        do {
            return try PostgresBlockingSession(location, logger: logger)
        } catch {
            condition.lock()
            open -= 1
            condition.signal()
            condition.unlock()
            throw error
        }
    }

    @available(*, noasync, message: "closes a connection: from a thread of its own")
    func release(_ session: PostgresBlockingSession, healthy: Bool) {
        if !healthy { session.close() }
        condition.lock()
        if healthy { idle.append(session) } else { open -= 1 }
        condition.signal()
        condition.unlock()
    }

    /// Closes the idle connections (at shutdown).
    @available(*, noasync, message: "closes connections: from a thread of its own")
    public func close() {
        condition.lock()
        let sessions = idle
        idle = []
        open -= sessions.count
        condition.unlock()
        for session in sessions { session.close() }
    }
}

/// Rows inserted a few hundred per statement (`INSERT INTO t (...) VALUES (...), (...) [tail]`),
/// or deleted by key (`DELETE FROM t WHERE (k1 = ? AND k2 = ?) OR ...`), in SQL both engines run:
/// on PostgreSQL each statement is a round trip, and the savings upkeep writes tens of thousands
/// of slot rows. `flush` sends what is left.
public struct SQLInsertBatch {
    let head: String
    let row: String
    let separator: String
    let tail: String
    let columns: Int
    let maxRows: Int
    private var values: [any SQLArgument] = []
    private var rows = 0

    /// `head` is `INSERT INTO table (c1, c2, ...)`; `tail` follows the values (an `ON CONFLICT` clause).
    public init(_ head: String, columns: Int, tail: String = "", maxRows: Int = 400) {
        self.init(head: head + " VALUES ", row: "(" + Array(repeating: "?", count: columns).joined(separator: ", ") + ")", separator: ", ",
                  tail: tail.isEmpty ? "" : " " + tail, columns: columns, maxRows: maxRows)
    }

    init(head: String, row: String, separator: String, tail: String, columns: Int, maxRows: Int) {
        self.head = head
        self.row = row
        self.separator = separator
        self.tail = tail
        self.columns = columns
        self.maxRows = max(1, maxRows)
    }

    /// Deletes the rows of `table` whose `keys` equal each added row's values: a disjunction of
    /// equalities, which both engines answer from the primary key (SQLite scans the whole table
    /// for a row value `IN (VALUES ...)`).
    public static func deleting(from table: String, keys: [String], maxRows: Int = 200) -> SQLInsertBatch {
        SQLInsertBatch(head: "DELETE FROM \(table) WHERE ", row: "(" + keys.map { "\($0) = ?" }.joined(separator: " AND ") + ")", separator: " OR ",
                       tail: "", columns: keys.count, maxRows: maxRows)
    }

    public mutating func add(_ db: any SQLSession, _ row: any SQLArgument...) throws {
        precondition(row.count == columns, "a row of \(row.count) values for \(columns) columns")
        values.append(contentsOf: row)
        rows += 1
        if rows >= maxRows { try flush(db) }
    }

    public mutating func flush(_ db: any SQLSession) throws {
        guard rows > 0 else { return }
        try db.execute(head + Array(repeating: row, count: rows).joined(separator: separator) + tail, values)
        values.removeAll(keepingCapacity: true)
        rows = 0
    }
}

extension SQLSession {
    /// `count` rows of `columns` placeholders, `(?, ?), (?, ?)`, for a `VALUES` list.
    public func placeholderRows(_ count: Int, columns: Int) -> String {
        Array(repeating: "(" + Array(repeating: "?", count: columns).joined(separator: ", ") + ")", count: count).joined(separator: ", ")
    }

    /// `count` placeholders, `?, ?, ?`, for an `IN (...)` list.
    public func placeholderList(_ count: Int) -> String {
        Array(repeating: "?", count: count).joined(separator: ", ")
    }
}

/// Counts the statements sent through `CountingSQLSession`s, step by step: on PostgreSQL each is
/// a round trip, so what the upkeep costs on a server is mostly this count.
public final class SQLStatementCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var total = 0
    private var marked = 0
    private var steps: [Int] = []

    public init() {}

    /// Every statement counted so far.
    public var statements: Int { lock.withLock { total } }

    /// The statements of each step ended by `endStep()`, in order.
    public var perStep: [Int] { lock.withLock { steps } }

    func count() { lock.withLock { total += 1 } }

    /// Ends a step: the statements counted since the previous one are its own.
    public func endStep() {
        lock.withLock {
            steps.append(total - marked)
            marked = total
        }
    }
}

extension SQLSession {
    /// This session, its statements counted by `counter` when there is one.
    public func counted(by counter: SQLStatementCounter?) -> any SQLSession {
        counter.map { CountingSQLSession(self, counter: $0) } ?? self
    }
}

/// A session that counts the statements it passes on to `base`.
public struct CountingSQLSession: SQLSession {
    public let base: any SQLSession
    public let counter: SQLStatementCounter

    public init(_ base: any SQLSession, counter: SQLStatementCounter) {
        self.base = base
        self.counter = counter
    }

    public var dialect: SQLDialect { base.dialect }

    public func rows(_ sql: String, _ arguments: [any SQLArgument]) throws -> [[SQLValue]] {
        counter.count()
        return try base.rows(sql, arguments)
    }

    public func execute(_ sql: String, _ arguments: [any SQLArgument]) throws -> Int {
        counter.count()
        return try base.execute(sql, arguments)
    }
}

/// One blocking PostgreSQL session kept between calls (a background loop's), opened on first use
/// and again after the connection failed. Calls wait their turn and run on a thread of their own.
public final class PostgresSessionHolder: @unchecked Sendable {
    private let lock = NSLock()
    private var session: PostgresBlockingSession?

    public init() {}

    /// Runs `body` in one transaction on the held session.
    public func transaction<T: Sendable>(_ location: PostgresLocation, logger: Logger,
                                         _ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try await BlockingWork.run { [self] in
            lock.lock()
            defer { lock.unlock() }
            let current: PostgresBlockingSession
            if let session { current = session } else {
                current = try PostgresBlockingSession(location, logger: logger)
                session = current
            }
            do {
                return try current.transaction { try body($0) }
            } catch {
                if HubPostgres.isUnavailable(error) || current.connection.isClosed {
                    current.close()
                    session = nil
                }
                throw error
            }
        }
    }

    /// Closes the held session, if any.
    @available(*, noasync, message: "waits for the connection to close")
    public func close() {
        lock.lock()
        defer { lock.unlock() }
        session?.close()
        session = nil
    }
}

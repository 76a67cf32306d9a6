import Foundation
import GRDB
import EnergyCore
import HubCore
import Shared

/// The reading journal (issue 12). Readings clustered by device made each commit of a batch from
/// 2,000 interleaved devices write and sync a 4 KiB page per device; ingest now appends them to
/// `reading_journal` in arrival order (a few pages a batch), and `fold` moves the journal into
/// `reading_by_device` in one sorted pass, a page per device for many readings each.
///
/// The fold is one transaction: it records the changed ranges in `reading_change`, inserts the
/// journal's rows (oldest first) into `reading_by_device` and deletes them from the journal.
/// Killed anywhere, it leaves the journal as it was; run again, it does the same work, and a row
/// already in `reading_by_device` is dropped, never stored twice. The savings upkeep reads only
/// `reading_by_device`, so it sees a reading once the fold that moves it has recorded its change.
/// `reading_journal_device` lists the devices the journal holds, from the seq of each one's oldest
/// row, so a device's readings are read from the journal only for a device it holds; the fold
/// keeps the list, in the same transaction, and counts itself in `reading_journal_folds`.
public enum ReadingJournal {
    /// Rows in the journal (seq is dense: rows are only ever appended and deleted oldest first).
    public static func count(_ db: Database) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT COALESCE(MAX(seq) - MIN(seq) + 1, 0) FROM reading_journal") ?? 0
    }

    /// Folds the oldest `limit` journal rows (all of them when nil) in the caller's write
    /// transaction. `beforeCommit` runs after the work, inside the transaction (a test pause).
    @discardableResult
    public static func fold(_ db: Database, limit: Int? = nil, beforeCommit: (() -> Void)? = nil) throws -> FoldReport {
        var report = FoldReport()
        let last: Int64?
        if let limit {
            last = try Int64.fetchOne(db, sql: "SELECT seq FROM reading_journal ORDER BY seq LIMIT 1 OFFSET ?", arguments: [max(0, limit - 1)])
                ?? Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM reading_journal")
        } else {
            last = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM reading_journal")
        }
        guard let last else { return report }
        // The figures between a new reading's stored neighbours change (slots interpolate across
        // them): per device, from the folded reading before its earliest journal reading to the
        // one after its latest. Computed before the insert, against what was folded before.
        try db.execute(sql: """
            INSERT INTO reading_change (device_id, from_instant, to_instant)
            SELECT j.device_id,
                   COALESCE((SELECT MAX(r.instant) FROM reading_by_device r WHERE r.device_id = j.device_id AND r.instant < j.low), j.low),
                   COALESCE((SELECT MIN(r.instant) FROM reading_by_device r WHERE r.device_id = j.device_id AND r.instant > j.high), j.high)
            FROM (SELECT device_id, MIN(instant) AS low, MAX(instant) AS high FROM reading_journal WHERE seq <= ? GROUP BY device_id) j
            WHERE true
            ON CONFLICT (device_id) DO UPDATE SET from_instant = MIN(from_instant, excluded.from_instant), to_instant = MAX(to_instant, excluded.to_instant)
            """, arguments: [last])
        report.devices = db.changesCount
        // Sorted by the target's key, so each device's readings go into its pages in one pass; the
        // earliest arrival wins if the journal ever held one (device, instant) twice.
        try db.execute(sql: """
            INSERT INTO reading_by_device (device_id, instant, energy_wh, power_w, segment, time_source, received_at)
            SELECT device_id, instant, energy_wh, power_w, segment, time_source, received_at FROM reading_journal
            WHERE seq <= ? ORDER BY device_id, instant, seq
            ON CONFLICT (device_id, instant) DO NOTHING
            """, arguments: [last])
        let inserted = db.changesCount
        try db.execute(sql: "DELETE FROM reading_journal WHERE seq <= ?", arguments: [last])
        report.folded = db.changesCount
        report.dropped = report.folded - inserted
        // The list of the devices the journal holds: those whose oldest row was folded leave it,
        // and come back with their oldest remaining row if they have one (a partial fold). The
        // remaining rows are read in arrival order only until each of those devices is found.
        report.remaining = try count(db)
        var relist = report.remaining > 0
            ? Set(try String.fetchAll(db, sql: "SELECT device_id FROM reading_journal_device WHERE first_seq <= ?", arguments: [last]))
            : []
        try db.execute(sql: "DELETE FROM reading_journal_device WHERE first_seq <= ?", arguments: [last])
        if !relist.isEmpty {
            let rows = try Row.fetchCursor(db, sql: "SELECT seq, device_id FROM reading_journal WHERE seq > ? ORDER BY seq", arguments: [last])
            let list = try db.makeStatement(sql: "INSERT OR IGNORE INTO reading_journal_device (device_id, first_seq) VALUES (?, ?)")
            while !relist.isEmpty, let row = try rows.next() {
                let device: String = row[1]
                if relist.remove(device) != nil { try list.execute(arguments: [device, row[0] as Int64]) }
            }
        }
        try db.execute(sql: "UPDATE reading_journal_folds SET folds = folds + 1 WHERE id = 1")
        beforeCommit?()
        return report
    }

    /// The instants of device `?1`'s stored readings in [`?2`, `?3`), folded or not, as a subquery
    /// for `FROM`: the `reading` view's two arms, with the journal read from the device's oldest
    /// row in it and not at all when it holds none of the device's (the view scans it whole).
    public static let deviceInstantsSQL = """
        (SELECT instant FROM reading_by_device WHERE device_id = ?1 AND instant >= ?2 AND instant < ?3
         UNION ALL
         SELECT instant FROM reading_journal
         WHERE seq >= (SELECT first_seq FROM reading_journal_device WHERE device_id = ?1) AND device_id = ?1 AND instant >= ?2 AND instant < ?3)
        """

    /// Lists every device the journal holds (`reading_journal_device`) from the journal itself:
    /// for a writer of the journal other than the ingest writer (a benchmark), after its writes.
    public static func listDevices(_ db: Database) throws {
        try db.execute(sql: """
            INSERT INTO reading_journal_device (device_id, first_seq)
            SELECT device_id, MIN(seq) FROM reading_journal WHERE true GROUP BY device_id
            ON CONFLICT (device_id) DO UPDATE SET first_seq = MIN(first_seq, excluded.first_seq)
            """)
    }
}

/// The unfolded journal readings of each device, kept by the ingest writer (the only writer of
/// the journal) so the late-reading and duplicate checks need no index on the journal. It may
/// also hold readings folded since (by someone else, `energy update`, or by a partial fold): a
/// superset is harmless, since a reading's index is the same in either table.
///
/// Readings are kept in arrival order and sorted into each device's list only when a lookup
/// asks: nearly every reading comes after its device's latest and is never looked up, and adding
/// each to its device's list cost two cache misses a reading (the list, then its last element:
/// 2,000 devices' lists do not stay in the cache), a sixth of the writer's time in a backlog.
struct JournalIndex {
    /// Readings added since the last lookup, in arrival order, in chunks of `chunk`: a burst's
    /// hundreds of thousands never sit in one array that doubles (its copy would briefly hold
    /// both, 30 MB for a backlog of 300,000).
    private var arrivals: [[(device: String, index: StoredIndex)]] = []
    /// The readings added before the last lookup, by device and instant.
    private var byDevice: [String: [StoredIndex]] = [:]
    private(set) var count = 0

    static let chunk = 1_024

    mutating func add(device: String, _ index: StoredIndex) {
        if arrivals.isEmpty || arrivals[arrivals.count - 1].count == Self.chunk {
            var next: [(device: String, index: StoredIndex)] = []
            next.reserveCapacity(Self.chunk)
            arrivals.append(next)
        }
        arrivals[arrivals.count - 1].append((device, index))
        count += 1
    }

    /// Adds a committed transaction's readings (those it sorted for a lookup, then the others).
    mutating func add(_ other: JournalIndex) {
        for (device, readings) in other.byDevice {
            for index in readings { add(device: device, index) }
        }
        for chunk in other.arrivals {
            for (device, index) in chunk { add(device: device, index) }
        }
    }

    mutating func removeAll() {
        arrivals = []
        byDevice = [:]
        count = 0
    }

    /// Sorts the readings added since the last lookup into their devices' lists: one dictionary
    /// access per reading, the device's list changed in place (through `values`, never copied).
    private mutating func sortArrivals() {
        guard !arrivals.isEmpty else { return }
        for chunk in arrivals {
            for (device, index) in chunk {
                if let position = byDevice.index(forKey: device) {
                    Self.insert(index, into: &byDevice.values[position])
                } else {
                    byDevice[device] = [index]
                }
            }
        }
        // A writer that looks up after every reading (PostgreSQL's) keeps its one small chunk.
        if arrivals.count == 1 {
            arrivals[0].removeAll(keepingCapacity: true)
        } else {
            arrivals = []
        }
    }

    private static func insert(_ index: StoredIndex, into list: inout [StoredIndex]) {
        if let last = list.last, last.instant >= index.instant {
            list.insert(index, at: position(in: list, of: index.instant))
        } else {
            list.append(index)
        }
    }

    /// The first position whose instant is not before `instant`.
    private static func position(in list: [StoredIndex], of instant: Instant) -> Int {
        var low = 0, high = list.count
        while low < high {
            let middle = (low + high) / 2
            if list[middle].instant < instant { low = middle + 1 } else { high = middle }
        }
        return low
    }

    private mutating func list(_ device: String) -> [StoredIndex]? {
        sortArrivals()
        return byDevice[device]
    }

    mutating func stored(device: String, at instant: Instant) -> StoredIndex? {
        guard let list = list(device) else { return nil }
        let index = Self.position(in: list, of: instant)
        return index < list.count && list[index].instant == instant ? list[index] : nil
    }

    mutating func previous(device: String, before instant: Instant) -> StoredIndex? {
        guard let list = list(device) else { return nil }
        let index = Self.position(in: list, of: instant)
        return index > 0 ? list[index - 1] : nil
    }

    mutating func next(device: String, after instant: Instant) -> StoredIndex? {
        guard let list = list(device) else { return nil }
        var index = Self.position(in: list, of: instant)
        if index < list.count && list[index].instant == instant { index += 1 }
        return index < list.count ? list[index] : nil
    }
}

/// The writer's `JournalIndex`, shared by the copies of one `SQLiteReadingStore`, with the count
/// of readings still in the journal and the devices this writer listed in `reading_journal_device`
/// since a given fold (so it lists each device once between folds, not once per reading).
final class JournalMirror: @unchecked Sendable {
    private let lock = NSLock()
    private var index = JournalIndex()
    private var unfolded = 0
    private var listed: Set<String> = []
    private var listedSinceFold: Int64?

    /// Readings in the journal as this writer knows it (appended since, less what its folds moved).
    var count: Int { lock.withLock { unfolded } }

    /// A transaction committed: its readings are in the journal and its devices listed.
    func committed(_ appended: JournalIndex, listed devices: Set<String>, sinceFold folds: Int64?) {
        lock.withLock {
            index.add(appended)
            unfolded += appended.count
            guard let folds else { return }
            if folds == listedSinceFold {
                listed.formUnion(devices)
            } else {
                listed = devices
                listedSinceFold = folds
            }
        }
    }

    /// A fold left `remaining` readings in the journal; with none left, the index starts afresh.
    func folded(remaining: Int) {
        lock.withLock {
            unfolded = remaining
            if remaining == 0 { index.removeAll() }
        }
    }

    /// The devices this writer listed since fold number `folds` (none if a fold happened since).
    func listedDevices(sinceFold folds: Int64) -> Set<String> {
        lock.withLock { folds == listedSinceFold ? listed : [] }
    }

    func stored(device: String, at instant: Instant) -> StoredIndex? { lock.withLock { index.stored(device: device, at: instant) } }
    func previous(device: String, before instant: Instant) -> StoredIndex? { lock.withLock { index.previous(device: device, before: instant) } }
    func next(device: String, after instant: Instant) -> StoredIndex? { lock.withLock { index.next(device: device, after: instant) } }
}

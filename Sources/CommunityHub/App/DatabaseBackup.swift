import CarShare
import CarShareCore
import Foundation
import GRDB
import HubCore
import Shared

/// `community-hub backup` and `community-hub restore` (issue 14, "Also build"): an online,
/// consistent copy of the database through SQLite's backup API while the hub runs, with the car
/// share ledger's anchors file beside it, and its way back.
///
/// A backup is two files: `FILE` (the database as of the moment the copy began, a single file in
/// rollback-journal mode, checked with `quick_check` before it is given its name) and
/// `FILE.anchors` (the ledger's anchors kept outside the database, those of the months closed in
/// that copy). Restoring checks the backup first, refuses to replace the database of a hub that
/// is running unless told to, keeps what it replaces beside it, and puts the anchors back.
package enum DatabaseBackup {
    package struct BackupReport: Sendable {
        package var path: String
        package var bytes: Int64
        package var readings: Int
        package var ledgerEntries: Int
        package var anchors: Int
        package var seconds: Double
    }

    /// The anchors file of a backup or a restored database.
    package static func anchorsPath(ofBackup path: String) -> String { path + ".anchors" }

    /// Copies the database of `settings` to `out` (which must not exist) and its anchors to
    /// `out.anchors`. Safe while the hub runs: SQLite's backup API copies one consistent snapshot
    /// (WAL: ingest goes on meanwhile); the anchors are read after it, and only those of the months
    /// closed in the copy are kept, so the copy and its anchors agree.
    @available(*, noasync, message: "copies the whole database")
    package static func backup(settings: HubSettings, out: String) throws -> BackupReport {
        let started = ContinuousClock.now
        let target = URL(fileURLWithPath: out)
        guard !FileManager.default.fileExists(atPath: out) else {
            throw HubError.conflict(field: "out", code: "exists", "\(out) already exists: choose another name (a backup never overwrites one)")
        }
        let directory = target.deletingLastPathComponent().path
        if !FileManager.default.fileExists(atPath: directory) {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        guard FileManager.default.fileExists(atPath: settings.database.path) else {
            throw HubError.notFound(field: "database", "no database at \(settings.database.path)")
        }
        let database = try HubSchema.open(settings)
        let partial = out + ".partial"
        try? FileManager.default.removeItem(atPath: partial)
        defer { try? FileManager.default.removeItem(atPath: partial) }
        try database.backupBlocking(to: partial)

        let check = try HubDatabase.checkFile(path: partial)
        guard check.ok else {
            throw HubError(.unprocessable, code: "database_corrupt", field: "database",
                           message: "the copy fails SQLite's quick check (\(check.problems.first ?? "interrupted")): the database itself is probably damaged; run community-hub db check")
        }
        let (readings, entries, closed) = try HubDatabase.readFile(path: partial) { db in
            (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM reading") ?? 0,
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM carshare_entry") ?? 0,
             Set(try String.fetchAll(db, sql: "SELECT month FROM carshare_closed_month")))
        }
        // The anchors of the months closed in the copy (a month closed since the copy began is not
        // closed in it); a line that is not an anchor is kept as it is, for `ledger verify` to see.
        let anchors = LedgerAnchorFile(database: settings.database.path, configured: settings.carshare.ledgerAnchorsFile, key: nil)
        let lines = try anchors.lines().filter { line in
            guard let anchor = try? JSONDecoder().decode(MonthOnly.self, from: Data(line.utf8)) else { return true }
            return closed.contains(anchor.month)
        }
        guard lines.count >= closed.count else {
            throw HubError(.unprocessable, code: "anchors_missing", field: "anchors",
                           message: "\(closed.count) months are closed but \(anchors.path) holds \(lines.count) of their anchors: run community-hub ledger verify")
        }
        let anchorsPartial = anchorsPath(ofBackup: out) + ".partial"
        try? FileManager.default.removeItem(atPath: anchorsPartial)
        try writeSynced(Data(lines.map { $0 + "\n" }.joined().utf8), to: anchorsPartial)
        try syncFile(partial)
        try FileManager.default.moveItem(atPath: anchorsPartial, toPath: anchorsPath(ofBackup: out))
        try FileManager.default.moveItem(atPath: partial, toPath: out)
        syncDirectory(directory)
        let bytes = (try FileManager.default.attributesOfItem(atPath: out)[.size] as? NSNumber)?.int64Value ?? 0
        return BackupReport(path: out, bytes: bytes, readings: readings, ledgerEntries: entries, anchors: lines.count, seconds: seconds(since: started))
    }

    package struct RestoreReport: Sendable {
        package var database: String
        package var readings: Int
        package var ledgerEntries: Int
        package var anchors: Int
        /// Where the replaced database (and anchors) were kept, if there was one.
        package var keptAside: [String]
        /// True when a running hub's database was replaced (`--force`): restart it.
        package var replacedUnderARunningHub: Bool
    }

    /// Puts the backup `file` (and `file.anchors`) in the place of the database of `settings`. The
    /// backup is checked first (SQLite's integrity check); a running hub's database is replaced only
    /// with `force` (through SQLite, in one transaction: the hub sees the old content or the new;
    /// restart it after). A replaced database and anchors file are kept beside, renamed
    /// `.replaced-<time>`.
    @available(*, noasync, message: "copies the whole database")
    package static func restore(settings: HubSettings, from file: String, force: Bool, now: Date = Date()) throws -> RestoreReport {
        let target = settings.database.path
        guard FileManager.default.fileExists(atPath: file) else { throw HubError.notFound(field: "file", "no backup at \(file)") }
        let check = try HubDatabase.checkFile(path: file, full: true)
        guard check.ok else {
            throw HubError(.unprocessable, code: "backup_corrupt", field: "file",
                           message: "the backup \(file) fails SQLite's integrity check (\(check.problems.first ?? "interrupted")): nothing was restored")
        }
        let (readings, entries, closed) = try HubDatabase.readFile(path: file) { db in
            (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM reading") ?? 0,
             try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM carshare_entry") ?? 0,
             try String.fetchAll(db, sql: "SELECT month FROM carshare_closed_month"))
        }
        let backupAnchors = anchorsPath(ofBackup: file)
        let hasAnchors = FileManager.default.fileExists(atPath: backupAnchors)
        if !closed.isEmpty && !hasAnchors {
            throw HubError(.unprocessable, code: "anchors_missing", field: "file",
                           message: "the backup has \(closed.count) closed months but no anchors file beside it (\(backupAnchors)): nothing was restored")
        }
        let stamp = ISO8601DateFormatter().string(from: now).replacingOccurrences(of: ":", with: "")
        var keptAside: [String] = []
        let lock = try RunningLock.acquire(database: target)
        let running = lock == nil
        if running && !force {
            let holder = RunningLock.holder(database: target).map { " (process \($0))" } ?? ""
            throw HubError.conflict(field: "database", code: "hub_running",
                                    "a hub is running on \(target)\(holder): stop it first (systemctl stop community-hub), or restore with --force to replace its database under it")
        }
        if running {
            // Through SQLite, in one write transaction, so the running hub never reads a mix.
            let database = try HubSchema.open(settings)
            try database.restoreBlocking(from: file)
        } else {
            // Nothing uses the file: the old one (perhaps damaged, perhaps not even a database) is
            // kept aside whole, with its WAL, and the backup copied in its place through SQLite.
            for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: target + suffix) {
                let aside = "\(target).replaced-\(stamp)\(suffix)"
                try FileManager.default.moveItem(atPath: target + suffix, toPath: aside)
                if suffix.isEmpty { keptAside.append(aside) }
            }
            let source = try DatabaseQueue(path: file, configuration: readOnly)
            defer { try? source.close() }
            let destination = try DatabaseQueue(path: target)
            try source.backup(to: destination)
            try destination.close()
            // Opened as the hub opens it: WAL, and the migrations of this version applied.
            _ = try HubSchema.open(settings)
        }
        _ = lock
        let anchors = LedgerAnchorFile(database: target, configured: settings.carshare.ledgerAnchorsFile, key: nil)
        var anchorCount = 0
        if hasAnchors {
            if FileManager.default.fileExists(atPath: anchors.path) {
                let aside = "\(anchors.path).replaced-\(stamp)"
                try FileManager.default.moveItem(atPath: anchors.path, toPath: aside)
                keptAside.append(aside)
            }
            let data = FileManager.default.contents(atPath: backupAnchors) ?? Data()
            try writeSynced(data, to: anchors.path)
            anchorCount = String(decoding: data, as: UTF8.self).split(separator: "\n").count
        }
        let after = try HubDatabase.checkFile(path: target)
        guard after.ok else {
            throw HubError(.unprocessable, code: "database_corrupt", field: "database",
                           message: "the restored database fails SQLite's quick check (\(after.problems.first ?? "interrupted"))")
        }
        return RestoreReport(database: target, readings: readings, ledgerEntries: entries, anchors: anchorCount, keptAside: keptAside,
                             replacedUnderARunningHub: running)
    }

    private struct MonthOnly: Decodable {
        var month: String
    }

    private static var readOnly: Configuration {
        var configuration = Configuration()
        configuration.readonly = true
        return configuration
    }

    private static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    /// Writes a new file and forces it to disk.
    static func writeSynced(_ data: Data, to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: data, attributes: [.posixPermissions: 0o640]) else {
            throw HubError.configuration("cannot write \(path)")
        }
        try syncFile(path)
    }

    static func syncFile(_ path: String) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw HubError.configuration("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw HubError.configuration("cannot sync \(path): \(String(cString: strerror(errno)))") }
    }

    static func syncDirectory(_ path: String) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        _ = fsync(descriptor)
        close(descriptor)
    }
}

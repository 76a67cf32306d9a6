import CarShareCore
import Crypto
import Foundation
import HubCore
#if canImport(Glibc)
import Glibc
#endif

/// The append-only file outside the database where `ledger close-month` keeps each month's
/// anchor (`LedgerAnchor`, one JSON line per close) and where `ledger verify` reads them back. By
/// default beside the database (`<database>.anchors`; setting `carshare.ledgerAnchorsFile`); its
/// HMAC key, when there is one, comes from the secrets (`HUB_LEDGER_ANCHOR_KEY`), never from the
/// settings or the database.
public struct LedgerAnchorFile: Sendable {
    public let path: String
    /// The bytes of the key the anchors are signed with, if the hub has one.
    let keyBytes: Data?

    public init(path: String, key: Data?) {
        self.path = path
        self.keyBytes = key
    }

    /// The anchors file of a database: the configured path, else beside the database file.
    public init(database: String, configured: String, key: Data? = LedgerAnchorFile.environmentKey()) {
        self.init(path: configured.isEmpty ? database + ".anchors" : configured, key: key)
    }

    /// The key the anchors are signed with, if the hub has one.
    public var key: SymmetricKey? { keyBytes.map { SymmetricKey(data: $0) } }

    /// The anchor key from the environment (the systemd unit loads it from the secrets file):
    /// `HUB_LEDGER_ANCHOR_KEY`; nil when unset.
    public static func environmentKey(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Data? {
        guard let text = environment["HUB_LEDGER_ANCHOR_KEY"], !text.isEmpty else { return nil }
        return Data(text.utf8)
    }

    /// Appends one line and forces it to disk before returning, so a month is never closed in the
    /// database with its anchor only in a buffer.
    public func append(_ anchor: LedgerAnchor) throws {
        let line = anchor.line + "\n"
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else { throw failure("cannot open", errno) }
        defer { close(descriptor) }
        let bytes = Array(line.utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw failure("cannot write", errno) }
        guard fsync(descriptor) == 0 else { throw failure("cannot sync", errno) }
    }

    /// Every line of the file; none when it does not exist yet.
    public func lines() throws -> [String] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw HubError.configuration("cannot read the ledger's anchors file \(path)")
        }
        return String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }

    private func failure(_ what: String, _ code: Int32) -> HubError {
        HubError.configuration("\(what) the ledger's anchors file \(path): \(String(cString: strerror(code)))")
    }
}

import Foundation
import HubCore

/// A refused message or reading, kept with its raw payload and the reason.
public struct QuarantineEntry: Sendable, Hashable {
    public var id: Int64?
    public var receivedAt: Instant
    public var topic: String
    /// The payload, or its first `ingest.quarantinePayloadBytes` when it was longer.
    public var payload: [UInt8]
    /// The size of the whole payload as received, in bytes.
    public var payloadSize: Int
    /// The SHA-256 of the whole payload, in lower-case hex (nil for entries quarantined before it was kept).
    public var payloadSHA256: String?
    public var reason: QuarantineReason
    public var detail: String
    public var device: String?
    /// The decoded reading, when the payload could be decoded (kept to admit it after a confirmed reset).
    public var reading: DecodedReading?
    public var releasedAt: Instant?

    public init(id: Int64? = nil, receivedAt: Instant, topic: String, payload: [UInt8], payloadSize: Int? = nil, payloadSHA256: String? = nil,
                reason: QuarantineReason, detail: String, device: String? = nil, reading: DecodedReading? = nil, releasedAt: Instant? = nil) {
        self.id = id
        self.receivedAt = receivedAt
        self.topic = topic
        self.payload = payload
        self.payloadSize = payloadSize ?? payload.count
        self.payloadSHA256 = payloadSHA256
        self.reason = reason
        self.detail = detail
        self.device = device
        self.reading = reading
        self.releasedAt = releasedAt
    }

    /// True when only the start of the payload was kept.
    public var payloadIsTruncated: Bool { payload.count < payloadSize }
}

/// The start of a new segment of a device's index, after a confirmed reset.
public struct SegmentStart: Sendable, Hashable {
    public var device: String
    public var segment: Int
    public var startsAt: Instant
    public var indexBefore: WattHours
    public var indexAfter: WattHours
    public var detectedAt: Instant

    package init(device: String, segment: Int, startsAt: Instant, indexBefore: WattHours, indexAfter: WattHours, detectedAt: Instant) {
        self.device = device
        self.segment = segment
        self.startsAt = startsAt
        self.indexBefore = indexBefore
        self.indexAfter = indexAfter
        self.detectedAt = detectedAt
    }
}

/// What the ingest writer does inside one write transaction.
public protocol IngestTransaction {
    /// The stored reading of a device at this instant (earlier in this transaction included).
    func stored(device: String, at instant: Instant) throws -> StoredIndex?
    func previous(device: String, before instant: Instant) throws -> StoredIndex?
    func next(device: String, after instant: Instant) throws -> StoredIndex?
    /// Stores a reading the caller knows is not stored: after the device's latest stored reading
    /// (the caller's `DeviceSequence`, loaded from `ReadingStore.sequences`), or a late reading
    /// `stored` did not find. Storage stays idempotent on (device, instant) even if a caller
    /// breaks this: the store keeps the first and drops the other.
    func append(_ reading: Reading) throws
    func quarantine(_ entry: QuarantineEntry) throws -> Int64
    func release(quarantineIDs: [Int64], at instant: Instant) throws
    func recordSegment(_ start: SegmentStart) throws
    /// True for a store that several writers share (PostgreSQL): the batch's devices are then
    /// listed for `sharedSequences` and `keepShared`, which a store with one writer never needs.
    var isShared: Bool { get }
    /// For a store that several writers share (PostgreSQL behind several hub processes, each taking
    /// its share of the meters' messages): locks `devices` against the other writers until this
    /// transaction ends, and gives their sequences as stored now, `known` being what this writer
    /// remembers. Nil when this writer is the store's only one (SQLite): its memory is the truth.
    func sharedSequences(of devices: [String], known: [String: DeviceSequence]) throws -> [String: DeviceSequence]?
    /// After `sharedSequences`, at the end of the batch: the devices' sequences as this writer
    /// leaves them, kept for the other writers (what a reading cannot say: the readings held aside
    /// that still count).
    func keepShared(_ sequences: [String: DeviceSequence]) throws
    /// Before a batch's readings are judged: the late readings (device, instant) it will look up
    /// with `stored`, `previous` and `next`. A store whose lookups are round trips (PostgreSQL)
    /// answers them all with one query; a lookup not announced here is asked on its own.
    func prepareLookups(_ readings: [LateReading]) throws
    /// True when `prepareLookups` does something: the writer lists a batch's late readings only
    /// then (a lookup of each reading's device that SQLite's writer does not need).
    var preparesLookups: Bool { get }
}

/// A reading earlier than its device's latest stored one, whose stored neighbours a batch looks up.
public struct LateReading: Sendable, Hashable {
    public var device: String
    public var instant: Instant

    public init(device: String, instant: Instant) {
        self.device = device
        self.instant = instant
    }
}

extension IngestTransaction {
    public var isShared: Bool { false }
    public func sharedSequences(of devices: [String], known: [String: DeviceSequence]) throws -> [String: DeviceSequence]? { nil }
    public func keepShared(_ sequences: [String: DeviceSequence]) throws {}
    public func prepareLookups(_ readings: [LateReading]) throws {}
    public var preparesLookups: Bool { false }
}

/// What one fold of a store's journal did (`ReadingStore.fold`).
public struct FoldReport: Sendable, Equatable {
    /// Readings moved out of the journal.
    public var folded = 0
    /// Of those, readings found already stored (dropped, never stored twice).
    public var dropped = 0
    /// Devices whose readings changed, queued for the savings upkeep.
    public var devices = 0
    /// Readings left in the journal after it (a fold of the oldest `limit`).
    public var remaining = 0

    public init() {}
}

/// Where readings and quarantine live. SQLite today; a server database can implement it later.
public protocol ReadingStore: Sendable {
    /// Readies the store for the ingest writer's stream of batches (called before the first one):
    /// the SQLite store folds what a previous run left in its journal.
    func prepareForIngest() throws
    /// Moves the oldest `limit` readings written in arrival order (all of them when nil) into the
    /// store's device-ordered layout, where the savings upkeep reads them and learns that they
    /// changed (`reading_change`).
    func fold(limit: Int?) throws -> FoldReport
    /// Readings this writer appended since its last fold (what `fold` would move, or more).
    var unfoldedReadings: Int { get }
    /// Runs `body` in one write transaction: all of it is committed, or none.
    func write<T>(_ body: (any IngestTransaction) throws -> T) throws -> T
    /// The registered devices.
    func devices(timeZone: LocalTimeZone) throws -> [String: DeviceInfo]
    /// The latest stored index of every device, and the readings held aside as possible resets.
    func sequences() throws -> [String: DeviceSequence]
    /// Stored readings of a device in [from, to), oldest first, at most `limit`.
    func readings(device: String, from: Instant, to: Instant, limit: Int) async throws -> [Reading]
    /// Quarantine entries received at or after `since`, oldest first (by receive time, then id), at
    /// most `limit`; with `afterID`, the entries of the `since` millisecond up to that id are skipped:
    /// a page continues exactly where the previous one stopped, even inside one millisecond.
    func quarantine(since: Instant, afterID: Int64?, limit: Int) async throws -> [QuarantineEntry]
    /// The installation periods of a device (empty when it is not in the registry).
    func installationPeriods(device: String) async throws -> [InstallationPeriod]
    /// True when `error` says the store itself cannot write now (disk full, I/O error, read-only,
    /// locked...), whatever the batch: the writer then keeps the batch whole and stops taking
    /// messages from the broker until a commit succeeds, instead of blaming a message.
    func isUnavailable(_ error: any Error) -> Bool
    /// `error` as the log says it (the server database's own errors hide their cause).
    func describe(_ error: any Error) -> String
    /// True when `error` says the batch met another process's transaction (a deadlock, a
    /// serialization failure): it is written again as it is, never split or blamed on a message.
    func isConflict(_ error: any Error) -> Bool
    /// True for a store that several writers share (its transactions' `isShared`): the ingest
    /// writer then lingers for a batch before writing it, instead of filling it while it writes.
    var isShared: Bool { get }
}

extension ReadingStore {
    public func isUnavailable(_ error: any Error) -> Bool { false }
    public func describe(_ error: any Error) -> String { "\(error)" }
    public func isConflict(_ error: any Error) -> Bool { false }
    public var isShared: Bool { false }
    /// Folds the whole journal.
    public func fold() throws -> FoldReport { try fold(limit: nil) }
    public func prepareForIngest() throws {}
    public func fold(limit: Int?) throws -> FoldReport { FoldReport() }
    public var unfoldedReadings: Int { 0 }
}

extension ReadingStore {
    /// A device's readings in [from, to) as `identity` may see them, oldest first, at most
    /// `limit`: the whole series for staff; otherwise only the installation periods
    /// `AccessPolicy` allows (a meter while in the resident's own dwelling, a production device
    /// while in the association's estate). Only staff learn that a device does not exist.
    public func readings(device: String, from: Instant, to: Instant, limit: Int, by identity: Identity, zone timeZone: LocalTimeZone) async throws -> [Reading] {
        let periods = try await installationPeriods(device: device)
        guard !periods.isEmpty else {
            // Only staff learn that a device does not exist; others cannot probe for ids.
            if AccessPolicy.allows(identity, .read, .deviceReadings) { throw HubError.notFound(field: "device", "no device \(device) in the registry") }
            throw HubError.forbidden("device \(device) is not one you may see", field: "device")
        }
        // The windows this caller may see (AccessPolicy): the whole series for staff; otherwise
        // each installation period the caller's dwelling or estate may read: a meter while it
        // served the resident's own dwelling, a production device while in the association's estate.
        var windows: [(Instant, Instant)]
        if AccessPolicy.allows(identity, .read, .deviceReadings) {
            windows = [(from, to)]
        } else {
            windows = periods.filter { period in
                switch period.kind {
                case .meter: return period.dwelling.map { AccessPolicy.allows(identity, .read, .meterReadings(dwelling: $0)) } ?? false
                case .pv: return AccessPolicy.allows(identity, .read, .productionReadings(estate: period.estate))
                }
            }.map { period in
                let interval = period.interval(in: timeZone)
                return (max(from, interval.from), min(to, interval.to ?? to))
            }
            guard !windows.isEmpty else {
                throw HubError.forbidden("device \(device) is not one you may see: a resident sees their own dwelling's meter, an association its estate's production devices",
                                         field: "device")
            }
        }
        windows = windows.filter { $0.0 < $0.1 }
        var found: [Reading] = []
        for (start, end) in windows where found.count < limit {
            found += try await readings(device: device, from: start, to: end, limit: limit - found.count)
        }
        return found
    }

    /// Refused messages, for the callers `AccessPolicy` lets read them (staff).
    public func quarantine(since: Instant, afterID: Int64?, limit: Int, by identity: Identity) async throws -> [QuarantineEntry] {
        try AccessPolicy.require(identity, .read, .quarantine, "the refused messages are for the landlord's staff")
        return try await quarantine(since: since, afterID: afterID, limit: limit)
    }
}


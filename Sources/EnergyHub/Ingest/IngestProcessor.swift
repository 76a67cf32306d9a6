import Crypto
import Foundation
import EnergyCore
import HubCore
import Shared

/// A message as the hub received it from the broker.
public struct IncomingMessage: Sendable, Hashable {
    public var topic: String
    /// The payload; only its start when it was larger than `ingest.maxPayloadBytes` (see `cut`).
    public var payload: [UInt8]
    public var receivedAt: Instant
    /// Set when the payload was cut on receipt: the size and SHA-256 of the whole.
    var cut: Cut?

    struct Cut: Sendable, Hashable {
        var size: Int
        var sha256: String
    }

    public init(topic: String, payload: [UInt8], receivedAt: Instant) {
        self.topic = topic
        self.payload = payload
        self.receivedAt = receivedAt
    }

    /// A message as the MQTT loop hands it over: a payload larger than `maxPayloadBytes` is never
    /// read (it is quarantined as `payload_too_large`), so only what the quarantine keeps of it
    /// is held in memory until then (issue 14, defect 3: memory stays within the stated bound
    /// whatever the devices send).
    init(topic: String, payload: [UInt8], receivedAt: Instant, maxPayloadBytes: Int, quarantinePayloadBytes: Int) {
        self.init(topic: topic, payload: payload, receivedAt: receivedAt)
        if payload.count > maxPayloadBytes {
            let kept = QuarantinedPayload(payload, keep: quarantinePayloadBytes)
            self.payload = kept.kept
            cut = Cut(size: kept.size, sha256: kept.sha256)
        }
    }

    /// The size of the payload as received, in bytes.
    public var size: Int { cut?.size ?? payload.count }
}

/// What one committed batch did.
public struct BatchReport: Sendable, Equatable {
    public var messages = 0
    public var stored = 0
    public var duplicates = 0
    /// Readings held aside and admitted after all when a reset was confirmed.
    public var released = 0
    public var resets = 0
    public var quarantined: [QuarantineReason: Int] = [:]
    /// Quarantined payloads of which only the start was kept, and the bytes not kept.
    public var truncatedPayloads = 0
    public var truncatedPayloadBytes = 0

    public init() {}

    public var quarantinedTotal: Int { quarantined.values.reduce(0, +) }

    public mutating func add(_ other: BatchReport) {
        messages += other.messages
        stored += other.stored
        duplicates += other.duplicates
        released += other.released
        resets += other.resets
        for (reason, count) in other.quarantined { quarantined[reason, default: 0] += count }
        truncatedPayloads += other.truncatedPayloads
        truncatedPayloadBytes += other.truncatedPayloadBytes
    }

    mutating func quarantine(_ entry: QuarantineEntry) {
        quarantined[entry.reason, default: 0] += 1
        if entry.payloadIsTruncated {
            truncatedPayloads += 1
            truncatedPayloadBytes += entry.payloadSize - entry.payload.count
        }
    }
}

/// What the quarantine keeps of a payload: at most `keep` bytes from its start (ending on a whole
/// UTF-8 character when the payload is text), with the size and SHA-256 of the whole, so a
/// hostile megabyte costs a few KiB for the two years the quarantine is kept (issue 14, defect 4).
struct QuarantinedPayload {
    var kept: [UInt8]
    var size: Int
    var sha256: String

    init(_ message: IncomingMessage, keep: Int) {
        if let cut = message.cut {
            self.init(kept: message.payload, size: cut.size, sha256: cut.sha256)
        } else {
            self.init(message.payload, keep: keep)
        }
    }

    /// The SHA-256 of `bytes` in lower-case hex, as `quarantine.payload_sha256` keeps it.
    static func sha256Hex(_ bytes: some DataProtocol) -> String {
        SHA256.hash(data: bytes).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    init(kept: [UInt8], size: Int, sha256: String) {
        self.kept = kept
        self.size = size
        self.sha256 = sha256
    }

    init(_ payload: [UInt8], keep: Int) {
        size = payload.count
        sha256 = Self.sha256Hex(payload)
        guard payload.count > keep else {
            kept = payload
            return
        }
        var end = keep
        // Back off over a UTF-8 sequence the cut would split (continuation bytes are 10xxxxxx).
        var back = 0
        while back < 3, end - back > 0, payload[end - back] & 0xC0 == 0x80 { back += 1 }
        if back < 3 || payload[end - back] & 0xC0 != 0x80 { end -= back }
        kept = Array(payload[..<end])
    }
}

/// A topic pattern with its format and that format's decoder, shared by reference: routing a
/// message copies one reference, not the pattern and the decoder (an existential), which cost a
/// fifth of the writer's time when every message's route carried copies of them.
final class TopicRoute: Sendable {
    let pattern: TopicPattern
    let format: DeviceFormat
    let decoder: any ReadingDecoder

    init(pattern: TopicPattern, format: DeviceFormat, decoder: any ReadingDecoder) {
        self.pattern = pattern
        self.format = format
        self.decoder = decoder
    }
}

/// Where a message's topic sends it: the device the topic names, the topic's route, and the
/// device's registry entry (nil for a device the registry does not hold), looked up once for the
/// message: the writer's hot path, where each lookup hashes the device's name.
struct MessageRoute {
    let device: String
    let topic: TopicRoute
    let info: DeviceInfo?
    var format: DeviceFormat { topic.format }
    var decoder: any ReadingDecoder { topic.decoder }
}

/// Decodes, validates and stores batches of messages, one write transaction per batch. It keeps
/// each device's latest index in memory so in-order readings (nearly all of them) need no query.
/// Used by one writer thread at a time.
public final class IngestProcessor: @unchecked Sendable {
    public let settings: IngestSettings
    let store: any ReadingStore
    let timeZone: LocalTimeZone
    let patterns: [TopicRoute]
    let clockFloor: Instant
    private(set) var devices: [String: DeviceInfo] = [:]
    private var lastDeviceLoad: Instant?
    private(set) var sequences: [String: DeviceSequence] = [:]

    public init(settings: IngestSettings, store: any ReadingStore) throws {
        self.settings = try settings.validated()
        self.store = store
        self.timeZone = try LocalTimeZone(identifier: settings.timeZone)
        self.patterns = try DeviceFormat.allCases.map { format in
            TopicRoute(pattern: try TopicPattern(settings.topics.filter(for: format)), format: format, decoder: Decoders.decoder(for: format))
        }
        self.clockFloor = Instant(millisecondsSince1970: LocalDate(parsing: settings.clockFloor)!.daysSince1970 * 86_400_000)
    }

    /// Readies the store, then loads the device registry and every device's latest index from it.
    public func loadState(at now: Instant) throws {
        try store.prepareForIngest()
        devices = try store.devices(timeZone: timeZone)
        lastDeviceLoad = now
        sequences = try store.sequences()
    }

    /// The topic filters to subscribe to.
    public var subscriptions: [String] { patterns.map(\.pattern.filter) }

    /// Processes a batch in one transaction. On error nothing is stored and the in-memory state is
    /// as before, so the same batch can be retried.
    public func process(_ messages: [IncomingMessage]) throws -> BatchReport {
        try process(messages, more: nil).report
    }

    /// The same, and then, in the same transaction, the messages `more` gives until it gives none:
    /// the ingest writer takes in what arrives while the batch is written, so the batch's work is
    /// done by the time it is full and only the commit's sync is left (a store that several
    /// writers share is never given more: its batch's devices are locked when it begins). A
    /// message of a device the writer does not know, once the registry may be read again, ends it:
    /// those messages are returned untouched (`leftOver`), to begin the next batch, which reads
    /// the registry first. On error nothing is stored, whatever `more` gave.
    func process(_ messages: [IncomingMessage], more: (() -> [IncomingMessage])?) throws -> (report: BatchReport, leftOver: [IncomingMessage]) {
        var routes = self.routes(messages)
        // Newly imported devices: re-read the registry (outside the write transaction), not too often.
        if registryReadIsDue(messages, routes: routes) {
            devices = try store.devices(timeZone: timeZone)
            lastDeviceLoad = Self.latest(messages)
            routes = self.routes(messages)
        }
        defer { replaced.removeAll(keepingCapacity: true) }
        do {
            return try store.write { transaction in
                var report = BatchReport()
                try process(messages, routes: routes, transaction: transaction, report: &report)
                guard let more, !transaction.isShared else { return (report, []) }
                while true {
                    let chunk = more()
                    if chunk.isEmpty { return (report, []) }
                    routes = self.routes(chunk)
                    if registryReadIsDue(chunk, routes: routes) { return (report, chunk) }
                    try process(chunk, routes: routes, transaction: transaction, report: &report)
                }
            }
        } catch {
            // The batch's changes to the devices' sequences are undone, latest first.
            for (device, sequence) in replaced.reversed() { sequences[device] = sequence }
            throw error
        }
    }

    /// What the batch being written changed in `sequences`: each device's sequence before each
    /// change (nil when it had none), so a batch that fails leaves them as they were. (A copy of
    /// all of them per batch cost the writer the copy of 2,000 devices' sequences every 500
    /// messages.)
    private var replaced: [(device: String, sequence: DeviceSequence?)] = []

    private static func modify<Value, Result>(_ value: inout Value, _ body: (inout Value) throws -> Result) rethrows -> Result {
        try body(&value)
    }

    /// The latest receive time of the messages.
    private static func latest(_ messages: [IncomingMessage]) -> Instant? {
        var latest: Instant?
        for message in messages where latest.map({ message.receivedAt > $0 }) ?? true { latest = message.receivedAt }
        return latest
    }

    /// The routes beside the messages (not pairs with copies of them: the writer's hot path).
    private func routes(_ messages: [IncomingMessage]) -> [MessageRoute?] {
        messages.map { message -> MessageRoute? in
            for topic in patterns {
                if let device = topic.pattern.device(in: message.topic) { return MessageRoute(device: device, topic: topic, info: devices[device]) }
            }
            return nil
        }
    }

    /// True when a message names a device the writer does not know and the registry was last read
    /// `registryRefreshSeconds` or more before the latest message was received.
    private func registryReadIsDue(_ messages: [IncomingMessage], routes: [MessageRoute?]) -> Bool {
        guard routes.contains(where: { $0.map { $0.info == nil } ?? false }), let latest = Self.latest(messages) else { return false }
        return lastDeviceLoad.map { latest.milliseconds(since: $0) >= settings.registryRefreshSeconds * 1000 } ?? true
    }

    /// Judges and stores messages in the caller's transaction.
    private func process(_ messages: [IncomingMessage], routes: [MessageRoute?], transaction: any IngestTransaction, report: inout BatchReport) throws {
        // Several processes share the store: this batch's devices are locked against the others,
        // and what they stored since is taken in before any message is judged. (With one writer,
        // SQLite, there is nothing to lock or take in: no list is made.)
        let batchDevices = transaction.isShared ? Set(routes.compactMap { $0?.device }).filter { devices[$0] != nil }.sorted() : []
        let shared = transaction.isShared ? try transaction.sharedSequences(of: batchDevices, known: sequences) : nil
        if let shared {
            for device in batchDevices {
                replaced.append((device, sequences[device]))
                sequences[device] = shared[device]
            }
        }
        // Each message is decoded once, before any is judged, so the batch's late readings
        // (earlier than their device's latest: common when several processes share a device's
        // messages) are looked up together.
        let decoded = zip(messages, routes).map { message, route in
            decodable(message, route: route).map { (device: $0.device.id, readings: decode(message, device: $0.device, decoder: $0.decoder)) }
        }
        if transaction.preparesLookups { try transaction.prepareLookups(lateReadings(decoded)) }
        for position in messages.indices {
            report.messages += 1
            try handle(messages[position], route: routes[position], decoded: decoded[position]?.readings, transaction: transaction, report: &report)
        }
        if shared != nil {
            try transaction.keepShared(Dictionary(uniqueKeysWithValues: batchDevices.compactMap { device in sequences[device].map { (device, $0) } }))
        }
    }

    /// Moves the readings committed in arrival order into the device-ordered layout (the store's
    /// journal), where the savings upkeep sees them: the oldest `limit` (all of them when nil).
    public func fold(limit: Int? = nil) throws -> FoldReport { try store.fold(limit: limit) }

    /// Readings committed since the last fold.
    public var unfoldedReadings: Int { store.unfoldedReadings }

    /// Quarantines a message that could not be stored even alone (a bug or a corrupt row), so it
    /// cannot block the messages behind it.
    func quarantineUnstorable(_ message: IncomingMessage, error: String) throws -> BatchReport {
        try store.write { transaction in
            let payload = QuarantinedPayload(message, keep: settings.quarantinePayloadBytes)
            let entry = QuarantineEntry(receivedAt: message.receivedAt, topic: message.topic, payload: payload.kept, payloadSize: payload.size,
                                        payloadSHA256: payload.sha256, reason: .storageError, detail: "could not be stored: \(error)")
            _ = try transaction.quarantine(entry)
            var report = BatchReport()
            report.messages = 1
            report.quarantine(entry)
            return report
        }
    }

    /// The device a message's readings are decoded for: nil when `handle` refuses the message
    /// whole (unknown topic or device, too large, on another format's topic).
    private func decodable(_ message: IncomingMessage, route: MessageRoute?)
        -> (device: DeviceInfo, decoder: any ReadingDecoder)? {
        guard let route, message.size <= settings.maxPayloadBytes, message.cut == nil,
              let device = route.info, device.format == route.format else { return nil }
        return (device, route.decoder)
    }

    private func decode(_ message: IncomingMessage, device: DeviceInfo, decoder: any ReadingDecoder) -> [Result<DecodedReading, Rejection>] {
        let context = DecodeContext(device: device, receivedAt: message.receivedAt, timeZone: timeZone, maxReadingsPerMessage: settings.maxReadingsPerMessage,
                                    clockLeadSeconds: settings.futureToleranceSeconds)
        return decoder.decode(message.payload, context: context)
    }

    /// The decoded readings earlier than their device's latest stored one, once each: those
    /// `handle` will place as late readings (a reading made late by one earlier in the same batch
    /// is looked up on its own).
    private func lateReadings(_ decoded: [(device: String, readings: [Result<DecodedReading, Rejection>])?]) -> [LateReading] {
        var late: [LateReading] = []
        var seen: Set<LateReading> = []
        for case let (device, readings)? in decoded {
            for case .success(let reading) in readings {
                guard reading.timeSource == .device, let last = sequences[device]?.last, reading.instant < last.instant else { continue }
                let key = LateReading(device: device, instant: reading.instant)
                if seen.insert(key).inserted { late.append(key) }
            }
        }
        return late
    }

    private func handle(_ message: IncomingMessage, route: MessageRoute?,
                        decoded: [Result<DecodedReading, Rejection>]?, transaction: any IngestTransaction, report: inout BatchReport) throws {
        var quarantinedPayload: QuarantinedPayload?
        func refuse(_ reason: QuarantineReason, _ detail: String, device: String?, reading: DecodedReading? = nil) throws -> Int64 {
            // A payload holding many readings is hashed once, whatever number of them is refused.
            let payload = quarantinedPayload ?? QuarantinedPayload(message, keep: settings.quarantinePayloadBytes)
            quarantinedPayload = payload
            let entry = QuarantineEntry(receivedAt: message.receivedAt, topic: message.topic, payload: payload.kept, payloadSize: payload.size,
                                        payloadSHA256: payload.sha256, reason: reason, detail: detail, device: device, reading: reading)
            report.quarantine(entry)
            return try transaction.quarantine(entry)
        }
        guard let route else {
            _ = try refuse(.unknownTopic, "topic \(message.topic) matches none of \(subscriptions.joined(separator: ", "))", device: nil)
            return
        }
        guard message.size <= settings.maxPayloadBytes, message.cut == nil else {
            _ = try refuse(.payloadTooLarge, "\(message.size) bytes, more than ingest.maxPayloadBytes = \(settings.maxPayloadBytes)", device: route.device)
            return
        }
        guard let device = route.info else {
            _ = try refuse(.unknownDevice, "device \(route.device) is not in the registry", device: route.device)
            return
        }
        guard device.format == route.format else {
            _ = try refuse(.formatMismatch, "device \(device.id) is registered as \(device.format.rawValue) but published on a \(route.format.rawValue) topic", device: device.id)
            return
        }
        let maxPowerW = settings.maxPowerW.watts(for: device.kind)
        for result in decoded ?? decode(message, device: device, decoder: route.decoder) {
            var reading: DecodedReading
            switch result {
            case .failure(let rejection):
                _ = try refuse(rejection.reason, rejection.detail, device: device.id)
                continue
            case .success(let decoded):
                reading = decoded
            }
            if reading.timeSource == .device && reading.instant < clockFloor {
                _ = try refuse(.deviceClockUnset, "device clock reads \(reading.instant), before \(settings.clockFloor): clock lost (power cut?)", device: device.id, reading: reading)
                continue
            }
            if reading.instant.milliseconds(since: message.receivedAt) > settings.futureToleranceSeconds * 1000 {
                _ = try refuse(.inFuture, "\(reading.instant) is more than \(settings.futureToleranceSeconds) s after it was received (\(message.receivedAt))", device: device.id, reading: reading)
                continue
            }
            if reading.instant < device.installedFrom {
                _ = try refuse(.beforeInstallation, "\(reading.instant) is before the device's installation (\(timeZone.localDate(of: device.installedFrom)))", device: device.id, reading: reading)
                continue
            }
            // The device's sequence is changed where it is kept (one lookup of its name), and what
            // it was is kept in `replaced` should the batch fail.
            try Self.modify(&sequences[device.id, default: DeviceSequence()]) { sequence in
                replaced.append((device.id, sequence == DeviceSequence() ? nil : sequence))
                let previousLast = sequence.last
                // A format without a clock is stamped with the receive time: the order of delivery is the
                // order of measurement, so a reading received in the same millisecond as (or, after a
                // clock step, before) the last one is placed just after it rather than taken as a conflict.
                if reading.timeSource == .received, let last = sequence.last {
                    let latest = max(last.instant, sequence.candidates.last?.reading.instant ?? last.instant)
                    if reading.instant <= latest { reading.instant = latest.adding(milliseconds: 1) }
                }
                let admission = sequence.admit(reading, maxPowerW: maxPowerW, confirmReadings: settings.resetConfirmReadings,
                                               confirmMilliseconds: settings.resetConfirmSeconds * 1000,
                                               minimumIntervalMilliseconds: reading.timeSource == .received ? settings.clocklessMinimumIntervalSeconds * 1000 : 0)
                // Every reading stored here is new: in-order ones come after the device's latest stored
                // reading, late ones were looked up first. The store records which figures change
                // (between a new reading's neighbours) when it folds its journal.
                func store(_ reading: DecodedReading, segment: Int, receivedAt: Instant) throws {
                    try transaction.append(Reading(device: device.id, instant: reading.instant, energy: reading.energy, powerWatts: reading.powerWatts,
                                                   segment: segment, timeSource: reading.timeSource, receivedAt: receivedAt))
                    report.stored += 1
                }
                switch admission {
                case .store(let segment):
                    try store(reading, segment: segment, receivedAt: message.receivedAt)
                case .duplicate:
                    report.duplicates += 1
                case .reject(let rejection):
                    _ = try refuse(rejection.reason, rejection.detail, device: device.id, reading: reading)
                case .holdAsCandidate(let rejection):
                    let id = try refuse(rejection.reason, rejection.detail, device: device.id, reading: reading)
                    sequence.hold(ResetCandidate(reading: reading, receivedAt: message.receivedAt, quarantineID: id))
                case .confirmReset(let segment, let released):
                    let before = previousLast?.energy ?? .zero
                    for candidate in released {
                        try store(candidate.reading, segment: segment, receivedAt: candidate.receivedAt)
                        report.released += 1
                    }
                    try transaction.release(quarantineIDs: released.map(\.quarantineID), at: message.receivedAt)
                    try store(reading, segment: segment, receivedAt: message.receivedAt)
                    let first = released.first?.reading ?? reading
                    try transaction.recordSegment(SegmentStart(device: device.id, segment: segment, startsAt: first.instant, indexBefore: before,
                                                               indexAfter: first.energy, detectedAt: message.receivedAt))
                    report.resets += 1
                case .late:
                    if let existing = try transaction.stored(device: device.id, at: reading.instant) {
                        if existing.energy == reading.energy {
                            report.duplicates += 1
                        } else {
                            _ = try refuse(.conflictingDuplicate, "already stored \(existing.energy) at \(reading.instant), now \(reading.energy)", device: device.id, reading: reading)
                        }
                    } else {
                        let previous = try transaction.previous(device: device.id, before: reading.instant)
                        let next = try transaction.next(device: device.id, after: reading.instant)
                        switch SequenceRules.placeLate(reading, previous: previous, next: next, maxPowerW: maxPowerW) {
                        case .success(let segment):
                            try store(reading, segment: segment, receivedAt: message.receivedAt)
                        case .failure(let rejection): _ = try refuse(rejection.reason, rejection.detail, device: device.id, reading: reading)
                        }
                    }
                }
            }
        }
    }
}

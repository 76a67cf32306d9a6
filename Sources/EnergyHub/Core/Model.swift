import HubCore

/// What a device measures: a dwelling's consumption (`meter`, the Wi-Fi meter box) or a building's
/// PV production (`pv`: an inverter or a production meter).
public enum DeviceKind: String, Sendable, Codable, CaseIterable {
    case meter
    case pv
}

/// The payload format a device publishes, each decoded by its own `ReadingDecoder`.
public enum DeviceFormat: String, Sendable, Codable, CaseIterable {
    /// The project's own: `meters/<device>/reading`, `{"ts", "energy_wh", "power_w"}` or an array of them.
    case canonical
    /// teleinfo2mqtt: `teleinfo/<ADCO|ADSC>`, one `{"raw", "value"}` object per TIC label.
    case teleinfo
    /// Tasmota: `tele/<device>/SENSOR`, a `TIC` block or `ENERGY.Total` in kWh, `Time` device-local.
    case tasmota
    /// OpenDTU: `solar/<serial>/0/yieldtotal`, a bare number in kWh.
    case opendtu
}

/// Where a reading's instant came from.
public enum TimeSource: String, Sendable, Codable {
    /// The device's own clock, as published.
    case device
    /// The hub's receive time: the format carries no reliable clock (teleinfo, OpenDTU).
    case received
}

/// What the decoders and validator need to know of a registered device.
public struct DeviceInfo: Sendable, Hashable {
    public var id: String
    public var kind: DeviceKind
    public var format: DeviceFormat
    /// The start (local midnight) of the device's first installation; earlier readings are refused.
    public var installedFrom: Instant

    public init(id: String, kind: DeviceKind, format: DeviceFormat, installedFrom: Instant) {
        self.id = id
        self.kind = kind
        self.format = format
        self.installedFrom = installedFrom
    }
}

/// One reading as a decoder read it from a payload, before validation: a cumulative index at an instant.
public struct DecodedReading: Hashable, Sendable {
    public var instant: Instant
    /// The cumulative energy index (only ever increasing, except across a genuine reset).
    public var energy: WattHours
    /// Instantaneous active power in W, when the device publishes it (never apparent power in VA).
    /// Informational only: energy always comes from index differences.
    public var powerWatts: Double?
    public var timeSource: TimeSource

    public init(instant: Instant, energy: WattHours, powerWatts: Double? = nil, timeSource: TimeSource) {
        self.instant = instant
        self.energy = energy
        self.powerWatts = powerWatts
        self.timeSource = timeSource
    }
}

/// A stored reading: normalised to one device, one UTC instant, one cumulative Wh index.
public struct Reading: Hashable, Sendable, Codable {
    public var device: String
    public var instant: Instant
    public var energy: WattHours
    public var powerWatts: Double?
    /// Counts genuine resets of the device's index: readings of different segments are never
    /// subtracted from each other.
    public var segment: Int
    public var timeSource: TimeSource
    public var receivedAt: Instant

    public init(device: String, instant: Instant, energy: WattHours, powerWatts: Double? = nil, segment: Int, timeSource: TimeSource, receivedAt: Instant) {
        self.device = device
        self.instant = instant
        self.energy = energy
        self.powerWatts = powerWatts
        self.segment = segment
        self.timeSource = timeSource
        self.receivedAt = receivedAt
    }
}

/// Why a message (or one reading of it) was put in quarantine instead of being stored.
public enum QuarantineReason: String, Sendable, Codable, CaseIterable {
    /// The topic matches none of the configured decoders' filters.
    case unknownTopic = "unknown_topic"
    /// Larger than `ingest.maxPayloadBytes`.
    case payloadTooLarge = "payload_too_large"
    /// Not valid JSON (truncated, garbage) or not the shape the format expects.
    case malformedPayload = "malformed_payload"
    /// A required field is absent.
    case missingField = "missing_field"
    /// A field that must be a number is not one (a string of letters, an object...).
    case nonNumericField = "non_numeric_field"
    /// `nan`, `NaN`, `inf`: a device that failed to read its meter.
    case notANumber = "not_a_number"
    /// The topic's device is not in the registry.
    case unknownDevice = "unknown_device"
    /// The device is registered with another format than the topic it published on.
    case formatMismatch = "format_mismatch"
    /// A device clock at 1970 (lost after a power cut) or otherwise before 2000.
    case deviceClockUnset = "device_clock_unset"
    /// A device-local time that does not exist (inside the spring-forward gap).
    case invalidLocalTime = "invalid_local_time"
    /// Before the device's installation date.
    case beforeInstallation = "before_installation"
    /// More than `ingest.futureToleranceSeconds` ahead of the receive time.
    case inFuture = "in_future"
    /// Lower than the index before it: a transient low value (kept here, never rebased on), or the
    /// first readings of a reset not yet confirmed.
    case indexBackwards = "index_backwards"
    /// A jump implying more power than the device kind can draw or produce.
    case implausibleJump = "implausible_jump"
    /// Same device and instant as a stored reading, with another index.
    case conflictingDuplicate = "conflicting_duplicate"
    /// Could not be stored even on its own (the error is in the detail); kept so it blocks nothing.
    case storageError = "storage_error"
    /// An array payload with more readings than `ingest.maxReadingsPerMessage`.
    case tooManyReadings = "too_many_readings"
}

/// A refusal with its reason and a sentence saying what was wrong.
public struct Rejection: Error, Hashable, Sendable {
    public var reason: QuarantineReason
    public var detail: String

    public init(_ reason: QuarantineReason, _ detail: String) {
        self.reason = reason
        self.detail = detail
    }
}

/// A topic filter with one `+` wildcard naming the device: `meters/+/reading` matches
/// `meters/box-7/reading` and yields `box-7`. A `$share/<group>/` prefix (shared subscriptions,
/// for several ingest processes) is subscribed as given and ignored when matching.
public struct TopicPattern: Sendable, Hashable {
    /// The filter as subscribed.
    public let filter: String
    /// The levels' bytes, compared with each message's topic.
    private let levelBytes: [[UInt8]]
    private let deviceLevel: Int

    public init(_ filter: String) throws {
        self.filter = filter
        var matchFilter = Substring(filter)
        if matchFilter.hasPrefix("$share/") {
            let parts = matchFilter.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3, !parts[1].isEmpty else { throw HubError.configuration("topic filter \(filter): a shared subscription is $share/<group>/<filter>") }
            matchFilter = parts[2]
        }
        let levels = matchFilter.split(separator: "/", omittingEmptySubsequences: false)
        let wildcards = levels.indices.filter { levels[$0] == "+" }
        guard wildcards.count == 1, !levels.contains("#"), !levels.contains(where: { $0 != "+" && ($0.contains("+") || $0.contains("#")) }) else {
            throw HubError.configuration("topic filter \(filter) must contain exactly one + (the device id) and no #")
        }
        self.levelBytes = levels.map { Array($0.utf8) }
        self.deviceLevel = wildcards[0]
    }

    /// The device id if the topic matches this filter, else nil.
    public func device(in topic: String) -> String? {
        // Called for every message: a scan of the topic's bytes, without splitting it into strings
        // (a string without contiguous UTF-8, a bridged one, is made native first).
        var topic = topic
        return topic.withUTF8 { matchDevice(utf8: $0) }
    }

    private func matchDevice(utf8 topic: UnsafeBufferPointer<UInt8>) -> String? {
        var level = 0
        var start = 0
        var deviceRange = 0..<0
        for position in 0...topic.count {
            guard position == topic.count || topic[position] == UInt8(ascii: "/") else { continue }
            guard level < levelBytes.count else { return nil }
            if level == deviceLevel {
                deviceRange = start..<position
            } else {
                // Byte by byte: the generic comparison of a string's UTF-8 view with the buffer
                // was a twentieth of the ingest writer's time.
                let expected = levelBytes[level]
                guard expected.count == position - start else { return nil }
                for offset in expected.indices where expected[offset] != topic[start + offset] { return nil }
            }
            level += 1
            start = position + 1
        }
        guard level == levelBytes.count, !deviceRange.isEmpty else { return nil }
        return String(decoding: UnsafeBufferPointer(rebasing: topic[deviceRange]), as: UTF8.self)
    }
}

import HubCore

/// Settings of the ingest path (section `ingest` of the settings file). Every key has a default.
public struct IngestSettings: Codable, Sendable, Equatable {
    /// The topic filter of each format; the `+` level names the device.
    public struct Topics: Codable, Sendable, Equatable {
        public var canonical = "meters/+/reading"
        public var teleinfo = "teleinfo/+"
        public var tasmota = "tele/+/SENSOR"
        public var opendtu = "solar/+/0/yieldtotal"
        public init() {}

        public func filter(for format: DeviceFormat) -> String {
            switch format {
            case .canonical: return canonical
            case .teleinfo: return teleinfo
            case .tasmota: return tasmota
            case .opendtu: return opendtu
            }
        }
    }

    /// The most power a device of each kind can draw or produce; a jump implying more is refused.
    public struct MaxPower: Codable, Sendable, Equatable {
        /// A dwelling: 36 kVA is the largest residential subscription in France.
        public var meter: Int64 = 36_000
        /// A building's PV: the 100 kWc ceiling of small installations, with margin.
        public var pv: Int64 = 250_000
        public init() {}

        public func watts(for kind: DeviceKind) -> Int64 { kind == .meter ? meter : pv }
    }

    public var topics = Topics()
    public var maxPowerW = MaxPower()
    /// A batch is committed when it holds this many messages, and at most this many messages are
    /// held in memory (acknowledged to the broker, not yet committed): the loss bound on a crash.
    public var maxBatch = 1000
    /// How long the writer waits for more messages after the first one before committing (at most 100).
    public var lingerMilliseconds = 10
    /// Readings are committed to a journal in arrival order and folded into the device-ordered
    /// table when the journal holds this many (the larger, the fewer pages written per reading:
    /// see the README's *Benchmarks*), or when ingest has been idle for `foldIdleMilliseconds`.
    public var foldRows = 100_000
    /// An idle writer folds the journal after this long without a message (the savings figures
    /// read folded readings only; the readings routes read both).
    public var foldIdleMilliseconds = 500
    /// ...and a busy one once its oldest unfolded reading has waited this long, so the figures
    /// follow a steady stream (2,000 meters a minute never leave the writer idle) within seconds.
    public var foldMaxAgeSeconds = 10
    /// On a graceful stop, commits that keep failing (disk full...) are retried for this long after
    /// the stop began; then the messages still held are given up, counted and logged, and the
    /// process exits with an error instead of retrying until it is killed.
    public var shutdownCommitSeconds = 5
    /// At most this many payload bytes held in memory, whatever the message count.
    public var maxInMemoryBytes = 16 * 1024 * 1024
    /// Larger payloads are quarantined unread.
    public var maxPayloadBytes = 256 * 1024
    /// A quarantined payload keeps at most its first this many bytes (with the size and SHA-256 of
    /// the whole): enough to see what a device sent, without two years of hostile megabytes.
    public var quarantinePayloadBytes = 4096
    /// The most readings one array payload may carry (a box's offline buffer).
    public var maxReadingsPerMessage = 10_000
    /// A device instant further ahead of the receive time than this is refused.
    public var futureToleranceSeconds: Int64 = 300
    /// A device clock before this date is taken as unset (1970 after a power cut).
    public var clockFloor = "2000-01-01"
    /// A drop (or jump) is a genuine reset when the device goes on from it for this many readings...
    public var resetConfirmReadings = 3
    /// ...spanning at least this long; until then those readings are quarantined, never rebased on.
    public var resetConfirmSeconds: Int64 = 600
    /// Formats without a clock (teleinfo, OpenDTU) are stamped with the receive time, and a backlog
    /// delivered after an outage arrives in a burst: for them the power check assumes at least this
    /// long between two readings (a corrupted jump of hundreds of MWh is still refused).
    public var clocklessMinimumIntervalSeconds: Int64 = 60
    /// The time zone of device-local clocks (Tasmota) and of registry dates.
    public var timeZone = "Europe/Paris"
    /// How often the device registry is re-read to notice newly imported devices (at most).
    public var registryRefreshSeconds: Int64 = 5

    public init() {}

    /// Checks values that would make ingest misbehave.
    public func validated() throws -> IngestSettings {
        guard (1...100_000).contains(maxBatch) else { throw HubError.configuration("ingest.maxBatch must be between 1 and 100000") }
        guard (1...1_000_000).contains(foldRows) else { throw HubError.configuration("ingest.foldRows must be between 1 and 1000000") }
        guard (10...600_000).contains(foldIdleMilliseconds) else { throw HubError.configuration("ingest.foldIdleMilliseconds must be between 10 and 600000") }
        guard (1...86_400).contains(foldMaxAgeSeconds) else { throw HubError.configuration("ingest.foldMaxAgeSeconds must be between 1 and 86400") }
        guard (1...3600).contains(shutdownCommitSeconds) else { throw HubError.configuration("ingest.shutdownCommitSeconds must be between 1 and 3600") }
        guard (0...100).contains(lingerMilliseconds) else { throw HubError.configuration("ingest.lingerMilliseconds must be between 0 and 100") }
        guard maxPayloadBytes > 0, maxInMemoryBytes >= maxPayloadBytes else { throw HubError.configuration("ingest.maxInMemoryBytes must be at least ingest.maxPayloadBytes") }
        guard (0...31_622_400).contains(futureToleranceSeconds) else { throw HubError.configuration("ingest.futureToleranceSeconds must be between 0 and 31622400 (a year)") }
        guard (64...1_048_576).contains(quarantinePayloadBytes) else {
            throw HubError.configuration("ingest.quarantinePayloadBytes must be between 64 and 1048576")
        }
        guard resetConfirmReadings >= 1 else { throw HubError.configuration("ingest.resetConfirmReadings must be at least 1") }
        guard LocalDate(parsing: clockFloor) != nil else { throw HubError.configuration("ingest.clockFloor must be a date YYYY-MM-DD") }
        _ = try LocalTimeZone(identifier: timeZone)
        for format in DeviceFormat.allCases { _ = try TopicPattern(topics.filter(for: format)) }
        return self
    }
}

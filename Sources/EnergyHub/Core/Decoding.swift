import HubCore

/// What a decoder needs besides the payload.
public struct DecodeContext: Sendable {
    /// The registered device the topic names.
    public var device: DeviceInfo
    /// When the hub received the message: the instant of formats without a clock.
    public var receivedAt: Instant
    /// The time zone of device-local clocks (Tasmota's `Time`).
    public var timeZone: LocalTimeZone
    /// The most readings one array payload may carry.
    public var maxReadingsPerMessage: Int
    /// How far ahead of the receive time a device clock may be (`ingest.futureToleranceSeconds`):
    /// in the repeated autumn hour, a local time that would be further ahead than this is not the
    /// one the device meant.
    public var clockLeadSeconds: Int64

    public init(device: DeviceInfo, receivedAt: Instant, timeZone: LocalTimeZone = .paris, maxReadingsPerMessage: Int = 10_000,
                clockLeadSeconds: Int64 = 300) {
        self.device = device
        self.receivedAt = receivedAt
        self.timeZone = timeZone
        self.maxReadingsPerMessage = maxReadingsPerMessage
        self.clockLeadSeconds = clockLeadSeconds
    }
}

/// Turns one MQTT payload of a given format into readings. Pure: no clock, no I/O.
///
/// What every decoder guarantees of the readings it returns, whatever the payload, and what the
/// arithmetic after it relies on (the processor's checks, the sequence rules, slot interpolation):
/// the index is a whole, non-negative number of Wh that fits in an Int64 (a negative one, or one
/// that does not fit, is refused with a reason), so the difference of two indexes never overflows;
/// the instant lies within years 1 to 9999 give or take a day (RFC 3339's range and a local
/// clock's offset), or is the receive time, so differences of instants never overflow either.
public protocol ReadingDecoder: Sendable {
    var format: DeviceFormat { get }
    /// One result per reading the payload holds: decoded, or refused with a reason. A payload that
    /// cannot be read at all gives a single failure.
    func decode(_ payload: [UInt8], context: DecodeContext) -> [Result<DecodedReading, Rejection>]
}

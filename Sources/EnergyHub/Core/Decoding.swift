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

    public init(device: DeviceInfo, receivedAt: Instant, timeZone: LocalTimeZone = .paris, maxReadingsPerMessage: Int = 10_000) {
        self.device = device
        self.receivedAt = receivedAt
        self.timeZone = timeZone
        self.maxReadingsPerMessage = maxReadingsPerMessage
    }
}

/// Turns one MQTT payload of a given format into readings. Pure: no clock, no I/O.
public protocol ReadingDecoder: Sendable {
    var format: DeviceFormat { get }
    /// One result per reading the payload holds: decoded, or refused with a reason. A payload that
    /// cannot be read at all gives a single failure.
    func decode(_ payload: [UInt8], context: DecodeContext) -> [Result<DecodedReading, Rejection>]
}

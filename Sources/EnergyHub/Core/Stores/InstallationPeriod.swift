import Foundation
import HubCore

/// A period during which a device served a building (and, for a meter, a dwelling): from local
/// date `since` to the day before `until`, where `until` is the explicit end, the device's next
/// installation, or (for a meter) the next meter installed in the same dwelling (a replaced box).
public struct InstallationPeriod: Sendable, Hashable {
    public var device: String
    public var kind: DeviceKind
    public var estate: String
    public var building: String
    public var dwelling: String?
    public var since: LocalDate
    /// Exclusive end; nil while still installed.
    public var until: LocalDate?

    /// The period as instants of the given time zone.
    public func interval(in zone: LocalTimeZone) -> (from: Instant, to: Instant?) {
        (zone.startOfDay(since), until.map(zone.startOfDay))
    }

    package init(device: String, kind: DeviceKind, estate: String, building: String, dwelling: String?, since: LocalDate, until: LocalDate?) {
        self.device = device
        self.kind = kind
        self.estate = estate
        self.building = building
        self.dwelling = dwelling
        self.since = since
        self.until = until
    }
}

import Foundation
import EnergyCore
import HubCore
import Shared
import HubApp
import EnergyHub

/// A small deterministic random generator (SplitMix64): the same seed gives the same simulated week.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A simulated device: a dwelling's meter box with a household load profile, or a building's PV
/// with a peak power. Clearly simulated: used by the demo, the benchmark and tests.
public struct SimulatedDevice: Sendable, Hashable {
    public var id: String
    public var kind: DeviceKind
    public var format: DeviceFormat
    /// PV: peak AC power in W. Meter: the household's average base load in W.
    public var nominalW: Double
    public var seed: UInt64
    /// The index at the simulation's start.
    public var initialIndex: WattHours

    public init(id: String, kind: DeviceKind, format: DeviceFormat, nominalW: Double, seed: UInt64, initialIndex: WattHours) {
        self.id = id
        self.kind = kind
        self.format = format
        self.nominalW = nominalW
        self.seed = seed
        self.initialIndex = initialIndex
    }
}

/// Plausible power curves: PV following the sun at Boulogne-sur-Mer's latitude and season with
/// day-to-day cloudiness, households with morning and evening peaks. Energy is integrated into an
/// integer index (milliwatt-hours inside, whole Wh out).
public enum MeterSimulator {
    public static let latitude = 50.7264
    public static let longitude = 1.6147

    /// Solar elevation in radians at an instant (NOAA's simplified equations).
    public static func solarElevation(at instant: Instant) -> Double {
        let seconds = Double(instant.millisecondsSince1970) / 1000
        let days = seconds / 86_400
        let dayOfYear = days.truncatingRemainder(dividingBy: 365.2422)
        let gamma = 2 * Double.pi / 365 * dayOfYear
        let declination = 0.006918 - 0.399912 * cos(gamma) + 0.070257 * sin(gamma) - 0.006758 * cos(2 * gamma)
            + 0.000907 * sin(2 * gamma) - 0.002697 * cos(3 * gamma) + 0.00148 * sin(3 * gamma)
        let equationOfTime = 229.18 * (0.000075 + 0.001868 * cos(gamma) - 0.032077 * sin(gamma) - 0.014615 * cos(2 * gamma) - 0.040849 * sin(2 * gamma))
        let utcMinutes = (seconds.truncatingRemainder(dividingBy: 86_400)) / 60
        let solarMinutes = utcMinutes + equationOfTime + 4 * longitude
        let hourAngle = (solarMinutes / 4 - 180) * Double.pi / 180
        let phi = latitude * Double.pi / 180
        let sinElevation = sin(phi) * sin(declination) + cos(phi) * cos(declination) * cos(hourAngle)
        return asin(max(-1, min(1, sinElevation)))
    }

    /// Mean power in W of a device around an instant.
    public static func power(of device: SimulatedDevice, at instant: Instant, zone: LocalTimeZone = .paris) -> Double {
        let day = UInt64(bitPattern: instant.millisecondsSince1970.floorDiv(86_400_000))
        switch device.kind {
        case .pv:
            let elevation = solarElevation(at: instant)
            guard elevation > 0 else { return 0 }
            var dayRandom = SeededGenerator(seed: device.seed ^ (day &* 0x51_7CC1_B727_220A))
            let clearness = 0.25 + 0.75 * Double.random(in: 0...1, using: &dayRandom)
            let air = pow(sin(elevation), 1.15)
            var hourRandom = SeededGenerator(seed: device.seed ^ UInt64(bitPattern: instant.millisecondsSince1970 / 900_000))
            let passingCloud = 0.85 + 0.15 * Double.random(in: 0...1, using: &hourRandom)
            return device.nominalW * air * clearness * passingCloud
        case .meter:
            let local = zone.localDateTime(of: instant)
            let hour = Double(local.hour) + Double(local.minute) / 60
            let morning = exp(-pow((hour - 7.5) / 1.2, 2))
            let evening = exp(-pow((hour - 19.5) / 2.0, 2))
            let midday = exp(-pow((hour - 12.5) / 1.5, 2)) * 0.5
            var random = SeededGenerator(seed: device.seed ^ UInt64(bitPattern: instant.millisecondsSince1970 / 600_000))
            let noise = 0.8 + 0.4 * Double.random(in: 0...1, using: &random)
            return device.nominalW * (1 + 2.2 * morning + 3.0 * evening + midday) * noise
        }
    }

    /// The device's index at each instant of `instants` (sorted), integrating power from `start`.
    public static func indexes(of device: SimulatedDevice, from start: Instant, at instants: [Instant], zone: LocalTimeZone = .paris) -> [WattHours] {
        var milliwattHours = device.initialIndex.value * 1000
        var cursor = start
        var result: [WattHours] = []
        result.reserveCapacity(instants.count)
        let step: Int64 = 60_000
        for target in instants {
            while cursor < target {
                let next = min(target, cursor.adding(milliseconds: step - cursor.millisecondsSince1970 % step))
                let watts = power(of: device, at: cursor, zone: zone)
                let milliseconds = next.milliseconds(since: cursor)
                milliwattHours += Int64((watts * Double(milliseconds) / 3600).rounded())
                cursor = next
            }
            result.append(WattHours(milliwattHours / 1000))
        }
        return result
    }

    /// The topic and payload a device of this format would publish for a reading.
    public static func message(for device: SimulatedDevice, at instant: Instant, index: WattHours, powerW: Double?, zone: LocalTimeZone = .paris) -> (topic: String, payload: [UInt8]) {
        switch device.format {
        case .canonical:
            var text = "{\"ts\":\"\(instant.rfc3339)\",\"energy_wh\":\(index.value)"
            if let powerW { text += ",\"power_w\":\(Int(powerW.rounded()))" }
            return ("meters/\(device.id)/reading", Array((text + "}").utf8))
        case .tasmota:
            let local = zone.localDateTime(of: instant)
            let kwh = "\(index.value / 1000).\(String(index.value % 1000 + 1000).dropFirst())"
            var text = "{\"Time\":\"\(local.description)\",\"ENERGY\":{\"Total\":\(kwh)"
            if let powerW { text += ",\"Power\":\(Int(powerW.rounded()))" }
            return ("tele/\(device.id)/SENSOR", Array((text + "}}").utf8))
        case .teleinfo:
            let label = device.kind == .pv ? "EAIT" : "EAST"
            let raw = String(index.value + 1_000_000_000).dropFirst()
            let text = "{\"ADSC\":{\"raw\":\"\(device.id)\",\"value\":\"\(device.id)\"},\"\(label)\":{\"raw\":\"\(raw)\",\"value\":\(index.value)}}"
            return ("teleinfo/\(device.id)", Array(text.utf8))
        case .opendtu:
            let kwh = "\(index.value / 1000).\(String(index.value % 1000 + 1000).dropFirst())"
            return ("solar/\(device.id)/0/yieldtotal", Array(kwh.utf8))
        }
    }
}

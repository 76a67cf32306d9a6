import HubCore

/// A stored index as the sequence rules see it.
public struct StoredIndex: Hashable, Sendable {
    public var instant: Instant
    public var energy: WattHours
    public var segment: Int

    public init(instant: Instant, energy: WattHours, segment: Int) {
        self.instant = instant
        self.energy = energy
        self.segment = segment
    }
}

/// A reading refused for now (backwards, or an implausible jump) but kept aside: if the device goes
/// on from it, it was a genuine reset or a replaced meter, and it is admitted in a new segment.
public struct ResetCandidate: Hashable, Sendable {
    public var reading: DecodedReading
    public var receivedAt: Instant
    /// The quarantine row holding it, released if the reset is confirmed.
    public var quarantineID: Int64

    public init(reading: DecodedReading, receivedAt: Instant, quarantineID: Int64) {
        self.reading = reading
        self.receivedAt = receivedAt
        self.quarantineID = quarantineID
    }
}

/// The rules that decide what happens to a reading given its neighbours. Pure: no clock, no I/O.
///
/// Total over every Int64 index and instant: a device can send any index up to Int64.max (issue
/// 14: a jump to 2e17 Wh within a minute once overflowed here and the trap killed the hub), so no
/// operation on indexes or instants may trap, and the messages say what is true.
public enum SequenceRules {
    /// True when going from `a` to `b` implies at most `maxPowerW` on average. Exact integer
    /// arithmetic: delta_Wh * 3,600,000 ms/h <= maxPowerW * dt_ms, both products in 128 bits.
    /// `minimumMilliseconds` floors dt: readings stamped with their receive time may arrive in a
    /// burst (a backlog after an outage) whose receive times say nothing of when they were measured.
    public static func isPlausible(from a: (instant: Instant, energy: WattHours), to b: (instant: Instant, energy: WattHours), maxPowerW: Int64,
                                   minimumMilliseconds: Int64 = 0) -> Bool {
        guard b.energy >= a.energy else { return false }
        let delta = increase(from: a.energy, to: b.energy)
        let milliseconds = max(self.milliseconds(from: a.instant, to: b.instant), delta > 0 ? minimumMilliseconds : 0)
        guard milliseconds > 0 else { return delta == 0 }
        guard maxPowerW >= 0 else { return false }
        let energyScaled = delta.multipliedFullWidth(by: 3_600_000)
        let allowed = UInt64(maxPowerW).multipliedFullWidth(by: UInt64(milliseconds))
        return (energyScaled.high, energyScaled.low) <= (allowed.high, allowed.low)
    }

    /// Implied average power from `a` to `b`, in whole watts, for messages; Int64.max (Int64.min
    /// going backwards) when it does not fit, as for a jump of 1.5e17 Wh or more within a minute.
    /// Worked out in Double, which neither traps nor wraps and is exact for ordinary indexes.
    public static func impliedPowerW(from a: (instant: Instant, energy: WattHours), to b: (instant: Instant, energy: WattHours)) -> Int64 {
        let milliseconds = max(1, self.milliseconds(from: a.instant, to: b.instant))
        let watts = ((Double(b.energy.value) - Double(a.energy.value)) * 3_600_000 / Double(milliseconds)).rounded()
        return Int64(exactly: watts) ?? (watts > 0 ? .max : .min)
    }

    /// The implied power as messages say it: "36060 W", or "more than 9.2e18 W" when it does not
    /// fit in 64 bits (a clamped figure would be false, and a wrapped one absurd).
    static func impliedPowerText(from a: (instant: Instant, energy: WattHours), to b: (instant: Instant, energy: WattHours)) -> String {
        switch impliedPowerW(from: a, to: b) {
        case .max: return "more than 9.2e18 W"
        case .min: return "less than -9.2e18 W"
        case let watts: return "\(watts) W"
        }
    }

    /// How much `to` is above `from`, exactly (0 when it is not above): up to 2^64 - 1 Wh, from
    /// Int64.min to Int64.max, which an Int64 difference cannot hold.
    static func increase(from: WattHours, to: WattHours) -> UInt64 {
        guard to > from else { return 0 }
        // The wrapped difference read as unsigned is the exact one when it is positive and below 2^64.
        return UInt64(bitPattern: to.value &- from.value)
    }

    /// `b - a` in milliseconds, saturating at the ends of Int64. The decoders keep instants within
    /// years 1 to 9999, where it is exact; the rules still take any instant without trapping.
    static func milliseconds(from a: Instant, to b: Instant) -> Int64 {
        let (difference, overflow) = b.millisecondsSince1970.subtractingReportingOverflow(a.millisecondsSince1970)
        return overflow ? (b > a ? .max : .min) : difference
    }

    /// Places a late (out-of-order) reading between the stored readings around it; returns its segment.
    public static func placeLate(_ reading: DecodedReading, previous: StoredIndex?, next: StoredIndex?, maxPowerW: Int64) -> Result<Int, Rejection> {
        let point = (instant: reading.instant, energy: reading.energy)
        func fits(after previous: StoredIndex) -> Bool {
            reading.energy >= previous.energy && isPlausible(from: (previous.instant, previous.energy), to: point, maxPowerW: maxPowerW)
        }
        func fits(before next: StoredIndex) -> Bool {
            reading.energy <= next.energy && isPlausible(from: point, to: (next.instant, next.energy), maxPowerW: maxPowerW)
        }
        switch (previous, next) {
        case let (previous?, next?) where previous.segment == next.segment:
            if fits(after: previous) && fits(before: next) { return .success(previous.segment) }
            if reading.energy < previous.energy || reading.energy > next.energy {
                return .failure(Rejection(.indexBackwards, "late reading \(reading.energy) at \(reading.instant) does not fit between \(previous.energy) at \(previous.instant) and \(next.energy) at \(next.instant)"))
            }
            return .failure(Rejection(.implausibleJump, "late reading \(reading.energy) at \(reading.instant) implies more than \(maxPowerW) W next to its neighbours"))
        case let (previous?, next?):
            if fits(after: previous) { return .success(previous.segment) }
            if fits(before: next) { return .success(next.segment) }
            return .failure(Rejection(.indexBackwards, "late reading \(reading.energy) at \(reading.instant) fits neither before \(next.energy) nor after \(previous.energy)"))
        case let (previous?, nil):
            if fits(after: previous) { return .success(previous.segment) }
            if reading.energy < previous.energy {
                return .failure(Rejection(.indexBackwards, "index \(reading.energy) is below the previous \(previous.energy) at \(previous.instant)"))
            }
            return .failure(Rejection(.implausibleJump, "index jump of \(increase(from: previous.energy, to: reading.energy)) Wh implies \(impliedPowerText(from: (previous.instant, previous.energy), to: point)), above \(maxPowerW) W"))
        case let (nil, next?):
            if fits(before: next) { return .success(next.segment) }
            return .failure(Rejection(.indexBackwards, "early reading \(reading.energy) at \(reading.instant) does not fit before \(next.energy) at \(next.instant)"))
        case (nil, nil):
            return .success(0)
        }
    }
}

/// What happens to an in-order reading.
public enum Admission: Equatable, Sendable {
    /// Store it in this segment.
    case store(segment: Int)
    /// The same reading is already stored: count it, store nothing.
    case duplicate
    /// Refuse it for good.
    case reject(Rejection)
    /// Refuse it for now and keep it aside as the start (or continuation) of a possible reset.
    case holdAsCandidate(Rejection)
    /// The device really was reset (or replaced): store it and the held readings in a new segment.
    case confirmReset(segment: Int, released: [ResetCandidate])
    /// Older than the latest stored reading: place it with `SequenceRules.placeLate` against the store.
    case late
}

/// Per-device state for readings that arrive in order: the latest stored index and the readings
/// held aside as a possible reset. A transient low value is never rebased on: the device must go on
/// from it for `confirmReadings` readings spanning at least `confirmMilliseconds` before it counts.
public struct DeviceSequence: Hashable, Sendable {
    public var last: StoredIndex?
    public var candidates: [ResetCandidate] = []

    public init(last: StoredIndex? = nil, candidates: [ResetCandidate] = []) {
        self.last = last
        self.candidates = candidates
    }

    /// Decides about a reading; updates the state when the reading is stored or confirms a reset.
    /// For `.holdAsCandidate`, call `hold(_:)` once the quarantine row exists.
    public mutating func admit(_ reading: DecodedReading, maxPowerW: Int64, confirmReadings: Int, confirmMilliseconds: Int64,
                               minimumIntervalMilliseconds: Int64 = 0) -> Admission {
        guard let last else {
            self.last = StoredIndex(instant: reading.instant, energy: reading.energy, segment: 0)
            return .store(segment: 0)
        }
        if reading.instant < last.instant { return .late }
        if reading.instant == last.instant {
            return reading.energy == last.energy
                ? .duplicate
                : .reject(Rejection(.conflictingDuplicate, "already stored \(last.energy) at \(last.instant), now \(reading.energy)"))
        }
        if let held = candidates.first(where: { $0.reading.instant == reading.instant }) {
            return held.reading.energy == reading.energy
                ? .duplicate
                : .reject(Rejection(.conflictingDuplicate, "already held \(held.reading.energy) at \(reading.instant), now \(reading.energy)"))
        }
        let point = (instant: reading.instant, energy: reading.energy)
        let forward = reading.energy >= last.energy
        if forward && SequenceRules.isPlausible(from: (last.instant, last.energy), to: point, maxPowerW: maxPowerW, minimumMilliseconds: minimumIntervalMilliseconds) {
            self.last = StoredIndex(instant: reading.instant, energy: reading.energy, segment: last.segment)
            candidates = []
            return .store(segment: last.segment)
        }
        let rejection = forward
            ? Rejection(.implausibleJump, "index jump from \(last.energy) at \(last.instant) to \(reading.energy) implies \(SequenceRules.impliedPowerText(from: (last.instant, last.energy), to: point)), above \(maxPowerW) W")
            : Rejection(.indexBackwards, "index \(reading.energy) is below the previous \(last.energy) at \(last.instant)")
        // Does it go on from the readings already held aside?
        var chain = candidates.filter { $0.reading.instant < reading.instant }
        if let previous = chain.last {
            let continues = reading.energy >= previous.reading.energy
                && SequenceRules.isPlausible(from: (previous.reading.instant, previous.reading.energy), to: point, maxPowerW: maxPowerW,
                                             minimumMilliseconds: minimumIntervalMilliseconds)
            if !continues { chain = [] }
        }
        let firstHeld = chain.first?.reading.instant ?? reading.instant
        if chain.count + 1 >= confirmReadings, SequenceRules.milliseconds(from: firstHeld, to: reading.instant) >= confirmMilliseconds {
            let segment = last.segment + 1
            self.last = StoredIndex(instant: reading.instant, energy: reading.energy, segment: segment)
            candidates = []
            return .confirmReset(segment: segment, released: chain)
        }
        candidates = chain
        return .holdAsCandidate(Rejection(rejection.reason, rejection.detail + "; held aside: if the device goes on from it, it is a reset"))
    }

    /// Records a held reading once its quarantine row exists.
    public mutating func hold(_ candidate: ResetCandidate) {
        candidates.append(candidate)
        candidates.sort { $0.reading.instant < $1.reading.instant }
    }
}

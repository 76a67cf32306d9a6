import HubCore

/// How far a slot's figure can be trusted.
public enum SlotQuality: UInt8, Sendable, Hashable, Comparable, Codable, CaseIterable {
    /// Both slot boundaries come from readings no further apart than the estimated-gap threshold.
    case measured = 1
    /// Known, but a reading pair used spans more than the threshold: spread by interpolation.
    case estimated = 2
    /// A boundary is unknown (before the first reading, after the last, across a reset).
    case missing = 3

    public static func < (lhs: SlotQuality, rhs: SlotQuality) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The less trustworthy of the two.
    @inline(__always) public func worst(_ other: SlotQuality) -> SlotQuality { self.rawValue >= other.rawValue ? self : other }
}

/// Slots of a fixed length aligned to UTC multiples of that length; slot `n` starts at `n * length`.
/// The length divides an hour, so Paris days (whole-hour offsets) start on a slot boundary.
public struct SlotGrid: Sendable, Hashable {
    public let minutes: Int
    public let milliseconds: Int64

    public init(minutes: Int) throws {
        guard minutes > 0, minutes <= 60, 60 % minutes == 0 else {
            throw HubError.configuration("energy.slotMinutes must divide an hour (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 or 60); got \(minutes)")
        }
        self.minutes = minutes
        self.milliseconds = Int64(minutes) * 60_000
    }

    /// The slot containing an instant.
    @inline(__always) public func slot(containing instant: Instant) -> Int64 { instant.millisecondsSince1970.floorDiv(milliseconds) }

    /// The first slot starting at or after an instant.
    @inline(__always) public func slot(startingAtOrAfter instant: Instant) -> Int64 {
        let slot = instant.millisecondsSince1970.floorDiv(milliseconds)
        return slot * milliseconds == instant.millisecondsSince1970 ? slot : slot + 1
    }

    @inline(__always) public func start(of slot: Int64) -> Instant { Instant(millisecondsSince1970: slot * milliseconds) }

    /// The slots of a local day: 46, 48 or 50 half-hour slots in Paris.
    public func slots(of date: LocalDate, in zone: LocalTimeZone) -> Range<Int64> {
        slot(startingAtOrAfter: zone.startOfDay(date))..<slot(startingAtOrAfter: zone.startOfDay(date.advanced(by: 1)))
    }

    /// The slots of the local days `from` through `through`, both included.
    public func slots(from: LocalDate, through: LocalDate, in zone: LocalTimeZone) -> Range<Int64> {
        slot(startingAtOrAfter: zone.startOfDay(from))..<slot(startingAtOrAfter: zone.startOfDay(through.advanced(by: 1)))
    }

    /// The slots whose energy or quality can change when the readings strictly between `from`
    /// and `to` change, `from` and `to` being stored readings around them (what ingest notes in
    /// `reading_change`): the slots meeting the open interval (from, to). A slot that only
    /// touches `from` or `to` keeps its value: the reading there is its boundary index.
    public func slotsTouched(from: Instant, to: Instant) -> Range<Int64> {
        let first = slot(containing: from)
        return first..<max(first, slot(startingAtOrAfter: to))
    }
}

/// A device's (or a sum of devices') energy per slot over a contiguous range of slots.
public struct SlotSeries: Sendable, Equatable {
    public var slots: Range<Int64>
    /// Wh per slot; 0 where the quality is `missing`.
    public var energy: [Int64]
    public var quality: [SlotQuality]

    public init(slots: Range<Int64>) {
        self.slots = slots
        self.energy = [Int64](repeating: 0, count: slots.count)
        self.quality = [SlotQuality](repeating: .missing, count: slots.count)
    }

    public init(slots: Range<Int64>, energy: [Int64], quality: [SlotQuality]) {
        precondition(energy.count == slots.count && quality.count == slots.count)
        self.slots = slots
        self.energy = energy
        self.quality = quality
    }

    public subscript(slot: Int64) -> (energy: Int64, quality: SlotQuality) {
        let index = Int(slot - slots.lowerBound)
        return (energy[index], quality[index])
    }

    /// Total Wh over the known slots.
    public var knownEnergy: Int64 { zip(energy, quality).reduce(0) { $1.1 == .missing ? $0 : $0 + $1.0 } }
}

/// Turns cumulative indexes into slot energies. The index at a slot boundary is the reading at
/// that instant, or the linear interpolation between the readings just before and just after it
/// when both belong to the same segment; a slot's energy is the difference of its two boundary
/// indexes, known only when both are known and in the same segment (never across a reset).
/// Interpolated indexes are rounded down to the Wh, so sums over slots telescope: the energy of
/// any run of known slots is exactly the index difference between its outer boundaries.
public enum Slotter {
    /// - Parameters:
    ///   - readings: one device's readings, sorted by instant, one per instant.
    ///   - slots: the slots wanted.
    ///   - estimatedGapMilliseconds: a reading pair further apart than this makes the slots it
    ///     spans `estimated`.
    public static func slots(readings: [StoredIndex], slots range: Range<Int64>, grid: SlotGrid, estimatedGapMilliseconds: Int64) -> SlotSeries {
        var series = SlotSeries(slots: range)
        let count = readings.count
        guard count > 0, !range.isEmpty else { return series }
        let length = grid.milliseconds

        // Index of the last reading at or before `boundary`, moving forward only.
        var cursor = -1
        func advance(to boundary: Int64) {
            while cursor + 1 < count && readings[cursor + 1].instant.millisecondsSince1970 <= boundary { cursor += 1 }
        }
        func value(at boundary: Int64) -> (segment: Int, index: Int64)? {
            guard cursor >= 0 else { return nil }
            let before = readings[cursor]
            if before.instant.millisecondsSince1970 == boundary { return (before.segment, before.energy.value) }
            guard cursor + 1 < count else { return nil }
            let after = readings[cursor + 1]
            guard after.segment == before.segment, after.energy >= before.energy else { return nil }
            let delta = after.energy.value - before.energy.value
            let elapsed = boundary - before.instant.millisecondsSince1970
            let span = after.instant.millisecondsSince1970 - before.instant.millisecondsSince1970
            let product = delta.multipliedFullWidth(by: elapsed)
            let (quotient, _) = span.dividingFullWidth(product)
            return (before.segment, before.energy.value + quotient)
        }

        var boundary = range.lowerBound * length
        advance(to: boundary)
        var start = value(at: boundary)
        var startCursor = cursor
        for offset in 0..<range.count {
            let end = boundary + length
            advance(to: end)
            let finish = value(at: end)
            if let start, let finish, start.segment == finish.segment, finish.index >= start.index {
                series.energy[offset] = finish.index - start.index
                // Reading pairs overlapping the open slot: from the one around its start to the last
                // one beginning before its end.
                let lastPair = readings[cursor].instant.millisecondsSince1970 == end ? cursor - 1 : cursor
                var quality = SlotQuality.measured
                var pair = startCursor
                while pair <= lastPair {
                    if readings[pair + 1].instant.millisecondsSince1970 - readings[pair].instant.millisecondsSince1970 > estimatedGapMilliseconds {
                        quality = .estimated
                        break
                    }
                    pair += 1
                }
                series.quality[offset] = quality
            }
            start = finish
            startCursor = cursor
            boundary = end
        }
        return series
    }
}

import EnergyCore
import EnergyHub
import HubCore
import Shared
import Testing
import HubTools

/// Slots from cumulative indexes: interpolation at boundaries, quality, resets, conservation.
@Suite struct SavingsSlotTests {
    let grid = try! SlotGrid(minutes: 30)
    let hour: Int64 = 3_600_000
    /// 2026-06-10T00:00:00Z, a slot boundary.
    let t0 = Instant.parseRFC3339("2026-06-10T00:00:00Z")!

    func point(_ minutes: Int64, _ energy: Int64, segment: Int = 0) -> StoredIndex {
        StoredIndex(instant: t0.adding(milliseconds: minutes * 60_000), energy: WattHours(energy), segment: segment)
    }

    func slots(_ readings: [StoredIndex], count: Int, grid: SlotGrid? = nil, gap: Int64 = 3_600_000) -> SlotSeries {
        let grid = grid ?? self.grid
        let first = grid.slot(containing: t0)
        return Slotter.slots(readings: readings, slots: first..<(first + Int64(count)), grid: grid, estimatedGapMilliseconds: gap)
    }

    @Test func theIndexIsInterpolatedAtSlotBoundaries() {
        // Readings at 00:10 (1000) and 00:50 (1400): 10 Wh a minute. Boundaries: 00:30 -> 1200.
        // Slot 00:00-00:30 is missing (no reading before 00:10); 00:30-01:00 needs 01:00: after the
        // last reading, missing too. Add 01:10 (1500): 01:00 -> 1400 + 100 * 10/20 = 1450.
        let series = slots([point(10, 1000), point(50, 1400), point(70, 1500)], count: 3)
        #expect(series.quality == [.missing, .measured, .missing])
        #expect(series.energy == [0, 250, 0], "1450 - 1200")
    }

    @Test func aReadingOnABoundaryIsUsedAsIs() {
        let series = slots([point(0, 100), point(30, 160), point(60, 161)], count: 2)
        #expect(series.energy == [60, 1])
        #expect(series.quality == [.measured, .measured])
    }

    @Test func interpolationRoundsDownAndSumsTelescope() {
        // 0 at 00:00, 100 at 01:30: boundaries 33.3 -> 33, 66.6 -> 66.
        let series = slots([point(0, 0), point(90, 100)], count: 3)
        #expect(series.energy == [33, 33, 34])
        #expect(series.energy.reduce(0, +) == 100)
    }

    @Test func aPairLongerThanTheThresholdMakesItsSlotsEstimated() {
        // 00:00, 00:30, then nothing until 02:00 (90 minutes), then 02:30.
        let series = slots([point(0, 0), point(30, 50), point(120, 200), point(150, 260)], count: 5)
        #expect(series.quality == [.measured, .estimated, .estimated, .estimated, .measured])
        #expect(series.energy == [50, 50, 50, 50, 60])
        // Exactly the threshold is still measured.
        let edge = slots([point(0, 0), point(60, 100)], count: 2)
        #expect(edge.quality == [.measured, .measured])
    }

    @Test func nothingIsInterpolatedAcrossAReset() {
        // Segment 0 up to 00:40 (index 5200), reset, segment 1 from 00:50 (index 10).
        let series = slots([point(0, 5000), point(20, 5100), point(40, 5200), point(50, 10, segment: 1), point(80, 40, segment: 1), point(90, 50, segment: 1)], count: 3)
        // 00:00-00:30: 5000 -> 5150 (interpolated): 150. 00:30-01:00: 5150 (seg 0) vs 30 (seg 1): missing.
        // 01:00-01:30: 20 (10 + 30 * 10/30, interpolated) -> 50.
        #expect(series.quality == [.measured, .missing, .measured])
        #expect(series.energy == [150, 0, 30])
    }

    @Test func fifteenMinuteSlotsWork() throws {
        let quarter = try SlotGrid(minutes: 15)
        let series = slots([point(0, 0), point(60, 400)], count: 4, grid: quarter)
        #expect(series.energy == [100, 100, 100, 100])
        #expect(series.quality.allSatisfy { $0 == .measured })
        #expect(throws: HubError.self) { try SlotGrid(minutes: 7) }
    }

    @Test func theSlotsOfParisDaysIncludingDSTDays() throws {
        let zone = LocalTimeZone.paris
        #expect(grid.slots(of: LocalDate(parsing: "2026-06-10")!, in: zone).count == 48)
        #expect(grid.slots(of: LocalDate(parsing: "2026-10-25")!, in: zone).count == 50, "last Sunday of October: 25 hours")
        #expect(grid.slots(of: LocalDate(parsing: "2026-03-29")!, in: zone).count == 46, "last Sunday of March: 23 hours")
        #expect(try SlotGrid(minutes: 15).slots(of: LocalDate(parsing: "2026-10-25")!, in: zone).count == 100)
    }

    /// Random devices with random gaps and resets: within each segment, the energy of the slots
    /// between two readings on slot boundaries is exactly their index difference, every known slot
    /// is non-negative, and no slot spans a reset.
    @Test func energyIsConservedFromReadingsToSlots() {
        var random = SeededGenerator(seed: 7)
        for _ in 0..<300 {
            var readings: [StoredIndex] = []
            var minute: Int64 = 0
            var energy = Int64.random(in: 0...1_000_000, using: &random)
            var segment = 0
            for _ in 0..<Int.random(in: 2...80, using: &random) {
                if Int.random(in: 0..<30, using: &random) == 0 {
                    segment += 1
                    energy = Int64.random(in: 0...100, using: &random)
                    minute += Int64.random(in: 1...40, using: &random)
                }
                readings.append(point(minute, energy, segment: segment))
                // Some readings land on 30-minute boundaries, most do not; some gaps are long.
                minute += Bool.random(using: &random) ? 30 - minute % 30 : Int64.random(in: 1...(Int.random(in: 0..<8, using: &random) == 0 ? 600 : 45), using: &random)
                energy += Int64.random(in: 0...3000, using: &random)
            }
            let count = Int(minute / 30) + 2
            let series = slots(readings, count: count)
            #expect(series.energy.allSatisfy { $0 >= 0 })
            for (index, quality) in series.quality.enumerated() where quality == .missing { #expect(series.energy[index] == 0) }
            // For every pair of readings of one segment on boundaries, the slots between sum to the difference.
            let aligned = readings.filter { $0.instant.millisecondsSince1970 % grid.milliseconds == 0 }
            for (a, b) in zip(aligned, aligned.dropFirst()) where a.segment == b.segment {
                let first = Int(grid.slot(containing: a.instant) - series.slots.lowerBound)
                let last = Int(grid.slot(containing: b.instant) - series.slots.lowerBound)
                let known = series.quality[first..<last].allSatisfy { $0 != .missing }
                #expect(known, "inside one segment every slot is known")
                #expect(series.energy[first..<last].reduce(0, +) == b.energy.value - a.energy.value)
            }
            // A slot is known only if no reset happens inside it.
            for (a, b) in zip(readings, readings.dropFirst()) where a.segment != b.segment {
                let firstSlot = grid.slot(containing: a.instant)
                let lastSlot = grid.slot(startingAtOrAfter: b.instant)
                for slot in firstSlot..<lastSlot { #expect(series[slot].quality == .missing) }
            }
        }
    }
}

import EnergyCore
import HubCore

/// How far each household's rounded month drifts from its exact share, per allocation key: the
/// check behind energy.md section 3 ("no household favoured by its position"), used by
/// `bench savings` (the six-household table) and by the fairness property test. The exact shares
/// are real numbers, computed here in floating point: a measurement of the rounding, never a
/// figure that is stored or shown as money or energy.
public enum AllocationFairness {
    public enum Key: String, CaseIterable, Sendable {
        case proRata = "pro rata"
        case staticShares = "static"
        case staticRedistributed = "static with redistribution"
    }

    /// A building over some slots: consumption (slot-major, `households` a row), production per
    /// slot, static shares in millionths, and the slot numbers (which set the rounding's start).
    public struct Building: Sendable {
        public var households: Int
        public var slots: [Int64]
        public var consumption: [Int64]
        public var production: [Int64]
        public var shares: [ShareMillionths]

        public init(households: Int, slots: [Int64], consumption: [Int64], production: [Int64], shares: [ShareMillionths]) {
            self.households = households
            self.slots = slots
            self.consumption = consumption
            self.production = production
            self.shares = shares
        }
    }

    /// Each household's rounded total minus the sum of its exact shares over all slots, in Wh;
    /// also the largest gap between a rounded share and its exact value in any one slot.
    /// `fixedStart` walks from the first household in every slot (the rounding before issue 13),
    /// to show what the moving start changes.
    public static func drift(_ building: Building, key: Key, fixedStart: Bool = false) throws -> (perHousehold: [Double], worstSlot: Double) {
        let m = building.households
        var drift = [Double](repeating: 0, count: m)
        var worst = 0.0
        var allocated = [Int64](repeating: 0, count: m)
        for (offset, slot) in building.slots.enumerated() {
            let row = Array(building.consumption[(offset * m)..<((offset + 1) * m)])
            let production = building.production[offset]
            let start = fixedStart ? 0 : Allocation.rotation(slot: slot, count: m)
            _ = try row.withUnsafeBufferPointer { c in
                try allocated.withUnsafeMutableBufferPointer { a in
                    try building.shares.withUnsafeBufferPointer { k in
                        switch key {
                        case .proRata: return try Allocation.proRata(production: production, consumption: c, allocated: a, start: start)
                        case .staticShares: return try Allocation.staticShares(production: production, consumption: c, shares: k, allocated: a, start: start)
                        case .staticRedistributed: return try Allocation.staticRedistributed(production: production, consumption: c, shares: k, allocated: a, start: start)
                        }
                    }
                }
            }
            let exact = exactShares(consumption: row, production: production, shares: building.shares, key: key)
            for index in 0..<m {
                let gap = Double(allocated[index]) - exact[index]
                drift[index] += gap
                worst = max(worst, abs(gap))
            }
        }
        return (drift, worst)
    }

    /// The real-valued shares of one slot under a key (energy.md section 3).
    public static func exactShares(consumption: [Int64], production: Int64, shares: [ShareMillionths], key: Key) -> [Double] {
        let c = consumption.map { Double(max(0, $0)) }
        let p = Double(max(0, production))
        let k = shares.map { Double($0) / 1_000_000 }
        switch key {
        case .proRata:
            let total = c.reduce(0, +)
            guard total > 0 else { return c.map { _ in 0 } }
            return c.map { $0 * min(1, p / total) }
        case .staticShares:
            return zip(c, k).map { min($0, $1 * p) }
        case .staticRedistributed:
            var x = zip(c, k).map { min($0, $1 * p) }
            var left = p - x.reduce(0, +)
            for _ in 0...(c.count + 1) where left > 1e-9 {
                let short = c.indices.filter { x[$0] < c[$0] - 1e-9 && k[$0] > 0 }
                let weight = short.reduce(0.0) { $0 + k[$1] }
                guard weight > 0 else { break }
                var handed = 0.0
                for index in short {
                    let taken = min(left * k[index] / weight, c[index] - x[index])
                    x[index] += taken
                    handed += taken
                }
                left -= handed
            }
            return x
        }
    }

    /// A synthetic month of a building: households with morning and evening peaks and their own
    /// sizes, PV on a daily bell curve with cloudy days, 30-minute slots from `firstSlot`.
    public static func simulatedMonth(households: Int, slots: Int, firstSlot: Int64, seed: UInt64, shares: [ShareMillionths]) -> Building {
        var random = SeededGenerator(seed: seed)
        let size = (0..<households).map { _ in Double.random(in: 0.5...2.0, using: &random) }
        var consumption: [Int64] = []
        var production: [Int64] = []
        consumption.reserveCapacity(slots * households)
        var cloud = 1.0
        for offset in 0..<slots {
            let hour = Double(offset % 48) / 2
            if offset % 48 == 0 { cloud = Double.random(in: 0.15...1.0, using: &random) }
            let sun = max(0, 1 - ((hour - 12.5) / 5.5) * ((hour - 12.5) / 5.5))  // a parabola from 7:00 to 18:00
            production.append(Int64((2_400 * sun * cloud * Double.random(in: 0.8...1.0, using: &random)).rounded()))
            let peak = (hour >= 7 && hour < 9) || (hour >= 18 && hour < 22) ? 2.5 : 1.0
            for index in 0..<households {
                let base = 90 * size[index] * peak * Double.random(in: 0.3...1.7, using: &random)
                consumption.append(Int64.random(in: 0..<20, using: &random) == 0 ? 0 : Int64(base.rounded()))
            }
        }
        return Building(households: households, slots: (0..<Int64(slots)).map { firstSlot + $0 }, consumption: consumption, production: production, shares: shares)
    }
}

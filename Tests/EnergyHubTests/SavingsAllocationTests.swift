import EnergyCore
import EnergyHub
import HubCore
import Shared
import Testing
import HubTools

/// The allocation keys on worked examples, and their invariants over random buildings.
@Suite struct SavingsAllocationTests {
    enum Key { case proRata, staticShares, redistributed }

    func allocate(_ key: Key, production: Int64, consumption: [Int64], shares: [Int64] = [], start: Int = 0) throws -> (allocated: [Int64], surplus: Int64) {
        var allocated = [Int64](repeating: -1, count: consumption.count)
        let surplus = try consumption.withUnsafeBufferPointer { c in
            try allocated.withUnsafeMutableBufferPointer { a in
                try shares.withUnsafeBufferPointer { k in
                    switch key {
                    case .proRata: return try Allocation.proRata(production: production, consumption: c, allocated: a, start: start)
                    case .staticShares: return try Allocation.staticShares(production: production, consumption: c, shares: k, allocated: a, start: start)
                    case .redistributed: return try Allocation.staticRedistributed(production: production, consumption: c, shares: k, allocated: a, start: start)
                    }
                }
            }
        }
        return (allocated, surplus)
    }

    /// doc.plein-soleil.org: 1 kWh injected in 12:00-12:30; B consumes 0.4 kWh, C 0.8 kWh; "with B
    /// first, B gets 0.4 and C 0.6 (C buys 0.2 from the grid)". Equal static shares with
    /// redistribution give exactly that; plain static leaves 0.1 kWh unused; pro rata splits 1:2.
    @Test func thePleinSoleilExample() throws {
        let half: Int64 = 500_000
        let redistributed = try allocate(.redistributed, production: 1000, consumption: [400, 800], shares: [half, half])
        #expect(redistributed.allocated == [400, 600])
        #expect(redistributed.surplus == 0)
        #expect(800 - redistributed.allocated[1] == 200, "C buys 0.2 kWh from the grid")
        let plain = try allocate(.staticShares, production: 1000, consumption: [400, 800], shares: [half, half])
        #expect(plain.allocated == [400, 500])
        #expect(plain.surplus == 100)
        let proRata = try allocate(.proRata, production: 1000, consumption: [400, 800])
        #expect(proRata.allocated == [333, 667], "1000 * 400/1200 = 333.3 and the cumulative 1000 * 1200/1200 = 1000 give 333 and 667")
        #expect(proRata.surplus == 0)
    }

    @Test func proRataBelowAndAboveTotalConsumption() throws {
        // Below: P = 900 < 1200; shares 900 * (300, 600, 900 cumulative of 1200)...
        let below = try allocate(.proRata, production: 900, consumption: [300, 300, 600])
        #expect(below.allocated == [225, 225, 450])
        #expect(below.surplus == 0)
        // Rounding: P = 100 among three equal consumers: floor(100/3)=33, floor(200/3)=66, 100.
        let thirds = try allocate(.proRata, production: 100, consumption: [50, 50, 50])
        #expect(thirds.allocated == [33, 33, 34])
        // Above: everyone is covered, the rest is surplus.
        let above = try allocate(.proRata, production: 2000, consumption: [300, 300, 600])
        #expect(above.allocated == [300, 300, 600])
        #expect(above.surplus == 800)
        // Nothing produced at night; nothing consumed.
        #expect(try allocate(.proRata, production: 0, consumption: [300, 10]).allocated == [0, 0])
        #expect(try allocate(.proRata, production: 500, consumption: [0, 0]) == ([0, 0], 500))
    }

    @Test func aStaticKeyLeavesSurplus() throws {
        // Shares 0.5 / 0.3 / 0.2 of 1000 Wh: offers 500, 300, 200; the first household uses 100.
        let result = try allocate(.staticShares, production: 1000, consumption: [100, 400, 1000], shares: [500_000, 300_000, 200_000])
        #expect(result.allocated == [100, 300, 200])
        #expect(result.surplus == 400)
        // Shares adding up to less than 1 leave the rest as surplus even when everyone is short.
        let partial = try allocate(.staticShares, production: 1000, consumption: [1000, 1000], shares: [250_000, 250_000])
        #expect(partial.allocated == [250, 250])
        #expect(partial.surplus == 500)
    }

    /// The 400 Wh the first household leaves go to the two others in proportion 0.3 : 0.2
    /// (240 and 160); the second only needs 100 more, so 140 are left and go, in a second round,
    /// to the third, the only one still short: it converges to 100 / 400 / 500, no surplus.
    @Test func redistributionConverges() throws {
        let result = try allocate(.redistributed, production: 1000, consumption: [100, 400, 1000], shares: [500_000, 300_000, 200_000])
        #expect(result.allocated == [100, 400, 500])
        #expect(result.surplus == 0)
        // When every household with a share is full, the rest stays surplus.
        let full = try allocate(.redistributed, production: 1000, consumption: [100, 200, 900], shares: [500_000, 500_000, 0])
        #expect(full.allocated == [100, 200, 0])
        #expect(full.surplus == 700)
    }

    @Test func sharesAddingUpToMoreThanOneAreRefused() {
        #expect(Allocation.shareTotalProblem([600_000, 500_000]) != nil)
        #expect(Allocation.shareTotalProblem([600_000, 400_000]) == nil)
    }

    /// Hundreds of random buildings and slots: for every key, 0 <= A_i <= C_i,
    /// sum A_i + surplus = production, surplus >= 0; below total consumption pro rata and
    /// redistribution with full shares leave nothing unused.
    @Test func invariantsHoldForRandomBuildingsKeysAndSlots() throws {
        var random = SeededGenerator(seed: 20_261_127)
        var checked = 0
        for _ in 0..<600 {
            let count = Int.random(in: 1...60, using: &random)
            let consumption = (0..<count).map { _ in Int.random(in: 0..<5, using: &random) == 0 ? Int64(0) : Int64.random(in: 0...18_000, using: &random) }
            let total = consumption.reduce(0, +)
            let production = Int64.random(in: 0...(2 * total + 1000), using: &random)
            // Random shares adding up to at most 1 (sometimes exactly 1).
            var shares = (0..<count).map { _ in Int64.random(in: 0...1_000_000, using: &random) }
            let sum = shares.reduce(0, +)
            if sum > 0 { shares = shares.map { $0 * 1_000_000 / sum } }
            if Bool.random(using: &random), sum > 0 { shares = shares.map { $0 / 2 } }
            let start = Int.random(in: 0..<count, using: &random)
            for key in [Key.proRata, .staticShares, .redistributed] {
                let (allocated, surplus) = try allocate(key, production: production, consumption: consumption, shares: shares, start: start)
                #expect(surplus >= 0)
                #expect(allocated.reduce(0, +) + surplus == production)
                for (a, c) in zip(allocated, consumption) { #expect(a >= 0 && a <= c) }
                if key == .staticShares {
                    // Each share within 1 Wh of min(C_i, k_i * P), and the leftover whole Wh go to households, not to the surplus.
                    let exact = zip(consumption, shares).map { min($0 * 1_000_000, production * $1) }
                    for (a, x) in zip(allocated, exact) { #expect((a - 1) * 1_000_000 < x && x < (a + 1) * 1_000_000) }
                    let exactTotal: Int64 = exact.reduce(0, +)
                    let roundedTotal: Int64 = allocated.reduce(0, +)
                    #expect(roundedTotal == (exactTotal + 500_000) / 1_000_000, "the exact total to the nearest Wh")
                }
                if key == .proRata {
                    #expect(surplus == max(0, production - total), "pro rata uses every Wh it can")
                    if production < total {
                        for (a, c) in zip(allocated, consumption) {
                            // Within 1 Wh of the exact share c * P / total.
                            #expect((a - 1) * total <= c * production && c * production <= (a + 1) * total)
                        }
                    }
                }
                if key == .redistributed {
                    // Redistribution only adds to the exact shares; each rounded share is within 1 Wh of its exact value.
                    let plain = try allocate(.staticShares, production: production, consumption: consumption, shares: shares, start: start)
                    for (a, p) in zip(allocated, plain.allocated) { #expect(a >= p - 1, "redistribution only adds") }
                    // Nobody with a share is left short while energy is left over.
                    if surplus > 0 { for index in 0..<count where shares[index] > 0 { #expect(allocated[index] == consumption[index]) } }
                }
                checked += 1
            }
        }
        #expect(checked == 1800)
    }
    /// Pro rata's fast path (one multiplication by a rounded-up 2^64 reciprocal) gives exactly the
    /// cumulative floors floor(P * (C_s+...+C_i) / total) walking from a start s, computed here with a full-width
    /// division, at every magnitude: small buildings, totals that divide evenly, and totals just
    /// below and above 2^31 and 2^32 (the fast path's limit).
    @Test func proRataIsTheExactCumulativeFloorAtEveryMagnitude() throws {
        var random = SeededGenerator(seed: 64)
        var compared = 0
        for round in 0..<3000 {
            let count = Int.random(in: 1...50, using: &random)
            let magnitude: Int64 = [18_000, 1 << 26, (1 << 31) / 40, (1 << 32) / 40, (1 << 33) / 40][round % 5]
            var consumption = (0..<count).map { _ in Int64.random(in: 0...magnitude, using: &random) }
            if round % 7 == 0 { consumption = consumption.map { $0 / 6 * 6 } }  // totals with many divisors
            let total = consumption.reduce(0, +)
            guard total > 1 else { continue }
            let production = round % 7 == 0 ? total / 3 : Int64.random(in: 1..<total, using: &random)
            let start = Int.random(in: 0..<count, using: &random)
            let (allocated, surplus) = try allocate(.proRata, production: production, consumption: consumption, start: start)
            #expect(surplus == 0)
            var cumulative: UInt64 = 0
            var previous: UInt64 = 0
            for index in (start..<count).map({ $0 }) + (0..<start).map({ $0 }) {
                let c = consumption[index]
                cumulative += UInt64(c)
                let floor = UInt64(total).dividingFullWidth(cumulative.multipliedFullWidth(by: UInt64(production))).quotient
                #expect(allocated[index] == Int64(floor - previous), "dwelling \(index) of \(count), total \(total), production \(production)")
                previous = floor
            }
            compared += 1
        }
        #expect(compared > 2900)
    }
    /// Static shares with redistribution, written the plain way (a full-width division for every
    /// household in every round): the optimised key must give exactly the same Wh.
    func referenceRedistribution(production: Int64, consumption: [Int64], shares: [Int64], start: Int) -> [Int64] {
        let p = max(0, production)
        // In millionths of a Wh: every household's cap is min(C_i, P).
        let consumption = consumption.map { min($0, p) * 1_000_000 }
        var allocated = zip(consumption, shares).map { max(0, min($0, p * $1)) }
        var surplus = p * 1_000_000 - allocated.reduce(0, +)
        var rounds = 0
        while surplus > 0 {
            rounds += 1
            let short = consumption.indices.filter { allocated[$0] < consumption[$0] }
            let shortShares = short.reduce(Int64(0)) { $0 + shares[$1] }
            if shortShares == 0 { break }
            var cumulative: Int64 = 0
            var previous: Int64 = 0
            var handed: Int64 = 0
            for index in short where shares[index] > 0 {
                cumulative += shares[index]
                let upTo = Int64(UInt64(shortShares).dividingFullWidth(UInt64(surplus).multipliedFullWidth(by: UInt64(cumulative))).quotient)
                let taken = min(upTo - previous, consumption[index] - allocated[index])
                previous = upTo
                allocated[index] += taken
                handed += taken
            }
            surplus -= handed
            if handed == 0 || rounds > consumption.count + 1 { break }
        }
        // Rounded to whole Wh together, walking from `start`, running totals to the nearest Wh.
        var rounded = allocated
        var cumulative: Int64 = 0
        var previous: Int64 = 0
        for index in (start..<allocated.count).map({ $0 }) + (0..<start).map({ $0 }) {
            cumulative += allocated[index]
            rounded[index] = (cumulative + 500_000) / 1_000_000 - previous
            previous = (cumulative + 500_000) / 1_000_000
        }
        return rounded
    }

    @Test func redistributionGivesExactlyThePlainComputation() throws {
        var random = SeededGenerator(seed: 7)
        for round in 0..<3000 {
            let count = Int.random(in: 1...60, using: &random)
            let consumption = (0..<count).map { _ in Int.random(in: 0..<6, using: &random) == 0 ? Int64(0) : Int64.random(in: 0...18_000, using: &random) }
            // Shares adding up to 1, to less, or concentrated on a few households (so the surplus
            // is often larger than the shares of those still short).
            var shares = (0..<count).map { _ in round % 3 == 0 && Bool.random(using: &random) ? Int64(0) : Int64.random(in: 1...1_000_000, using: &random) }
            let sum = max(1, shares.reduce(0, +))
            shares = shares.map { $0 * Int64([1_000_000, 700_000, 20][round % 3]) / sum }
            let total = consumption.reduce(0, +)
            let production = Int64.random(in: 0...(2 * total + 1000), using: &random)
            let start = Int.random(in: 0..<count, using: &random)
            let (allocated, surplus) = try allocate(.redistributed, production: production, consumption: consumption, shares: shares, start: start)
            #expect(allocated == referenceRedistribution(production: production, consumption: consumption, shares: shares, start: start),
                    "production \(production), consumption \(consumption), shares \(shares)")
            #expect(surplus == production - allocated.reduce(0, +))
        }
    }
}

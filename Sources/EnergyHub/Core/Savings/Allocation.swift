import Foundation
import HubCore

/// How a building's PV production is shared among its dwellings in each slot (set per building).
public enum AllocationKeyKind: String, Sendable, Codable, CaseIterable {
    /// The default key in France: A_i = C_i * min(1, P / sum C).
    case proRata = "pro_rata"
    /// Fixed shares from the registry's `share` column: A_i = min(C_i, k_i * P); the rest is surplus.
    case staticShares = "static"
    /// Static shares, then all production not yet allocated (what households leave, and what no
    /// share covers) is handed to those still short, in proportion to their shares, until nothing moves.
    case staticRedistributed = "static_redistributed"
    /// Coefficients k_i(t) for each slot, imported from the organiser's file: A_i = min(C_i, k_i(t) * P).
    /// A slot the file does not cover falls back to pro rata (Enedis applies its default key too).
    case perSlot = "per_slot"
}

/// The shares of a building's participants in a slot, in millionths (0...1,000,000 each).
public typealias ShareMillionths = Int64

/// A broken allocation invariant: a bug, never a user's mistake; reported rather than stored.
public struct AllocationInvariantViolation: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// The allocation rules for one slot, over integer Wh. Pure and allocation-free: the caller owns
/// the buffers (one row of a building's slot-major matrix). Participants whose consumption is
/// unknown are passed with consumption 0, which excludes them under every key.
/// Every function returns the surplus and guarantees, for every participant,
/// 0 <= A_i <= C_i, sum A_i + surplus = production, surplus >= 0 (checked as it goes).
///
/// **Fair rounding** (energy.md section 3). Each key first fixes every household's exact share
/// (a real number), then rounds them together: walking the households from `start`, each gets the
/// difference of the rounded running totals, R(x_s + ... + x_i) - R(x_s + ... + x_i-1) (pro rata
/// rounds down, its total P being whole; the static keys round to the nearest Wh). So the shares
/// add up to the exact total rounded (no Wh created or lost), each is within 1 Wh of its exact
/// value, and the household that loses or gains the fraction is set by `start`, which the caller
/// changes from slot to slot (`rotation(slot:count:)`): no position or id is favoured over a month.
public enum Allocation {
    /// Where the rounding walk starts in a slot: a fixed mix of the slot number, so every position
    /// starts as often as any other over a month, with no pattern tied to the time of day.
    @inline(__always)
    public static func rotation(slot: Int64, count: Int) -> Int {
        guard count > 1 else { return 0 }
        // splitmix64's finaliser: consecutive slots land far apart.
        var z = UInt64(bitPattern: slot) &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        // The high half of z * count is uniform in [0, count) without a division (Lemire).
        return Int(z.multipliedFullWidth(by: UInt64(count)).high)
    }

    /// Shares are exact to a millionth of a Wh before the final rounding to whole Wh.
    static let microWh: Int64 = 1_000_000
    /// Beyond this production in a slot (Wh) the exact shares would not fit in 64 bits: no real
    /// building comes near it (250 kW for half an hour is 125,000 Wh).
    static let maximumProduction: Int64 = Int64.max / 1_000_000 / 4

    /// Pro rata of consumption, A_i = C_i * P / sum C below total consumption. Every Wh is
    /// allocated: A_i is the difference of the rounded-down running shares
    /// floor(P * (C_s + ... + C_i) / sum C), walking from `start`, so the shares add up to P
    /// exactly and each is within 1 Wh of C_i * P / sum C.
    @inline(__always)
    public static func proRata(production: Int64, consumption: UnsafeBufferPointer<Int64>, allocated: UnsafeMutableBufferPointer<Int64>,
                               start: Int) throws -> Int64 {
        let count = consumption.count
        var total: Int64 = 0
        for index in 0..<count { total &+= consumption[index] }
        if production <= 0 || total == 0 {
            for index in 0..<count { allocated[index] = 0 }
            return try checked(production: production, allocatedTotal: 0)
        }
        if production >= total {
            for index in 0..<count { allocated[index] = consumption[index] }
            return try checked(production: production, allocatedTotal: total)
        }
        let first = start >= 0 && start < count ? start : 0
        if total >= 1 << 32 {
            // Beyond any real building; exact but slower.
            var cumulative: UInt64 = 0
            var previous: UInt64 = 0
            var index = first
            for _ in 0..<count {
                cumulative &+= UInt64(consumption[index])
                let share = multiplyDivide(cumulative, UInt64(production), UInt64(total))
                allocated[index] = Int64(share &- previous)
                previous = share
                index += 1
                if index == count { index = 0 }
            }
            return try checked(production: production, allocatedTotal: Int64(previous))
        }
        // floor(cumulative * P / total) with one multiplication: r = ceil(2^64 * P / total) and
        // share = high 64 bits of cumulative * r. The estimate exceeds cumulative * P / total by
        // less than cumulative / 2^64 <= total / 2^64, and the exact quotient's fraction is at most
        // 1 - 1 / total; as total < 2^32, total / 2^64 < 1 / total, so the floor is never crossed.
        let p = UInt64(production)
        let t = UInt64(total)
        let reciprocal = ceilingReciprocal(p, over: t)
        var cumulative: UInt64 = 0
        var previous: UInt64 = 0
        // Two plain passes, [first, count) then [0, first): the walk from `first` without a
        // wrap-around test per household.
        var lower = first
        var upper = count
        for _ in 0..<2 {
            for index in lower..<upper {
                let c = consumption[index]
                cumulative &+= UInt64(c)
                let share = cumulative.multipliedFullWidth(by: reciprocal).high
                let a = Int64(share &- previous)
                if a < 0 || a > c { throw AllocationInvariantViolation(description: "pro rata gave \(a) Wh to a household consuming \(c) Wh") }
                allocated[index] = a
                previous = share
            }
            lower = 0
            upper = first
        }
        return try checked(production: production, allocatedTotal: Int64(previous))
    }

    /// Static shares (also per-slot coefficients): the exact shares x_i = min(C_i, k_i * P), rounded
    /// together from `start` (see the type's note): the leftover whole Wh go to households still
    /// short, not to the surplus. The shares must add up to at most 1 (`shareTotalProblem`), which
    /// keeps the surplus non-negative.
    @inline(__always)
    public static func staticShares(production: Int64, consumption: UnsafeBufferPointer<Int64>, shares: UnsafeBufferPointer<ShareMillionths>,
                                    allocated: UnsafeMutableBufferPointer<Int64>, start: Int) throws -> Int64 {
        try exactStaticShares(production: production, consumption: consumption, shares: shares, allocated: allocated)
        return try roundTogether(production: production, consumption: consumption, allocated: allocated, start: start)
    }

    /// The exact static shares, in millionths of a Wh: min(C_i * 10^6, k_i * P).
    @inline(__always)
    static func exactStaticShares(production: Int64, consumption: UnsafeBufferPointer<Int64>, shares: UnsafeBufferPointer<ShareMillionths>,
                                  allocated: UnsafeMutableBufferPointer<Int64>) throws {
        let p = max(0, production)
        guard p <= maximumProduction else { throw AllocationInvariantViolation(description: "a production of \(p) Wh in one slot is beyond any building") }
        for index in 0..<consumption.count {
            let c = max(0, consumption[index])
            let offer = p * max(0, shares[index])
            // c >= p: the offer (at most p millionths of a Wh times 10^6) is the smaller, and c * 10^6 is never formed.
            allocated[index] = c >= p ? offer : min(c * microWh, offer)
        }
    }

    /// Turns exact shares in millionths of a Wh (in `allocated`) into whole Wh, walking from
    /// `start`: each gets round(running total) - round(previous running total), to the nearest Wh
    /// (half up). The slot's total is its exact total to the nearest Wh, so no Wh drifts to the
    /// surplus on average (rounding down would lose half a Wh a slot). Returns the surplus.
    @inline(__always)
    static func roundTogether(production: Int64, consumption: UnsafeBufferPointer<Int64>, allocated: UnsafeMutableBufferPointer<Int64>, start: Int) throws -> Int64 {
        let count = consumption.count
        guard count > 0 else { return try checked(production: production, allocatedTotal: 0) }
        var index = start >= 0 && start < count ? start : 0
        var cumulative: Int64 = 0
        var previous: Int64 = 0
        for _ in 0..<count {
            cumulative &+= allocated[index]
            let upTo = (cumulative &+ microWh / 2) / microWh
            let a = upTo &- previous
            if a < 0 || a > consumption[index] { throw AllocationInvariantViolation(description: "static shares gave \(a) Wh to a household consuming \(consumption[index]) Wh") }
            allocated[index] = a
            previous = upTo
            index += 1
            if index == count { index = 0 }
        }
        return try checked(production: production, allocatedTotal: previous)
    }

    /// Static shares with redistribution: start from the exact static shares, then hand all
    /// production not yet allocated (what households left unused, and what no share covers when
    /// the shares add up to less than 1) to the households still short (A_i < C_i) with a positive
    /// share, in proportion to their shares, capped at what each still needs; repeat until nothing
    /// is left or nobody short remains. The rounds work in millionths of a Wh (every millionth
    /// handed out, by running totals), so they are exact to far below a Wh; the result is then
    /// rounded to whole Wh together, from `start`. Each round either places everything or fills
    /// at least one household, so it ends within n + 1 rounds.
    public static func staticRedistributed(production: Int64, consumption: UnsafeBufferPointer<Int64>, shares: UnsafeBufferPointer<ShareMillionths>,
                                           allocated: UnsafeMutableBufferPointer<Int64>, start: Int) throws -> Int64 {
        try exactStaticShares(production: production, consumption: consumption, shares: shares, allocated: allocated)
        let count = consumption.count
        var placed: Int64 = 0
        for index in 0..<count { placed &+= allocated[index] }
        // What a household may still take is capped at P as well as at C_i, so C_i * 10^6 is
        // never formed from an implausible consumption.
        let p = max(0, production)
        var surplus = p * microWh - placed
        var rounds = 0
        while surplus > 0 {
            rounds += 1
            // Branch-free passes over every household: one that is full, or has no share, adds
            // nothing to the running share total, so it is offered nothing and takes nothing.
            var shortShares: Int64 = 0
            for index in 0..<count { shortShares &+= allocated[index] < min(consumption[index], p) * microWh ? shares[index] : 0 }
            if shortShares <= 0 { break }
            var cumulative: Int64 = 0
            var previous: Int64 = 0
            var handed: Int64 = 0
            // floor(surplus * cumulative / shortShares) without a division per household:
            // surplus = q * shortShares + rest, so it is q * cumulative + floor(rest * cumulative /
            // shortShares), and the latter is the high half of cumulative * ceil(2^64 * rest /
            // shortShares), exact because cumulative <= shortShares < 2^32 (see proRata).
            let k = UInt64(shortShares)
            let q = UInt64(surplus) / k
            let rest = UInt64(surplus) % k
            let reciprocal = ceilingReciprocal(rest, over: k)
            let exact = k >= 1 << 32
            for index in 0..<count {
                let need = min(consumption[index], p) &* microWh &- allocated[index]
                let share = shares[index]
                cumulative &+= need > 0 && share > 0 ? share : 0
                let c = UInt64(cumulative)
                let upTo = exact
                    ? Int64(multiplyDivide(UInt64(surplus), c, k))
                    : Int64(q &* c &+ c.multipliedFullWidth(by: reciprocal).high)
                let taken = min(upTo &- previous, need)
                previous = upTo
                allocated[index] &+= taken
                handed &+= taken
            }
            surplus -= handed
            if handed == 0 || rounds > count + 1 { break }
        }
        return try roundTogether(production: production, consumption: consumption, allocated: allocated, start: start)
    }

    /// Why shares cannot be used (they add up to more than 1), or nil when they can.
    public static func shareTotalProblem(_ shares: some Sequence<ShareMillionths>) -> String? {
        var total: Int64 = 0
        for share in shares {
            if share < 0 || share > 1_000_000 { return "a share of \(share) millionths is outside 0...1" }
            total += share
        }
        return total > 1_000_000 ? "the shares add up to \(Decimal6.text(total)), more than 1" : nil
    }

    @inline(__always)
    static func checked(production: Int64, allocatedTotal: Int64) throws -> Int64 {
        let surplus = max(0, production) - allocatedTotal
        if surplus < 0 { throw AllocationInvariantViolation(description: "allocated \(allocatedTotal) Wh out of a production of \(production) Wh") }
        return surplus
    }

    /// ceil(2^64 * numerator / denominator), for numerator < denominator: the high half of
    /// x * this is floor(x * numerator / denominator) exactly for every x <= denominator < 2^32.
    @inline(__always)
    static func ceilingReciprocal(_ numerator: UInt64, over denominator: UInt64) -> UInt64 {
        let division = denominator.dividingFullWidth((high: numerator, low: 0))
        return division.quotient &+ (division.remainder > 0 ? 1 : 0)
    }

    @inline(__always)
    static func multiplyDivide(_ a: UInt64, _ b: UInt64, _ c: UInt64) -> UInt64 {
        let product = a.multipliedFullWidth(by: b)
        return c.dividingFullWidth(product).quotient
    }
}

/// Decimal text with six decimals for shares and coefficients ("0.125" is 125,000 millionths).
public enum Decimal6 {
    public static func parse(_ text: String) -> Int64? {
        DecimalText.scaled(text.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: ",", with: "."), scale: 6, rounding: .reject)
    }

    public static func text(_ millionths: Int64) -> String {
        let sign = millionths < 0 ? "-" : ""
        let magnitude = millionths.magnitude
        var fraction = String(magnitude % 1_000_000 + 1_000_000).dropFirst()
        while fraction.last == "0" { fraction.removeLast() }
        return sign + "\(magnitude / 1_000_000)" + (fraction.isEmpty ? "" : "." + fraction)
    }
}

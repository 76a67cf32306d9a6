import Foundation
import HubCore

/// A price in millionths of a euro per kWh (0.2516 EUR/kWh is 251,600). Wh times this is an
/// amount in nano-euros, exactly.
public typealias MicroEurosPerKWh = Int64

/// An exact amount of money in nano-euros (1e-9 EUR): Wh x micro-euros/kWh. Reported figures are
/// rounded to cents once per line, half away from zero.
public struct NanoEuros: Hashable, Comparable, Sendable, AdditiveArithmetic {
    public var value: Int64

    public init(_ value: Int64) { self.value = value }
    public static let zero = NanoEuros(0)
    public static func < (lhs: NanoEuros, rhs: NanoEuros) -> Bool { lhs.value < rhs.value }
    public static func + (lhs: NanoEuros, rhs: NanoEuros) -> NanoEuros { NanoEuros(lhs.value + rhs.value) }
    public static func - (lhs: NanoEuros, rhs: NanoEuros) -> NanoEuros { NanoEuros(lhs.value - rhs.value) }

    /// Energy priced per kWh.
    @inline(__always) public static func of(_ energy: Int64, at price: MicroEurosPerKWh) -> NanoEuros { NanoEuros(energy * price) }

    /// Rounded to whole cents, half away from zero (1 cent = 10,000,000 nano-euros).
    public var cents: Cents { Cents(NanoEuros.divideRounded(value, 10_000_000)) }

    /// a / b rounded half away from zero (b > 0).
    public static func divideRounded(_ a: Int64, _ b: Int64) -> Int64 {
        let quotient = a / b
        let remainder = a % b
        if remainder.magnitude * 2 >= b.magnitude { return quotient + (a < 0 ? -1 : 1) }
        return quotient
    }
}

/// A tariff plan and its per-dwelling settings, as written in the registry's `tariff` cell:
/// the plan name, then for `edf-bleu-hphc` one or more off-peak windows `HH:MM-HH:MM` in local
/// time, separated by spaces. A window may cross midnight (`22:26-06:26`); windows may not overlap.
/// Examples: `edf-bleu-base`, `edf-bleu-hphc 22:26-06:26`, `edf-bleu-hphc 02:00-07:00 13:00-16:00`.
public struct TariffPlan: Sendable, Hashable, CustomStringConvertible {
    /// The regulated EDF "Tarif Bleu" options the hub knows the dated prices of.
    public enum Option: String, Sendable, Hashable, CaseIterable {
        case base = "edf-bleu-base"
        case peakOffPeak = "edf-bleu-hphc"
    }

    /// An off-peak window in local minutes of the day, [start, end), crossing midnight when end <= start.
    public struct Window: Sendable, Hashable, CustomStringConvertible {
        public var start: Int
        public var end: Int

        public func contains(minuteOfDay minute: Int) -> Bool {
            start < end ? (minute >= start && minute < end) : (minute >= start || minute < end)
        }

        public var minutes: Int { start < end ? end - start : 1440 - start + end }

        public var description: String {
            func clock(_ minute: Int) -> String { pad(minute / 60) + ":" + pad(minute % 60) }
            return clock(start) + "-" + clock(end)
        }
    }

    public var option: Option
    public var offPeak: [Window]

    /// The plan of a dwelling without a `tariff` cell.
    public static let standard = TariffPlan(option: .base, offPeak: [])

    public init(option: Option, offPeak: [Window]) {
        self.option = option
        self.offPeak = offPeak
    }

    /// The cell text, normalised (`edf-bleu-hphc 22:26-06:26`).
    public var description: String { ([option.rawValue] + offPeak.map(\.description)).joined(separator: " ") }

    /// Parses a tariff cell; the error says what is wrong in words a landlord's staff can act on.
    public static func parse(_ text: String) -> Result<TariffPlan, HubError> {
        func fail(_ message: String) -> Result<TariffPlan, HubError> { .failure(HubError.badRequest(field: "tariff", code: "invalid_tariff", message)) }
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let name = words.first else { return fail("the tariff is empty") }
        guard let option = Option(rawValue: name.lowercased()) else {
            return fail("unknown plan \(name): use \(Option.allCases.map(\.rawValue).joined(separator: " or "))")
        }
        var windows: [Window] = []
        for word in words.dropFirst() {
            let parts = word.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 2, let start = minuteOfDay(parts[0]), let end = minuteOfDay(parts[1]) else {
                return fail("\(word) is not an off-peak window HH:MM-HH:MM (local time, e.g. 22:26-06:26)")
            }
            guard start != end else { return fail("the off-peak window \(word) is empty") }
            windows.append(Window(start: start, end: end))
        }
        switch option {
        case .base:
            guard windows.isEmpty else { return fail("\(Option.base.rawValue) has no off-peak windows") }
        case .peakOffPeak:
            guard !windows.isEmpty else { return fail("\(Option.peakOffPeak.rawValue) needs its off-peak windows, e.g. \(Option.peakOffPeak.rawValue) 22:26-06:26") }
            for minute in 0..<1440 where windows.filter({ $0.contains(minuteOfDay: minute) }).count > 1 {
                return fail("the off-peak windows overlap at \(pad(minute / 60)):\(pad(minute % 60))")
            }
        }
        return .success(TariffPlan(option: option, offPeak: windows))
    }

    /// The registry importer's check of the `tariff` column (pass to `RegistryImporter(tariffCheck:)`).
    /// Checks a registry `tariff` cell: nil when it is valid, else the reason.
    public typealias RegistryCheck = @Sendable (String) -> String?

    public static let registryCheck: RegistryCheck = { text in
        switch parse(text) {
        case .success: return nil
        case .failure(let error): return error.message
        }
    }

    /// Whether a local wall-clock minute of the day is off-peak under this plan.
    public func isOffPeak(minuteOfDay minute: Int) -> Bool {
        option == .peakOffPeak && offPeak.contains { $0.contains(minuteOfDay: minute) }
    }

    /// How many of the minutes [start, start + length) of a local day (wrapping past midnight)
    /// are off-peak under this plan: what prices a slot that straddles a window's boundary.
    public func offPeakMinutes(from start: Int, length: Int) -> Int {
        guard option == .peakOffPeak, length > 0 else { return 0 }
        let from = ((start % 1440) + 1440) % 1440
        let to = from + length
        var minutes = 0
        for window in offPeak {
            // The window as intervals on a line of minutes long enough for a slot that runs past midnight.
            let pieces: [(Int, Int)] = window.start < window.end
                ? [(window.start, window.end), (window.start + 1440, window.end + 1440)]
                : [(window.start - 1440, window.end), (window.start, window.end + 1440), (window.start + 1440, window.end + 2880)]
            for (low, high) in pieces { minutes += max(0, min(to, high) - max(from, low)) }
        }
        return min(minutes, length)
    }

    static func minuteOfDay(_ text: Substring) -> Int? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 2, parts[1].count == 2,
              let hour = Int(parts[0]), let minute = Int(parts[1]), (0..<24).contains(hour), (0..<60).contains(minute)
        else { return nil }
        return hour * 60 + minute
    }
}

private func pad(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }

/// The regulated prices of EDF's Tarif Bleu, incl. tax, dated (energy.md section 5). Before the
/// first date the first row applies: the hub has no older prices.
public struct RegulatedPrices: Sendable, Hashable {
    public struct Row: Sendable, Hashable {
        public var since: LocalDate
        public var base: MicroEurosPerKWh
        public var peak: MicroEurosPerKWh
        public var offPeak: MicroEurosPerKWh
    }

    public var rows: [Row]

    public static let edfBleu = RegulatedPrices(rows: [
        Row(since: LocalDate(year: 2024, month: 2, day: 1)!, base: 251_600, peak: 270_000, offPeak: 206_800),
        Row(since: LocalDate(year: 2025, month: 2, day: 1)!, base: 201_600, peak: 214_600, offPeak: 169_600),
        Row(since: LocalDate(year: 2025, month: 8, day: 1)!, base: 195_200, peak: 208_100, offPeak: 163_500),
    ])

    public func row(on date: LocalDate) -> Row {
        var found = rows[0]
        for row in rows where row.since <= date { found = row }
        return found
    }

    /// What `energy` Wh taken from the shared production instead of the grid saves a household on
    /// `plan`, in a slot of `minutes` starting at this local time, when the shared kWh costs it
    /// `localPrice`: the slot is priced by its minutes in each period (its energy split in
    /// proportion), so an off-peak window at odd minutes (12:10-14:40) counts to the minute.
    /// Exact to the nano-euro, rounded half away from zero.
    public func savings(of energy: Int64, plan: TariffPlan, slotStart local: LocalDateTime, minutes: Int, localPrice: MicroEurosPerKWh) -> NanoEuros {
        let row = row(on: local.date)
        switch plan.option {
        case .base:
            return NanoEuros.of(energy, at: row.base - localPrice)
        case .peakOffPeak:
            let offPeak = plan.offPeakMinutes(from: local.hour * 60 + local.minute, length: minutes)
            if offPeak == 0 { return NanoEuros.of(energy, at: row.peak - localPrice) }
            if offPeak >= minutes { return NanoEuros.of(energy, at: row.offPeak - localPrice) }
            let weighted = Int64(offPeak) * (row.offPeak - localPrice) + Int64(minutes - offPeak) * (row.peak - localPrice)
            return NanoEuros(NanoEuros.divideRounded(energy * weighted, Int64(minutes)))
        }
    }

    /// The price a household on `plan` pays for a kWh starting at this local date and time.
    public func price(plan: TariffPlan, at local: LocalDateTime) -> MicroEurosPerKWh {
        let row = row(on: local.date)
        switch plan.option {
        case .base: return row.base
        case .peakOffPeak: return plan.isOffPeak(minuteOfDay: local.hour * 60 + local.minute) ? row.offPeak : row.peak
        }
    }
}

/// A value that changes on given local dates (a plan, a share, a price, a key): the latest entry
/// whose date is on or before the day asked applies; nothing applies before the first.
public struct Dated<Value: Sendable & Hashable>: Sendable, Hashable {
    public private(set) var entries: [(since: LocalDate, value: Value)]

    public init(_ entries: [(since: LocalDate, value: Value)] = []) {
        self.entries = entries.sorted { $0.since < $1.since }
    }

    public func value(on date: LocalDate) -> Value? {
        var found: Value?
        for entry in entries {
            if entry.since <= date { found = entry.value } else { break }
        }
        return found
    }

    public static func == (lhs: Dated, rhs: Dated) -> Bool {
        lhs.entries.count == rhs.entries.count && zip(lhs.entries, rhs.entries).allSatisfy { $0.since == $1.since && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        for entry in entries {
            hasher.combine(entry.since)
            hasher.combine(entry.value)
        }
    }
}

import HubCore

/// A device's slots together with the slots it served the building (or dwelling) in.
public struct ServedSeries: Sendable, Equatable {
    public var device: String
    public var series: SlotSeries
    /// The slots of its installation period; outside them the device does not count.
    public var served: Range<Int64>

    public init(device: String, series: SlotSeries, served: Range<Int64>) {
        self.device = device
        self.series = series
        self.served = served
    }

    @inline(__always) func value(at slot: Int64) -> (energy: Int64, quality: SlotQuality)? {
        guard served.contains(slot) else { return nil }
        guard series.slots.contains(slot) else { return (0, .missing) }
        return series[slot]
    }
}

/// What the engine needs to know of a dwelling.
public struct DwellingInput: Sendable, Equatable {
    public var id: String
    /// Its meters across box replacements.
    public var meters: [ServedSeries]
    public var tariff: Dated<TariffPlan>
    public var share: Dated<ShareMillionths>

    public init(id: String, meters: [ServedSeries], tariff: Dated<TariffPlan> = Dated(), share: Dated<ShareMillionths> = Dated()) {
        self.id = id
        self.meters = meters
        self.tariff = tariff
        self.share = share
    }
}

/// A building over a range of slots: its dwellings (in a stable order), its PV devices, its key.
public struct BuildingInput: Sendable {
    public var building: String
    public var slots: Range<Int64>
    public var dwellings: [DwellingInput]
    public var producers: [ServedSeries]
    /// The key in force from each date; pro rata before the first entry.
    public var key: Dated<AllocationKeyKind>
    /// Per-slot coefficients by slot, in the order of `dwellings` (used under `per_slot`).
    public var coefficients: [Int64: [ShareMillionths]]

    public init(building: String, slots: Range<Int64>, dwellings: [DwellingInput], producers: [ServedSeries],
                key: Dated<AllocationKeyKind> = Dated(), coefficients: [Int64: [ShareMillionths]] = [:]) {
        self.building = building
        self.slots = slots
        self.dwellings = dwellings
        self.producers = producers
        self.key = key
        self.coefficients = coefficients
    }
}

/// A building's figures per slot, and each dwelling's. Arrays are indexed by slot offset (and,
/// for dwellings, `dwelling * slotCount + offset`).
public struct BuildingSlots: Sendable, Equatable {
    public var building: String
    public var slots: Range<Int64>
    public var dwellings: [String]
    public var slotCount: Int { slots.count }

    /// A meter served the dwelling in the slot.
    public var inService: [Bool]
    /// Known consumption (0 where unknown).
    public var consumption: [Int64]
    public var consumptionKnown: [Bool]
    public var allocated: [Int64]
    public var savings: [Int64]
    /// The quality of the dwelling's consumption (its meters). When production is unknown the
    /// building's slot is missing and nothing is allocated.
    public var quality: [SlotQuality]

    /// Production (0 where unknown), and whether any device served (else nothing to share: 0).
    public var production: [Int64]
    public var productionQuality: [SlotQuality]
    public var buildingAllocated: [Int64]
    public var surplus: [Int64]
    public var buildingConsumption: [Int64]
    /// Surplus revenue, nano-euros.
    public var revenue: [Int64]
    public var buildingQuality: [SlotQuality]
    /// Days the allocation could not be made, and why (e.g. static shares adding up to more than 1).
    public var problems: [String]
}

/// Computes a building's slots: production, consumption, allocation by the building's key,
/// savings priced at each dwelling's tariff, surplus and its revenue. Pure.
public enum BuildingEngine {
    public static func compute(_ input: BuildingInput, configuration: EnergyConfiguration) throws -> BuildingSlots {
        let n = input.slots.count
        let m = input.dwellings.count
        var result = BuildingSlots(
            building: input.building, slots: input.slots, dwellings: input.dwellings.map(\.id),
            inService: [Bool](repeating: false, count: n * m), consumption: [Int64](repeating: 0, count: n * m),
            consumptionKnown: [Bool](repeating: false, count: n * m), allocated: [Int64](repeating: 0, count: n * m),
            savings: [Int64](repeating: 0, count: n * m), quality: [SlotQuality](repeating: .missing, count: n * m),
            production: [Int64](repeating: 0, count: n), productionQuality: [SlotQuality](repeating: .missing, count: n),
            buildingAllocated: [Int64](repeating: 0, count: n), surplus: [Int64](repeating: 0, count: n),
            buildingConsumption: [Int64](repeating: 0, count: n), revenue: [Int64](repeating: 0, count: n),
            buildingQuality: [SlotQuality](repeating: .missing, count: n), problems: [])
        guard n > 0 else { return result }
        let zone = configuration.zone
        let grid = configuration.grid
        var consumption = [Int64](repeating: 0, count: m)
        var shares = [ShareMillionths](repeating: 0, count: m)
        var allocated = [Int64](repeating: 0, count: m)
        var consumptionQuality = [SlotQuality](repeating: .missing, count: m)
        var problemDays = Set<LocalDate>()

        for offset in 0..<n {
            let slot = input.slots.lowerBound + Int64(offset)
            let local = zone.localDateTime(of: grid.start(of: slot))
            let date = local.date

            // Production: every PV device serving the building must be known.
            var production: Int64 = 0
            var productionQuality = SlotQuality.measured
            for producer in input.producers {
                guard let value = producer.value(at: slot) else { continue }
                production += value.energy
                productionQuality = productionQuality.worst(value.quality)
            }
            // Consumption of each dwelling in service: the sum of its serving meters.
            var buildingConsumption: Int64 = 0
            var participantsQuality = SlotQuality.measured
            for index in 0..<m {
                var served = false
                var energy: Int64 = 0
                var quality = SlotQuality.measured
                for meter in input.dwellings[index].meters {
                    guard let value = meter.value(at: slot) else { continue }
                    served = true
                    energy += value.energy
                    quality = quality.worst(value.quality)
                }
                let flat = index * n + offset
                result.inService[flat] = served
                consumptionQuality[index] = served ? quality : .missing
                if served && quality != .missing {
                    consumption[index] = energy
                    result.consumption[flat] = energy
                    result.consumptionKnown[flat] = true
                    buildingConsumption += energy
                    participantsQuality = participantsQuality.worst(quality)
                } else {
                    consumption[index] = 0
                }
            }

            var key = input.key.value(on: date) ?? .proRata
            var slotShares: [ShareMillionths]?
            switch key {
            case .proRata: break
            case .staticShares, .staticRedistributed:
                for index in 0..<m { shares[index] = input.dwellings[index].share.value(on: date) ?? 0 }
                if let problem = Allocation.shareTotalProblem(shares) {
                    if problemDays.insert(date).inserted { result.problems.append("\(date): static shares of building \(input.building): \(problem); nothing allocated") }
                    productionQuality = .missing
                }
            case .perSlot:
                if let coefficients = input.coefficients[slot], coefficients.count == m {
                    slotShares = coefficients
                } else {
                    key = .proRata
                }
            }

            var surplus: Int64 = 0
            if productionQuality == .missing {
                for index in 0..<m { allocated[index] = 0 }
            } else {
                // The rounding walk starts at a household that changes from slot to slot (fair rounding).
                let start = Allocation.rotation(slot: slot, count: m)
                surplus = try consumption.withUnsafeBufferPointer { c in
                    try allocated.withUnsafeMutableBufferPointer { a in
                        switch key {
                        case .proRata:
                            return try Allocation.proRata(production: production, consumption: c, allocated: a, start: start)
                        case .staticShares:
                            return try shares.withUnsafeBufferPointer { try Allocation.staticShares(production: production, consumption: c, shares: $0, allocated: a, start: start) }
                        case .staticRedistributed:
                            return try shares.withUnsafeBufferPointer { try Allocation.staticRedistributed(production: production, consumption: c, shares: $0, allocated: a, start: start) }
                        case .perSlot:
                            return try (slotShares ?? []).withUnsafeBufferPointer { try Allocation.staticShares(production: production, consumption: c, shares: $0, allocated: a, start: start) }
                        }
                    }
                }
            }

            let localPrice = configuration.localPrices.value(on: date) ?? 0
            var allocatedTotal: Int64 = 0
            for index in 0..<m {
                let flat = index * n + offset
                guard result.inService[flat] else { continue }
                let a = allocated[index]
                result.allocated[flat] = a
                allocatedTotal += a
                result.quality[flat] = consumptionQuality[index]
                if a != 0 {
                    let plan = input.dwellings[index].tariff.value(on: date) ?? .standard
                    result.savings[flat] = configuration.regulatedPrices.savings(of: a, plan: plan, slotStart: local, minutes: grid.minutes, localPrice: localPrice).value
                }
            }
            let productionKnown = productionQuality != .missing
            result.production[offset] = productionKnown ? production : 0
            result.productionQuality[offset] = productionQuality
            result.buildingAllocated[offset] = allocatedTotal
            result.surplus[offset] = productionKnown ? surplus : 0
            result.buildingConsumption[offset] = buildingConsumption
            result.revenue[offset] = productionKnown ? NanoEuros.of(surplus, at: configuration.feedInPrices.value(on: date) ?? 0).value : 0
            result.buildingQuality[offset] = productionKnown ? productionQuality.worst(participantsQuality) : .missing
        }
        return result
    }
}

import EnergyCore
import HubCore
import Shared


extension EnergyReports: EnergyFigureStore {
    public func dwelling(_ dwelling: String, from: LocalDate, to: LocalDate, now: Instant, by identity: Identity) async throws -> DwellingEnergyReport {
        try AccessPolicy.require(identity, .read, .dwellingEnergy(dwelling: dwelling), field: "dwelling",
                                 "a household's figures are for that household (and the landlord's staff); an association sees its estate's totals")
        return try await self.dwelling(dwelling, from: from, to: to, now: now)
    }

    public func building(_ building: String, from: LocalDate, to: LocalDate, now: Instant, by identity: Identity) async throws -> BuildingEnergyReport {
        // Only a role that can read some building's figures goes on to the lookup, where the
        // building's estate decides (an unknown id and another estate's look alike).
        try AccessPolicy.require(identity, .read, .buildingEnergy(estate: identity.estate ?? ""), field: "building",
                                 "a building's figures are for its estate's association and the landlord's staff")
        return try await self.building(building, from: from, to: to, now: now, for: identity)
    }

    public func householdShares(building: String, from: LocalDate, to: LocalDate, by identity: Identity) async throws -> HouseholdShares {
        // As for the building's figures: the role first, then the building's estate in the lookup.
        try AccessPolicy.require(identity, .read, .buildingEnergy(estate: identity.estate ?? ""), field: "building",
                                 "a building's figures are for its estate's association and the landlord's staff")
        return try await householdShares(building, from: from, to: to, for: identity)
    }

    public func deviceHealth(building: String, from: LocalDate, to: LocalDate, now: Instant, by identity: Identity) async throws -> [DeviceHealth] {
        try AccessPolicy.require(identity, .read, .buildingEnergy(estate: identity.estate ?? ""), field: "building",
                                 "a building's devices are for its estate's association and the landlord's staff")
        return try await deviceHealth(building, from: from, to: to, now: now, for: identity)
    }

    public func estate(_ estate: String, from: LocalDate, to: LocalDate, now: Instant, by identity: Identity) async throws -> EstateEnergyReport {
        try AccessPolicy.require(identity, .read, .estateEnergy(estate: estate), field: "estate",
                                 "an estate's figures are for its association and the landlord's staff")
        return try await self.estate(estate, from: from, to: to, now: now, for: identity)
    }

    public func landlord(from: LocalDate, to: LocalDate, now: Instant, by identity: Identity) async throws -> LandlordEnergyReport {
        try AccessPolicy.require(identity, .read, .landlordEnergy, "only the landlord's staff see every estate's figures")
        return try await landlord(from: from, to: to, now: now)
    }

    public func estates(by identity: Identity) async throws -> [String] {
        try AccessPolicy.require(identity, .read, .landlordEnergy, "only the landlord's staff see every estate's figures")
        return try await estates()
    }
}

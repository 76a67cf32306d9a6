import HubCore

/// The savings figures as the routes, the pages and the commands read them: async, for a caller
/// whose access `AccessPolicy` decides, answering value types. `EnergyReports` is the SQLite
/// implementation; a server database will add another.
public protocol EnergyFigureStore: Sendable {
    func dwelling(_ dwelling: String, from: LocalDate, to: LocalDate, now: Instant, by identity: Identity) async throws -> DwellingEnergyReport
    func building(_ building: String, from: LocalDate, to: LocalDate, now: Instant, by identity: Identity) async throws -> BuildingEnergyReport
    func estate(_ estate: String, from: LocalDate, to: LocalDate, now: Instant, by identity: Identity) async throws -> EstateEnergyReport
    func landlord(from: LocalDate, to: LocalDate, now: Instant, by identity: Identity) async throws -> LandlordEnergyReport
    /// Every estate's id, for the landlord's staff.
    func estates(by identity: Identity) async throws -> [String]
}

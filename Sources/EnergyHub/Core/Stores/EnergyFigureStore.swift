import HubCore

/// The savings figures as the routes, the pages and the commands read them: async, for a caller
/// whose access `AccessPolicy` decides, answering value types. `EnergyReports` is the SQLite
/// implementation; a server database will add another.
public protocol EnergyFigureStore: Sendable {
    func dwelling(_ dwelling: String, from: LocalDate, to: LocalDate, now: Instant, by identity: Identity) async throws -> DwellingEnergyReport
    func building(_ building: String, from: LocalDate, to: LocalDate, now: Instant, by identity: Identity) async throws -> BuildingEnergyReport
    /// How the building's households shared its production over the period, never naming one:
    /// their count and, from the minimum group size up, the quartiles of their shares and savings.
    /// For whoever may read the building's figures.
    func householdShares(building: String, from: LocalDate, to: LocalDate, by identity: Identity) async throws -> HouseholdShares
    /// Every device that served the building during the period (up to `now`), with its silences of
    /// a day or more and its refused messages counted by reason. For whoever may read the
    /// building's figures: counts only; the refused messages themselves stay with staff.
    func deviceHealth(building: String, from: LocalDate, to: LocalDate, now: Instant, by identity: Identity) async throws -> [DeviceHealth]
    func estate(_ estate: String, from: LocalDate, to: LocalDate, now: Instant, by identity: Identity) async throws -> EstateEnergyReport
    func landlord(from: LocalDate, to: LocalDate, now: Instant, by identity: Identity) async throws -> LandlordEnergyReport
    /// Every estate's id, for the landlord's staff.
    func estates(by identity: Identity) async throws -> [String]
}

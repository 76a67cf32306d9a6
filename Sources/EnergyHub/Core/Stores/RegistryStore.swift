import Foundation
import HubCore

/// One row of the landlord's registry file: a device installed in a building (and, for a meter, a
/// dwelling) from a local date.
public struct RegistryRow: Sendable, Hashable {
    public var line: Int
    public var estate: String
    public var building: String
    public var dwelling: String?
    public var device: String
    public var kind: DeviceKind
    public var format: DeviceFormat
    public var since: LocalDate
    public var until: LocalDate?
    public var tariff: String?
    /// The dwelling's static allocation share, a decimal in [0, 1] kept as normalised text.
    public var share: String?

    package init(line: Int, estate: String, building: String, dwelling: String?, device: String, kind: DeviceKind, format: DeviceFormat,
                 since: LocalDate, until: LocalDate?, tariff: String?, share: String?) {
        self.line = line
        self.estate = estate
        self.building = building
        self.dwelling = dwelling
        self.device = device
        self.kind = kind
        self.format = format
        self.since = since
        self.until = until
        self.tariff = tariff
        self.share = share
    }
}

/// What an import changed.
public struct RegistryImportSummary: Sendable, Equatable, CustomStringConvertible {
    public var rows = 0
    public var estatesAdded = 0
    public var buildingsAdded = 0
    public var dwellingsAdded = 0
    public var devicesAdded = 0
    public var installationsAdded = 0
    public var installationsUpdated = 0
    public var tariffsChanged = 0
    public var sharesChanged = 0
    public var ignoredColumns: [String] = []

    package init() {}

    public var changed: Bool {
        estatesAdded + buildingsAdded + dwellingsAdded + devicesAdded + installationsAdded + installationsUpdated + tariffsChanged + sharesChanged > 0
    }

    public var description: String {
        var text = "\(rows) rows read: \(estatesAdded) estates, \(buildingsAdded) buildings, \(dwellingsAdded) dwellings, \(devicesAdded) devices added; "
            + "\(installationsAdded) installations added, \(installationsUpdated) updated; \(tariffsChanged) tariffs and \(sharesChanged) shares set"
        if !changed { text += " (nothing changed)" }
        if !ignoredColumns.isEmpty { text += "; ignored columns: \(ignoredColumns.joined(separator: ", "))" }
        return text
    }
}

/// The registry as staff change it (estates, buildings, dwellings, devices and their
/// installations; allocation keys, tariffs, coefficients; the months exported), and as the rest of
/// the hub asks about it: async, for a caller `AccessPolicy` lets manage the registry (staff).
/// Each change queues the savings figures it affects for recomputation in the same transaction.
/// `SQLiteRegistryStore` (EnergyHub) implements it; a server database adds another.
public protocol RegistryStore: Sendable {
    /// Imports the landlord's registry file (CSV, `;`-separated): all or nothing.
    func importRegistry(csv: Data, by identity: Identity) async throws -> RegistryImportSummary
    /// Sets a building's allocation key from a local date on.
    func setAllocationKey(building: String, key: AllocationKeyKind, since: LocalDate, by identity: Identity) async throws
    /// Sets a dwelling's tariff plan (a registry `tariff` cell) from a local date on.
    func setTariff(dwelling: String, cell: String, since: LocalDate, by identity: Identity) async throws
    /// Imports per-slot allocation coefficients; returns how many were stored.
    func importCoefficients(csv: Data, by identity: Identity) async throws -> Int
    /// Records that a month's statements were exported for these buildings (all when empty).
    func recordExport(month: String, buildings: [String], by identity: Identity, at now: Instant) async throws
    /// The dwellings of the registry (of one estate, or all), ordered by estate, building, dwelling.
    func dwellings(estate: String?, by identity: Identity) async throws -> [RegistryDwelling]
    /// One dwelling with its building and estate, for whoever may see that household's figures.
    func dwelling(_ dwelling: String, by identity: Identity) async throws -> RegistryDwelling
}

/// A dwelling with its building and estate, as the registry holds it.
public struct RegistryDwelling: Codable, Sendable, Hashable {
    public var estate: String
    public var building: String
    public var dwelling: String

    public init(estate: String, building: String, dwelling: String) {
        self.estate = estate
        self.building = building
        self.dwelling = dwelling
    }
}

import HubCore

/// A registry row's key: an id from a local date (an installation, a tariff, a share).
public struct DatedKey: Sendable, Hashable {
    public var id: String
    public var since: String

    public init(_ id: String, since: String) {
        self.id = id
        self.since = since
    }
}

/// Where an installation puts a device, as the registry holds it.
public struct Placement: Sendable, Hashable {
    public var building: String
    public var dwelling: String?
    public var until: String?

    public init(building: String, dwelling: String?, until: String?) {
        self.building = building
        self.dwelling = dwelling
        self.until = until
    }
}

/// What the registry already holds of the ids an import file names (`RegistryPlan.keys`), as an
/// engine loads it before planning; stored values stay text as stored.
public struct RegistrySnapshot: Sendable {
    public var estates: Set<String> = []
    public var estateOfBuilding: [String: String] = [:]
    public var buildingOfDwelling: [String: String] = [:]
    public var devices: [String: (kind: String, format: String)] = [:]
    public var installations: [DatedKey: Placement] = [:]
    public var tariffs: [DatedKey: String] = [:]
    public var shares: [DatedKey: String] = [:]

    public init() {}
}

/// One write of an import, in the order the rows ask for it.
public enum RegistryChange: Sendable, Hashable {
    case addEstate(String)
    case addBuilding(String, estate: String)
    case addDwelling(String, building: String)
    case addDevice(String, kind: DeviceKind, format: DeviceFormat)
    case addInstallation(DatedKey, Placement)
    case moveInstallation(DatedKey, Placement)
    case setTariff(DatedKey, String)
    case setShare(DatedKey, String)
}

/// The changes parsed rows make to the registry, and the summary they give: the same for every
/// engine, which loads a `RegistrySnapshot` of `keys(rows)` and writes `changes` in one transaction.
public struct RegistryPlan: Sendable {
    public var changes: [RegistryChange] = []
    public var summary = RegistryImportSummary()

    /// The ids of each table whose stored rows the plan needs.
    public struct Keys: Sendable {
        public var estates: [String]
        public var buildings: [String]
        public var dwellings: [String]
        public var devices: [String]
    }

    public static func keys(_ rows: [RegistryRow]) -> Keys {
        func unique(_ values: [String]) -> [String] {
            var seen = Set<String>()
            return values.filter { seen.insert($0).inserted }
        }
        return Keys(estates: unique(rows.map(\.estate)), buildings: unique(rows.map(\.building)),
                    dwellings: unique(rows.compactMap(\.dwelling)), devices: unique(rows.map(\.device)))
    }

    /// Applies the rows one after the other to what is stored; the first row conflicting with the
    /// registry is the error (and nothing is written).
    public init(rows: [RegistryRow], stored: RegistrySnapshot) throws {
        var state = stored
        summary.rows = rows.count
        func fail(_ row: RegistryRow, _ column: String, _ message: String) -> HubError {
            HubError.badRequest(field: "line \(row.line), column \(column)", code: "conflicts_with_registry", "line \(row.line), column \(column): \(message)")
        }
        for row in rows {
            if state.estates.insert(row.estate).inserted {
                changes.append(.addEstate(row.estate))
                summary.estatesAdded += 1
            }
            if let estate = state.estateOfBuilding[row.building] {
                guard estate == row.estate else { throw fail(row, "estate", "building \(row.building) is already registered in estate \(estate)") }
            } else {
                state.estateOfBuilding[row.building] = row.estate
                changes.append(.addBuilding(row.building, estate: row.estate))
                summary.buildingsAdded += 1
            }
            if let dwelling = row.dwelling {
                if let building = state.buildingOfDwelling[dwelling] {
                    guard building == row.building else { throw fail(row, "building", "dwelling \(dwelling) is already registered in building \(building)") }
                } else {
                    state.buildingOfDwelling[dwelling] = row.building
                    changes.append(.addDwelling(dwelling, building: row.building))
                    summary.dwellingsAdded += 1
                }
            }
            if let (kind, format) = state.devices[row.device] {
                guard kind == row.kind.rawValue, format == row.format.rawValue else {
                    throw fail(row, kind == row.kind.rawValue ? "format" : "kind", "device \(row.device) is already registered as a \(kind) publishing \(format)")
                }
            } else {
                state.devices[row.device] = (row.kind.rawValue, row.format.rawValue)
                changes.append(.addDevice(row.device, kind: row.kind, format: row.format))
                summary.devicesAdded += 1
            }
            let key = DatedKey(row.device, since: row.since.description)
            let placement = Placement(building: row.building, dwelling: row.dwelling, until: row.until?.description)
            if let existing = state.installations[key] {
                if existing != placement {
                    changes.append(.moveInstallation(key, placement))
                    summary.installationsUpdated += 1
                }
            } else {
                changes.append(.addInstallation(key, placement))
                summary.installationsAdded += 1
            }
            state.installations[key] = placement
            // A dwelling's tariff or share from the row's date, when it changes what is stored.
            func changed(_ value: String?, _ stored: inout [DatedKey: String]) -> (DatedKey, String)? {
                guard let dwelling = row.dwelling, let value else { return nil }
                let key = DatedKey(dwelling, since: row.since.description)
                guard stored[key] != value else { return nil }
                stored[key] = value
                return (key, value)
            }
            if let (key, tariff) = changed(row.tariff, &state.tariffs) {
                changes.append(.setTariff(key, tariff))
                summary.tariffsChanged += 1
            }
            if let (key, share) = changed(row.share, &state.shares) {
                changes.append(.setShare(key, share))
                summary.sharesChanged += 1
            }
        }
    }
}

extension InstallationPeriod {
    /// A period from a registry query's text columns (`period_end` '9999-12-31' while still
    /// installed); nil for a row no engine should hold (an unknown kind, a bad date).
    public static func fromStored(device: String, kind: String, estate: String, building: String, dwelling: String?,
                                  since: String, periodEnd: String) -> InstallationPeriod? {
        guard let kind = DeviceKind(rawValue: kind), let since = LocalDate(parsing: since) else { return nil }
        return InstallationPeriod(device: device, kind: kind, estate: estate, building: building, dwelling: dwelling, since: since,
                                  until: periodEnd == "9999-12-31" ? nil : LocalDate(parsing: periodEnd))
    }
}

extension DeviceInfo {
    /// A registered device from a registry query's text columns (its first installation's local
    /// date); nil for a row no engine should hold.
    public static func fromStored(id: String, kind: String, format: String, firstSince: String, timeZone: LocalTimeZone) -> DeviceInfo? {
        guard let kind = DeviceKind(rawValue: kind), let format = DeviceFormat(rawValue: format), let since = LocalDate(parsing: firstSince) else { return nil }
        return DeviceInfo(id: id, kind: kind, format: format, installedFrom: timeZone.startOfDay(since))
    }
}

/// The registry's access checks, the same for every engine.
public enum RegistryAccess {
    /// Changing the registry and the savings set-up.
    public static func requireStaff(_ identity: Identity) throws {
        try AccessPolicy.require(identity, .manage, .registry, field: "role", "the registry and the savings set-up are kept by the landlord's staff")
    }

    /// Listing dwellings: an estate's for its association and staff, all of them for staff.
    public static func requireDwellings(estate: String?, _ identity: Identity) throws {
        if let estate {
            try AccessPolicy.require(identity, .read, .estateEnergy(estate: estate), field: "estate", "an estate's dwellings are for its association and the landlord's staff")
        } else {
            try AccessPolicy.require(identity, .read, .landlordEnergy, "every estate's dwellings are for the landlord's staff")
        }
    }

    /// One dwelling. Only staff learn that a dwelling does not exist; others get the same 403 either way.
    public static func requireDwelling(_ dwelling: String, _ identity: Identity) throws {
        try AccessPolicy.require(identity, .read, .dwellingEnergy(dwelling: dwelling), field: "dwelling",
                                 "a household's statement is for that household (and the landlord's staff)")
    }
}

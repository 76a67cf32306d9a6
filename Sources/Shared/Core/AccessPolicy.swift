/// Who may see or change what: one set of pure functions, used by every route, store and command
/// (issue 8). A resource carries the facts the decision needs (whose dwelling, which estate), so
/// the caller looks them up first and asks here; nothing else decides access.
public enum AccessPolicy {
    /// What a caller wants to do with a resource.
    public enum Action: String, Sendable, CaseIterable {
        case read
        case manage
    }

    /// Something a caller asks for, with where it belongs.
    public enum Resource: Sendable, Hashable {
        /// A household's energy figures (consumption, solar share, savings).
        case dwellingEnergy(dwelling: String)
        /// A building's totals, which belong to its estate.
        case buildingEnergy(estate: String)
        /// An estate's totals and the distribution of its households' savings.
        case estateEnergy(estate: String)
        /// Every estate's figures at once.
        case landlordEnergy
        /// A device's whole series, whatever it served.
        case deviceReadings
        /// A meter's readings while it served this dwelling.
        case meterReadings(dwelling: String)
        /// A production (PV) device's readings while it served a building of this estate.
        case productionReadings(estate: String)
        /// Refused messages from the meters.
        case quarantine
        /// A car-share member: bookings, balance and statement (read); memberships, payments,
        /// refunds (manage). Members may be tied to a dwelling and to an estate.
        case member(dwelling: String?, estate: String?)
        /// The ledger as a whole: journal, verification.
        case ledger
    }

    /// True when `identity` may perform `action` on `resource`.
    public static func allows(_ identity: Identity, _ action: Action, _ resource: Resource) -> Bool {
        if identity.role == .staff { return true }
        switch resource {
        case .dwellingEnergy(let dwelling), .meterReadings(let dwelling):
            return action == .read && identity.role == .resident && identity.dwelling == dwelling
        case .buildingEnergy(let estate), .estateEnergy(let estate), .productionReadings(let estate):
            return action == .read && identity.role == .association && identity.estate == estate
        case .landlordEnergy, .deviceReadings, .quarantine:
            return false
        case .member(let dwelling, let estate):
            switch (identity.role, action) {
            case (.association, _): return estate != nil && estate == identity.estate
            case (.resident, .read): return dwelling != nil && dwelling == identity.dwelling
            default: return false
            }
        case .ledger:
            return identity.role == .association && action == .read
        }
    }

    /// Throws 403 naming `field` unless `identity` may perform `action` on `resource`.
    public static func require(_ identity: Identity, _ action: Action, _ resource: Resource, field: String? = nil, _ message: @autoclosure () -> String) throws {
        guard allows(identity, action, resource) else { throw HubError.forbidden(message(), field: field) }
    }
}

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
        /// A car-share booking, which belongs to its rider (a member), to whoever made it and to
        /// the volunteer driver assigned to it (by user name, when that driver has a login).
        case booking(dwelling: String?, estate: String?, bookedBy: String, driverUser: String?)
        /// The member register: listing the members one may see (read), adding members (manage).
        case members
        /// The volunteer drivers: their list (a driver sees their own record), adding or updating
        /// one and assigning one to a booking (manage).
        case drivers
        /// The association's cars: every user sees them; staff add them.
        case vehicles
        /// Trips and charging sessions: logged by staff, the association and drivers (a driver
        /// their own), and listed by them.
        case trips
        /// Logging a ride (a member carried): on a booking, whose assigned driver has the login
        /// `assignedDriverUser` (nil when nobody is assigned or the driver has no login), or
        /// without one (`booking` false: a paper log typed in later). A driver logs only the rides
        /// assigned to them; staff and the association log any (the association its estate's
        /// members', which the member check decides).
        case rideLog(booking: Bool, assignedDriverUser: String?)
        /// A car's logbook: read by staff, the association and drivers (who fill it in); its
        /// odometer gaps explained by a note (manage) by the association and staff.
        case logbook
        /// Money received from a member: the association and staff, and a driver for the cash
        /// handed over during a trip.
        case payments
        /// Deposits, refunds and corrections: the association's cash, kept by it and by staff.
        case cash
        /// The ledger as a whole: journal, balances, cash book, statements of income, the
        /// préfet's report, verification (read); manual entries, closing a month, recognising
        /// deferred memberships (manage). The ledger is one association's, kept for every estate:
        /// its own accounts (bank, cheques, cash box, income, expenses) are read whole by each
        /// estate's association; what names a member is `ledgerEntry`.
        case ledger
        /// One ledger entry in full (label, lines, members), with the estates of the members it
        /// names (none: an entry on the association's own accounts only, as a deposit or a grant).
        /// An association reads it when every member it names is of its estate; otherwise the
        /// entry shows, where the association's own accounts need it, without those members
        /// (`disclosesLedgerEntry`).
        case ledgerEntry(memberEstates: [String?])
        /// The registry of estates, buildings, dwellings and devices, allocation keys, tariffs,
        /// coefficients and export marks.
        case registry
        /// Exporting (and so freezing) a month's statements: the landlord's staff.
        case statementExport
        /// Accounts: who exists, adding one.
        case users
        /// A user's tokens (sessions included): listing, creating and revoking them.
        case tokens(user: String)
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
        case .booking(let dwelling, let estate, let bookedBy, let driverUser):
            switch identity.role {
            case .staff: return true
            // The rider's household and association see and edit it (which status each may set
            // is `BookingRules.checkRoleMaySet`).
            case .association, .resident: return allows(identity, .read, .member(dwelling: dwelling, estate: estate))
            // A driver sees the bookings they made and those they are assigned to, and edits the former.
            case .driver: return bookedBy == identity.name || (action == .read && driverUser != nil && driverUser == identity.name)
            }
        case .members:
            return identity.role == .association || (identity.role == .resident && action == .read)
        case .drivers:
            return identity.role == .association || (identity.role == .driver && action == .read)
        case .vehicles:
            return action == .read
        case .logbook:
            return identity.role == .association || (identity.role == .driver && action == .read)
        case .trips, .payments:
            return identity.role == .association || identity.role == .driver
        case .rideLog(let booking, let assignedDriverUser):
            switch identity.role {
            case .staff, .association: return action == .manage
            case .driver: return action == .manage && booking && assignedDriverUser != nil && assignedDriverUser == identity.name
            case .resident: return false
            }
        case .cash:
            return identity.role == .association
        case .ledger:
            return identity.role == .association && action == .read
        case .ledgerEntry(let estates):
            return identity.role == .association && action == .read && estates.allSatisfy { $0 != nil && $0 == identity.estate }
        case .registry, .users, .statementExport:
            return false
        case .tokens(let user):
            return identity.name == user
        }
    }

    /// How a ledger entry naming members of these estates shows to `identity`: whole, without
    /// the members (and the label) the caller may not see while the amounts on the association's
    /// own accounts stay, or not at all.
    public enum EntryDisclosure: Sendable, Equatable {
        case whole
        case withoutOtherEstatesMembers
        case none
    }

    public static func disclosesLedgerEntry(_ identity: Identity, memberEstates: [String?]) -> EntryDisclosure {
        if allows(identity, .read, .ledgerEntry(memberEstates: memberEstates)) { return .whole }
        return allows(identity, .read, .ledger) ? .withoutOtherEstatesMembers : .none
    }

    /// How figures about households reach a caller who may read a building's or an estate's energy
    /// figures (issue 14, defect 10): whole to the landlord's staff; to anyone else (the estate's
    /// association) only as groups large enough that no household's figure can be worked out, with
    /// no extreme value and whole calendar months (`HouseholdPrivacy`, EnergyCore).
    public enum HouseholdFigures: Sendable, Equatable {
        case whole
        case grouped
    }

    public static func householdFigures(_ identity: Identity) -> HouseholdFigures {
        allows(identity, .read, .landlordEnergy) ? .whole : .grouped
    }

    /// Who a document made for an estate's association is written for: it shows what that
    /// association may see, whoever makes it (the landlord's staff export the statements), so a
    /// statement sent to one association names no member of another estate.
    public static func associationAudience(of estate: String, madeBy identity: Identity) -> Identity {
        Identity(name: identity.name, role: .association, estate: estate)
    }

    /// Throws 403 naming `field` unless `identity` may perform `action` on `resource`.
    public static func require(_ identity: Identity, _ action: Action, _ resource: Resource, field: String? = nil, _ message: @autoclosure () -> String) throws {
        guard allows(identity, action, resource) else { throw HubError.forbidden(message(), field: field) }
    }
}

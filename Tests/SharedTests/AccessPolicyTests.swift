import HubCore
import Testing

/// The access policy as a table: role × resource × relation (own or other dwelling or estate)
/// → allowed or not, each answer written out. `SavingsRoutesTests.everyRouteIsAuthorisedByRole`
/// and `FoundationHTTPTests` ask the same questions over HTTP.
@Suite struct AccessPolicyTests {
    static let staff = Identity(name: "staff", role: .staff)
    static let association = Identity(name: "asso-e", role: .association, estate: "E")
    static let resident = Identity(name: "resident-d1", role: .resident, dwelling: "D1")
    static let driver = Identity(name: "driver", role: .driver)

    typealias Row = (Identity, AccessPolicy.Action, AccessPolicy.Resource, Bool)

    /// `own` is the caller's dwelling D1 or estate E; `other` is D9 or estate F.
    static let table: [Row] = [
        // A household's energy figures: that household and staff.
        (staff, .read, .dwellingEnergy(dwelling: "D1"), true),
        (resident, .read, .dwellingEnergy(dwelling: "D1"), true),
        (resident, .read, .dwellingEnergy(dwelling: "D9"), false),
        (association, .read, .dwellingEnergy(dwelling: "D1"), false),
        (driver, .read, .dwellingEnergy(dwelling: "D1"), false),
        (resident, .manage, .dwellingEnergy(dwelling: "D1"), false),
        // A building's and an estate's totals: the estate's association and staff.
        (staff, .read, .buildingEnergy(estate: "F"), true),
        (association, .read, .buildingEnergy(estate: "E"), true),
        (association, .read, .buildingEnergy(estate: "F"), false),
        (resident, .read, .buildingEnergy(estate: "E"), false),
        (driver, .read, .buildingEnergy(estate: "E"), false),
        (staff, .read, .estateEnergy(estate: "E"), true),
        (association, .read, .estateEnergy(estate: "E"), true),
        (association, .read, .estateEnergy(estate: "F"), false),
        (resident, .read, .estateEnergy(estate: "E"), false),
        (driver, .read, .estateEnergy(estate: "E"), false),
        // Every estate at once: staff only.
        (staff, .read, .landlordEnergy, true),
        (association, .read, .landlordEnergy, false),
        (resident, .read, .landlordEnergy, false),
        (driver, .read, .landlordEnergy, false),
        // Readings: a device's whole series for staff; a meter while in the resident's own
        // dwelling; a production device while in the association's estate.
        (staff, .read, .deviceReadings, true),
        (association, .read, .deviceReadings, false),
        (resident, .read, .deviceReadings, false),
        (resident, .read, .meterReadings(dwelling: "D1"), true),
        (resident, .read, .meterReadings(dwelling: "D9"), false),
        (association, .read, .meterReadings(dwelling: "D1"), false),
        (driver, .read, .meterReadings(dwelling: "D1"), false),
        (association, .read, .productionReadings(estate: "E"), true),
        (association, .read, .productionReadings(estate: "F"), false),
        (resident, .read, .productionReadings(estate: "E"), false),
        (driver, .read, .productionReadings(estate: "E"), false),
        (staff, .read, .quarantine, true),
        (association, .read, .quarantine, false),
        (resident, .read, .quarantine, false),
        (driver, .read, .quarantine, false),
        // Car-share members: the household sees its own; the estate's association sees and
        // manages; a member tied to nothing is staff's.
        (staff, .manage, .member(dwelling: "D9", estate: "F"), true),
        (resident, .read, .member(dwelling: "D1", estate: "E"), true),
        (resident, .manage, .member(dwelling: "D1", estate: "E"), false),
        (resident, .read, .member(dwelling: "D9", estate: "E"), false),
        (resident, .read, .member(dwelling: nil, estate: "E"), false),
        (association, .read, .member(dwelling: "D1", estate: "E"), true),
        (association, .manage, .member(dwelling: "D1", estate: "E"), true),
        (association, .read, .member(dwelling: "D9", estate: "F"), false),
        (association, .manage, .member(dwelling: nil, estate: nil), false),
        (driver, .read, .member(dwelling: "D1", estate: "E"), false),
        // The ledger as a whole: read by the association and staff.
        (staff, .manage, .ledger, true),
        (association, .read, .ledger, true),
        (association, .manage, .ledger, false),
        (resident, .read, .ledger, false),
        (driver, .read, .ledger, false),
        // One ledger entry in full: staff; an association when every member it names is of its
        // estate (an entry naming no one is on the association's own accounts); nobody else.
        (staff, .read, .ledgerEntry(memberEstates: ["F"]), true),
        (association, .read, .ledgerEntry(memberEstates: []), true),
        (association, .read, .ledgerEntry(memberEstates: ["E"]), true),
        (association, .read, .ledgerEntry(memberEstates: ["E", "E"]), true),
        (association, .read, .ledgerEntry(memberEstates: ["F"]), false),
        (association, .read, .ledgerEntry(memberEstates: ["E", "F"]), false),
        (association, .read, .ledgerEntry(memberEstates: [nil]), false),
        (association, .manage, .ledgerEntry(memberEstates: ["E"]), false),
        (resident, .read, .ledgerEntry(memberEstates: []), false),
        (driver, .read, .ledgerEntry(memberEstates: []), false),
        // A booking: its rider's household and association, whoever made it, its driver.
        (staff, .manage, .booking(dwelling: "D9", estate: "F", bookedBy: "someone", driverUser: nil), true),
        (resident, .read, .booking(dwelling: "D1", estate: "E", bookedBy: "someone", driverUser: nil), true),
        (resident, .manage, .booking(dwelling: "D1", estate: "E", bookedBy: "someone", driverUser: nil), true),
        (resident, .read, .booking(dwelling: "D9", estate: "E", bookedBy: "resident-d1", driverUser: nil), false),
        (association, .manage, .booking(dwelling: "D9", estate: "E", bookedBy: "someone", driverUser: nil), true),
        (association, .read, .booking(dwelling: "D9", estate: "F", bookedBy: "asso-e", driverUser: nil), false),
        (driver, .read, .booking(dwelling: "D1", estate: "E", bookedBy: "driver", driverUser: nil), true),
        (driver, .manage, .booking(dwelling: "D1", estate: "E", bookedBy: "driver", driverUser: nil), true),
        (driver, .read, .booking(dwelling: "D1", estate: "E", bookedBy: "someone", driverUser: "driver"), true),
        (driver, .manage, .booking(dwelling: "D1", estate: "E", bookedBy: "someone", driverUser: "driver"), false),
        (driver, .read, .booking(dwelling: "D1", estate: "E", bookedBy: "someone", driverUser: "another"), false),
        // The member register: listed by households (their own members), kept by the association.
        (association, .manage, .members, true),
        (resident, .read, .members, true),
        (resident, .manage, .members, false),
        (driver, .read, .members, false),
        // Volunteer drivers: kept by the association; a driver sees their own record.
        (association, .manage, .drivers, true),
        (driver, .read, .drivers, true),
        (driver, .manage, .drivers, false),
        (resident, .read, .drivers, false),
        // The cars: seen by all, added by staff.
        (resident, .read, .vehicles, true),
        (driver, .read, .vehicles, true),
        (association, .manage, .vehicles, false),
        (staff, .manage, .vehicles, true),
        // Trips and payments: logged by the association and drivers; not by households.
        (driver, .manage, .trips, true),
        (association, .manage, .trips, true),
        (resident, .manage, .trips, false),
        (resident, .read, .trips, false),
        // Logging a ride: a driver only on a booking assigned to them; a paper log without a
        // booking is for staff and the association.
        (driver, .manage, .rideLog(booking: true, assignedDriverUser: "driver"), true),
        (driver, .manage, .rideLog(booking: true, assignedDriverUser: nil), false),
        (driver, .manage, .rideLog(booking: true, assignedDriverUser: "another"), false),
        (driver, .manage, .rideLog(booking: false, assignedDriverUser: nil), false),
        (driver, .manage, .rideLog(booking: false, assignedDriverUser: "driver"), false),
        (association, .manage, .rideLog(booking: false, assignedDriverUser: nil), true),
        (association, .manage, .rideLog(booking: true, assignedDriverUser: "another"), true),
        (staff, .manage, .rideLog(booking: false, assignedDriverUser: nil), true),
        (resident, .manage, .rideLog(booking: true, assignedDriverUser: "resident-d1"), false),
        (driver, .manage, .payments, true),
        (resident, .manage, .payments, false),
        // A car's logbook: drivers read it; the association and staff explain its gaps.
        (driver, .read, .logbook, true),
        (driver, .manage, .logbook, false),
        (association, .manage, .logbook, true),
        (resident, .read, .logbook, false),
        // Deposits, refunds, corrections: the association and staff, never a driver.
        (association, .manage, .cash, true),
        (driver, .manage, .cash, false),
        (resident, .manage, .cash, false),
        // Exporting (freezing) a month's statements: staff only.
        (staff, .manage, .statementExport, true),
        (association, .manage, .statementExport, false),
        (resident, .read, .statementExport, false),
        // The registry and accounts: staff only.
        (staff, .manage, .registry, true),
        (association, .manage, .registry, false),
        (association, .read, .registry, false),
        (staff, .manage, .users, true),
        (association, .manage, .users, false),
        (resident, .read, .users, false),
        // A user's tokens: theirs (logging in and out) and staff's.
        (resident, .manage, .tokens(user: "resident-d1"), true),
        (resident, .read, .tokens(user: "resident-d1"), true),
        (resident, .manage, .tokens(user: "driver"), false),
        (association, .read, .tokens(user: "resident-d1"), false),
        (staff, .manage, .tokens(user: "resident-d1"), true),
    ]

    @Test(arguments: 0..<table.count)
    func eachRowOfTheTable(_ index: Int) {
        let (identity, action, resource, expected) = Self.table[index]
        #expect(AccessPolicy.allows(identity, action, resource) == expected, "\(identity.name) \(action) \(resource)")
    }

    @Test func staffMayDoAnythingAndADriverReadsNoOnesFigures() {
        let resources: [AccessPolicy.Resource] = [
            .dwellingEnergy(dwelling: "X"), .buildingEnergy(estate: "X"), .estateEnergy(estate: "X"), .landlordEnergy, .deviceReadings,
            .meterReadings(dwelling: "X"), .productionReadings(estate: "X"), .quarantine, .member(dwelling: "X", estate: "X"), .ledger,
        ]
        for resource in resources {
            for action in AccessPolicy.Action.allCases {
                #expect(AccessPolicy.allows(Self.staff, action, resource), "\(resource)")
                #expect(!AccessPolicy.allows(Self.driver, action, resource), "\(resource)")
            }
        }
    }

    @Test func aRefusalIsA403NamingTheField() {
        #expect(throws: HubError.forbidden("no", field: "dwelling")) {
            try AccessPolicy.require(Self.resident, .read, .dwellingEnergy(dwelling: "D9"), field: "dwelling", "no")
        }
        #expect(throws: Never.self) { try AccessPolicy.require(Self.resident, .read, .dwellingEnergy(dwelling: "D1"), field: "dwelling", "no") }
    }

    /// How an entry shows: whole to staff and to its estate's association; to another
    /// association only without the members it may not see; to no one else.
    @Test func aLedgerEntryIsWholeOnlyToItsEstatesAssociation() {
        #expect(AccessPolicy.disclosesLedgerEntry(Self.staff, memberEstates: ["F"]) == .whole)
        #expect(AccessPolicy.disclosesLedgerEntry(Self.association, memberEstates: ["E"]) == .whole)
        #expect(AccessPolicy.disclosesLedgerEntry(Self.association, memberEstates: []) == .whole)
        #expect(AccessPolicy.disclosesLedgerEntry(Self.association, memberEstates: ["F"]) == .withoutOtherEstatesMembers)
        #expect(AccessPolicy.disclosesLedgerEntry(Self.association, memberEstates: [nil]) == .withoutOtherEstatesMembers)
        #expect(AccessPolicy.disclosesLedgerEntry(Self.resident, memberEstates: []) == .none)
        #expect(AccessPolicy.disclosesLedgerEntry(Self.driver, memberEstates: []) == .none)
        let audience = AccessPolicy.associationAudience(of: "F", madeBy: Self.staff)
        #expect(audience.role == .association && audience.estate == "F" && audience.name == "staff")
        #expect(!AccessPolicy.allows(audience, .read, .member(dwelling: "D1", estate: "E")), "a statement for F names no member of E")
    }

    /// Households' figures reach staff whole and everyone else in groups (issue 14, defect 10); a
    /// statement made by staff for an association is grouped too.
    @Test func householdFiguresAreWholeOnlyForStaff() {
        #expect(AccessPolicy.householdFigures(Self.staff) == .whole)
        #expect(AccessPolicy.householdFigures(Self.association) == .grouped)
        #expect(AccessPolicy.householdFigures(Self.resident) == .grouped)
        #expect(AccessPolicy.householdFigures(Self.driver) == .grouped)
        #expect(AccessPolicy.householdFigures(AccessPolicy.associationAudience(of: "E", madeBy: Self.staff)) == .grouped)
    }

    @Test func anIdentityWithoutAnEstateOrDwellingMatchesNothing() {
        let lost = Identity(name: "lost", role: .association)
        #expect(!AccessPolicy.allows(lost, .read, .estateEnergy(estate: "")))
        #expect(!AccessPolicy.allows(lost, .read, .member(dwelling: nil, estate: nil)))
        let nowhere = Identity(name: "nowhere", role: .resident)
        #expect(!AccessPolicy.allows(nowhere, .read, .member(dwelling: nil, estate: nil)))
    }
}

import CarShareCore
import EnergyCore
import Foundation
import HubCore
import HubStatements

/// The building and association statements of a month (issue 10), gathered through the same
/// stores and access policy as the household statements: a building's for its estate's
/// association and the landlord's staff, an association's for that association and staff.
extension StatementsExport {
    /// A building's statement for a month, as of the month's end (or now, for the current month).
    package func building(_ building: String, month: String, by identity: Identity, now: Instant) async throws -> BuildingStatement {
        let (first, last) = try Self.month(month)
        let zone = carShare.zone
        try Self.requireBegun(first, now: now, zone: zone)
        // A past month is reported as of its end, so asking again gives the same statement.
        let asOf = min(now, zone.startOfDay(first.firstOfNextMonth))
        // Access (and the building's estate) as the caller; the figures as the estate's association
        // sees them, whoever prints the statement: it is sent to the association (issue 14, defect 10).
        let estate = try await figures.building(building, from: first, to: first, now: asOf, by: identity).estate
        let audience = AccessPolicy.associationAudience(of: estate, madeBy: identity)
        var energy = try await figures.building(building, from: first, to: last, now: asOf, by: audience)
        // As for households: whether the month was revised after an export is the archive's
        // business, not part of the statement, which holds the month's figures only.
        energy.revisedMonths = []
        let shares = try await figures.householdShares(building: building, from: first, to: last, by: audience)
        let devices = try await figures.deviceHealth(building: building, from: first, to: last, now: asOf, by: audience)
        return BuildingStatement(month: month, landlord: landlord, association: association(energy.estate), energy: energy,
                                 householdShares: shares, deviceHealth: devices, zone: zone)
    }

    /// The association's statement for an estate and a month: the car share's accounts and use,
    /// the estate's members, the cash book and the ledger's head at the month's close.
    package func association(estate: String, month: String, by identity: Identity, now: Instant) async throws -> AssociationStatement {
        let (first, last) = try Self.month(month)
        let zone = carShare.zone
        try Self.requireBegun(first, now: now, zone: zone)
        // It lists the estate's members and shows the association's accounts: the caller must be
        // allowed both (the estate's association and staff), before anything is read.
        try AccessPolicy.require(identity, .read, .member(dwelling: nil, estate: estate), field: "estate",
                                 "an estate's association statement is for its association and the landlord's staff")
        try AccessPolicy.require(identity, .read, .ledger, field: "estate", "the association's accounts are for the association and the landlord's staff")
        // Staff may name any estate: one that does not exist is a 404, not an empty statement.
        if AccessPolicy.allows(identity, .read, .landlordEnergy), !(try await figures.estates(by: identity)).contains(estate) {
            throw HubError.notFound(field: "estate", "no estate \(estate) in the registry")
        }
        // The statement is the association's: it shows what that association may see, whoever
        // makes it (no member of another estate, whose entries show without a name).
        let audience = AccessPolicy.associationAudience(of: estate, madeBy: identity)
        let income = try await carShare.incomeStatement(month: month, by: audience)
        let members = try await carShare.members(by: audience).filter { $0.estate == estate }
        var statements: [MemberStatement] = []
        for member in members { statements.append(try await carShare.statement(member: member.id, by: audience)) }
        let cash = try await carShare.cashBook(from: first, to: last, by: audience)
        let head = try await carShare.ledgerHead(month: month, by: audience)
        return try AssociationStatement(month: month, landlord: landlord, association: association(estate), estate: estate, incomeStatement: income,
                                        members: members, statements: statements, cashBook: cash, ledgerHead: head, zone: zone)
    }

    /// The association's journal of a month in hledger form: the entries dated in the month, as
    /// the association of `estate` sees them (entries of another estate's members without their
    /// names); without `estate`, as the caller sees them.
    package func associationJournal(month: String, estate: String? = nil, by identity: Identity) async throws -> String {
        let (first, last) = try Self.month(month)
        var audience = identity
        if let estate {
            try AccessPolicy.require(identity, .read, .member(dwelling: nil, estate: estate), field: "estate",
                                     "an estate's association journal is for its association and the landlord's staff")
            audience = AccessPolicy.associationAudience(of: estate, madeBy: identity)
        }
        return AssociationJournal.month(try await carShare.entries(from: first, to: last, by: audience), month: month)
    }

    /// A month that has not begun has no statement yet (its figures would all be zero and look real).
    static func requireBegun(_ first: LocalDate, now: Instant, zone: LocalTimeZone) throws {
        guard zone.startOfDay(first) <= now else {
            throw HubError.badRequest(field: "month", code: "month_not_begun", "\(first.description.prefix(7)) has not begun yet")
        }
    }
}

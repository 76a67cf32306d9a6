import Foundation
import Hummingbird
import EnergyCore
import HubCore
import Shared

/// `GET /api/v1/dwellings/{dwelling}/energy`, `/buildings/{building}/energy` and
/// `/estates/{estate}/energy`, with `from` and `to` inclusive local dates. Who sees what: staff
/// everything; an association its estate's buildings and the distribution of its households'
/// savings, never a household's detail; a resident their own dwelling only; drivers nothing.
public struct EnergyRoutes: Sendable {
    let database: HubDatabase
    let configuration: Result<EnergyConfiguration, HubError>
    let now: @Sendable () -> Instant

    public init(database: HubDatabase, settings: EnergySettings, now: @escaping @Sendable () -> Instant = Instant.now) {
        self.database = database
        do {
            configuration = .success(try settings.validated())
        } catch let error as HubError {
            configuration = .failure(error)
        } catch {
            configuration = .failure(HubError.configuration("\(error)"))
        }
        self.now = now
    }

    public func add(to group: RouterGroup<HubRequestContext>) {
        group.get("dwellings/{dwelling}/energy") { request, context in try await dwelling(request, context) }
        group.get("buildings/{building}/energy") { request, context in try await building(request, context) }
        group.get("estates/{estate}/energy") { request, context in try await estate(request, context) }
        group.get("landlord/energy") { request, context in try await landlord(request, context) }
    }

    func reports() throws -> EnergyReports { EnergyReports(database: database, configuration: try configuration.get()) }

    func period(_ request: Request) throws -> (LocalDate, LocalDate) {
        let from = try request.localDate("from")
        let to = try request.localDate("to")
        try EnergyReports.checkPeriod(from: from, to: to)
        return (from, to)
    }

    func dwelling(_ request: Request, _ context: HubRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let dwelling = try context.pathParameter("dwelling")
        try AccessPolicy.require(identity, .read, .dwellingEnergy(dwelling: dwelling), field: "dwelling",
                                 "a household's figures are for that household (and the landlord's staff); an association sees its estate's totals")
        let (from, to) = try period(request)
        let reports = try reports()
        let now = now()
        return try HubJSON.response(try await reports.dwelling(dwelling, from: from, to: to, now: now))
    }

    func building(_ request: Request, _ context: HubRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let building = try context.pathParameter("building")
        // Only a role that can read some building's figures goes on to the lookup.
        try AccessPolicy.require(identity, .read, .buildingEnergy(estate: identity.estate ?? ""), field: "building",
                                 "a building's figures are for its estate's association and the landlord's staff")
        let (from, to) = try period(request)
        let reports = try reports()
        let now = now()
        return try HubJSON.response(try await reports.building(building, from: from, to: to, now: now, for: identity))
    }

    func estate(_ request: Request, _ context: HubRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let estate = try context.pathParameter("estate")
        try AccessPolicy.require(identity, .read, .estateEnergy(estate: estate), field: "estate",
                                 "an estate's figures are for its association and the landlord's staff")
        let (from, to) = try period(request)
        let reports = try reports()
        let now = now()
        return try HubJSON.response(try await reports.estate(estate, from: from, to: to, now: now))
    }

    func landlord(_ request: Request, _ context: HubRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        try AccessPolicy.require(identity, .read, .landlordEnergy, "only the landlord's staff see every estate's figures")
        let (from, to) = try period(request)
        return try HubJSON.response(try await reports().landlord(from: from, to: to, now: now()))
    }
}

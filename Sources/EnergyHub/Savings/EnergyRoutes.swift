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
    let figures: Result<any EnergyFigureStore, HubError>
    let now: @Sendable () -> Instant

    public init(figures: any EnergyFigureStore, now: @escaping @Sendable () -> Instant = Instant.now) {
        self.figures = .success(figures)
        self.now = now
    }

    /// Over figures the composition could build, or the error that says why not.
    public init(figures: Result<any EnergyFigureStore, HubError>, now: @escaping @Sendable () -> Instant = Instant.now) {
        self.figures = figures
        self.now = now
    }

    /// Over the SQLite figures; invalid settings answer every request with their error.
    public init(database: HubDatabase, settings: EnergySettings, now: @escaping @Sendable () -> Instant = Instant.now) {
        do {
            figures = .success(EnergyReports(database: database, configuration: try settings.validated()))
        } catch let error as HubError {
            figures = .failure(error)
        } catch {
            figures = .failure(HubError.configuration("\(error)"))
        }
        self.now = now
    }

    public func add(to group: RouterGroup<HubRequestContext>) {
        group.get("dwellings/{dwelling}/energy") { request, context in
            let (identity, from, to) = try ask(request, context)
            return try HubJSON.response(try await figures.get().dwelling(try context.pathParameter("dwelling"), from: from, to: to, now: now(), by: identity))
        }
        group.get("buildings/{building}/energy") { request, context in
            let (identity, from, to) = try ask(request, context)
            return try HubJSON.response(try await figures.get().building(try context.pathParameter("building"), from: from, to: to, now: now(), by: identity))
        }
        group.get("estates/{estate}/energy") { request, context in
            let (identity, from, to) = try ask(request, context)
            return try HubJSON.response(try await figures.get().estate(try context.pathParameter("estate"), from: from, to: to, now: now(), by: identity))
        }
        group.get("landlord/energy") { request, context in
            let (identity, from, to) = try ask(request, context)
            return try HubJSON.response(try await figures.get().landlord(from: from, to: to, now: now(), by: identity))
        }
    }

    /// The caller and the period every energy route takes (`from` and `to`, inclusive local dates).
    func ask(_ request: Request, _ context: HubRequestContext) throws -> (Identity, LocalDate, LocalDate) {
        let identity = try context.requireIdentity()
        let from = try request.localDate("from")
        let to = try request.localDate("to")
        try EnergyReportRules.checkPeriod(from: from, to: to)
        return (identity, from, to)
    }
}

import CarShare
import CarShareCore
import EnergyCore
import EnergyHub
import Foundation
import Hummingbird
import Logging
import Prometheus
import HubCore
import Shared

/// Everything the HTTP routes depend on, built once by the composition root (or a test).
package struct HubDependencies: Sendable {
    package var settings: HubSettings
    /// Every store, on the SQLite file or on PostgreSQL.
    package var stores: HubStores
    package var users: any UserStore { stores.users }
    package var readings: any ReadingStore { stores.readings }
    package var metrics: PrometheusCollectorRegistry
    /// Whether the broker connection is up (for `/readyz`); nil when this process does not ingest.
    package var brokerConnected: (@Sendable () -> Bool)?
    package var now: @Sendable () -> Instant = Instant.now
    /// The requests being served (for the shutdown log).
    package var inFlight = InFlightRequests()
    /// The hub's one time zone (`HubSettings.configuration()`).
    package var zone: LocalTimeZone
    /// Failed logins, slowed per name and per address (pages and API alike).
    package var loginGuard: LoginGuard

    /// Over one SQLite file, with these users and readings stores.
    package init(settings: HubSettings, database: HubDatabase, users: any UserStore, readings: any ReadingStore, metrics: PrometheusCollectorRegistry,
                 brokerConnected: (@Sendable () -> Bool)?, now: @escaping @Sendable () -> Instant = Instant.now, inFlight: InFlightRequests = InFlightRequests(),
                 zone: LocalTimeZone = .paris) {
        var stores = HubStores.sqlite(database, settings: settings)
        stores.users = users
        stores.readings = readings
        self.init(settings: settings, stores: stores, metrics: metrics, brokerConnected: brokerConnected, now: now, inFlight: inFlight, zone: zone)
    }

    package init(settings: HubSettings, stores: HubStores, metrics: PrometheusCollectorRegistry,
                 brokerConnected: (@Sendable () -> Bool)?, now: @escaping @Sendable () -> Instant = Instant.now, inFlight: InFlightRequests = InFlightRequests(),
                 zone: LocalTimeZone = .paris) {
        self.settings = settings
        self.stores = stores
        self.metrics = metrics
        self.brokerConnected = brokerConnected
        self.now = now
        self.inFlight = inFlight
        self.zone = zone
        self.loginGuard = LoginGuard(counts: stores.loginFailures, metrics: metrics)
    }
}

struct HealthBody: Codable {
    var status: String
    var database: String?
    var broker: String?
    /// Why the database is not ready, when it is damaged.
    var problem: String?
}

struct SessionRequest: Codable {
    var name: String
    var password: String
}

struct SessionBody: Codable {
    var token: String
    var expiresAt: Instant
    var user: Identity
    enum CodingKeys: String, CodingKey {
        case token, user
        case expiresAt = "expires_at"
    }
}

/// Builds the router: health, readiness and metrics in the open; everything under `/api/v1`
/// behind a bearer token and authorised by role in each route.
package func buildRouter(_ dependencies: HubDependencies) -> Router<HubRequestContext> {
    let router = Router(context: HubRequestContext.self)
    router.middlewares.add(ServingMiddleware<HubRequestContext>(inFlight: dependencies.inFlight))
    router.middlewares.add(JSONErrorMiddleware<HubRequestContext>())
    // Inside it: errors on pages (every path outside /api and the probes) are answered as pages.
    router.middlewares.add(PageErrorMiddleware())
    // Requests that touch the database wait their turn for a bounded time, then get 503 with
    // Retry-After; `/healthz` and `/metrics` stay outside so they answer whatever the load.
    let gate = AsyncGate(permits: dependencies.settings.http.maxConcurrentRequests, maxWaiting: dependencies.settings.http.maxQueuedRequests)
    let refused = dependencies.metrics.makeCounter(descriptor: MetricNameDescriptor(
        metricName: "hub_http_busy_total", unitName: "", helpText: "Requests answered 503 because the hub was busy past the queue timeout"))
    let limit = ConcurrencyLimitMiddleware<HubRequestContext>(gate: gate, queueTimeout: .milliseconds(dependencies.settings.http.queueTimeoutMilliseconds),
                                                              onRefused: { refused.increment() })
    router.get("healthz") { _, _ in try HubJSON.response(HealthBody(status: "ok")) }
    router.get("readyz") { _, _ in
        let broker = dependencies.brokerConnected.map { $0() ? "connected" : "disconnected" }
        let writable: Bool
        switch await dependencies.stores.readiness() {
        case .corrupt(let problem):
            // A damaged file is not ready, whatever a write would say (issue 14, defect 14).
            return try HubJSON.response(HealthBody(status: "not_ready", database: "corrupt", broker: broker,
                                                   problem: "the database file is damaged (\(problem)): run community-hub db check, restore the last backup"),
                                        status: .serviceUnavailable)
        case .writable: writable = true
        case .notWritable: writable = false
        }
        let ready = writable && broker != "disconnected"
        return try HubJSON.response(HealthBody(status: ready ? "ready" : "not_ready", database: writable ? "writable" : "not_writable", broker: broker),
                                    status: ready ? .ok : .serviceUnavailable)
    }
    #if DEBUG
    // For the shutdown test only, in debug builds and when asked: a handler stuck in a blocking
    // call, the case where cancellation cannot reach and only the shutdown deadline ends the process.
    if ProcessInfo.processInfo.environment["HUB_DEBUG_STUCK_ROUTE"] == "1" {
        router.get("debug/stuck") { _, _ -> Response in
            while true { sleep(1) }
        }
    }
    #endif
    router.get("metrics") { _, _ in
        Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(bytes: dependencies.metrics.emitToBuffer())))
    }
    router.group("api/v1/sessions").add(middleware: limit).post { request, context in
        // Decoded here rather than with request.decode so a DecodingError keeps the field it names.
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        let body = try JSONDecoder().decode(SessionRequest.self, from: Data(buffer.readableBytesView))
        let address = Web.clientAddress(request, context, settings: dependencies.settings)
        let wait = try await dependencies.loginGuard.retryAfter(name: body.name, address: address, at: dependencies.now())
        guard wait == 0 else {
            // 429 with the wait in Retry-After: nothing is checked until it is over.
            var response = try HubJSON.response(ErrorBody(error: .init(code: "too_many_attempts", field: "name",
                                                                       message: "too many failed logins for this name or address: try again in \(wait) s")),
                                                status: .tooManyRequests)
            response.headers[.retryAfter] = "\(wait)"
            return response
        }
        guard let identity = try await dependencies.users.verify(name: body.name, password: body.password) else {
            try await dependencies.loginGuard.failed(name: body.name, address: address, at: dependencies.now())
            throw HubError.unauthorized("wrong name or password")
        }
        try await dependencies.loginGuard.succeeded(name: body.name)
        let now = dependencies.now()
        let expires = now.adding(seconds: Int64(dependencies.settings.auth.sessionHours) * 3600)
        let token = try await dependencies.users.createToken(for: identity.name, label: "session", expiresAt: expires, by: identity, at: now)
        return try HubJSON.response(SessionBody(token: token, expiresAt: expires, user: identity), status: .created)
    }
    let api = router.group("api/v1").add(middleware: limit).add(middleware: BearerAuthMiddleware(users: dependencies.users, now: dependencies.now))
    api.get("me") { _, context in try HubJSON.response(try context.requireIdentity()) }
    // Logout: the token that authenticated this request stops working at once.
    api.delete("sessions/current") { _, context in
        _ = try context.requireIdentity()
        guard let token = context.bearerToken else { throw HubError.unauthorized("this route needs Authorization: Bearer <token>") }
        _ = try await dependencies.users.revoke(token: token, at: dependencies.now())
        return Response(status: .noContent)
    }
    ReadingRoutes(store: dependencies.readings, timeZone: dependencies.zone).add(to: api)
    let stores = dependencies.stores
    EnergyRoutes(figures: stores.energy.map { $0.figures }, now: dependencies.now).add(to: api)
    CarShareRoutes(store: stores.carShare, now: dependencies.now).add(to: api)
    if case .success(let energy) = stores.energy {
        let statements = dependencies.settings.statements
        let registry = energy.registry
        let figures = energy.figures
        let carShare = stores.carShare
        let statementRoutes = StatementRoutes(export: StatementsExport(registry: registry, figures: figures, carShare: carShare,
                                                                       landlord: statements.landlord, association: { statements.association(of: $0) }),
                                              archive: stores.archive, now: dependencies.now)
        statementRoutes.add(to: api)
        WebRoutes(settings: dependencies.settings, users: dependencies.users, guardian: dependencies.loginGuard, carShare: carShare, figures: figures,
                  registry: registry, readings: dependencies.readings, now: dependencies.now, zone: dependencies.zone)
            .add(to: router, limit: limit, statements: statementRoutes)
    }
    return router
}

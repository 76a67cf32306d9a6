import EnergyHub
import Foundation
import HTTPTypes
import HubCore
import HubTestSupport
import Hummingbird
import HummingbirdTesting
import NIOCore
import Prometheus
import Shared
import Testing
@testable import HubApp

/// `docs/openapi.yaml` against the router, both ways: every API route the router holds (read from
/// Hummingbird's own list of registered routes, so a route added in any file is seen) is described
/// in the spec, and every operation the spec describes reaches a handler when called in-process
/// with a staff token: the router's own "no such route" 404 (`HTTPError(.notFound)`, message
/// "Not Found") fails; a handler's 400, 403, 404 or 409 for the empty request is fine. None may
/// answer 5xx. (`APISchemaLiveTests` runs schemathesis with the same file against the demo.)
@Suite struct OpenAPIRoutesTests {
    static let specPath = TestSupport.packageRoot.appendingPathComponent("docs/openapi.yaml").path

    /// The operations of the spec, as "METHOD /path": the path keys two spaces in under `paths:`,
    /// the methods four spaces in under each (the layout `docs/openapi.yaml` keeps).
    static func specOperations() throws -> Set<String> {
        let text = try String(contentsOfFile: specPath, encoding: .utf8)
        var operations: Set<String> = []
        var inPaths = false
        var path: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" ") && !line.isEmpty {
                inPaths = line == "paths:"
                path = nil
                continue
            }
            guard inPaths else { continue }
            if let match = line.wholeMatch(of: #/  (/[^ :]*):\s*/#) {
                path = String(match.1)
            } else if let path, let match = line.wholeMatch(of: #/    (get|put|post|patch|delete|head|options):\s*/#) {
                operations.insert("\(match.1.uppercased()) \(path)")
            }
        }
        return operations
    }

    /// The router with every route collection registered (valid energy settings add the statements').
    func router() async throws -> (Router<HubRequestContext>, staff: String, spare: String) {
        let (_, settings) = try await StatementsExportTests().preparedDatabase()
        let database = try HubSchema.open(settings)
        let users = SQLiteUserStore(database: database, bcryptCost: 4)
        let now = Instant.parseRFC3339("2026-11-30T10:00:00Z")!
        try await users.add(name: "staff", role: .staff, dwelling: nil, estate: nil, password: "password-123", by: .testStaff, at: now)
        let staff = try await users.createToken(for: "staff", label: "test", expiresAt: nil, by: .testStaff, at: now)
        let spare = try await users.createToken(for: "staff", label: "logout", expiresAt: nil, by: .testStaff, at: now)
        let dependencies = HubDependencies(settings: settings, database: database, users: users, readings: SQLiteReadingStore(database: database),
                                           metrics: PrometheusCollectorRegistry(), brokerConnected: nil, now: { now })
        return (buildRouter(dependencies), staff, spare)
    }

    /// The API's part of the router: `/api/...` and the probes (the pages are not the API).
    static func apiRoutes(_ router: Router<HubRequestContext>) -> Set<String> {
        Set(router.routes.map { (method: $0.method.rawValue, path: $0.path.description) }
            .filter { $0.path.hasPrefix("/api/") || ["/healthz", "/readyz", "/metrics"].contains($0.path) }
            .map { "\($0.method) \($0.path)" })
    }

    @Test func theSpecDescribesEveryRouteAndEveryDescribedOperationReachesAHandler() async throws {
        let spec = try Self.specOperations()
        let (router, staff, spare) = try await router()
        let registered = Self.apiRoutes(router)
        #expect(registered.count >= 50, "\(registered.count) API routes found: \(registered.sorted())")
        #expect(spec.count >= 50, "\(spec.count) operations read from \(Self.specPath)")
        let undescribed = registered.subtracting(spec)
        #expect(undescribed.isEmpty, "routes not described in docs/openapi.yaml: \(undescribed.sorted())")
        let unrouted = spec.subtracting(registered)
        #expect(unrouted.isEmpty, "operations in docs/openapi.yaml that no route registers: \(unrouted.sorted())")

        // Called for real: path parameters filled with values that reach the handler and get a quick
        // answer (a month that does not exist, so no statement is printed), no body.
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.router) { client in
            for operation in spec.sorted() {
                let parts = operation.split(separator: " ", maxSplits: 1)
                let method = HTTPRequest.Method(rawValue: String(parts[0]))!
                let uri = String(parts[1]).replacing(/\{([a-z_]+)\}/) { match in
                    switch match.1 {
                    case "id": "1"
                    case "month": "2026-13"
                    default: "NOPE-1"
                    }
                }
                // Logout revokes the token it is called with: a token of its own.
                let token = operation == "DELETE /api/v1/sessions/current" ? spare : staff
                let (status, body) = try await client.execute(uri: uri, method: method, headers: [.authorization: "Bearer \(token)"]) { response in
                    (response.status, Data(response.body.readableBytesView))
                }
                let error = (try? JSONDecoder().decode(ErrorBody.self, from: body))?.error
                let routerNotFound = status == .notFound && error?.code == "not_found" && error?.message == HTTPResponse.Status.notFound.reasonPhrase
                #expect(!routerNotFound, "\(operation) (\(uri)): the router has no such route")
                #expect(status.code < 500, "\(operation) (\(uri)) answered \(status.code): \(String(decoding: body, as: UTF8.self))")
                if status.code >= 400 {
                    #expect(error != nil, "\(operation) (\(uri)) answered \(status.code) without the error body: \(String(decoding: body, as: UTF8.self))")
                }
            }
            // The check itself tells the router's 404 from a handler's.
            let (status, body) = try await client.execute(uri: "/api/v1/no-such-route", method: .get, headers: [.authorization: "Bearer \(staff)"]) { response in
                (response.status, Data(response.body.readableBytesView))
            }
            let error = try JSONDecoder().decode(ErrorBody.self, from: body).error
            #expect(status == .notFound && error.code == "not_found" && error.message == "Not Found")
        }
    }

    /// The spec's reader sees what a YAML parser sees (schemathesis's, when the live test runs);
    /// here a shape check: each operation once, every path under /api/v1 or a probe.
    @Test func theSpecReaderFindsTheOperations() throws {
        let spec = try Self.specOperations()
        #expect(spec.contains("POST /api/v1/sessions"))
        #expect(spec.contains("GET /api/v1/statements/{month}/households.json"))
        #expect(spec.contains("DELETE /api/v1/carshare/ledger/entries/{id}"))
        for operation in spec {
            let path = operation.split(separator: " ")[1]
            #expect(path.hasPrefix("/api/v1/") || ["/healthz", "/readyz", "/metrics"].contains(String(path)), "\(operation)")
        }
    }
}

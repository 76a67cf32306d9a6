import Foundation
import GRDB
import HTTPTypes
import HubCore
import Hummingbird
import Logging
import NIOCore

/// The request context of every route: Hummingbird's core storage plus the authenticated caller.
public struct HubRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by `BearerAuthMiddleware` on `/api` routes.
    public var identity: Identity?
    /// The bearer token that authenticated the request (for logout), set with `identity`.
    public var bearerToken: String?
    /// The browser session's token, the CSRF token its forms carry, and whether the account must
    /// choose its own password before anything else (pages only).
    public var session: (token: String, csrf: String, mustChangePassword: Bool)?
    /// A page's form, read and checked against the CSRF token before the handler runs (POST only).
    public var form: FormFields?
    /// The client's address, for slowing failed logins per address.
    public let remoteAddress: String?

    public init(source: Source) {
        self.coreContext = .init(source: source)
        self.identity = nil
        self.bearerToken = nil
        self.session = nil
        self.form = nil
        self.remoteAddress = source.channel.remoteAddress?.ipAddress
    }

    public var requestDecoder: JSONDecoder { JSONDecoder() }
    public var responseEncoder: JSONEncoder { HubJSON.encoder }
    public var maxUploadSize: Int { 1024 * 1024 }

    /// The caller, or 401 when the route was reached without authentication.
    public func requireIdentity() throws -> Identity {
        guard let identity else { throw HubError.unauthorized("this route needs Authorization: Bearer <token>") }
        return identity
    }

    /// A required path parameter.
    public func pathParameter(_ name: String) throws -> String {
        guard let value = parameters.get(name), !value.isEmpty else {
            throw HubError.badRequest(field: name, "missing \(name) in the path")
        }
        let decoded = value.removingPercentEncoding ?? value
        // A NUL would cut the id short in SQLite (issue 14, defect 9), and no id holds a control
        // character: refuse them all, naming the parameter, before anything is read.
        guard !decoded.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw HubError.badRequest(field: name, code: "control_character", "\(name) in the path holds a control character (a NUL, a line break, an escape): no \(name) has one")
        }
        return decoded
    }
}

extension HubJSON {
    /// Encodes a value as a JSON response with the given status.
    public static func response<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try encoder.encode(value)
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// The body of every error response: `{"error": {"code", "field", "message"}}`.
public struct ErrorBody: Codable, Sendable, Equatable {
    public struct Detail: Codable, Sendable, Equatable {
        public var code: String
        public var field: String?
        public var message: String

        public init(code: String, field: String?, message: String) {
            self.code = code
            self.field = field
            self.message = message
        }
    }

    public var error: Detail

    public init(error: Detail) { self.error = error }
}

extension HubError.Kind {
    public var status: HTTPResponse.Status {
        switch self {
        case .badRequest: return .badRequest
        case .unauthorized: return .unauthorized
        case .forbidden: return .forbidden
        case .notFound: return .notFound
        case .conflict: return .conflict
        case .unprocessable: return .unprocessableContent
        case .configuration: return .internalServerError
        case .unavailable: return .serviceUnavailable
        }
    }
}

/// Turns every error into a JSON body that names the code, the field and the reason: a user's
/// mistake is a 4xx, anything else a logged 500 that reveals nothing internal.
public struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HubError {
            var response = try HubJSON.response(ErrorBody(error: .init(code: error.code, field: error.field, message: error.message)), status: error.kind.status)
            if error.kind == .unauthorized { response.headers[.wwwAuthenticate] = "Bearer" }
            if error.kind == .unavailable { response.headers[.retryAfter] = "\(HubError.retryAfterSeconds)" }
            return response
        } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
            // The database stayed locked past its busy timeout: the caller may retry, nothing was written.
            context.logger.warning("database busy", metadata: ["path": "\(request.uri.path)"])
            var response = try HubJSON.response(ErrorBody(error: .init(code: "busy", field: nil, message: "the database is busy; try again in a moment")),
                                                status: .serviceUnavailable)
            response.headers[.retryAfter] = "\(HubError.retryAfterSeconds)"
            return response
        } catch let error as DecodingError {
            let (field, message) = HubJSON.describe(error)
            return try HubJSON.response(ErrorBody(error: .init(code: "invalid_body", field: field, message: message)), status: .badRequest)
        } catch let error as HTTPError {
            let code = error.status == .notFound ? "not_found" : "http_\(error.status.code)"
            return try HubJSON.response(ErrorBody(error: .init(code: code, field: nil, message: error.body ?? error.status.reasonPhrase)), status: error.status)
        } catch let error as any HTTPResponseError {
            return try HubJSON.response(ErrorBody(error: .init(code: "http_\(error.status.code)", field: nil, message: error.status.reasonPhrase)), status: error.status)
        } catch {
            context.logger.error("internal error", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            return try HubJSON.response(ErrorBody(error: .init(code: "internal", field: nil, message: "internal error; it has been logged")), status: .internalServerError)
        }
    }
}

/// Authenticates `Authorization: Bearer <token>` and stores the caller in the context; 401 otherwise.
public struct BearerAuthMiddleware: RouterMiddleware {
    public typealias Context = HubRequestContext
    let users: any UserStore
    let now: @Sendable () -> Instant

    public init(users: any UserStore, now: @escaping @Sendable () -> Instant = Instant.now) {
        self.users = users
        self.now = now
    }

    public func handle(_ request: Request, context: HubRequestContext, next: (Request, HubRequestContext) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            throw HubError.unauthorized("missing Authorization header: send Authorization: Bearer <token>")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", !parts[1].isEmpty else {
            throw HubError.unauthorized("the Authorization header must be Bearer <token>")
        }
        let token = String(parts[1]).trimmingCharacters(in: .whitespaces)
        guard let identity = try await users.identity(forToken: token, at: now()) else {
            throw HubError.unauthorized("unknown, revoked or expired token")
        }
        var context = context
        context.identity = identity
        context.bearerToken = token
        context.logger[metadataKey: "user"] = "\(identity.name)"
        return try await next(request, context)
    }
}

extension Request {
    /// A query parameter, or nil when absent or empty.
    public func query(_ name: String) -> String? {
        guard let value = uri.queryParameters.get(name), !value.isEmpty else { return nil }
        return value
    }

    /// A required local date (`YYYY-MM-DD`) query parameter.
    public func localDate(_ name: String) throws -> LocalDate {
        guard let text = query(name) else { throw HubError.badRequest(field: name, code: "missing_field", "missing query parameter \(name) (YYYY-MM-DD)") }
        guard let date = LocalDate(parsing: text) else { throw HubError.badRequest(field: name, code: "invalid_date", "\(name)=\(text) is not a date YYYY-MM-DD") }
        return date
    }

    /// An optional instant query parameter: RFC 3339 (`2026-11-27T10:00:00Z`) or a local date,
    /// which means the start of that day (or, with `endOfDay`, the start of the next day).
    public func instant(_ name: String, in zone: LocalTimeZone, endOfDay: Bool = false) throws -> Instant? {
        guard let text = query(name) else { return nil }
        if let instant = Instant.parseRFC3339(text) { return instant }
        if let date = LocalDate(parsing: text) { return zone.startOfDay(endOfDay ? date.advanced(by: 1) : date) }
        throw HubError.badRequest(field: name, code: "invalid_date", "\(name)=\(text) is neither a date YYYY-MM-DD nor an RFC 3339 date-time")
    }
}

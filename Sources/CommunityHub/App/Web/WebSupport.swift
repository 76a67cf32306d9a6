import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import HubCore
import HubPages
import NIOCore
import Shared

/// Cookies, CSRF tokens, security headers and HTML answers for the pages.
enum Web {
    /// The session cookie: a token of the `api_token` table (label `web`), so sessions live in the
    /// database and survive a restart; HttpOnly, SameSite=Lax, Secure behind TLS.
    static let sessionCookie = "hub_session"
    /// Before login: a random value repeated in the login form (no one can log a browser into
    /// someone else's account by posting to it from another site).
    static let loginCookie = "hub_login"

    static func cookie(_ request: Request, _ name: String) -> String? {
        guard let header = request.headers[.cookie] else { return nil }
        for piece in header.split(separator: ";") {
            let pair = piece.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if pair.count == 2, pair[0] == name, !pair[1].isEmpty { return String(pair[1]) }
        }
        return nil
    }

    /// The client's address: the connection's, or behind the local TLS proxy (`http.behindProxy`)
    /// the last address of `X-Forwarded-For` on a connection from loopback (nobody else can set it).
    static func clientAddress(_ request: Request, _ context: HubRequestContext, settings: HubSettings) -> String? {
        clientAddress(socket: context.remoteAddress, forwardedFor: request.headers[HTTPField.Name("X-Forwarded-For")!], behindProxy: settings.http.behindProxy)
    }

    static func clientAddress(socket: String?, forwardedFor: String?, behindProxy: Bool) -> String? {
        guard behindProxy, socket == "127.0.0.1" || socket == "::1",
              let forwarded = forwardedFor?.split(separator: ",").last?.trimmingCharacters(in: .whitespaces), !forwarded.isEmpty, forwarded.count <= 45
        else { return socket }
        return forwarded
    }

    static func isSecure(_ request: Request, settings: HubSettings) -> Bool {
        settings.http.secureCookies || request.headers[HTTPField.Name("X-Forwarded-Proto")!]?.lowercased() == "https"
    }

    /// `Set-Cookie` for a value; `maxAge` nil makes a cookie that ends with the browser session.
    static func setCookie(_ name: String, _ value: String, maxAge: Int?, secure: Bool) -> String {
        var text = "\(name)=\(value); Path=/; HttpOnly; SameSite=Lax"
        if let maxAge { text += "; Max-Age=\(maxAge)" }
        if secure { text += "; Secure" }
        return text
    }

    static func clearCookie(_ name: String, secure: Bool) -> String { setCookie(name, "", maxAge: 0, secure: secure) }

    /// The session's CSRF token: derived from the session token (SHA-256 of a prefix and the
    /// token), so it needs no storage, survives a restart and cannot be guessed without the cookie.
    static func csrf(forSession token: String) -> String { base64URL(Array(SHA256.hash(data: Data("csrf:\(token)".utf8)))) }

    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return base64URL((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// Equal-time comparison: how much of a guessed token matched does not show in the time.
    static func same(_ a: String, _ b: String) -> Bool {
        let left = Array(a.utf8), right = Array(b.utf8)
        guard left.count == right.count else { return false }
        return zip(left, right).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// The Content-Security-Policy of every page: nothing from elsewhere, the one stylesheet and
    /// the one print handler by their hashes, forms posted only here, never inside a frame.
    static let contentSecurityPolicy: String = {
        func hash(_ text: String) -> String { "'sha256-\(Data(SHA256.hash(data: Data(text.utf8))).base64EncodedString())'" }
        return "default-src 'none'; style-src \(hash(Layout.stylesheet)); img-src 'self' data:; script-src 'unsafe-hashes' \(hash(HTML.printHandler)); "
            + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    }()

    static func html(_ page: String, status: HTTPResponse.Status = .ok, cookies: [String] = []) -> Response {
        var headers: HTTPFields = [
            .contentType: "text/html; charset=utf-8",
            .contentSecurityPolicy: contentSecurityPolicy,
            .xContentTypeOptions: "nosniff",
            .cacheControl: "no-store",
            HTTPField.Name("Referrer-Policy")!: "same-origin",
            HTTPField.Name("X-Frame-Options")!: "DENY",
        ]
        for cookie in cookies { headers.append(HTTPField(name: .setCookie, value: cookie)) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: page)))
    }

    static func redirect(_ location: String, cookies: [String] = []) -> Response {
        var headers: HTTPFields = [.location: location, .cacheControl: "no-store"]
        for cookie in cookies { headers.append(HTTPField(name: .setCookie, value: cookie)) }
        return Response(status: .seeOther, headers: headers)
    }

    /// Paths that answer JSON or text whatever the caller: everything else is a page.
    static func isPage(_ path: String) -> Bool {
        !(path.hasPrefix("/api/") || path == "/api" || path == "/healthz" || path == "/readyz" || path == "/metrics")
    }
}

/// Errors on pages become pages: a refusal and a missing page look the same (nobody learns what
/// exists by trying), a busy hub says to retry, anything else is logged and said plainly.
/// API paths keep their JSON errors (`JSONErrorMiddleware`, outside this one).
struct PageErrorMiddleware: RouterMiddleware {
    typealias Context = HubRequestContext

    func handle(_ request: Request, context: HubRequestContext, next: (Request, HubRequestContext) async throws -> Response) async throws -> Response {
        // A program that asks for JSON (and not HTML) keeps JSON errors wherever it asks.
        let accept = request.headers[.accept]?.lowercased() ?? ""
        let wantsJSON = accept.contains("json") && !accept.contains("text/html")
        guard Web.isPage(request.uri.path), !wantsJSON else { return try await next(request, context) }
        do {
            return try await next(request, context)
        } catch let error as HubError {
            switch error.kind {
            case .forbidden where error.code == "csrf":
                let body = "<p class=\"lead\">Ce formulaire a expiré ou ne vient pas de ce site : rien n'a été enregistré.</p>"
                    + "<p>Revenez en arrière, rechargez la page, puis recommencez.</p><p><a href=\"/\">Revenir à l'accueil</a></p>\n"
                return Web.html(Layout.page(title: "Formulaire expiré", viewer: nil, body: body), status: .forbidden)
            case .unauthorized: return Web.redirect("/connexion")
            case .forbidden, .notFound: return page(404, context)
            case .unavailable: return page(503, context)
            case .configuration: return page(500, context)
            default:
                context.logger.notice("page refused a request", metadata: ["path": "\(request.uri.path)", "code": "\(error.code)", "message": "\(error.message)"])
                return page(400, context)
            }
        } catch let error as HTTPError {
            return page(Int(error.status.code), context)
        } catch let error as any HTTPResponseError {
            return page(Int(error.status.code), context)
        } catch {
            context.logger.error("internal error on a page", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            return page(500, context)
        }
    }

    func page(_ status: Int, _ context: HubRequestContext) -> Response {
        let problem = AccountPages.problem(status: status)
        let viewer = context.identity.flatMap { identity in context.session.map { Layout.Viewer(identity: identity, csrf: $0.csrf) } }
        var response = Web.html(Layout.page(title: problem.title, viewer: viewer, body: problem.body), status: HTTPResponse.Status(code: status))
        if status == 503 { response.headers[.retryAfter] = "\(HubError.retryAfterSeconds)" }
        return response
    }
}

/// The pages behind a login: reads the session cookie into the caller's identity (or sends them
/// to the login page), reads a POST's form and refuses it without the session's CSRF token, and
/// sends someone with a first password to choose their own before anything else.
struct PageSessionMiddleware: RouterMiddleware {
    typealias Context = HubRequestContext
    let users: any UserStore
    let now: @Sendable () -> Instant

    func handle(_ request: Request, context: HubRequestContext, next: (Request, HubRequestContext) async throws -> Response) async throws -> Response {
        guard let token = Web.cookie(request, Web.sessionCookie), let account = try await users.account(forToken: token, at: now()) else {
            return Web.redirect("/connexion")
        }
        var context = context
        context.identity = account.identity
        context.session = (token, Web.csrf(forSession: token), account.mustChangePassword)
        context.logger[metadataKey: "user"] = "\(account.identity.name)"
        if request.method == .post {
            let form = try await PageForms.read(request, context: context)
            guard let sent = form["csrf"], Web.same(sent, Web.csrf(forSession: token)) else {
                throw HubError(.forbidden, code: "csrf", field: "csrf", message: "the form was sent without its CSRF token (or with another session's)")
            }
            context.form = form
        }
        let path = request.uri.path
        if account.mustChangePassword && path != SitePage.password.path && path != "/deconnexion" {
            return Web.redirect(SitePage.password.path)
        }
        return try await next(request, context)
    }
}

enum PageForms {
    /// At most 8 MiB for a file (a registry of 40,000 homes is about 3 MB); 1 MiB for a plain form.
    static let maxMultipartBytes = 8 * 1024 * 1024

    static func read(_ request: Request, context: HubRequestContext) async throws -> FormFields {
        let type = request.headers[.contentType] ?? ""
        if type.lowercased().hasPrefix("multipart/form-data") {
            guard let boundary = FormFields.boundary(contentType: type) else { throw HubError.badRequest(field: nil, code: "invalid_body", "multipart form without a boundary") }
            let body = try await request.body.collect(upTo: maxMultipartBytes)
            return try FormFields.multipart(Data(body.readableBytesView), boundary: boundary)
        }
        let body = try await request.body.collect(upTo: context.maxUploadSize)
        return try FormFields.urlEncoded(Data(body.readableBytesView))
    }
}

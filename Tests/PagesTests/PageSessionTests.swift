import Foundation
import HTTPTypes
import HubCore
import HubPages
import HubTestSupport
import Hummingbird
import NIOCore
import HummingbirdTesting
import Shared
import Testing
@testable import HubApp

/// Sessions, cookies, CSRF and the slowing of failed logins.
@Suite struct PageSessionTests {
    @Test func theSessionCookieCarriesItsFlagsAndThirtyDaysOnlyWhenAsked() async throws {
        let fixture = try await PagesFixture()
        try await fixture.application().test(.router) { client in
            var browser = PageClient(client)
            let login = try await browser.login("resident")
            #expect(login.status == .seeOther && login.location == "/")
            let cookie = login.headers[values: .setCookie].first { $0.hasPrefix("hub_session=") } ?? ""
            #expect(cookie.contains("; HttpOnly") && cookie.contains("; SameSite=Lax") && cookie.contains("; Path=/"), "\(cookie)")
            #expect(!cookie.contains("Max-Age") && !cookie.contains("Secure"), "a session on a shared computer ends with the browser: \(cookie)")
            // Behind the TLS proxy, and on the person's own phone: Secure, 30 days.
            var phone = PageClient(client)
            let remembered = try await phone.login("resident", remember: true, headers: [HTTPField.Name("X-Forwarded-Proto")!: "https"])
            let long = remembered.headers[values: .setCookie].first { $0.hasPrefix("hub_session=") } ?? ""
            #expect(long.contains("; Max-Age=2592000") && long.contains("; Secure") && long.contains("; HttpOnly"), "\(long)")
            // The pages say who may frame them and run what.
            let page = try await browser.send(.get, "/economies")
            #expect(page.status == .ok)
            #expect(page.headers[.contentSecurityPolicy]?.contains("frame-ancestors 'none'") == true)
            #expect(page.headers[.contentSecurityPolicy]?.contains("default-src 'none'") == true)
            #expect(page.body.contains("<html lang=\"fr\">"))
        }
    }

    @Test func aLoginFormFromAnotherSiteIsRefused() async throws {
        let fixture = try await PagesFixture()
        try await fixture.application().test(.router) { client in
            // Posted without first loading the form (no hub_login cookie), as a forged form would be.
            var forger = PageClient(client)
            let answer = try await forger.send(.post, "/connexion", form: [("csrf", "x"), ("name", "resident"), ("password", PagesFixture.password)])
            #expect(answer.status == .forbidden)
            #expect(forger.cookies["hub_session"] == nil)
        }
    }

    @Test func aSessionSurvivesARestartAndLogoutEndsIt() async throws {
        let fixture = try await PagesFixture()
        let kept = try await fixture.application().test(.router) { client in
            var browser = PageClient(client)
            try await browser.login("asso")
            #expect(try await browser.send(.get, "/quartier").status == .ok)
            return browser.cookies
        }
        // Another process on the same database file: the session is there.
        try await fixture.application(reopen: true).test(.router) { client in
            var browser = PageClient(client)
            browser.cookies = kept
            let page = try await browser.send(.get, "/quartier")
            #expect(page.status == .ok, "the session did not survive the restart")
            let csrf = page.csrf ?? ""
            let out = try await browser.send(.post, "/deconnexion", form: [("csrf", csrf)])
            #expect(out.status == .seeOther && out.location?.hasPrefix("/connexion") == true)
            var old = PageClient(client)
            old.cookies = kept
            let after = try await old.send(.get, "/quartier")
            #expect(after.status == .seeOther && after.location == "/connexion", "the cookie still opens pages after logout")
        }
    }

    /// Failed logins slow down per name: five are free, then each doubles the wait (1 s, 2 s, 4 s…
    /// up to 5 minutes). During a wait nothing is checked, not even the right password; when it
    /// is over, the right password works at once and clears the count.
    @Test func failedLoginsSlowDownAndTheRealPersonGetsBackIn() async throws {
        let fixture = try await PagesFixture()
        try await fixture.application().test(.router) { client in
            var attacker = PageClient(client)
            var answered: [Int] = []
            var waits: [String] = []
            for attempt in 1...12 {
                let answer = try await attacker.login("resident", password: "guess-\(attempt)")
                answered.append(Int(answer.status.code))
                if let wait = answer.headers[.retryAfter] {
                    waits.append(wait)
                    // The attacker waits what they are told, then tries again.
                    fixture.advance(seconds: Int64(wait)!)
                }
            }
            // One more guess once the last wait is over: checked, wrong, and the next wait begins.
            answered.append(Int(try await attacker.login("resident", password: "guess-13").status.code))
            print("login slowing: statuses \(answered), waits \(waits) s")
            #expect(Array(answered.prefix(5)) == [401, 401, 401, 401, 401])
            #expect(answered[5] == 429, "the sixth wrong password in a row was checked")
            #expect(waits.first == "1" && waits.contains("2") && waits.contains("4"), "\(waits)")
            // Within a wait, the right password is not even checked.
            var person = PageClient(client)
            let early = try await person.login("resident")
            #expect(early.status == .tooManyRequests && early.body.contains("Trop d&#39;essais pour ce compte"))
            // Once it is over, it works, and the count starts afresh.
            fixture.advance(seconds: 300)
            let later = try await person.login("resident")
            #expect(later.status == .seeOther, "the real person is locked out: \(later.status)")
            // Another name is not slowed by the first one's failures (the address counts separately, from 20).
            var other = PageClient(client)
            #expect(try await other.login("neighbour").status == .seeOther)
        }
    }

    /// The API's login is slowed by the same counts: 429 with the wait in `Retry-After`.
    @Test func theAPILoginIsSlowedToo() async throws {
        let fixture = try await PagesFixture()
        try await fixture.application().test(.router) { client in
            var statuses: [Int] = []
            var retryAfter: String?
            for attempt in 1...6 {
                let body = ByteBuffer(string: #"{"name":"asso","password":"wrong-\#(attempt)"}"#)
                try await client.execute(uri: "/api/v1/sessions", method: .post, headers: [.contentType: "application/json"], body: body) { response in
                    statuses.append(Int(response.status.code))
                    retryAfter = response.headers[.retryAfter]
                    if response.status == .tooManyRequests { #expect(String(buffer: response.body).contains("too_many_attempts")) }
                }
            }
            #expect(statuses == [401, 401, 401, 401, 401, 429], "\(statuses)")
            #expect(retryAfter == "1")
            // A page login for the same name waits too: the counts are one.
            var browser = PageClient(client)
            #expect(try await browser.login("asso").status == .tooManyRequests)
        }
    }

    /// Behind the local TLS proxy the client's address is the one it forwards, and only then.
    @Test func theClientAddressIsTheProxysOnlyFromLoopback() {
        #expect(Web.clientAddress(socket: "127.0.0.1", forwardedFor: "203.0.113.5", behindProxy: true) == "203.0.113.5")
        #expect(Web.clientAddress(socket: "127.0.0.1", forwardedFor: "198.51.100.1, 203.0.113.5", behindProxy: true) == "203.0.113.5")
        #expect(Web.clientAddress(socket: "127.0.0.1", forwardedFor: "203.0.113.5", behindProxy: false) == "127.0.0.1")
        #expect(Web.clientAddress(socket: "192.0.2.7", forwardedFor: "203.0.113.5", behindProxy: true) == "192.0.2.7", "anyone could pick their address")
        #expect(Web.clientAddress(socket: "127.0.0.1", forwardedFor: nil, behindProxy: true) == "127.0.0.1")
    }

    @Test func theAddressIsSlowedWhateverNamesItTries() async throws {
        let guardian = LoginGuard()
        let now = Instant.parseRFC3339("2026-11-20T10:00:00Z")!
        for index in 0..<20 {
            #expect(try await guardian.retryAfter(name: "name-\(index)", address: "203.0.113.9", at: now) == 0)
            try await guardian.failed(name: "name-\(index)", address: "203.0.113.9", at: now)
        }
        #expect(try await guardian.retryAfter(name: "someone-new", address: "203.0.113.9", at: now) == 1)
        #expect(try await guardian.retryAfter(name: "someone-new", address: "198.51.100.7", at: now) == 0)
    }

    /// An unknown name costs the same bcrypt work as a known one with a wrong password (issue 14,
    /// defect 11: 3 ms against 308 ms told which names exist).
    @Test func unknownAndKnownNamesTakeTheSameTime() async throws {
        let fixture = try await PagesFixture(bcryptCost: 10)
        let users = fixture.users
        // The stand-in hash has the store's cost, like the real accounts'.
        #expect(SQLiteUserStore.dummyHash(cost: 10).hasPrefix("$2b$10$") || SQLiteUserStore.dummyHash(cost: 10).hasPrefix("$2a$10$"))
        _ = try await users.verify(name: "nobody", password: "x")  // makes the stand-in once
        func median(_ name: String) async throws -> Double {
            var times: [Double] = []
            for _ in 0..<5 {
                let start = ContinuousClock.now
                _ = try await users.verify(name: name, password: "wrong password")
                let elapsed = ContinuousClock.now - start
                times.append(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
            }
            return times.sorted()[2]
        }
        let known = try await median("resident")
        let unknown = try await median("nobody-at-all")
        print("login timing (bcrypt cost 10, median of 5): known name \(known) ms, unknown name \(unknown) ms")
        #expect(unknown > known / 3 && unknown < known * 3, "known \(known) ms, unknown \(unknown) ms")
    }

    @Test func theLoginThrottleRuleDoublesUpToItsCapAndForgets() {
        let rule = LoginThrottleRule(freeFailures: 5, firstWaitSeconds: 1, maxWaitSeconds: 300, forgetAfterSeconds: 3600)
        #expect((0...12).map { rule.waitSeconds(afterFailures: $0) } == [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128])
        #expect(rule.waitSeconds(afterFailures: 40) == 300)
        let now = Instant.parseRFC3339("2026-11-20T10:00:00Z")!
        var state: LoginThrottleRule.State?
        for _ in 0..<7 { state = rule.failed(state, at: now) }
        #expect(rule.retryAfter(state, at: now) == 4)
        #expect(rule.retryAfter(state, at: now.adding(seconds: 4)) == 0)
        #expect(rule.failed(state, at: now.adding(seconds: 3600)).failures == 1)
    }
}

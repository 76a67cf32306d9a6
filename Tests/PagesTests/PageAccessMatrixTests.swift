import HTTPTypes
import HubCore
import HubPages
import HubTestSupport
import Hummingbird
import HummingbirdTesting
import Testing
@testable import HubApp

/// Every page and form × every role × their own or another's estate or dwelling, with the answer
/// written here. A refusal looks like a missing page (404): nobody learns what exists by trying.
/// The answers come from `SitePage.allows` and the stores, which ask `AccessPolicy`, the API's.
@Suite struct PageAccessMatrixTests {
    /// The roles, as the fixture's logins: a resident of OUT-A-01, Outreau's association, the
    /// volunteer driver Jean (assigned to Alice's booking), staff.
    static let roles = ["resident", "asso", "driver", "staff"]

    /// (path, resident, association, driver, staff) for a GET.
    static func pages(_ fixture: PagesFixture) -> [(String, [Int])] {
        let alice = fixture.aliceBooking, carole = fixture.caroleBooking
        return [
            ("/economies", [200, 404, 404, 200]),
            ("/economies?logement=OUT-A-01", [200, 404, 404, 200]),   // own dwelling
            ("/economies?logement=OUT-A-02", [404, 404, 404, 200]),   // a neighbour's
            ("/economies?logement=NOPE-99", [404, 404, 404, 404]),    // none: the same answer
            ("/voiture", [200, 200, 404, 200]),
            ("/voiture/demande", [200, 404, 404, 404]),
            ("/quartier", [404, 200, 404, 200]),
            ("/quartier?residence=Outreau", [404, 200, 404, 200]),    // the association's own estate
            ("/quartier?residence=Le%20Portel", [404, 404, 404, 200]), // another estate
            ("/quartier?residence=Nulle-part", [404, 404, 404, 404]),
            ("/voiture/semaine", [404, 200, 200, 200]),
            ("/voiture/feuille", [404, 200, 200, 200]),
            ("/adherents", [200, 200, 404, 200]),
            ("/adherents/nouveau", [404, 200, 404, 200]),
            ("/reservations/nouvelle", [404, 200, 404, 200]),
            ("/paiements/nouveau", [404, 200, 200, 200]),
            ("/caisse", [404, 200, 404, 200]),
            ("/missions", [404, 200, 200, 200]),
            ("/trajets/nouveau", [404, 200, 200, 200]),
            ("/trajets/nouveau?reservation=\(alice)", [404, 200, 200, 200]),  // Outreau's booking, Jean's assignment
            ("/trajets/nouveau?reservation=\(carole)", [404, 404, 404, 200]), // Le Portel's, nobody's assignment
            ("/recharges/nouvelle", [404, 200, 200, 200]),
            ("/saisie/semaine", [404, 200, 200, 200]),
            ("/registre", [404, 404, 404, 200]),
            ("/boitiers", [404, 404, 404, 200]),
            ("/messages-refuses", [404, 404, 404, 200]),
            ("/comptes", [404, 404, 404, 200]),
            ("/comptes/nouveau", [404, 404, 404, 200]),
            ("/releves", [404, 404, 404, 200]),
            ("/releves/fichiers/statements/2026-10/summary.csv", [404, 404, 404, 200]),
            ("/mot-de-passe", [200, 200, 200, 200]),
            ("/", [303, 303, 303, 303]),
            ("/nulle-part", [404, 404, 404, 404]),
        ]
    }

    /// (path, resident, association, driver, staff) for a POST with the session's CSRF token and
    /// nothing filled in: those allowed get their form back with the errors (422, or 200 for the
    /// paper sheet, which skips empty rows), the others a missing page.
    static let forms: [(String, [Int])] = [
        ("/voiture/demande", [422, 404, 404, 404]),
        ("/adherents/nouveau", [404, 422, 404, 422]),
        ("/adherents/adhesion", [404, 400, 404, 400]),
        ("/reservations/nouvelle", [404, 422, 404, 422]),
        ("/paiements/nouveau", [404, 422, 422, 422]),
        ("/trajets/nouveau", [404, 422, 422, 422]),
        ("/recharges/nouvelle", [404, 422, 422, 422]),
        ("/saisie/semaine", [404, 200, 200, 200]),
        ("/registre", [404, 404, 404, 422]),
        ("/comptes/nouveau", [404, 404, 404, 422]),
        ("/comptes/fiche", [404, 404, 404, 400]),
        ("/mot-de-passe", [422, 422, 422, 422]),
    ]

    @Test func everyPageAndFormAnswersEachRoleAsWritten() async throws {
        let fixture = try await PagesFixture()
        let pages = Self.pages(fixture)
        try await fixture.application().test(.router) { client in
            var mismatches: [String] = []
            for (index, role) in Self.roles.enumerated() {
                var browser = PageClient(client)
                let login = try await browser.login(role)
                #expect(login.status == .seeOther, "\(role) could not log in: \(login.body.prefix(300))")
                let csrf = try await browser.csrf()
                for (path, expected) in pages {
                    let answer = try await browser.send(.get, path)
                    if answer.status.code != expected[index] { mismatches.append("GET \(path) as \(role): \(answer.status.code), expected \(expected[index])") }
                }
                for (path, expected) in Self.forms {
                    let answer = try await browser.send(.post, path, form: [("csrf", csrf)])
                    if answer.status.code != expected[index] { mismatches.append("POST \(path) as \(role): \(answer.status.code), expected \(expected[index])") }
                    // Without the token: refused whoever asks, and nothing done.
                    let forged = try await browser.send(.post, path, form: [("name", "x")])
                    if forged.status != .forbidden || !forged.body.contains("Formulaire expiré") {
                        mismatches.append("POST \(path) as \(role) without a CSRF token: \(forged.status.code)")
                    }
                }
            }
            // Logged out: every page sends to the login page, every form too.
            var stranger = PageClient(client)
            for (path, _) in pages where path != "/nulle-part" && !path.hasPrefix("/releves/fichiers") {
                let answer = try await stranger.send(.get, path)
                if answer.status != .seeOther || answer.location != "/connexion" { mismatches.append("GET \(path) logged out: \(answer.status.code) \(answer.location ?? "")") }
            }
            for (path, _) in Self.forms {
                let answer = try await stranger.send(.post, path, form: [("csrf", "guess")])
                if answer.status != .seeOther { mismatches.append("POST \(path) logged out: \(answer.status.code)") }
            }
            #expect(mismatches.isEmpty, "\(mismatches.joined(separator: "\n"))")
        }
    }

    /// The menu shows a role only pages the policy opens to it (hiding a link is not what protects
    /// a page; the table above is).
    @Test func theMenuOffersOnlyWhatThePolicyOpens() {
        let identities = [Identity(name: "r", role: .resident, dwelling: "OUT-A-01"), Identity(name: "a", role: .association, estate: "Outreau"),
                          Identity(name: "d", role: .driver), Identity(name: "s", role: .staff)]
        for identity in identities {
            for page in SitePage.menu(for: identity.role) { #expect(page.allows(identity), "\(page) is in \(identity.role)'s menu but closed to it") }
            #expect(SitePage.home(for: identity.role).allows(identity))
        }
    }
}

import CarShare
import CarShareCore
import EnergyCore
import EnergyHub
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import HubCore
import HubPages
import Shared

/// The pages: server-rendered French HTML over the same stores and the same access policy as the
/// API (every handler asks `SitePage.allows`, and the stores ask `AccessPolicy` again for each
/// thing they read or write). No page needs JavaScript.
struct WebRoutes {
    let settings: HubSettings
    let users: any UserStore
    let guardian: LoginGuard
    let carShare: any CarShareStore
    let figures: any EnergyFigureStore
    let registry: any RegistryStore
    let readings: any ReadingStore
    let now: @Sendable () -> Instant
    let zone: LocalTimeZone

    func add(to router: Router<HubRequestContext>, limit: ConcurrencyLimitMiddleware<HubRequestContext>, statements: StatementRoutes?) {
        let open = router.group().add(middleware: limit)
        open.get("/") { request, _ in
            guard let token = Web.cookie(request, Web.sessionCookie), let account = try await users.account(forToken: token, at: now()) else {
                return Web.redirect("/connexion")
            }
            return Web.redirect(SitePage.home(for: account.identity.role).path)
        }
        open.get("connexion") { request, _ in try await loginPage(request) }
        open.post("connexion") { request, context in try await login(request, context) }

        let pages = router.group().add(middleware: limit).add(middleware: PageSessionMiddleware(users: users, now: now))
        pages.post("deconnexion") { request, context in
            if let session = context.session { _ = try await users.revoke(token: session.token, at: now()) }
            let secure = Web.isSecure(request, settings: settings)
            return Web.redirect("/connexion?au-revoir=1", cookies: [Web.clearCookie(Web.sessionCookie, secure: secure)])
        }
        pages.get(path(.password)) { _, context in try passwordPage(context, form: HTML.Form()) }
        pages.post(path(.password)) { request, context in try await changePassword(request, context) }

        pages.get(path(.savings)) { request, context in try await savings(request, context) }
        pages.get(path(.myCar)) { _, context in try await myCar(context) }
        pages.get(path(.askTrip)) { _, context in try await askTrip(context, form: HTML.Form()) }
        pages.post(path(.askTrip)) { _, context in try await submitAskTrip(context) }

        pages.get(path(.estate)) { request, context in try await estate(request, context) }
        pages.get(path(.week)) { request, context in try await week(request, context, page: .week) }
        pages.get(path(.driverSheet)) { request, context in try await week(request, context, page: .driverSheet) }
        pages.get(path(.members)) { _, context in try await members(context, notice: nil) }
        pages.get(path(.newMember)) { _, context in try await newMember(context, form: HTML.Form()) }
        pages.post(path(.newMember)) { _, context in try await submitNewMember(context) }
        pages.post(path(.renewMembership)) { _, context in try await renewMembership(context) }
        pages.get(path(.bookOnBehalf)) { _, context in try await bookOnBehalf(context, form: HTML.Form(), notice: nil) }
        pages.post(path(.bookOnBehalf)) { _, context in try await submitBookOnBehalf(context) }
        pages.get(path(.newPayment)) { _, context in try await newPayment(context, form: HTML.Form(), notice: nil) }
        pages.post(path(.newPayment)) { _, context in try await submitNewPayment(context) }
        pages.get(path(.cashBook)) { request, context in try await cashBook(request, context) }

        pages.get(path(.missions)) { _, context in try await missions(context) }
        pages.get(path(.newTrip)) { request, context in try await newTrip(request, context) }
        pages.post(path(.newTrip)) { _, context in try await submitNewTrip(context) }
        pages.get(path(.newCharge)) { _, context in try await newCharge(context, form: nil, notice: nil) }
        pages.post(path(.newCharge)) { _, context in try await submitNewCharge(context) }

        pages.get(path(.paperWeek)) { request, context in try await paperWeek(request, context, form: HTML.Form(), notice: nil) }
        pages.post(path(.paperWeek)) { request, context in try await submitPaperWeek(request, context) }
        pages.get(path(.registry)) { _, context in try registryPage(context, form: HTML.Form(), result: nil) }
        pages.post(path(.registry)) { _, context in try await submitRegistry(context) }
        pages.get(path(.devices)) { _, context in try await devices(context) }
        pages.get(path(.quarantine)) { request, context in try await quarantine(request, context) }
        pages.get(path(.accounts)) { _, context in try await accounts(context) }
        pages.get(path(.newAccount)) { _, context in try newAccount(context, form: HTML.Form()) }
        pages.post(path(.newAccount)) { request, context in try await submitNewAccount(request, context) }
        pages.post(path(.accountSheet)) { request, context in try await resetAccount(request, context) }
        pages.get(path(.statements)) { request, context in try statementsPage(request, context) }
        // The month's files for staff, behind the session: the same handlers as the API's.
        statements?.add(to: pages.group("releves/fichiers"))
    }

    // MARK: - helpers

    /// A page's address as the router's path (without the leading slash).
    func path(_ page: SitePage) -> RouterPath { RouterPath(stringLiteral: String(page.path.dropFirst())) }

    /// The caller, when the policy lets them open this page (with this subject); a refusal looks
    /// like a missing page.
    func authorize(_ page: SitePage, _ context: HubRequestContext, subject: String? = nil) throws -> (Identity, Layout.Viewer) {
        let identity = try context.requireIdentity()
        guard page.allows(identity, subject: subject) else { throw HubError.forbidden("\(page.path) is not open to \(identity.role.rawValue) \(identity.name)") }
        return (identity, Layout.Viewer(identity: identity, csrf: context.session?.csrf ?? ""))
    }

    func render(_ page: SitePage, _ viewer: Layout.Viewer, body: String, notice: String? = nil, title: String? = nil, status: HTTPResponse.Status = .ok) -> Response {
        Web.html(Layout.page(title: title ?? page.title, viewer: viewer, current: page, notice: notice, body: body), status: status)
    }

    func submitted(_ context: HubRequestContext) -> FormFields { context.form ?? FormFields() }

    func echo(_ fields: FormFields, dropping: Set<String> = ["csrf"]) -> HTML.Form {
        HTML.Form(values: fields.firstValues.filter { !dropping.contains($0.key) }, lists: fields.values)
    }

    var today: LocalDate { zone.localDate(of: now()) }

    /// `?mois=YYYY-MM`, default this month.
    func month(_ request: Request) throws -> LocalDate {
        guard let text = request.query("mois") else { return today.firstOfMonth }
        guard let first = LocalDate(parsing: text + "-01") else { throw HubError.badRequest(field: "mois", "mois must be YYYY-MM") }
        return first
    }

    /// `?du=` a day of the week wanted (default today): its Monday.
    func monday(_ request: Request) throws -> LocalDate {
        guard let text = request.query("du") else { return FrenchInput.monday(of: today) }
        guard let date = FrenchInput.date(text) else { throw HubError.badRequest(field: "du", "du must be a date") }
        return FrenchInput.monday(of: date)
    }

    /// Reads a day and two times into an interval; errors go next to their fields.
    func interval(_ fields: FormFields, date: String = "date", start: String = "start", end: String = "end", errors: inout [String: String]) -> (Instant, Instant)? {
        let day = fields[date].flatMap(FrenchInput.date)
        if day == nil { errors[date] = fields[date] == nil ? "Indiquez le jour." : "Écrivez le jour comme 03/12/2026." }
        let from = fields[start].flatMap(FrenchInput.time)
        if from == nil { errors[start] = fields[start] == nil ? "Indiquez l'heure de départ." : "Écrivez l'heure comme 14:00." }
        let to = fields[end].flatMap(FrenchInput.time)
        if to == nil { errors[end] = fields[end] == nil ? "Indiquez l'heure de retour." : "Écrivez l'heure comme 16:30." }
        guard let day, let from, let to else { return nil }
        guard let startInstant = FrenchInput.instant(day, from, zone: zone) else { errors[start] = "Cette heure n'existe pas ce jour-là (changement d'heure)."; return nil }
        guard let endInstant = FrenchInput.instant(day, to, zone: zone) else { errors[end] = "Cette heure n'existe pas ce jour-là (changement d'heure)."; return nil }
        guard endInstant > startInstant else { errors[end] = "L'heure de retour doit être après l'heure de départ."; return nil }
        return (startInstant, endInstant)
    }

    func weekLines(_ bookings: [BookingView], identity: Identity) async throws -> [AssociationPages.WeekLine] {
        let contacts = try await carShare.riderContacts(bookings: bookings.map(\.id), by: identity)
        let drivers = AccessPolicy.allows(identity, .read, .drivers) ? try await carShare.drivers(by: identity) : []
        return bookings.map { booking in
            let contact = contacts[booking.id]
            return AssociationPages.WeekLine(booking: booking, rider: contact?.name ?? "adhérent n° \(booking.rider)", phone: contact?.phone ?? "",
                                             driver: booking.driver.map { id in drivers.first { $0.id == id }?.name ?? "chauffeur n° \(id)" })
        }
    }

    // MARK: - accounts

    func loginPage(_ request: Request, form: HTML.Form = HTML.Form(), message: String? = nil, status: HTTPResponse.Status = .ok) async throws -> Response {
        if message == nil, let token = Web.cookie(request, Web.sessionCookie), let account = try await users.account(forToken: token, at: now()) {
            return Web.redirect(SitePage.home(for: account.identity.role).path)
        }
        let secure = Web.isSecure(request, settings: settings)
        let value = Web.cookie(request, Web.loginCookie) ?? Web.randomToken()
        let notice = request.query("au-revoir") != nil ? "Vous êtes déconnecté. À bientôt !" : nil
        let page = Layout.page(title: "Se connecter", viewer: nil, notice: notice, body: AccountPages.login(form: form, csrf: value, message: message))
        return Web.html(page, status: status, cookies: [Web.setCookie(Web.loginCookie, value, maxAge: nil, secure: secure)])
    }

    func login(_ request: Request, _ context: HubRequestContext) async throws -> Response {
        let fields = try await PageForms.read(request, context: context)
        guard let expected = Web.cookie(request, Web.loginCookie), let sent = fields["csrf"], Web.same(expected, sent) else {
            throw HubError(.forbidden, code: "csrf", field: "csrf", message: "the login form was sent without its token")
        }
        var form = HTML.Form(values: ["name": fields["name"] ?? "", "remember": fields["remember"] ?? ""])
        guard let name = fields["name"] else { form.errors["name"] = "Écrivez votre identifiant."; return try await loginPage(request, form: form, status: .unprocessableContent) }
        guard let password = fields.values["password"]?.first, !password.isEmpty else {
            form.errors["password"] = "Écrivez votre mot de passe."
            return try await loginPage(request, form: form, status: .unprocessableContent)
        }
        let address = Web.clientAddress(request, context, settings: settings)
        let wait = try await guardian.retryAfter(name: name, address: address, at: now())
        if wait > 0 {
            var response = try await loginPage(request, form: form, message: "Trop d'essais pour ce compte. Attendez \(French.count(Int(wait), "seconde")), puis recommencez.",
                                               status: .tooManyRequests)
            response.headers[.retryAfter] = "\(wait)"
            return response
        }
        guard let identity = try await users.verify(name: name, password: password) else {
            try await guardian.failed(name: name, address: address, at: now())
            return try await loginPage(request, form: form, message: "Identifiant ou mot de passe incorrect. Vérifiez-les sur votre fiche, puis recommencez.",
                                       status: .unauthorized)
        }
        try await guardian.succeeded(name: name)
        let remember = fields["remember"] == "1"
        let seconds = remember ? Int64(settings.auth.rememberDays) * 86_400 : Int64(settings.auth.sessionHours) * 3600
        let token = try await users.createToken(for: identity.name, label: remember ? "web-30-days" : "web", expiresAt: now().adding(seconds: seconds),
                                                by: identity, at: now())
        let secure = Web.isSecure(request, settings: settings)
        return Web.redirect("/", cookies: [Web.setCookie(Web.sessionCookie, token, maxAge: remember ? Int(seconds) : nil, secure: secure),
                                           Web.clearCookie(Web.loginCookie, secure: secure)])
    }

    func passwordPage(_ context: HubRequestContext, form: HTML.Form, status: HTTPResponse.Status = .ok) throws -> Response {
        let (_, viewer) = try authorize(.password, context)
        let firstTime = context.session?.mustChangePassword ?? false
        return render(.password, viewer, body: AccountPages.password(form: form, csrf: viewer.csrf, firstTime: firstTime), status: status)
    }

    func changePassword(_ request: Request, _ context: HubRequestContext) async throws -> Response {
        let (identity, viewer) = try authorize(.password, context)
        let fields = submitted(context)
        var form = HTML.Form()
        let current = fields.values["current"]?.first ?? ""
        let password = fields.values["password"]?.first ?? ""
        if current.isEmpty { form.errors["current"] = "Écrivez votre mot de passe actuel." }
        if password.count < 8 { form.errors["password"] = "Choisissez un mot de passe d'au moins 8 caractères." }
        if password.utf8.count > 72 { form.errors["password"] = "Ce mot de passe est trop long : 72 caractères au plus." }
        if password != (fields.values["confirm"]?.first ?? "") { form.errors["confirm"] = "Les deux nouveaux mots de passe ne sont pas pareils : retapez-les." }
        if form.errors.isEmpty {
            let address = Web.clientAddress(request, context, settings: settings)
            let wait = try await guardian.retryAfter(name: identity.name, address: address, at: now())
            if wait > 0 {
                form.errors["current"] = "Trop d'essais. Attendez \(French.count(Int(wait), "seconde")), puis recommencez."
            } else if try await users.verify(name: identity.name, password: current) == nil {
                try await guardian.failed(name: identity.name, address: address, at: now())
                form.errors["current"] = "Ce n'est pas votre mot de passe actuel."
            }
        }
        guard form.errors.isEmpty else { return try passwordPage(context, form: form, status: .unprocessableContent) }
        try await users.setPassword(name: identity.name, password: password, mustChange: false, by: identity, at: now())
        return render(SitePage.home(for: identity.role), viewer, body: "<p class=\"lead\">Votre nouveau mot de passe est enregistré.</p><p><a href=\"/\">Continuer</a></p>\n",
                      notice: "Mot de passe changé.", title: "Mot de passe changé")
    }

    // MARK: - residents

    func savings(_ request: Request, _ context: HubRequestContext) async throws -> Response {
        let subject = request.query("logement")
        let identity = try context.requireIdentity()
        if subject == nil && identity.dwelling == nil {
            let (_, viewer) = try authorize(.savings, context)
            let body = "<form method=\"get\" action=\"\(SitePage.savings.path)\"><div class=\"field\"><label for=\"logement\">Numéro du logement</label>"
                + "<input type=\"text\" id=\"logement\" name=\"logement\"></div><button type=\"submit\" class=\"button\">Voir les économies</button></form>\n"
            return render(.savings, viewer, body: body, title: "Économies d'un logement")
        }
        let (_, viewer) = try authorize(.savings, context, subject: subject)
        let dwelling = subject ?? identity.dwelling!
        let first = try month(request)
        let last = min(first.firstOfNextMonth.advanced(by: -1), today)
        guard first <= today else { throw HubError.notFound(field: "mois", "that month has not begun") }
        let report = try await figures.dwelling(dwelling, from: first, to: last, now: now(), by: identity)
        return render(.savings, viewer, body: ResidentPages.savings(report, month: first, today: today, forStaff: identity.dwelling != dwelling))
    }

    func myCar(_ context: HubRequestContext) async throws -> Response {
        let (identity, viewer) = try authorize(.myCar, context)
        let members = try await carShare.members(by: identity).filter { identity.role != .resident || $0.dwelling == identity.dwelling }
        var statements: [MemberStatement] = []
        for member in members.prefix(20) { statements.append(try await carShare.statement(member: member.id, by: identity)) }
        let bookings = try await carShare.bookings(vehicle: nil, from: now().adding(seconds: -90 * 86_400), to: nil, by: identity)
        let vehicles = try await carShare.vehicles(by: identity)
        return render(.myCar, viewer, body: ResidentPages.myCar(bookings: bookings, statements: statements, vehicles: vehicles, now: now(), zone: zone))
    }

    func riders(_ identity: Identity) async throws -> [HTML.Choice] {
        try await carShare.members(by: identity).filter { $0.dwelling == identity.dwelling }.map { HTML.Choice("\($0.id)", $0.name) }
    }

    func askTrip(_ context: HubRequestContext, form: HTML.Form, status: HTTPResponse.Status = .ok) async throws -> Response {
        let (identity, viewer) = try authorize(.askTrip, context)
        return render(.askTrip, viewer, body: ResidentPages.askTrip(form: form, riders: try await riders(identity), csrf: viewer.csrf), status: status)
    }

    func submitAskTrip(_ context: HubRequestContext) async throws -> Response {
        let (identity, viewer) = try authorize(.askTrip, context)
        let fields = submitted(context)
        var form = echo(fields)
        let choices = try await riders(identity)
        let rider = fields["rider"].flatMap { Int64($0) }
        if rider == nil || !choices.contains(where: { $0.value == fields["rider"] }) { form.errors["rider"] = "Choisissez qui voyage." }
        let span = interval(fields, errors: &form.errors)
        let vehicle = try await carShare.vehicles(by: identity).first { $0.active }
        if vehicle == nil { form.formError = "L'association n'a pas encore de voiture enregistrée." }
        guard let rider, let span, let vehicle, form.errors.isEmpty else { return try await askTrip(context, form: form, status: .unprocessableContent) }
        do {
            let booking = try await carShare.createBooking(NewBooking(vehicle: vehicle.id, rider: rider, start: span.0, end: span.1, purpose: fields["purpose"]),
                                                           by: identity, at: now())
            let body = "<p class=\"lead\">Votre demande est envoyée pour le \(FrenchTime.sentence(booking.start, zone: zone)). "
                + "L'association vous appellera pour la confirmer et vous dire qui vous conduira.</p><p><a href=\"\(SitePage.myCar.path)\">Voir mes réservations</a></p>\n"
            return render(.askTrip, viewer, body: body, notice: "Demande envoyée.", title: "Demande envoyée")
        } catch let error as HubError where error.kind != .forbidden {
            FrenchErrors.place(error, in: &form, fields: ["rider", "date", "start", "end", "purpose"])
            return try await askTrip(context, form: form, status: .unprocessableContent)
        }
    }

    // MARK: - associations

    func estate(_ request: Request, _ context: HubRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        var subject = request.query("residence")
        let estates = identity.role == .staff ? try await figures.estates(by: identity) : []
        if subject == nil && identity.estate == nil { subject = estates.first }
        let (_, viewer) = try authorize(.estate, context, subject: subject)
        guard let estate = subject ?? identity.estate else { throw HubError.notFound(field: "residence", "no estate") }
        let first = try month(request)
        guard first <= today else { throw HubError.notFound(field: "mois", "that month has not begun") }
        let last = min(first.firstOfNextMonth.advanced(by: -1), today)
        let report = try await figures.estate(estate, from: first, to: last, now: now(), by: identity)
        var buildings: [BuildingEnergyReport] = []
        for building in report.buildings.compactMap(\.building) {
            buildings.append(try await figures.building(building, from: first, to: last, now: now(), by: identity))
        }
        return render(.estate, viewer, body: AssociationPages.estate(report, buildings: buildings, month: first, today: today, estates: estates, forStaff: identity.role == .staff))
    }

    func week(_ request: Request, _ context: HubRequestContext, page: SitePage) async throws -> Response {
        let (identity, viewer) = try authorize(page, context)
        let monday = try monday(request)
        let bookings = try await carShare.bookings(vehicle: nil, from: zone.startOfDay(monday), to: zone.startOfDay(monday.advanced(by: 7)), by: identity)
        let lines = try await weekLines(bookings.filter { $0.status.isLive || $0.status == .completed }, identity: identity)
        let vehicles = try await carShare.vehicles(by: identity)
        if page == .driverSheet {
            return render(page, viewer, body: AssociationPages.driverSheet(monday: monday, lines: lines, vehicle: vehicles.first { $0.active }, zone: zone))
        }
        return render(page, viewer, body: AssociationPages.week(monday: monday, lines: lines, vehicles: vehicles, zone: zone, today: today,
                                                                mayBook: SitePage.bookOnBehalf.allows(identity)))
    }

    func members(_ context: HubRequestContext, notice: String?) async throws -> Response {
        let (identity, viewer) = try authorize(.members, context)
        let members = try await carShare.members(by: identity)
        let balances = AccessPolicy.allows(identity, .read, .ledger) ? try await carShare.balances(by: identity).members : []
        return render(.members, viewer, body: AssociationPages.members(members, balances: Dictionary(balances.map { ($0.member, $0) }, uniquingKeysWith: { a, _ in a }),
                                                                       today: today, mayAdd: SitePage.newMember.allows(identity), csrf: viewer.csrf), notice: notice)
    }

    func newMember(_ context: HubRequestContext, form: HTML.Form, status: HTTPResponse.Status = .ok) async throws -> Response {
        let (_, viewer) = try authorize(.newMember, context)
        return render(.newMember, viewer, body: AssociationPages.newMember(form: form, csrf: viewer.csrf), status: status)
    }

    func submitNewMember(_ context: HubRequestContext) async throws -> Response {
        let (identity, _) = try authorize(.newMember, context)
        let fields = submitted(context)
        var form = echo(fields)
        guard let name = fields["name"] else {
            form.errors["name"] = "Écrivez le nom et le prénom."
            return try await newMember(context, form: form, status: .unprocessableContent)
        }
        do {
            let member = try await carShare.addMember(NewMember(name: name, phone: fields["phone"], dwelling: fields["dwelling"]), by: identity, at: now())
            var notice = "\(member.name) est inscrit(e)."
            if fields["membership"] == "1" {
                _ = try await carShare.buyMembership(member: member.id, NewMembership(start: today), by: identity, at: now())
                notice += " Son adhésion de l'année est enregistrée : 8 € à payer (enregistrez le paiement quand il est reçu)."
            }
            return try await members(context, notice: notice)
        } catch let error as HubError where error.kind != .forbidden {
            FrenchErrors.place(error, in: &form, fields: ["name", "phone", "dwelling"])
            return try await newMember(context, form: form, status: .unprocessableContent)
        }
    }

    func renewMembership(_ context: HubRequestContext) async throws -> Response {
        let (identity, _) = try authorize(.renewMembership, context)
        guard let member = submitted(context)["member"].flatMap({ Int64($0) }) else { throw HubError.badRequest(field: "member", "member must be a number") }
        do {
            let membership = try await carShare.buyMembership(member: member, NewMembership(start: today), by: identity, at: now())
            let name = try await carShare.member(member, by: identity).name
            return try await members(context, notice: "Adhésion de \(name) enregistrée jusqu'au \(French.shortDate(membership.periodEnd.advanced(by: -1))) : \(French.euros(membership.feeCents)) à payer.")
        } catch let error as HubError where error.kind != .forbidden && error.kind != .notFound {
            return try await members(context, notice: FrenchErrors.message(error))
        }
    }

    func memberChoices(_ identity: Identity) async throws -> [HTML.Choice] {
        try await carShare.members(by: identity).sorted { $0.name < $1.name }.map { HTML.Choice("\($0.id)", $0.name + ($0.dwelling.map { " (logement \($0))" } ?? "")) }
    }

    func bookOnBehalf(_ context: HubRequestContext, form: HTML.Form, notice: String?, status: HTTPResponse.Status = .ok) async throws -> Response {
        let (identity, viewer) = try authorize(.bookOnBehalf, context)
        let drivers = try await carShare.drivers(by: identity).filter(\.active).map { HTML.Choice("\($0.id)", $0.name) }
        let vehicles = try await carShare.vehicles(by: identity).filter(\.active).map { HTML.Choice("\($0.id)", $0.name) }
        return render(.bookOnBehalf, viewer, body: AssociationPages.bookOnBehalf(form: form, members: try await memberChoices(identity), drivers: drivers, vehicles: vehicles,
                                                                                 csrf: viewer.csrf), notice: notice, status: status)
    }

    func submitBookOnBehalf(_ context: HubRequestContext) async throws -> Response {
        let (identity, _) = try authorize(.bookOnBehalf, context)
        let fields = submitted(context)
        var form = echo(fields)
        let rider = fields["rider"].flatMap { Int64($0) }
        if rider == nil { form.errors["rider"] = "Choisissez l'adhérent." }
        let vehicle = fields["vehicle"].flatMap { Int64($0) }
        if vehicle == nil { form.formError = "Choisissez la voiture." }
        let span = interval(fields, errors: &form.errors)
        guard let rider, let vehicle, let span, !form.hasErrors else { return try await bookOnBehalf(context, form: form, notice: nil, status: .unprocessableContent) }
        do {
            let booking = try await carShare.createBooking(NewBooking(vehicle: vehicle, rider: rider, start: span.0, end: span.1, purpose: fields["purpose"],
                                                                      driver: fields["driver"].flatMap { Int64($0) }), by: identity, at: now())
            let who = try await carShare.riderContacts(bookings: [booking.id], by: identity)[booking.id]?.name ?? "l'adhérent"
            let notice = "La voiture est réservée pour \(who) le \(FrenchTime.sentence(booking.start, zone: zone)) (réservation n° \(booking.id))."
                + (booking.driver == nil ? " Il reste à trouver un chauffeur." : "")
            return try await bookOnBehalf(context, form: HTML.Form(), notice: notice)
        } catch let error as HubError where error.kind != .forbidden {
            FrenchErrors.place(error, in: &form, fields: ["rider", "date", "start", "end", "purpose", "driver"])
            return try await bookOnBehalf(context, form: form, notice: nil, status: .unprocessableContent)
        }
    }

    func newPayment(_ context: HubRequestContext, form: HTML.Form, notice: String?, status: HTTPResponse.Status = .ok) async throws -> Response {
        let (identity, viewer) = try authorize(.newPayment, context)
        var form = form
        if form.values["on"] == nil { form.values["on"] = today.description }
        let members = AccessPolicy.allows(identity, .read, .members) ? try await memberChoices(identity) : []
        return render(.newPayment, viewer, body: AssociationPages.newPayment(form: form, members: members, csrf: viewer.csrf), notice: notice, status: status)
    }

    func submitNewPayment(_ context: HubRequestContext) async throws -> Response {
        let (identity, _) = try authorize(.newPayment, context)
        let fields = submitted(context)
        var form = echo(fields)
        let member = fields["member"].flatMap { Int64($0) }
        if member == nil { form.errors["member"] = "Choisissez l'adhérent." }
        let amount = fields["amount"].flatMap(FrenchInput.cents)
        if amount == nil || amount!.value <= 0 { form.errors["amount"] = "Écrivez le montant en euros, par exemple 8 ou 2,00." }
        let method = fields["method"].flatMap(PaymentMethod.init(rawValue:))
        if method == nil { form.errors["method"] = "Dites comment il a été payé." }
        let receipt = fields["receipt"]
        if receipt == nil || receipt!.count > 40 { form.errors["receipt"] = "Écrivez le numéro du reçu donné à l'adhérent." }
        let on = fields["on"].flatMap(FrenchInput.date)
        if on == nil { form.errors["on"] = "Écrivez la date comme 03/12/2026." }
        guard let member, let amount, let method, let receipt, let on, form.errors.isEmpty else {
            return try await newPayment(context, form: form, notice: nil, status: .unprocessableContent)
        }
        do {
            // The receipt book's number is the payment's key: the same receipt typed twice is one payment.
            let key = "receipt-\(identity.estate ?? "hub")-\(receipt)"
            let result = try await carShare.recordPayment(NewPayment(idempotencyKey: key, member: member, amountCents: amount, method: method, on: on,
                                                                     note: "reçu n° \(receipt)"), by: identity, at: now())
            let notice = result.replayed ? "Le reçu n° \(receipt) était déjà enregistré : rien n'a été ajouté."
                : "Paiement de \(French.euros(amount)) \(method.frenchLabel) enregistré (reçu n° \(receipt))."
            return try await newPayment(context, form: HTML.Form(), notice: notice)
        } catch let error as HubError where error.kind != .forbidden {
            FrenchErrors.place(error, in: &form, fields: ["member", "amount", "method", "receipt", "on"])
            return try await newPayment(context, form: form, notice: nil, status: .unprocessableContent)
        }
    }

    func cashBook(_ request: Request, _ context: HubRequestContext) async throws -> Response {
        let (identity, viewer) = try authorize(.cashBook, context)
        let first = try month(request)
        let book = try await carShare.cashBook(from: first, to: first.firstOfNextMonth.advanced(by: -1), by: identity)
        return render(.cashBook, viewer, body: AssociationPages.cashBook(book, month: first))
    }

    // MARK: - drivers

    func missions(_ context: HubRequestContext) async throws -> Response {
        let (identity, viewer) = try authorize(.missions, context)
        // A week back: a trip done but not yet noted stays on the list until it is.
        var bookings = try await carShare.bookings(vehicle: nil, from: now().adding(seconds: -7 * 86_400), to: now().adding(seconds: 60 * 86_400), by: identity)
        if identity.role == .driver {
            let own = try await carShare.drivers(by: identity).filter { $0.user == identity.name }.map(\.id)
            bookings = bookings.filter { $0.driver.map(own.contains) ?? false }
        } else {
            bookings = bookings.filter { $0.driver != nil }
        }
        let lines = try await weekLines(bookings, identity: identity)
        return render(.missions, viewer, body: DriverPages.missions(lines, vehicles: try await carShare.vehicles(by: identity), zone: zone, now: now()))
    }

    func tripForm(_ identity: Identity, booking: Int64?) async throws -> (HTML.Form, AssociationPages.WeekLine?, [HTML.Choice]) {
        var form = HTML.Form(values: ["idempotency_key": Web.randomToken(), "fee": "cash", "date": today.description])
        guard let booking else { return (form, nil, []) }
        let view = try await carShare.booking(booking, by: identity)
        let line = try await weekLines([view], identity: identity).first
        let vehicle = try await carShare.vehicles(by: identity).first { $0.id == view.vehicle }
        form.values["date"] = zone.localDate(of: view.start).description
        form.values["start"] = FrenchTime.clock(view.start, zone: zone)
        form.values["end"] = FrenchTime.clock(view.end, zone: zone)
        if let vehicle { form.values["start_odometer_km"] = "\(vehicle.lastOdometerKm)" }
        form.lists["riders"] = ["\(view.rider)"]
        return (form, line, line.map { [HTML.Choice("\(view.rider)", $0.rider)] } ?? [])
    }

    func newTrip(_ request: Request, _ context: HubRequestContext) async throws -> Response {
        let (identity, viewer) = try authorize(.newTrip, context)
        let booking = try request.query("reservation").map { text -> Int64 in
            guard let id = Int64(text) else { throw HubError.badRequest(field: "reservation", "reservation must be a number") }
            return id
        }
        let (form, line, riders) = try await tripForm(identity, booking: booking)
        return render(.newTrip, viewer, body: DriverPages.newTrip(form: form, booking: line, riders: riders, csrf: viewer.csrf, zone: zone))
    }

    func submitNewTrip(_ context: HubRequestContext) async throws -> Response {
        let (identity, viewer) = try authorize(.newTrip, context)
        let fields = submitted(context)
        var form = echo(fields)
        form.values["idempotency_key"] = fields["idempotency_key"] ?? Web.randomToken()
        let bookingID = fields["booking"].flatMap(FrenchInput.integer)
        if bookingID == nil { form.errors["booking"] = "Écrivez le numéro de la réservation (il est sur la feuille)." }
        var line: AssociationPages.WeekLine?
        var riders: [HTML.Choice] = []
        if let bookingID, let view = try? await carShare.booking(bookingID, by: identity) {
            line = try await weekLines([view], identity: identity).first
            riders = line.map { [HTML.Choice("\(view.rider)", $0.rider)] } ?? []
        } else if bookingID != nil {
            form.errors["booking"] = "Aucune de vos réservations ne porte ce numéro."
        }
        let span = interval(fields, errors: &form.errors)
        var numbers: [String: Int64] = [:]
        for (name, message) in [("start_odometer_km", "Écrivez le compteur au départ, en km (un nombre entier)."), ("end_odometer_km", "Écrivez le compteur au retour, en km."),
                                ("battery_start_pct", "Écrivez la batterie au départ, de 0 à 100."), ("battery_end_pct", "Écrivez la batterie au retour, de 0 à 100.")] {
            if let value = fields[name].flatMap(FrenchInput.integer) { numbers[name] = value } else { form.errors[name] = message }
        }
        let fee = fields["fee"]
        if fee != "cash" && fee != "owed" { form.errors["fee"] = "Dites si les 2 € ont été payés." }
        func again() -> Response {
            render(.newTrip, viewer, body: DriverPages.newTrip(form: form, booking: line, riders: riders, csrf: viewer.csrf, zone: zone), status: .unprocessableContent)
        }
        guard let bookingID, let span, form.errors.isEmpty, let startKm = numbers["start_odometer_km"], let endKm = numbers["end_odometer_km"],
              let batteryStart = numbers["battery_start_pct"], let batteryEnd = numbers["battery_end_pct"], batteryStart <= 1000, batteryEnd <= 1000 else { return again() }
        let key = form["idempotency_key"]
        let chosen = fields.all("riders").compactMap { Int64($0) }
        do {
            let result = try await carShare.logTrip(NewTrip(idempotencyKey: key, booking: bookingID, riders: chosen.isEmpty ? nil : chosen, start: span.0, end: span.1,
                                                            startOdometerKm: startKm, endOdometerKm: endKm, batteryStartPct: Int(batteryStart), batteryEndPct: Int(batteryEnd),
                                                            incidents: fields["incidents"]), by: identity, at: now())
            var paid = ""
            if fee == "cash" {
                let recorded = try await payFeesInCash(result.trip, key: key, note: "payé au chauffeur", by: identity)
                if recorded.value > 0 { paid = " Les \(French.euros(recorded)) payés en espèces sont notés." }
            }
            let notice = result.replayed ? "Ce trajet était déjà enregistré (le formulaire a été envoyé deux fois) : il n'est compté qu'une fois."
                : "Trajet enregistré : \(French.grouped(result.trip.distanceKm)) km.\(paid)"
            return render(.missions, viewer, body: "<p class=\"lead\">\(HTML.escape(notice))</p><p><a href=\"\(SitePage.missions.path)\">Revenir à mes trajets</a></p>\n",
                          notice: result.replayed ? "Déjà enregistré." : "Trajet enregistré.", title: "Trajet enregistré")
        } catch let error as HubError where error.kind != .forbidden || error.field == "booking" {
            FrenchErrors.place(error, in: &form, fields: ["booking", "date", "start", "end", "start_odometer_km", "end_odometer_km", "battery_start_pct", "battery_end_pct", "riders", "incidents"])
            return again()
        }
    }

    /// The trip's fees paid in cash to the driver: one payment per rider, keyed by the trip form's
    /// key so a resent form pays once. Returns what was newly recorded.
    func payFeesInCash(_ trip: TripView, key: String, note: String, by identity: Identity) async throws -> Cents {
        var recorded = Cents.zero
        for rider in trip.riders where rider.feeCents.value > 0 {
            let payment = try await carShare.recordPayment(NewPayment(idempotencyKey: "\(key)-fee-\(rider.member)", member: rider.member, amountCents: rider.feeCents,
                                                                      method: .cash, note: "trajet \(trip.id), \(note)"), by: identity, at: now())
            if !payment.replayed { recorded = recorded + rider.feeCents }
        }
        return recorded
    }

    func newCharge(_ context: HubRequestContext, form: HTML.Form?, notice: String?, status: HTTPResponse.Status = .ok) async throws -> Response {
        let (identity, viewer) = try authorize(.newCharge, context)
        let form = form ?? HTML.Form(values: ["date": today.description, "time": FrenchTime.clock(now(), zone: zone)])
        let vehicles = try await carShare.vehicles(by: identity).filter(\.active).map { HTML.Choice("\($0.id)", $0.name) }
        return render(.newCharge, viewer, body: DriverPages.newCharge(form: form, vehicles: vehicles, csrf: viewer.csrf), notice: notice, status: status)
    }

    func submitNewCharge(_ context: HubRequestContext) async throws -> Response {
        let (identity, _) = try authorize(.newCharge, context)
        let fields = submitted(context)
        var form = echo(fields)
        let vehicle = fields["vehicle"].flatMap { Int64($0) }
        if vehicle == nil { form.formError = "Choisissez la voiture." }
        let day = fields["date"].flatMap(FrenchInput.date)
        if day == nil { form.errors["date"] = "Écrivez le jour comme 03/12/2026." }
        let time = fields["time"].flatMap(FrenchInput.time)
        if time == nil { form.errors["time"] = "Écrivez l'heure comme 14:00." }
        let energy = fields["energy_kwh"].flatMap { FrenchInput.wattHours(kWh: $0) }
        if energy == nil || energy! <= 0 { form.errors["energy_kwh"] = "Écrivez les kWh chargés, par exemple 22,5." }
        let cost = fields["cost"].flatMap(FrenchInput.cents)
        if cost == nil { form.errors["cost"] = "Écrivez le prix en euros, 0 si c'était gratuit." }
        let method = fields["method"] == "none" ? nil : fields["method"].flatMap(PaymentMethod.init(rawValue:))
        if fields["method"] == nil { form.errors["method"] = "Dites comment la recharge a été payée." }
        guard let vehicle, let day, let time, let energy, let cost, !form.hasErrors, let at = FrenchInput.instant(day, time, zone: zone) else {
            return try await newCharge(context, form: form, notice: nil, status: .unprocessableContent)
        }
        do {
            _ = try await carShare.logCharging(NewCharging(vehicle: vehicle, at: at, energyWh: WattHours(energy), costCents: cost, method: method, note: fields["note"]),
                                               by: identity, at: now())
            return try await newCharge(context, form: nil, notice: "Recharge de \(French.kilowattHours(energy)) enregistrée.")
        } catch let error as HubError where error.kind != .forbidden {
            FrenchErrors.place(error, in: &form, fields: ["date", "time", "energy_kwh", "cost", "method", "note"])
            return try await newCharge(context, form: form, notice: nil, status: .unprocessableContent)
        }
    }

    // MARK: - staff

    func paperWeek(_ request: Request, _ context: HubRequestContext, form: HTML.Form, notice: String?, status: HTTPResponse.Status = .ok) async throws -> Response {
        let (identity, viewer) = try authorize(.paperWeek, context)
        let monday = try monday(request)
        let bookings = try await carShare.bookings(vehicle: nil, from: zone.startOfDay(monday), to: zone.startOfDay(monday.advanced(by: 7)), by: identity)
        let lines = try await weekLines(bookings.filter { $0.status.isLive || $0.status == .completed }, identity: identity)
        let recorded = Set(bookings.filter { $0.status == .completed }.map(\.id))
        return render(.paperWeek, viewer, body: StaffPages.paperWeek(monday: monday, lines: lines, form: form, recorded: recorded, csrf: viewer.csrf, zone: zone),
                      notice: notice, status: status)
    }

    func submitPaperWeek(_ request: Request, _ context: HubRequestContext) async throws -> Response {
        let (identity, _) = try authorize(.paperWeek, context)
        let fields = submitted(context)
        var form = echo(fields)
        let monday = try monday(request)
        let bookings = try await carShare.bookings(vehicle: nil, from: zone.startOfDay(monday), to: zone.startOfDay(monday.advanced(by: 7)), by: identity)
            .filter { $0.status.isLive }
        var recorded = 0
        var failed = 0
        for booking in bookings {
            let names = StaffPages.paperColumns.map { StaffPages.field(booking.id, $0) }
            // A row left empty on the paper (the trip did not happen) is skipped.
            guard names.dropLast().contains(where: { fields[$0] != nil }) else { continue }
            var values: [Int64] = []
            for name in names.dropLast() {
                if let value = fields[name].flatMap(FrenchInput.integer) { values.append(value) } else { form.errors[name] = "Un nombre entier." }
            }
            let fee = fields[names[4]]
            if fee != "cash" && fee != "owed" { form.errors[names[4]] = "Payé ou dû ?" }
            guard values.count == 4, fee == "cash" || fee == "owed", values[2] <= 1000, values[3] <= 1000 else { failed += 1; continue }
            let key = "paper-\(booking.id)"
            do {
                let result = try await carShare.logTrip(NewTrip(idempotencyKey: key, booking: booking.id, start: booking.start, end: booking.end,
                                                                startOdometerKm: values[0], endOdometerKm: values[1], batteryStartPct: Int(values[2]),
                                                                batteryEndPct: Int(values[3])), by: identity, at: now())
                if fee == "cash" { _ = try await payFeesInCash(result.trip, key: key, note: "feuille papier", by: identity) }
                recorded += 1
            } catch let error as HubError {
                failed += 1
                let column = ["start_odometer_km": "start_km", "end_odometer_km": "end_km", "battery_start_pct": "battery_start", "battery_end_pct": "battery_end"][error.field ?? ""] ?? "start_km"
                form.errors[StaffPages.field(booking.id, column)] = FrenchErrors.message(error)
            }
        }
        let notice = recorded > 0 ? "\(French.count(recorded, "trajet enregistré", "trajets enregistrés"))." : nil
        if failed > 0 {
            // Rows already recorded are shown as such; what was typed in the others stays.
            return try await paperWeek(request, context, form: form, notice: notice, status: .unprocessableContent)
        }
        return try await paperWeek(request, context, form: HTML.Form(), notice: notice ?? "Aucune ligne remplie : rien n'a été enregistré.")
    }

    func registryPage(_ context: HubRequestContext, form: HTML.Form, result: String?, status: HTTPResponse.Status = .ok) throws -> Response {
        let (_, viewer) = try authorize(.registry, context)
        return render(.registry, viewer, body: StaffPages.registry(form: form, csrf: viewer.csrf, result: result), status: status)
    }

    func submitRegistry(_ context: HubRequestContext) async throws -> Response {
        let (identity, _) = try authorize(.registry, context)
        var form = HTML.Form()
        guard let file = submitted(context).files["file"], !file.data.isEmpty else {
            form.errors["file"] = "Choisissez le fichier CSV du registre."
            return try registryPage(context, form: form, result: nil, status: .unprocessableContent)
        }
        do {
            let summary = try await registry.importRegistry(csv: file.data, by: identity)
            return try registryPage(context, form: HTML.Form(), result: "Registre importé (\(file.filename)) : \(summary).")
        } catch let error as HubError where error.kind != .forbidden {
            // "line 4, column since: ..." becomes "Ligne 4, colonne since : ...".
            form.errors["file"] = Self.frenchRegistryError(error)
            return try registryPage(context, form: form, result: nil, status: .unprocessableContent)
        }
    }

    static func frenchRegistryError(_ error: HubError) -> String {
        var text = error.message
        if let range = text.range(of: #"^line (\d+), column ([^:]+): "#, options: .regularExpression) {
            let head = String(text[range])
            let parts = head.dropFirst(5).split(separator: ",")
            let line = parts.first.map(String.init) ?? "?"
            let column = parts.dropFirst().first.map { $0.replacingOccurrences(of: " column ", with: "").replacingOccurrences(of: ": ", with: "") } ?? "?"
            text = "Ligne \(line), colonne « \(column) » : " + text[range.upperBound...]
        } else if let range = text.range(of: #"^line (\d+): "#, options: .regularExpression) {
            text = "Ligne " + text[range].dropFirst(5).dropLast(2) + " : " + text[range.upperBound...]
        }
        return text + ". Rien n'a été changé : corrigez le fichier et importez-le de nouveau."
    }

    func devices(_ context: HubRequestContext) async throws -> Response {
        let (identity, viewer) = try authorize(.devices, context)
        let dwellings = try await registry.dwellings(estate: nil, by: identity)
        var buildings: [(estate: String, building: String)] = []
        var seen = Set<String>()
        for dwelling in dwellings where seen.insert(dwelling.building).inserted { buildings.append((dwelling.estate, dwelling.building)) }
        var lines: [StaffPages.DeviceLine] = []
        let from = zone.localDate(of: now().adding(seconds: -86_400))
        for building in buildings {
            for health in try await figures.deviceHealth(building: building.building, from: from, to: today, now: now(), by: identity) {
                lines.append(StaffPages.DeviceLine(estate: building.estate, building: building.building, health: health))
            }
        }
        return render(.devices, viewer, body: StaffPages.devices(lines, now: now(), zone: zone))
    }

    func quarantine(_ request: Request, _ context: HubRequestContext) async throws -> Response {
        let (identity, viewer) = try authorize(.quarantine, context)
        let after = try request.query("apres").map { text -> Int64 in
            guard let id = Int64(text) else { throw HubError.badRequest(field: "apres", "apres must be a number") }
            return id
        }
        let entries = try await readings.quarantine(since: now().adding(seconds: -30 * 86_400), afterID: after, limit: 100, by: identity)
        return render(.quarantine, viewer, body: StaffPages.quarantine(entries, zone: zone, nextAfter: entries.count == 100 ? entries.last?.id : nil))
    }

    func accounts(_ context: HubRequestContext) async throws -> Response {
        let (identity, viewer) = try authorize(.accounts, context)
        return render(.accounts, viewer, body: StaffPages.accounts(try await users.accounts(by: identity), csrf: viewer.csrf))
    }

    func newAccount(_ context: HubRequestContext, form: HTML.Form, status: HTTPResponse.Status = .ok) throws -> Response {
        let (_, viewer) = try authorize(.newAccount, context)
        return render(.newAccount, viewer, body: StaffPages.newAccount(form: form, csrf: viewer.csrf), status: status)
    }

    /// A first password easy to read aloud and type on a phone: three short words and a number,
    /// from an alphabet without look-alike letters.
    static func firstPassword() -> String {
        let words = ["soleil", "voiture", "jardin", "pain", "lumiere", "maison", "route", "toit", "panneau", "quartier", "ecole", "marche", "plage", "port",
                     "phare", "dune", "vent", "mouette", "bateau", "colline", "riviere", "pomme", "poire", "cerise", "tulipe", "rose", "chene", "sapin"]
        var generator = SystemRandomNumberGenerator()
        let picked = (0..<3).map { _ in words.randomElement(using: &generator)! }
        return picked.joined(separator: "-") + "-\(Int.random(in: 10...99, using: &generator))"
    }

    func address(_ request: Request) -> String {
        if !settings.http.publicAddress.isEmpty { return settings.http.publicAddress }
        let host = request.head.authority ?? "\(settings.http.host):\(settings.http.port)"
        return (Web.isSecure(request, settings: settings) ? "https://" : "http://") + host
    }

    func submitNewAccount(_ request: Request, _ context: HubRequestContext) async throws -> Response {
        let (identity, viewer) = try authorize(.newAccount, context)
        let fields = submitted(context)
        var form = echo(fields)
        let role = fields["role"].flatMap(Role.init(rawValue:))
        if fields["name"] == nil { form.errors["name"] = "Écrivez l'identifiant de la personne." }
        if role == nil { form.errors["role"] = "Choisissez le rôle." }
        if role == .resident && fields["dwelling"] == nil { form.errors["dwelling"] = "Un habitant est lié à son logement : écrivez son numéro." }
        if role == .association && fields["estate"] == nil { form.errors["estate"] = "Une association est liée à sa résidence : écrivez-la." }
        guard let name = fields["name"], let role, form.errors.isEmpty else { return try newAccount(context, form: form, status: .unprocessableContent) }
        let password = Self.firstPassword()
        do {
            try await users.add(name: name, role: role, dwelling: role == .resident ? fields["dwelling"] : nil, estate: role == .association ? fields["estate"] : nil,
                                password: password, mustChangePassword: true, by: identity, at: now())
        } catch let error as HubError where error.kind != .forbidden {
            FrenchErrors.place(error, in: &form, fields: ["name", "role", "dwelling", "estate"])
            return try newAccount(context, form: form, status: .unprocessableContent)
        }
        let created = Identity(name: name, role: role, dwelling: role == .resident ? fields["dwelling"] : nil, estate: role == .association ? fields["estate"] : nil)
        return render(.accountSheet, viewer, body: StaffPages.accessSheet(identity: created, password: password, address: address(request)),
                      title: "Fiche d'accès de \(name)")
    }

    func resetAccount(_ request: Request, _ context: HubRequestContext) async throws -> Response {
        let (identity, viewer) = try authorize(.accountSheet, context)
        guard let name = submitted(context)["name"] else { throw HubError.badRequest(field: "name", "name missing") }
        guard let account = try await users.accounts(by: identity).first(where: { $0.identity.name == name }) else { throw HubError.notFound(field: "name", "no such user") }
        let password = Self.firstPassword()
        try await users.setPassword(name: name, password: password, mustChange: true, by: identity, at: now())
        // The old password and every session stop at once: the sheet is the way back in.
        _ = try await users.revokeTokens(of: name, label: nil, by: identity, at: now())
        return render(.accountSheet, viewer, body: StaffPages.accessSheet(identity: account.identity, password: password, address: address(request)),
                      title: "Fiche d'accès de \(name)")
    }

    func statementsPage(_ request: Request, _ context: HubRequestContext) throws -> Response {
        let (_, viewer) = try authorize(.statements, context)
        var months: [String] = []
        var month = today.firstOfMonth
        for _ in 0..<12 {
            month = month.advanced(by: -1).firstOfMonth
            months.append(String(month.description.prefix(7)))
        }
        let selected = request.query("mois").flatMap { months.contains($0) ? $0 : nil } ?? months[0]
        return render(.statements, viewer, body: StaffPages.statements(months: months, selected: selected, base: "/releves/fichiers/statements"))
    }
}

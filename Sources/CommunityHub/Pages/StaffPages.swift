import CarShareCore
import EnergyCore
import Foundation
import HubCore

/// The landlord's staff: typing in a paper driver sheet, the registry import, the devices and
/// their health, the refused messages, the accounts, the monthly statements. Staff pages may use
/// the technical words (`../shared/style/pages.md`).
public enum StaffPages {
    /// Field names of one booking's row on the paper week form.
    public static func field(_ booking: Int64, _ name: String) -> String { "b\(booking)_\(name)" }
    public static let paperColumns = ["start_km", "end_km", "battery_start", "battery_end", "fee"]

    /// A whole week of the driver sheet on one page: a row per booking, typed from the paper.
    /// Rows left empty are skipped; each typed row becomes a trip (recorded once, even if the form
    /// is sent twice).
    public static func paperWeek(monday: LocalDate, lines: [AssociationPages.WeekLine], form: HTML.Form, recorded: Set<Int64>, csrf: String, zone: LocalTimeZone) -> String {
        var html = "<p class=\"lead\">Semaine du \(French.longDate(monday)) au \(French.longDate(monday.advanced(by: 6))).</p>\n"
        html += "<p class=\"no-print\"><a href=\"\(SitePage.paperWeek.path)?du=\(monday.advanced(by: -7))\">Semaine précédente</a> · "
        html += "<a href=\"\(SitePage.paperWeek.path)?du=\(monday.advanced(by: 7))\">Semaine suivante</a></p>\n"
        html += "<p>Recopiez chaque ligne remplie de la feuille. Laissez vides les trajets qui n'ont pas eu lieu. Les trajets déjà enregistrés sont indiqués.</p>\n"
        var labels: [String: String] = [:]
        let open = lines.filter { $0.booking.status.isLive || recorded.contains($0.booking.id) }.sorted { $0.booking.start < $1.booking.start }
        guard !open.isEmpty else { return html + "<p>Aucune réservation cette semaine.</p>\n" }
        var rows: [[String]] = []
        for line in open {
            let id = line.booking.id
            let when = "\(French.shortDate(zone.localDate(of: line.booking.start))) \(FrenchTime.clock(line.booking.start, zone: zone))"
            let head = "n° \(id)<br>\(when)<br>\(HTML.escape(line.rider))\(line.driver.map { "<br>chauffeur : " + HTML.escape($0) } ?? "")"
            if recorded.contains(id) {
                rows.append([head, "<strong>trajet enregistré</strong>", "", "", "", ""])
                continue
            }
            var cells = [head]
            for (column, text) in zip(paperColumns, ["Km départ", "Km retour", "Batterie départ %", "Batterie retour %"]) {
                let name = field(id, column)
                labels[name] = "\(text), réservation \(id)"
                let error = form.errors[name]
                // Named by aria-label: the column's header says it on screen.
                var cell = ""
                if let error { cell += "<p class=\"field-error\" id=\"\(name)-error\">\(HTML.escape(error))</p>" }
                cell += "<input type=\"text\" inputmode=\"numeric\" class=\"width-short\" id=\"\(name)\" name=\"\(name)\" aria-label=\"\(text), réservation \(id)\" value=\"\(HTML.escape(form[name]))\""
                cell += error != nil ? " aria-invalid=\"true\" aria-describedby=\"\(name)-error\">" : ">"
                cells.append(cell)
            }
            let fee = field(id, "fee")
            labels[fee] = "Les 2 €, réservation \(id)"
            var choice = "<fieldset><legend class=\"visually-hidden\">Les 2 €, réservation \(id)</legend>"
            for (value, text) in [("cash", "payé"), ("owed", "dû")] {
                choice += "<div class=\"choice\"><input type=\"radio\" id=\"\(fee)-\(value)\" name=\"\(fee)\" value=\"\(value)\"\(form[fee] == value ? " checked" : "")>"
                choice += "<label for=\"\(fee)-\(value)\">\(text)</label></div>"
            }
            cells.append(choice + "</fieldset>")
            rows.append(cells)
        }
        let table = HTML.table(caption: "Trajets de la semaine", headers: ["Réservation", "Km départ", "Km retour", "Batterie départ %", "Batterie retour %", "2 €"], rows: rows)
        return html + HTML.errorSummary(form, labels: labels) + HTML.form(action: "\(SitePage.paperWeek.path)?du=\(monday)", csrf: csrf, button: "Enregistrer les trajets de la feuille", table)
    }

    public static func registry(form: HTML.Form, csrf: String, result: String?) -> String {
        var html = "<p>Le fichier CSV du registre : séparé par des points-virgules, en UTF-8, avec la ligne d'en-tête "
        html += "<code>estate;building;dwelling;device;kind;format;since</code> (et, si besoin, <code>tariff;share;until</code>). "
        html += "Tout ou rien : à la première erreur, rien n'est changé et l'erreur indique la ligne et la colonne.</p>\n"
        if let result { html += "<div class=\"notice\" role=\"status\"><p>\(HTML.escape(result))</p></div>\n" }
        let fields = HTML.input("file", label: "Fichier du registre (CSV)", form: form, type: "file")
        return html + HTML.errorSummary(form, labels: ["file": "Fichier du registre"]) + HTML.form(action: SitePage.registry.path, csrf: csrf, button: "Importer le registre", multipart: true, fields)
    }

    /// Devices with their health over the last day: silent for over an hour, refused messages by reason.
    public struct DeviceLine: Sendable {
        public var estate: String
        public var building: String
        public var health: DeviceHealth
        public init(estate: String, building: String, health: DeviceHealth) {
            self.estate = estate
            self.building = building
            self.health = health
        }
    }

    public static func devices(_ lines: [DeviceLine], now: Instant, zone: LocalTimeZone) -> String {
        let silent = lines.filter { $0.health.isSilent }
        var html = "<p class=\"lead\">\(French.count(lines.count, "boîtier")) ; \(French.count(silent.count, "silencieux", "silencieux")) depuis plus d'une heure dans les dernières 24 heures ; "
        html += "\(French.count(lines.reduce(0) { $0 + $1.health.refusedCount }, "message refusé", "messages refusés")).</p>\n"
        func rows(_ lines: [DeviceLine]) -> [[String]] {
            lines.map { line in
                let health = line.health
                var state = "transmet : dernier relevé il y a moins d'une heure"
                if let last = health.silences.last {
                    // A silence still open at the time of the report began at the last reading.
                    state = last.to >= now.adding(seconds: -120) ? "<strong>silencieux : dernier relevé le \(FrenchTime.short(last.from, zone: zone))</strong>"
                        : "silencieux du \(FrenchTime.short(last.from, zone: zone)) au \(FrenchTime.short(last.to, zone: zone))"
                }
                let refused = health.refused.map { "\($0.reason.rawValue) : \($0.count)" }.joined(separator: "<br>")
                return [HTML.escape(line.estate), HTML.escape(line.building), HTML.escape(health.device), health.kind == .pv ? "production (PV)" : "compteur logement",
                        state, refused.isEmpty ? "aucun" : refused]
            }
        }
        let headers = ["Résidence", "Immeuble", "Boîtier", "Type", "État", "Messages refusés"]
        // What needs someone's attention comes first; the whole list after it.
        let problems = lines.filter { $0.health.isSilent || $0.health.refusedCount > 0 }
        if problems.isEmpty {
            html += "<p>Aucun boîtier à regarder : tous ont transmis sans message refusé.</p>\n"
        } else {
            html += HTML.table(caption: "À regarder (\(problems.count))", headers: headers, rows: rows(problems))
        }
        html += HTML.table(caption: "Tous les boîtiers, dernières 24 heures", headers: headers, rows: rows(lines))
        return html + "<p><a href=\"\(SitePage.quarantine.path)\">Voir les messages refusés</a></p>\n" + HTML.printButton
    }

    public static func quarantine(_ entries: [QuarantineEntry], zone: LocalTimeZone, nextAfter: Int64?) -> String {
        var html = "<p class=\"lead\">Les messages des boîtiers que le service a refusés, avec la raison, les plus récents en premier.</p>\n"
        guard !entries.isEmpty else { return html + "<p>Aucun message refusé.</p>\n" }
        var counts: [QuarantineReason: Int] = [:]
        for entry in entries { counts[entry.reason, default: 0] += 1 }
        html += "<p>Par raison : " + counts.sorted { $0.value > $1.value }.map { "\($0.key.rawValue) \($0.value)" }.joined(separator: ", ") + ".</p>\n"
        html += HTML.table(caption: "Messages refusés", headers: ["Reçu le", "Sujet (topic)", "Boîtier", "Raison", "Détail", "Début du message"], rows: entries.map { entry in
            let text = String(decoding: entry.payload.prefix(80), as: UTF8.self).map { $0.isASCII && !$0.isWhitespace || $0 == " " ? String($0) : "·" }.joined()
            let size = entry.payloadIsTruncated ? "<br>(message de \(French.grouped(Int64(entry.payloadSize))) octets, seul le début est gardé)" : ""
            return [FrenchTime.short(entry.receivedAt, zone: zone), HTML.escape(entry.topic), HTML.escape(entry.device ?? "—"), HTML.escape(entry.reason.rawValue),
                    HTML.escape(entry.detail), "<code>\(HTML.escape(text))</code>\(size)"]
        })
        if let nextAfter { html += "<p><a href=\"\(SitePage.quarantine.path)?apres=\(nextAfter)\">Messages plus anciens</a></p>\n" }
        return html
    }

    public static func accounts(_ accounts: [UserAccount], csrf: String) -> String {
        var html = "<p class=\"no-print\"><a class=\"button\" href=\"\(SitePage.newAccount.path)\">Créer un compte</a></p>\n"
        html += HTML.table(caption: "Les comptes", headers: ["Nom", "Rôle", "Logement ou résidence", "Créé le", "Mot de passe", "Fiche"], rows: accounts.map { account in
            let identity = account.identity
            let sheet = "<form method=\"post\" action=\"\(SitePage.accountSheet.path)\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"\(HTML.escape(csrf))\">"
                + "<input type=\"hidden\" name=\"name\" value=\"\(HTML.escape(identity.name))\">"
                + "<button type=\"submit\" class=\"button button-secondary\">Nouveau mot de passe et fiche<span class=\"visually-hidden\"> pour \(HTML.escape(identity.name))</span></button></form>"
            return [HTML.escape(identity.name), Layout.roleName(identity.role), HTML.escape(identity.dwelling ?? identity.estate ?? "—"),
                    French.shortDate(LocalTimeZone.paris.localDate(of: account.createdAt)), account.mustChangePassword ? "à changer à la première connexion" : "choisi par la personne", sheet]
        })
        return html
    }

    public static func newAccount(form: HTML.Form, csrf: String) -> String {
        let labels = ["name": "Identifiant", "role": "Rôle", "dwelling": "Logement", "estate": "Résidence"]
        var fields = HTML.input("name", label: labels["name"]!, form: form, hint: "Ce que la personne tapera pour se connecter, par exemple mme.martin", autocomplete: "off")
        fields += HTML.radios("role", legend: labels["role"]!, form: form, choices: [
            HTML.Choice("resident", "Habitant (voit les économies de son logement et ses réservations)"),
            HTML.Choice("association", "Association (voit sa résidence, la voiture, les adhérents, la caisse)"),
            HTML.Choice("driver", "Chauffeur bénévole (ses trajets)"),
            HTML.Choice("staff", "Personnel du bailleur (tout)"),
        ])
        fields += HTML.input("dwelling", label: labels["dwelling"]!, form: form, hint: "Pour un habitant : le numéro du logement", optional: true)
        fields += HTML.input("estate", label: labels["estate"]!, form: form, hint: "Pour une association : la résidence", optional: true)
        return "<p>Un mot de passe provisoire est choisi par le service et imprimé sur la fiche ; la personne le change à sa première connexion.</p>\n"
            + HTML.errorSummary(form, labels: labels) + HTML.form(action: SitePage.newAccount.path, csrf: csrf, button: "Créer le compte et imprimer la fiche", fields)
    }

    /// The one-page sheet handed to a resident or a volunteer: their login, a first password, and
    /// three lines on how to use the site.
    public static func accessSheet(identity: Identity, password: String, address: String) -> String {
        var html = "<div class=\"notice no-print\" role=\"status\"><p>Imprimez cette fiche maintenant : le mot de passe n'est montré qu'une fois.</p></div>\n"
        html += "<p class=\"lead\">Bonjour,</p>\n<p>Voici de quoi vous connecter au service de l'énergie solaire et de la voiture de l'association.</p>\n"
        html += "<dl class=\"facts\"><dt>Adresse</dt><dd>\(HTML.escape(address))</dd><dt>Identifiant</dt><dd>\(HTML.escape(identity.name))</dd>"
        html += "<dt>Mot de passe provisoire</dt><dd><code>\(HTML.escape(password))</code></dd></dl>\n"
        html += "<ol><li>Tapez l'adresse dans votre téléphone ou votre ordinateur, puis votre identifiant et ce mot de passe.</li>"
        html += "<li>Le service vous demande alors de choisir votre propre mot de passe : notez-le et gardez-le pour vous.</li>"
        html += "<li>" + (SitePage.menu(for: identity.role).first.map { "Vous arrivez sur « \($0.title) ». " } ?? "")
        html += "En cas de souci, appelez l'association ou votre gardien : tout peut aussi se faire sur papier.</li></ol>\n"
        return html + HTML.printButton
    }

    public static func statements(months: [String], selected: String, base: String) -> String {
        var html = "<p>Les relevés du mois, pour l'envoi aux habitants et pour la comptabilité. Télécharger ne fige pas le mois ; "
        html += "l'envoi officiel se fait avec la commande <code>community-hub statements export</code>, qui garde chaque relevé tel qu'envoyé.</p>\n"
        html += "<form method=\"get\" action=\"\(SitePage.statements.path)\"><div class=\"field\"><label for=\"mois\">Mois</label><select id=\"mois\" name=\"mois\">"
        for month in months { html += "<option value=\"\(month)\"\(month == selected ? " selected" : "")>\(French.month(month))</option>" }
        html += "</select></div><button type=\"submit\" class=\"button button-secondary\">Choisir ce mois</button></form>\n"
        html += "<h2>\(French.month(selected).capitalizedFirst)</h2>\n<ul>"
        html += "<li><a href=\"\(base)/\(selected)/households.zip\">Les relevés des logements, un PDF par logement (ZIP)</a></li>"
        html += "<li><a href=\"\(base)/\(selected)/summary.csv\">Le récapitulatif pour la comptabilité (CSV, s'ouvre dans un tableur)</a></li>"
        html += "<li><a href=\"\(base)/\(selected)/households.json\">Les données des relevés (JSON)</a></li></ul>\n"
        return html
    }
}

import CarShareCore
import EnergyCore
import Foundation
import HubCore

/// What a resident association sees and does: its estate's savings and production, the car's
/// week, members, bookings taken by phone, payments with their receipt, the cash book, and the
/// week's driver sheet for a volunteer without a phone.
public enum AssociationPages {
    /// "12 %".
    public static func percent(_ rate: Decimal?) -> String {
        guard let rate else { return "—" }
        let value = NSDecimalNumber(decimal: rate * 100).doubleValue
        return "\(Int(value.rounded()))\(French.thin)%"
    }

    /// The estate's month: savings and production per building, and the distribution of the
    /// households' savings (never one neighbour's figure), with each building's production by day.
    /// What the store withholds from an association (a building, or the estate's totals, below the
    /// minimum group: `HouseholdPrivacy`) is said in words, never shown as 0.
    public static func estate(_ report: EstateEnergyReport, buildings: [BuildingEnergyReport], month: LocalDate, today: LocalDate,
                              estates: [String], forStaff: Bool) -> String {
        let monthName = French.month(String(month.description.prefix(7)))
        let isCurrent = month.firstOfMonth == today.firstOfMonth
        let withheld = French.withheldForNeighbours(minimum: report.minimumHouseholds)
        var html = ""
        if forStaff && estates.count > 1 {
            html += "<form method=\"get\" action=\"\(SitePage.estate.path)\" class=\"no-print\"><div class=\"field\"><label for=\"residence\">Résidence</label><select id=\"residence\" name=\"residence\">"
            for estate in estates { html += "<option value=\"\(HTML.escape(estate))\"\(estate == report.estate ? " selected" : "")>\(HTML.escape(estate))</option>" }
            html += "</select></div><button type=\"submit\" class=\"button button-secondary\">Afficher</button></form>\n"
        }
        html += "<p class=\"lead\">Résidence <strong>\(HTML.escape(report.estate))</strong>, \(monthName)\(isCurrent ? " (jusqu'à aujourd'hui)" : "") : "
        html += "les panneaux solaires ont produit <strong>\(French.kilowattHours(report.totals.productionWh))</strong>"
        if report.totals.withheld {
            html += ".</p>\n<p>Pour l'ensemble de la résidence, ce que les logements ont utilisé n'est pas publié : \(withheld.prefix(1).lowercased() + withheld.dropFirst()).</p>\n"
        } else {
            html += ", dont <strong>\(French.kilowattHours(report.totals.allocatedWh))</strong> utilisés par les logements (\(percent(report.totals.selfConsumptionRate))).</p>\n"
        }
        let households = report.households
        if let median = households.medianCents {
            let rounded = forStaff ? French.euros(Cents(median)) : "environ \(French.wholeEuros(Cents(median)))"
            html += "<p>Pour les \(households.count) foyers, l'économie du mois est de <strong>\(rounded)</strong> pour un foyer du milieu "
            html += "(la moitié des foyers a économisé plus, l'autre moitié moins).</p>\n"
        } else if households.count < report.minimumHouseholds {
            html += "<p>\(French.count(households.count, "foyer")) : moins de \(report.minimumHouseholds) foyers, l'économie typique n'est pas publiée pour protéger les voisins.</p>\n"
        } else {
            html += "<p>\(French.count(households.count, "foyer")) ; \(withheld.prefix(1).lowercased() + withheld.dropFirst()) (l'économie typique n'est pas publiée).</p>\n"
        }
        if !report.totals.withheld {
            html += "<p>L'électricité solaire vendue au réseau a rapporté \(French.euros(Cents(report.totals.surplusRevenueCents))).</p>\n"
        }
        let notShown = "non publié"
        html += HTML.table(caption: "Par immeuble, \(monthName)", headers: ["Immeuble", "Produit", "Utilisé par les logements", "Vendu au réseau", "Part utilisée"],
                           rows: report.buildings.map { building in
                               building.withheld
                                   ? [HTML.escape(building.building ?? "—"), French.kilowattHours(building.productionWh), notShown, notShown, notShown]
                                   : [HTML.escape(building.building ?? "—"), French.kilowattHours(building.productionWh), French.kilowattHours(building.allocatedWh),
                                      French.kilowattHours(building.surplusWh), percent(building.selfConsumptionRate)]
                           }, numeric: [1, 2, 3, 4])
        if report.buildings.contains(where: \.withheld) {
            html += "<p class=\"small\">« \(notShown) » : \(withheld.prefix(1).lowercased() + withheld.dropFirst()) dans l'immeuble. La production des panneaux est toujours montrée.</p>\n"
        }
        for (index, building) in buildings.enumerated() where building.productionWh > 0 {
            html += "<h2>Immeuble \(HTML.escape(building.building)) : la production jour par jour</h2>\n"
            // An association's month is reported whole: the days not yet come are left out of the chart.
            html += Chart.days(building.days.filter { $0.date <= today }.map { Chart.Bar(date: $0.date, value: $0.productionWh) }, today: isCurrent ? today : nil,
                               title: "Production solaire de l'immeuble \(building.building) en \(monthName)", id: "building-\(index)") { French.kilowattHours($0) }
        }
        let previous = month.firstOfMonth.advanced(by: -1).firstOfMonth
        let subject = forStaff ? "&residence=\(HTML.escape(report.estate))" : ""
        html += "<p class=\"no-print\"><a href=\"\(SitePage.estate.path)?mois=\(String(previous.description.prefix(7)))\(subject)\">Voir \(French.month(String(previous.description.prefix(7))))</a></p>\n"
        return html + HTML.printButton
    }

    /// A week's bookings, day by day, with who rides and who drives.
    public struct WeekLine: Sendable {
        public var booking: BookingView
        public var rider: String
        public var phone: String
        public var driver: String?

        public init(booking: BookingView, rider: String, phone: String, driver: String?) {
            self.booking = booking
            self.rider = rider
            self.phone = phone
            self.driver = driver
        }
    }

    public static func week(monday: LocalDate, lines: [WeekLine], vehicles: [VehicleView], zone: LocalTimeZone, today: LocalDate, mayBook: Bool) -> String {
        var html = "<p class=\"lead\">Semaine du \(French.longDate(monday)) au \(French.longDate(monday.advanced(by: 6))).</p>\n"
        html += "<p class=\"no-print\"><a href=\"\(SitePage.week.path)?du=\(monday.advanced(by: -7))\">Semaine précédente</a> · "
        html += "<a href=\"\(SitePage.week.path)?du=\(monday.advanced(by: 7))\">Semaine suivante</a>"
        if mayBook { html += " · <a href=\"\(SitePage.bookOnBehalf.path)\">Réserver pour un habitant</a>" }
        html += " · <a href=\"\(SitePage.driverSheet.path)?du=\(monday)\">Feuille du chauffeur de la semaine</a></p>\n"
        for offset in 0..<7 {
            let day = monday.advanced(by: offset)
            let ofDay = lines.filter { zone.localDate(of: $0.booking.start) == day }.sorted { $0.booking.start < $1.booking.start }
            html += "<h2 class=\"week-day\">\(French.longDate(day).capitalizedFirst)\(day == today ? " (aujourd'hui)" : "")</h2>\n"
            if ofDay.isEmpty {
                html += "<p>La voiture est libre toute la journée.</p>\n"
            } else {
                html += "<ul>"
                for line in ofDay {
                    let car = vehicles.first { $0.id == line.booking.vehicle }?.name ?? "la voiture"
                    html += "<li><strong>\(FrenchTime.clock(line.booking.start, zone: zone)) – \(FrenchTime.clock(line.booking.end, zone: zone))</strong> : "
                    html += "\(HTML.escape(line.rider))\(line.booking.purpose.isEmpty ? "" : " (" + HTML.escape(line.booking.purpose) + ")"), \(HTML.escape(car)) ; "
                    html += line.driver.map { "chauffeur : \(HTML.escape($0))" } ?? "<strong>pas encore de chauffeur</strong>"
                    html += " — \(HTML.escape(ResidentPages.statusLabel(line.booking.status)))</li>"
                }
                html += "</ul>\n"
            }
        }
        return html + HTML.printButton
    }

    /// The week's paper sheet for the volunteer driver: the bookings, who rides and their phone,
    /// and blank columns for the odometer, the battery and the fee, filled in by hand and typed in
    /// later by staff (`SitePage.paperWeek`).
    public static func driverSheet(monday: LocalDate, lines: [WeekLine], vehicle: VehicleView?, zone: LocalTimeZone) -> String {
        var html = "<p class=\"lead\">Semaine du \(French.longDate(monday)) au \(French.longDate(monday.advanced(by: 6)))"
        if let vehicle { html += ", \(HTML.escape(vehicle.name)) (\(HTML.escape(vehicle.plate))), dernier compteur connu : \(French.grouped(vehicle.lastOdometerKm)) km" }
        html += ".</p>\n<p class=\"no-print\"><a href=\"\(SitePage.driverSheet.path)?du=\(monday.advanced(by: -7))\">Semaine précédente</a> · "
        html += "<a href=\"\(SitePage.driverSheet.path)?du=\(monday.advanced(by: 7))\">Semaine suivante</a></p>\n"
        html += "<p>À chaque trajet : notez le compteur (km) et la batterie (%) au départ et au retour, et si les 2 € ont été payés en espèces. Rendez la feuille à l'association.</p>\n"
        let rows = lines.sorted { $0.booking.start < $1.booking.start }.map { line -> [String] in
            let date = zone.localDate(of: line.booking.start)
            return ["\(French.shortDate(date))<br>\(FrenchTime.clock(line.booking.start, zone: zone))–\(FrenchTime.clock(line.booking.end, zone: zone))",
                    "n° \(line.booking.id)", "\(HTML.escape(line.rider))<br>\(HTML.escape(line.phone))", HTML.escape(line.driver ?? ""), "", "", "", "", "☐ payé ☐ dû"]
        }
        let blank = Array(repeating: ["", "", "", "", "", "", "", "", "☐ payé ☐ dû"], count: 3)
        html += "<div class=\"sheet-table\">" + HTML.table(caption: "Trajets de la semaine", headers: ["Jour et heure", "Réservation", "Adhérent et téléphone", "Chauffeur",
                                                                                                  "Km départ", "Km retour", "Batterie départ %", "Batterie retour %", "2 €"],
                                                            rows: rows + blank) + "</div>\n"
        html += "<p>Recharges de la semaine (date, kWh, prix payé, par qui) :</p>\n<div class=\"write-line\"></div><div class=\"write-line\"></div><div class=\"write-line\"></div>\n"
        return html + HTML.printButton
    }

    /// The member register: each member, their membership and what they owe.
    public static func members(_ members: [MemberView], balances: [Int64: MemberBalance], today: LocalDate, mayAdd: Bool, csrf: String) -> String {
        var html = ""
        if mayAdd { html += "<p class=\"no-print\"><a class=\"button\" href=\"\(SitePage.newMember.path)\">Inscrire un nouvel adhérent</a></p>\n" }
        html += "<p>\(French.count(members.count, "adhérent")).</p>\n"
        html += HTML.table(caption: "Les adhérents", headers: ["Nom", "Téléphone", "Logement", "Adhésion", "Reste à payer"], rows: members.map { member in
            // A period's end is the first day it no longer covers.
            let current = member.memberships.first { $0.periodStart <= today && today < $0.periodEnd }
            var membership = current.map { "jusqu'au \(French.shortDate($0.periodEnd.advanced(by: -1)))" } ?? "<strong>pas d'adhésion en cours</strong>"
            if current == nil && mayAdd {
                // Renewing at the desk: one button, the 8 € then owed until the payment is recorded.
                membership += "<form method=\"post\" action=\"\(SitePage.renewMembership.path)\" class=\"no-print\"><input type=\"hidden\" name=\"csrf\" value=\"\(HTML.escape(csrf))\">"
                    + "<input type=\"hidden\" name=\"member\" value=\"\(member.id)\"><button type=\"submit\" class=\"button button-secondary\">"
                    + "Enregistrer l'adhésion<span class=\"visually-hidden\"> de \(HTML.escape(member.name))</span></button></form>"
            }
            let owed = balances[member.id].map { $0.owedCents.value > 0 ? French.euros($0.owedCents) : "rien" } ?? "rien"
            return [HTML.escape(member.name), HTML.escape(member.phone), HTML.escape(member.dwelling ?? "—"), membership, owed]
        }, numeric: [4])
        return html + HTML.printButton
    }

    public static func newMember(form: HTML.Form, csrf: String) -> String {
        let labels = ["name": "Nom et prénom", "phone": "Téléphone", "dwelling": "Logement", "membership": "Adhésion"]
        var fields = HTML.input("name", label: labels["name"]!, form: form, autocomplete: "off")
        fields += HTML.input("phone", label: labels["phone"]!, form: form, type: "text", hint: "Par exemple 06 12 34 56 78", optional: true, inputmode: "tel")
        fields += HTML.input("dwelling", label: labels["dwelling"]!, form: form, hint: "Le numéro du logement, s'il habite la résidence", optional: true)
        fields += HTML.checkbox("membership", label: "Enregistrer l'adhésion de l'année (8 €), à partir d'aujourd'hui", form: form)
        return HTML.errorSummary(form, labels: labels) + HTML.form(action: SitePage.newMember.path, csrf: csrf, button: "Inscrire l'adhérent", fields)
    }

    /// Taking a booking for a resident who phoned.
    public static func bookOnBehalf(form: HTML.Form, members: [HTML.Choice], drivers: [HTML.Choice], vehicles: [HTML.Choice], csrf: String) -> String {
        let labels = ["rider": "Pour qui", "vehicle": "Voiture", "date": "Jour", "start": "Heure de départ", "end": "Heure de retour",
                      "purpose": "Pour quoi faire", "driver": "Chauffeur"]
        var fields = HTML.select("rider", label: labels["rider"]!, form: form, choices: members, placeholder: "Choisissez l'adhérent")
        if vehicles.count > 1 { fields += HTML.select("vehicle", label: labels["vehicle"]!, form: form, choices: vehicles) } else if let only = vehicles.first {
            fields += "<input type=\"hidden\" name=\"vehicle\" value=\"\(HTML.escape(only.value))\">"
        }
        fields += HTML.input("date", label: labels["date"]!, form: form, type: "date", hint: "Par exemple 03/12/2026")
        fields += HTML.input("start", label: labels["start"]!, form: form, type: "time", hint: "Par exemple 14:00", width: "short")
        fields += HTML.input("end", label: labels["end"]!, form: form, type: "time", hint: "Par exemple 16:30", width: "short")
        fields += HTML.input("purpose", label: labels["purpose"]!, form: form, optional: true)
        fields += HTML.select("driver", label: labels["driver"]!, form: form, choices: drivers, hint: "Si vous savez déjà qui conduira", placeholder: "Pas encore choisi")
        return HTML.errorSummary(form, labels: labels) + HTML.form(action: SitePage.bookOnBehalf.path, csrf: csrf, button: "Réserver la voiture", fields)
    }

    /// Money received from a member, with the number of the receipt given to them.
    public static func newPayment(form: HTML.Form, members: [HTML.Choice], csrf: String) -> String {
        let labels = ["member": "Adhérent", "amount": "Montant", "method": "Payé", "receipt": "Numéro du reçu", "on": "Date du paiement"]
        var fields = HTML.select("member", label: labels["member"]!, form: form, choices: members, placeholder: "Choisissez l'adhérent")
        fields += HTML.input("amount", label: labels["amount"]! + " (en euros)", form: form, hint: "Par exemple 8 ou 2,00", inputmode: "decimal", width: "short")
        fields += HTML.radios("method", legend: labels["method"]!, form: form, choices: [
            HTML.Choice("cash", "en espèces"), HTML.Choice("cheque", "par chèque"), HTML.Choice("transfer", "par virement"),
        ])
        fields += HTML.input("receipt", label: labels["receipt"]!, form: form, hint: "Le numéro écrit sur le carnet de reçus", width: "short")
        fields += HTML.input("on", label: labels["on"]!, form: form, type: "date")
        return HTML.errorSummary(form, labels: labels) + HTML.form(action: SitePage.newPayment.path, csrf: csrf, button: "Enregistrer le paiement", fields)
    }

    /// The cash box's month: what came in and went out, and what should be in the box.
    public static func cashBook(_ book: CashBook, month: LocalDate) -> String {
        let monthName = French.month(String(month.description.prefix(7)))
        var html = "<p class=\"lead\">En caisse au début de \(monthName) : \(French.euros(book.openingCents)). "
        html += "À la fin : <strong>\(French.euros(book.closingCents))</strong>.</p>\n"
        let previous = month.firstOfMonth.advanced(by: -1).firstOfMonth
        html += "<p class=\"no-print\"><a href=\"\(SitePage.cashBook.path)?mois=\(String(previous.description.prefix(7)))\">Voir \(French.month(String(previous.description.prefix(7))))</a></p>\n"
        if book.lines.isEmpty {
            html += "<p>Aucun mouvement de caisse ce mois-ci.</p>\n"
        } else {
            html += HTML.table(caption: "Livre de caisse, \(monthName)", headers: ["Date", "Opération", "Entrée", "Sortie", "En caisse"], rows: book.lines.map { line in
                [French.shortDate(line.date), HTML.escape(line.label), line.inCents.value == 0 ? "" : French.euros(line.inCents),
                 line.outCents.value == 0 ? "" : French.euros(line.outCents), French.euros(line.balanceCents)]
            }, numeric: [2, 3, 4])
        }
        return html + HTML.printButton
    }
}

extension String {
    /// "Mardi 3 décembre" from "mardi 3 décembre".
    var capitalizedFirst: String { prefix(1).uppercased() + dropFirst() }
}

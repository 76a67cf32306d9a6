import CarShareCore
import EnergyCore
import Foundation
import HubCore

/// Times the French way on pages: "mardi 3 décembre 2026 à 14 h 00" in sentences, "14:00" in tables.
public enum FrenchTime {
    public static func sentence(_ instant: Instant, zone: LocalTimeZone) -> String {
        let local = zone.localDateTime(of: instant)
        return French.longDate(local.date) + " à " + hoursInWords(local)
    }

    public static func hoursInWords(_ local: LocalDateTime) -> String { "\(local.hour) h \(local.minute < 10 ? "0" : "")\(local.minute)" }

    public static func clock(_ instant: Instant, zone: LocalTimeZone) -> String {
        let local = zone.localDateTime(of: instant)
        return (local.hour < 10 ? "0" : "") + "\(local.hour):" + (local.minute < 10 ? "0" : "") + "\(local.minute)"
    }

    /// "03/12/2026 14:00".
    public static func short(_ instant: Instant, zone: LocalTimeZone) -> String {
        French.shortDate(zone.localDate(of: instant)) + " " + clock(instant, zone: zone)
    }
}

/// What a resident sees: their savings, their bookings and balance, and the form to ask for a trip.
public enum ResidentPages {
    /// "Mes économies": the month's saving in a sentence, why the bill shows it later, the chart,
    /// the year so far and the estimate for the year against the ~150 € promised.
    public static func savings(_ report: DwellingEnergyReport, month: LocalDate, today: LocalDate, forStaff: Bool) -> String {
        let monthName = French.month(String(month.description.prefix(7)))
        let isCurrent = month.firstOfMonth == today.firstOfMonth
        var html = ""
        if forStaff { html += "<p>Logement <strong>\(HTML.escape(report.dwelling))</strong>, immeuble \(HTML.escape(report.building)).</p>\n" }
        let enough = report.slots.measured + report.slots.estimated > 0
        if enough {
            html += "<p class=\"lead\">Vous avez économisé <strong class=\"big\">\(French.euros(Cents(report.savingsCents)))</strong> en \(monthName)"
            html += isCurrent ? " (jusqu'à aujourd'hui).</p>\n" : ".</p>\n"
        } else {
            html += "<p class=\"lead\">Votre compteur n'a pas encore transmis de relevés pour \(monthName) : l'économie sera calculée dès qu'ils arriveront.</p>\n"
        }
        html += "<p>Cette économie vient de l'électricité des panneaux solaires de votre immeuble : une part revient à votre logement chaque demi-heure, et vous ne la payez pas au fournisseur. "
        html += "Votre facture d'électricité est calculée plus tard que votre consommation : l'économie de ce mois apparaîtra sur une prochaine facture.</p>\n"
        if enough {
            // Days before the meter was installed carry nothing: they are left out of the chart.
            html += Chart.days(report.days.filter { $0.slots.measured + $0.slots.estimated + $0.slots.missing > 0 }.map { Chart.Bar(date: $0.date, value: $0.savingsCents) }, today: isCurrent ? today : nil,
                               title: "Votre économie par jour en \(monthName)") { French.euros(Cents($0)) }
            html += HTML.table(caption: "Votre électricité en \(monthName)", headers: ["", "Quantité"], rows: [
                ["Votre consommation", French.kilowattHours(report.consumptionWh)],
                ["dont votre part du soleil", French.kilowattHours(report.allocatedWh)],
                ["dont l'électricité du réseau", French.kilowattHours(report.gridWh)],
            ], numeric: [1])
        }
        let missing = report.days.filter { $0.slots.missing > 0 }.map(\.date)
        if !missing.isEmpty {
            html += "<p>Le compteur n'a pas transmis tous ses relevés \(dayRanges(missing)) : ces jours comptent ce que nous avons reçu.</p>\n"
        }
        let projection = report.annualProjection
        html += "<h2>Depuis le 1er janvier \(projection.year)</h2>\n"
        html += "<p>Vous avez économisé <strong>\(French.euros(Cents(projection.savingsSoFarCents)))</strong> depuis le début de l'année.</p>\n"
        if let projected = projection.projectedCents {
            html += "<p>Sur l'année entière, nous estimons votre économie à environ <strong>\(French.wholeEuros(Cents(projected)))</strong>. "
            html += "On vous avait annoncé environ \(French.wholeEuros(Cents(projection.promisedCents))) par an. "
            html += "C'est une estimation : il y a plus de soleil en été qu'en hiver, et elle en tient compte.</p>\n"
        } else {
            html += "<p>Il est trop tôt dans l'année pour estimer l'économie de l'année entière (on vous avait annoncé environ \(French.wholeEuros(Cents(projection.promisedCents))) par an).</p>\n"
        }
        let previous = month.firstOfMonth.advanced(by: -1).firstOfMonth
        let subject = forStaff ? "&logement=\(HTML.escape(report.dwelling))" : ""
        html += "<p class=\"no-print\"><a href=\"\(SitePage.savings.path)?mois=\(String(previous.description.prefix(7)))\(subject)\">Voir \(French.month(String(previous.description.prefix(7))))</a>"
        if !isCurrent {
            let next = month.firstOfNextMonth
            html += " · <a href=\"\(SitePage.savings.path)?mois=\(String(next.description.prefix(7)))\(subject)\">Voir \(French.month(String(next.description.prefix(7))))</a>"
        }
        html += "</p>\n" + HTML.printButton
        return html
    }

    /// "du 12 au 14 novembre, le 20 novembre".
    static func dayRanges(_ days: [LocalDate]) -> String {
        var ranges: [(LocalDate, LocalDate)] = []
        for day in days.sorted() {
            if let last = ranges.last, last.1.advanced(by: 1) == day { ranges[ranges.count - 1].1 = day } else { ranges.append((day, day)) }
        }
        return ranges.map { $0.0 == $0.1 ? "le \(French.dayAndMonth($0.0))" : "du \(French.dayOfMonth($0.0)) au \(French.dayAndMonth($0.1))" }.joined(separator: ", ")
    }

    /// "Mes réservations": the household's bookings to come and past, and each member's balance.
    public static func myCar(bookings: [BookingView], statements: [MemberStatement], vehicles: [VehicleView], now: Instant, zone: LocalTimeZone) -> String {
        var html = ""
        if statements.isEmpty {
            html += "<p class=\"lead\">Personne de votre logement n'est encore adhérent de la voiture de l'association. Demandez à l'association : l'adhésion coûte 8 € par an.</p>\n"
        }
        for statement in statements {
            html += "<p class=\"lead\">\(HTML.escape(statement.name)) : \(balanceSentence(statement.balanceCents)).</p>\n"
        }
        let coming = bookings.filter { $0.end > now && $0.status.isLive }.sorted { $0.start < $1.start }
        html += "<h2>Vos trajets à venir</h2>\n"
        if coming.isEmpty {
            html += "<p>Aucun trajet prévu. <a href=\"\(SitePage.askTrip.path)\">Demander un trajet</a></p>\n"
        } else {
            html += "<ul>" + coming.map { "<li>\(bookingSentence($0, vehicles: vehicles, zone: zone))</li>" }.joined() + "</ul>\n"
        }
        let past = bookings.filter { !($0.end > now && $0.status.isLive) }.sorted { $0.start > $1.start }.prefix(20)
        if !past.isEmpty {
            html += HTML.table(caption: "Vos derniers trajets", headers: ["Date", "Heure", "État"],
                               rows: past.map { [French.shortDate(zone.localDate(of: $0.start)), FrenchTime.clock($0.start, zone: zone), HTML.escape(statusLabel($0.status))] })
        }
        for statement in statements where !statement.lines.isEmpty {
            html += HTML.table(caption: "Le compte de \(statement.name)", headers: ["Date", "Opération", "À payer", "Payé", "Solde"],
                               rows: statement.lines.suffix(12).map { line in
                                   [French.shortDate(line.date), HTML.escape(line.label), French.euros(line.chargedCents), French.euros(line.paidCents),
                                    French.euros(line.balanceCents)]
                               }, numeric: [2, 3, 4])
        }
        return html + HTML.printButton
    }

    /// "il reste 4,00 € à payer", "vous êtes à jour", "vous avez 2,00 € d'avance".
    public static func balanceSentence(_ balance: Cents) -> String {
        if balance.value < 0 { return "il reste <strong>\(French.euros(Cents(-balance.value)))</strong> à payer" }
        if balance.value > 0 { return "\(French.euros(balance)) d'avance" }
        return "à jour, rien à payer"
    }

    public static func bookingSentence(_ booking: BookingView, vehicles: [VehicleView], zone: LocalTimeZone) -> String {
        let car = vehicles.first { $0.id == booking.vehicle }?.name ?? "la voiture"
        var text = "Le \(FrenchTime.sentence(booking.start, zone: zone)), jusqu'à \(FrenchTime.hoursInWords(zone.localDateTime(of: booking.end))), \(HTML.escape(car))"
        if !booking.purpose.isEmpty { text += " — \(HTML.escape(booking.purpose))" }
        return text + " : <strong>\(HTML.escape(statusLabel(booking.status)))</strong>"
    }

    public static func statusLabel(_ status: BookingStatus) -> String {
        switch status {
        case .requested: return "demandée, en attente d'un chauffeur"
        case .confirmed: return "confirmée"
        case .completed: return "faite"
        case .cancelled: return "annulée"
        case .lateCancellation: return "annulée tard"
        case .noShow: return "absent au rendez-vous"
        case .turnedDown: return "refusée"
        }
    }

    /// "Demander un trajet": who rides, which day, from when to when, what for.
    public static func askTrip(form: HTML.Form, riders: [HTML.Choice], csrf: String) -> String {
        guard !riders.isEmpty else {
            return "<p class=\"lead\">Pour demander un trajet, il faut être adhérent de la voiture de l'association (8 € par an). Demandez à l'association.</p>\n"
        }
        let labels = ["rider": "Qui voyage", "date": "Jour", "start": "Heure de départ", "end": "Heure de retour", "purpose": "Pour quoi faire"]
        var fields = ""
        if riders.count == 1 {
            fields += "<input type=\"hidden\" name=\"rider\" value=\"\(HTML.escape(riders[0].value))\"><p>Pour : <strong>\(HTML.escape(riders[0].label))</strong></p>\n"
        } else {
            fields += HTML.radios("rider", legend: labels["rider"]!, form: form, choices: riders)
        }
        fields += HTML.input("date", label: labels["date"]!, form: form, type: "date", hint: "Par exemple 03/12/2026")
        fields += HTML.input("start", label: labels["start"]!, form: form, type: "time", hint: "Par exemple 14:00", width: "short")
        fields += HTML.input("end", label: labels["end"]!, form: form, type: "time", hint: "Par exemple 16:30", width: "short")
        fields += HTML.input("purpose", label: labels["purpose"]!, form: form, hint: "Par exemple : rendez-vous chez le médecin", optional: true)
        return "<p>L'association reçoit votre demande et vous appelle pour la confirmer. Un trajet coûte 2 €.</p>\n"
            + HTML.errorSummary(form, labels: labels) + HTML.form(action: SitePage.askTrip.path, csrf: csrf, button: "Envoyer ma demande", fields)
    }
}

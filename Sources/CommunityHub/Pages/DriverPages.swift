import CarShareCore
import HubCore

/// What a volunteer driver sees and does: their next assignments, the trip log (pre-filled with
/// the booking and the car's last odometer reading; the form carries its idempotency key, so a
/// phone that resubmits on a flaky connection records the trip once), and a charge.
public enum DriverPages {
    public static func missions(_ lines: [AssociationPages.WeekLine], vehicles: [VehicleView], zone: LocalTimeZone, now: Instant) -> String {
        let live = lines.filter { $0.booking.status.isLive }.sorted { $0.booking.start < $1.booking.start }
        let toNote = live.filter { $0.booking.end <= now }
        let coming = live.filter { $0.booking.end > now }
        var html = ""
        if !toNote.isEmpty {
            html += "<h2>Trajets faits, à noter</h2>\n<ul>"
            for line in toNote {
                html += "<li>\(FrenchTime.sentence(line.booking.start, zone: zone)) : \(HTML.escape(line.rider)). "
                html += "<a href=\"\(SitePage.newTrip.path)?reservation=\(line.booking.id)\">Noter ce trajet<span class=\"visually-hidden\"> du \(FrenchTime.short(line.booking.start, zone: zone))</span></a></li>"
            }
            html += "</ul>\n"
        }
        if let next = coming.first {
            html += "<p class=\"lead\">Votre prochain trajet : <strong>\(FrenchTime.sentence(next.booking.start, zone: zone))</strong>, avec \(HTML.escape(next.rider))"
            html += next.phone.isEmpty ? ".</p>\n" : " (téléphone \(HTML.escape(next.phone))).</p>\n"
        } else {
            html += "<p class=\"lead\">Vous n'avez aucun trajet prévu.</p>\n"
        }
        if !coming.isEmpty {
            html += "<h2>Vos trajets</h2>\n<ul>"
            for line in coming {
                let car = vehicles.first { $0.id == line.booking.vehicle }?.name ?? "la voiture"
                html += "<li>\(FrenchTime.sentence(line.booking.start, zone: zone)) – \(FrenchTime.clock(line.booking.end, zone: zone)) : "
                html += "\(HTML.escape(line.rider))\(line.phone.isEmpty ? "" : ", " + HTML.escape(line.phone))\(line.booking.purpose.isEmpty ? "" : " (" + HTML.escape(line.booking.purpose) + ")"), \(HTML.escape(car)). "
                html += line.booking.start <= now.adding(seconds: 12 * 3600)
                    ? "<a href=\"\(SitePage.newTrip.path)?reservation=\(line.booking.id)\">Noter ce trajet<span class=\"visually-hidden\"> du \(FrenchTime.short(line.booking.start, zone: zone))</span></a>"
                    : ""
                html += "</li>"
            }
            html += "</ul>\n"
        }
        return html + "<p class=\"no-print\"><a href=\"\(SitePage.newCharge.path)\">Noter une recharge</a></p>\n"
    }

    /// The trip form: `booking` pre-fills it; without one, the form asks for the booking number.
    public static func newTrip(form: HTML.Form, booking: AssociationPages.WeekLine?, riders: [HTML.Choice], csrf: String, zone: LocalTimeZone) -> String {
        let labels = ["booking": "Numéro de la réservation", "date": "Jour", "start": "Heure de départ", "end": "Heure de retour",
                      "start_odometer_km": "Compteur au départ (km)", "end_odometer_km": "Compteur au retour (km)",
                      "battery_start_pct": "Batterie au départ (%)", "battery_end_pct": "Batterie au retour (%)", "riders": "Qui a voyagé",
                      "fee": "Les 2 € du trajet", "incidents": "Un problème pendant le trajet ?"]
        var fields = "<input type=\"hidden\" name=\"idempotency_key\" value=\"\(HTML.escape(form["idempotency_key"]))\">\n"
        if let booking {
            fields += "<input type=\"hidden\" name=\"booking\" value=\"\(booking.booking.id)\">"
            fields += "<p class=\"lead\">Réservation n° \(booking.booking.id) : \(FrenchTime.sentence(booking.booking.start, zone: zone)), \(HTML.escape(booking.rider)).</p>\n"
        } else {
            fields += HTML.input("booking", label: labels["booking"]!, form: form, hint: "Il est sur la feuille de la semaine", inputmode: "numeric", width: "short")
        }
        fields += HTML.input("date", label: labels["date"]!, form: form, type: "date")
        fields += HTML.input("start", label: labels["start"]!, form: form, type: "time", width: "short")
        fields += HTML.input("end", label: labels["end"]!, form: form, type: "time", width: "short")
        fields += HTML.input("start_odometer_km", label: labels["start_odometer_km"]!, form: form, hint: "Le dernier relevé connu est déjà écrit : corrigez-le s'il ne correspond pas", inputmode: "numeric", width: "short")
        fields += HTML.input("end_odometer_km", label: labels["end_odometer_km"]!, form: form, inputmode: "numeric", width: "short")
        fields += HTML.input("battery_start_pct", label: labels["battery_start_pct"]!, form: form, inputmode: "numeric", width: "short")
        fields += HTML.input("battery_end_pct", label: labels["battery_end_pct"]!, form: form, inputmode: "numeric", width: "short")
        if !riders.isEmpty { fields += HTML.checkboxes("riders", legend: labels["riders"]!, form: form, choices: riders) }
        fields += HTML.radios("fee", legend: labels["fee"]!, form: form, choices: [HTML.Choice("cash", "payés en espèces au chauffeur"), HTML.Choice("owed", "pas payés : à payer plus tard")])
        fields += HTML.textarea("incidents", label: labels["incidents"]!, form: form, optional: true, rows: 3)
        return HTML.errorSummary(form, labels: labels) + HTML.form(action: SitePage.newTrip.path, csrf: csrf, button: "Enregistrer le trajet", fields)
    }

    public static func newCharge(form: HTML.Form, vehicles: [HTML.Choice], csrf: String) -> String {
        let labels = ["vehicle": "Voiture", "date": "Jour", "time": "Heure", "energy_kwh": "Électricité chargée (kWh)", "cost": "Prix payé (en euros)",
                      "method": "Payé", "note": "Où ?"]
        var fields = "<input type=\"hidden\" name=\"idempotency_key\" value=\"\(HTML.escape(form["idempotency_key"]))\">\n"
        if vehicles.count > 1 { fields += HTML.select("vehicle", label: labels["vehicle"]!, form: form, choices: vehicles) } else if let only = vehicles.first {
            fields += "<input type=\"hidden\" name=\"vehicle\" value=\"\(HTML.escape(only.value))\">"
        }
        fields += HTML.input("date", label: labels["date"]!, form: form, type: "date")
        fields += HTML.input("time", label: labels["time"]!, form: form, type: "time", width: "short")
        fields += HTML.input("energy_kwh", label: labels["energy_kwh"]!, form: form, hint: "Par exemple 22,5", inputmode: "decimal", width: "short")
        fields += HTML.input("cost", label: labels["cost"]!, form: form, hint: "0 si la recharge était gratuite", inputmode: "decimal", width: "short")
        fields += HTML.radios("method", legend: labels["method"]!, form: form, choices: [
            HTML.Choice("cash", "en espèces, par moi"), HTML.Choice("transfer", "par la carte de l'association"), HTML.Choice("none", "gratuit"),
        ])
        fields += HTML.input("note", label: labels["note"]!, form: form, optional: true)
        return HTML.errorSummary(form, labels: labels) + HTML.form(action: SitePage.newCharge.path, csrf: csrf, button: "Enregistrer la recharge", fields)
    }
}

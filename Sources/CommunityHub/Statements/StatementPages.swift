import EnergyCore
import Foundation
import HubCore

/// Household statements as printable HTML: one A4 page each, large type, black on white, page
/// breaks between households, the day-by-day saving as an inline SVG bar chart with the figures also
/// in a table. No JavaScript. The same HTML is printed to PDF by headless Chromium.
public enum StatementPages {
    /// A document of household pages (one or many), ready to print or to turn into a PDF.
    public static func document(_ statements: [HouseholdStatement], title: String) -> String {
        head(title: title) + statements.map { page($0) }.joined(separator: "\n") + "\n</body>\n</html>\n"
    }

    public static func head(title: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="fr">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(French.escape(title))</title>
        <style>
        @page { size: A4 portrait; margin: 11mm 13mm; }
        body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 18px; line-height: 1.3; color: #000; background: #fff; margin: 0 auto; max-width: 760px; padding: 8px; }
        section.statement { page-break-after: always; break-after: page; }
        section.statement:last-of-type { page-break-after: auto; break-after: auto; }
        .from { font-size: 15px; margin: 0; }
        h1 { font-size: 25px; margin: 4px 0 2px; }
        .where { margin: 0 0 10px; font-size: 16px; }
        .main { font-size: 21px; margin: 8px 0; }
        table { border-collapse: collapse; margin: 6px 0 10px; }
        th, td { border: 1px solid #000; padding: 2px 8px; text-align: left; }
        td.n { text-align: right; white-space: nowrap; }
        h2 { font-size: 19px; margin: 10px 0 3px; }
        ul { margin: 4px 0; padding-left: 22px; }
        .small { font-size: 15px; margin: 4px 0; }
        .days { font-size: 12px; margin: 2px 0 6px; }
        svg text { font-family: "DejaVu Sans", Arial, sans-serif; }
        </style>
        </head>
        <body>

        """
    }

    /// One household's page; a revision after the first says so at the top.
    public static func page(_ statement: HouseholdStatement, revision: Int = 1) -> String {
        let energy = statement.energy
        let monthName = French.month(statement.month)
        var html = "<section class=\"statement\">\n"
        if revision > 1 {
            html += "<p class=\"from\"><strong>Révision \(revision)</strong> : ce relevé remplace le précédent ; des relevés de compteur sont arrivés après l'envoi.</p>\n"
        }
        html += "<p class=\"from\">\(French.escape(statement.landlord))\(statement.association.map { " — " + French.escape($0) } ?? "")</p>\n"
        html += "<h1>Votre électricité solaire — \(monthName)</h1>\n"
        html += "<p class=\"where\">Logement \(French.escape(statement.dwelling)), immeuble \(French.escape(energy.building)), résidence \(French.escape(statement.estate))</p>\n"
        if statement.enoughData {
            html += "<p class=\"main\">En \(monthName), vous avez économisé <strong>\(French.euros(Cents(energy.savingsCents)))</strong> grâce à l'électricité des panneaux solaires de votre immeuble.</p>\n"
            html += chart(energy.days)
            html += """
                <table>
                <tr><th>Votre consommation d'électricité</th><td class="n">\(French.kilowattHours(energy.consumptionWh))</td></tr>
                <tr><th>dont votre part du soleil</th><td class="n">\(French.kilowattHours(energy.allocatedWh))</td></tr>
                <tr><th>dont l'électricité du réseau</th><td class="n">\(French.kilowattHours(energy.gridWh))</td></tr>
                <tr><th>Votre économie</th><td class="n"><strong>\(French.euros(Cents(energy.savingsCents)))</strong></td></tr>
                </table>

                """
        } else {
            html += "<p class=\"main\">Ce mois-ci, votre compteur n'a pas transmis assez de relevés pour calculer votre économie sans erreur. Nous ne l'inscrivons donc pas ; elle sera calculée quand les relevés arriveront.</p>\n"
        }
        if !statement.quality.isEmpty {
            html += "<h2>Les relevés de votre compteur</h2>\n<ul>\n" + statement.quality.map { "<li>\(French.escape($0))</li>\n" }.joined() + "</ul>\n"
        }
        let projection = energy.annualProjection
        html += "<h2>Depuis le 1er janvier \(projection.year)</h2>\n"
        html += "<p>Vous avez économisé \(French.euros(Cents(projection.savingsSoFarCents))) depuis le début de l'année."
        if !statement.enoughData {
            html += " Sans les relevés de ce mois, nous ne pouvons pas estimer votre économie sur l'année."
        } else if let projected = projection.projectedCents {
            html += " Sur l'année entière, nous estimons votre économie à environ <strong>\(French.wholeEuros(Cents(projected)))</strong>"
            html += " (on vous avait annoncé environ \(French.wholeEuros(Cents(projection.promisedCents))) par an). "
            switch projection.basis {
            case .buildingHistory:
                html += "C'est une estimation : elle suppose que les mois à venir ressembleront à ceux de l'an dernier pour les panneaux de votre immeuble."
            case .productionProfile:
                html += "C'est une estimation : elle tient compte du soleil habituel de chaque mois dans la région (plus de soleil en été qu'en hiver)."
            }
        }
        html += "</p>\n"
        if !statement.carShare.isEmpty {
            html += "<h2>La voiture de l'association</h2>\n<table>\n<tr><th>Adhérent</th><th>Trajets</th><th>Km</th><th>À payer ce mois</th><th>Payé ce mois</th><th>Solde fin du mois</th></tr>\n"
            for member in statement.carShare {
                let balance = member.balanceCents.value < 0 ? "reste à payer \(French.euros(Cents(-member.balanceCents.value)))"
                    : member.balanceCents.value > 0 ? "avance \(French.euros(member.balanceCents))" : "à jour"
                html += "<tr><td>\(French.escape(member.name))</td><td class=\"n\">\(member.trips)</td><td class=\"n\">\(French.grouped(member.kilometres))</td>"
                html += "<td class=\"n\">\(French.euros(member.chargedCents))</td><td class=\"n\">\(French.euros(member.paidCents))</td><td>\(balance)</td></tr>\n"
            }
            html += "</table>\n"
        }
        html += """
            <h2>Comment lire ce relevé</h2>
            <p class="small">Les panneaux solaires sur le toit de votre immeuble produisent de l'électricité ; une part revient à votre logement chaque demi-heure, selon ce que vous consommez.
            Cette électricité n'est pas payée au fournisseur : c'est votre économie. Votre facture d'électricité est calculée plus tard que votre consommation : l'économie de ce mois apparaîtra sur une prochaine facture.</p>
            </section>
            """
        return html
    }

    /// The day-by-day saving as bars (in cents), with the figures also in a table for reading aloud and printing.
    static func chart(_ days: [DwellingEnergyReport.Day]) -> String {
        guard !days.isEmpty else { return "" }
        let width = 720, height = 130, left = 52, bottom = 22
        let top = max(1, days.map(\.savingsCents).max() ?? 1)
        let step = Double(width - left) / Double(days.count)
        var bars = ""
        for (index, day) in days.enumerated() {
            let barHeight = Double(height - bottom - 10) * Double(max(0, day.savingsCents)) / Double(top)
            let x = Double(left) + Double(index) * step + 1
            bars += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#1a1a1a\"/>", x, Double(height - bottom) - barHeight, max(1, step - 2), barHeight)
            if index == 0 || (index + 1) % 5 == 0 {
                bars += String(format: "<text x=\"%.1f\" y=\"%d\" font-size=\"12\">%d</text>", x, height - 8, day.date.day)
            }
        }
        let axis = "<text x=\"0\" y=\"20\" font-size=\"12\">\(French.euros(Cents(top)))</text><text x=\"0\" y=\"\(height - bottom)\" font-size=\"12\">0 €</text>"
            + "<line x1=\"\(left)\" y1=\"\(height - bottom)\" x2=\"\(width)\" y2=\"\(height - bottom)\" stroke=\"#000\"/>"
        // The same figures in words, for reading aloud and for paper.
        let figures = days.map { "\(French.dayOfMonth($0.date))\u{00A0}: \(French.euros(Cents($0.savingsCents)))" }.joined(separator: " ; ")
        return """
            <h2>Votre économie jour par jour</h2>
            <svg role="img" aria-label="Économie par jour du mois, en euros" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)">\(axis)\(bars)</svg>
            <p class="days">Jour par jour : \(figures).</p>

            """
    }
}

/// The staff summary of a month: every household of the landlord in one table (French CSV), and
/// the counts staff act on.
public enum StaffSummary {
    public static let header = ["Résidence", "Immeuble", "Logement", "Consommation (kWh)", "Part solaire (kWh)", "Réseau (kWh)", "Économie (€)",
                                "Jours estimés", "Jours sans relevé complet", "Données suffisantes"]

    public static func csvHeader() -> String { FrenchCSV.byteOrderMark + FrenchCSV.line(header) }

    public static func csvRow(_ statement: HouseholdStatement) -> String {
        let energy = statement.energy
        let estimated = energy.days.filter { $0.slots.estimated > 0 && $0.slots.missing == 0 }.count
        let missing = energy.days.filter { $0.slots.missing > 0 }.count
        return FrenchCSV.line([FrenchCSV.text(statement.estate), FrenchCSV.text(energy.building), FrenchCSV.text(statement.dwelling),
                               FrenchCSV.kilowattHours(energy.consumptionWh), FrenchCSV.kilowattHours(energy.allocatedWh), FrenchCSV.kilowattHours(energy.gridWh),
                               statement.enoughData ? FrenchCSV.euros(Cents(energy.savingsCents)) : "", "\(estimated)", "\(missing)",
                               statement.enoughData ? "oui" : "non"])
    }

    /// What staff act on after an export.
    public struct Counts: Codable, Sendable, Equatable {
        public var households: Int
        public var withoutEnoughData: Int
        public var savingsCents: Cents

        enum CodingKeys: String, CodingKey {
            case households
            case withoutEnoughData = "without_enough_data", savingsCents = "savings_cents"
        }

        public init() {
            households = 0
            withoutEnoughData = 0
            savingsCents = .zero
        }

        public mutating func add(_ statement: HouseholdStatement) {
            households += 1
            if !statement.enoughData { withoutEnoughData += 1 } else { savingsCents = savingsCents + Cents(statement.energy.savingsCents) }
        }
    }
}

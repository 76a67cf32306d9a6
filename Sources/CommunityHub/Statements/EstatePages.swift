import CarShareCore
import EnergyCore
import Foundation
import HubCore

/// The building and association statements as printable HTML, in the household pages' style
/// (`StatementPages.head`): one A4 page each, large type, black on white, the main figure first in
/// a sentence, the building's production day by day as an inline SVG bar chart with the figures
/// also in words. No JavaScript; the same HTML prints to PDF through headless Chromium.
public enum EstatePages {
    public static func document(_ statement: BuildingStatement) -> String {
        head(title: "Immeuble \(statement.building), \(French.month(statement.month))") + page(statement) + "\n</body>\n</html>\n"
    }

    public static func document(_ statement: AssociationStatement) -> String {
        head(title: "Voiture de l'association, \(French.month(statement.month))") + page(statement) + "\n</body>\n</html>\n"
    }

    /// The household pages' head, with the few rules these pages add: full-width tables with
    /// narrower padding, and two short tables side by side, so that a month fits one A4 page.
    public static func head(title: String) -> String {
        StatementPages.head(title: title).replacingOccurrences(of: "</style>", with: """
            table.full { width: 100%; }
            table.full th, table.full td { padding: 2px 5px; white-space: nowrap; }
            table.full td.label { white-space: normal; }
            .pair { display: flex; gap: 24px; align-items: flex-start; white-space: nowrap; }
            code.hash { font-size: 19px; }
            p { margin: 8px 0; }
            </style>
            """)
    }

    static func from(_ landlord: String, _ association: String?) -> String {
        "<p class=\"from\">\(French.escape(landlord))\(association.map { " — " + French.escape($0) } ?? "")</p>\n"
    }

    // MARK: - The building

    public static func page(_ statement: BuildingStatement) -> String {
        let energy = statement.energy
        let monthName = French.month(statement.month)
        var html = "<section class=\"statement\">\n" + from(statement.landlord, statement.association)
        html += "<h1>Immeuble \(French.escape(statement.building)) : le solaire en \(monthName)</h1>\n"
        html += "<p class=\"where\">Résidence \(French.escape(statement.estate)), \(French.count(energy.households, "logement suivi", "logements suivis")), "
            + "partage \(French.allocationKey(energy.allocationKey))</p>\n"
        // Without a single production reading the totals would print 0 kWh as if the panels had
        // produced nothing: the page says what is missing instead, like a household's page does.
        guard energy.slots.measured + energy.slots.estimated > 0 else {
            html += "<p class=\"main\">En \(monthName), aucun relevé de la production des panneaux n'est arrivé : nous ne pouvons pas dire ce qu'ils ont produit ni ce que les logements en ont utilisé.</p>\n"
            return html + rest(statement)
        }
        let used = French.percent(energy.allocatedWh, of: energy.productionWh).map { " (\($0))" } ?? ""
        let partial = energy.slots.missing > 0 ? " sans compter les heures où la production n'a pas été transmise" : ""
        // Below the minimum group the households' figures would be a neighbour's: the production
        // alone, and why (issue 14, defect 10).
        if energy.withheld {
            html += "<p class=\"main\">En \(monthName), les panneaux solaires de l'immeuble ont produit <strong>\(French.kilowattHours(energy.productionWh))</strong>\(partial).</p>\n"
            html += "<p>\(French.withheldForNeighbours(minimum: energy.minimumHouseholds)) (ce que les logements ont utilisé, leur consommation, la vente au réseau).</p>\n"
            html += productionChart(energy.days)
            html += "<table>\n<tr><th>Électricité produite par les panneaux</th><td class=\"n\">\(French.kilowattHours(energy.productionWh))</td></tr>\n</table>\n"
            return html + rest(statement)
        }
        html += "<p class=\"main\">En \(monthName), les panneaux solaires de l'immeuble ont produit <strong>\(French.kilowattHours(energy.productionWh))</strong>\(partial). "
            + "Les logements en ont utilisé <strong>\(French.kilowattHours(energy.allocatedWh))</strong>\(used) ; "
            + "le reste, \(French.kilowattHours(energy.surplusWh)), a été vendu au réseau pour \(French.euros(Cents(energy.surplusRevenueCents))).</p>\n"
        html += productionChart(energy.days)
        html += "<table>\n"
        html += "<tr><th>Électricité produite par les panneaux</th><td class=\"n\">\(French.kilowattHours(energy.productionWh))</td></tr>\n"
        html += "<tr><th>dont utilisée par les logements</th><td class=\"n\">\(French.kilowattHours(energy.allocatedWh))</td></tr>\n"
        html += "<tr><th>dont vendue au réseau</th><td class=\"n\">\(French.kilowattHours(energy.surplusWh)) pour \(French.euros(Cents(energy.surplusRevenueCents)))</td></tr>\n"
        html += "<tr><th>Consommation des logements</th><td class=\"n\">\(French.kilowattHours(energy.consumptionWh))</td></tr>\n"
        html += "<tr><th>Part de la production utilisée sur place</th><td class=\"n\">\(French.percent(energy.allocatedWh, of: energy.productionWh) ?? "sans production")</td></tr>\n"
        html += "<tr><th>Part de la consommation couverte par le soleil</th><td class=\"n\">\(French.percent(energy.allocatedWh, of: energy.consumptionWh) ?? "sans consommation")</td></tr>\n"
        html += "</table>\n"
        return html + rest(statement)
    }

    /// The building page after its figures: the households' shares, the data quality and how to read it.
    static func rest(_ statement: BuildingStatement) -> String {
        var html = shares(statement.householdShares)
        html += "<h2>Les relevés et les boîtiers (\(statement.devicesInService) en service, \(statement.troubledDevices.count) à vérifier)</h2>\n"
        if statement.quality.isEmpty {
            html += "<p>Tous les relevés du mois sont arrivés et aucun message n'a été refusé.</p>\n"
        } else {
            html += "<ul>\n" + statement.quality.map { "<li>\(French.escape($0))</li>\n" }.joined() + "</ul>\n"
        }
        html += """
            <p class="small">Comment lire ce relevé : chaque demi-heure, l'électricité des panneaux est partagée entre les logements qui consomment ; le reste est vendu au réseau.
            Aucun logement n'est nommé ici : chaque ménage reçoit son propre relevé.</p>
            </section>
            """
        return html
    }

    /// How the households shared the production, never one household's figure nor an extreme,
    /// rounded; withheld in words below the minimum group.
    public static func shares(_ shares: HouseholdShares) -> String {
        var html = "<h2>La part de chaque logement</h2>\n"
        guard let allocated = shares.allocatedWh, let savings = shares.savingsCents else {
            let why = shares.households < shares.minimumHouseholds
                ? "L'immeuble compte \(French.count(shares.households, "logement suivi", "logements suivis")), moins de \(shares.minimumHouseholds)"
                : "Certains jours, moins de \(shares.minimumHouseholds) logements de l'immeuble avaient des relevés"
            html += "<p>\(why) : pour ne pas dévoiler la part d'un voisin, la répartition entre les logements n'est pas publiée.</p>\n"
            return html
        }
        // In sentences rather than a table of quartiles: the words a person would say, and shorter
        // on paper. No smallest or largest share: each is one household's own figure.
        html += "<p>Part du soleil des \(shares.households) logements : un quart des logements a reçu moins de \(French.kilowattHours(allocated.lowerQuartile)), "
            + "la moitié moins de \(French.kilowattHours(allocated.median)), les trois quarts moins de \(French.kilowattHours(allocated.upperQuartile)) (arrondi au kWh).<br>\n"
        html += "Économie : un quart moins de \(French.wholeEuros(Cents(savings.lowerQuartile))), la moitié moins de \(French.wholeEuros(Cents(savings.median))), "
            + "les trois quarts moins de \(French.wholeEuros(Cents(savings.upperQuartile))) (arrondi à l'euro).</p>\n"
        return html
    }

    /// The production day by day as bars (in Wh), the figures also in words for reading aloud and paper.
    static func productionChart(_ days: [BuildingEnergyReport.Day]) -> String {
        guard !days.isEmpty else { return "" }
        let width = 720, height = 100, left = 70, bottom = 22
        let top = max(1, days.map(\.productionWh).max() ?? 1)
        let step = Double(width - left) / Double(days.count)
        var bars = ""
        for (index, day) in days.enumerated() {
            let barHeight = Double(height - bottom - 10) * Double(max(0, day.productionWh)) / Double(top)
            let x = Double(left) + Double(index) * step + 1
            bars += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#1a1a1a\"/>", x, Double(height - bottom) - barHeight, max(1, step - 2), barHeight)
            if index == 0 || (index + 1) % 5 == 0 {
                bars += String(format: "<text x=\"%.1f\" y=\"%d\" font-size=\"12\">%d</text>", x, height - 8, day.date.day)
            }
        }
        let axis = "<text x=\"0\" y=\"20\" font-size=\"12\">\(French.kilowattHours(top))</text><text x=\"0\" y=\"\(height - bottom)\" font-size=\"12\">0 kWh</text>"
            + "<line x1=\"\(left)\" y1=\"\(height - bottom)\" x2=\"\(width)\" y2=\"\(height - bottom)\" stroke=\"#000\"/>"
        let figures = days.map { "\(French.dayOfMonth($0.date))\u{00A0}: \(French.kilowattHours($0.productionWh))" }.joined(separator: " ; ")
        return """
            <h2>La production jour par jour</h2>
            <svg role="img" aria-label="Production des panneaux par jour du mois, en kWh" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)">\(axis)\(bars)</svg>
            <p class="days">Jour par jour : \(figures).</p>

            """
    }

    // MARK: - The association

    public static func page(_ statement: AssociationStatement) -> String {
        let monthName = French.month(statement.month)
        let income = statement.incomeStatement
        let use = statement.carUse
        func lines(_ kind: TripKind) -> Int { use.byKind.first { $0.kind == kind }?.lines ?? 0 }
        var html = "<section class=\"statement\">\n" + from(statement.landlord, statement.association)
        html += "<h1>La voiture de l'association — \(monthName)</h1>\n"
        html += "<p class=\"where\">Résidence \(French.escape(statement.estate))</p>\n"
        let result = income.resultCents
        html += "<p class=\"main\">En \(monthName), la voiture a fait <strong>\(French.count(lines(.ride), "trajet", "trajets")) pour les adhérents</strong> "
            + "et \(French.count(lines(.associationRun), "tournée", "tournées")) pour l'association, \(French.grouped(use.totalKm))\(French.thin)km en tout. "
            + "Le mois se termine avec \(result.value < 0 ? "une perte de" : "un résultat de") <strong>\(French.euros(result.value < 0 ? -result : result))</strong>.</p>\n"

        // The accounts and the car's use side by side: two short tables, one page.
        html += "<div class=\"pair\">\n<div>\n<h2>Recettes et dépenses</h2>\n<table>\n"
        for line in income.income { html += "<tr><td>\(French.escape(French.accountLabel(line.account)))</td><td class=\"n\">\(French.euros(line.amountCents))</td></tr>\n" }
        html += "<tr><th>Total des recettes</th><td class=\"n\"><strong>\(French.euros(income.totalIncomeCents))</strong></td></tr>\n"
        for line in income.expenses { html += "<tr><td>\(French.escape(French.accountLabel(line.account)))</td><td class=\"n\">\(French.euros(line.amountCents))</td></tr>\n" }
        html += "<tr><th>Total des dépenses</th><td class=\"n\"><strong>\(French.euros(income.totalExpensesCents))</strong></td></tr>\n"
        html += "<tr><th>Résultat</th><td class=\"n\"><strong>\(French.euros(result))</strong></td></tr>\n</table>\n</div>\n"

        html += "<div>\n<h2>Le carnet de bord</h2>\n<table>\n<tr><th>Usage</th><th>Fois</th><th>Km</th></tr>\n"
        for figures in use.byKind {
            html += "<tr><td>\(French.escape(figures.kind.frenchLabel))</td><td class=\"n\">\(figures.lines)</td><td class=\"n\">\(French.grouped(figures.kilometres))</td></tr>\n"
        }
        html += "</table>\n</div>\n</div>\n"
        var details = "Électricité rechargée : \(French.kilowattHours(use.chargedWh)) pour \(French.euros(use.chargingCostCents))"
        if let per100 = use.chargingCostPer100KmCents { details += ", soit \(French.euros(per100)) pour 100\(French.thin)km" }
        details += ". Livraisons : \(French.count(use.deliveryRuns, "tournée", "tournées")) pour \(French.count(use.householdsServed, "foyer", "foyers")). "
        details += use.unexplainedKm > 0 ? "Kilomètres non expliqués dans le carnet : \(French.grouped(use.unexplainedKm))\(French.thin)km." : "Tous les kilomètres sont notés dans le carnet."
        html += "<p class=\"small\">\(details)</p>\n"

        html += "<h2>Les adhérents de la résidence \(French.escape(statement.estate))</h2>\n"
        // The cash book covers the month's days: its first and last day date the page.
        let lastDay = French.shortDate(statement.cashBook.to)
        html += "<p>\(French.count(statement.membersUpToDate, "adhérent à jour", "adhérents à jour")) au \(lastDay) ; "
            + "\(French.count(statement.membershipsSold.count, "adhésion vendue", "adhésions vendues")) ce mois-ci (\(French.euros(statement.membershipsSoldCents))).</p>\n"
        // Members with nothing in the month and nothing owed or in advance are counted, not listed:
        // the page stays one page for a large estate.
        let listed = statement.members.filter { $0.trips > 0 || $0.chargedCents != .zero || $0.paidCents != .zero || $0.balanceCents != .zero }
        if !listed.isEmpty {
            html += "<table class=\"full\">\n<tr><th>Adhérent</th><th>Trajets</th><th>Dû ce mois</th><th>Payé ce mois</th><th>Solde au \(lastDay.prefix(5))</th></tr>\n"
            for member in listed {
                let balance = member.balanceCents.value < 0 ? "reste à payer \(French.euros(-member.balanceCents))"
                    : member.balanceCents.value > 0 ? "avance \(French.euros(member.balanceCents))" : "à jour"
                html += "<tr><td class=\"label\">\(French.escape(member.name))</td><td class=\"n\">\(member.trips)</td><td class=\"n\">\(French.euros(member.chargedCents))</td>"
                    + "<td class=\"n\">\(French.euros(member.paidCents))</td><td class=\"n\">\(balance)</td></tr>\n"
            }
            html += "</table>\n"
        }
        if listed.count < statement.members.count {
            html += "<p class=\"small\">\(French.count(statement.members.count - listed.count, "autre adhérent", "autres adhérents")) sans trajet ni paiement ce mois-ci, à jour de leurs comptes.</p>\n"
        }

        let cash = statement.cashBook
        html += "<h2>La caisse</h2>\n"
        let firstDay = French.shortDate(cash.from)
        html += "<table class=\"full\">\n<tr><th>Date</th><th>Opération</th><th>Entrée</th><th>Sortie</th><th>En caisse</th></tr>\n"
        html += "<tr><td>\(firstDay)</td><td class=\"label\">En caisse au début du mois</td><td></td><td></td><td class=\"n\">\(French.euros(cash.openingCents))</td></tr>\n"
        for line in cash.lines {
            html += "<tr><td>\(French.shortDate(line.date))</td><td class=\"label\">\(French.escape(line.label))</td>"
                + "<td class=\"n\">\(line.inCents == .zero ? "" : French.euros(line.inCents))</td><td class=\"n\">\(line.outCents == .zero ? "" : French.euros(line.outCents))</td>"
                + "<td class=\"n\">\(French.euros(line.balanceCents))</td></tr>\n"
        }
        html += "<tr><td>\(lastDay)</td><th class=\"label\">En caisse à la fin du mois</th><td></td><td></td><td class=\"n\"><strong>\(French.euros(cash.closingCents))</strong></td></tr>\n</table>\n"

        let head = statement.ledgerHead
        html += "<h2>L'empreinte des comptes au \(lastDay)</h2>\n"
        let last = head.lastEntry.map { "Après l'écriture n°\u{00A0}\($0), la dernière datée du mois ou d'avant (\(French.count(Int(head.entries), "écriture", "écritures")) en tout) :" }
            ?? "Aucune écriture n'est datée du mois ou d'avant :"
        html += "<p class=\"small\">\(last)</p>\n"
        html += "<p class=\"main\"><code class=\"hash\">\(French.hashGroups(head.hash))</code></p>\n"
        var note = "Chaque écriture est scellée avec la précédente : si une écriture de ce mois ou d'avant changeait, cette empreinte changerait. Gardez cette page. "
        note += head.closed ? "Le mois est clos. " : "Le mois n'est pas encore clos : une écriture datée du mois peut encore changer l'empreinte. "
        note += head.chainIntact ? "Les comptes ont été vérifiés jusqu'à cette écriture."
            : "Attention : la vérification des comptes a échoué avant cette écriture ; prévenez le bailleur."
        html += "<p class=\"small\">\(note)</p>\n</section>"
        return html
    }
}

extension French {
    /// "3f2a9c1d 00ab12ef …": a hash in groups of eight, easier to read aloud and compare on paper.
    public static func hashGroups(_ hash: String) -> String {
        var groups: [String] = []
        var rest = Substring(hash)
        while !rest.isEmpty {
            groups.append(String(rest.prefix(8)))
            rest = rest.dropFirst(8)
        }
        return groups.joined(separator: " ")
    }

    /// The plain words of an income or expense account (its number is in the JSON and the journal,
    /// for the accountant).
    public static func accountLabel(_ account: Account) -> String {
        switch account {
        case .memberships: "Adhésions"
        case .tripFees: "Trajets des adhérents"
        case .grants: "Subventions"
        case .charging: "Recharges"
        case .insurance: "Assurance"
        case .maintenance: "Entretien"
        case .travel: "Déplacements bénévoles"
        default: account.label
        }
    }

    /// The sharing rule of a building, in words.
    public static func allocationKey(_ key: String) -> String {
        switch AllocationKeyKind(rawValue: key) {
        case .proRata: return "selon la consommation"
        case .staticShares, .staticRedistributed: return "parts fixes"
        case .perSlot: return "coefficients du gestionnaire"
        case nil: return key
        }
    }
}

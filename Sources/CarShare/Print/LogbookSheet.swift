import CarShareCore
import HubCore

/// The car's logbook for a month as a printable A4 page in French (`?format=html`, and the PDF of
/// `community-hub carshare logbook --format pdf`): the same columns as the paper sheet volunteers
/// fill in, the odometer gaps where they fall, and the month's figures. Plain HTML and CSS, no
/// JavaScript; large type; black on white.
public enum LogbookSheet {
    public static func html(_ logbook: LogbookView, zone: LocalTimeZone = .paris) -> String {
        let vehicle = logbook.vehicle
        let monthTitle = French.month(logbook.month)
        var rows: [String] = []
        // Gaps are shown before the line they precede.
        var gaps = logbook.gaps
        for line in logbook.lines {
            let trip = line.trip
            while let gap = gaps.first, gap.before <= trip.start {
                rows.append(gapRow(gap, zone: zone))
                gaps.removeFirst()
            }
            let start = zone.localDateTime(of: trip.start)
            let end = zone.localDateTime(of: trip.end)
            rows.append("""
                <tr class="\(trip.kind.rawValue)"><td>\(start.date.frenchText)</td><td>\(clock(start))</td><td>\(end.date == start.date ? "" : end.date.frenchText + " ")\(clock(end))</td>
                <td>\(French.escape(line.driverName))</td><td>\(French.escape(trip.kind.frenchLabel))</td><td>\(French.escape(object(trip)))</td>
                <td class="n">\(French.grouped(trip.startOdometerKm))</td><td class="n">\(French.grouped(trip.endOdometerKm))</td><td class="n">\(French.grouped(trip.distanceKm))</td>
                <td class="n">\(trip.batteryStartPct) %&#8239;→&#8239;\(trip.batteryEndPct) %</td><td>\(French.escape(trip.incidents))</td></tr>
                """)
        }
        rows += gaps.map { gapRow($0, zone: zone) }
        if logbook.lines.isEmpty && logbook.gaps.isEmpty {
            rows.append("<tr><td colspan=\"11\">Aucune utilisation de la voiture n'est notée ce mois-ci.</td></tr>")
        }
        let figures = logbook.figures
        func km(_ kind: TripKind) -> String { French.grouped(figures.byKind.first { $0.kind == kind }?.kilometres ?? 0) + " km" }
        func count(_ kind: TripKind) -> Int { figures.byKind.first { $0.kind == kind }?.lines ?? 0 }
        let unexplained = logbook.gaps.filter { $0.explanation == nil }
        let summary = """
            <ul class="figures">
            <li>Kilomètres notés : <strong>\(French.grouped(figures.totalKm)) km</strong>\(figures.unexplainedKm > 0 ? ", et <strong>\(French.grouped(figures.unexplainedKm)) km non expliqués</strong>" : "")</li>
            <li>Tournées de l'association : \(count(.associationRun)) (\(km(.associationRun))), dont \(French.count(figures.deliveryRuns, "livraison")) à \(French.count(figures.householdsServed, "foyer"))</li>
            <li>Trajets d'adhérents : \(count(.ride)) (\(km(.ride)))</li>
            <li>Recharges : \(French.count(count(.chargingRun), "déplacement")) (\(km(.chargingRun))), \(French.kilowattHours(figures.chargedWh)) chargés pour \(figures.chargingCostCents.euros)\(figures.chargingCostPer100KmCents.map { ", soit \($0.euros) aux 100 km" } ?? "")</li>
            <li>Garage et entretien : \(count(.garage)) (\(km(.garage)))</li>
            </ul>
            """
        let warning = unexplained.isEmpty ? "" : """
            <p class="warning"><strong>Attention :</strong> le compteur a avancé de \(French.grouped(figures.unexplainedKm)) km sans ligne dans le carnet \
            (\(unexplained.count == 1 ? "un écart" : "\(unexplained.count) écarts")). Ajoutez la ligne qui manque (carnet papier) ou une note qui explique ces kilomètres.</p>
            """
        return """
            <!DOCTYPE html>
            <html lang="fr">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Carnet de bord — \(French.escape(vehicle.name)) — \(monthTitle)</title>
            <style>
            @page { size: A4 landscape; margin: 12mm; }
            body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 18px; color: #000; background: #fff; margin: 0 auto; max-width: 1400px; padding: 12px; }
            h1 { font-size: 28px; margin: 0 0 4px; }
            p.sub { margin: 0 0 12px; }
            table { border-collapse: collapse; width: 100%; font-size: 14px; }
            th, td { border: 1px solid #000; padding: 4px 6px; vertical-align: top; text-align: left; }
            th { background: #e6e6e6; }
            td.n { text-align: right; white-space: nowrap; }
            tr.gap td { font-style: italic; background: #f2f2f2; }
            tr { page-break-inside: avoid; }
            .figures { font-size: 18px; }
            .warning { border: 3px solid #000; padding: 8px; }
            </style>
            </head>
            <body>
            <h1>Carnet de bord — \(French.escape(vehicle.name)) (\(French.escape(vehicle.plate)))</h1>
            <p class="sub">Mois de \(monthTitle). Chaque utilisation de la voiture est une ligne : trajets d'adhérents, tournées de l'association, recharges, garage.</p>
            \(warning)
            <table>
            <thead><tr><th>Date</th><th>Départ</th><th>Retour</th><th>Conducteur</th><th>Nature</th><th>Objet</th><th>Km départ</th><th>Km arrivée</th><th>Km parcourus</th><th>Batterie</th><th>Incidents</th></tr></thead>
            <tbody>
            \(rows.joined(separator: "\n"))
            </tbody>
            </table>
            <h2>Le mois en chiffres</h2>
            \(summary)
            </body>
            </html>
            """
    }

    static func gapRow(_ gap: OdometerGap, zone: LocalTimeZone) -> String {
        let after = gap.after.map { "après le " + zone.localDate(of: $0).frenchText } ?? "depuis la mise en service"
        let before = zone.localDate(of: gap.before).frenchText
        let text = gap.explanation.map { "Expliqué : " + French.escape($0) } ?? "Écart de compteur non expliqué"
        return """
            <tr class="gap"><td colspan="6">\(text) (\(after), avant le \(before))</td><td class="n">\(French.grouped(gap.fromKm))</td><td class="n">\(French.grouped(gap.toKm))</td><td class="n">\(French.grouped(gap.kilometres))</td><td colspan="2"></td></tr>
            """
    }

    /// What the line was for: the members carried, the purpose, the deliveries, the charge.
    static func object(_ trip: TripView) -> String {
        switch trip.kind {
        case .ride:
            let riders = trip.riders.count
            return riders == 1 ? "1 adhérent" : "\(riders) adhérents"
        case .associationRun:
            let purpose = trip.purpose ?? ""
            guard let households = trip.householdsServed, households > 0 else { return purpose }
            return purpose + " — \(households) foyer\(households > 1 ? "s" : "") servi\(households > 1 ? "s" : "")"
        case .chargingRun:
            guard let charge = trip.charging else { return trip.purpose ?? "" }
            return "\(French.kilowattHours(charge.energyWh.value)) pour \(charge.costCents.euros)" + ((trip.purpose ?? "").isEmpty ? "" : " — " + (trip.purpose ?? ""))
        case .garage:
            return trip.purpose ?? ""
        }
    }

    static func clock(_ time: LocalDateTime) -> String {
        (time.hour < 10 ? "0" : "") + "\(time.hour):" + (time.minute < 10 ? "0" : "") + "\(time.minute)"
    }
}

import EnergyCore
import Foundation
import HubCore
import HubPages
import Testing

/// Issue 14, defect 10 on the association's page (`/quartier`): what the store withholds is said in
/// French, never printed as 0, and no household's figure shows.
@Suite struct EstatePrivacyPageTests {
    static let june = LocalDate(year: 2026, month: 6, day: 1)!
    static let today = LocalDate(year: 2026, month: 6, day: 11)!

    static func totals(_ building: String?, production: Int64, allocated: Int64, withheld: Bool) -> BuildingTotals {
        let totals = BuildingTotals(building: building, production: production, allocated: allocated, surplus: production - allocated,
                                    consumption: allocated * 2, revenue: NanoEuros((production - allocated) * 40_000))
        return withheld ? totals.withHouseholdFiguresWithheld : totals
    }

    static func report(withheldBuilding: Bool, estateWithheld: Bool, median: Int64?, count: Int) -> EstateEnergyReport {
        EstateEnergyReport(estate: "Outreau", from: june, to: LocalDate(year: 2026, month: 6, day: 30)!,
                           totals: totals(nil, production: 90_000, allocated: 61_234, withheld: estateWithheld),
                           buildings: [totals("OUT-A", production: 50_000, allocated: 40_000, withheld: false),
                                       totals("OUT-B", production: 40_000, allocated: 21_234, withheld: withheldBuilding)],
                           households: .init(count: count, minCents: nil, medianCents: median, maxCents: nil), revisedMonths: [], minimumHouseholds: 10)
    }

    @Test func aWithheldBuildingAndEstateAreSaidInWordsNotShownAsZero() {
        let html = AssociationPages.estate(Self.report(withheldBuilding: true, estateWithheld: true, median: nil, count: 14), buildings: [],
                                           month: Self.june, today: Self.today, estates: [], forStaff: false)
        #expect(html.contains("les panneaux solaires ont produit <strong>90,0\u{202F}kWh</strong>."), "the production always")
        #expect(html.contains("moins de 10 foyers avec des relevés certains jours : chiffres non publiés pour protéger les voisins"))
        #expect(!html.contains("61,2") && !html.contains("21,2"), "no household figure of the estate or the withheld building")
        #expect(html.contains("<td>OUT-B</td>") && html.contains("non publié"))
        #expect(html.contains("40,0\u{202F}kWh"), "the building shown keeps its figures")
        #expect(!html.contains("vendue au réseau a rapporté"), "the surplus's value is a household figure too")
        #expect(html.contains("14 foyers ;") && html.contains("l'économie typique n'est pas publiée"))
    }

    @Test func aSmallEstateSaysWhyAndALargeOneShowsARoundedMedian() {
        let small = AssociationPages.estate(Self.report(withheldBuilding: true, estateWithheld: true, median: nil, count: 4), buildings: [],
                                            month: Self.june, today: Self.today, estates: [], forStaff: false)
        #expect(small.contains("4 foyers : moins de 10 foyers, l'économie typique n'est pas publiée pour protéger les voisins."))
        let large = AssociationPages.estate(Self.report(withheldBuilding: false, estateWithheld: false, median: 1_300, count: 40), buildings: [],
                                            month: Self.june, today: Self.today, estates: [], forStaff: false)
        #expect(large.contains("Pour les 40 foyers, l'économie du mois est de <strong>environ 13\u{202F}€</strong>"))
        #expect(large.contains("dont <strong>61,2\u{202F}kWh</strong> utilisés par les logements") && !large.contains("non publié"))
    }
}

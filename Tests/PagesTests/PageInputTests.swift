import Foundation
import HubCore
import HubPages
import Shared
import Testing

/// Forms as browsers send them, hostile ones included, and French input read exactly.
@Suite struct PageInputTests {
    @Test func urlEncodedFormsAreReadAndBadOnesRefused() throws {
        let form = try FormFields.urlEncoded(Data("name=Mme+Martin&riders=1&riders=2&note=caf%C3%A9%21&empty=".utf8))
        #expect(form["name"] == "Mme Martin")
        #expect(form.all("riders") == ["1", "2"])
        #expect(form["note"] == "café!")
        #expect(form["empty"] == nil)
        for bad in ["a=%zz", "a=%00", "a=%C3", Array(repeating: "f=1", count: 1).joined()] where bad != "f=1" {
            #expect(throws: HubError.self, "\(bad)") { try FormFields.urlEncoded(Data(bad.utf8)) }
        }
        let many = (0..<6_000).map { "f\($0)=1" }.joined(separator: "&")
        #expect(throws: HubError.self) { try FormFields.urlEncoded(Data(many.utf8)) }
    }

    @Test func multipartFormsCarryTheirFileAndFields() throws {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\ntoken-1\r\n"
            + "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"registre.csv\"\r\nContent-Type: text/csv\r\n\r\nestate;building\r\nA;B\r\n"
            + "--XyZ--\r\n"
        #expect(FormFields.boundary(contentType: "multipart/form-data; boundary=XyZ") == "XyZ")
        let form = try FormFields.multipart(Data(body.utf8), boundary: "XyZ")
        #expect(form["csrf"] == "token-1")
        #expect(form.files["file"]?.filename == "registre.csv")
        #expect(form.files["file"].map { String(decoding: $0.data, as: UTF8.self) } == "estate;building\r\nA;B")
        // Hostile: no boundary in the body, a part without headers, without a name: refused, never a crash.
        for bad in ["nothing here", "--XyZ\r\nno headers end", "--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--", ""] {
            #expect(throws: HubError.self, "\(bad.debugDescription)") { try FormFields.multipart(Data(bad.utf8), boundary: "XyZ") }
        }
    }

    @Test func frenchDatesTimesAndAmountsAreReadExactly() {
        #expect(FrenchInput.date("2026-12-03") == LocalDate(year: 2026, month: 12, day: 3))
        #expect(FrenchInput.date("03/12/2026") == LocalDate(year: 2026, month: 12, day: 3))
        #expect(FrenchInput.date("3/12/26") == LocalDate(year: 2026, month: 12, day: 3))
        #expect(FrenchInput.date("31/02/2026") == nil)
        #expect(FrenchInput.time("14:00")! == (14, 0) && FrenchInput.time("14h30")! == (14, 30) && FrenchInput.time("9 h")! == (9, 0))
        #expect(FrenchInput.time("24:00") == nil && FrenchInput.time("14:60") == nil && FrenchInput.time("midi") == nil)
        #expect(FrenchInput.cents("8") == Cents(800))
        #expect(FrenchInput.cents("8,5") == Cents(850))
        #expect(FrenchInput.cents("1 234,56 €") == Cents(123_456))
        #expect(FrenchInput.cents("2.00") == Cents(200))
        for bad in ["", "-2", "2,505", "abc", "99999999999", "٣"] { #expect(FrenchInput.cents(bad) == nil, "\(bad)") }
        #expect(FrenchInput.integer("12 345") == 12_345)
        #expect(FrenchInput.integer("9999999999999") == nil && FrenchInput.integer("12a") == nil)
        #expect(FrenchInput.wattHours(kWh: "22,5") == 22_500 && FrenchInput.wattHours(kWh: "0,001") == 1 && FrenchInput.wattHours(kWh: "1,0001") == nil)
        #expect(FrenchInput.monday(of: LocalDate(year: 2026, month: 12, day: 3)!) == LocalDate(year: 2026, month: 11, day: 30))
        // The spring change of hour: 2:30 does not exist on 29 March 2026 in Paris.
        #expect(FrenchInput.instant(LocalDate(year: 2026, month: 3, day: 29)!, (2, 30), zone: .paris) == nil)
    }

    @Test func pagesEscapeWhatPeopleTyped() {
        var form = HTML.Form(values: ["name": "<script>alert(1)</script>\"'"])
        form.errors["name"] = "<b>non</b>"
        let html = HTML.input("name", label: "Nom", form: form)
        #expect(!html.contains("<script>") && !html.contains("<b>"))
        #expect(html.contains("aria-invalid=\"true\"") && html.contains("name-error"))
    }
}

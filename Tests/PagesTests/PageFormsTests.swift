import Foundation
import HTTPTypes
import HubCore
import HubTestSupport
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
@testable import HubApp

/// Staff forms that only a router test reaches cheaply: the registry file sent as a browser sends
/// it (multipart), its first error shown by line and column with nothing applied.
@Suite struct PageFormsTests {
    func upload(_ browser: inout PageClient, csv: String, csrf: String) async throws -> PageClient.Answer {
        let boundary = "----hubtest\(UInt32.random(in: 0...UInt32.max))"
        var body = "--\(boundary)\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n\(csrf)\r\n"
        body += "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"registre.csv\"\r\nContent-Type: text/csv\r\n\r\n\(csv)\r\n"
        body += "--\(boundary)--\r\n"
        var headers: HTTPFields = [.contentType: "multipart/form-data; boundary=\(boundary)"]
        headers[.cookie] = browser.cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")
        return try await browser.client.execute(uri: "/registre", method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
            PageClient.Answer(status: response.status, headers: response.headers, body: String(buffer: response.body))
        }
    }

    @Test func theRegistryUploadShowsTheFirstErrorByLineAndColumnAndChangesNothing() async throws {
        let fixture = try await PagesFixture()
        try await fixture.application().test(.router) { client in
            var staff = PageClient(client)
            try await staff.login("staff")
            let csrf = try await staff.send(.get, "/registre").csrf ?? ""
            let bad = "estate;building;dwelling;device;kind;format;since\nOutreau;OUT-C;OUT-C-01;m-31;meter;canonical;2026-01-01\nOutreau;OUT-C;OUT-C-02;m-32;meter;canonical;le 3 mars\n"
            let refused = try await upload(&staff, csv: bad, csrf: csrf)
            #expect(refused.status == .unprocessableContent)
            #expect(refused.body.contains("Ligne 3, colonne « since »") && refused.body.contains("Rien n&#39;a été changé"), "\(refused.body)")
            // Nothing of the file was applied: OUT-C-01, on the good line, is not there.
            #expect(try await staff.send(.get, "/economies?logement=OUT-C-01").status == .notFound)
            let good = "estate;building;dwelling;device;kind;format;since\nOutreau;OUT-C;OUT-C-01;m-31;meter;canonical;2026-01-01\n"
            let imported = try await upload(&staff, csv: good, csrf: csrf)
            #expect(imported.status == .ok && imported.body.contains("Registre importé"), "\(imported.body)")
            #expect(try await staff.send(.get, "/economies?logement=OUT-C-01").status == .ok)
            // Without the session's token, the file is not even read.
            let forged = try await upload(&staff, csv: good, csrf: "forged")
            #expect(forged.status == .forbidden)
        }
    }
}

import EnergyCore
import Foundation
import HubCore
import HubPages
import Shared
import Testing

/// The staff's page of refused messages: what a person sees of a payload the quarantine cut
/// (issue 14, defect 4) and of a hostile one.
@Suite struct QuarantinePageTests {
    let receivedAt = Instant.parseRFC3339("2026-11-27T09:13:00Z")!

    @Test func aCutPayloadSaysHowLargeItWasAndAWholeOneDoesNot() {
        let cut = QuarantineEntry(id: 1, receivedAt: receivedAt, topic: "meters/box-7/reading", payload: Array("<script>alert(1)</script>".utf8),
                                  payloadSize: 261_120, payloadSHA256: String(repeating: "a", count: 64), reason: .malformedPayload, detail: "truncated JSON")
        let whole = QuarantineEntry(id: 2, receivedAt: receivedAt, topic: "meters/box-7/reading", payload: Array("{oops".utf8),
                                    reason: .malformedPayload, detail: "truncated JSON")
        let html = StaffPages.quarantine([cut, whole], zone: .paris, nextAfter: nil)
        #expect(html.components(separatedBy: "seul le début est gardé").count == 2, "only the cut one says so")
        #expect(html.contains("message de 261\u{202F}120 octets") || html.contains("message de 261 120 octets") || html.contains("message de 261\u{A0}120 octets"), "\(html)")
        #expect(!html.contains("<script>"), "the payload is shown as text")
        #expect(whole.payloadSize == 5 && !whole.payloadIsTruncated)
    }
}

import Foundation
import HubTestSupport
import Testing

/// The samples the tests replay are a copy of the team's shared samples: when the shared folder is
/// next to this checkout, the copy must be identical.
@Test func theSampleFixturesMatchTheSharedSamples() throws {
    let shared = TestSupport.sharedSamplesDirectory
    guard FileManager.default.fileExists(atPath: shared.path) else { return }
    let names = try FileManager.default.contentsOfDirectory(atPath: shared.path).filter { $0.hasSuffix(".jsonl") }.sorted()
    #expect(!names.isEmpty)
    for name in names {
        let original = try Data(contentsOf: shared.appendingPathComponent(name))
        let copy = try? Data(contentsOf: TestSupport.samplesDirectory.appendingPathComponent(name))
        #expect(copy == original, "Tests/Fixtures/mqtt/\(name) differs from ../shared/samples/mqtt/\(name): copy it again")
    }
}

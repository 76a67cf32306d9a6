import Foundation
import HubTestSupport
import Testing

/// The samples the tests replay are a copy of the team's shared samples, which sit next to every
/// checkout (CI lays `shared/` beside its clone): the copy must be identical, and a missing shared
/// folder is a failure, not a pass.
@Test func theSampleFixturesMatchTheSharedSamples() throws {
    let shared = TestSupport.sharedSamplesDirectory
    try #require(FileManager.default.fileExists(atPath: shared.path), "\(shared.path) is missing: the fixtures are compared with the team's shared samples")
    let names = try FileManager.default.contentsOfDirectory(atPath: shared.path).filter { $0.hasSuffix(".jsonl") }.sorted()
    #expect(!names.isEmpty)
    for name in names {
        let original = try Data(contentsOf: shared.appendingPathComponent(name))
        let copy = try? Data(contentsOf: TestSupport.samplesDirectory.appendingPathComponent(name))
        #expect(copy == original, "Tests/Fixtures/mqtt/\(name) differs from ../shared/samples/mqtt/\(name): copy it again")
    }
}

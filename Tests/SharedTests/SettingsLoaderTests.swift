import Foundation
import HubCore
import Shared
import Testing

/// A settings shape like the hub's: sections of non-optional properties, each with a default.
struct ExampleSettings: Codable, Equatable {
    struct Server: Codable, Equatable {
        var host = "127.0.0.1"
        var port = 8080
        var verbose = false
    }

    struct Limits: Codable, Equatable {
        var maxBatch = 1000
        var fee = Cents(200)
        var topics = ["meters/+/reading"]
        var nested = Nested()
    }

    struct Nested: Codable, Equatable {
        var depth = 3
        var synchronous = HubDatabase.Synchronous.full
    }

    var server = Server()
    var limits = Limits()
    var name = "hub"
}

@Suite struct SettingsLoaderTests {
    func load(_ json: String) throws -> ExampleSettings {
        try SettingsLoader.load(ExampleSettings.self, defaults: ExampleSettings(), json: Data(json.utf8), source: "test.json")
    }

    /// The configuration error's message, or nil when loading succeeded.
    func failure(_ json: String) -> String? {
        do {
            _ = try load(json)
            return nil
        } catch let error as HubError {
            #expect(error.kind == .configuration, "\(error)")
            #expect(error.exitCode == 78)
            return error.message
        } catch {
            Issue.record("not a HubError: \(error)")
            return "\(error)"
        }
    }

    @Test func anEmptyObjectGivesTheDefaults() throws {
        #expect(try load("{}") == ExampleSettings())
    }

    @Test func overlaysOnlyWhatTheFileSays() throws {
        let settings = try load(#"{"server": {"port": 9090}, "limits": {"nested": {"synchronous": "normal"}, "topics": ["a/+", "b/+"]}}"#)
        var expected = ExampleSettings()
        expected.server.port = 9090
        expected.limits.nested.synchronous = .normal
        expected.limits.topics = ["a/+", "b/+"]
        #expect(settings == expected, "host, verbose, maxBatch, fee, depth and name keep their defaults")
    }

    @Test func overlaysOnOtherDefaults() throws {
        var defaults = ExampleSettings()
        defaults.server.host = "0.0.0.0"
        defaults.name = "flag"
        let settings = try SettingsLoader.load(ExampleSettings.self, defaults: defaults, json: Data(#"{"server": {"verbose": true}}"#.utf8), source: "x")
        #expect(settings.server.host == "0.0.0.0" && settings.name == "flag" && settings.server.verbose)
    }

    @Test func anUnknownKeyIsRejectedWithItsPath() {
        let top = failure(#"{"sever": {"port": 1}}"#)
        #expect(top?.contains("unknown setting sever") == true, "\(top ?? "loaded")")
        #expect(top?.contains("test.json") == true)
        #expect(top?.contains("limits, name, server") == true, "it lists what is known there: \(top ?? "")")
        let nested = failure(#"{"limits": {"nested": {"dept": 4}}}"#)
        #expect(nested?.contains("unknown setting limits.nested.dept") == true, "\(nested ?? "loaded")")
        #expect(nested?.contains("depth, synchronous") == true)
        let second = failure(#"{"server": {"port": 1, "prot": 2}}"#)
        #expect(second?.contains("server.prot") == true, "\(second ?? "loaded")")
    }

    @Test func aWrongTypeIsReportedWithItsPath() {
        for (json, path) in [(#"{"server": {"port": "8080"}}"#, "server.port"),
                             (#"{"server": {"port": 80.5}}"#, "server.port"),
                             (#"{"server": {"host": 5}}"#, "server.host"),
                             (#"{"server": {"verbose": "yes"}}"#, "server.verbose"),
                             (#"{"limits": {"nested": {"synchronous": "sometimes"}}}"#, "limits.nested.synchronous"),
                             (#"{"limits": {"topics": "a/+"}}"#, "limits.topics"),
                             (#"{"limits": {"fee": "2,00"}}"#, "limits.fee"),
                             (#"{"server": {"port": null}}"#, "server.port")] {
            let message = failure(json)
            #expect(message?.contains("setting \(path) is invalid") == true, "\(json): \(message ?? "loaded")")
        }
    }

    @Test func aNumberThatDoesNotFitItsTypeNamesItsSetting() {
        // Foundation's decoder loses the key path of these and calls the JSON invalid; it is valid.
        for (json, path) in [(#"{"server": {"host": "h", "port": 80.5}}"#, "server.port"),
                             (#"{"name": "x", "limits": {"maxBatch": 1e30}}"#, "limits.maxBatch"),
                             (#"{"limits": {"topics": ["a/+"], "nested": {"depth": 3.25}}}"#, "limits.nested.depth"),
                             (#"{"limits": {"fee": 2.5}}"#, "limits.fee")] {
            let message = failure(json)
            #expect(message?.contains("setting \(path) is invalid") == true, "\(json): \(message ?? "loaded")")
            #expect(message?.contains("not valid JSON") == false, "\(json): \(message ?? "loaded")")
        }
    }

    @Test func aSectionMustBeAnObject() {
        let message = failure(#"{"server": 8080}"#)
        #expect(message?.contains("setting server must be an object") == true, "\(message ?? "loaded")")
        let top = failure(#"[1, 2]"#)
        #expect(top?.contains("(top level) must be an object") == true, "\(top ?? "loaded")")
    }

    @Test func invalidJSONIsReported() {
        let message = failure(#"{"server": {"port": 8080"#)
        #expect(message?.contains("test.json is not valid JSON") == true, "\(message ?? "loaded")")
        #expect(failure("") != nil)
    }

    @Test func aFileIsReadFromDisk() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("settings-\(UUID().uuidString).json")
        try Data(#"{"name": "from-file"}"#.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(try SettingsLoader.load(ExampleSettings.self, defaults: ExampleSettings(), file: file.path).name == "from-file")
        #expect(throws: HubError.configuration("cannot read the settings file /nonexistent/settings.json")) {
            try SettingsLoader.load(ExampleSettings.self, defaults: ExampleSettings(), file: "/nonexistent/settings.json")
        }
    }
}

import Foundation

/// Loads settings: built-in defaults, overlaid by a JSON file (`--config FILE`), overlaid by flags.
/// Every key of the file must be a known setting, so a typo is an error, not a silent default.
public enum SettingsLoader {
    /// Overlays the JSON object in `data` on `defaults`. Keys unknown to `T` are rejected with their path.
    public static func load<T: Codable>(_ type: T.Type, defaults: T, json data: Data, source: String) throws -> T {
        let defaultsObject = try JSONSerialization.jsonObject(with: HubJSON.encoder.encode(defaults))
        let overlay: Any
        do {
            overlay = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw HubError.configuration("\(source) is not valid JSON: \(error.localizedDescription)")
        }
        let merged = try merge(defaultsObject, overlay, path: "", source: source)
        do {
            return try JSONDecoder().decode(T.self, from: JSONSerialization.data(withJSONObject: merged))
        } catch let error as DecodingError {
            let (field, message) = HubJSON.describe(error)
            if field == nil, let culprit = firstInvalidSetting(type, defaults: defaultsObject, overlay: overlay) {
                throw HubError.configuration("\(source): setting \(culprit) is invalid: the value does not fit its type (a whole number expected, or out of range)")
            }
            throw HubError.configuration("\(source): setting \(field ?? "?") is invalid: \(message)")
        }
    }

    /// Foundation's decoder drops the key path of a number that does not fit its type (80.5 or
    /// 1e30 for an Int) and calls the JSON invalid: find that setting by overlaying one value at a time.
    static func firstInvalidSetting<T: Codable>(_ type: T.Type, defaults: Any, overlay: Any) -> String? {
        func leaves(_ value: Any, _ path: [String]) -> [[String]] {
            guard let object = value as? [String: Any] else { return [path] }
            return object.keys.sorted().flatMap { leaves(object[$0]!, path + [$0]) }
        }
        func value(_ object: Any, at path: ArraySlice<String>) -> Any {
            guard let key = path.first, let object = object as? [String: Any], let child = object[key] else { return object }
            return value(child, at: path.dropFirst())
        }
        func single(_ path: ArraySlice<String>, _ leaf: Any) -> Any {
            guard let key = path.first else { return leaf }
            return [key: single(path.dropFirst(), leaf)]
        }
        for path in leaves(overlay, []) where !path.isEmpty {
            guard let merged = try? merge(defaults, single(path[...], value(overlay, at: path[...])), path: "", source: ""),
                  let data = try? JSONSerialization.data(withJSONObject: merged)
            else { continue }
            if (try? JSONDecoder().decode(T.self, from: data)) == nil { return path.joined(separator: ".") }
        }
        return nil
    }

    /// Reads a settings file from disk and overlays it on `defaults`.
    public static func load<T: Codable>(_ type: T.Type, defaults: T, file path: String) throws -> T {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw HubError.configuration("cannot read the settings file \(path)")
        }
        return try load(type, defaults: defaults, json: data, source: path)
    }

    static func merge(_ base: Any, _ overlay: Any, path: String, source: String) throws -> Any {
        guard let baseObject = base as? [String: Any] else { return overlay }
        guard let overlayObject = overlay as? [String: Any] else {
            throw HubError.configuration("\(source): setting \(path.isEmpty ? "(top level)" : path) must be an object")
        }
        var result = baseObject
        for (key, value) in overlayObject {
            let childPath = path.isEmpty ? key : path + "." + key
            guard let existing = baseObject[key] else {
                throw HubError.configuration("\(source): unknown setting \(childPath) (known here: \(baseObject.keys.sorted().joined(separator: ", ")))")
            }
            result[key] = try merge(existing, value, path: childPath, source: source)
        }
        return result
    }
}

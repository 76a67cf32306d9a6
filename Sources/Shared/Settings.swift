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
            let (field, message) = JSONErrorMiddleware<HubRequestContext>.describe(error)
            throw HubError.configuration("\(source): setting \(field ?? "?") is invalid: \(message)")
        }
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

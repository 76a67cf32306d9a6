import Foundation

/// The project's JSON conventions: snake_case keys spelled out in `CodingKeys`, sorted for stable output.
public enum HubJSON {
    public static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// The field a decoding error names (a dotted path) and a sentence saying what is wrong.
    public static func describe(_ error: DecodingError) -> (String?, String) {
        func path(_ codingPath: [any CodingKey]) -> String? {
            codingPath.isEmpty ? nil : codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            return (path(context.codingPath + [key]), "missing field \(key.stringValue)")
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return (path(context.codingPath), "wrong type: \(context.debugDescription)")
        case .dataCorrupted(let context):
            return (path(context.codingPath), context.codingPath.isEmpty ? "the body is not valid JSON" : context.debugDescription)
        @unknown default:
            return (nil, "invalid body")
        }
    }
}

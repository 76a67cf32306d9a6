import Foundation
import HubCore

/// The fields of an HTML form as the browser sends them (`application/x-www-form-urlencoded`, or
/// `multipart/form-data` for a file), read with bounds: a hostile body gets a 400 naming the
/// problem, never a crash.
public struct FormFields: Sendable, Equatable {
    /// A file sent with the form.
    public struct File: Sendable, Equatable {
        public var filename: String
        public var data: Data
    }

    public private(set) var values: [String: [String]] = [:]
    public private(set) var files: [String: File] = [:]

    public static let maxFields = 5_000

    public init(values: [String: [String]] = [:], files: [String: File] = [:]) {
        self.values = values
        self.files = files
    }

    /// The first value of a field, trimmed; nil when absent or blank.
    public subscript(_ name: String) -> String? {
        guard let value = values[name]?.first?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else { return nil }
        return value
    }

    /// Every value of a field (checkboxes), in the order sent.
    public func all(_ name: String) -> [String] { values[name] ?? [] }

    /// Each field's first value as typed, for showing a form back with its errors.
    public var firstValues: [String: String] { values.compactMapValues(\.first) }

    mutating func add(_ name: String, _ value: String) throws {
        guard !value.unicodeScalars.contains("\u{0}"), !name.unicodeScalars.contains("\u{0}") else {
            throw HubError.badRequest(field: name, code: "control_character", "the form field \(name) holds a NUL character")
        }
        guard values.count < Self.maxFields || values[name] != nil else { throw HubError.badRequest(field: nil, code: "too_many_fields", "the form has too many fields") }
        values[name, default: []].append(value)
    }

    /// `a=1&b=x+y%21`.
    public static func urlEncoded(_ body: Data) throws -> FormFields {
        var fields = FormFields()
        guard let text = String(data: body, encoding: .utf8) else { throw HubError.badRequest(field: nil, code: "invalid_body", "the form is not UTF-8") }
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ part: Substring) throws -> String {
                guard let decoded = part.replacingOccurrences(of: "+", with: " ").removingPercentEncoding else {
                    throw HubError.badRequest(field: nil, code: "invalid_body", "the form holds a malformed %-escape")
                }
                return decoded
            }
            let name = try decode(parts[0])
            try fields.add(name, parts.count > 1 ? try decode(parts[1]) : "")
        }
        return fields
    }

    /// The boundary of a `multipart/form-data; boundary=...` content type.
    public static func boundary(contentType: String) -> String? {
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if pair.count == 2, pair[0].lowercased() == "boundary" {
                let value = pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                return value.isEmpty || value.count > 200 ? nil : value
            }
        }
        return nil
    }

    /// Parts separated by `--boundary`, each with a `Content-Disposition: form-data; name=...`.
    public static func multipart(_ body: Data, boundary: String) throws -> FormFields {
        let bytes = [UInt8](body)
        let delimiter = Array("--\(boundary)".utf8)
        var fields = FormFields()
        var positions: [Int] = []
        var index = 0
        while let found = find(delimiter, in: bytes, from: index) {
            positions.append(found)
            index = found + delimiter.count
            guard positions.count <= maxFields else { throw HubError.badRequest(field: nil, code: "too_many_fields", "the form has too many parts") }
        }
        guard positions.count >= 2 else { throw HubError.badRequest(field: nil, code: "invalid_body", "the form's parts are not delimited by its boundary") }
        for (start, end) in zip(positions, positions.dropFirst()) {
            var partStart = start + delimiter.count
            // Each delimiter line ends with CRLF; the part's content ends with the CRLF before the next delimiter.
            guard partStart + 2 <= end, bytes[partStart] == 13, bytes[partStart + 1] == 10 else { continue }
            partStart += 2
            var partEnd = end
            if partEnd - 2 >= partStart, bytes[partEnd - 2] == 13, bytes[partEnd - 1] == 10 { partEnd -= 2 }
            guard let headerEnd = find([13, 10, 13, 10], in: bytes, from: partStart), headerEnd <= partEnd else {
                throw HubError.badRequest(field: nil, code: "invalid_body", "a part of the form has no headers")
            }
            let headers = String(decoding: bytes[partStart..<headerEnd], as: UTF8.self)
            let content = Data(bytes[(headerEnd + 4)..<max(headerEnd + 4, partEnd)])
            var name: String?
            var filename: String?
            for line in headers.components(separatedBy: "\r\n") where line.lowercased().hasPrefix("content-disposition:") {
                name = parameter("name", in: line)
                filename = parameter("filename", in: line)
            }
            guard let name else { throw HubError.badRequest(field: nil, code: "invalid_body", "a part of the form has no name") }
            if let filename {
                fields.files[name] = File(filename: filename, data: content)
            } else {
                try fields.add(name, String(decoding: content, as: UTF8.self))
            }
        }
        return fields
    }

    static func parameter(_ key: String, in line: String) -> String? {
        for piece in line.split(separator: ";").dropFirst() {
            let pair = piece.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if pair.count == 2, pair[0].lowercased() == key {
                return pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            }
        }
        return nil
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
        let first = needle[0]
        var index = start
        while index <= haystack.count - needle.count {
            if haystack[index] == first && haystack[index..<(index + needle.count)].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }
}

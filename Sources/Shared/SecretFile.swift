import Foundation
import HubCore

/// A secret kept in a file of its own (a password), never in the settings: its first line.
public enum SecretFile {
    /// The first line of `path`; an error naming `setting` when the file cannot be read or that
    /// line is empty. `what` names the secret in the message ("the MQTT password").
    public static func firstLine(of path: String, what: String, setting: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw HubError.configuration("cannot read \(what) file \(path) (setting \(setting))")
        }
        // "\r\n" is one Character in Swift, and isNewline covers it.
        let first = String(decoding: data, as: UTF8.self).split(maxSplits: 1, omittingEmptySubsequences: false, whereSeparator: \.isNewline).first.map(String.init) ?? ""
        guard !first.isEmpty else {
            throw HubError.configuration("\(what) file \(path) is empty: its first line must be the password (setting \(setting))")
        }
        return first
    }
}

/// An error a user can cause or fix. It carries what HTTP (status, JSON body naming the field) and
/// the CLI (message, exit code) need to explain it; nothing is half-written when one is thrown.
public struct HubError: Error, Sendable, CustomStringConvertible, Equatable {
    /// What kind of problem this is; decides the HTTP status and the CLI exit code.
    public enum Kind: String, Sendable, Equatable {
        case badRequest
        case unauthorized
        case forbidden
        case notFound
        case conflict
        case unprocessable
        case configuration
        case unavailable
    }

    public var kind: Kind
    /// A stable machine-readable code, e.g. `invalid_date`.
    public var code: String
    /// The input field at fault, when there is one (`from`, `dwelling`, line 12 column `since`...).
    public var field: String?
    /// A plain sentence for a person.
    public var message: String

    public init(_ kind: Kind, code: String, field: String? = nil, message: String) {
        self.kind = kind
        self.code = code
        self.field = field
        self.message = message
    }

    public var description: String {
        if let field { return "\(message) (field: \(field))" }
        return message
    }

    public static func badRequest(field: String?, code: String = "invalid_field", _ message: String) -> HubError {
        HubError(.badRequest, code: code, field: field, message: message)
    }

    public static func notFound(field: String?, _ message: String) -> HubError {
        HubError(.notFound, code: "not_found", field: field, message: message)
    }

    public static func forbidden(_ message: String = "your role does not allow this", field: String? = nil) -> HubError {
        HubError(.forbidden, code: "forbidden", field: field, message: message)
    }

    public static func unauthorized(_ message: String) -> HubError {
        HubError(.unauthorized, code: "unauthorized", message: message)
    }

    public static func conflict(field: String? = nil, code: String = "conflict", _ message: String) -> HubError {
        HubError(.conflict, code: code, field: field, message: message)
    }

    public static func configuration(_ message: String) -> HubError {
        HubError(.configuration, code: "configuration", message: message)
    }

    /// The process exit status the CLI uses for this error (EX_USAGE, EX_DATAERR, EX_CONFIG...).
    public var exitCode: Int32 {
        switch kind {
        case .badRequest, .unprocessable: return 65
        case .notFound: return 66
        case .conflict: return 75
        case .unauthorized, .forbidden: return 77
        case .configuration: return 78
        case .unavailable: return 69
        }
    }
}

import Foundation

/// What a user may see and do. One role per user.
public enum Role: String, Sendable, Codable, CaseIterable {
    /// Landlord staff: see everything, export statements.
    case staff
    /// A resident association: its estate's totals, members, bookings and cash.
    case association
    /// A volunteer driver: assignments and trip logs.
    case driver
    /// A resident: their own dwelling only.
    case resident
}

/// The authenticated caller of an API route.
public struct Identity: Sendable, Hashable, Codable {
    public var name: String
    public var role: Role
    /// Set for residents: the only dwelling whose detail they may see.
    public var dwelling: String?
    /// Set for association users: the estate they act for.
    public var estate: String?

    public init(name: String, role: Role, dwelling: String? = nil, estate: String? = nil) {
        self.name = name
        self.role = role
        self.dwelling = dwelling
        self.estate = estate
    }

    /// Throws 403 unless the caller has one of these roles.
    public func require(_ roles: Role...) throws {
        guard roles.contains(role) else {
            throw HubError.forbidden("this needs the role \(roles.map(\.rawValue).joined(separator: " or ")); you are \(role.rawValue)")
        }
    }
}

/// What is known of a token without its secret.
public struct TokenInfo: Sendable, Equatable {
    public var label: String
    public var createdAt: Instant
    public var expiresAt: Instant?
    public var revokedAt: Instant?

    public init(label: String, createdAt: Instant, expiresAt: Instant?, revokedAt: Instant?) {
        self.label = label
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }

    /// live, expired or revoked, at this instant.
    public func state(at now: Instant) -> String {
        if revokedAt != nil { return "revoked" }
        if let expiresAt, expiresAt <= now { return "expired" }
        return "live"
    }
}

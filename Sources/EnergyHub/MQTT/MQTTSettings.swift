import Foundation
import EnergyCore
import HubCore
import Shared

/// How the hub reaches the MQTT broker. Every property has a default (the settings loader overlays a
/// JSON file on `MQTTSettings()`, so every key must exist in the defaults). Secrets are never stored
/// here: the password comes from `HUB_MQTT_PASSWORD` or from the first line of `passwordFile`.
public struct MQTTSettings: Codable, Sendable, Equatable {
    /// Broker host name or address.
    public var host: String
    /// Broker TCP port (1883 plain, usually 8883 with TLS).
    public var port: Int
    /// The MQTT client id. The hub subscribes with a persistent session under this id, so it must be
    /// stable across restarts and unique among the broker's clients.
    public var clientId: String
    /// User name; empty means none (anonymous).
    public var username: String
    /// A file whose first line is the password; empty means none. `HUB_MQTT_PASSWORD` overrides it.
    public var passwordFile: String
    /// MQTT keepalive in seconds (5...65535).
    public var keepaliveSeconds: Int
    /// Shortest wait before reconnecting after an error, in seconds (at least 1).
    public var reconnectMinSeconds: Int
    /// Longest wait between reconnection attempts, in seconds (exponential backoff up to this)
    /// while the broker does not answer.
    public var reconnectMaxSeconds: Int
    /// Once the broker's port accepts a TCP connection again (probed four times a second while
    /// waiting), the wait before reconnecting is cut to a random time up to this (full jitter, so
    /// several hubs do not all come back at the same instant). 0 reconnects at once.
    public var reconnectOnceAnsweringMaxMilliseconds: Int
    /// TLS; off while `tls.caFile` is empty.
    public var tls: MQTTTLSSettings

    public init() {
        host = "127.0.0.1"
        port = 1883
        clientId = "community-hub"
        username = ""
        passwordFile = ""
        keepaliveSeconds = 30
        reconnectMinSeconds = 1
        reconnectMaxSeconds = 30
        reconnectOnceAnsweringMaxMilliseconds = 1000
        tls = MQTTTLSSettings()
    }

    enum CodingKeys: String, CodingKey {
        case host
        case port
        case clientId
        case username
        case passwordFile
        case keepaliveSeconds
        case reconnectMinSeconds
        case reconnectMaxSeconds
        case reconnectOnceAnsweringMaxMilliseconds
        case tls
    }

    /// The environment variable that overrides `passwordFile`.
    public static let passwordEnvironmentVariable = "HUB_MQTT_PASSWORD"

    /// The password to log in with: `HUB_MQTT_PASSWORD` when set and not empty, else the first line of
    /// `passwordFile` when one is named, else nil (no password).
    /// Throws `HubError.configuration` when the password file cannot be read or its first line is empty.
    public func resolvedPassword(environment: [String: String]) throws -> String? {
        if let fromEnvironment = environment[Self.passwordEnvironmentVariable], !fromEnvironment.isEmpty {
            return fromEnvironment
        }
        guard !passwordFile.isEmpty else { return nil }
        return try SecretFile.firstLine(of: passwordFile, what: "the MQTT password", setting: "passwordFile")
    }
}

/// TLS towards the broker. With `caFile` empty the connection is plain TCP.
public struct MQTTTLSSettings: Codable, Sendable, Equatable {
    /// PEM file of the certificate authority that signed the broker's certificate; empty = no TLS.
    public var caFile: String
    /// PEM client certificate, for brokers that require client certificates; empty = none.
    public var certFile: String
    /// PEM private key of `certFile` (unencrypted); empty = none.
    public var keyFile: String
    /// Skip checking that the broker's certificate names the host. Only for tests: it allows
    /// man-in-the-middle attacks.
    public var insecure: Bool

    public init() {
        caFile = ""
        certFile = ""
        keyFile = ""
        insecure = false
    }

    enum CodingKeys: String, CodingKey {
        case caFile
        case certFile
        case keyFile
        case insecure
    }

    /// Whether TLS is on.
    public var isEnabled: Bool { !caFile.isEmpty }
}

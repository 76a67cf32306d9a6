import EnergyHub
import Foundation
import Shared

/// All settings of the hub, one section per part; loaded from defaults, then `--config FILE`
/// (JSON), then command-line flags. Secrets are not settings: the MQTT password comes from the
/// environment (HUB_MQTT_PASSWORD) or a file named by `mqtt.passwordFile`.
struct HubSettings: Codable, Sendable, Equatable {
    struct DatabaseSection: Codable, Sendable, Equatable {
        var path = "community-hub.sqlite"
        var synchronous = HubDatabase.Synchronous.full
    }

    struct HTTPSection: Codable, Sendable, Equatable {
        var host = "127.0.0.1"
        var port = 8080
    }

    struct AuthSection: Codable, Sendable, Equatable {
        var bcryptCost = 12
        /// How long a token from `POST /api/v1/sessions` stays valid.
        var sessionHours = 12
    }

    var database = DatabaseSection()
    var mqtt = MQTTSettings()
    var http = HTTPSection()
    var ingest = IngestSettings()
    var auth = AuthSection()
    var energy = EnergySettings()

    init() {}

    static func load(file: String?) throws -> HubSettings {
        guard let file else { return HubSettings() }
        return try SettingsLoader.load(HubSettings.self, defaults: HubSettings(), file: file)
    }
}

/// The schema of the whole hub, in order: shared registry and users, then each module's tables.
enum HubSchema {
    static let all: [HubDatabase.Schema] = [SharedSchema.register, EnergySchema.register, SavingsSchema.register]

    static func open(_ settings: HubSettings) throws -> HubDatabase {
        try HubDatabase.open(path: settings.database.path, schemas: all, synchronous: settings.database.synchronous)
    }
}

import CarShare
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

        enum CodingKeys: String, CodingKey {
            case bcryptCost, sessionHours
        }

        init() {}

        // Checked when read: bcrypt traps outside 4...31, and a session of 0 hours (or of more hours
        // than an instant can hold) would hand out tokens that never work or crash the login.
        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            bcryptCost = try container.decode(Int.self, forKey: .bcryptCost)
            sessionHours = try container.decode(Int.self, forKey: .sessionHours)
            guard (4...31).contains(bcryptCost) else {
                throw DecodingError.dataCorruptedError(forKey: .bcryptCost, in: container, debugDescription: "must be between 4 and 31")
            }
            guard (1...8784).contains(sessionHours) else {
                throw DecodingError.dataCorruptedError(forKey: .sessionHours, in: container, debugDescription: "must be between 1 and 8784 (a year)")
            }
        }
    }

    var database = DatabaseSection()
    var mqtt = MQTTSettings()
    var http = HTTPSection()
    var ingest = IngestSettings()
    var auth = AuthSection()
    var energy = EnergySettings()
    var carshare = CarShareSettings()

    init() {}

    static func load(file: String?) throws -> HubSettings {
        guard let file else { return HubSettings() }
        let settings = try SettingsLoader.load(HubSettings.self, defaults: HubSettings(), file: file)
        _ = try settings.carshare.validated()
        return settings
    }
}

/// The schema of the whole hub, in order: shared registry and users, then each module's tables.
enum HubSchema {
    static let all: [HubDatabase.Schema] = [SharedSchema.register, EnergySchema.register, SavingsSchema.register, CarShareSchema.register]

    static func open(_ settings: HubSettings) throws -> HubDatabase {
        try HubDatabase.open(path: settings.database.path, schemas: all, synchronous: settings.database.synchronous)
    }
}

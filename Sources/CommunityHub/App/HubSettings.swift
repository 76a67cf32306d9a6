import CarShare
import CarShareCore
import EnergyCore
import EnergyHub
import Foundation
import HubCore
import Shared

/// All settings of the hub, one section per part; loaded from defaults, then `--config FILE`
/// (JSON), then command-line flags. Secrets are not settings: the MQTT password comes from the
/// environment (HUB_MQTT_PASSWORD) or a file named by `mqtt.passwordFile`.
package struct HubSettings: Codable, Sendable, Equatable {
    package struct DatabaseSection: Codable, Sendable, Equatable {
        package var path = "community-hub.sqlite"
        package var synchronous = HubDatabase.Synchronous.full
        /// At start, SQLite's quick check of the whole file runs before ingest and the server, for
        /// at most this many seconds (then the hub starts and says so; `community-hub db check`
        /// finishes the job). 0 skips it.
        package var startupCheckSeconds = 60
        /// The server database: `postgres://USER@HOST:PORT/DATABASE[?sslmode=...]` selects
        /// PostgreSQL 15 for every store (several hub processes may share it); empty keeps the
        /// SQLite file `path`, the embedded default. The password is best kept out of the URL:
        /// `HUB_DATABASE_PASSWORD` or the first line of `passwordFile`.
        package var url = ""
        /// A file whose first line is the PostgreSQL password; `HUB_DATABASE_PASSWORD` overrides it.
        package var passwordFile = ""
        /// Connections this process keeps open to PostgreSQL for HTTP requests (the ingest writer
        /// and the background lease have one more each).
        package var maxConnections = 20

        enum CodingKeys: String, CodingKey {
            case path, synchronous, startupCheckSeconds, url, passwordFile, maxConnections
        }

        package init() {}

        package init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            path = try container.decode(String.self, forKey: .path)
            synchronous = try container.decode(HubDatabase.Synchronous.self, forKey: .synchronous)
            startupCheckSeconds = try container.decode(Int.self, forKey: .startupCheckSeconds)
            url = try container.decodeIfPresent(String.self, forKey: .url) ?? ""
            passwordFile = try container.decodeIfPresent(String.self, forKey: .passwordFile) ?? ""
            maxConnections = try container.decodeIfPresent(Int.self, forKey: .maxConnections) ?? 20
            guard (1...1000).contains(maxConnections) else {
                throw DecodingError.dataCorruptedError(forKey: .maxConnections, in: container, debugDescription: "must be from 1 to 1000")
            }
        }

        /// The environment variable that overrides `passwordFile` (and a password in `url`).
        package static let passwordEnvironmentVariable = "HUB_DATABASE_PASSWORD"

        /// The PostgreSQL server named by `url` with its password resolved, or nil for SQLite.
        package func postgres(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> PostgresLocation? {
            guard !url.isEmpty else { return nil }
            var location = try PostgresLocation(url: url)
            if let password = environment[Self.passwordEnvironmentVariable], !password.isEmpty {
                location.password = password
            } else if !passwordFile.isEmpty {
                location.password = try SecretFile.firstLine(of: passwordFile, what: "the PostgreSQL password", setting: "database.passwordFile")
            }
            return location
        }
    }

    package struct HTTPSection: Codable, Sendable, Equatable {
        package var host = "127.0.0.1"
        package var port = 8080
        /// Requests under `/api` served at once; the next ones wait their turn.
        package var maxConcurrentRequests = 16
        /// Requests waiting for a turn; one more is answered 503 at once.
        package var maxQueuedRequests = 1024
        /// How long a request waits for its turn before a 503 with `Retry-After`.
        package var queueTimeoutMilliseconds = 2000
        /// On SIGTERM, how long requests in flight may finish; then they are cut, the cut ones
        /// are logged, and the process exits (ingest drains whatever happens).
        package var shutdownGraceSeconds = 5
        /// Marks the pages' session cookie `Secure`: set it when the hub is reached through TLS
        /// (a request with `X-Forwarded-Proto: https` from the TLS proxy gets it anyway).
        package var secureCookies = false
        /// The address people type to reach the pages, printed on their access sheet
        /// (default: `http://host:port`).
        package var publicAddress = ""
        /// The hub is reached through a TLS proxy on the same machine (deploy/nginx): a request from
        /// loopback is taken to come from the address in its `X-Forwarded-For` (for slowing failed
        /// logins per address) and over TLS when `X-Forwarded-Proto: https`.
        package var behindProxy = false

        package func validated() throws -> HTTPSection {
            guard (1...4096).contains(maxConcurrentRequests) else { throw HubError.configuration("http.maxConcurrentRequests must be from 1 to 4096") }
            guard (0...100_000).contains(maxQueuedRequests) else { throw HubError.configuration("http.maxQueuedRequests must be from 0 to 100000") }
            guard (1...600_000).contains(queueTimeoutMilliseconds) else { throw HubError.configuration("http.queueTimeoutMilliseconds must be from 1 to 600000") }
            guard (1...3600).contains(shutdownGraceSeconds) else { throw HubError.configuration("http.shutdownGraceSeconds must be from 1 to 3600") }
            return self
        }
    }

    package struct AuthSection: Codable, Sendable, Equatable {
        package var bcryptCost = 12
        /// How long a token from `POST /api/v1/sessions` stays valid.
        package var sessionHours = 12
        /// How long a browser session lasts on a device its owner marked as their own.
        package var rememberDays = 30

        enum CodingKeys: String, CodingKey {
            case bcryptCost, sessionHours, rememberDays
        }

        package init() {}

        // Checked when read: bcrypt traps outside 4...31, and a session of 0 hours (or of more hours
        // than an instant can hold) would hand out tokens that never work or crash the login.
        package init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            bcryptCost = try container.decode(Int.self, forKey: .bcryptCost)
            sessionHours = try container.decode(Int.self, forKey: .sessionHours)
            rememberDays = try container.decode(Int.self, forKey: .rememberDays)
            guard (1...366).contains(rememberDays) else {
                throw DecodingError.dataCorruptedError(forKey: .rememberDays, in: container, debugDescription: "must be between 1 and 366")
            }
            guard (4...31).contains(bcryptCost) else {
                throw DecodingError.dataCorruptedError(forKey: .bcryptCost, in: container, debugDescription: "must be between 4 and 31")
            }
            guard (1...8784).contains(sessionHours) else {
                throw DecodingError.dataCorruptedError(forKey: .sessionHours, in: container, debugDescription: "must be between 1 and 8784 (a year)")
            }
        }
    }

    /// The hub's one time zone: days and months of every report, local times of devices and
    /// bookings. The sections' `timeZone` keys must agree with it.
    package var timeZone = "Europe/Paris"
    package var database = DatabaseSection()
    package var mqtt = MQTTSettings()
    package var http = HTTPSection()
    package var ingest = IngestSettings()
    package var auth = AuthSection()
    package var energy = EnergySettings()
    package var carshare = CarShareSettings()
    package var statements = StatementsSection()

    /// Who the monthly statements come from.
    package struct StatementsSection: Codable, Sendable, Equatable {
        package var landlord = "Pas-de-Calais Habitat"
        /// The association of each estate, named on its households' statements.
        package var associations: [EstateAssociation] = []

        package struct EstateAssociation: Codable, Sendable, Equatable {
            package var estate: String
            package var name: String
        }

        package func association(of estate: String) -> String? { associations.first { $0.estate == estate }?.name }
    }

    package init() {}

    package static func load(file: String?) throws -> HubSettings {
        guard let file else { return HubSettings() }
        let settings = try SettingsLoader.load(HubSettings.self, defaults: HubSettings(), file: file)
        _ = try settings.configuration()
        return settings
    }

    /// Every section checked once, into the one configuration the hub runs with; an invalid or
    /// inconsistent setting is an error naming it.
    package func configuration() throws -> HubConfiguration {
        let zone: LocalTimeZone
        do {
            zone = try LocalTimeZone(identifier: timeZone)
        } catch {
            throw HubError.configuration("setting timeZone is \(timeZone), which is not a time zone (e.g. Europe/Paris)")
        }
        for (name, value) in [("ingest.timeZone", ingest.timeZone), ("energy.timeZone", energy.timeZone), ("carshare.timeZone", carshare.timeZone)] where value != timeZone {
            throw HubError.configuration("setting \(name) is \(value) but timeZone is \(timeZone): the hub has one time zone, set timeZone (and leave \(name) out)")
        }
        _ = try http.validated()
        _ = try ingest.validated()
        _ = try database.postgres()
        return HubConfiguration(settings: self, zone: zone, energy: try energy.validated(), carshare: try carshare.validated())
    }
}

/// The settings once checked: what the hub runs with, with its one time zone.
package struct HubConfiguration: Sendable {
    package let settings: HubSettings
    package let zone: LocalTimeZone
    package let energy: EnergyConfiguration
    package let carshare: CarShareSettings
}

/// The schema of the whole hub, in order: shared registry and users, then each module's tables.
package enum HubSchema {
    package static let all: [HubDatabase.Schema] = [SharedSchema.register, EnergySchema.register, SavingsSchema.register, CarShareSchema.register,
                                                    SQLiteStatementArchive.register]

    /// The SQLite file; an error naming the setting when `database.url` names a PostgreSQL server
    /// (a command that works on the file only must not open a file beside the server's data).
    package static func open(_ settings: HubSettings) throws -> HubDatabase {
        guard settings.database.url.isEmpty else {
            throw HubError.configuration("this command works on the SQLite file only, and database.url (or --database-url) names a PostgreSQL server")
        }
        return try HubDatabase.open(path: settings.database.path, schemas: all, synchronous: settings.database.synchronous)
    }
}

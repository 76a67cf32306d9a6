import CarShare
import CarShareCore
import EnergyCore
import EnergyHub
import Foundation
import HubCore
import Logging
import Shared

/// The stores the hub serves from, all on one engine: the SQLite file (the embedded default) or
/// PostgreSQL (`database.url`). Routes, pages and exports see only the store protocols.
package struct HubStores: Sendable {
    package var users: any UserStore
    package var readings: any ReadingStore
    package var carShare: any CarShareStore
    package var archive: any StatementArchive
    /// Failed logins (`LoginGuard`): this process's memory beside the file, shared on PostgreSQL.
    package var loginFailures: any LoginFailureCounts
    /// The registry and the energy figures, or why the energy settings cannot serve them.
    package var energy: Result<EnergyStores, HubError>
    /// Whether the database takes writes now (for `/readyz`).
    package var readiness: @Sendable () async -> DatabaseReadiness

    package struct EnergyStores: Sendable {
        package var registry: any RegistryStore
        package var figures: any EnergyFigureStore
    }

    /// What `/readyz` says of the database.
    package enum DatabaseReadiness: Sendable, Equatable {
        case writable
        case notWritable
        /// The SQLite file was found damaged (issue 14, defect 14).
        case corrupt(String)
    }

    /// Every store over one SQLite file.
    package static func sqlite(_ database: HubDatabase, settings: HubSettings) -> HubStores {
        HubStores(users: SQLiteUserStore(database: database, bcryptCost: UInt8(clamping: settings.auth.bcryptCost)),
                  readings: SQLiteReadingStore(database: database),
                  carShare: SQLiteCarShareStore(database: database, settings: settings.carshare),
                  archive: SQLiteStatementArchive(database: database),
                  loginFailures: MemoryLoginFailures(),
                  energy: energy(settings) { EnergyStores(registry: SQLiteRegistryStore(database: database, configuration: $0),
                                                          figures: EnergyReports(database: database, configuration: $0)) },
                  readiness: {
                      if let problem = database.health.corruption { return .corrupt(problem) }
                      return await database.isWritable() ? .writable : .notWritable
                  })
    }

    /// Every store over one PostgreSQL server: the pool for requests, `readers` for the energy
    /// figures (their SQL is the SQLite store's, run through blocking sessions).
    package static func postgres(_ postgres: HubPostgres, readers: PostgresReaders, settings: HubSettings) -> HubStores {
        HubStores(users: PostgresUserStore(database: postgres, bcryptCost: UInt8(clamping: settings.auth.bcryptCost)),
                  readings: PostgresReadingStore(postgres: postgres),
                  carShare: PostgresCarShareStore(database: postgres, settings: settings.carshare),
                  archive: PostgresStatementArchive(database: postgres),
                  loginFailures: PostgresLoginFailures(database: postgres),
                  energy: energy(settings) { EnergyStores(registry: PostgresRegistryStore(database: postgres, configuration: $0),
                                                          figures: EnergyReports(reader: readers, configuration: $0)) },
                  readiness: { await postgres.isWritable() ? .writable : .notWritable })
    }

    /// The whole hub's schema on PostgreSQL, in the order of SQLite's `HubSchema.all`.
    package static let postgresSchema: [PostgresMigration] = SharedSchema.postgres + EnergySchema.postgres + SavingsSchema.postgres
        + CarShareSchema.postgres + PostgresStatementArchive.postgres

    private static func energy(_ settings: HubSettings, _ make: (EnergyConfiguration) -> EnergyStores) -> Result<EnergyStores, HubError> {
        do {
            return .success(make(try settings.energy.validated()))
        } catch let error as HubError {
            return .failure(error)
        } catch {
            return .failure(HubError.configuration("\(error)"))
        }
    }
}

import Foundation
import HubTestSupport
import HubCore
import Shared
import Testing
@testable import EnergyCore
@testable import EnergyHub

/// One registry through both engines: the same tables, row for row, and the same savings queue.
@Suite struct RegistryEnginesTests {
    /// A scenario of 1,200 dwellings: the import, a re-import that moves boxes, ends installations
    /// and changes tariffs and shares, then keys, coefficients and an export.
    static func scenario(_ registry: RegistryHarness) async throws -> [RegistryImportSummary] {
        let staff = Identity.testStaff
        let first = try await registry.importCSV(generatedRegistry(dwellings: 1_200))
        var changed = generatedRegistry(dwellings: 1_200).split(separator: "\n").map(String.init)
        for index in stride(from: 11, to: changed.count, by: 97) {
            var cells = changed[index].split(separator: ";", omittingEmptySubsequences: false).map(String.init)
            guard cells[4] == "meter" else { continue }
            switch index % 3 {
            case 0: cells[7] = "edf-bleu-hphc 23:00-07:00"
            case 1: cells[8] = "0.125"
            default: cells[9] = "2026-03-01"
            }
            changed[index] = cells.joined(separator: ";")
        }
        // box-3 moves to a new dwelling of its building, box-60 to one of another building, from the same date.
        changed = changed.map {
            $0.replacingOccurrences(of: "E0-B0-003;box-3;", with: "E0-B0-900;box-3;").replacingOccurrences(of: "E0;E0-B1;E0-B1-010;box-60;", with: "E0;E0-B0;E0-B0-910;box-60;")
        }
        let second = try await registry.importCSV(changed.joined(separator: "\n"))
        try await registry.store.setAllocationKey(building: "E0-B1", key: .staticShares, since: LocalDate(parsing: "2025-06-01")!, by: staff)
        try await registry.store.setTariff(dwelling: "E1-B2-007", cell: "edf-bleu-base", since: LocalDate(parsing: "2025-07-01")!, by: staff)
        // Replaces the tariff the file gave from the same date (an update, not an insert, for the triggers).
        try await registry.store.setTariff(dwelling: "E0-B0-000", cell: "edf-bleu-hphc 22:26-06:26", since: LocalDate(parsing: "2025-01-01")!, by: staff)
        _ = try await registry.store.importCoefficients(csv: Data("""
            building;dwelling;slot_start;coefficient
            E0-B0;E0-B0-001;2026-06-01T10:00:00Z;0.5
            E0-B0;E0-B0-002;2026-06-01T10:00:00Z;0.5
            E0-B1;E0-B1-001;2026-06-02T10:00:00Z;1
            """.utf8), by: staff)
        try await registry.store.recordExport(month: "2026-05", buildings: [], by: staff, at: Instant(millisecondsSince1970: 1_780_000_000_000))
        return [first, second]
    }

    @Test func oneRegistryGivesTheSameTablesOnBothEngines() async throws {
        let (sqliteSummaries, sqlite) = try await RegistryHarness.with(.sqlite) { registry in (try await Self.scenario(registry), try await registry.dump()) }
        let (postgresSummaries, postgres) = try await RegistryHarness.with(.postgres) { registry in (try await Self.scenario(registry), try await registry.dump()) }
        #expect(sqliteSummaries[0].dwellingsAdded == 1_200)
        #expect(sqliteSummaries[1].installationsUpdated > 0 && sqliteSummaries[1].tariffsChanged > 0 && sqliteSummaries[1].sharesChanged > 0)
        #expect(postgresSummaries == sqliteSummaries)
        #expect(sqlite.count == postgres.count)
        for table in RegistryHarness.tables.map(\.0) {
            let left = sqlite.filter { $0.hasPrefix(table + " ") }, right = postgres.filter { $0.hasPrefix(table + " ") }
            #expect(!left.isEmpty, "\(table) is exercised")
            #expect(left == right, "\(table): \(Set(left).symmetricDifference(right).sorted().prefix(5))")
        }
    }

    /// Two imports at once adding the same estate and building: both succeed (PostgreSQL aborts one
    /// serializable transaction, which runs again and finds the other's rows), as SQLite's one writer would.
    @Test func concurrentImportsBothApplyOnPostgres() async throws {
        try await RegistryHarness.with(.postgres) { registry in
            let header = "estate;building;dwelling;device;kind;format;since\n"
            try await withThrowingTaskGroup(of: RegistryImportSummary.self) { group in
                for file in 0..<4 {
                    group.addTask {
                        try await registry.importCSV(header + (0..<20).map { "E;B;D\(file)-\($0);box-\(file)-\($0);meter;canonical;2025-01-01" }.joined(separator: "\n"))
                    }
                }
                var estates = 0, dwellings = 0
                for try await summary in group { estates += summary.estatesAdded; dwellings += summary.dwellingsAdded }
                #expect(estates == 1 && dwellings == 80)
            }
            #expect(try await registry.texts("SELECT id FROM building") == ["B"])
            #expect(try await registry.texts("SELECT building_id FROM savings_dirty").count == 80)
        }
    }

    /// Prints how long a 10,000-dwelling registry takes to import on each engine (no assertion on time).
    @Test(.enabled(if: ProcessInfo.processInfo.environment["HUB_BENCH_TESTS"] == "1", "a benchmark: set HUB_BENCH_TESTS=1 and run it alone")) func importTimeOfTenThousandDwellings() async throws {
        let csv = generatedRegistry(dwellings: 10_000)
        for backend in RegistryBackend.allCases {
            try await RegistryHarness.with(backend) { registry in
                let clock = ContinuousClock()
                var summary = RegistryImportSummary()
                let first = try await clock.measure { summary = try await registry.importCSV(csv) }
                let again = try await clock.measure { _ = try await registry.importCSV(csv) }
                #expect(summary.dwellingsAdded == 10_000)
                print("registry import, \(backend.rawValue): \(summary.rows) rows, first import \(first), re-import (nothing changed) \(again)")
            }
        }
    }
}

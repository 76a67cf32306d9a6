import Foundation
import GRDB
import HubTestSupport
import HubCore
import Shared
import Testing
@testable import EnergyCore
@testable import EnergyHub

@Suite struct RegistryImportTests {
    func dump(_ database: HubDatabase) throws -> [String] {
        try database.pool.read { db in
            var lines: [String] = []
            for table in ["estate", "building", "dwelling", "device", "device_installation", "dwelling_tariff", "dwelling_share"] {
                for row in try Row.fetchAll(db, sql: "SELECT * FROM \(table)").map({ "\(table) \($0)" }).sorted() { lines.append(row) }
            }
            return lines
        }
    }

    @Test func importsTheSampleRegistryAndReimportChangesNothing() throws {
        let database = try TestSupport.database()
        let importer = RegistryImporter(database: database)
        let first = try importer.importCSV(Data(TestSupport.samplesRegistryCSV.utf8))
        #expect(first.rows == 6)
        #expect(first.estatesAdded == 1)
        #expect(first.buildingsAdded == 1)
        #expect(first.dwellingsAdded == 4)
        #expect(first.devicesAdded == 6)
        #expect(first.installationsAdded == 6)
        #expect(first.tariffsChanged == 1)
        let before = try dump(database)
        let second = try importer.importCSV(Data(TestSupport.samplesRegistryCSV.utf8))
        #expect(!second.changed)
        #expect(second.description.contains("nothing changed"))
        #expect(try dump(database) == before)
    }

    /// The registry store asks `AccessPolicy`: only staff change the registry and the savings
    /// set-up; anyone else gets 403 and nothing is written.
    @Test func onlyStaffChangeTheRegistryThroughItsStore() async throws {
        let database = try TestSupport.database(extraSchemas: [SavingsSchema.register])
        let registry: any RegistryStore = SQLiteRegistryStore(database: database, configuration: try EnergySettings().validated())
        let csv = Data(TestSupport.samplesRegistryCSV.utf8)
        for caller in [Identity(name: "asso", role: .association, estate: "Outreau"), Identity(name: "res", role: .resident, dwelling: "OUT-A-01"),
                       Identity(name: "drv", role: .driver)] {
            await #expect(throws: HubError.forbidden("the registry and the savings set-up are kept by the landlord's staff", field: "role")) {
                _ = try await registry.importRegistry(csv: csv, by: caller)
            }
            await #expect(throws: HubError.self) { try await registry.recordExport(month: "2026-06", buildings: [], by: caller, at: Instant(millisecondsSince1970: 0)) }
        }
        #expect(try dump(database).isEmpty)
        let summary = try await registry.importRegistry(csv: csv, by: .testStaff)
        #expect(summary.rows == 6 && summary.devicesAdded == 6)
        let building = try await database.read { db in try String.fetchOne(db, sql: "SELECT id FROM building")! }
        await #expect(throws: HubError.self) {
            try await registry.setAllocationKey(building: building, key: .staticShares, since: LocalDate(parsing: "2026-06-01")!, by: Identity(name: "asso", role: .association, estate: "Outreau"))
        }
        try await registry.setAllocationKey(building: building, key: .staticShares, since: LocalDate(parsing: "2026-06-01")!, by: .testStaff)
        #expect(try await database.read { db in try String.fetchOne(db, sql: "SELECT allocation_key FROM building_allocation_key") } == "static")
    }

    @Test func acceptsBOMCRLFQuotesAndCommaDecimals() throws {
        let database = try TestSupport.database()
        let csv = "\u{FEFF}Estate;Building;Dwelling;Device;Kind;Format;Since;Tariff;Share\r\n"
            + "\"Outreau; Les Tilleuls\";B1;\"D \"\"12\"\"\";box-1;meter;canonical;2025-03-01;edf-bleu-base;0,25\r\n"
            + ";;;;;;;;\r\n"
            + "\"Outreau; Les Tilleuls\";B1;;pv-1;PV;OpenDTU;2025-03-01;;\r\n"
        let summary = try RegistryImporter(database: database).importCSV(Data(csv.utf8))
        #expect(summary.rows == 2)
        let estate = try database.pool.read { db in try String.fetchOne(db, sql: "SELECT id FROM estate") }
        #expect(estate == "Outreau; Les Tilleuls")
        let dwelling = try database.pool.read { db in try String.fetchOne(db, sql: "SELECT id FROM dwelling") }
        #expect(dwelling == "D \"12\"")
        let share = try database.pool.read { db in try String.fetchOne(db, sql: "SELECT share FROM dwelling_share") }
        #expect(share == "0.25")
    }

    func expectFailure(_ csv: String, line: Int, mentioning words: [String], database: HubDatabase? = nil) throws {
        let database = try database ?? TestSupport.database()
        let before = try dump(database)
        do {
            _ = try RegistryImporter(database: database).importCSV(Data(csv.utf8))
            Issue.record("expected the import to fail")
        } catch let error as HubError {
            #expect(error.message.contains("line \(line)"), "\(error.message)")
            for word in words { #expect(error.message.contains(word), "\(error.message) should mention \(word)") }
            #expect(error.kind == .badRequest)
        }
        #expect(try dump(database) == before, "nothing of the file may be applied")
    }

    @Test func aBadRowIsReportedWithItsLineAndNothingIsApplied() throws {
        let header = "estate;building;dwelling;device;kind;format;since\n"
        try expectFailure(header + "E;B;D1;box-1;meter;canonical;2025-01-01\nE;B;D2;box-2;meter;canonical;2025-02-30\n", line: 3, mentioning: ["since", "2025-02-30"])
        try expectFailure(header + "E;B;;box-1;meter;canonical;2025-01-01\n", line: 2, mentioning: ["dwelling", "meter"])
        try expectFailure(header + "E;B;D1;pv-1;pv;opendtu;2025-01-01\n", line: 2, mentioning: ["dwelling", "pv"])
        try expectFailure(header + "E;B;D1;box-1;gas;canonical;2025-01-01\n", line: 2, mentioning: ["kind", "meter or pv"])
        try expectFailure(header + "E;B;D1;box-1;meter;zigbee;2025-01-01\n", line: 2, mentioning: ["format"])
        try expectFailure(header + "E;B;D1;box/1;meter;canonical;2025-01-01\n", line: 2, mentioning: ["device"])
        try expectFailure(header + "E1;B;D1;box-1;meter;canonical;2025-01-01\nE2;B;D2;box-2;meter;canonical;2025-01-01\n", line: 3, mentioning: ["building B", "E1"])
        try expectFailure(header + "E;B;D1;box-1;meter;canonical;2025-01-01\nE;B;D1;box-2;meter;canonical;2025-01-01\n", line: 3, mentioning: ["D1", "2025-01-01"])
        try expectFailure(header + "E;B;D1;box-1;meter;canonical;2025-01-01\nE;B;;box-1;pv;canonical;2025-02-01\n", line: 3, mentioning: ["box-1"])
        try expectFailure("estate;building;dwelling;device;kind;format;since;share\nE;B;D1;box-1;meter;canonical;2025-01-01;1.5\n", line: 2, mentioning: ["share"])
        try expectFailure("estate;building;device;kind;format;since\nE;B;box-1;meter;canonical;2025-01-01\n", line: 1, mentioning: ["dwelling"])
        try expectFailure("estate,building,dwelling,device,kind,format,since\nE,B,D1,box-1,meter,canonical,2025-01-01\n", line: 1, mentioning: ["separated by ;"])
    }

    @Test func aRowConflictingWithTheRegistryAppliesNothing() throws {
        let database = try TestSupport.database()
        _ = try RegistryImporter(database: database).importCSV(Data("estate;building;dwelling;device;kind;format;since\nE1;B;D1;box-1;meter;canonical;2025-01-01\n".utf8))
        try expectFailure("estate;building;dwelling;device;kind;format;since\nE1;B;D9;box-9;meter;canonical;2025-01-01\nE2;B;D2;box-2;meter;canonical;2025-01-01\n",
                          line: 3, mentioning: ["building B", "E1"], database: database)
        try expectFailure("estate;building;dwelling;device;kind;format;since\nE1;B;D9;box-9;meter;canonical;2025-01-01\nE2;B;D2;box-2;meter;canonical;2025-01-01\n"
                              .replacingOccurrences(of: "E1;B;D9", with: "E2;C;D9").replacingOccurrences(of: "E2;B;D2", with: "E2;B;D2"),
                          line: 3, mentioning: ["already registered in estate E1"], database: database)
        let dwellings = try database.pool.read { db in try String.fetchAll(db, sql: "SELECT id FROM dwelling ORDER BY id") }
        #expect(dwellings == ["D1"], "line 2 was valid but must not be applied either")
    }

    @Test func aReplacedBoxKeepsTheDwellingsSeries() throws {
        let database = try TestSupport.database()
        let csv = """
            estate;building;dwelling;device;kind;format;since
            E;B;D1;box-old;meter;teleinfo;2024-05-01
            E;B;D1;box-new;meter;canonical;2025-09-15
            E;B;;pv-1;pv;opendtu;2024-05-01
            E;B;;pv-2;pv;opendtu;2025-01-01
            """
        _ = try RegistryImporter(database: database).importCSV(Data(csv.utf8))
        let periods = try database.pool.read { db in try Installations.meterPeriods(db, dwelling: "D1") }
        #expect(periods.map(\.device) == ["box-old", "box-new"])
        #expect(periods[0].until == LocalDate(parsing: "2025-09-15"))
        #expect(periods[1].until == nil)
        let pv = try database.pool.read { db in try Installations.periods(db, building: "B") }.filter { $0.kind == .pv }
        #expect(pv.allSatisfy { $0.until == nil }, "several PV devices coexist: one does not end another")
    }
}

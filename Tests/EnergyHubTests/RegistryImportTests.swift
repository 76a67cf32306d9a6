import Foundation
import HubTestSupport
import HubCore
import Shared
import Testing
@testable import EnergyCore
@testable import EnergyHub

/// The registry import and the savings set-up through `RegistryStore`, each test run against
/// both engines (`RegistryBackend`): the same file gives the same summary, the same rows and the
/// same errors on SQLite and PostgreSQL.
@Suite struct RegistryImportTests {
    static let staff = Identity.testStaff

    @Test(arguments: RegistryBackend.allCases)
    func importsTheSampleRegistryAndReimportChangesNothing(_ backend: RegistryBackend) async throws {
        try await RegistryHarness.with(backend) { registry in
            let first = try await registry.importCSV(TestSupport.samplesRegistryCSV)
            #expect(first.rows == 6)
            #expect(first.estatesAdded == 1)
            #expect(first.buildingsAdded == 1)
            #expect(first.dwellingsAdded == 4)
            #expect(first.devicesAdded == 6)
            #expect(first.installationsAdded == 6)
            #expect(first.tariffsChanged == 1)
            let before = try await registry.dump()
            let second = try await registry.importCSV(TestSupport.samplesRegistryCSV)
            #expect(!second.changed)
            #expect(second.description.contains("nothing changed"))
            #expect(try await registry.dump() == before, "a re-import queues nothing either")
        }
    }

    /// The registry store asks `AccessPolicy`: only staff change the registry and the savings
    /// set-up; anyone else gets 403 and nothing is written.
    @Test(arguments: RegistryBackend.allCases)
    func onlyStaffChangeTheRegistryThroughItsStore(_ backend: RegistryBackend) async throws {
        try await RegistryHarness.with(backend) { registry in
            let store = registry.store
            let csv = Data(TestSupport.samplesRegistryCSV.utf8)
            for caller in [Identity(name: "asso", role: .association, estate: "Outreau"), Identity(name: "res", role: .resident, dwelling: "OUT-A-01"),
                           Identity(name: "drv", role: .driver)] {
                await #expect(throws: HubError.forbidden("the registry and the savings set-up are kept by the landlord's staff", field: "role")) {
                    _ = try await store.importRegistry(csv: csv, by: caller)
                }
                await #expect(throws: HubError.self) { try await store.recordExport(month: "2026-06", buildings: [], by: caller, at: Instant(millisecondsSince1970: 0)) }
                await #expect(throws: HubError.self) { _ = try await store.importCoefficients(csv: Data(), by: caller) }
                await #expect(throws: HubError.self) { try await store.setTariff(dwelling: "OUT-A-01", cell: "edf-bleu-base", since: LocalDate(parsing: "2026-01-01")!, by: caller) }
            }
            #expect(try await registry.dump().isEmpty)
            let summary = try await store.importRegistry(csv: csv, by: Self.staff)
            #expect(summary.rows == 6 && summary.devicesAdded == 6)
            await #expect(throws: HubError.self) {
                try await store.setAllocationKey(building: "OUT-A", key: .staticShares, since: LocalDate(parsing: "2026-06-01")!,
                                                 by: Identity(name: "asso", role: .association, estate: "Outreau"))
            }
            try await store.setAllocationKey(building: "OUT-A", key: .staticShares, since: LocalDate(parsing: "2026-06-01")!, by: Self.staff)
            #expect(try await registry.texts("SELECT allocation_key FROM building_allocation_key") == ["static"])
        }
    }

    @Test(arguments: RegistryBackend.allCases)
    func dwellingsAreSeenByWhoMaySeeThem(_ backend: RegistryBackend) async throws {
        try await RegistryHarness.with(backend) { registry in
            _ = try await registry.importCSV(TestSupport.samplesRegistryCSV + "\nLe Portel;POR-1;POR-1-a;box-p;meter;canonical;2025-01-01;;\n")
            let store = registry.store
            let all = try await store.dwellings(estate: nil, by: Self.staff)
            #expect(all.map(\.dwelling) == ["POR-1-a", "OUT-A-01", "OUT-A-02", "OUT-A-03", "OUT-A-04"], "by estate, building, dwelling")
            let association = Identity(name: "asso", role: .association, estate: "Outreau")
            #expect(try await store.dwellings(estate: "Outreau", by: association).count == 4)
            await #expect(throws: HubError.self) { _ = try await store.dwellings(estate: "Le Portel", by: association) }
            await #expect(throws: HubError.self) { _ = try await store.dwellings(estate: nil, by: association) }
            let resident = Identity(name: "res", role: .resident, dwelling: "OUT-A-01")
            #expect(try await store.dwelling("OUT-A-01", by: resident) == RegistryDwelling(estate: "Outreau", building: "OUT-A", dwelling: "OUT-A-01"))
            await #expect(throws: HubError.self) { _ = try await store.dwelling("OUT-A-02", by: resident) }
            await #expect(throws: HubError.notFound(field: "dwelling", "no dwelling NOPE in the registry")) { _ = try await store.dwelling("NOPE", by: Self.staff) }
        }
    }

    @Test(arguments: RegistryBackend.allCases)
    func acceptsBOMCRLFQuotesAndCommaDecimals(_ backend: RegistryBackend) async throws {
        try await RegistryHarness.with(backend) { registry in
            let csv = "\u{FEFF}Estate;Building;Dwelling;Device;Kind;Format;Since;Tariff;Share\r\n"
                + "\"Outreau; Les Tilleuls\";B1;\"D \"\"12\"\"\";box-1;meter;canonical;2025-03-01;edf-bleu-base;0,25\r\n"
                + ";;;;;;;;\r\n"
                + "\"Outreau; Les Tilleuls\";B1;;pv-1;PV;OpenDTU;2025-03-01;;\r\n"
            let summary = try await registry.importCSV(csv)
            #expect(summary.rows == 2)
            #expect(try await registry.texts("SELECT id FROM estate") == ["Outreau; Les Tilleuls"])
            #expect(try await registry.texts("SELECT id FROM dwelling") == ["D \"12\""])
            #expect(try await registry.texts("SELECT share FROM dwelling_share") == ["0.25"])
        }
    }

    /// Imports `csv`, which must fail naming its line and these words, and checks nothing changed
    /// (the savings queue included). Returns the error, to compare engines.
    @discardableResult
    static func expectFailure(_ registry: RegistryHarness, _ csv: String, line: Int, mentioning words: [String]) async throws -> HubError? {
        let before = try await registry.dump()
        var failure: HubError?
        do {
            _ = try await registry.importCSV(csv)
            Issue.record("expected the import to fail")
        } catch let error as HubError {
            #expect(error.message.contains("line \(line)"), "\(error.message)")
            for word in words { #expect(error.message.contains(word), "\(error.message) should mention \(word)") }
            #expect(error.kind == .badRequest)
            failure = error
        }
        #expect(try await registry.dump() == before, "nothing of the file may be applied")
        return failure
    }

    static let badFiles: [(csv: String, line: Int, words: [String])] = {
        let header = "estate;building;dwelling;device;kind;format;since\n"
        return [
            (header + "E;B;D1;box-1;meter;canonical;2025-01-01\nE;B;D2;box-2;meter;canonical;2025-02-30\n", 3, ["since", "2025-02-30"]),
            (header + "E;B;;box-1;meter;canonical;2025-01-01\n", 2, ["dwelling", "meter"]),
            (header + "E;B;D1;pv-1;pv;opendtu;2025-01-01\n", 2, ["dwelling", "pv"]),
            (header + "E;B;D1;box-1;gas;canonical;2025-01-01\n", 2, ["kind", "meter or pv"]),
            (header + "E;B;D1;box-1;meter;zigbee;2025-01-01\n", 2, ["format"]),
            (header + "E;B;D1;box/1;meter;canonical;2025-01-01\n", 2, ["device"]),
            (header + "E1;B;D1;box-1;meter;canonical;2025-01-01\nE2;B;D2;box-2;meter;canonical;2025-01-01\n", 3, ["building B", "E1"]),
            (header + "E;B;D1;box-1;meter;canonical;2025-01-01\nE;B;D1;box-2;meter;canonical;2025-01-01\n", 3, ["D1", "2025-01-01"]),
            (header + "E;B;D1;box-1;meter;canonical;2025-01-01\nE;B;;box-1;pv;canonical;2025-02-01\n", 3, ["box-1"]),
            ("estate;building;dwelling;device;kind;format;since;share\nE;B;D1;box-1;meter;canonical;2025-01-01;1.5\n", 2, ["share"]),
            ("estate;building;device;kind;format;since\nE;B;box-1;meter;canonical;2025-01-01\n", 1, ["dwelling"]),
            ("estate,building,dwelling,device,kind,format,since\nE,B,D1,box-1,meter,canonical,2025-01-01\n", 1, ["separated by ;"]),
        ]
    }()

    @Test(arguments: RegistryBackend.allCases)
    func aBadRowIsReportedWithItsLineAndNothingIsApplied(_ backend: RegistryBackend) async throws {
        try await RegistryHarness.with(backend) { registry in
            for file in Self.badFiles { try await Self.expectFailure(registry, file.csv, line: file.line, mentioning: file.words) }
        }
    }

    /// Files refused once the registry holds E1;B;D1;box-1 (the first by the file's own consistency).
    static let conflicting: [(csv: String, line: Int, words: [String])] = [
        ("estate;building;dwelling;device;kind;format;since\nE1;B;D9;box-9;meter;canonical;2025-01-01\nE2;B;D2;box-2;meter;canonical;2025-01-01\n",
         3, ["building B", "E1"]),
        ("estate;building;dwelling;device;kind;format;since\nE2;C;D9;box-9;meter;canonical;2025-01-01\nE2;B;D2;box-2;meter;canonical;2025-01-01\n",
         3, ["already registered in estate E1"]),
        ("estate;building;dwelling;device;kind;format;since\nE1;B;D9;box-9;meter;canonical;2025-01-01\nE1;C;D1;box-3;meter;canonical;2025-02-01\n",
         3, ["dwelling D1 is already registered in building B"]),
        ("estate;building;dwelling;device;kind;format;since\nE1;B;D9;box-9;meter;canonical;2025-01-01\nE1;B;D2;box-1;meter;teleinfo;2025-02-01\n",
         3, ["column format", "device box-1 is already registered as a meter publishing canonical"]),
    ]

    @Test(arguments: RegistryBackend.allCases)
    func aRowConflictingWithTheRegistryAppliesNothing(_ backend: RegistryBackend) async throws {
        try await RegistryHarness.with(backend) { registry in
            _ = try await registry.importCSV("estate;building;dwelling;device;kind;format;since\nE1;B;D1;box-1;meter;canonical;2025-01-01\n")
            for (index, file) in Self.conflicting.enumerated() {
                let error = try await Self.expectFailure(registry, file.csv, line: file.line, mentioning: file.words)
                #expect(error?.code == (index == 0 ? "inconsistent_row" : "conflicts_with_registry"))
            }
            #expect(try await registry.texts("SELECT id FROM dwelling") == ["D1"], "line 2 was valid but must not be applied either")
        }
    }

    /// The same bad and conflicting files give the same HubError (kind, field, code, message) on both engines.
    @Test func bothEnginesRefuseWithTheSameErrors() async throws {
        func errors(_ backend: RegistryBackend) async throws -> [HubError?] {
            try await RegistryHarness.with(backend) { registry in
                var errors: [HubError?] = []
                for file in Self.badFiles { errors.append(try await Self.expectFailure(registry, file.csv, line: file.line, mentioning: file.words)) }
                _ = try await registry.importCSV("estate;building;dwelling;device;kind;format;since\nE1;B;D1;box-1;meter;canonical;2025-01-01\n")
                for file in Self.conflicting { errors.append(try await Self.expectFailure(registry, file.csv, line: file.line, mentioning: file.words)) }
                return errors
            }
        }
        let sqlite = try await errors(.sqlite)
        #expect(sqlite.allSatisfy { $0 != nil })
        #expect(try await errors(.postgres) == sqlite)
    }

    @Test(arguments: RegistryBackend.allCases)
    func aReplacedBoxKeepsTheDwellingsSeries(_ backend: RegistryBackend) async throws {
        try await RegistryHarness.with(backend) { registry in
            let csv = """
                estate;building;dwelling;device;kind;format;since
                E;B;D1;box-old;meter;teleinfo;2024-05-01
                E;B;D1;box-new;meter;canonical;2025-09-15
                E;B;;pv-1;pv;opendtu;2024-05-01
                E;B;;pv-2;pv;opendtu;2025-01-01
                """
            _ = try await registry.importCSV(csv)
            let old = try await registry.periods("box-old"), new = try await registry.periods("box-new")
            #expect(old.map(\.until) == [LocalDate(parsing: "2025-09-15")])
            #expect(new.map(\.until) == [nil])
            #expect(new.first?.dwelling == "D1" && new.first?.estate == "E")
            let pv = try await registry.periods("pv-1") + registry.periods("pv-2")
            #expect(pv.count == 2 && pv.allSatisfy { $0.until == nil }, "several PV devices coexist: one does not end another")
            let zone = try EnergySettings().validated().zone
            let devices = try await registry.devices(zone)
            #expect(devices.keys.sorted() == ["box-new", "box-old", "pv-1", "pv-2"])
            #expect(devices["box-new"] == DeviceInfo(id: "box-new", kind: .meter, format: .canonical, installedFrom: zone.startOfDay(LocalDate(parsing: "2025-09-15")!)))
        }
    }

    /// A device moved to another dwelling from the same date, an installation ended, a tariff and a
    /// share changed: the re-import updates them, and queues their buildings for recomputation.
    @Test(arguments: RegistryBackend.allCases)
    func reimportMovesDevicesAndChangesTariffsAndShares(_ backend: RegistryBackend) async throws {
        try await RegistryHarness.with(backend) { registry in
            let header = "estate;building;dwelling;device;kind;format;since;tariff;share;until\n"
            _ = try await registry.importCSV(header + "E;A;A1;box-1;meter;canonical;2025-01-01;edf-bleu-base;0.5;\nE;B;B1;box-2;meter;canonical;2025-01-01;;;\n")
            let queued = try await registry.texts("SELECT building_id FROM savings_dirty").count
            let summary = try await registry.importCSV(header + """
                E;B;B2;box-1;meter;canonical;2025-01-01;edf-bleu-hphc 22:26-06:26;0.25;
                E;B;B1;box-2;meter;canonical;2025-01-01;;;2025-06-01
                """)
            #expect(summary.installationsUpdated == 2 && summary.dwellingsAdded == 1 && summary.tariffsChanged == 1 && summary.sharesChanged == 1)
            #expect(try await registry.dump(["device_installation"]) == [
                "device_installation box-1|2025-01-01|∅|B|B2", "device_installation box-2|2025-01-01|2025-06-01|B|B1",
            ])
            #expect(try await registry.texts("SELECT building_id FROM savings_dirty").count > queued)
            try await registry.store.setTariff(dwelling: "B2", cell: "edf-bleu-base", since: LocalDate(parsing: "2025-03-01")!, by: Self.staff)
            try await registry.store.setAllocationKey(building: "B", key: .staticShares, since: LocalDate(parsing: "2025-03-01")!, by: Self.staff)
            try await registry.store.setAllocationKey(building: "B", key: .proRata, since: LocalDate(parsing: "2025-03-01")!, by: Self.staff)
            #expect(try await registry.dump(["building_allocation_key", "dwelling_tariff"]) == [
                "dwelling_tariff A1|2025-01-01|edf-bleu-base", "dwelling_tariff B2|2025-01-01|edf-bleu-hphc 22:26-06:26",
                "dwelling_tariff B2|2025-03-01|edf-bleu-base", "building_allocation_key B|2025-03-01|pro_rata",
            ])
            await #expect(throws: HubError.notFound(field: "building", "no building Z in the registry")) {
                try await registry.store.setAllocationKey(building: "Z", key: .proRata, since: LocalDate(parsing: "2025-03-01")!, by: Self.staff)
            }
            await #expect(throws: HubError.notFound(field: "dwelling", "no dwelling Z1 in the registry")) {
                try await registry.store.setTariff(dwelling: "Z1", cell: "edf-bleu-base", since: LocalDate(parsing: "2025-03-01")!, by: Self.staff)
            }
        }
    }

    @Test(arguments: RegistryBackend.allCases)
    func coefficientsAndExportsCheckTheRegistry(_ backend: RegistryBackend) async throws {
        try await RegistryHarness.with(backend) { registry in
            _ = try await registry.importCSV(TestSupport.samplesRegistryCSV)
            let store = registry.store
            let csv = "building;dwelling;slot_start;coefficient\nOUT-A;OUT-A-01;2026-06-01T10:00:00Z;0.5\nOUT-A;OUT-A-02;2026-06-01T10:00:00Z;0,25\nOUT-A;OUT-A-01;2026-06-01T12:00:00Z;1\n"
            #expect(try await store.importCoefficients(csv: Data(csv.utf8), by: Self.staff) == 3)
            // A slot given again replaces that slot's coefficients.
            #expect(try await store.importCoefficients(csv: Data("building;dwelling;slot_start;coefficient\nOUT-A;OUT-A-03;2026-06-01T10:00:00Z;0.1\n".utf8), by: Self.staff) == 1)
            #expect(try await registry.dump(["allocation_coefficient"]).count == 2)
            let before = try await registry.dump()
            await #expect(throws: HubError.badRequest(field: "line 2, column dwelling", code: "invalid_row", "line 2, column dwelling: no dwelling NOPE in the registry")) {
                _ = try await store.importCoefficients(csv: Data("building;dwelling;slot_start;coefficient\nOUT-A;NOPE;2026-06-01T10:00:00Z;0.1\n".utf8), by: Self.staff)
            }
            await #expect(throws: HubError.badRequest(field: "line 3, column building", code: "invalid_row", "line 3, column building: dwelling OUT-A-01 is in building OUT-A")) {
                _ = try await store.importCoefficients(csv: Data("building;dwelling;slot_start;coefficient\nOUT-A;OUT-A-01;2026-06-01T10:00:00Z;0.1\nOUT-B;OUT-A-01;2026-06-01T10:00:00Z;0.1\n".utf8), by: Self.staff)
            }
            await #expect(throws: HubError.badRequest(field: "month", code: "invalid_date", "month 2026-13 is not YYYY-MM")) {
                try await store.recordExport(month: "2026-13", buildings: [], by: Self.staff, at: Instant(millisecondsSince1970: 1))
            }
            await #expect(throws: HubError.notFound(field: "building", "no building OUT-Z in the registry")) {
                try await store.recordExport(month: "2026-06", buildings: ["OUT-A", "OUT-Z"], by: Self.staff, at: Instant(millisecondsSince1970: 1))
            }
            #expect(try await registry.dump() == before, "a refused change writes nothing")
            try await store.recordExport(month: "2026-06", buildings: [], by: Self.staff, at: Instant(millisecondsSince1970: 1_000))
            try await store.recordExport(month: "2026-06", buildings: ["OUT-A"], by: Self.staff, at: Instant(millisecondsSince1970: 2_000))
            #expect(try await registry.dump(["energy_month_export"]) == ["energy_month_export OUT-A|2026-06|2000|∅"])
        }
    }
}

import EnergyCore
import Foundation
import GRDB
import HubCore
import Shared

/// What a building's monthly statement needs beyond its figures: how its households shared the
/// production (a distribution, never a household) and which of its devices fell silent or had
/// messages refused. Each answer is one async read; `estateOf(building:)` decides access with the
/// lookup, as for the building's figures.
extension EnergyReports {
    /// Always as an association sees it (the statements it is for are the association's, whoever
    /// prints them): quartiles rounded, no extreme, withheld below the minimum group on any day.
    public func householdShares(_ building: String, from: LocalDate, to: LocalDate, for identity: Identity? = nil) async throws -> HouseholdShares {
        try EnergyReports.checkPeriod(from: from, to: to)
        let minimum = configuration.minimumHouseholds
        return try await database.read { db in
            _ = try estateOf(building: building, db, for: identity)
            // Every household a meter served during the period counts, with 0 when it received
            // nothing (a silent meter is part of the picture, not left out of it).
            var figures: [String: (allocated: Int64, savings: Int64)] = [:]
            for period in try Installations.periods(db, building: building) where period.kind == .meter && overlaps(period, from: from, to: to) {
                if let dwelling = period.dwelling { figures[dwelling] = (0, 0) }
            }
            for row in try Row.fetchAll(db, sql: """
                SELECT dwelling_id, SUM(allocated_wh), SUM(savings_nano) FROM dwelling_day
                WHERE building_id = ? AND day >= ? AND day <= ? GROUP BY dwelling_id
                """, arguments: [building, from.description, to.description]) {
                figures[row[0]] = (row[1], row[2])
            }
            // Each household's saving is rounded to the cent once, as its own statement shows it.
            let households = Array(figures.values)
            let counts = try householdsPerDay(db, estate: nil, building: building, from: from, to: to)[building] ?? [:]
            return HouseholdShares(allocatedWh: households.map(\.allocated), savingsCents: households.map { NanoEuros($0.savings).cents.value },
                                   minimum: minimum, disclosable: HouseholdPrivacy.disclosable(householdsPerDay: counts.values, minimum: minimum))
        }
    }

    public func deviceHealth(_ building: String, from: LocalDate, to: LocalDate, now: Instant, for identity: Identity? = nil) async throws -> [DeviceHealth] {
        try EnergyReports.checkPeriod(from: from, to: to)
        let zone = configuration.zone
        let start = zone.startOfDay(from)
        // A month not over yet is looked at up to now: tomorrow's silence is not a silence.
        let end = min(zone.startOfDay(to.advanced(by: 1)), now)
        return try await database.read { db in
            _ = try estateOf(building: building, db, for: identity)
            // The windows in which each device served this building during the period.
            var served: [String: (kind: DeviceKind, windows: [(from: Instant, to: Instant)])] = [:]
            for period in try Installations.periods(db, building: building) {
                let interval = period.interval(in: zone)
                let windowStart = max(start, interval.from)
                let windowEnd = min(end, interval.to ?? end)
                guard windowStart < windowEnd else { continue }
                served[period.device, default: (period.kind, [])].windows.append((windowStart, windowEnd))
            }
            return try served.keys.sorted().map { device in
                let (kind, windows) = served[device]!
                var silences: [DeviceHealth.Silence] = []
                var refused: [QuarantineReason: Int] = [:]
                for window in windows {
                    let range: StatementArguments = [device, window.from.millisecondsSince1970, window.to.millisecondsSince1970]
                    // The device's readings, not the `reading` view: it would scan the whole journal per device.
                    let readings = ReadingJournal.deviceInstantsSQL
                    let bounds = try Row.fetchOne(db, sql: "SELECT MIN(instant), MAX(instant) FROM \(readings)", arguments: range)
                    // Only the long gaps leave the database: a month of half-hourly readings is 1,500 rows a device.
                    let gaps = try Row.fetchAll(db, sql: """
                        SELECT previous, instant FROM (
                            SELECT instant, LAG(instant) OVER (ORDER BY instant) AS previous FROM \(readings)
                        ) WHERE previous IS NOT NULL AND instant - previous >= ?4 ORDER BY instant
                        """, arguments: range + [EnergyReportRules.silenceMilliseconds]).map {
                        (after: Instant(millisecondsSince1970: $0[0]), before: Instant(millisecondsSince1970: $0[1]))
                    }
                    silences += EnergyReportRules.silences(from: window.from, to: window.to,
                                                           first: (bounds?[0] as Int64?).map(Instant.init(millisecondsSince1970:)),
                                                           last: (bounds?[1] as Int64?).map(Instant.init(millisecondsSince1970:)), gaps: gaps)
                    for row in try Row.fetchAll(db, sql: """
                        SELECT reason, COUNT(*) FROM quarantine WHERE device_id = ? AND received_at >= ? AND received_at < ? AND released_at IS NULL GROUP BY reason
                        """, arguments: range) {
                        // A reason this version does not know is still a refusal: counted as a storage error rather than dropped.
                        refused[QuarantineReason(rawValue: row[0]) ?? .storageError, default: 0] += row[1] as Int
                    }
                }
                return DeviceHealth(device: device, kind: kind, silences: silences,
                                    refused: refused.keys.sorted { $0.rawValue < $1.rawValue }.map { DeviceHealth.Refused(reason: $0, count: refused[$0]!) })
            }
        }
    }
}

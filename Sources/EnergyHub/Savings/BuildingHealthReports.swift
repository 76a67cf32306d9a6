import EnergyCore
import Foundation
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
        return try await reader.readSQL { db in
            _ = try estateOf(building: building, db, for: identity)
            // Every household a meter served during the period counts, with 0 when it received
            // nothing (a silent meter is part of the picture, not left out of it).
            var figures: [String: (allocated: Int64, savings: Int64)] = [:]
            for period in try Installations.periods(db, building: building) where period.kind == .meter && overlaps(period, from: from, to: to) {
                if let dwelling = period.dwelling { figures[dwelling] = (0, 0) }
            }
            for row in try db.rows("""
                SELECT dwelling_id, CAST(SUM(allocated_wh) AS BIGINT), CAST(SUM(savings_nano) AS BIGINT) FROM dwelling_day
                WHERE building_id = ? AND day >= ? AND day <= ? GROUP BY dwelling_id
                """, building, from.description, to.description) {
                figures[try row[0].string] = (try row[1].int64, try row[2].int64)
            }
            // Each household's saving is rounded to the cent once, as its own statement shows it.
            let households = figures.keys.sorted().map { figures[$0]! }
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
        return try await reader.readSQL { db in
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
                    let range: [any SQLArgument] = [device, window.from.millisecondsSince1970, window.to.millisecondsSince1970]
                    // The device's readings: on SQLite through the journal's list of devices, not the
                    // `reading` view, which would scan the whole journal per device.
                    let readings = db.dialect == .sqlite ? ReadingJournal.deviceInstantsSQL
                        : "(SELECT instant FROM reading WHERE device_id = ?1 AND instant >= ?2 AND instant < ?3)"
                    let bounds = try db.rows("SELECT MIN(instant), MAX(instant) FROM \(readings) AS device_readings", range).first
                    // Only the long gaps leave the database: a month of half-hourly readings is 1,500 rows a device.
                    let gaps = try db.rows("""
                        SELECT previous, instant FROM (
                            SELECT instant, LAG(instant) OVER (ORDER BY instant) AS previous FROM \(readings) AS device_readings
                        ) AS steps WHERE previous IS NOT NULL AND instant - previous >= ?4 ORDER BY instant
                        """, range + [EnergyReportRules.silenceMilliseconds]).map {
                        (after: Instant(millisecondsSince1970: try $0[0].int64), before: Instant(millisecondsSince1970: try $0[1].int64))
                    }
                    silences += EnergyReportRules.silences(from: window.from, to: window.to,
                                                           first: try bounds?[0].optionalInt64.map(Instant.init(millisecondsSince1970:)),
                                                           last: try bounds?[1].optionalInt64.map(Instant.init(millisecondsSince1970:)), gaps: gaps)
                    for row in try db.rows("""
                        SELECT reason, COUNT(*) FROM quarantine WHERE device_id = ? AND received_at >= ? AND received_at < ? AND released_at IS NULL GROUP BY reason
                        """, range) {
                        // A reason this version does not know is still a refusal: counted as a storage error rather than dropped.
                        refused[QuarantineReason(rawValue: try row[0].string) ?? .storageError, default: 0] += Int(try row[1].int64)
                    }
                }
                return DeviceHealth(device: device, kind: kind, silences: silences,
                                    refused: refused.keys.sorted { $0.rawValue < $1.rawValue }.map { DeviceHealth.Refused(reason: $0, count: refused[$0]!) })
            }
        }
    }
}

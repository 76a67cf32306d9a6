import EnergyCore
import Foundation
import HubCore

/// What a building's month comes to (issue 10), for its estate's association and the landlord's
/// staff: the building's figures as the API serves them (`BuildingEnergyReport`: production, the
/// share its households used, the surplus sold and its value, the rates, day by day), how the
/// households shared it (a distribution, never a household, withheld for small groups), and the
/// quality of the month's data and devices in words. Rendered as JSON and a printable A4 page.
public struct BuildingStatement: Codable, Sendable, Equatable {
    public var month: String
    public var landlord: String
    public var association: String?
    public var estate: String
    public var building: String
    public var energy: BuildingEnergyReport
    public var householdShares: HouseholdShares
    /// Devices (meters and solar production) that served the building during the month.
    public var devicesInService: Int
    /// Those that fell silent for a day or more, or had messages refused.
    public var troubledDevices: [DeviceHealth]
    /// The data quality in words: production days estimated or missing, days the sharing rule could
    /// not be applied, silent devices, refused messages.
    public var quality: [String]

    enum CodingKeys: String, CodingKey {
        case month, landlord, association, estate, building, energy, quality
        case householdShares = "household_shares", devicesInService = "devices_in_service", troubledDevices = "troubled_devices"
    }

    /// `zone` is the one the month's days are counted in (Europe/Paris): it dates the silences.
    public init(month: String, landlord: String, association: String?, energy: BuildingEnergyReport, householdShares: HouseholdShares,
                deviceHealth: [DeviceHealth], zone: LocalTimeZone) {
        self.month = month
        self.landlord = landlord
        self.association = association
        self.estate = energy.estate
        self.building = energy.building
        self.energy = energy
        self.householdShares = householdShares
        self.devicesInService = deviceHealth.count
        self.troubledDevices = deviceHealth.filter(\.needsAttention)
        let monthEnd = zone.startOfDay(energy.to.advanced(by: 1))
        self.quality = BuildingStatementRules.productionSentences(energy.days)
            + BuildingStatementRules.problemSentences(energy.problems)
            + troubledDevices.flatMap { BuildingStatementRules.deviceSentences($0, monthStart: zone.startOfDay(energy.from), monthEnd: monthEnd, zone: zone) }
    }
}

/// The words of a building statement: pure functions over its figures.
public enum BuildingStatementRules {
    /// Runs of days whose production was estimated or not known, as sentences.
    public static func productionSentences(_ days: [BuildingEnergyReport.Day]) -> [String] {
        enum State: Equatable { case complete, estimated, missing }
        func state(_ day: BuildingEnergyReport.Day) -> State {
            if day.slots.missing > 0 { return .missing }
            return day.slots.estimated > 0 ? .estimated : .complete
        }
        var sentences: [String] = []
        var index = 0
        while index < days.count {
            let current = state(days[index])
            var end = index
            while end + 1 < days.count && state(days[end + 1]) == current { end += 1 }
            let span = French.span(days[index].date, days[end].date)
            let count = end - index + 1
            switch current {
            case .complete: break
            case .estimated:
                sentences.append("\(French.count(count, "jour estimé", "jours estimés")) : la production des panneaux n'a pas été transmise en entier \(span) ; les heures manquantes sont estimées.")
            case .missing:
                sentences.append("\(French.count(count, "jour", "jours")) sans relevé complet de la production \(span) : ces heures ne sont pas comptées.")
            }
            index = end + 1
        }
        return sentences
    }

    /// The engine's problems ("2026-10-03: static shares of building …") as sentences, one per day.
    public static func problemSentences(_ problems: [String]) -> [String] {
        var days: [LocalDate] = []
        for problem in problems {
            guard let day = LocalDate(parsing: problem.prefix(10)), !days.contains(day) else { continue }
            days.append(day)
        }
        return days.map { "Le \(French.dayAndMonth($0)), la règle de partage entre les logements n'a pas pu être appliquée : rien n'a été partagé ce jour-là (le détail est donné au personnel du bailleur)." }
    }

    /// What went wrong with a device, in words: its silences and its refused messages.
    public static func deviceSentences(_ device: DeviceHealth, monthStart: Instant, monthEnd: Instant, zone: LocalTimeZone) -> [String] {
        let name = "Le boîtier \(device.device) (\(French.deviceKind(device.kind)))"
        var sentences: [String] = []
        for silence in device.silences {
            let fromStart = silence.from <= monthStart, toEnd = silence.to >= monthEnd
            let from = fromStart ? "du début du mois" : "du \(French.dayAndMonth(zone.localDate(of: silence.from))) à \(French.time(silence.from, zone: zone))"
            let to = toEnd ? "à la fin du mois" : "au \(French.dayAndMonth(zone.localDate(of: silence.to))) à \(French.time(silence.to, zone: zone))"
            // Whole days, rounded down: "21 jours" for 21 days and 11 hours.
            let days = silence.to.milliseconds(since: silence.from) / EnergyReportRules.silenceMilliseconds
            sentences.append("\(name) n'a rien transmis \(fromStart && toEnd ? "de tout le mois" : from + " " + to) (\(French.count(Int(days), "jour", "jours"))).")
        }
        if !device.refused.isEmpty {
            let reasons = device.refused.map { "\(French.quarantineReason($0.reason)) : \($0.count)" }.joined(separator: ", ")
            sentences.append("\(name) : \(French.count(device.refusedCount, "message refusé", "messages refusés")) (\(reasons)).")
        }
        return sentences
    }
}

extension French {
    /// "le 3 octobre", "du 3 au 5 octobre", "du 30 septembre au 2 octobre".
    static func span(_ first: LocalDate, _ last: LocalDate) -> String {
        if first == last { return "le \(dayAndMonth(first))" }
        return "du \(first.month == last.month ? dayOfMonth(first) : dayAndMonth(first)) au \(dayAndMonth(last))"
    }

    /// "14 h 00", the time of an instant in `zone`.
    public static func time(_ instant: Instant, zone: LocalTimeZone) -> String {
        let local = zone.localDateTime(of: instant)
        return "\(local.hour) h " + (local.minute < 10 ? "0" : "") + "\(local.minute)"
    }

    /// "65 %": a part of a whole in whole percent, rounded half up; nil when the whole is 0.
    public static func percent(_ part: Int64, of whole: Int64) -> String? {
        guard whole > 0 else { return nil }
        return "\((part * 200 + whole) / (2 * whole))" + thin + "%"
    }

    /// What a device is, for people who never saw one.
    public static func deviceKind(_ kind: DeviceKind) -> String {
        switch kind {
        case .meter: return "compteur"
        case .pv: return "panneaux solaires"
        }
    }

    /// Why a message was refused, in words (for the association's and staff's pages).
    public static func quarantineReason(_ reason: QuarantineReason) -> String {
        switch reason {
        case .unknownTopic: return "adresse inconnue"
        case .payloadTooLarge: return "message trop long"
        case .malformedPayload: return "message illisible"
        case .missingField: return "relevé incomplet"
        case .nonNumericField: return "valeur qui n'est pas un nombre"
        case .notANumber: return "lecture du compteur impossible"
        case .unknownDevice: return "boîtier inconnu"
        case .formatMismatch: return "format différent de celui enregistré"
        case .deviceClockUnset: return "horloge du boîtier pas à l'heure"
        case .invalidLocalTime: return "heure qui n'existe pas (changement d'heure)"
        case .beforeInstallation: return "relevé daté d'avant l'installation"
        case .inFuture: return "relevé daté dans le futur"
        case .indexBackwards: return "index plus bas que le précédent"
        case .implausibleJump: return "saut d'index impossible"
        case .conflictingDuplicate: return "deux index différents pour la même heure"
        case .storageError: return "erreur d'enregistrement"
        case .tooManyReadings: return "trop de relevés dans un message"
        }
    }
}

import Foundation

/// Numbers, money and dates the French way (`../shared/style/pages.md`): `1 234,50 €`,
/// `1 234,5 kWh`, `mardi 3 décembre 2026`, `03/12/2026`, `octobre 2026`.
public enum French {
    /// A narrow no-break space: between thousands and before a unit.
    public static let thin = "\u{202F}"

    public static let months = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"]
    static let weekdays = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]

    /// 1 234 567 with narrow no-break spaces.
    public static func grouped(_ value: Int64) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (index, character) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out += thin }
            out.append(character)
        }
        return (value < 0 ? "-" : "") + out
    }

    /// "12,40 €", "1 234,50 €", "-3,00 €".
    public static func euros(_ cents: Cents) -> String {
        let magnitude = cents.value.magnitude
        let sign = cents.value < 0 ? "-" : ""
        let rest = magnitude % 100
        return sign + grouped(Int64(magnitude / 100)) + "," + (rest < 10 ? "0" : "") + "\(rest)" + thin + "€"
    }

    /// Why a group's energy figures are withheld from an association (issue 14, defect 10), as the
    /// pages and the statements say it: "Moins de 10 foyers avec des relevés certains jours :
    /// chiffres non publiés pour protéger les voisins".
    public static func withheldForNeighbours(minimum: Int) -> String {
        "Moins de \(minimum) foyers avec des relevés certains jours : chiffres non publiés pour protéger les voisins"
    }

    /// "47 €": an approximate amount, rounded to the euro (half up).
    public static func wholeEuros(_ cents: Cents) -> String {
        let euros = (cents.value.magnitude + 50) / 100
        return (cents.value < 0 ? "-" : "") + grouped(Int64(euros)) + thin + "€"
    }

    /// Energy for residents, in kWh with one decimal, rounded half up: "1 234,5 kWh".
    public static func kilowattHours(_ wattHours: Int64) -> String {
        let tenths = (wattHours.magnitude + 50) / 100
        return (wattHours < 0 ? "-" : "") + grouped(Int64(tenths / 10)) + "," + "\(tenths % 10)" + thin + "kWh"
    }

    /// "octobre 2026" from "2026-10".
    public static func month(_ key: String) -> String {
        guard let first = LocalDate(parsing: key + "-01") else { return key }
        return months[first.month - 1] + " \(first.year)"
    }

    /// "mardi 3 décembre 2026" (the 1st is written "1er").
    public static func longDate(_ date: LocalDate) -> String {
        let weekday = weekdays[Int(((date.daysSince1970 % 7) + 7 + 3) % 7)]  // 1970-01-01 was a Thursday
        return weekday + " " + dayOfMonth(date) + " " + months[date.month - 1] + " \(date.year)"
    }

    /// "3 décembre", "1er octobre".
    public static func dayAndMonth(_ date: LocalDate) -> String { dayOfMonth(date) + " " + months[date.month - 1] }

    public static func dayOfMonth(_ date: LocalDate) -> String { date.day == 1 ? "1er" : "\(date.day)" }

    /// "03/12/2026".
    public static func shortDate(_ date: LocalDate) -> String { date.frenchText }

    /// "1 jour", "3 jours" (French puts 0 and 1 in the singular).
    public static func count(_ value: Int, _ singular: String, _ pluralForm: String? = nil) -> String {
        "\(value) " + (value > 1 ? (pluralForm ?? singular + "s") : singular)
    }

    /// Text safe inside HTML.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}

/// Cells of a CSV file as French spreadsheet users open it: `;` between cells, decimal comma,
/// dates DD/MM/YYYY, amounts in euros with two decimals, energy in kWh with three, UTF-8 with a BOM.
public enum FrenchCSV {
    public static let byteOrderMark = "\u{FEFF}"

    /// "12,40": euros with two decimals, no thousands separator, no unit (a number to the spreadsheet).
    public static func euros(_ cents: Cents) -> String {
        let magnitude = cents.value.magnitude
        let rest = magnitude % 100
        return (cents.value < 0 ? "-" : "") + "\(magnitude / 100)," + (rest < 10 ? "0" : "") + "\(rest)"
    }

    /// "123,456": kWh with three decimals, exact from Wh.
    public static func kilowattHours(_ wattHours: Int64) -> String {
        let magnitude = wattHours.magnitude
        let rest = String(magnitude % 1000 + 1000).dropFirst()
        return (wattHours < 0 ? "-" : "") + "\(magnitude / 1000)," + rest
    }

    /// A text cell, quoted when it holds a separator, a quote or a line break.
    public static func text(_ value: String) -> String {
        guard value.contains(where: { $0 == ";" || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    public static func line(_ cells: [String]) -> String { cells.joined(separator: ";") + "\r\n" }
}

extension LocalDate {
    /// "27/11/2026", as French readers write dates.
    public var frenchText: String {
        (day < 10 ? "0" : "") + "\(day)/" + (month < 10 ? "0" : "") + "\(month)/\(year)"
    }
}

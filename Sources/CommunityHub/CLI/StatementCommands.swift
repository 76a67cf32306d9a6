import ArgumentParser
import CarShare
import EnergyHub
import Foundation
import HubApp
import HubCore
import HubStatements
import Shared

/// `community-hub statements ...`: the monthly statements staff send and print.
struct StatementsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "statements", abstract: "Monthly statements: one page per household, the staff summary.",
                                                    subcommands: [Export.self])

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export a month's household statements: JSON (cents, Wh), the staff summary as a French CSV, printable HTML and its PDF (headless Chromium).")

        @OptionGroup var common: CommonOptions
        @Option(help: "The month, YYYY-MM (Europe/Paris).") var month: String
        @Option(help: "The folder to write into (created if needed).") var out: String
        @Option(help: "Only this estate's households.") var estate: String?
        @Option(help: "Comma separated: json, csv, html, pdf (default: all).") var format: String = "json,csv,html,pdf"
        @Flag(name: .customLong("new-revision"), help: "Issue the figures revised since the last export as the next numbered revision.") var newRevision = false

        func run() async throws {
            try await reportingErrors {
                let formats = try Set(format.split(separator: ",").map { text -> StatementsExport.Format in
                    guard let format = StatementsExport.Format(rawValue: text.trimmingCharacters(in: .whitespaces)) else {
                        throw HubError.badRequest(field: "format", "--format \(text) is not one of json, csv, html, pdf")
                    }
                    return format
                })
                _ = try StatementsExport.month(month)
                let (month, estate, out, newRevision) = (month, estate, out, newRevision)
                let started = ContinuousClock.now
                // On the SQLite file or the server database, through the stores the pages use.
                let summary = try await common.withStores { stores, settings in
                    let energy = try stores.energy.get()
                    let statements = settings.statements
                    let export = StatementsExport(registry: energy.registry, figures: energy.figures, carShare: stores.carShare,
                                                  landlord: statements.landlord, association: { statements.association(of: $0) })
                    return try await export.export(month: month, estate: estate, formats: formats, to: URL(fileURLWithPath: out),
                                                   archive: stores.archive, newRevision: newRevision, by: .commandLine) { line in
                        FileHandle.standardError.write(Data((line + "\n").utf8))
                    }
                }
                let seconds = (ContinuousClock.now - started).components.seconds
                print("révision \(summary.revision) \(summary.issued ? "émise" : "déjà envoyée, écrite à l'identique"); "
                      + "\(summary.counts.households) logements, \(summary.counts.withoutEnoughData) sans assez de relevés; "
                      + "\(French.euros(summary.counts.savingsCents)) économisés en tout; \(seconds) s")
                if !summary.silentDevices.isEmpty { print("boîtiers silencieux un jour ou plus: \(summary.silentDevices.joined(separator: ", "))") }
                if !summary.refusedByReason.isEmpty {
                    print("messages refusés: " + summary.refusedByReason.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
                }
                if !summary.changes.isEmpty {
                    print(summary.issued
                          ? "\(summary.changes.count) logements révisés dans cette révision: \(summary.changes.map(\.dwelling).joined(separator: ", "))"
                          : "chiffres révisés depuis l'envoi pour \(summary.changes.count) logements (\(summary.changes.map(\.dwelling).joined(separator: ", "))): --new-revision émet la révision \(summary.revision + 1)")
                }
                for file in summary.files { print("  " + (out as NSString).appendingPathComponent(file)) }
            }
        }
    }
}

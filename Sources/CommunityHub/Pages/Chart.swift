import Foundation
import HubCore

/// A bar per day, drawn on the server as inline SVG, with the same figures in a sentence for
/// screen readers and paper (`../shared/style/pages.md`, Pictures). The current day is marked
/// by a pattern and a word, not by colour alone.
public enum Chart {
    public struct Bar: Sendable, Equatable {
        public var date: LocalDate
        public var value: Int64

        public init(date: LocalDate, value: Int64) {
            self.date = date
            self.value = value
        }
    }

    /// `format` writes a value the French way ("1,20 €", "3,4 kWh"); `title` is the chart's name.
    public static func days(_ bars: [Bar], today: LocalDate?, title: String, id: String = "chart", format: (Int64) -> String) -> String {
        guard !bars.isEmpty else { return "" }
        let width = 720, height = 220, left = 8, bottom = 30, top = 28
        let highest = max(1, bars.map(\.value).max() ?? 1)
        let step = Double(width - left) / Double(bars.count)
        var shapes = ""
        for (index, bar) in bars.enumerated() {
            let barHeight = Double(height - bottom - top) * Double(max(0, bar.value)) / Double(highest)
            let x = Double(left) + Double(index) * step + 1
            let isToday = bar.date == today
            shapes += "<rect x=\"\(f(x))\" y=\"\(f(Double(height - bottom) - barHeight))\" width=\"\(f(max(1, step - 3)))\" height=\"\(f(barHeight))\" "
                + "fill=\"\(isToday ? "url(#\(id)-today)" : "#1d3f8f")\" stroke=\"#0b0c0c\"/>"
            if index == 0 || bar.date.day % 5 == 0 || isToday || index == bars.count - 1 {
                shapes += "<text x=\"\(f(x))\" y=\"\(height - 10)\" font-size=\"16\">\(isToday ? "auj." : "\(bar.date.day)")</text>"
            }
        }
        let axis = "<text x=\"\(left)\" y=\"18\" font-size=\"16\">max. \(HTML.escape(format(highest)))</text>"
            + "<line x1=\"\(left)\" y1=\"\(height - bottom)\" x2=\"\(width)\" y2=\"\(height - bottom)\" stroke=\"#0b0c0c\" stroke-width=\"2\"/>"
        let pattern = "<defs><pattern id=\"\(id)-today\" width=\"8\" height=\"8\" patternUnits=\"userSpaceOnUse\"><rect width=\"8\" height=\"8\" fill=\"#fff\"/>"
            + "<path d=\"M0,8 L8,0\" stroke=\"#1d3f8f\" stroke-width=\"3\"/></pattern></defs>"
        let words = bars.map { "\(French.dayOfMonth($0.date)) : \(format($0.value))" }.joined(separator: " ; ")
        return """
            <figure class="chart-figure">
            <svg class="chart" role="img" aria-labelledby="\(id)-title" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)"><title id="\(id)-title">\(HTML.escape(title))</title>\(pattern)\(axis)\(shapes)</svg>
            <figcaption class="small">\(HTML.escape(title)), jour par jour : \(HTML.escape(words)).</figcaption>
            </figure>

            """
    }

    static func f(_ value: Double) -> String { String(format: "%.1f", value) }
}

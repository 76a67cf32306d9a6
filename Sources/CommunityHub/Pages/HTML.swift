import HubCore

/// Small typed pieces of HTML for the pages: every piece of text goes through `French.escape`,
/// every field has its label, its hint and its error next to it (`../shared/style/pages.md`).
public enum HTML {
    public static func escape(_ text: String) -> String { French.escape(text) }

    /// What a form shows: the values typed (kept when it comes back with errors) and the errors by field.
    public struct Form: Sendable, Equatable {
        public var values: [String: String]
        public var lists: [String: [String]]
        public var errors: [String: String]
        /// An error about the form as a whole (no field to put it next to).
        public var formError: String?

        public init(values: [String: String] = [:], lists: [String: [String]] = [:], errors: [String: String] = [:], formError: String? = nil) {
            self.values = values
            self.lists = lists
            self.errors = errors
            self.formError = formError
        }

        public subscript(_ name: String) -> String { values[name] ?? "" }
        public var hasErrors: Bool { !errors.isEmpty || formError != nil }
    }

    /// A choice in a select, radios or checkboxes.
    public struct Choice: Sendable, Equatable {
        public var value: String
        public var label: String
        public init(_ value: String, _ label: String) {
            self.value = value
            self.label = label
        }
    }

    /// `<form method="post">` with the CSRF token and a submit button that says what it does.
    public static func form(action: String, csrf: String, button: String, multipart: Bool = false, id: String? = nil, _ fields: String) -> String {
        let enctype = multipart ? " enctype=\"multipart/form-data\"" : ""
        let identifier = id.map { " id=\"\(escape($0))\"" } ?? ""
        return """
            <form method="post" action="\(escape(action))"\(enctype)\(identifier) novalidate>
            <input type="hidden" name="csrf" value="\(escape(csrf))">
            \(fields)<button type="submit" class="button">\(escape(button))</button>
            </form>

            """
    }

    /// The list of errors at the top of a form, each linking to its field, then each error sits next to its field too.
    public static func errorSummary(_ form: Form, labels: [String: String]) -> String {
        guard form.hasErrors else { return "" }
        var items = ""
        if let formError = form.formError { items += "<li>\(escape(formError))</li>" }
        for (field, message) in form.errors.sorted(by: { $0.key < $1.key }) {
            items += "<li><a href=\"#\(escape(field))\">\(escape(labels[field] ?? field)) : \(escape(message))</a></li>"
        }
        return "<div class=\"error-summary\" role=\"alert\"><h2>Il y a un problème</h2><ul>\(items)</ul></div>\n"
    }

    static func describedBy(_ name: String, hint: String?, error: String?) -> String {
        var ids: [String] = []
        if hint != nil { ids.append("\(name)-hint") }
        if error != nil { ids.append("\(name)-error") }
        guard !ids.isEmpty else { return "" }
        return " aria-describedby=\"\(escape(ids.joined(separator: " ")))\"" + (error != nil ? " aria-invalid=\"true\"" : "")
    }

    static func hintAndError(_ name: String, hint: String?, error: String?) -> String {
        var html = ""
        if let hint { html += "<p class=\"hint\" id=\"\(escape(name))-hint\">\(escape(hint))</p>" }
        if let error { html += "<p class=\"field-error\" id=\"\(escape(name))-error\"><span class=\"visually-hidden\">Erreur : </span>\(escape(error))</p>" }
        return html
    }

    /// A labelled input (text, number, date, time, password…), its hint and its error.
    public static func input(_ name: String, label: String, form: Form, type: String = "text", hint: String? = nil, optional: Bool = false,
                             autocomplete: String? = nil, inputmode: String? = nil, width: String? = nil) -> String {
        let error = form.errors[name]
        let value = type == "password" ? "" : form[name]
        let auto = autocomplete.map { " autocomplete=\"\($0)\"" } ?? ""
        let mode = inputmode.map { " inputmode=\"\($0)\"" } ?? ""
        let size = width.map { " class=\"width-\($0)\"" } ?? ""
        return """
            <div class="field\(error != nil ? " field-with-error" : "")">
            <label for="\(escape(name))">\(escape(label))\(optional ? " <span class=\"optional\">(facultatif)</span>" : "")</label>
            \(hintAndError(name, hint: hint, error: error))<input type="\(type)" id="\(escape(name))" name="\(escape(name))" value="\(escape(value))"\(size)\(auto)\(mode)\(describedBy(name, hint: hint, error: error))>
            </div>

            """
    }

    /// A labelled text area.
    public static func textarea(_ name: String, label: String, form: Form, hint: String? = nil, optional: Bool = false, rows: Int = 4) -> String {
        let error = form.errors[name]
        return """
            <div class="field\(error != nil ? " field-with-error" : "")">
            <label for="\(escape(name))">\(escape(label))\(optional ? " <span class=\"optional\">(facultatif)</span>" : "")</label>
            \(hintAndError(name, hint: hint, error: error))<textarea id="\(escape(name))" name="\(escape(name))" rows="\(rows)"\(describedBy(name, hint: hint, error: error))>\(escape(form[name]))</textarea>
            </div>

            """
    }

    /// A labelled select.
    public static func select(_ name: String, label: String, form: Form, choices: [Choice], hint: String? = nil, placeholder: String? = nil) -> String {
        let error = form.errors[name]
        var options = placeholder.map { "<option value=\"\">\(escape($0))</option>" } ?? ""
        for choice in choices {
            options += "<option value=\"\(escape(choice.value))\"\(form[name] == choice.value ? " selected" : "")>\(escape(choice.label))</option>"
        }
        return """
            <div class="field\(error != nil ? " field-with-error" : "")">
            <label for="\(escape(name))">\(escape(label))</label>
            \(hintAndError(name, hint: hint, error: error))<select id="\(escape(name))" name="\(escape(name))"\(describedBy(name, hint: hint, error: error))>\(options)</select>
            </div>

            """
    }

    /// Radio buttons in a fieldset whose legend is the question.
    public static func radios(_ name: String, legend: String, form: Form, choices: [Choice], hint: String? = nil) -> String {
        choiceSet("radio", name, legend: legend, form: form, choices: choices, checked: [form[name]], hint: hint)
    }

    /// Checkboxes in a fieldset (several values under one name).
    public static func checkboxes(_ name: String, legend: String, form: Form, choices: [Choice], hint: String? = nil) -> String {
        choiceSet("checkbox", name, legend: legend, form: form, choices: choices, checked: Set(form.lists[name] ?? []), hint: hint)
    }

    static func choiceSet(_ type: String, _ name: String, legend: String, form: Form, choices: [Choice], checked: Set<String>, hint: String?) -> String {
        let error = form.errors[name]
        var items = ""
        for (index, choice) in choices.enumerated() {
            let id = index == 0 ? name : "\(name)-\(index)"
            items += "<div class=\"choice\"><input type=\"\(type)\" id=\"\(escape(id))\" name=\"\(escape(name))\" value=\"\(escape(choice.value))\"\(checked.contains(choice.value) ? " checked" : "")>"
                + "<label for=\"\(escape(id))\">\(escape(choice.label))</label></div>"
        }
        return """
            <fieldset class="field\(error != nil ? " field-with-error" : "")"\(describedBy(name, hint: hint, error: error))>
            <legend>\(escape(legend))</legend>
            \(hintAndError(name, hint: hint, error: error))\(items)
            </fieldset>

            """
    }

    /// A single checkbox.
    public static func checkbox(_ name: String, label: String, form: Form, hint: String? = nil) -> String {
        let error = form.errors[name]
        return """
            <div class="field choice\(error != nil ? " field-with-error" : "")">
            \(hintAndError(name, hint: hint, error: error))<input type="checkbox" id="\(escape(name))" name="\(escape(name))" value="1"\(form[name] == "1" ? " checked" : "")\(describedBy(name, hint: hint, error: error))>
            <label for="\(escape(name))">\(escape(label))</label>
            </div>

            """
    }

    /// A table in a region that scrolls sideways on a phone rather than spilling out of the page.
    public static func table(caption: String, headers: [String], rows: [[String]], numeric: Set<Int> = [], captionHidden: Bool = false) -> String {
        var html = "<div class=\"table-wrap\" role=\"region\" aria-label=\"\(escape(caption))\" tabindex=\"0\"><table>"
        html += "<caption\(captionHidden ? " class=\"visually-hidden\"" : "")>\(escape(caption))</caption><thead><tr>"
        for (index, header) in headers.enumerated() { html += "<th scope=\"col\"\(numeric.contains(index) ? " class=\"n\"" : "")>\(escape(header))</th>" }
        html += "</tr></thead><tbody>"
        for row in rows {
            html += "<tr>"
            for (index, cell) in row.enumerated() { html += "<td\(numeric.contains(index) ? " class=\"n\"" : "")>\(cell)</td>" }
            html += "</tr>"
        }
        return html + "</tbody></table></div>\n"
    }

    /// "Imprimer": the browser's print dialog. The one line of script on the pages (allowed by its
    /// hash in the Content-Security-Policy); without script, the text says which keys to press.
    public static let printHandler = "window.print()"
    public static let printButton = """
        <p class="no-print"><button type="button" class="button button-secondary" onclick="\(printHandler)">Imprimer</button></p>
        <noscript><p class="no-print hint">Pour imprimer cette page : appuyez en même temps sur les touches Ctrl et P.</p></noscript>

        """
}

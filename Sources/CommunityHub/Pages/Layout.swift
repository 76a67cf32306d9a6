import HubCore

/// The frame of every page: French, large type, high contrast, a menu of the caller's tasks, a
/// logout button, and a print stylesheet that leaves only the content, black on white.
public enum Layout {
    /// Who is looking at the page, for the header and the menu.
    public struct Viewer: Sendable {
        public var identity: Identity
        public var csrf: String

        public init(identity: Identity, csrf: String) {
            self.identity = identity
            self.csrf = csrf
        }
    }

    public static let siteName = "Énergie solaire et voiture partagée"

    static func roleName(_ role: Role) -> String {
        switch role {
        case .resident: return "habitant"
        case .association: return "association"
        case .driver: return "chauffeur bénévole"
        case .staff: return "personnel du bailleur"
        }
    }

    /// A whole page. `body` is already HTML; `notice` is a confirmation shown at the top ("Le trajet est enregistré").
    public static func page(title: String, viewer: Viewer?, current: SitePage? = nil, notice: String? = nil, body: String) -> String {
        var header = "<header class=\"site-header no-print\"><p class=\"site-name\"><a href=\"/\">\(HTML.escape(siteName))</a></p>"
        var menu = ""
        if let viewer {
            header += "<p class=\"who\">Connecté : <strong>\(HTML.escape(viewer.identity.name))</strong> (\(roleName(viewer.identity.role)))</p>"
            header += "<form method=\"post\" action=\"/deconnexion\" class=\"logout\"><input type=\"hidden\" name=\"csrf\" value=\"\(HTML.escape(viewer.csrf))\">"
                + "<button type=\"submit\" class=\"button button-secondary\">Se déconnecter</button></form>"
            let links = SitePage.menu(for: viewer.identity.role).filter { $0.allows(viewer.identity) }
            if !links.isEmpty {
                menu = "<nav class=\"menu no-print\" aria-label=\"Menu\"><ul>"
                for link in links {
                    menu += "<li><a href=\"\(link.path)\"\(link == current ? " aria-current=\"page\"" : "")>\(HTML.escape(link.title))</a></li>"
                }
                menu += "</ul></nav>"
            }
        }
        header += "</header>"
        let noticeHTML = notice.map { "<div class=\"notice\" role=\"status\"><p>\(HTML.escape($0))</p></div>\n" } ?? ""
        return """
            <!DOCTYPE html>
            <html lang="fr">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(HTML.escape(title)) — \(HTML.escape(siteName))</title>
            <style>\(stylesheet)</style>
            </head>
            <body>
            <a class="skip-link no-print" href="#contenu">Aller au contenu</a>
            \(header)
            \(menu)
            <main id="contenu">
            \(noticeHTML)<h1>\(HTML.escape(title))</h1>
            \(body)
            </main>
            </body>
            </html>

            """
    }

    /// The one stylesheet, inline (no second request on a slow phone). 20 px body text, contrast
    /// above 7:1 for text, a thick yellow focus ring, nothing that needs colour to be understood.
    public static let stylesheet = """
        *{box-sizing:border-box}
        html{font-size:20px}
        body{font-family:"DejaVu Sans",Verdana,Arial,sans-serif;line-height:1.5;color:#0b0c0c;background:#fff;margin:0}
        main,.site-header,.menu{max-width:60rem;margin:0 auto;padding:0 1rem}
        a{color:#1d3f8f;text-decoration:underline;text-underline-offset:.15em}
        a:visited{color:#4c2c92}
        a:focus,button:focus,input:focus,select:focus,textarea:focus,[tabindex]:focus{outline:4px solid #ffbf47;outline-offset:0;box-shadow:0 0 0 7px #0b0c0c}
        .skip-link{position:absolute;left:-9999px}
        .skip-link:focus{position:static;display:block;padding:.5rem 1rem;background:#ffbf47;color:#0b0c0c}
        .site-header{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;gap:.5rem;border-bottom:6px solid #1d3f8f;padding-top:.5rem;padding-bottom:.5rem}
        .site-name{margin:0;font-weight:bold}
        .site-name a{color:#0b0c0c;text-decoration:none}
        .who{margin:0}
        .logout{margin:0}
        .menu ul{list-style:none;padding:0;margin:.5rem auto;display:flex;flex-wrap:wrap;gap:.25rem 1.25rem}
        .menu a[aria-current]{font-weight:bold;text-decoration:none;border-bottom:4px solid #0b0c0c}
        h1{font-size:1.8rem;line-height:1.2;margin:1rem 0 .75rem;overflow-wrap:anywhere}
        h2{font-size:1.4rem;margin:1.5rem 0 .5rem}
        p,li{max-width:36em}
        .lead{font-size:1.35rem}
        .big{font-size:1.6rem;font-weight:bold}
        .button{display:inline-block;font:inherit;font-weight:bold;font-size:1.05rem;padding:.6rem 1.2rem;margin:.5rem 0;border:2px solid #0b0c0c;border-radius:0;background:#00703c;color:#fff;cursor:pointer;text-decoration:none;min-height:48px}
        a.button:visited{color:#fff}
        .button-secondary{background:#f3f2f1;color:#0b0c0c}
        a.button-secondary:visited{color:#0b0c0c}
        .field{margin:0 0 1.25rem;border:0;padding:0}
        .field label,legend{display:block;font-weight:bold;margin-bottom:.25rem}
        .choice{display:flex;align-items:center;gap:.6rem;margin:.35rem 0}
        .choice label{font-weight:normal;margin:0}
        .choice input{width:32px;height:32px;margin:0}
        input[type=text],input[type=password],input[type=number],input[type=date],input[type=time],input[type=file],select,textarea{font:inherit;width:100%;max-width:28rem;padding:.4rem;border:2px solid #0b0c0c;border-radius:0;background:#fff;color:#0b0c0c;min-height:48px}
        input.width-short{max-width:9rem}
        .hint{color:#505a5f;margin:0 0 .35rem}
        .optional{font-weight:normal}
        .field-with-error{border-left:6px solid #b1001e;padding-left:.75rem}
        .field-error{color:#b1001e;font-weight:bold;margin:0 0 .35rem}
        .error-summary{border:5px solid #b1001e;padding:.75rem 1rem;margin:1rem 0}
        .error-summary h2{margin-top:0}
        .error-summary a{color:#b1001e;font-weight:bold}
        .notice{border:5px solid #00703c;padding:.25rem 1rem;margin:1rem 0;font-size:1.1rem}
        .visually-hidden{position:absolute!important;width:1px;height:1px;margin:0;padding:0;overflow:hidden;clip:rect(0 0 0 0);border:0;white-space:nowrap}
        .table-wrap{overflow-x:auto;margin:.5rem 0 1rem;position:relative}
        code{overflow-wrap:anywhere}
        table{border-collapse:collapse;min-width:60%}
        caption{text-align:left;font-weight:bold;padding:.25rem 0}
        th,td{border-bottom:1px solid #505a5f;padding:.35rem .6rem;text-align:left;vertical-align:top}
        .n{text-align:right;white-space:nowrap}
        .chart{max-width:100%;height:auto}
        .week-day{border-top:3px solid #0b0c0c;margin-top:1rem}
        .small{font-size:.9rem}
        dl.facts dt{font-weight:bold;margin-top:.5rem}
        dl.facts dd{margin:0 0 .5rem;overflow-wrap:anywhere;font-size:1.5rem}
        .write-line{border-bottom:1px solid #0b0c0c;height:2.2rem}
        .sheet-table td,.sheet-table th{border:1px solid #0b0c0c;height:2.2rem}
        @media print{
          html{font-size:16px}
          .no-print,.site-header,.menu,.skip-link,form .button{display:none!important}
          body{color:#000;background:#fff}
          a{color:#000;text-decoration:none}
          main{max-width:none;padding:0}
          .table-wrap{overflow:visible}
          .page-break{break-before:page}
          .notice{display:none}
        }
        """
}

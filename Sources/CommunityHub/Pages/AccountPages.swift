import HubCore

/// Logging in, choosing one's own password, and the pages that say something went wrong.
public enum AccountPages {
    public static func login(form: HTML.Form, csrf: String, message: String? = nil) -> String {
        let labels = ["name": "Identifiant", "password": "Mot de passe"]
        var html = "<p class=\"lead\">Pour voir vos économies, vos réservations ou vos trajets, connectez-vous avec l'identifiant et le mot de passe de votre fiche.</p>\n"
        if let message { html += "<div class=\"error-summary\" role=\"alert\"><p>\(HTML.escape(message))</p></div>\n" }
        var fields = HTML.input("name", label: labels["name"]!, form: form, autocomplete: "username")
        fields += HTML.input("password", label: labels["password"]!, form: form, type: "password", autocomplete: "current-password")
        fields += HTML.checkbox("remember", label: "C'est mon téléphone ou mon ordinateur : rester connecté 30 jours", form: form,
                                hint: "Ne cochez pas sur un ordinateur partagé.")
        html += HTML.errorSummary(form, labels: labels) + HTML.form(action: "/connexion", csrf: csrf, button: "Se connecter", fields)
        html += "<p>Mot de passe oublié ? Demandez une nouvelle fiche à l'association ou au bailleur.</p>\n"
        return html
    }

    public static func password(form: HTML.Form, csrf: String, firstTime: Bool) -> String {
        let labels = ["current": "Mot de passe actuel", "password": "Nouveau mot de passe", "confirm": "Nouveau mot de passe, encore une fois"]
        var html = firstTime ? "<p class=\"lead\">Bienvenue. Choisissez maintenant votre propre mot de passe : celui de la fiche ne servira plus.</p>\n" : ""
        var fields = HTML.input("current", label: labels["current"]!, form: form, type: "password", hint: firstTime ? "Celui qui est écrit sur votre fiche" : nil, autocomplete: "current-password")
        fields += HTML.input("password", label: labels["password"]!, form: form, type: "password", hint: "Au moins 8 caractères. Une petite phrase facile à retenir convient bien.", autocomplete: "new-password")
        fields += HTML.input("confirm", label: labels["confirm"]!, form: form, type: "password", autocomplete: "new-password")
        html += HTML.errorSummary(form, labels: labels) + HTML.form(action: SitePage.password.path, csrf: csrf, button: "Enregistrer mon mot de passe", fields)
        return html
    }

    /// A refusal, a missing page, a problem: what happened and what to do, in words.
    public static func problem(status: Int) -> (title: String, body: String) {
        switch status {
        case 403, 404:
            return ("Page introuvable", "<p class=\"lead\">Cette page n'existe pas, ou elle n'est pas accessible avec votre compte.</p><p><a href=\"/\">Revenir à l'accueil</a></p>\n")
        case 413:
            return ("Fichier trop gros", "<p class=\"lead\">Le fichier envoyé est trop gros.</p><p><a href=\"/\">Revenir à l'accueil</a></p>\n")
        case 429:
            return ("Trop d'essais", "<p class=\"lead\">Trop d'essais en peu de temps. Attendez un peu, puis recommencez.</p>\n")
        case 503:
            return ("Service occupé", "<p class=\"lead\">Le service est très occupé. Réessayez dans un instant.</p><p><a href=\"/\">Revenir à l'accueil</a></p>\n")
        case 400..<500:
            return ("Demande incomplète", "<p class=\"lead\">La page n'a pas compris la demande. Revenez en arrière et recommencez.</p><p><a href=\"/\">Revenir à l'accueil</a></p>\n")
        default:
            return ("Un problème est survenu", "<p class=\"lead\">Un problème est survenu de notre côté ; il a été noté. Réessayez plus tard.</p><p><a href=\"/\">Revenir à l'accueil</a></p>\n")
        }
    }
}

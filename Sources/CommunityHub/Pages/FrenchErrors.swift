import HubCore

/// The rules' errors, said in French next to the field they concern, with how to fix them.
public enum FrenchErrors {
    public static func message(_ error: HubError) -> String {
        switch error.code {
        case "vehicle_overlap": return "La voiture est déjà réservée à ce moment-là. Choisissez une autre heure ou un autre jour."
        case "driver_overlap": return "Ce chauffeur a déjà un trajet à ce moment-là. Choisissez un autre chauffeur, ou « Pas encore choisi »."
        case "invalid_interval": return "L'heure de retour doit être après l'heure de départ (une réservation dure au plus 7 jours, un trajet 48 heures)."
        case "membership_not_valid": return "Cette personne n'a pas d'adhésion valable ce jour-là : enregistrez d'abord son adhésion (8 €)."
        case "membership_exists": return "Cette personne a déjà une adhésion pour cette période."
        case "odometer_below_last_reading": return "Ce chiffre est plus petit que le dernier relevé du compteur de la voiture : vérifiez-le."
        case "odometer_above_next_reading": return "Ce chiffre est plus grand que le relevé suivant du compteur : vérifiez-le."
        case "odometer_end_before_start": return "Le compteur au retour doit être plus grand que celui du départ."
        case "distance_too_long": return "Ce trajet serait anormalement long : vérifiez les deux chiffres du compteur."
        case "battery_out_of_range": return "La batterie s'écrit en pourcentage, de 0 à 100."
        case "trip_overlap": return "La voiture était déjà sur un autre trajet à ce moment-là : vérifiez le jour et les heures."
        case "booking_not_open": return "Cette réservation est annulée ou déjà faite : aucun trajet ne peut y être noté."
        case "in_future": return "Ce trajet finit plus tard que maintenant : vérifiez le jour et l'heure de retour."
        case "exists": return "Ce nom existe déjà : choisissez-en un autre."
        case "missing_field": return "Ce champ est à remplir."
        case "forbidden": return "Votre compte ne permet pas cela : demandez à l'association ou au bailleur."
        case "no_riders": return "Cochez la personne qui a voyagé."
        default:
            switch error.kind {
            case .forbidden: return "Votre compte ne permet pas cela : demandez à l'association ou au bailleur."
            case .notFound: return "Introuvable : vérifiez ce qui est écrit."
            default: return "Ce n'est pas accepté : \(error.message)."
            }
        }
    }

    /// The form field an API field corresponds to, when the page has one.
    public static func field(_ apiField: String?, in fields: Set<String>) -> String? {
        guard let apiField else { return nil }
        let renamed = ["amount_cents": "amount", "vehicle": "vehicle", "riders": "riders", "on": "on"][apiField] ?? apiField
        return fields.contains(renamed) ? renamed : nil
    }

    /// The form as it came back with this error placed next to its field (or above the form).
    public static func place(_ error: HubError, in form: inout HTML.Form, fields: Set<String>) {
        let message = message(error)
        if let field = field(error.field, in: fields) { form.errors[field] = message } else { form.formError = message }
    }
}

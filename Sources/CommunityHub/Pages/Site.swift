import HubCore

/// Every page of the site, its address, its title in the menu, and what the access policy must
/// allow for a caller to open it (`AccessPolicy`, the same functions as the API's). Which links a
/// role sees in its menu is convenience; whether a page opens is the policy's answer, never the menu's.
public enum SitePage: String, Sendable, CaseIterable {
    case savings, myCar, askTrip
    case estate, week, driverSheet, members, newMember, renewMembership, bookOnBehalf, newPayment, cashBook
    case missions, newTrip, newCharge
    case paperWeek, registry, devices, quarantine, accounts, newAccount, accountSheet, statements
    case password

    public var path: String {
        switch self {
        case .savings: return "/economies"
        case .myCar: return "/voiture"
        case .askTrip: return "/voiture/demande"
        case .estate: return "/quartier"
        case .week: return "/voiture/semaine"
        case .driverSheet: return "/voiture/feuille"
        case .members: return "/adherents"
        case .newMember: return "/adherents/nouveau"
        case .renewMembership: return "/adherents/adhesion"
        case .bookOnBehalf: return "/reservations/nouvelle"
        case .newPayment: return "/paiements/nouveau"
        case .cashBook: return "/caisse"
        case .missions: return "/missions"
        case .newTrip: return "/trajets/nouveau"
        case .newCharge: return "/recharges/nouvelle"
        case .paperWeek: return "/saisie/semaine"
        case .registry: return "/registre"
        case .devices: return "/boitiers"
        case .quarantine: return "/messages-refuses"
        case .accounts: return "/comptes"
        case .newAccount: return "/comptes/nouveau"
        case .accountSheet: return "/comptes/fiche"
        case .statements: return "/releves"
        case .password: return "/mot-de-passe"
        }
    }

    /// The words of the menu and of the page's title.
    public var title: String {
        switch self {
        case .savings: return "Mes économies"
        case .myCar: return "Mes réservations"
        case .askTrip: return "Demander un trajet"
        case .estate: return "Le quartier"
        case .week: return "La semaine de la voiture"
        case .driverSheet: return "Feuille du chauffeur"
        case .members: return "Adhérents"
        case .newMember: return "Nouvel adhérent"
        case .renewMembership: return "Adhésion enregistrée"
        case .bookOnBehalf: return "Réserver pour un habitant"
        case .newPayment: return "Enregistrer un paiement"
        case .cashBook: return "Livre de caisse"
        case .missions: return "Mes trajets à faire"
        case .newTrip: return "Noter un trajet"
        case .newCharge: return "Noter une recharge"
        case .paperWeek: return "Saisir une feuille papier"
        case .registry: return "Registre des logements"
        case .devices: return "Boîtiers"
        case .quarantine: return "Messages refusés"
        case .accounts: return "Comptes"
        case .newAccount: return "Créer un compte"
        case .accountSheet: return "Fiche d'accès"
        case .statements: return "Relevés mensuels"
        case .password: return "Changer mon mot de passe"
        }
    }

    /// Whether this caller may open the page, and for a POST, submit its form: the policy's answer
    /// for the resource behind the page. `subject` is the dwelling or estate the page is about when
    /// the address names one (`?logement=`, `?residence=`); otherwise the caller's own.
    public func resource(for identity: Identity, subject: String? = nil) -> (AccessPolicy.Action, AccessPolicy.Resource)? {
        switch self {
        case .savings:
            // Without a dwelling named, the page asks for one: for whoever sees every household's figures.
            guard let dwelling = subject ?? identity.dwelling else { return (.read, .landlordEnergy) }
            return (.read, .dwellingEnergy(dwelling: dwelling))
        case .myCar: return (.read, .members)
        case .askTrip:
            guard let dwelling = identity.dwelling else { return nil }
            return (.read, .member(dwelling: dwelling, estate: nil))
        case .estate:
            // Without an estate named, the page picks one among all: for whoever sees every estate's figures.
            guard let estate = subject ?? identity.estate else { return (.read, .landlordEnergy) }
            return (.read, .estateEnergy(estate: estate))
        case .week, .driverSheet: return (.read, .logbook)
        case .members: return (.read, .members)
        case .newMember, .renewMembership, .bookOnBehalf: return (.manage, .members)
        case .newPayment: return (.manage, .payments)
        case .cashBook: return (.read, .cash)
        case .missions: return (.read, .trips)
        case .newTrip, .newCharge, .paperWeek: return (.manage, .trips)
        case .registry: return (.manage, .registry)
        case .devices: return (.read, .deviceReadings)
        case .quarantine: return (.read, .quarantine)
        case .accounts: return (.read, .users)
        case .newAccount, .accountSheet: return (.manage, .users)
        case .statements: return (.manage, .statementExport)
        case .password: return (.manage, .tokens(user: identity.name))
        }
    }

    /// True when the policy lets this caller open the page.
    public func allows(_ identity: Identity, subject: String? = nil) -> Bool {
        guard let (action, resource) = resource(for: identity, subject: subject) else { return false }
        return AccessPolicy.allows(identity, action, resource)
    }

    /// The pages in each role's menu, the main task first.
    public static func menu(for role: Role) -> [SitePage] {
        switch role {
        case .resident: return [.savings, .myCar, .askTrip]
        case .association: return [.estate, .week, .bookOnBehalf, .members, .newPayment, .cashBook, .driverSheet]
        case .driver: return [.missions, .newTrip, .newCharge, .driverSheet]
        case .staff: return [.paperWeek, .devices, .quarantine, .registry, .accounts, .statements, .estate, .week]
        }
    }

    /// Where a role lands after logging in.
    public static func home(for role: Role) -> SitePage { menu(for: role)[0] }
}

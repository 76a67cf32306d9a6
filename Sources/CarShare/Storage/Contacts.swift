import CarShareCore
import Foundation
import GRDB
import HubCore
import Shared

extension SQLiteCarShareStore {
    /// The rider's name and phone for each booking the caller may read (`AccessPolicy`, booking,
    /// read): a volunteer driver calls the person they pick up; bookings the caller may not read
    /// are left out.
    public func riderContacts(bookings ids: [Int64], by identity: Identity) async throws -> [Int64: RiderContact] {
        guard !ids.isEmpty else { return [:] }
        return try await read { db in
            let marks = Array(repeating: "?", count: ids.count).joined(separator: ",")
            let rows = try Row.fetchAll(db, sql: """
                SELECT b.id, m.dwelling_id, m.estate_id, b.booked_by, d.user_name, m.id, m.name, m.phone FROM carshare_booking b
                JOIN carshare_member m ON m.id = b.rider_id LEFT JOIN carshare_driver d ON d.id = b.driver_id WHERE b.id IN (\(marks))
                """, arguments: StatementArguments(ids))
            var contacts: [Int64: RiderContact] = [:]
            for row in rows where AccessPolicy.allows(identity, .read, .booking(dwelling: row[1], estate: row[2], bookedBy: row[3], driverUser: row[4])) {
                contacts[row[0]] = RiderContact(member: row[5], name: row[6], phone: row[7] ?? "")
            }
            return contacts
        }
    }
}

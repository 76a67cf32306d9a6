import CarShareCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import HubCore
import Shared

/// The car share's routes under `/api/v1/carshare/...`, authorised by role in the store.
public struct CarShareRoutes: Sendable {
    let store: any CarShareStore
    let now: @Sendable () -> Instant

    public init(store: any CarShareStore, now: @escaping @Sendable () -> Instant = Instant.now) {
        self.store = store
        self.now = now
    }

    public func add(to api: RouterGroup<HubRequestContext>) {
        let group = api.group("carshare")
        group.post("members") { request, context in
            let body = try await Self.body(NewMember.self, request, context)
            return try HubJSON.response(try await store.addMember(body, by: try context.requireIdentity(), at: now()), status: .created)
        }
        group.get("members") { _, context in try HubJSON.response(try await store.members(by: try context.requireIdentity())) }
        group.get("members/{id}") { _, context in
            try HubJSON.response(try await store.member(try Self.id(context), by: try context.requireIdentity()))
        }
        group.get("members/{id}/statement") { request, context in
            let statement = try await store.statement(member: try Self.id(context), by: try context.requireIdentity())
            if request.query("format") == "text" { return Self.text(statement.text) }
            return try HubJSON.response(statement)
        }
        group.post("members/{id}/memberships") { request, context in
            let body = try await Self.body(NewMembership.self, request, context)
            return try HubJSON.response(try await store.buyMembership(member: try Self.id(context), body, by: try context.requireIdentity(), at: now()),
                                        status: .created)
        }
        group.post("memberships/recognitions") { request, context in
            let on = try request.localDate("on")
            return try HubJSON.response(try await store.recognizeDeferredMemberships(on: on, by: try context.requireIdentity(), at: now()), status: .created)
        }
        group.post("drivers") { request, context in
            let body = try await Self.body(NewDriver.self, request, context)
            return try HubJSON.response(try await store.addDriver(body, by: try context.requireIdentity()), status: .created)
        }
        group.get("drivers") { _, context in try HubJSON.response(try await store.drivers(by: try context.requireIdentity())) }
        group.patch("drivers/{id}") { request, context in
            let body = try await Self.body(DriverUpdate.self, request, context)
            return try HubJSON.response(try await store.updateDriver(try Self.id(context), body, by: try context.requireIdentity()))
        }
        group.post("vehicles") { request, context in
            let body = try await Self.body(NewVehicle.self, request, context)
            return try HubJSON.response(try await store.addVehicle(body, by: try context.requireIdentity()), status: .created)
        }
        group.get("vehicles") { _, context in
            _ = try context.requireIdentity()
            return try HubJSON.response(try await store.vehicles(by: try context.requireIdentity()))
        }
        group.post("bookings") { request, context in
            let body = try await Self.body(NewBooking.self, request, context)
            return try HubJSON.response(try await store.createBooking(body, by: try context.requireIdentity(), at: now()), status: .created)
        }
        group.get("bookings") { request, context in
            let vehicle = try Self.optionalID(request, "vehicle")
            let from = try request.instant("from", in: store.zone)
            let to = try request.instant("to", in: store.zone, endOfDay: true)
            return try HubJSON.response(try await store.bookings(vehicle: vehicle, from: from, to: to, by: try context.requireIdentity()))
        }
        group.get("bookings/{id}") { _, context in
            try HubJSON.response(try await store.booking(try Self.id(context), by: try context.requireIdentity()))
        }
        group.patch("bookings/{id}") { request, context in
            let body = try await Self.body(BookingEdit.self, request, context)
            return try HubJSON.response(try await store.editBooking(try Self.id(context), body, by: try context.requireIdentity(), at: now()))
        }
        group.post("bookings/{id}/status") { request, context in
            let body = try await Self.body(BookingStatusChange.self, request, context)
            return try HubJSON.response(try await store.changeStatus(try Self.id(context), body, by: try context.requireIdentity(), at: now()))
        }
        group.post("trips") { request, context in
            let body = try await Self.body(NewTrip.self, request, context)
            let result = try await store.logTrip(body, by: try context.requireIdentity(), at: now())
            return try Self.idempotent(result.trip, replayed: result.replayed)
        }
        group.post("charging") { request, context in
            let body = try await Self.body(NewCharging.self, request, context)
            return try HubJSON.response(try await store.logCharging(body, by: try context.requireIdentity(), at: now()), status: .created)
        }
        group.post("payments") { request, context in
            let body = try await Self.body(NewPayment.self, request, context)
            let result = try await store.recordPayment(body, by: try context.requireIdentity(), at: now())
            return try Self.idempotent(result.payment, replayed: result.replayed)
        }
        group.post("deposits") { request, context in
            let body = try await Self.body(NewDeposit.self, request, context)
            return try HubJSON.response(try await store.recordDeposit(body, by: try context.requireIdentity(), at: now()), status: .created)
        }
        group.post("refunds") { request, context in
            let body = try await Self.body(NewRefund.self, request, context)
            return try HubJSON.response(try await store.recordRefund(body, by: try context.requireIdentity(), at: now()), status: .created)
        }
        group.post("corrections") { request, context in
            let body = try await Self.body(NewCorrection.self, request, context)
            return try HubJSON.response(try await store.correct(body, by: try context.requireIdentity(), at: now()), status: .created)
        }
        group.post("ledger/entries") { request, context in
            let body = try await Self.body(NewManualEntry.self, request, context)
            return try HubJSON.response(try await store.postManual(body, by: try context.requireIdentity(), at: now()), status: .created)
        }
        group.get("ledger/entries/{id}") { _, context in
            try HubJSON.response(try await store.entryView(try Self.id(context), by: try context.requireIdentity()))
        }
        // A posted entry is never edited or deleted: say so by name, rather than a bare 404/405.
        for method in [HTTPRequest.Method.put, .patch, .delete] {
            group.on("ledger/entries/{id}", method: method) { _, context -> Response in
                _ = try context.requireIdentity()
                throw LedgerError.postedEntryImmutable(number: try Self.id(context)).hubError
            }
        }
        group.post("ledger/closed-months") { request, context in
            struct Body: Decodable { var month: String }
            let body = try await Self.body(Body.self, request, context)
            return try HubJSON.response(["closed_months": try await store.closeMonth(body.month, by: try context.requireIdentity(), at: now())], status: .created)
        }
        group.get("ledger/journal") { _, context in Self.text(try await store.journal(by: try context.requireIdentity())) }
        group.get("ledger/verify") { _, context in
            let report = try await store.verify(by: try context.requireIdentity())
            return try HubJSON.response(report, status: report.ok ? .ok : .conflict)
        }
        group.get("reports/balances") { _, context in try HubJSON.response(try await store.balances(by: try context.requireIdentity())) }
        group.get("reports/cash-book") { request, context in
            try HubJSON.response(try await store.cashBook(from: try request.localDate("from"), to: try request.localDate("to"), by: try context.requireIdentity()))
        }
        group.get("reports/income-statement") { request, context in
            guard let month = request.query("month") else { throw HubError.badRequest(field: "month", code: "missing_field", "missing query parameter month (YYYY-MM)") }
            return try HubJSON.response(try await store.incomeStatement(month: month, by: try context.requireIdentity()))
        }
        group.get("reports/trips") { request, context in
            try HubJSON.response(try await store.tripList(from: try request.localDate("from"), to: try request.localDate("to"),
                                                          vehicle: try Self.optionalID(request, "vehicle"), by: try context.requireIdentity()))
        }
        group.get("vehicles/{id}/logbook") { request, context in
            guard let month = request.query("month") else { throw HubError.badRequest(field: "month", code: "missing_field", "missing query parameter month (YYYY-MM)") }
            let logbook = try await store.logbook(vehicle: try Self.id(context), month: month, by: try context.requireIdentity())
            if request.query("format") == "html" { return Self.html(LogbookSheet.html(logbook, zone: store.zone)) }
            return try HubJSON.response(logbook)
        }
        group.post("vehicles/{id}/odometer-notes") { request, context in
            let body = try await Self.body(NewOdometerNote.self, request, context)
            return try HubJSON.response(try await store.addOdometerNote(vehicle: try Self.id(context), body, by: try context.requireIdentity(), at: now()),
                                        status: .created)
        }
        group.get("reports/activity") { request, context in
            let report = try await store.activityReport(from: try request.localDate("from"), to: try request.localDate("to"), by: try context.requireIdentity())
            if request.query("format") == "text" { return Self.text(report.frenchText) }
            return try HubJSON.response(report)
        }
        group.get("reports/prefect") { request, context in
            guard let text = request.query("year"), let year = Int(text) else { throw HubError.badRequest(field: "year", code: "missing_field", "send year=YYYY") }
            let report = try await store.prefectReport(year: year, by: try context.requireIdentity())
            if request.query("format") == "text" { return Self.text(report.frenchText) }
            return try HubJSON.response(report)
        }
    }

    /// Decodes the JSON body. Hummingbird's `request.decode` turns a `DecodingError` into a bare
    /// 400; decoding here keeps the error, so the response names the field at fault.
    static func body<T: Decodable>(_ type: T.Type, _ request: Request, _ context: HubRequestContext) async throws -> T {
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
    }

    static func id(_ context: HubRequestContext) throws -> Int64 {
        let text = try context.pathParameter("id")
        guard let id = Int64(text), id > 0 else { throw HubError.badRequest(field: "id", "\(text) is not an id (a positive whole number)") }
        return id
    }

    static func optionalID(_ request: Request, _ name: String) throws -> Int64? {
        guard let text = request.query(name) else { return nil }
        guard let id = Int64(text), id > 0 else { throw HubError.badRequest(field: name, "\(name)=\(text) is not an id") }
        return id
    }

    /// 201 for the first answer; the same body with 200 and `Idempotent-Replayed: true` on a retry.
    static func idempotent<T: Encodable>(_ value: T, replayed: Bool) throws -> Response {
        var response = try HubJSON.response(value, status: replayed ? .ok : .created)
        if replayed, let name = HTTPField.Name("Idempotent-Replayed") { response.headers[name] = "true" }
        return response
    }

    static func html(_ html: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func text(_ text: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

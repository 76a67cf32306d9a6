import Foundation
import Hummingbird
import EnergyCore
import HubCore
import Shared

/// `GET /api/v1/devices/{device}/readings` and `GET /api/v1/quarantine`.
public struct ReadingRoutes: Sendable {
    let store: any ReadingStore
    let timeZone: LocalTimeZone

    public init(store: any ReadingStore, timeZone: LocalTimeZone) {
        self.store = store
        self.timeZone = timeZone
    }

    struct ReadingBody: Codable {
        var instant: Instant
        var energyWh: Int64
        var powerW: Double?
        var segment: Int
        var timeSource: String
        enum CodingKeys: String, CodingKey {
            case instant, segment
            case energyWh = "energy_wh", powerW = "power_w", timeSource = "time_source"
        }
    }

    struct ReadingsBody: Codable {
        var device: String
        var from: Instant
        var to: Instant
        var readings: [ReadingBody]
        /// Set when `limit` cut the answer: ask again from this instant.
        var nextFrom: Instant?
        enum CodingKeys: String, CodingKey {
            case device, from, to, readings
            case nextFrom = "next_from"
        }
    }

    struct QuarantineBody: Codable {
        var id: Int64
        var receivedAt: Instant
        var topic: String
        var reason: String
        var detail: String
        var device: String?
        /// The raw payload as text when it is UTF-8, else nil (see payload_base64).
        var payload: String?
        var payloadBase64: String
        /// The size of the whole payload; only its first bytes are kept when it was longer.
        var payloadSize: Int
        var payloadTruncated: Bool
        /// The SHA-256 of the whole payload, hex (absent for entries kept before it was recorded).
        var payloadSHA256: String?
        var instant: Instant?
        var energyWh: Int64?
        var releasedAt: Instant?
        enum CodingKeys: String, CodingKey {
            case id, topic, reason, detail, device, payload, instant
            case receivedAt = "received_at", payloadBase64 = "payload_base64", payloadSize = "payload_size", payloadTruncated = "payload_truncated"
            case payloadSHA256 = "payload_sha256", energyWh = "energy_wh", releasedAt = "released_at"
        }
    }

    struct QuarantineListBody: Codable {
        var since: Instant
        var entries: [QuarantineBody]
        /// Set when `limit` cut the answer: ask again with `since=next_since&after_id=next_after_id`.
        var nextSince: Instant?
        var nextAfterID: Int64?
        enum CodingKeys: String, CodingKey {
            case since, entries
            case nextSince = "next_since", nextAfterID = "next_after_id"
        }
    }

    public func add(to group: RouterGroup<HubRequestContext>) {
        group.get("devices/{device}/readings") { request, context in try await readings(request, context) }
        group.get("quarantine") { request, context in try await quarantine(request, context) }
    }

    func limit(_ request: Request, default value: Int, max: Int) throws -> Int {
        guard let text = request.query("limit") else { return value }
        guard let limit = Int(text), (1...max).contains(limit) else {
            throw HubError.badRequest(field: "limit", "limit must be a whole number from 1 to \(max)")
        }
        return limit
    }

    func readings(_ request: Request, _ context: HubRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let device = try context.pathParameter("device")
        let from = try request.instant("from", in: timeZone) ?? Instant(millisecondsSince1970: 0)
        let to = try request.instant("to", in: timeZone, endOfDay: true) ?? Instant.now().adding(seconds: 86_400)
        guard from < to else { throw HubError.badRequest(field: "to", code: "invalid_range", "to must be after from") }
        let limit = try limit(request, default: 10_000, max: 100_000)
        let readings = try await store.readings(device: device, from: from, to: to, limit: limit, by: identity, zone: timeZone)
        let body = ReadingsBody(device: device, from: from, to: to, readings: readings.map {
            ReadingBody(instant: $0.instant, energyWh: $0.energy.value, powerW: $0.powerWatts, segment: $0.segment, timeSource: $0.timeSource.rawValue)
        }, nextFrom: readings.count == limit ? readings.last.map { $0.instant.adding(milliseconds: 1) } : nil)
        return try HubJSON.response(body)
    }

    func quarantine(_ request: Request, _ context: HubRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        // Asked before the parameters are read: a caller who may not see the list learns nothing else.
        try AccessPolicy.require(identity, .read, .quarantine, "the refused messages are for the landlord's staff")
        let since = try request.instant("since", in: timeZone) ?? Instant.now().adding(seconds: -86_400)
        // Entries share a receive time (a refused array payload, a burst): since alone cannot say
        // where a page stopped, so the next page also skips ids up to the last one shown.
        var afterID: Int64?
        if let text = request.query("after_id") {
            guard let id = Int64(text), id >= 0 else {
                throw HubError.badRequest(field: "after_id", "after_id must be the next_after_id of the previous page, a whole number")
            }
            afterID = id
        }
        let limit = try limit(request, default: 1000, max: 10_000)
        let entries = try await store.quarantine(since: since, afterID: afterID, limit: limit, by: identity)
        let last = entries.count == limit ? entries.last : nil
        let body = QuarantineListBody(since: since, entries: entries.map { entry in
            QuarantineBody(id: entry.id ?? 0, receivedAt: entry.receivedAt, topic: entry.topic, reason: entry.reason.rawValue, detail: entry.detail,
                           device: entry.device, payload: String(validating: entry.payload, as: UTF8.self),
                           payloadBase64: Data(entry.payload).base64EncodedString(), payloadSize: entry.payloadSize,
                           payloadTruncated: entry.payloadIsTruncated, payloadSHA256: entry.payloadSHA256, instant: entry.reading?.instant,
                           energyWh: entry.reading?.energy.value, releasedAt: entry.releasedAt)
        }, nextSince: last?.receivedAt, nextAfterID: last?.id)
        return try HubJSON.response(body)
    }
}

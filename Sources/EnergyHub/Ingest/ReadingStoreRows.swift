import EnergyCore
import HubCore

/// What both reading stores build from their rows, whatever the database: the values of the
/// store protocol from plain columns, so SQLite and PostgreSQL give the same answers.
enum ReadingStoreRows {
    /// A registered device from its row and the first day of its first installation.
    /// A reading held aside in quarantine as a possible reset (`index_backwards`, `implausible_jump`, open).
    struct Held {
        var id: Int64
        var device: String
        var instant: Int64
        var energy: Int64
        var timeSource: String?
        var receivedAt: Int64
    }

    /// The sequences of the devices from the latest stored index of each (any order; the latest
    /// wins if a device comes twice) and the held readings, by device then instant.
    static func sequences(latest: [(device: String, index: StoredIndex)], held: [Held]) -> [String: DeviceSequence] {
        var sequences: [String: DeviceSequence] = [:]
        for (device, index) in latest {
            if let known = sequences[device]?.last, known.instant >= index.instant { continue }
            sequences[device] = DeviceSequence(last: index)
        }
        for row in held {
            guard var sequence = sequences[row.device], let last = sequence.last else { continue }
            let instant = Instant(millisecondsSince1970: row.instant)
            guard instant > last.instant else { continue }
            let reading = DecodedReading(instant: instant, energy: WattHours(row.energy), timeSource: TimeSource(rawValue: row.timeSource ?? "") ?? .device)
            if let previous = sequence.candidates.last, reading.energy < previous.reading.energy { sequence.candidates = [] }
            sequence.hold(ResetCandidate(reading: reading, receivedAt: Instant(millisecondsSince1970: row.receivedAt), quarantineID: row.id))
            sequences[row.device] = sequence
        }
        return sequences
    }

    /// A quarantined message's text (topic, detail, device) as both stores keep it: U+0000 as
    /// U+FFFD. PostgreSQL's text cannot hold U+0000 (MQTT forbids it in topics, but a hostile or
    /// broken client may still send one), and both stores keep the same value.
    static func storable(_ text: String) -> String {
        guard text.unicodeScalars.contains("\u{0}") else { return text }
        var scalars = String.UnicodeScalarView()
        scalars.append(contentsOf: text.unicodeScalars.map { $0 == "\u{0}" ? "\u{FFFD}" : $0 })
        return String(scalars)
    }

    /// A stored reading of `device` from its columns.
    static func reading(device: String, instant: Int64, energy: Int64, power: Double?, segment: Int, timeSource: String, receivedAt: Int64) -> Reading {
        Reading(device: device, instant: Instant(millisecondsSince1970: instant), energy: WattHours(energy), powerWatts: power, segment: segment,
                timeSource: TimeSource(rawValue: timeSource) ?? .device, receivedAt: Instant(millisecondsSince1970: receivedAt))
    }

    /// A quarantine entry from its columns.
    static func quarantineEntry(id: Int64, receivedAt: Int64, topic: String, payload: [UInt8], payloadSize: Int?, payloadSHA256: String?, reason: String,
                                detail: String, device: String?, instant: Int64?, energy: Int64?, timeSource: String?, releasedAt: Int64?) -> QuarantineEntry {
        var reading: DecodedReading?
        if let instant, let energy {
            reading = DecodedReading(instant: Instant(millisecondsSince1970: instant), energy: WattHours(energy),
                                     timeSource: TimeSource(rawValue: timeSource ?? "") ?? .device)
        }
        return QuarantineEntry(id: id, receivedAt: Instant(millisecondsSince1970: receivedAt), topic: topic, payload: payload, payloadSize: payloadSize,
                               payloadSHA256: payloadSHA256, reason: QuarantineReason(rawValue: reason) ?? .malformedPayload, detail: detail,
                               device: device, reading: reading, releasedAt: releasedAt.map(Instant.init(millisecondsSince1970:)))
    }

}

import HubCore
import Shared
import Testing
@testable import EnergyCore
@testable import EnergyHub

@Suite struct DeviceSequenceTests {
    let t0 = Instant.parseRFC3339("2026-11-27T10:00:00Z")!
    func reading(_ minutes: Int64, _ energy: Int64) -> DecodedReading {
        DecodedReading(instant: t0.adding(seconds: minutes * 60), energy: WattHours(energy), timeSource: .device)
    }
    func admit(_ sequence: inout DeviceSequence, _ reading: DecodedReading, id: Int64 = 1) -> Admission {
        let admission = sequence.admit(reading, maxPowerW: 36_000, confirmReadings: 3, confirmMilliseconds: 600_000)
        if case .holdAsCandidate = admission { sequence.hold(ResetCandidate(reading: reading, receivedAt: reading.instant, quarantineID: id)) }
        return admission
    }

    @Test func plausibilityUsesExactIntegerPower() {
        // 36 kW for one minute is exactly 600 Wh.
        #expect(SequenceRules.isPlausible(from: (t0, WattHours(0)), to: (t0.adding(seconds: 60), WattHours(600)), maxPowerW: 36_000))
        #expect(!SequenceRules.isPlausible(from: (t0, WattHours(0)), to: (t0.adding(seconds: 60), WattHours(601)), maxPowerW: 36_000))
    }

    @Test func aTransientZeroIsHeldThenForgottenOnRecovery() {
        var sequence = DeviceSequence()
        #expect(admit(&sequence, reading(0, 21_403_709)) == .store(segment: 0))
        guard case .holdAsCandidate(let rejection) = admit(&sequence, reading(1, 0)) else { Issue.record("zero must be held"); return }
        #expect(rejection.reason == .indexBackwards)
        #expect(admit(&sequence, reading(2, 21_403_750)) == .store(segment: 0))
        #expect(sequence.candidates.isEmpty)
        #expect(sequence.last?.energy == WattHours(21_403_750))
    }

    @Test func aCorruptedJumpIsRefusedAndTheSeriesGoesOn() {
        var sequence = DeviceSequence()
        _ = admit(&sequence, reading(0, 21_403_709))
        guard case .holdAsCandidate(let rejection) = admit(&sequence, reading(1, 907_658_688)) else { Issue.record("jump must be refused"); return }
        #expect(rejection.reason == .implausibleJump)
        #expect(admit(&sequence, reading(2, 21_403_760)) == .store(segment: 0))
    }

    @Test func aSustainedDropIsAGenuineResetInANewSegment() {
        var sequence = DeviceSequence()
        _ = admit(&sequence, reading(0, 5_000_000))
        guard case .holdAsCandidate = admit(&sequence, reading(5, 10), id: 11) else { Issue.record("first low reading is held"); return }
        guard case .holdAsCandidate = admit(&sequence, reading(10, 40), id: 12) else { Issue.record("second low reading is held"); return }
        // Three readings but only 10 minutes: still held (a reboot can publish zeros for a while).
        guard case .confirmReset(let segment, let released) = admit(&sequence, reading(15, 70)) else { Issue.record("third one 10 min after the first confirms"); return }
        #expect(segment == 1)
        #expect(released.map(\.quarantineID) == [11, 12])
        #expect(sequence.last == StoredIndex(instant: t0.adding(seconds: 900), energy: WattHours(70), segment: 1))
        #expect(admit(&sequence, reading(20, 90)) == .store(segment: 1))
    }

    @Test func aResetNeedsTheMinimumSpan() {
        var sequence = DeviceSequence()
        _ = admit(&sequence, reading(0, 5_000_000))
        for minute in [1, 2, 3, 4] as [Int64] {
            guard case .holdAsCandidate = admit(&sequence, reading(minute, minute * 5)) else { Issue.record("held within 10 minutes"); return }
        }
        guard case .confirmReset = admit(&sequence, reading(11, 60)) else { Issue.record("confirmed after 10 minutes"); return }
    }

    @Test func duplicatesAndConflicts() {
        var sequence = DeviceSequence()
        _ = admit(&sequence, reading(0, 100))
        #expect(admit(&sequence, reading(0, 100)) == .duplicate)
        guard case .reject(let rejection) = admit(&sequence, reading(0, 101)) else { Issue.record("conflict"); return }
        #expect(rejection.reason == .conflictingDuplicate)
        #expect(admit(&sequence, reading(-5, 90)) == .late)
    }

    @Test func lateReadingsArePlacedBetweenTheirNeighbours() {
        let previous = StoredIndex(instant: t0, energy: WattHours(1000), segment: 0)
        let next = StoredIndex(instant: t0.adding(seconds: 3600), energy: WattHours(2000), segment: 0)
        #expect(SequenceRules.placeLate(reading(30, 1500), previous: previous, next: next, maxPowerW: 36_000) == .success(0))
        if case .failure(let rejection) = SequenceRules.placeLate(reading(30, 2500), previous: previous, next: next, maxPowerW: 36_000) {
            #expect(rejection.reason == .indexBackwards)
        } else { Issue.record("above the next index must fail") }
        let afterReset = StoredIndex(instant: t0.adding(seconds: 3600), energy: WattHours(5), segment: 1)
        #expect(SequenceRules.placeLate(reading(30, 1200), previous: previous, next: afterReset, maxPowerW: 36_000) == .success(0))
        #expect(SequenceRules.placeLate(reading(30, 2), previous: previous, next: afterReset, maxPowerW: 36_000) == .success(1))
    }
}

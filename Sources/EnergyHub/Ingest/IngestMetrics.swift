import Prometheus
import EnergyCore
import HubCore
import Shared

/// The ingest path's metrics, exposed at `/metrics` in Prometheus text format.
public final class IngestMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let received: Counter
    let stored: Counter
    let duplicates: Counter
    let released: Counter
    let resets: Counter
    let quarantined: [QuarantineReason: Counter]
    let truncatedPayloads: Counter
    let truncatedPayloadBytes: Counter
    let batchSize: ValueHistogram
    let commitLatency: DurationHistogram
    let commitFailures: Counter
    let inMemory: Gauge
    let drainedAtShutdown: Counter
    let lostAtShutdown: Counter
    let storeFailing: Gauge
    let connected: Gauge
    let connects: Counter
    let fatalErrors: Counter
    let folds: Counter
    let foldedReadings: Counter
    let foldLatency: DurationHistogram
    let journalReadings: Gauge

    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        received = registry.makeCounter(descriptor: metric("hub_mqtt_messages_received_total", "MQTT messages received from the broker"))
        stored = registry.makeCounter(descriptor: metric("hub_readings_stored_total", "Readings committed to the database"))
        duplicates = registry.makeCounter(descriptor: metric("hub_readings_duplicate_total", "Readings already stored (same device and instant), counted not stored"))
        released = registry.makeCounter(descriptor: metric("hub_readings_released_total", "Readings held as possible resets and admitted once the reset was confirmed"))
        resets = registry.makeCounter(descriptor: metric("hub_device_resets_total", "Genuine index resets detected (new segments)"))
        quarantined = Dictionary(uniqueKeysWithValues: QuarantineReason.allCases.map { reason in
            (reason, registry.makeCounter(descriptor: metric("hub_quarantined_total", "Messages or readings quarantined, by reason"), labels: [("reason", reason.rawValue)]))
        })
        truncatedPayloads = registry.makeCounter(descriptor: metric("hub_quarantine_payloads_truncated_total",
                                                                    "Quarantined payloads of which only the first ingest.quarantinePayloadBytes were kept"))
        truncatedPayloadBytes = registry.makeCounter(descriptor: metric("hub_quarantine_payload_bytes_truncated_total",
                                                                        "Bytes of quarantined payloads not kept (their size and SHA-256 are)"))
        batchSize = registry.makeValueHistogram(descriptor: metric("hub_ingest_batch_size", "Messages per committed batch"), buckets: [1, 10, 50, 100, 250, 500, 1000, 5000])
        commitLatency = registry.makeDurationHistogram(descriptor: metric("hub_ingest_commit_seconds", "Time to validate and commit a batch"), buckets: [.milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                                                                 .milliseconds(100), .milliseconds(250), .seconds(1)])
        commitFailures = registry.makeCounter(descriptor: metric("hub_ingest_commit_failures_total", "Batches whose commit failed and was retried"))
        inMemory = registry.makeGauge(descriptor: metric("hub_ingest_readings_in_memory", "Messages acknowledged to the broker and not yet committed (lost on a crash)"))
        drainedAtShutdown = registry.makeCounter(descriptor: metric("hub_ingest_drained_at_shutdown_total", "Messages committed during a graceful shutdown"))
        lostAtShutdown = registry.makeCounter(descriptor: metric("hub_ingest_lost_at_shutdown_total",
                                                                 "Acknowledged messages a graceful shutdown could not commit (the database refused writes until ingest.shutdownCommitSeconds)"))
        storeFailing = registry.makeGauge(descriptor: metric("hub_ingest_store_failing", "1 while the database refuses ingest's writes (intake paused, the broker keeps the messages)"))
        connected = registry.makeGauge(descriptor: metric("hub_mqtt_connected", "1 when connected to the broker"))
        connects = registry.makeCounter(descriptor: metric("hub_mqtt_connects_total", "Successful connections to the broker"))
        fatalErrors = registry.makeCounter(descriptor: metric("hub_mqtt_fatal_errors_total", "Times the MQTT loop stopped on a fatal error and was restarted"))
        folds = registry.makeCounter(descriptor: metric("hub_ingest_folds_total", "Folds of the reading journal into the device-ordered table"))
        foldedReadings = registry.makeCounter(descriptor: metric("hub_ingest_folded_readings_total", "Readings moved from the journal into the device-ordered table"))
        foldLatency = registry.makeDurationHistogram(descriptor: metric("hub_ingest_fold_seconds", "Time to fold the reading journal"),
                                                     buckets: [.milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                                                               .seconds(1), .seconds(2), .seconds(5)])
        journalReadings = registry.makeGauge(descriptor: metric("hub_ingest_journal_readings", "Readings committed to the journal and not yet folded"))
    }

    func record(_ fold: FoldReport, duration: Duration) {
        folds.increment()
        foldedReadings.increment(by: Int64(fold.folded))
        foldLatency.record(duration)
        journalReadings.set(to: Double(fold.remaining))
    }

    func record(_ report: BatchReport, commit: Duration) {
        stored.increment(by: Int64(report.stored))
        duplicates.increment(by: Int64(report.duplicates))
        released.increment(by: Int64(report.released))
        resets.increment(by: Int64(report.resets))
        for (reason, count) in report.quarantined { quarantined[reason]?.increment(by: Int64(count)) }
        truncatedPayloads.increment(by: Int64(report.truncatedPayloads))
        truncatedPayloadBytes.increment(by: Int64(report.truncatedPayloadBytes))
        batchSize.record(Double(report.messages))
        commitLatency.record(commit)
    }
}

/// A metric's full name and help text (the unit is part of the name, e.g. `_total`, `_seconds`).
func metric(_ name: String, _ help: String) -> MetricNameDescriptor {
    MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
}

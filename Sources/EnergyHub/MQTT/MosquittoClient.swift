import CMosquitto
import Foundation
import Logging
import EnergyCore
import HubCore
import Shared
import Synchronization

/// One MQTT message as received: topic and payload copied out of libmosquitto's buffers.
public struct MQTTMessage: Sendable {
    public var topic: String
    public var payload: [UInt8]
    /// When the hub's network loop handed the message over (the hub's clock, not the meter's).
    public var receivedAt: Instant
    /// True when the broker sent a retained message (on subscribing), not a live one.
    public var retained: Bool

    public init(topic: String, payload: [UInt8], receivedAt: Instant, retained: Bool) {
        self.topic = topic
        self.payload = payload
        self.receivedAt = receivedAt
        self.retained = retained
    }
}

/// An MQTT client over libmosquitto (2.0.x), with its network loop on its own thread.
///
/// Receiving: `onMessage` is called synchronously on the loop thread, one message at a time, in
/// the order the broker sent them. It may block: while it does, the loop stops reading the socket,
/// TCP backpressure reaches the broker and the broker queues the messages (with a persistent session
/// they survive a disconnection). There is deliberately no buffer in between.
///
/// Acknowledgement: libmosquitto queues the PUBACK of a QoS 1 message *before* it calls the message
/// callback, so from the protocol's point of view the message is the hub's as soon as `onMessage`
/// starts. In 2.0.11 the PUBACK only reaches the wire when the loop next writes, i.e. after
/// `onMessage` returns (observed: a 3 s callback delays the broker's "Received PUBACK" by 3 s), so a
/// crash *inside* `onMessage` gets the message redelivered, but once `onMessage` returns the broker
/// forgets it: `onMessage` must have stored or durably handed off the message before returning.
/// Delivery is at least once: after a reconnection the broker may send a message again.
///
/// Connection: the first `mosquitto_connect` may fail (broker not up yet), a connection may be
/// lost, the broker may refuse it or a fatal error (TLS, DNS, protocol, ...) may end it. A
/// supervisor on the loop thread runs the network loop itself, logs and counts the errors, and
/// after each waits (`ReconnectBackoff`: exponential between `reconnectMinSeconds` and
/// `reconnectMaxSeconds` while the broker does not answer, at most
/// `reconnectOnceAnsweringMaxMilliseconds` with jitter once its port accepts connections again)
/// and tries again, until `stop()`. Subscriptions (QoS 1) are made again on every successful
/// connection.
public final class MosquittoClient: @unchecked Sendable {
    // MARK: Configuration

    public let settings: MQTTSettings
    /// The client id in use (the settings' one unless overridden; empty = random, clean sessions only).
    public let clientId: String
    /// False (the default) = persistent session: the broker keeps subscriptions and queues QoS 1
    /// messages while the client is away. True for publishers and benchmarks.
    public let cleanSession: Bool
    /// Topic filters subscribed at QoS 1 on every connection.
    public let subscriptions: [String]
    /// `publish` blocks while this many QoS 1/2 publishes await their acknowledgement.
    public let maxUnacknowledged: Int

    private let password: String?
    private let logger: Logger
    /// The logger's level, read once: libmosquitto calls the log callback for every packet (two a
    /// message), and the level read through the log handler cost as much as the message's push.
    private let libraryLogLevel: Logger.Level
    private let onMessage: @Sendable (MQTTMessage) -> Void
    private let onConnectionChange: @Sendable (Bool) -> Void

    /// The libmosquitto handle; nil when `mosquitto_new` failed (start() then throws).
    private let mosq: OpaquePointer?
    private let creationError: String?
    /// Why libmosquitto's own wake-up socket is still written for every packet queued, or nil once
    /// it is off (`LibraryWakeSocket`); set once, before the loop starts.
    public let libraryWakeSocketLeftOn: String?
    /// NUL-terminated copies of `subscriptions` for mosquitto_subscribe_multiple; freed in deinit.
    private let subscriptionCStrings: [UnsafeMutablePointer<CChar>?]

    /// libmosquitto needs mosquitto_lib_init exactly once per process (never cleaned up).
    private static let libraryInitialized: Bool = {
        _ = mosquitto_lib_init()
        return true
    }()

    /// Outgoing QoS 1 messages in flight from libmosquitto's point of view.
    private static let libraryMaxInflight: UInt32 = 1000

    // MARK: State

    private struct Stats {
        var connected = false
        var subscribed = false
        var connects = 0
        var fatalErrors = 0
        var lastError: String?
        var consecutiveFailures = 0
        /// The last error-level line libmosquitto logged (OpenSSL reasons for TLS failures).
        var lastLibraryError: String?
        /// Lines libmosquitto's log gave us (`libraryLog`).
        var libraryLogLines = 0
    }

    private let stats = Mutex(Stats())

    /// Guards `started`, `stopping`, `loopFinished`, `loopThread`; signalled on stop and at loop end.
    private let lifecycle = NSCondition()
    private var started = false
    private var stopping = false
    private var loopFinished = false
    private var loopThread: Thread?

    /// The loop's wake-up pipe (read end, write end, both non-blocking): another thread that
    /// queues a packet (a publish, stop's DISCONNECT) writes a byte to it while the loop waits in
    /// poll(2), and only then. libmosquitto's own wake-up socket, written for every packet
    /// whether anyone waits or not, is turned off (`LibraryWakeSocket`).
    private let wakePipe: (read: Int32, write: Int32)
    /// True while the loop thread waits in poll(2).
    private let polling = Atomic<Bool>(false)
    /// True once a byte is in the pipe and the loop has not drained it: one byte is enough.
    private let wakeQueued = Atomic<Bool>(false)
    /// Packets the loop has read that called back (a message, a PUBACK, a SUBACK): a read that
    /// called back may have left more in the socket (loop thread only).
    private var packetsCalledBack = 0
    /// Packets read at most in one turn of the loop before the PUBACKs they queued are written.
    static let readsPerTurn = 16

    /// Guards `pendingMids`; signalled by the publish callback (PUBACK received) and by stop().
    private let publishCondition = NSCondition()
    private var pendingMids = Set<Int32>()
    /// Callers of `publish` waiting for room under `maxUnacknowledged` (guarded by `publishCondition`).
    private var waitingPublishers = 0

    // MARK: Life cycle

    /// - Parameters:
    ///   - password: the resolved password (`settings.resolvedPassword(environment:)`), nil for none.
    ///   - clientId: overrides `settings.clientId` (e.g. a simulator or a benchmark publisher).
    ///   - cleanSession: false = persistent session (the hub's subscriber); true for publishers.
    ///   - subscriptions: topic filters to subscribe to at QoS 1 (re-made on every connection).
    ///   - maxUnacknowledged: publishes allowed to await their PUBACK before `publish` blocks
    ///     (1...60_000; MQTT message ids are 16 bits).
    ///   - onMessage: called on the loop thread for every message; may block (backpressure).
    ///   - onConnectionChange: called on the loop thread with true on every connection and false when
    ///     an established connection ends.
    public init(
        settings: MQTTSettings,
        password: String?,
        clientId: String? = nil,
        cleanSession: Bool = false,
        subscriptions: [String] = [],
        maxUnacknowledged: Int = 10_000,
        logger: Logger,
        onMessage: @escaping @Sendable (MQTTMessage) -> Void,
        onConnectionChange: @escaping @Sendable (Bool) -> Void = { _ in }
    ) {
        _ = Self.libraryInitialized
        let id = clientId ?? settings.clientId
        self.settings = settings
        self.clientId = id
        self.cleanSession = cleanSession
        self.subscriptions = subscriptions
        self.maxUnacknowledged = min(max(maxUnacknowledged, 1), 60_000)
        self.password = password
        var logger = logger
        logger[metadataKey: "mqtt.client"] = "\(id.isEmpty ? "(random id)" : id)"
        self.logger = logger
        self.libraryLogLevel = logger.logLevel
        self.onMessage = onMessage
        self.onConnectionChange = onConnectionChange
        self.subscriptionCStrings = subscriptions.map { strdup($0) }
        var pipeEnds: [Int32] = [-1, -1]
        if pipe(&pipeEnds) == 0 {
            for end in pipeEnds {
                _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
                _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            }
        } else {
            pipeEnds = [-1, -1]
        }
        self.wakePipe = (pipeEnds[0], pipeEnds[1])

        let handle: OpaquePointer?
        if id.isEmpty {
            handle = cleanSession ? mosquitto_new(nil, true, nil) : nil
        } else {
            handle = mosquitto_new(id, cleanSession, nil)
        }
        let savedErrno = errno
        self.mosq = handle
        // Before the handle is shared with the loop thread or connects.
        libraryWakeSocketLeftOn = handle.map { LibraryWakeSocket.silence($0) } ?? "the client was not created"
        if handle != nil {
            creationError = nil
        } else if id.isEmpty && !cleanSession {
            creationError = "an MQTT client id is required for a persistent session (setting clientId)"
        } else {
            creationError = "cannot create the MQTT client \(id): \(String(cString: strerror(savedErrno)))"
        }

        guard let handle else { return }
        mosquitto_user_data_set(handle, Unmanaged.passUnretained(self).toOpaque())
        mosquitto_connect_callback_set(handle) { _, userdata, rc in
            MosquittoClient.from(userdata)?.handleConnect(rc)
        }
        mosquitto_disconnect_callback_set(handle) { _, userdata, rc in
            MosquittoClient.from(userdata)?.handleDisconnect(rc)
        }
        mosquitto_message_callback_set(handle) { _, userdata, message in
            MosquittoClient.from(userdata)?.handleMessage(message)
        }
        mosquitto_publish_callback_set(handle) { _, userdata, mid in
            MosquittoClient.from(userdata)?.handlePublished(mid)
        }
        mosquitto_subscribe_callback_set(handle) { _, userdata, mid, count, grantedQoS in
            MosquittoClient.from(userdata)?.handleSubscribed(mid, count: count, grantedQoS: grantedQoS)
        }
        libraryLog(true)
    }

    /// Whether libmosquitto's log is taken in. It formats a line for every packet when it is
    /// (two a message: received, then PUBACK sent), a tenth of the MQTT loop's time in a backlog,
    /// so it is taken in while a connection is made (why one fails), and once connected only when
    /// its lines are kept: with TLS (OpenSSL's reasons for a failure come only from it) or when
    /// the log level is debug or trace.
    private func libraryLog(_ on: Bool) {
        guard let mosq else { return }
        if on {
            mosquitto_log_callback_set(mosq) { _, userdata, level, text in
                MosquittoClient.from(userdata)?.handleLibraryLog(level, text)
            }
        } else {
            mosquitto_log_callback_set(mosq, nil)
        }
    }

    /// True when libmosquitto's log is taken in while connected too (see `libraryLog`).
    private var libraryLogWhileConnected: Bool { settings.tls.isEnabled || libraryLogLevel <= .debug }

    deinit {
        // The loop thread holds a strong reference while it runs, so here it has finished (or never
        // started) and no callback can be running.
        if let mosq {
            mosquitto_user_data_set(mosq, nil)
            mosquitto_destroy(mosq)
        }
        for pointer in subscriptionCStrings { free(pointer) }
        if wakePipe.read >= 0 { close(wakePipe.read) }
        if wakePipe.write >= 0 { close(wakePipe.write) }
    }

    private static func from(_ userdata: UnsafeMutableRawPointer?) -> MosquittoClient? {
        guard let userdata else { return nil }
        return Unmanaged<MosquittoClient>.fromOpaque(userdata).takeUnretainedValue()
    }

    /// Validates and applies the settings, then starts the network loop thread. Connecting happens
    /// on that thread, so this returns at once; an unreachable broker is retried, not thrown.
    /// Throws `HubError.configuration` for invalid settings (unreadable CA file, bad port...).
    public func start() throws {
        guard let mosq else { throw HubError.configuration(creationError ?? "cannot create the MQTT client") }
        lifecycle.lock()
        defer { lifecycle.unlock() }
        guard !stopping else {
            throw HubError.configuration("the MQTT client \(clientId) was stopped: create a new client to connect again")
        }
        guard !started else { return }
        try configure(mosq)
        if let reason = libraryWakeSocketLeftOn {
            logger.debug("libmosquitto's wake-up socket is left on (one more system call a packet): \(reason)")
        }
        started = true
        let threadName = "mqtt \(clientId)"
        let thread = Thread { [self] in
            nameCurrentThread(threadName)
            // This closure keeps the client alive until the loop has finished.
            self.superviseLoop()
        }
        thread.name = threadName
        loopThread = thread
        thread.start()
    }

    private func configure(_ mosq: OpaquePointer) throws {
        guard !settings.host.isEmpty else { throw HubError.configuration("MQTT setting host must not be empty") }
        guard (1...65_535).contains(settings.port) else {
            throw HubError.configuration("MQTT setting port must be between 1 and 65535, not \(settings.port)")
        }
        guard (5...65_535).contains(settings.keepaliveSeconds) else {
            throw HubError.configuration("MQTT setting keepaliveSeconds must be between 5 and 65535, not \(settings.keepaliveSeconds)")
        }
        guard settings.reconnectMinSeconds >= 1, settings.reconnectMinSeconds <= 86_400 else {
            throw HubError.configuration("MQTT setting reconnectMinSeconds must be between 1 and 86400, not \(settings.reconnectMinSeconds)")
        }
        guard settings.reconnectMaxSeconds >= settings.reconnectMinSeconds, settings.reconnectMaxSeconds <= 86_400 else {
            throw HubError.configuration("MQTT setting reconnectMaxSeconds (\(settings.reconnectMaxSeconds)) must be at least reconnectMinSeconds (\(settings.reconnectMinSeconds)) and at most 86400")
        }
        guard (0...60_000).contains(settings.reconnectOnceAnsweringMaxMilliseconds) else {
            throw HubError.configuration("MQTT setting reconnectOnceAnsweringMaxMilliseconds must be between 0 and 60000, not \(settings.reconnectOnceAnsweringMaxMilliseconds)")
        }
        for filter in subscriptions where mosquitto_sub_topic_check(filter) != Self.success {
            throw HubError.configuration("invalid MQTT topic filter \"\(filter)\"")
        }

        if !settings.username.isEmpty {
            let rc = mosquitto_username_pw_set(mosq, settings.username, password)
            guard rc == Self.success else {
                throw HubError.configuration("invalid MQTT username or password: \(Self.describe(rc, errno: 0))")
            }
        } else if password != nil {
            throw HubError.configuration("an MQTT password is configured (passwordFile or \(MQTTSettings.passwordEnvironmentVariable)) but no username")
        }

        let tls = settings.tls
        if tls.isEnabled {
            guard FileManager.default.isReadableFile(atPath: tls.caFile) else {
                throw HubError.configuration("cannot read the MQTT TLS CA file \(tls.caFile) (setting tls.caFile)")
            }
            guard tls.certFile.isEmpty == tls.keyFile.isEmpty else {
                throw HubError.configuration("MQTT settings tls.certFile and tls.keyFile must be given together")
            }
            for (path, name) in [(tls.certFile, "tls.certFile"), (tls.keyFile, "tls.keyFile")] where !path.isEmpty {
                guard FileManager.default.isReadableFile(atPath: path) else {
                    throw HubError.configuration("cannot read the MQTT TLS file \(path) (setting \(name))")
                }
            }
            let rc = mosquitto_tls_set(mosq, tls.caFile, nil,
                                       tls.certFile.isEmpty ? nil : tls.certFile,
                                       tls.keyFile.isEmpty ? nil : tls.keyFile, nil)
            guard rc == Self.success else {
                throw HubError.configuration("invalid MQTT TLS settings: \(Self.describe(rc, errno: errno))")
            }
            _ = mosquitto_tls_insecure_set(mosq, tls.insecure)
        } else if !tls.certFile.isEmpty || !tls.keyFile.isEmpty {
            throw HubError.configuration("MQTT settings tls.certFile/tls.keyFile need tls.caFile (TLS is off while it is empty)")
        }

        _ = mosquitto_max_inflight_messages_set(mosq, Self.libraryMaxInflight)
        // publish() and stop() are called from other threads than the loop.
        _ = mosquitto_threaded_set(mosq, true)
    }

    /// Stops the client: no more reconnections or publishes, up to 2 s (at most half of `timeout`)
    /// for unacknowledged publishes while connected, a DISCONNECT (a persistent session stays on the
    /// broker), then waits for the loop thread to end (up to `timeout`). Publishers that must not
    /// lose messages call `waitUntilAcknowledged` first: libmosquitto drops what is still queued. Safe to call twice, and
    /// safe while `onMessage` is blocked: the wait ends once the caller unblocks it (`onMessage` may
    /// still be called until then for messages already read). Blocked publishers are released
    /// (they throw). Returns false if the loop thread was still running at the timeout (a blocking
    /// TCP connect to an unreachable host); it then ends by itself without reconnecting, and the
    /// libmosquitto handle is freed when it does.
    @discardableResult
    public func stop(timeout: Duration = .seconds(10)) -> Bool {
        lifecycle.lock()
        let firstCall = !stopping
        stopping = true
        let wasStarted = started
        let thread = loopThread
        lifecycle.broadcast()
        lifecycle.unlock()

        publishCondition.lock()
        publishCondition.broadcast()
        publishCondition.unlock()

        guard wasStarted, let mosq else { return true }
        let onLoopThread = thread != nil && Thread.current === thread
        if firstCall {
            // libmosquitto 2.0.11 is not graceful after mosquitto_disconnect: the next packet the
            // broker sends (a PUBACK, a PUBLISH) makes the loop close the socket at once, dropping
            // whatever is still queued (publishes, PUBACKs, the DISCONNECT itself). So first give
            // unacknowledged publishes a moment; PUBACKs of received messages may still be lost,
            // and the broker then sends those messages again next time (duplicates, not losses).
            if !onLoopThread { drainUnacknowledged(for: min(Self.seconds(timeout) / 2, 2)) }
            logger.info("stopping MQTT client")
            // Sets libmosquitto's state to "disconnecting" (the supervisor will not reconnect) and
            // queues a DISCONNECT when connected; returns MOSQ_ERR_NO_CONN otherwise.
            _ = mosquitto_disconnect(mosq)
            wakeLoop()
        }
        if onLoopThread {
            // Called from a callback: the loop ends once the callback returns.
            return false
        }
        let deadline = Date().addingTimeInterval(Self.seconds(timeout))
        lifecycle.lock()
        while !loopFinished && lifecycle.wait(until: deadline) {}
        let finished = loopFinished
        lifecycle.unlock()
        if !finished {
            logger.warning("the MQTT loop thread is still running \(Self.seconds(timeout)) s after stop(); it will end by itself")
        }
        return finished
    }

    /// Waits (bounded) until no publish awaits its PUBACK, while connected.
    private func drainUnacknowledged(for seconds: TimeInterval) {
        let deadline = Date().addingTimeInterval(seconds)
        publishCondition.lock()
        while !pendingMids.isEmpty && isConnected && Date() < deadline {
            _ = publishCondition.wait(until: min(deadline, Date().addingTimeInterval(0.1)))
        }
        publishCondition.unlock()
    }

    // MARK: Status

    /// Whether the broker accepted the current connection (CONNACK 0) and it is still up.
    public var isConnected: Bool { stats.withLock { $0.connected } }
    /// Whether the broker acknowledged all subscriptions on the current connection (true at once
    /// when there are none).
    public var isSubscribed: Bool { stats.withLock { $0.connected && ($0.subscribed || subscriptions.isEmpty) } }
    /// Successful connections so far (the first one and every reconnection).
    public var connects: Int { stats.withLock { $0.connects } }
    /// Lines libmosquitto's log gave the client so far: it is taken in only while connecting,
    /// unless TLS is on or the log level is debug or trace.
    public var libraryLogLines: Int { stats.withLock { $0.libraryLogLines } }
    /// Errors libmosquitto does not recover from by itself or that need attention: CONNACK refusals
    /// (bad credentials, not authorised), failed connection attempts made by the supervisor, the
    /// network loop returning (TLS, DNS, protocol...), refused subscriptions.
    public var fatalErrors: Int { stats.withLock { $0.fatalErrors } }
    /// A sentence describing the last of those errors.
    public var lastError: String? { stats.withLock { $0.lastError } }
    /// QoS 1/2 publishes still waiting for their acknowledgement.
    public var unacknowledgedCount: Int {
        publishCondition.lock()
        defer { publishCondition.unlock() }
        return pendingMids.count
    }

    /// How many callers of `publish` are waiting for the broker to acknowledge earlier messages
    /// (`maxUnacknowledged` reached): what a test or a metric observes of the back-pressure.
    public var publishersWaiting: Int {
        publishCondition.lock()
        defer { publishCondition.unlock() }
        return waitingPublishers
    }

    /// True once `stop()` was called, even while it still waits for the loop thread.
    public var stopRequested: Bool { isStopping }

    private var isStopping: Bool {
        lifecycle.lock()
        defer { lifecycle.unlock() }
        return stopping
    }

    private var isOnLoopThread: Bool {
        lifecycle.lock()
        let thread = loopThread
        lifecycle.unlock()
        return thread != nil && Thread.current === thread
    }

    // MARK: Publishing

    /// Publishes a message. QoS 1/2 messages are handed to libmosquitto, which sends them (again
    /// after a reconnection if needed) until the broker acknowledges them; this blocks while
    /// `maxUnacknowledged` of them are waiting, so a fast producer cannot grow memory without bound.
    /// While disconnected, QoS 1/2 messages are queued by libmosquitto (it returns MOSQ_ERR_NO_CONN
    /// but keeps the message and sends it after reconnecting: verified) so this does not wait;
    /// QoS 0 messages would be dropped, so this waits for the connection and retries them.
    /// Throws `HubError` (.unavailable) once the client is stopped, (.badRequest) for an invalid
    /// topic or payload. When called from `onMessage` (the loop thread) it never blocks.
    /// libmosquitto 2.0.11 sends a message queued before the first connection without its retain
    /// flag: wait for `isConnected` before publishing retained messages.
    public func publish(topic: String, payload: [UInt8], qos: Int32 = 1, retain: Bool = false) throws {
        guard let mosq else { throw HubError.configuration(creationError ?? "cannot create the MQTT client") }
        guard (0...2).contains(qos) else { throw HubError.badRequest(field: "qos", "MQTT QoS must be 0, 1 or 2, not \(qos)") }
        guard payload.count <= 268_435_455 else { throw HubError.badRequest(field: "payload", "an MQTT payload is at most 256 MB") }
        let onLoopThread = isOnLoopThread

        publishCondition.lock()
        defer { publishCondition.unlock() }
        while true {
            if isStopping {
                throw HubError(.unavailable, code: "mqtt_stopped", message: "the MQTT client \(clientId) is stopped")
            }
            if qos > 0, pendingMids.count >= maxUnacknowledged, !onLoopThread {
                // Woken by PUBACKs (publish callback) and by stop(); the timeout is a safety net.
                waitingPublishers += 1
                _ = publishCondition.wait(until: Date().addingTimeInterval(0.5))
                waitingPublishers -= 1
                continue
            }
            var mid: Int32 = 0
            // The lock stays held across mosquitto_publish so that the publish callback (which takes
            // it) cannot see this message's id before it is recorded. mosquitto_publish only takes
            // libmosquitto's queue mutexes, never one the loop holds while calling back, and in
            // threaded mode it never writes to the socket itself.
            let rc = topic.withCString { topicPointer in
                payload.withUnsafeBytes { bytes in
                    mosquitto_publish(mosq, &mid, topicPointer, Int32(bytes.count), bytes.baseAddress, qos, retain)
                }
            }
            let savedErrno = errno
            switch rc {
            case Self.success:
                if qos > 0 { pendingMids.insert(mid) }
                if !onLoopThread { wakeLoop() }
                return
            case Self.code(MOSQ_ERR_NO_CONN) where qos > 0:
                // Queued by libmosquitto; it is sent after the next successful (re)connection.
                pendingMids.insert(mid)
                return
            case Self.code(MOSQ_ERR_NO_CONN):
                if onLoopThread {
                    throw HubError(.unavailable, code: "mqtt_not_connected", message: "not connected to the MQTT broker: QoS 0 message to \(topic) not sent")
                }
                _ = publishCondition.wait(until: Date().addingTimeInterval(0.1))
            case Self.code(MOSQ_ERR_INVAL), Self.code(MOSQ_ERR_MALFORMED_UTF8):
                throw HubError.badRequest(field: "topic", "invalid MQTT topic \"\(topic)\" for publishing: \(Self.describe(rc, errno: savedErrno))")
            case Self.code(MOSQ_ERR_PAYLOAD_SIZE), Self.code(MOSQ_ERR_OVERSIZE_PACKET):
                throw HubError.badRequest(field: "payload", "MQTT payload too large (\(payload.count) bytes): \(Self.describe(rc, errno: savedErrno))")
            default:
                throw HubError(.unavailable, code: "mqtt_publish_failed", message: "cannot publish to \(topic): \(Self.describe(rc, errno: savedErrno))")
            }
        }
    }

    /// Waits until every QoS 1/2 message published so far has been acknowledged by the broker.
    /// Returns false at the timeout (or if the client stops with messages still unacknowledged).
    public func waitUntilAcknowledged(timeout: Duration) -> Bool {
        let deadline = Date().addingTimeInterval(Self.seconds(timeout))
        publishCondition.lock()
        defer { publishCondition.unlock() }
        while !pendingMids.isEmpty {
            if isStopping { return false }
            let wakeUp = min(deadline, Date().addingTimeInterval(0.5))
            if !publishCondition.wait(until: wakeUp) && Date() >= deadline { return pendingMids.isEmpty }
        }
        return true
    }

    // MARK: The loop thread

    /// Connects, runs the network loop (`mosquitto_loop` over and over, what `mosquitto_loop_forever`
    /// does, but without its own reconnect delay, which cannot be interrupted nor cut short), and
    /// after every error or lost connection waits (`ReconnectBackoff`: exponential while the broker
    /// does not answer, cut to at most `reconnectOnceAnsweringMaxMilliseconds` with jitter as soon as
    /// its port accepts a connection, interrupted by stop()) and tries again, until stop().
    private func superviseLoop() {
        defer {
            lifecycle.lock()
            loopFinished = true
            lifecycle.broadcast()
            lifecycle.unlock()
        }
        guard let mosq else { return }
        var connectSucceededOnce = false
        let target = "\(settings.host):\(settings.port)\(settings.tls.isEnabled ? " (TLS)" : "")"
        logger.info("connecting to the MQTT broker at \(target)")
        while !isStopping {
            // Before the first success, mosquitto_connect (it records host, port and keepalive);
            // afterwards mosquitto_reconnect with the same parameters.
            libraryLog(true)
            let rc = connectSucceededOnce
                ? mosquitto_reconnect(mosq)
                : mosquitto_connect(mosq, settings.host, Int32(settings.port), Int32(settings.keepaliveSeconds))
            let connectErrno = errno
            // Whether the broker's port took the connection this time: a broker that answers and
            // then refuses (credentials, ACL, TLS) is not one coming back, and keeps the full backoff.
            let answered = rc == Self.success
            if rc == Self.success {
                connectSucceededOnce = true
                // stop() may have run while mosquitto_connect was blocking: its DISCONNECT was then
                // lost and the connect reset libmosquitto's state, so disconnect again.
                if isStopping { _ = mosquitto_disconnect(mosq) }
                let (loopRC, loopErrno) = runNetworkLoop(mosq)
                if isStopping { break }
                // A lost connection (broker gone, network) is logged by the disconnect callback;
                // anything else is an error libmosquitto would not have retried by itself.
                if !Self.networkErrors.contains(loopRC) {
                    recordFailure("the MQTT network loop stopped: \(describe(loopRC, errno: loopErrno))")
                }
            } else {
                if isStopping { break }
                recordFailure("cannot connect to the MQTT broker at \(target): \(describe(rc, errno: connectErrno))")
            }
            let failures = stats.withLock { stats -> Int in
                stats.consecutiveFailures += 1
                return stats.consecutiveFailures
            }
            waitBeforeReconnecting(failures: failures, answeredLastTime: answered)
        }
        logger.info("MQTT network loop ended")
    }

    /// Errors that mean the connection is gone and trying again may work.
    private static let networkErrors: Set<Int32> = [code(MOSQ_ERR_CONN_LOST), code(MOSQ_ERR_NO_CONN), code(MOSQ_ERR_ERRNO), code(MOSQ_ERR_KEEPALIVE),
                                                    code(MOSQ_ERR_CONN_REFUSED)]

    /// Runs `mosquitto_loop` until it reports an error (the connection ended, or stop() made it
    /// end after sending DISCONNECT); returns that error and errno.
    private func runNetworkLoop(_ mosq: OpaquePointer) -> (Int32, Int32) {
        var stoppingSince: Date?
        while true {
            let rc = loopOnce(mosq, timeoutMilliseconds: 1000)
            let savedErrno = errno
            if rc != Self.success { return (rc, savedErrno) }
            // After stop(), libmosquitto sends DISCONNECT and closes the socket, and the next call
            // returns an error; should the broker never answer, 2 s is enough.
            if isStopping {
                if let since = stoppingSince, Date().timeIntervalSince(since) > 2 { return (Self.code(MOSQ_ERR_NO_CONN), 0) }
                if stoppingSince == nil { stoppingSince = Date() }
            }
        }
    }

    /// One turn of the network loop: what `mosquitto_loop` does, with poll(2) instead of
    /// select(2). select cannot watch a descriptor numbered 1024 or more (FD_SETSIZE), and
    /// `mosquitto_loop` then fails with MOSQ_ERR_INVAL at every turn: in a process with many files
    /// and sockets open (the hub with its database and HTTP clients, the test suite) the client
    /// connected and never received a message.
    private func loopOnce(_ mosq: OpaquePointer, timeoutMilliseconds: Int32) -> Int32 {
        let socket = mosquitto_socket(mosq)
        guard socket >= 0 else { return Self.code(MOSQ_ERR_NO_CONN) }
        // Set before looking at the queue: a packet queued after the look finds it set and wakes
        // the poll (`wakeLoop`).
        polling.store(true, ordering: .sequentiallyConsistent)
        // A tuple, laid out as poll(2)'s array, so that a turn of the loop allocates nothing.
        var watched = (pollfd(fd: socket, events: Int16(POLLIN) | (mosquitto_want_write(mosq) ? Int16(POLLOUT) : 0), revents: 0),
                       pollfd(fd: wakePipe.read, events: Int16(POLLIN), revents: 0))
        let count: nfds_t = wakePipe.read >= 0 ? 2 : 1
        let ready = withUnsafeMutablePointer(to: &watched) {
            $0.withMemoryRebound(to: pollfd.self, capacity: 2) { poll($0, count, timeoutMilliseconds) }
        }
        polling.store(false, ordering: .sequentiallyConsistent)
        if ready < 0 { return errno == EINTR ? Self.success : Self.code(MOSQ_ERR_ERRNO) }
        if watched.1.revents != 0 {
            var drained = [UInt8](repeating: 0, count: 64)
            while read(wakePipe.read, &drained, drained.count) > 0 {}
            wakeQueued.store(false, ordering: .sequentiallyConsistent)
        }
        // POLLNVAL too: a descriptor closed behind libmosquitto's back makes the read fail and
        // end the connection, instead of a poll that returns at once for ever.
        if watched.0.revents & Int16(POLLIN | POLLHUP | POLLERR | POLLNVAL) != 0 {
            // `mosquitto_loop_read` reads one packet. While each read calls back (a whole packet
            // was read, so more may wait in the socket), read the next without polling first, up
            // to `readsPerTurn`: a poll per message was a sixth of the loop's system calls in a
            // backlog. A read that calls nothing back (the socket was empty, half a packet, a
            // PINGRESP) ends the turn; poll tells when there is more.
            var reads = 0
            while true {
                let calledBack = packetsCalledBack
                let rc = mosquitto_loop_read(mosq, 1)
                if rc != Self.success || mosquitto_socket(mosq) < 0 { return rc }
                reads += 1
                // (Not `isStopping`, a lock a message: after stop() libmosquitto closes the
                // socket at the next packet it reads, which ends the turn above.)
                if packetsCalledBack == calledBack || reads >= Self.readsPerTurn { break }
            }
        }
        if mosquitto_want_write(mosq) {
            let rc = mosquitto_loop_write(mosq, 1)
            if rc != Self.success || mosquitto_socket(mosq) < 0 { return rc }
        }
        return mosquitto_loop_misc(mosq)
    }

    /// Wakes the loop if it waits in poll(2), so that a packet queued by another thread goes out now.
    private func wakeLoop() {
        guard wakePipe.write >= 0, polling.load(ordering: .sequentiallyConsistent),
              !wakeQueued.exchange(true, ordering: .sequentiallyConsistent) else { return }
        var byte: UInt8 = 1
        _ = write(wakePipe.write, &byte, 1)
    }

    /// Waits before the next connection attempt: `ReconnectBackoff.backoffSeconds`, probing the
    /// broker's port every quarter of a second; once a port that did not answer (the last attempt
    /// could not connect, or a probe found it closed) answers again, at most
    /// `reconnectOnceAnsweringMaxMilliseconds` more (with jitter). A broker that took the last
    /// connection and refused it keeps the whole wait. stop() interrupts it.
    private func waitBeforeReconnecting(failures: Int, answeredLastTime: Bool) {
        let delay = ReconnectBackoff.backoffSeconds(afterFailures: failures, minimum: settings.reconnectMinSeconds,
                                                    maximum: settings.reconnectMaxSeconds, jitter: Double.random(in: 0..<1))
        logger.warning("retrying the MQTT connection in \(String(format: "%.1f", delay)) s at most, sooner once the broker answers (attempt \(failures + 1))")
        let deadline = Date().addingTimeInterval(delay)
        var wasDown = !answeredLastTime
        while !isStopping {
            let remaining = deadline.timeIntervalSinceNow
            if remaining <= 0 { return }
            let answers = Self.portAnswers(host: settings.host, port: settings.port, timeout: 0.2)
            if !answers { wasDown = true }
            if answers && wasDown {
                let wait = ReconnectBackoff.secondsOnceAnswering(remaining: deadline.timeIntervalSinceNow,
                                                                 onceAnsweringMaxSeconds: Double(settings.reconnectOnceAnsweringMaxMilliseconds) / 1000,
                                                                 jitter: Double.random(in: 0..<1))
                logger.info("the MQTT broker at \(settings.host):\(settings.port) answers again: reconnecting in \(String(format: "%.2f", wait)) s")
                waitUnlessStopping(seconds: wait)
                return
            }
            waitUnlessStopping(seconds: min(ReconnectBackoff.probeIntervalSeconds, max(0, deadline.timeIntervalSinceNow)))
        }
    }

    private func waitUnlessStopping(seconds: Double) {
        let deadline = Date().addingTimeInterval(seconds)
        lifecycle.lock()
        while !stopping && lifecycle.wait(until: deadline) {}
        lifecycle.unlock()
    }

    /// True when a TCP connection to `host:port` is accepted within `timeout` (then closed at once).
    static func portAnswers(host: String, port: Int, timeout: TimeInterval) -> Bool {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else { return false }
        defer { freeaddrinfo(list) }
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let address = entry {
            defer { entry = address.pointee.ai_next }
            let socket = Glibc.socket(address.pointee.ai_family, address.pointee.ai_socktype, address.pointee.ai_protocol)
            guard socket >= 0 else { continue }
            defer { close(socket) }
            _ = fcntl(socket, F_SETFL, fcntl(socket, F_GETFL) | O_NONBLOCK)
            if connect(socket, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 { return true }
            guard errno == EINPROGRESS else { continue }
            var poller = pollfd(fd: socket, events: Int16(POLLOUT), revents: 0)
            guard poll(&poller, 1, Int32(timeout * 1000)) == 1 else { continue }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            if getsockopt(socket, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0 { return true }
        }
        return false
    }

    private func recordFailure(_ message: String) {
        stats.withLock { stats in
            stats.fatalErrors += 1
            stats.lastError = message
        }
        logger.error("\(message)")
    }

    // MARK: Callbacks (all on the loop thread)

    private func handleConnect(_ rc: Int32) {
        guard rc == 0 else {
            // MQTT 3.1.1 CONNACK codes: 1 protocol, 2 identifier rejected, 3 unavailable,
            // 4 bad user name or password, 5 not authorised. The supervisor retries with its backoff.
            let reason = String(cString: mosquitto_connack_string(rc))
            recordFailure("the MQTT broker at \(settings.host):\(settings.port) refused the connection: \(reason) (CONNACK code \(rc))")
            return
        }
        let count = stats.withLock { stats -> Int in
            stats.connected = true
            stats.connects += 1
            stats.consecutiveFailures = 0
            return stats.connects
        }
        logger.info("connected to the MQTT broker at \(settings.host):\(settings.port) (connection \(count))")
        if !libraryLogWhileConnected { libraryLog(false) }
        subscribeAll()
        onConnectionChange(true)
    }

    /// Subscribes to every filter at QoS 1. Done on every connection: a broker that lost its state
    /// (no persistence, session expired, clean session) has forgotten the subscriptions. Note that a
    /// re-subscription makes the broker send matching retained messages again.
    private func subscribeAll() {
        guard let mosq, !subscriptionCStrings.isEmpty else { return }
        let rc = subscriptionCStrings.withUnsafeBufferPointer { filters in
            mosquitto_subscribe_multiple(mosq, nil, Int32(filters.count), filters.baseAddress, 1, 0, nil)
        }
        if rc == Self.success {
            logger.debug("subscribing to \(subscriptions.joined(separator: ", ")) at QoS 1")
        } else {
            recordFailure("cannot subscribe to \(subscriptions.joined(separator: ", ")): \(describe(rc, errno: errno))")
        }
    }

    private func handleSubscribed(_ mid: Int32, count: Int32, grantedQoS: UnsafePointer<Int32>?) {
        packetsCalledBack &+= 1
        guard let grantedQoS else { return }
        let refused = (0..<Int(count)).filter { grantedQoS[$0] > 2 }
        if refused.isEmpty {
            stats.withLock { $0.subscribed = true }
            logger.debug("subscribed to \(subscriptions.joined(separator: ", "))")
        } else {
            let filters = refused.map { $0 < subscriptions.count ? subscriptions[$0] : "#\($0)" }
            recordFailure("the MQTT broker refused the subscription to \(filters.joined(separator: ", ")) (not authorised?)")
        }
    }

    private func handleDisconnect(_ rc: Int32) {
        let wasConnected = stats.withLock { stats -> Bool in
            let was = stats.connected
            stats.connected = false
            stats.subscribed = false
            return was
        }
        if rc != 0 && wasConnected {
            logger.warning("lost the MQTT connection: \(describe(rc, errno: errno)); reconnecting")
        } else if wasConnected {
            logger.info("disconnected from the MQTT broker")
        }
        if wasConnected { onConnectionChange(false) }
    }

    private func handleMessage(_ message: UnsafePointer<mosquitto_message>?) {
        packetsCalledBack &+= 1
        guard let message = message?.pointee else { return }
        let topic = message.topic.map { String(cString: $0) } ?? ""
        let payload: [UInt8]
        if let bytes = message.payload, message.payloadlen > 0 {
            payload = Array(UnsafeRawBufferPointer(start: bytes, count: Int(message.payloadlen)))
        } else {
            payload = []
        }
        // The PUBACK for QoS 1 is already queued by libmosquitto at this point (see the type's
        // documentation); onMessage may block, which stops the loop reading: backpressure.
        onMessage(MQTTMessage(topic: topic, payload: payload, receivedAt: .now(), retained: message.retain))
    }

    private func handlePublished(_ mid: Int32) {
        packetsCalledBack &+= 1
        // Called once per QoS 1 message when its PUBACK arrives, and for QoS 0 messages when they
        // are written (their ids are not in pendingMids).
        publishCondition.lock()
        if pendingMids.remove(mid) != nil {
            publishCondition.broadcast()
        }
        publishCondition.unlock()
    }

    private func handleLibraryLog(_ level: Int32, _ text: UnsafePointer<CChar>?) {
        guard let text else { return }
        let logLevel: Logger.Level
        switch level {
        case Int32(MOSQ_LOG_ERR): logLevel = .error
        case Int32(MOSQ_LOG_WARNING): logLevel = .warning
        case Int32(MOSQ_LOG_NOTICE), Int32(MOSQ_LOG_INFO): logLevel = .debug
        default: logLevel = .trace
        }
        let line = logLevel >= .error ? String(cString: text) : nil
        stats.withLock { stats in
            stats.libraryLogLines += 1
            if let line { stats.lastLibraryError = line }
        }
        // libmosquitto logs every packet at debug level: convert only what will be written.
        guard logLevel >= libraryLogLevel else { return }
        logger.log(level: logLevel, "libmosquitto: \(String(cString: text))")
    }

    // MARK: Helpers

    private static let success = code(MOSQ_ERR_SUCCESS)

    private static func code(_ error: mosq_err_t) -> Int32 { Int32(truncatingIfNeeded: error.rawValue) }

    private static func seconds(_ duration: Duration) -> TimeInterval {
        let parts = duration.components
        return TimeInterval(parts.seconds) + TimeInterval(parts.attoseconds) / 1e18
    }

    /// A sentence for a libmosquitto return code (`errno` matters for MOSQ_ERR_ERRNO).
    private static func describe(_ rc: Int32, errno savedErrno: Int32) -> String {
        if rc == code(MOSQ_ERR_ERRNO) {
            return "\(String(cString: strerror(savedErrno))) (errno \(savedErrno))"
        }
        return "\(String(cString: mosquitto_strerror(rc))) (libmosquitto error \(rc))"
    }

    /// `describe`, plus libmosquitto's last logged error for TLS failures (the OpenSSL reason).
    private func describe(_ rc: Int32, errno savedErrno: Int32) -> String {
        var text = Self.describe(rc, errno: savedErrno)
        if rc == Self.code(MOSQ_ERR_TLS) || rc == Self.code(MOSQ_ERR_TLS_HANDSHAKE),
           let detail = stats.withLock({ stats -> String? in
               defer { stats.lastLibraryError = nil }
               return stats.lastLibraryError
           }) {
            text += ": \(detail)"
        }
        return text
    }
}

/// Names the calling thread for the OS (top -H, /proc/<pid>/task/*/comm, debuggers): Foundation's
/// `Thread.name` does not reach the kernel on Linux. At most 15 bytes are kept.
func nameCurrentThread(_ name: String) {
    #if os(Linux)
    // pthread_setname_np is not visible to Swift here; the kernel's own interface is this file.
    let fd = open("/proc/thread-self/comm", O_WRONLY)
    guard fd >= 0 else { return }
    let bytes = Array(name.utf8.prefix(15))
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
    #endif
}

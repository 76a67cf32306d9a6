import HubApp
import EnergyHub
import Foundation
import EnergyCore
import HubCore
import Shared

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// kill(2); a free function because BrokerProcess has a `kill()` method.
private func sendSignal(_ pid: pid_t, _ signal: Int32) {
    _ = kill(pid, signal)
}

#if os(Linux)
private let streamSocketType = Int32(SOCK_STREAM.rawValue)
#else
private let streamSocketType = SOCK_STREAM
#endif

/// A real mosquitto broker run as a child process on a free loopback port, for the demo command,
/// the benchmark and the tests. Its configuration, log (`broker.log`) and persistence database live
/// in `workingDirectory`; `restart()` reuses the same port and the same persistence.
public final class BrokerProcess: @unchecked Sendable {
    public let host = "127.0.0.1"
    /// The TCP port of the listener; chosen free at init and kept across restarts.
    public private(set) var port: Int
    public let workingDirectory: URL
    public let executable: String
    public let persistence: Bool
    public let passwordFile: String?
    public let maxQueuedMessages: Int
    public let maxInflightMessages: Int
    public let messageSizeLimit: Int
    public let autosaveIntervalSeconds: Int
    public let extraConfig: [String]

    public var configPath: String { workingDirectory.appendingPathComponent("mosquitto.conf").path }
    public var logPath: String { workingDirectory.appendingPathComponent("broker.log").path }
    public var persistencePath: String { workingDirectory.appendingPathComponent("mosquitto.db").path }

    private let lock = NSLock()
    private var process: Process?

    /// - Parameters:
    ///   - workingDirectory: created if needed; holds mosquitto.conf, broker.log and mosquitto.db.
    ///   - persistence: keep sessions and queued messages across restarts (saved on SIGTERM and
    ///     every `autosaveIntervalSeconds`).
    ///   - passwordFile: a `mosquitto_passwd` file; anonymous clients are refused when given.
    ///   - maxQueuedMessages: QoS 1/2 messages queued per offline or slow client; 0 = no limit
    ///     (mosquitto's own default, 1000, silently drops the excess).
    ///   - maxInflightMessages: QoS 1/2 messages sent to a client before it acknowledges them.
    ///   - messageSizeLimit: largest accepted payload in bytes; 0 = mosquitto's default.
    ///   - extraConfig: lines written after the `listener` line, so listener options (`cafile`,
    ///     `certfile`, `keyfile`, `require_certificate`...) apply to it.
    ///   - executable: the broker binary; default /usr/sbin/mosquitto, else `mosquitto` on PATH.
    public init(
        workingDirectory: URL,
        persistence: Bool = true,
        passwordFile: String? = nil,
        maxQueuedMessages: Int = 0,
        maxInflightMessages: Int = 100,
        messageSizeLimit: Int = 0,
        autosaveIntervalSeconds: Int = 1,
        extraConfig: [String] = [],
        executable: String? = nil
    ) throws {
        self.workingDirectory = workingDirectory
        self.persistence = persistence
        self.passwordFile = passwordFile
        self.maxQueuedMessages = maxQueuedMessages
        self.maxInflightMessages = maxInflightMessages
        self.messageSizeLimit = messageSizeLimit
        self.autosaveIntervalSeconds = max(1, autosaveIntervalSeconds)
        self.extraConfig = extraConfig
        guard let binary = executable ?? BrokerProcess.locateExecutable() else {
            throw HubError.configuration("cannot find the mosquitto broker: install the mosquitto package (looked for /usr/sbin/mosquitto and mosquitto on PATH)")
        }
        self.executable = binary
        do {
            try FileManager.default.createDirectory(at: workingDirectory, withIntermediateDirectories: true)
        } catch {
            throw HubError.configuration("cannot create the broker directory \(workingDirectory.path): \(error.localizedDescription)")
        }
        self.port = try BrokerProcess.freeLoopbackPort()
    }

    public convenience init(workingDirectory: String, persistence: Bool = true, passwordFile: String? = nil,
                            maxQueuedMessages: Int = 0, maxInflightMessages: Int = 100, messageSizeLimit: Int = 0,
                            autosaveIntervalSeconds: Int = 1, extraConfig: [String] = [], executable: String? = nil) throws {
        try self.init(workingDirectory: URL(fileURLWithPath: workingDirectory), persistence: persistence,
                      passwordFile: passwordFile, maxQueuedMessages: maxQueuedMessages,
                      maxInflightMessages: maxInflightMessages, messageSizeLimit: messageSizeLimit,
                      autosaveIntervalSeconds: autosaveIntervalSeconds, extraConfig: extraConfig, executable: executable)
    }

    deinit {
        if let process, process.isRunning {
            sendSignal(process.processIdentifier, SIGKILL)
        }
    }

    /// Client settings pointing at this broker (plain TCP; adjust `tls` for a TLS listener).
    public var clientSettings: MQTTSettings {
        var settings = MQTTSettings()
        settings.host = host
        settings.port = port
        return settings
    }

    public var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        return process?.isRunning ?? false
    }

    public var processIdentifier: Int32? {
        lock.lock()
        defer { lock.unlock() }
        return process.map { $0.processIdentifier }
    }

    /// The broker's log so far.
    public func logText() -> String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    // MARK: Starting and stopping

    /// Writes the configuration and starts the broker, then waits (up to `timeout`) until its port
    /// accepts TCP connections. If the port was taken in the meantime on the first start, another
    /// free port is chosen. Throws with the broker's log if it exits.
    public func start(timeout: Duration = .seconds(10)) throws {
        lock.lock()
        defer { lock.unlock() }
        if let process, process.isRunning { return }
        var attempts = 0
        while true {
            attempts += 1
            do {
                try launchAndWait(timeout: timeout)
                return
            } catch let error as HubError where error.code == "broker_port_in_use" && attempts < 5 && !hasStartedBefore {
                port = try BrokerProcess.freeLoopbackPort()
            }
        }
    }

    private var hasStartedBefore = false

    private func launchAndWait(timeout: Duration) throws {
        try writeConfig()
        let logHandle = try openLog()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["-c", configPath]
        process.currentDirectoryURL = workingDirectory
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = logHandle
        process.standardError = logHandle
        let logOffset = (try? FileManager.default.attributesOfItem(atPath: logPath)[.size] as? NSNumber)?.intValue ?? 0
        do {
            try BrokerProcess.runWithDefaultSignalMask(process)
        } catch {
            try? logHandle.close()
            throw HubError(.unavailable, code: "broker_start_failed", message: "cannot run \(executable): \(error.localizedDescription)")
        }
        try? logHandle.close()
        self.process = process

        let deadline = Date().addingTimeInterval(Self.seconds(timeout))
        while Date() < deadline {
            if BrokerProcess.acceptsConnections(port: port) {
                hasStartedBefore = true
                return
            }
            if !process.isRunning {
                let log = newLog(since: logOffset)
                self.process = nil
                let inUse = log.contains("Address already in use")
                throw HubError(.unavailable, code: inUse ? "broker_port_in_use" : "broker_exited",
                               message: "the mosquitto broker exited at start (status \(process.terminationStatus)): \(log)")
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        terminate(process, signal: SIGKILL, wait: 5)
        self.process = nil
        throw HubError(.unavailable, code: "broker_timeout",
                       message: "the mosquitto broker did not accept connections on port \(port) within \(Self.seconds(timeout)) s: \(newLog(since: logOffset))")
    }

    /// Stops the broker with SIGTERM and waits for it to exit (it saves its persistence database
    /// first); SIGKILL after `timeout`.
    public func stop(timeout: Duration = .seconds(10)) {
        lock.lock()
        defer { lock.unlock() }
        guard let process else { return }
        if process.isRunning {
            // A paused broker cannot handle SIGTERM: let it run first.
            sendSignal(process.processIdentifier, SIGCONT)
            terminate(process, signal: SIGTERM, wait: Self.seconds(timeout))
            if process.isRunning { terminate(process, signal: SIGKILL, wait: 5) }
        }
        self.process = nil
    }

    /// Kills the broker with SIGKILL (nothing saved since the last autosave) and waits for it.
    public func kill() {
        lock.lock()
        defer { lock.unlock() }
        guard let process else { return }
        if process.isRunning { terminate(process, signal: SIGKILL, wait: 5) }
        self.process = nil
    }

    /// Stops (SIGTERM) and starts again on the same port with the same persistence.
    public func restart(timeout: Duration = .seconds(10)) throws {
        stop()
        try start(timeout: timeout)
    }

    /// Freezes the broker (SIGSTOP): connections stay open but nothing is answered.
    public func pause() {
        if let pid = processIdentifier { sendSignal(pid, SIGSTOP) }
    }

    /// Undoes `pause()` (SIGCONT).
    public func resume() {
        if let pid = processIdentifier { sendSignal(pid, SIGCONT) }
    }

    private final class LaunchBox: @unchecked Sendable {
        let process: Process
        var error: (any Error)?
        init(_ process: Process) { self.process = process }
    }

    /// Runs `process` (like `process.run()`) from a fresh thread whose signal mask is empty.
    /// A child inherits the signal mask of the thread that spawns it, and Dispatch and Swift
    /// concurrency threads block nearly every signal: mosquitto then never sees SIGTERM (its
    /// stop needed SIGKILL) and `mosquitto_sub -W` never sees SIGALRM (it never times out).
    /// Use this for any child process that relies on signals.
    public static func runWithDefaultSignalMask(_ process: Process) throws {
        let box = LaunchBox(process)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            var empty = sigset_t()
            sigemptyset(&empty)
            pthread_sigmask(SIG_SETMASK, &empty, nil)
            do {
                try box.process.run()
            } catch {
                box.error = error
            }
            done.signal()
        }
        thread.start()
        done.wait()
        if let error = box.error { throw error }
    }

    private func terminate(_ process: Process, signal: Int32, wait seconds: TimeInterval) {
        sendSignal(process.processIdentifier, signal)
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.01)
        }
    }

    // MARK: Configuration

    /// The configuration file's text.
    public func configText() -> String {
        var lines = [
            "# Written by BrokerProcess; rewritten at every start.",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "log_timestamp true",
        ]
        if geteuid() == 0 {
            // Started as root, mosquitto switches to the user "mosquitto", which cannot write the
            // persistence database here (nor read our files): stay root.
            lines.append("user root")
        }
        if let passwordFile {
            lines.append("allow_anonymous false")
            lines.append("password_file \(passwordFile)")
        } else {
            lines.append("allow_anonymous true")
        }
        if persistence {
            lines.append("persistence true")
            lines.append("persistence_location \(workingDirectory.path)/")
            lines.append("persistence_file mosquitto.db")
            lines.append("autosave_interval \(autosaveIntervalSeconds)")
        } else {
            lines.append("persistence false")
        }
        lines.append("max_queued_messages \(maxQueuedMessages)")
        lines.append("max_inflight_messages \(maxInflightMessages)")
        if messageSizeLimit > 0 {
            lines.append("message_size_limit \(messageSizeLimit)")
        }
        lines.append("listener \(port) \(host)")
        lines.append(contentsOf: extraConfig)
        return lines.joined(separator: "\n") + "\n"
    }

    private func writeConfig() throws {
        do {
            try configText().write(toFile: configPath, atomically: true, encoding: .utf8)
        } catch {
            throw HubError.configuration("cannot write the broker configuration \(configPath): \(error.localizedDescription)")
        }
    }

    private func openLog() throws -> FileHandle {
        if !FileManager.default.fileExists(atPath: logPath) {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        guard let handle = FileHandle(forWritingAtPath: logPath) else {
            throw HubError.configuration("cannot write the broker log \(logPath)")
        }
        handle.seekToEndOfFile()
        return handle
    }

    private func newLog(since offset: Int) -> String {
        let data = FileManager.default.contents(atPath: logPath) ?? Data()
        let text = String(decoding: data.dropFirst(offset), as: UTF8.self)
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    // MARK: Sockets

    static func locateExecutable() -> String? {
        let fixed = "/usr/sbin/mosquitto"
        if FileManager.default.isExecutableFile(atPath: fixed) { return fixed }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/mosquitto"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    private static func loopbackAddress(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
        return address
    }

    /// Binds 127.0.0.1:0 and reads back the port the kernel chose.
    public static func freeLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, streamSocketType, 0)
        guard fd >= 0 else { throw HubError(.unavailable, code: "no_socket", message: "cannot create a socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = loopbackAddress(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw HubError(.unavailable, code: "no_port", message: "cannot bind a loopback port: \(String(cString: strerror(errno)))") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw HubError(.unavailable, code: "no_port", message: "cannot read the bound port: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether something accepts TCP connections on 127.0.0.1:port.
    public static func acceptsConnections(port: Int) -> Bool {
        guard let fd = connectLoopback(port: port) else { return false }
        close(fd)
        return true
    }

    /// A TCP socket connected to 127.0.0.1:`port` (blocking; the caller closes it), or nil.
    public static func connectLoopback(port: Int) -> Int32? {
        let fd = socket(AF_INET, streamSocketType, 0)
        guard fd >= 0 else { return nil }
        var address = loopbackAddress(port: port)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    private static func seconds(_ duration: Duration) -> TimeInterval {
        let parts = duration.components
        return TimeInterval(parts.seconds) + TimeInterval(parts.attoseconds) / 1e18
    }
}

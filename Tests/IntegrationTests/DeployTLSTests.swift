import Foundation
import HubTestSupport
import HubTools
import Shared
import Testing

/// The deployment of deploy/README.md with the real programs: certificates from
/// `deploy/make-certificates.sh`, the broker's TLS meter listener as `mosquitto.conf` writes it,
/// nginx with `deploy/nginx/community-hub.conf` in front of the real hub (its session cookie
/// comes back `Secure`, the client address is the one nginx saw), and `systemd-analyze verify` on
/// the unit.
@Suite(.serialized) struct DeployTLSTests {
    static let deploy = TestSupport.packageRoot.appendingPathComponent("deploy")

    static func run(_ path: String, _ arguments: [String], input: String? = nil) async throws -> (status: Int32, output: String) {
        try await TestSupport.run(path, arguments, input: input)
    }

    static func certificates() async throws -> URL {
        let directory = try TestSupport.temporaryDirectory("certs")
        let made = try await run(deploy.appendingPathComponent("make-certificates.sh").path, [directory.path, "localhost", "127.0.0.1"])
        #expect(made.status == 0, "\(made.output)")
        let verified = try await run("/usr/bin/openssl", ["verify", "-CAfile", directory.appendingPathComponent("ca.crt").path, directory.appendingPathComponent("server.crt").path])
        #expect(verified.status == 0, "\(verified.output)")
        let key = try FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent("server.key").path)[.posixPermissions] as? Int
        #expect(key == 0o600, "the server key is readable by others: \(String(key ?? 0, radix: 8))")
        return directory
    }

    @Test func theMeterListenerTakesTLSWithTheScriptsCertificatesAndNothingElse() async throws {
        let certs = try await Self.certificates()
        // The TLS lines of the production configuration, with this test's paths and port.
        let production = try String(contentsOf: Self.deploy.appendingPathComponent("mosquitto/mosquitto.conf"), encoding: .utf8)
        let port = try BrokerProcess.freeLoopbackPort()
        var conf = "allow_anonymous true\npersistence false\nlistener \(port) 127.0.0.1\n"
        for line in production.split(separator: "\n") where ["cafile ", "certfile ", "keyfile ", "tls_version "].contains(where: { line.hasPrefix($0) }) {
            conf += line.replacingOccurrences(of: "/etc/mosquitto/certs", with: certs.path) + "\n"
        }
        #expect(conf.contains("certfile") && conf.contains("tls_version"), "the production configuration has no TLS listener: \(conf)")
        if getuid() == 0 { conf += "user root\n" }
        let file = certs.appendingPathComponent("mosquitto.conf")
        try conf.write(to: file, atomically: true, encoding: .utf8)
        let broker = Process()
        broker.executableURL = URL(fileURLWithPath: "/usr/sbin/mosquitto")
        broker.arguments = ["-c", file.path]
        broker.standardOutput = FileHandle.nullDevice
        broker.standardError = FileHandle.nullDevice
        // With an empty signal mask, or mosquitto never sees the SIGTERM of `terminate()` and outlives the test.
        try BrokerProcess.runWithDefaultSignalMask(broker)
        defer { broker.terminate() }
        var published: (status: Int32, output: String) = (1, "")
        for _ in 0..<50 {
            published = try await Self.run("/usr/bin/mosquitto_pub", ["--cafile", certs.appendingPathComponent("ca.crt").path, "-h", "localhost", "-p", "\(port)",
                                                                      "-t", "meters/m-01/reading", "-m", "{}", "-q", "1"])
            if published.status == 0 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(published.status == 0, "a meter with the site's ca.crt could not publish over TLS: \(published.output)")
        let plain = try await Self.run("/usr/bin/mosquitto_pub", ["-h", "127.0.0.1", "-p", "\(port)", "-t", "meters/m-01/reading", "-m", "{}", "-q", "1"])
        #expect(plain.status != 0, "the TLS listener took a plain connection")
    }

    @Test func nginxInFrontOfTheHubServesThePagesOverTLSWithASecureCookie() async throws {
        let certs = try await Self.certificates()
        let directory = try TestSupport.temporaryDirectory("nginx")
        // The hub, as the unit runs it, with the example settings' proxy setting.
        let hubPort = try BrokerProcess.freeLoopbackPort()
        let database = directory.appendingPathComponent("hub.sqlite").path
        let settings = """
            {"database": {"path": "\(database)", "synchronous": "normal"}, "http": {"host": "127.0.0.1", "port": \(hubPort), "behindProxy": true},
             "mqtt": {"host": "127.0.0.1", "port": \(try BrokerProcess.freeLoopbackPort())}, "auth": {"bcryptCost": 4, "sessionHours": 12, "rememberDays": 30}}
            """
        let config = directory.appendingPathComponent("hub.json")
        try settings.write(to: config, atomically: true, encoding: .utf8)
        let added = try await Self.run(HubChild.executable.path, ["users", "add", "agent", "--role", "staff", "--config", config.path], input: "password-123\n")
        #expect(added.status == 0, "\(added.output)")
        let hub = try HubChild(arguments: ["serve", "--config", config.path], directory: directory, name: "hub-behind-nginx")
        defer { hub.signal(SIGKILL) }

        // deploy/nginx/community-hub.conf with this test's ports, paths and hub.
        let port = try BrokerProcess.freeLoopbackPort()
        var site = try String(contentsOf: Self.deploy.appendingPathComponent("nginx/community-hub.conf"), encoding: .utf8)
        site = site.replacingOccurrences(of: "listen 443 ssl;", with: "listen 127.0.0.1:\(port) ssl;")
            .replacingOccurrences(of: "listen 80;", with: "listen 127.0.0.1:\(try BrokerProcess.freeLoopbackPort());")
            .replacingOccurrences(of: "/etc/community-hub/certs", with: certs.path)
            .replacingOccurrences(of: "http://127.0.0.1:8080", with: "http://127.0.0.1:\(hubPort)")
            .split(separator: "\n").filter { !$0.contains("[::]") }.joined(separator: "\n")
        #expect(site.contains("X-Forwarded-Proto https") && site.contains("X-Forwarded-For"))
        let nginxConf = try Self.nginxConfiguration(site: site, in: directory)
        let checked = try await Self.run("/usr/sbin/nginx", ["-t", "-p", directory.path, "-c", nginxConf.path])
        #expect(checked.status == 0, "\(checked.output)")
        let nginx = Process()
        nginx.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
        nginx.arguments = ["-p", directory.path, "-c", nginxConf.path, "-g", "daemon off;"]
        nginx.standardOutput = FileHandle.nullDevice
        nginx.standardError = FileHandle.nullDevice
        try nginx.run()
        defer { nginx.terminate() }

        let jar = directory.appendingPathComponent("cookies").path
        let base = "https://localhost:\(port)"
        let ca = certs.appendingPathComponent("ca.crt").path
        var page: (status: Int32, output: String) = (1, "")
        for _ in 0..<100 {
            page = try await Self.run("/usr/bin/curl", ["-s", "-i", "--cacert", ca, "-c", jar, "-b", jar, "\(base)/connexion"])
            if page.status == 0 && page.output.contains("Se connecter") { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(page.output.contains("HTTP/1.1 200") && page.output.contains("Se connecter"), "\(page.output.prefix(500))\n\(hub.log.suffix(1000))")
        #expect(page.output.lowercased().contains("strict-transport-security"))
        let csrf = page.output.range(of: #"name="csrf" value="[^"]*""#, options: .regularExpression).map { String(page.output[$0].dropFirst(19).dropLast()) } ?? ""
        let login = try await Self.run("/usr/bin/curl", ["-s", "-i", "--cacert", ca, "-c", jar, "-b", jar, "--data-urlencode", "csrf=\(csrf)",
                                                         "--data-urlencode", "name=agent", "--data-urlencode", "password=password-123", "\(base)/connexion"])
        let cookie = login.output.split(whereSeparator: \.isNewline).first { $0.lowercased().hasPrefix("set-cookie: hub_session=") } ?? ""
        #expect(cookie.contains("; Secure") && cookie.contains("; HttpOnly"), "behind TLS the session cookie is not Secure: \(login.output.prefix(600))")
        // Plain HTTP is sent to TLS.
        let plainPort = site.range(of: #"listen 127\.0\.0\.1:\d+;"#, options: .regularExpression).map { String(site[$0].dropFirst(17).dropLast()) } ?? ""
        let redirect = try await Self.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "http://127.0.0.1:\(plainPort)/economies"])
        #expect(redirect.output.hasPrefix("301 https://"), "\(redirect.output)")
    }

    /// An nginx.conf around `site` whose files all live in `directory` (nginx runs unprivileged there).
    static func nginxConfiguration(site: String, in directory: URL) throws -> URL {
        let main = """
            \(getuid() == 0 ? "user root;" : "")
            pid \(directory.path)/nginx.pid;
            error_log \(directory.path)/error.log;
            events {}
            http {
              access_log off;
              client_body_temp_path \(directory.path)/body;
              proxy_temp_path \(directory.path)/proxy;
              fastcgi_temp_path \(directory.path)/fastcgi;
              uwsgi_temp_path \(directory.path)/uwsgi;
              scgi_temp_path \(directory.path)/scgi;
            \(site)
            }
            """
        let file = directory.appendingPathComponent("nginx.conf")
        try main.write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    @Test func theSystemdUnitVerifies() async throws {
        // The unit as installed, with ExecStart pointing at this build's binary (verify checks it exists).
        let unit = try String(contentsOf: Self.deploy.appendingPathComponent("systemd/community-hub.service"), encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/community-hub", with: HubChild.executable.path)
        let directory = try TestSupport.temporaryDirectory("systemd")
        let file = directory.appendingPathComponent("community-hub.service")
        try unit.write(to: file, atomically: true, encoding: .utf8)
        let verified = try await Self.run("/usr/bin/systemd-analyze", ["verify", file.path])
        #expect(verified.status == 0, "systemd-analyze verify: \(verified.output)")
        #expect(!verified.output.contains("Unknown key") && !verified.output.contains("Unknown section"), "\(verified.output)")
    }
}

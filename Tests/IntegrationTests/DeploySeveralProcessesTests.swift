import CarShare
import Foundation
import HubApp
import HubCore
import HubTestSupport
import HubTools
import Logging
import PostgresNIO
import Shared
import Testing
@testable import EnergyCore
@testable import EnergyHub

/// The files of deploy/ for several hub processes and the server database, with the real programs:
/// the PostgreSQL settings load as the hub's, `deploy/postgres/setup.sh` makes a role and database
/// on a real PostgreSQL 15 server in which that role applies the whole hub schema, the systemd
/// template unit verifies, and nginx accepts the upstream of several processes.
@Suite struct DeploySeveralProcessesTests {
    static let deploy = TestSupport.packageRoot.appendingPathComponent("deploy")
    static let quiet = Logger(label: "test.deploy", factory: { _ in SwiftLogNoOpLogHandler() })

    /// The whole hub schema on PostgreSQL, as the hub applies it at start.
    static let schema = SharedSchema.postgres + EnergySchema.postgres + SavingsSchema.postgres + CarShareSchema.postgres + PostgresStatementArchive.postgres

    @Test func thePostgresSettingsLoadAsTheHubsAndShareEveryFormat() throws {
        let file = Self.deploy.appendingPathComponent("community-hub-postgres.json")
        let settings = try SettingsLoader.load(HubSettings.self, defaults: HubSettings(), file: file.path)
        // The password is not in the URL but in the file the setup steps write.
        let url = try PostgresLocation(url: settings.database.url)
        #expect(url.password == nil && url.user == "community_hub" && url.database == "community_hub")
        #expect(settings.database.passwordFile == "/etc/community-hub/database-password")
        // Every format through one shared subscription group, on the single process's topics.
        for format in DeviceFormat.allCases {
            let filter = settings.ingest.topics.filter(for: format)
            #expect(filter == "$share/hubs/" + IngestSettings.Topics().filter(for: format), "\(format): \(filter)")
            #expect(try TopicPattern(filter).device(in: IngestSettings.Topics().filter(for: format).replacingOccurrences(of: "+", with: "box-1")) == "box-1")
        }
        // Apart from the database, the topics and the port, the same settings as the single process's file.
        let single = try SettingsLoader.load(HubSettings.self, defaults: HubSettings(), file: Self.deploy.appendingPathComponent("community-hub.json").path)
        var comparable = settings
        comparable.database = single.database
        comparable.ingest.topics = single.ingest.topics
        comparable.http.port = single.http.port
        #expect(comparable == single)

        // Loaded as `serve` loads it: the password file is read (here one of the test's), every
        // section checked.
        let directory = try TestSupport.temporaryDirectory("deploy-settings")
        let passwordFile = directory.appendingPathComponent("database-password")
        try "a-password-of-the-test\n".write(to: passwordFile, atomically: true, encoding: .utf8)
        let text = try String(contentsOf: file, encoding: .utf8).replacingOccurrences(of: "/etc/community-hub/database-password", with: passwordFile.path)
        let copy = directory.appendingPathComponent("community-hub.json")
        try text.write(to: copy, atomically: true, encoding: .utf8)
        let loaded = try HubSettings.load(file: copy.path)
        let location = try #require(try loaded.database.postgres(environment: [:]))
        #expect(location.password == "a-password-of-the-test" && location.tls == .disable && location.port == 5432)
        _ = try loaded.configuration()
    }

    /// setup.sh against the tests' server as its superuser, with a role and database of this
    /// test's own (names are server-wide). The tests' server trusts loopback, so the password is
    /// not what lets the role in here: the stored SCRAM secret is checked instead.
    @Test func theSetupScriptMakesARoleThatAppliesTheWholeSchema() async throws {
        let server = try await PostgresTestServer.location()
        let suffix = UUID().uuidString.prefix(8).lowercased().filter { $0.isLetter || $0.isNumber }
        let (role, database) = ("hub_role_\(suffix)", "hub_db_\(suffix)")
        let directory = try TestSupport.temporaryDirectory("deploy-postgres")
        let passwordFile = directory.appendingPathComponent("database-password")
        let password = "pw-" + UUID().uuidString
        try (password + "\n").write(to: passwordFile, atomically: true, encoding: .utf8)
        let environment = ["PGHOST": server.host, "PGPORT": "\(server.port)", "PGUSER": server.user, "PGDATABASE": server.database]
            .merging(server.password.map { ["PGPASSWORD": $0] } ?? [:]) { $1 }
        let script = Self.deploy.appendingPathComponent("postgres/setup.sh").path
        let arguments = [script, "--role", role, "--database", database, passwordFile.path]

        let admin = HubPostgres(server, maximumConnections: 2, logger: Self.quiet)
        try await admin.withRunning { admin in
            // The second time as the README says, the password piped in (`sudo cat FILE | ... /dev/stdin`).
            for run in 1...2 {
                let result = run == 1 ? try await TestSupport.run("/bin/bash", arguments, environment: environment)
                    : try await TestSupport.run("/bin/bash", arguments.dropLast() + ["/dev/stdin"], input: password + "\n", environment: environment)
                #expect(result.status == 0, "run \(run): \(result.output)")
                #expect(result.output.contains("database \(database) (UTF8, C.UTF-8) owned by \(role), who may log in: t"), "run \(run): \(result.output)")
                #expect(!result.output.contains(password))
            }
            let (secret, superuser, createsDatabases) = try #require(try await admin.read { connection in
                try await connection.query("SELECT rolpassword, rolsuper, rolcreatedb FROM pg_authid WHERE rolname = \(role)", logger: Self.quiet)
                    .decode((String, Bool, Bool).self).first { _ in true }
            })
            #expect(secret.hasPrefix("SCRAM-SHA-256$") && !superuser && !createsDatabases)
            let publicGrants = try await admin.read { try await $0.scalar("""
                SELECT count(*) FROM pg_database d, aclexplode(COALESCE(d.datacl, acldefault('d', d.datdba))) a WHERE d.datname = \(database) AND a.grantee = 0
                """, as: Int64.self, logger: Self.quiet) }
            #expect(publicGrants == 0, "PUBLIC keeps a right on the database")

            // The role it made applies the hub's whole schema in the database it owns, twice
            // (the second time applies nothing), and its tables work: a reading partition.
            var location = server.with(database: database)
            location.user = role
            location.password = password
            let hub = HubPostgres(location, maximumConnections: 2, logger: Self.quiet)
            let (applied, again, owned) = try await hub.withRunning { hub in
                let applied: [String]
                do {
                    applied = try await hub.migrate(Self.schema)
                } catch {
                    throw HubError.configuration("the role \(role) cannot apply the hub's schema: \(HubPostgres.serverMessage(error) ?? String(reflecting: error))")
                }
                let again = try await hub.migrate(Self.schema)
                _ = try await hub.transaction { try await $0.scalar("SELECT reading_partition(\(Int64(1_790_000_000_000)))", as: String.self, logger: Self.quiet) }
                let owned = try await hub.read {
                    try await $0.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = \(role)", as: Int64.self, logger: Self.quiet)
                }
                return (applied, again, owned ?? 0)
            }
            #expect(applied == Self.schema.map(\.name) && again.isEmpty)
            #expect(owned > 20, "\(owned) tables")

            // Another role of the server may not even connect to it.
            let outsider = "hub_outsider_\(suffix)"
            _ = try await admin.client.query(PostgresQuery(unsafeSQL: "CREATE ROLE \(outsider) LOGIN"))
            var outside = location
            outside.user = outsider
            var refusal: (any Error)?
            do {
                let connection = try await HubPostgres.connect(outside, id: 1, logger: Self.quiet).get()
                try await connection.close()
            } catch {
                refusal = error
            }
            #expect(refusal.flatMap { HubPostgres.sqlState($0) } == "42501", "an outsider connected, or failed otherwise: \(String(describing: refusal))")

            for statement in ["DROP DATABASE \(database) WITH (FORCE)", "DROP ROLE \(role)", "DROP ROLE \(outsider)"] {
                _ = try await admin.client.query(PostgresQuery(unsafeSQL: statement))
            }
        }
    }

    @Test func theSetupScriptRefusesAShortPasswordOrAMissingFile() async throws {
        let directory = try TestSupport.temporaryDirectory("deploy-postgres-refusals")
        let short = directory.appendingPathComponent("short")
        try "short\n".write(to: short, atomically: true, encoding: .utf8)
        let script = Self.deploy.appendingPathComponent("postgres/setup.sh").path
        // Both refused before psql is run: no server is needed.
        let tooShort = try await TestSupport.run("/bin/bash", [script, short.path])
        #expect(tooShort.status == 65 && tooShort.output.contains("at least 16 characters"), "\(tooShort.output)")
        let missing = try await TestSupport.run("/bin/bash", [script, directory.appendingPathComponent("none").path])
        #expect(missing.status == 66 && missing.output.contains("cannot read the password file"), "\(missing.output)")
        let badName = try await TestSupport.run("/bin/bash", [script, "--role", "Hub; DROP", short.path])
        #expect(badName.status == 64, "\(badName.output)")
    }

    @Test func theTemplateUnitVerifiesAndNamesEachProcessByItsPort() async throws {
        let template = try String(contentsOf: Self.deploy.appendingPathComponent("systemd/community-hub@.service"), encoding: .utf8)
        let execStart = try #require(template.split(separator: "\n").first { $0.hasPrefix("ExecStart=") })
        #expect(execStart.contains("--http-port %i") && execStart.contains("--mqtt-client-id community-hub-%H-%i"), "\(execStart)")
        // Every setting of the single process's [Service] section (hardening, limits, stop) is in the template.
        let single = try String(contentsOf: Self.deploy.appendingPathComponent("systemd/community-hub.service"), encoding: .utf8)
        let service = single.components(separatedBy: "[Service]")[1].components(separatedBy: "[Install]")[0]
        for line in service.split(separator: "\n") where !line.hasPrefix("#") && !line.hasPrefix("ExecStart=") && line.contains("=") {
            #expect(template.contains("\n\(line)\n"), "the template unit lacks \(line)")
        }
        #expect(template.contains("WantedBy=community-hub.target") && template.contains("PartOf=community-hub.target"))

        let analyze = "/usr/bin/systemd-analyze"
        guard FileManager.default.isExecutableFile(atPath: analyze) else {
            print("DeploySeveralProcessesTests: \(analyze) is not installed here, the template unit was only read, not verified")
            return
        }
        let directory = try TestSupport.temporaryDirectory("systemd-template")
        try template.replacingOccurrences(of: "/usr/local/bin/community-hub", with: HubChild.executable.path)
            .write(to: directory.appendingPathComponent("community-hub@.service"), atomically: true, encoding: .utf8)
        try String(contentsOf: Self.deploy.appendingPathComponent("systemd/community-hub.target"), encoding: .utf8)
            .write(to: directory.appendingPathComponent("community-hub.target"), atomically: true, encoding: .utf8)
        // An instance of the template, as `systemctl enable community-hub@8081` makes it.
        let verified = try await TestSupport.run(analyze, ["verify", directory.appendingPathComponent("community-hub@8081.service").path,
                                                           directory.appendingPathComponent("community-hub.target").path])
        #expect(verified.status == 0, "systemd-analyze verify: \(verified.output)")
        #expect(!verified.output.contains("Unknown key") && !verified.output.contains("Unknown section"), "\(verified.output)")
    }

    @Test func nginxAcceptsTheUpstreamOfSeveralProcesses() async throws {
        let text = try String(contentsOf: Self.deploy.appendingPathComponent("nginx/community-hub-several.conf"), encoding: .utf8)
        let servers = text.split(separator: "\n").filter { $0.trimmingCharacters(in: .whitespaces).hasPrefix("server 127.0.0.1:") }
        #expect(servers.count >= 2 && text.contains("proxy_pass http://community_hub;"))
        // The same headers to the hub as the single process's site (its test checks them with a real hub).
        for header in ["X-Forwarded-Proto https", "X-Forwarded-For $remote_addr", "client_max_body_size 8m"] { #expect(text.contains(header)) }
        let nginx = "/usr/sbin/nginx"
        guard FileManager.default.isExecutableFile(atPath: nginx) else {
            print("DeploySeveralProcessesTests: \(nginx) is not installed here, the upstream was only read, not checked")
            return
        }
        let certs = try TestSupport.temporaryDirectory("several-certs")
        let made = try await TestSupport.run(Self.deploy.appendingPathComponent("make-certificates.sh").path, [certs.path, "localhost", "127.0.0.1"])
        #expect(made.status == 0, "\(made.output)")
        let directory = try TestSupport.temporaryDirectory("nginx-several")
        let site = text.replacingOccurrences(of: "listen 443 ssl;", with: "listen 127.0.0.1:\(try BrokerProcess.freeLoopbackPort()) ssl;")
            .replacingOccurrences(of: "listen 80;", with: "listen 127.0.0.1:\(try BrokerProcess.freeLoopbackPort());")
            .replacingOccurrences(of: "/etc/community-hub/certs", with: certs.path)
            .split(separator: "\n").filter { !$0.contains("[::]") }.joined(separator: "\n")
        let conf = try DeployTLSTests.nginxConfiguration(site: site, in: directory)
        let checked = try await TestSupport.run(nginx, ["-t", "-p", directory.path, "-c", conf.path])
        #expect(checked.status == 0, "nginx -t: \(checked.output)")
    }
}

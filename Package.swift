// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "community-hub",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "community-hub", targets: ["CommunityHub"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // libmosquitto, the system C library: a modulemap and a shim header, nothing else.
        .systemLibrary(
            name: "CMosquitto",
            pkgConfig: "libmosquitto",
            providers: [.apt(["libmosquitto-dev"])]
        ),
        // Units, instants and local dates, errors, roles and identities, JSON and settings
        // conventions: Foundation only, so no database, HTTP or MQTT package can reach it.
        .target(
            name: "HubCore",
            path: "Sources/Shared/Core",
            swiftSettings: strict
        ),
        .target(
            name: "Shared",
            dependencies: [
                "HubCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            exclude: ["Core"],
            swiftSettings: strict
        ),
        // The energy rules: decoders, reading sequences, slots, allocation, tariffs, the building
        // engine and their settings; pure Swift over the core's types.
        .target(
            name: "EnergyCore",
            dependencies: ["HubCore"],
            path: "Sources/EnergyHub/Core",
            swiftSettings: strict
        ),
        .target(
            name: "EnergyHub",
            dependencies: [
                "CMosquitto",
                "EnergyCore",
                "HubCore",
                "Shared",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            exclude: ["Core"],
            swiftSettings: strict
        ),
        // The car-share rules: bookings, trips, fees, the ledger and the hash chain.
        .target(
            name: "CarShareCore",
            dependencies: [
                "HubCore",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Sources/CarShare/Core",
            swiftSettings: strict
        ),
        .target(
            name: "CarShare",
            dependencies: [
                "CarShareCore",
                "HubCore",
                "Shared",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["Core"],
            swiftSettings: strict
        ),
        // Monthly statements: what households, buildings, associations and staff receive, as
        // values and in every format (JSON, French CSV, printable HTML). Pure: no database, HTTP or MQTT.
        .target(
            name: "HubStatements",
            dependencies: ["HubCore", "EnergyCore", "CarShareCore"],
            path: "Sources/CommunityHub/Statements",
            swiftSettings: strict
        ),
        // The web pages in French for residents, associations, drivers and staff, as HTML from the
        // cores' values: pure, no database, HTTP or MQTT (the routes that serve them are in HubApp).
        .target(
            name: "HubPages",
            dependencies: ["HubCore", "EnergyCore", "CarShareCore"],
            path: "Sources/CommunityHub/Pages",
            swiftSettings: strict
        ),
        // The application: the router, the composed services and the settings (tests use it).
        .target(
            name: "HubApp",
            dependencies: [
                "CarShareCore", "EnergyCore", "HubCore", "Shared", "EnergyHub", "CarShare", "HubStatements", "HubPages",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "Sources/CommunityHub/App",
            swiftSettings: strict
        ),
        // The demo, the meter simulator, the broker launcher and the benchmarks.
        .target(
            name: "HubTools",
            dependencies: [
                "HubApp", "CarShareCore", "EnergyCore", "HubCore", "Shared", "EnergyHub", "CarShare",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "Sources/CommunityHub/Tools",
            swiftSettings: strict
        ),
        // The command line: every `community-hub` command.
        .target(
            name: "HubCLI",
            dependencies: [
                "HubApp", "HubTools", "HubStatements", "CarShareCore", "EnergyCore", "HubCore", "Shared", "EnergyHub", "CarShare",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "Sources/CommunityHub/CLI",
            swiftSettings: strict
        ),
        // The executable: `@main` and nothing else.
        .executableTarget(
            name: "CommunityHub",
            dependencies: [
                "HubCLI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            exclude: ["App", "Tools", "CLI", "Statements", "Pages"],
            swiftSettings: strict
        ),
        // Helpers for tests: a real mosquitto broker on a free loopback port, temporary databases.
        .target(
            name: "HubTestSupport",
            dependencies: [
                "EnergyCore", "HubCore", "Shared", "EnergyHub", "HubTools",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/HubTestSupport",
            swiftSettings: strict
        ),
        .testTarget(
            name: "SharedTests",
            dependencies: [
                "HubCore", "Shared", "HubTestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "EnergyHubTests",
            dependencies: [
                "EnergyCore", "EnergyHub", "HubCore", "HubTools", "Shared", "HubTestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CarShareTests",
            dependencies: [
                "CarShare", "CarShareCore", "EnergyCore", "HubCore", "Shared", "HubTestSupport", "HubApp", "HubCLI", "HubTools", "HubStatements",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "StatementsTests",
            dependencies: [
                "HubStatements", "HubApp", "HubCLI", "HubTools", "EnergyHub", "EnergyCore", "CarShare", "CarShareCore", "HubCore", "Shared", "HubTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            exclude: ["Golden"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "PagesTests",
            dependencies: [
                "HubPages", "HubApp", "CarShare", "CarShareCore", "EnergyHub", "EnergyCore", "HubCore", "Shared", "HubTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "EnergyCore", "EnergyHub", "HubCore", "Shared", "HubTestSupport", "HubApp", "HubTools", "CarShare", "CarShareCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: strict
        ),
    ]
)

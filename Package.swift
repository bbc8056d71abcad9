// swift-tools-version: 6.2
import PackageDescription

// Layers (a module imports only those below it), see docs/development.md "Layout of the code":
//   executables -> BackupKit -> BackupStorage -> BackupInterop -> BackupCore
//   BackupInterop is the only user of the C modules.
let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "Contingency",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "backup-job", targets: ["backup-job"]),
        .executable(name: "restore-job", targets: ["restore-job"]),
        .executable(name: "cleanup-job", targets: ["cleanup-job"]),
        .executable(name: "health-sidecar", targets: ["health-sidecar"]),
        .executable(name: "contingency-guard", targets: ["contingency-guard"]),
        .library(name: "BackupKit", targets: ["BackupKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C libraries from Debian's -dev packages.
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CLibArchive", pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CMalloc"),
        .systemLibrary(name: "CLinux"),
        .systemLibrary(name: "CLibDeflate", pkgConfig: "libdeflate", providers: [.apt(["libdeflate-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),

        // Pure Swift: names, manifest, schedules, configuration, errors. No I/O.
        .target(name: "BackupCore", swiftSettings: strict),
        // The only module that touches C: one owning type per C handle, plus child processes.
        .target(
            name: "BackupInterop",
            dependencies: [
                "BackupCore", "CLibPQ", "CLibArchive", "CCurl", "COpenSSL", "CMalloc", "CLinux", "CLibDeflate", "CZstd",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The Storage protocol, the volume store, leases. Stores reach C (libcurl for S3) through BackupInterop.
        .target(
            name: "BackupStorage",
            dependencies: [
                "BackupCore", "BackupInterop", .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        // Use cases: runBackup, runRestore, verify, loops. Called by the executables and the tests alike. Records
        // metrics through swift-metrics' API with the factory it is given, never a Prometheus type.
        .target(
            name: "BackupKit",
            dependencies: [
                "BackupCore", "BackupStorage", "BackupInterop",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),

        .executableTarget(name: "backup-job", dependencies: ["BackupKit"], swiftSettings: strict),
        .executableTarget(name: "restore-job", dependencies: ["BackupKit"], swiftSettings: strict),
        .executableTarget(name: "cleanup-job", dependencies: ["BackupKit"], swiftSettings: strict),
        // The sidecar's HTTP server (routes, later the admin API and /metrics) and its ServiceGroup.
        .target(
            name: "HealthSidecar",
            dependencies: [
                "BackupKit", "BackupCore", "BackupStorage", "BackupInterop",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),

        .executableTarget(
            name: "health-sidecar",
            dependencies: [
                "HealthSidecar", "BackupKit", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict),
        // The benchmark's sidecar (bench/sidecar.sh): the sidecar's application and a backup in one process. Not a
        // product: never shipped.
        .executableTarget(
            name: "sidecar-load",
            dependencies: [
                "HealthSidecar", "BackupKit", "BackupCore", "BackupInterop",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "bench/SidecarLoad",
            swiftSettings: strict),
        // C, single-threaded: every child process of a job runs under it and ends with the job (ChildGuard).
        .executableTarget(name: "contingency-guard"),

        // Shared by every integration suite: throwaway PostgreSQL servers, job runners, fixtures.
        .target(
            name: "TestSupport",
            dependencies: ["BackupKit", "BackupCore"],
            path: "Tests/TestSupport",
            swiftSettings: strict
        ),
        .testTarget(name: "BackupCoreTests", dependencies: ["BackupCore"], swiftSettings: strict),
        .testTarget(
            name: "BackupInteropTests", dependencies: ["BackupInterop", "BackupCore", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "BackupStorageTests", dependencies: ["BackupStorage", "BackupInterop", "BackupCore", "TestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "BackupIntegrationTests",
            dependencies: [
                "BackupKit", "BackupCore", "BackupStorage", "BackupInterop", "TestSupport",
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "HealthSidecarTests",
            dependencies: [
                "HealthSidecar", "BackupKit", "BackupCore", "BackupStorage", "TestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
    ]
)

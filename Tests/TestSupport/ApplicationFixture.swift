import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A whole application to back up, for integration tests: a throwaway PostgreSQL server with a seeded
/// database, an uploads folder, a `.env`, a `package.json` and an empty backup store, all in temporary
/// folders. The jobs run as the real executables, configured through their environment.
///
/// `ApplicationFixture.with { app in … }` always stops the server and removes the folders.
public final class ApplicationFixture: Sendable {
    public let server: PostgresServer
    public let root: TemporaryDirectory
    public let database: String
    public let backupDirectory: URL
    public let uploadsDirectory: URL
    public let envFile: URL
    public let appDirectory: URL

    private init(server: PostgresServer, root: TemporaryDirectory, database: String) throws {
        self.server = server
        self.root = root
        self.database = database
        backupDirectory = root.appending("backups", isDirectory: true)
        appDirectory = root.appending("app", isDirectory: true)
        uploadsDirectory = appDirectory.appendingPathComponent("uploads", isDirectory: true)
        envFile = appDirectory.appendingPathComponent(".env")
        for folder in [backupDirectory, uploadsDirectory] {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        }
        // Other users (a job run as `nobody` in a test) must be able to walk into the folders.
        chmod(root.path, 0o755)
    }

    /// Starts a server, seeds `visual_db`, fills the uploads and writes `.env` and `package.json`; runs `body`;
    /// always cleans up.
    public static func with<T>(
        uploadFiles: Int = 30,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (ApplicationFixture) async throws -> T
    ) async throws -> T {
        try await PostgresServer.with { server in
            let app = try ApplicationFixture(server: server, root: try TemporaryDirectory(prefix: "contingency-app"), database: "visual_db")
            defer { app.root.remove() }
            try await server.createDatabase(app.database)
            try await server.seedSampleData(database: app.database)
            try FileTreeSnapshot.makeSampleUploads(in: app.uploadsDirectory, fileCount: uploadFiles)
            try Data("DATABASE_URL=postgres://app@db/visual_db\nSESSION_SECRET=s3cr3t-value\n".utf8).write(to: app.envFile)
            chmod(app.envFile.path, 0o600)
            try Data(#"{"name":"visual-platform","version":"1.5.0"}"#.utf8)
                .write(to: app.appDirectory.appendingPathComponent("package.json"))
            return try await body(app)
        }
    }

    /// The jobs' environment: store, database (password only in `PGPASSWORD`), application paths, a short lease.
    public func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var environment = server.environment
        environment.merge([
            "BACKUP_DIR": backupDirectory.path,
            "DATABASE_NAME": database,
            "UPLOADS_DIR": uploadsDirectory.path,
            "ENV_FILE": envFile.path,
            "APP_DIR": appDirectory.path,
            "PG_BIN_DIR": server.binDir.path,
            "LOCK_TTL": "3s",
        ]) { _, new in new }
        environment.merge(extra) { _, new in new }
        return environment
    }

    /// Runs `backup-job`, `restore-job`, … to completion.
    public func run(_ job: String, _ arguments: [String] = [], environment extra: [String: String] = [:]) async throws -> ProcessResult {
        try await ProcessRunner.run(Self.executable(job), arguments, environment: environment(extra), timeout: .seconds(300))
    }

    /// Starts a job in the background (to kill it midway or to race it against another).
    public func launch(_ job: String, _ arguments: [String] = [], environment extra: [String: String] = [:]) throws -> LaunchedProcess {
        try ProcessRunner.launch(Self.executable(job), arguments, environment: environment(extra))
    }

    /// Everything a restore must bring back: the database's rows, the uploads' bytes, the .env's bytes.
    public func snapshot() async throws -> ApplicationSnapshot {
        ApplicationSnapshot(
            database: try await server.snapshot(database: database),
            uploads: try FileTreeSnapshot.take(uploadsDirectory),
            env: (try? Data(contentsOf: envFile)) ?? Data())
    }

    /// File names in the store's top folder (archives, manifests), sorted.
    public func storeFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: backupDirectory.path).filter { !$0.hasPrefix(".") }.sorted()
    }

    /// Files left in the store's temporary folder.
    public func temporaryFiles() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: backupDirectory.appendingPathComponent(".contingency/tmp").path)) ?? []
    }

    /// The folder holding the built executables: beside the test bundle, or `.build/debug`, or `CONTINGENCY_BIN_DIR`.
    public static func executable(_ name: String) -> String {
        if let configured = ProcessInfo.processInfo.environment["CONTINGENCY_BIN_DIR"] { return "\(configured)/\(name)" }
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var candidates = [beside.appendingPathComponent(name).path]
        // …/Tests/TestSupport/ApplicationFixture.swift → package root
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(packageRoot.appendingPathComponent(".build/debug/\(name)").path)
        return candidates.first { access($0, X_OK) == 0 } ?? candidates[0]
    }
}

/// The application's whole state, compared before a backup and after a restore.
public struct ApplicationSnapshot: Equatable, Sendable {
    public let database: DatabaseSnapshot
    public let uploads: FileTreeSnapshot
    public let env: Data
}

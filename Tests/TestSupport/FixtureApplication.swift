import Foundation

/// The stand-in application of the health and rollback tests (`deploy/compose/app/app.py`), as its own
/// process on 127.0.0.1: `/healthz` answers 200 only while its database query succeeds and its required upload
/// is readable, so dropping a table or deleting the uploads breaks it as a failed deploy would.
///
/// Or, `scripted`, it answers the statuses written to a file, one per request, for tests that need health to
/// change on cue (flapping). `with { }` always stops it; a forgotten one is killed when deallocated.
public final class FixtureApplication: Sendable {
    /// The port it listens on (127.0.0.1), chosen by the kernel.
    public let port: Int
    /// Its `/healthz`, for HEALTH_CHECK_URL.
    public var healthURL: String { "http://127.0.0.1:\(port)/healthz" }
    /// In scripted mode, the file of statuses to come.
    public let statusFile: URL?

    private let serverProcess: ServerProcess

    private init(process: LaunchedProcess, port: Int, statusFile: URL?) {
        serverProcess = ServerProcess(process)
        self.port = port
        self.statusFile = statusFile
    }

    deinit {
        if !serverProcess.isStopped {
            serverProcess.process.kill(SIGKILL, includingChildren: true)
        }
    }

    /// The script, `deploy/compose/app/app.py` in this package's source tree.
    public static var scriptURL: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("deploy/compose/app/app.py")
    }

    /// Starts it in front of `app`'s database and uploads; healthy while `users` can be counted and
    /// `requiredFile` (a path inside the uploads) can be read.
    public static func start(for app: ApplicationFixture, requiredFile: String = "documents/2024/03/notes.txt")
        async throws
        -> FixtureApplication
    {
        var environment = app.server.environment
        environment.merge([
            "PGDATABASE": app.database, "PG_BIN_DIR": app.server.binDir.path,
            "FIXTURE_UPLOADS": app.uploadsDirectory.path, "FIXTURE_REQUIRED_FILE": requiredFile,
        ]) { _, new in new }
        return try await launch([], environment: environment, statusFile: nil)
    }

    /// Starts it scripted: `/healthz` answers `statuses` one per request, then the last one for good.
    public static func startScripted(_ statuses: [Int], folder: TemporaryDirectory) async throws -> FixtureApplication {
        let file = folder.appending("fixture-statuses")
        try Data(statuses.map(String.init).joined(separator: " ").utf8).write(to: file)
        return try await launch(["--status-file", file.path], environment: [:], statusFile: file)
    }

    /// `start(for:requiredFile:)`, `body`, then stop, whether `body` returns or throws.
    public static func with<T>(
        _ app: ApplicationFixture, requiredFile: String = "documents/2024/03/notes.txt",
        isolation: isolated (any Actor)? = #isolation, _ body: (FixtureApplication) async throws -> T
    ) async throws -> T {
        try await ServerProcess.run(
            try await start(for: app, requiredFile: requiredFile), stoppingWith: { await $0.stop() }, body)
    }

    /// `startScripted`, `body`, then stop, whether `body` returns or throws.
    public static func withScripted<T>(
        _ statuses: [Int], folder: TemporaryDirectory, isolation: isolated (any Actor)? = #isolation,
        _ body: (FixtureApplication) async throws -> T
    ) async throws -> T {
        try await ServerProcess.run(
            try await startScripted(statuses, folder: folder), stoppingWith: { await $0.stop() }, body)
    }

    /// The statuses still to come in scripted mode (the last one stays).
    public func remainingStatuses() -> [Int] {
        guard let statusFile, let text = try? String(contentsOf: statusFile, encoding: .utf8) else { return [] }
        return text.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\n" }).compactMap { Int($0) }
    }

    /// Replaces the statuses to come in scripted mode.
    public func script(_ statuses: [Int]) throws {
        guard let statusFile else { throw TestSupportError("FixtureApplication: not started scripted") }
        let temporary = statusFile.appendingPathExtension("new")
        try Data(statuses.map(String.init).joined(separator: " ").utf8).write(to: temporary)
        _ = try FileManager.default.replaceItemAt(statusFile, withItemAt: temporary)
    }

    /// The status `/healthz` answers now, or nil when nothing answers. (In scripted mode it consumes one.)
    public func probe() async -> Int? { await httpStatus(healthURL, maxTime: 10) }

    /// SIGTERM, SIGKILL after 5 s; returns once it is gone. Idempotent.
    public func stop() async { await serverProcess.stop() }

    private static func launch(_ arguments: [String], environment: [String: String], statusFile: URL?) async throws
        -> FixtureApplication
    {
        var environment = environment
        environment.merge(["PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", "FIXTURE_PORT": "0"]) { _, new in
            new
        }
        let process = try ProcessRunner.launch("python3", [scriptURL.path] + arguments, environment: environment)
        do {
            var port: Int?
            try await eventually(timeout: .seconds(90), "the fixture application to listen") {
                guard process.isRunning else {
                    throw TestSupportError("the fixture application exited: \(process.stderrSoFar)")
                }
                port =
                    process.stdoutSoFar.split(separator: "\n").lazy.compactMap { line in
                        line.hasPrefix("listening on ") ? Int(line.dropFirst("listening on ".count)) : nil
                    }.first
                return port != nil
            }
            return FixtureApplication(process: process, port: port!, statusFile: statusFile)
        } catch {
            await process.terminateAndWait()
            throw error
        }
    }
}

import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The per-test-process state behind `PostgresServer`: one `initdb` run whose data directory is
/// copied for every server, the directory everything lives in, the servers still running (so they
/// are shut down when the process exits), and running commands as the `postgres` user.
enum PostgresTemplate {
    /// An initialized cluster directory and what is needed to copy and start it.
    struct Cluster: Sendable {
        /// `/tmp/contingency-pg.<pid>.XXXXXX` (mode 0755): holds the template and every server's directory.
        let root: TemporaryDirectory
        /// The `initdb` output; never started, only copied.
        let dataDirectory: URL
        /// The superuser's password.
        let password: String
        /// How long initdb took, for diagnostics.
        let initdbDuration: Duration
    }

    /// Where the PostgreSQL 15 binaries are; `CONTINGENCY_PG_BIN` overrides the Debian location.
    static let binDir: URL = URL(
        fileURLWithPath: ProcessInfo.processInfo.environment["CONTINGENCY_PG_BIN"] ?? "/usr/lib/postgresql/15/bin",
        isDirectory: true
    )

    /// Prefix of the root directory's name; the test process id follows, so stale ones can be found.
    static let rootPrefix = "contingency-pg"

    private static let cache = Mutex<Task<Cluster, any Error>?>(nil)
    private static let liveDataDirectories = Mutex<Set<String>>([])
    private static let rootForExit = Mutex<String?>(nil)

    /// The template cluster, created by the first caller; concurrent callers share that one run.
    /// A failed run is not cached, so a later caller tries again.
    static func shared() async throws -> Cluster {
        let task = cache.withLock { cached in
            if let cached { return cached }
            let task = Task<Cluster, any Error>.detached { try await createCluster() }
            cached = task
            return task
        }
        do {
            return try await task.value
        } catch {
            cache.withLock { cached in
                if cached == task { cached = nil }
            }
            throw error
        }
    }

    // MARK: - Running as postgres

    /// The postgres account's uid and gid when we are root (commands must then run as that user).
    static let postgresAccount: (uid: uid_t, gid: gid_t)? = {
        guard geteuid() == 0 else { return nil }
        guard let entry = getpwnam("postgres") else { return nil }
        return (entry.pointee.pw_uid, entry.pointee.pw_gid)
    }()

    /// The environment for server-side commands: nothing inherited from the test process
    /// (a developer's PGDATA or PGPORT must not leak in), UTC, C.UTF-8.
    static var serverEnvironment: [String: String] {
        ["PATH": "\(binDir.path):/usr/bin:/bin", "LANG": "C.UTF-8", "TZ": "UTC"]
    }

    /// Runs a PostgreSQL binary as the postgres user (through runuser when we are root).
    static func runAsPostgres(
        _ binary: String, _ arguments: [String], timeout: Duration = .seconds(120), workingDirectory: URL
    ) async throws -> ProcessResult {
        let path = binDir.appendingPathComponent(binary).path
        let (executable, fullArguments) = postgresAccount == nil
            ? (path, arguments)
            : ("/usr/sbin/runuser", ["-u", "postgres", "--", path] + arguments)
        return try await ProcessRunner.run(
            executable, fullArguments, environment: serverEnvironment, inheritEnvironment: false,
            workingDirectory: workingDirectory, timeout: timeout)
    }

    /// Gives `url` to the postgres user when we are root (no-op otherwise).
    static func chownToPostgres(_ url: URL) throws {
        guard let account = postgresAccount else { return }
        guard chown(url.path, account.uid, account.gid) == 0 else {
            throw TestSupportError("chown postgres \(url.path) failed: \(String(cString: strerror(errno)))")
        }
    }

    // MARK: - Live servers

    /// Records a running server so that it is shut down if the test process exits first.
    static func register(dataDirectory: URL) {
        _ = liveDataDirectories.withLock { $0.insert(dataDirectory.path) }
    }

    /// Forgets a server that was stopped.
    static func unregister(dataDirectory: URL) {
        _ = liveDataDirectories.withLock { $0.remove(dataDirectory.path) }
    }

    /// The postmaster's pid from `postmaster.pid`, if the file is there.
    static func postmasterPID(dataDirectory: URL) -> pid_t? {
        let file = dataDirectory.appendingPathComponent("postmaster.pid").path
        guard let text = try? String(contentsOfFile: file, encoding: .utf8),
              let first = text.split(separator: "\n").first,
              let pid = pid_t(first.trimmingCharacters(in: .whitespaces)), pid > 0
        else { return nil }
        return pid
    }

    /// The pid of the postmaster running on `dataDirectory`, if there is one. postmaster.pid may
    /// be stale and its pid reused, so the process's command line must name the directory.
    static func livePostmasterPID(dataDirectory: URL) -> pid_t? {
        guard let pid = postmasterPID(dataDirectory: dataDirectory), kill(pid, 0) == 0,
              let commandLine = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"),
              String(decoding: commandLine, as: UTF8.self).contains(dataDirectory.path)
        else { return nil }
        return pid
    }

    /// Whether a postmaster is running on `dataDirectory`.
    static func isPostmasterAlive(dataDirectory: URL) -> Bool {
        livePostmasterPID(dataDirectory: dataDirectory) != nil
    }

    /// Sends SIGQUIT (immediate shutdown) to the postmaster of `dataDirectory` and waits up to
    /// `wait` for it to go; SIGKILL if it is still there. Synchronous, for deinit and exit.
    static func shutDownImmediately(dataDirectory: URL, wait: Duration = .seconds(5)) {
        guard let pid = livePostmasterPID(dataDirectory: dataDirectory) else { return }
        kill(pid, SIGQUIT)
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: wait)
        while kill(pid, 0) == 0 && clock.now < deadline { usleep(5_000) }
        if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
    }

    // MARK: - Creating the template

    private static func createCluster() async throws -> Cluster {
        removeStaleRoots()
        let root = try TemporaryDirectory(prefix: "\(rootPrefix).\(getpid())", in: URL(fileURLWithPath: "/tmp"))
        // The postgres user must be able to traverse it to reach its own sub-directories.
        guard chmod(root.path, 0o755) == 0 else {
            throw TestSupportError("chmod 0755 \(root.path) failed: \(String(cString: strerror(errno)))")
        }
        rootForExit.withLock { $0 = root.path }
        installExitHandler()

        let dataDirectory = root.appending("template", isDirectory: true)
        guard mkdir(dataDirectory.path, 0o700) == 0 else {
            throw TestSupportError("mkdir \(dataDirectory.path) failed: \(String(cString: strerror(errno)))")
        }
        try chownToPostgres(dataDirectory)

        let password = randomHex(byteCount: 16)
        let passwordFile = root.appending("pwfile")
        try Data((password + "\n").utf8).write(to: passwordFile)
        guard chmod(passwordFile.path, 0o600) == 0 else {
            throw TestSupportError("chmod 0600 \(passwordFile.path) failed")
        }
        try chownToPostgres(passwordFile)
        defer { try? FileManager.default.removeItem(at: passwordFile) }

        let clock = ContinuousClock()
        let started = clock.now
        let result = try await runAsPostgres("initdb", [
            "--pgdata=\(dataDirectory.path)",
            "--username=postgres",
            "--pwfile=\(passwordFile.path)",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ], workingDirectory: root.url)
        guard result.succeeded else {
            throw TestSupportError("initdb failed: \(result)")
        }
        return Cluster(root: root, dataDirectory: dataDirectory, password: password,
                       initdbDuration: clock.now - started)
    }

    /// Random bytes as lowercase hex.
    static func randomHex(byteCount: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<byteCount).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }
            .joined()
    }

    // MARK: - Cleanup

    private static func installExitHandler() {
        atexit {
            PostgresTemplate.cleanUpAtExit()
        }
    }

    /// Shuts down servers that tests left running and removes the root directory.
    private static func cleanUpAtExit() {
        let live = liveDataDirectories.withLock { $0 }
        for path in live {
            shutDownImmediately(dataDirectory: URL(fileURLWithPath: path, isDirectory: true))
        }
        if let root = rootForExit.withLock({ $0 }) {
            TemporaryDirectory.removeTree(at: URL(fileURLWithPath: root, isDirectory: true))
        }
    }

    /// Removes root directories left by test processes that died without cleaning up (crash,
    /// SIGKILL), shutting down any server still running from them.
    private static func removeStaleRoots() {
        let tmp = URL(fileURLWithPath: "/tmp", isDirectory: true)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: tmp.path) else { return }
        for name in names where name.hasPrefix(rootPrefix + ".") {
            let parts = name.split(separator: ".")
            guard parts.count == 3, let owner = pid_t(parts[1]), owner != getpid() else { continue }
            guard kill(owner, 0) != 0 && errno == ESRCH else { continue }  // its process is still alive
            let stale = tmp.appendingPathComponent(name, isDirectory: true)
            let children = (try? FileManager.default.contentsOfDirectory(atPath: stale.path)) ?? []
            for child in children {
                shutDownImmediately(dataDirectory: stale.appendingPathComponent(child).appendingPathComponent("data"))
                shutDownImmediately(dataDirectory: stale.appendingPathComponent(child))
            }
            TemporaryDirectory.removeTree(at: stale)
        }
    }
}

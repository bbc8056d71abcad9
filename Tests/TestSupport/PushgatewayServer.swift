import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A throwaway Prometheus Pushgateway (Debian's `prometheus-pushgateway`) on 127.0.0.1, for the tests of the jobs'
/// pushes: its own process on a free port, its own temporary folder, metrics kept in memory only. With
/// `basicAuth`, it requires a random user name and password (its `--web.config.file`, the password stored as a
/// bcrypt hash made by python3's `crypt`, i.e. libcrypt). `with { }` stops it whatever the body does; its folder
/// goes with it (`TemporaryDirectory`).
public final class PushgatewayServer: Sendable {
    public static let executable = "/usr/bin/prometheus-pushgateway"

    public let port: Int
    /// `http://127.0.0.1:PORT`, without credentials.
    public let baseURL: String
    public let user: String?
    public let password: String?
    private let serverProcess: ServerProcess
    private let directory: TemporaryDirectory
    private var process: LaunchedProcess { serverProcess.process }

    /// The URL a job is given (PUSHGATEWAY_URL): with the credentials when the gateway requires them.
    public var pushURL: String {
        guard let user, let password else { return baseURL }
        return "http://\(user):\(password)@127.0.0.1:\(port)"
    }

    private init(process: LaunchedProcess, port: Int, user: String?, password: String?, directory: TemporaryDirectory) {
        serverProcess = ServerProcess(process)
        self.port = port
        baseURL = "http://127.0.0.1:\(port)"
        self.user = user
        self.password = password
        self.directory = directory
    }

    deinit {
        if !serverProcess.isStopped {
            process.kill(SIGKILL, includingChildren: true)
            _ = try? process.waitForExitBlocking(timeout: .seconds(5))
        }
    }

    /// Starts a gateway, runs `body` with it, and stops it (and removes its folder) whether `body` returns or throws.
    public static func with<T>(
        basicAuth: Bool = false, isolation: isolated (any Actor)? = #isolation,
        _ body: (PushgatewayServer) async throws -> T
    ) async throws -> T {
        try await ServerProcess.run(
            try await start(basicAuth: basicAuth),
            stoppingWith: { server in
                await server.serverProcess.stop()
                server.directory.remove()
            }, body)
    }

    /// What the gateway serves on `/metrics` now (what Prometheus would scrape), asked with curl; the credentials
    /// go to curl on its standard input, never in its arguments.
    public func metrics() async throws -> String {
        let result = try await curl(baseURL + "/metrics")
        guard result.succeeded else { throw TestSupportError("GET \(baseURL)/metrics failed: \(result)") }
        return result.stdout
    }

    /// Everything the gateway logged so far.
    public var log: String { process.stderrSoFar + process.stdoutSoFar }

    private func curl(_ url: String) async throws -> ProcessResult {
        let config = user.map { "user = \"\($0):\(password ?? "")\"\n" } ?? ""
        return try await ProcessRunner.run(
            "curl", ["-sS", "--fail", "--max-time", "10", "-K", "-", url], stdin: Data(config.utf8),
            timeout: .seconds(30))
    }

    static func start(basicAuth: Bool) async throws -> PushgatewayServer {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw TestSupportError(
                "\(executable) is missing: install Debian's Pushgateway (apt-get install prometheus-pushgateway, as scripts/install-deps.sh does)"
            )
        }
        let directory = try TemporaryDirectory(prefix: "contingency-pushgateway")
        var arguments = ["--persistence.file=", "--log.level=info"]
        var user: String?
        var password: String?
        if basicAuth {
            let name = "pusher-\(UUID().uuidString.prefix(6).lowercased())"
            let secret = "pw-\(UUID().uuidString.replacingOccurrences(of: "-", with: ""))"
            let hash = try await ProcessRunner.run(
                "python3",
                [
                    "-W", "ignore", "-c",
                    "import crypt, sys; print(crypt.crypt(sys.stdin.read(), crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))",
                ],
                stdin: Data(secret.utf8))
            let bcrypt = hash.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            guard hash.succeeded, bcrypt.hasPrefix("$2") else {
                throw TestSupportError("python3 could not make a bcrypt hash with its crypt module (libcrypt): \(hash)")
            }
            let config = directory.appending("web.yml")
            try Data("basic_auth_users:\n  \(name): '\(bcrypt)'\n".utf8).write(to: config)
            arguments.append("--web.config.file=\(config.path)")
            (user, password) = (name, secret)
        }
        var lastFailure = ""
        for _ in 0..<5 {
            let port = try FreePort.pick()
            let process = try ProcessRunner.launch(
                executable, arguments + ["--web.listen-address=127.0.0.1:\(port)"], workingDirectory: directory.url)
            let server = PushgatewayServer(
                process: process, port: port, user: user, password: password, directory: directory)
            do {
                var exited = false
                try await eventually(timeout: .seconds(30), pollInterval: .milliseconds(50), "the Pushgateway ready") {
                    if !process.isRunning {
                        exited = true
                        return true
                    }
                    return try await server.curl(server.baseURL + "/-/ready").succeeded
                }
                guard exited else { return server }
                lastFailure = server.log
                await server.serverProcess.stop()
                guard lastFailure.contains("address already in use") else { break }
            } catch {
                await server.serverProcess.stop()
                throw TestSupportError("the Pushgateway did not become ready: \(error)\n\(server.log)")
            }
        }
        throw TestSupportError("the Pushgateway did not start: \(lastFailure)")
    }
}

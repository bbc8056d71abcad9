import Foundation

/// A throwaway Prometheus server (Debian's `prometheus`) on 127.0.0.1, scraping the targets a test gives every
/// `interval`, with its own configuration and data in a temporary folder; for tests that check what a real
/// Prometheus makes of the sidecar's `/metrics` (and of alert rules, with `ruleFiles`).
///
/// Use `PrometheusServer.with(scraping:) { server in … }`, which always stops the server; a forgotten one is
/// killed when deallocated. `query(_:)` asks its HTTP API (`/api/v1/query`) through curl, as an operator would.
public final class PrometheusServer: Sendable {
    /// Where Debian's package installs it.
    public static let executable = "/usr/bin/prometheus"

    /// The port its HTTP API listens on (127.0.0.1).
    public let port: Int
    /// "http://127.0.0.1:PORT".
    public var url: String { "http://127.0.0.1:\(port)" }
    /// Its configuration, data and log.
    public let folder: TemporaryDirectory

    private let serverProcess: ServerProcess

    private init(process: LaunchedProcess, port: Int, folder: TemporaryDirectory) {
        serverProcess = ServerProcess(process)
        self.port = port
        self.folder = folder
    }

    deinit {
        if !serverProcess.isStopped { serverProcess.process.kill(SIGKILL, includingChildren: true) }
        folder.remove()
    }

    /// One series of a query's answer: its labels (with `__name__`) and its value.
    public struct Sample: Sendable, Equatable {
        public let labels: [String: String]
        public let value: Double
    }

    /// What Prometheus printed so far (its log), for failure messages.
    public var logContents: String { serverProcess.process.stderrSoFar + serverProcess.process.stdoutSoFar }

    /// Starts a server scraping `targets` ("127.0.0.1:PORT") at `metricsPath` every `interval` (which is also the
    /// scrape timeout), evaluating `ruleFiles` as often; returns once it answers `/-/ready`. Throws, saying how to
    /// install it, when Prometheus is not installed.
    public static func start(
        scraping targets: [String], metricsPath: String = "/metrics", interval: Duration = .seconds(1),
        ruleFiles: [URL] = []
    ) async throws -> PrometheusServer {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw TestSupportError(
                "\(executable) is missing: install Debian's Prometheus with `apt-get install -y prometheus` (scripts/install-deps.sh does)"
            )
        }
        let seconds = max(1, Int(interval.components.seconds))
        var lastFailure = ""
        for _ in 0..<5 {
            let folder = try TemporaryDirectory(prefix: "contingency-prometheus")
            let configuration = folder.appending("prometheus.yml")
            try Data(
                Self.configuration(targets: targets, metricsPath: metricsPath, seconds: seconds, ruleFiles: ruleFiles)
                    .utf8
            ).write(to: configuration)
            let port = try FreePort.pick()
            let process = try ProcessRunner.launch(
                executable,
                [
                    "--config.file=\(configuration.path)", "--storage.tsdb.path=\(folder.appending("data").path)",
                    "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn",
                ])
            let server = PrometheusServer(process: process, port: port, folder: folder)
            do {
                try await eventually(timeout: .seconds(60), "Prometheus to be ready on port \(port)") {
                    guard process.isRunning else { return true }
                    return await httpStatus("http://127.0.0.1:\(port)/-/ready", maxTime: 5) == 200
                }
                if process.isRunning { return server }
                // It exited: most likely another process took the port between FreePort and its bind.
                lastFailure = "it exited:\n\(server.logContents)"
            } catch {
                // Running but silent for a minute (seen once in a full local run on 2 busy cores, its log empty):
                // tried again on another port and folder, as an exit is; the last such failure is reported.
                lastFailure = "it did not get ready: \(error)\n\(server.logContents)"
            }
            await server.stop()
        }
        throw TestSupportError("Prometheus could not start in 5 attempts; the last one: \(lastFailure)")
    }

    /// Starts a server, runs `body` with it and stops it whether `body` returns or throws.
    public static func with<T>(
        scraping targets: [String], metricsPath: String = "/metrics", interval: Duration = .seconds(1),
        ruleFiles: [URL] = [], isolation: isolated (any Actor)? = #isolation,
        _ body: (PrometheusServer) async throws -> T
    ) async throws -> T {
        try await ServerProcess.run(
            try await start(scraping: targets, metricsPath: metricsPath, interval: interval, ruleFiles: ruleFiles),
            stoppingWith: { await $0.stop() }, body)
    }

    /// SIGTERM, SIGKILL after 5 s; returns once it is gone. Idempotent.
    public func stop() async { await serverProcess.stop() }

    /// The instant vector `promql` evaluates to now. Throws when the API answers with an error (a bad query)
    /// or not at all.
    public func query(_ promql: String) async throws -> [Sample] {
        let result = try await ProcessRunner.run(
            "curl",
            ["-s", "--max-time", "10", "-G", "--data-urlencode", "query=\(promql)", "\(url)/api/v1/query"],
            timeout: .seconds(30))
        guard result.succeeded,
            let body = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        else {
            throw TestSupportError("Prometheus' API did not answer \(promql): \(result)\n\(logContents)")
        }
        guard body["status"] as? String == "success", let data = body["data"] as? [String: Any],
            let series = data["result"] as? [[String: Any]]
        else {
            throw TestSupportError("Prometheus refused \(promql): \(result.stdout)")
        }
        return series.compactMap { entry in
            guard let labels = entry["metric"] as? [String: String], let pair = entry["value"] as? [Any],
                pair.count == 2, let text = pair[1] as? String, let value = Double(text)
            else { return nil }
            return Sample(labels: labels, value: value)
        }
    }

    /// The targets' health as Prometheus last saw it (`up`), with its last scrape error, for failure messages.
    public func targets() async -> String {
        let result = try? await ProcessRunner.run(
            "curl", ["-s", "--max-time", "10", "\(url)/api/v1/targets"], timeout: .seconds(30))
        return result?.stdout ?? "(no answer)"
    }

    static func configuration(targets: [String], metricsPath: String, seconds: Int, ruleFiles: [URL]) -> String {
        let quoted = targets.map { "'\($0)'" }.joined(separator: ", ")
        var text = """
            global:
              scrape_interval: \(seconds)s
              scrape_timeout: \(seconds)s
              evaluation_interval: \(seconds)s
            scrape_configs:
              - job_name: contingency
                metrics_path: '\(metricsPath)'
                static_configs:
                  - targets: [\(quoted)]

            """
        if !ruleFiles.isEmpty {
            text += "rule_files:\n" + ruleFiles.map { "  - '\($0.path)'\n" }.joined()
        }
        return text
    }
}

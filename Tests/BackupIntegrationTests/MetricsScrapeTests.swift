import BackupCore
import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The sidecar's `GET /metrics` from the real `health-sidecar --loop` process after a real `backup-job` run:
/// checked by promtool (Debian's `prometheus` package) and scraped by a real Prometheus server whose HTTP API
/// gives the series back. The in-process checks (route labels, a malformed file, a slow bucket) are in
/// HealthSidecarTests (MetricsRouteTests).
// One test at a time: each runs PostgreSQL, the fixture application and a sidecar probing every second.
@Suite("Sidecar metrics, live", .serialized)
struct MetricsScrapeTests {
    static let token = "metrics-test-token-0123456789abcdef"

    /// `GET /metrics` of the sidecar on `port`: the body (the test fails on any status but 200).
    static func scrape(port: Int) async throws -> String {
        let result = try await ProcessRunner.run(
            "curl",
            ["-s", "--max-time", "30", "-w", "\n%{http_code} %{content_type}", "http://127.0.0.1:\(port)/metrics"],
            timeout: .seconds(60))
        var lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let status = lines.popLast() ?? ""
        try #require(status == "200 text/plain; version=0.0.4; charset=utf-8", "\(result)")
        return lines.joined(separator: "\n")
    }

    /// The value of the series `name{labels}` in `text`, if served.
    static func value(_ text: String, _ name: String, _ labels: [String: String] = [:]) throws -> Double? {
        try PrometheusText.parse(text).first { $0.name == name }?.value(labels)
    }

    /// The newest manifest in `app`'s store.
    static func manifest(_ app: ApplicationFixture) throws -> Manifest {
        let name = try #require(try app.storeFiles().last { $0.hasSuffix(".json") })
        let data = try Data(contentsOf: app.backupDirectory.appendingPathComponent(name))
        return try ContingencyJSON.decoder().decode(Manifest.self, from: data)
    }

    /// A drill's file as a job publishes it, with a last verification the store's own value must win over.
    static func publishDrillFile(_ app: ApplicationFixture) throws {
        let folder = app.backupDirectory.appendingPathComponent(".contingency/metrics")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data(
            """
            # HELP contingency_drill_success Whether the last restore drill passed (1) or not (0).
            # TYPE contingency_drill_success gauge
            contingency_drill_success 1
            # HELP contingency_backup_last_verified_timestamp_seconds Time of the newest passing restore drill.
            # TYPE contingency_backup_last_verified_timestamp_seconds gauge
            contingency_backup_last_verified_timestamp_seconds 12345

            """.utf8
        ).write(to: folder.appendingPathComponent("drill.prom"))
    }

    @Test(
        "promtool check metrics has nothing to say about a live scrape after a backup; every family of the sidecar and the store has its value"
    )
    func promtoolOnLiveScrape() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool") else {
            Issue.record("promtool is missing: install Debian's prometheus package (apt-get install -y prometheus)")
            return
        }
        try await ApplicationFixture.with(uploadFiles: 12) { app in
            try #require(try await app.run("backup-job").succeeded)
            let manifest = try Self.manifest(app)
            try Self.publishDrillFile(app)
            try await FixtureApplication.with(app) { fixture in
                let sidecar = try await HealthSidecarTests.launchSidecar(
                    app, id: "metrics-a", url: fixture.healthURL, ["API_ADMIN_TOKEN": Self.token])
                do {
                    let list = try await ProcessRunner.run(
                        "curl",
                        [
                            "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "X-API-Token: \(Self.token)",
                            "http://127.0.0.1:\(sidecar.port)/api/backups",
                        ])
                    #expect(list.stdout == "200", "\(list)")
                    var text = ""
                    do {
                        try await eventually(timeout: .seconds(90), "a healthy probe counted") {
                            text = try await Self.scrape(port: sidecar.port)
                            let healthy = try Self.value(text, "contingency_health_probes_total", ["result": "healthy"])
                            return (healthy ?? 0) >= 1
                        }
                    } catch {
                        Issue.record("last scrape:\n\(text)\nsidecar:\n\(sidecar.output)")
                        throw error
                    }
                    let promtool = try await ProcessRunner.run(
                        "promtool", ["check", "metrics"], stdin: Data(text.utf8), timeout: .seconds(60))
                    #expect(promtool.status == 0 && (promtool.stdout + promtool.stderr).isEmpty, "\(promtool)\n\(text)")

                    // A: the sidecar's own registry.
                    #expect(try Self.value(text, "contingency_health_probes_total", ["result": "unhealthy"]) == 0)
                    #expect(try Self.value(text, "contingency_health_consecutive_failures") == 0)
                    let lastProbe = try #require(
                        try Self.value(text, "contingency_health_last_probe_timestamp_seconds"))
                    #expect(abs(lastProbe - Date().timeIntervalSince1970) < 120, "\(lastProbe)")
                    #expect(
                        try Self.value(
                            text, "contingency_api_requests_total", ["route": "/api/backups", "status": "200"]) == 1,
                        "\(text)")
                    for destination in ["backup_webhook", "rollback_webhook", "ping"] {
                        #expect(
                            try Self.value(
                                text, "contingency_webhook_failures_total",
                                ["source": "sidecar", "destination": destination]) == 0, "\(text)")
                    }
                    // B: the store, read at scrape time.
                    #expect(try Self.value(text, "contingency_backups", ["store": "volume"]) == 1, "\(text)")
                    #expect(
                        try Self.value(text, "contingency_backup_last_size_bytes") == Double(manifest.archive.size))
                    let completed = try #require(manifest.completed, "the manifest records its completion")
                    let lastSuccess = try #require(
                        try Self.value(text, "contingency_backup_last_success_timestamp_seconds"))
                    #expect(abs(lastSuccess - completed.timeIntervalSince1970) < 0.01, "\(text)")
                    let duration = try #require(try Self.value(text, "contingency_backup_last_duration_seconds"))
                    #expect(abs(duration - (manifest.duration ?? -1)) < 0.01, "\(text)")
                    #expect(try Self.value(text, "contingency_backup_previous_size_bytes") == nil, "one backup only")
                    // No drill ever passed on a backup: the store says 0, and wins over the job file's value.
                    #expect(try Self.value(text, "contingency_backup_last_verified_timestamp_seconds") == 0, "\(text)")
                    #expect((try Self.value(text, "contingency_store_free_bytes", ["store": "volume"]) ?? 0) > 0)
                    // C: the job's file, merged.
                    #expect(try Self.value(text, "contingency_drill_success") == 1, "\(text)")
                    // One HELP and one TYPE per family.
                    let types = text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }
                    #expect(Set(types).count == types.count, "\(text)")
                    // A second backup: counted, and the first becomes the previous one.
                    try #require(try await app.run("backup-job").succeeded)
                    let second = try Self.manifest(app)
                    text = try await Self.scrape(port: sidecar.port)
                    #expect(try Self.value(text, "contingency_backups", ["store": "volume"]) == 2, "\(text)")
                    #expect(try Self.value(text, "contingency_backup_last_size_bytes") == Double(second.archive.size))
                    #expect(
                        try Self.value(text, "contingency_backup_previous_size_bytes") == Double(manifest.archive.size))
                } catch {
                    sidecar.process.kill(SIGKILL)
                    throw error
                }
                try await HealthSidecarTests.stop([sidecar])
            }
        }
    }

    @Test(
        "a real Prometheus scrapes the sidecar every second: after a backup, failing probes and an undelivered webhook, the series come back from its API"
    )
    func prometheusScrapes() async throws {
        try await ApplicationFixture.with(uploadFiles: 12) { app in
            try #require(try await app.run("backup-job").succeeded)
            let manifest = try Self.manifest(app)
            let folder = try TemporaryDirectory()
            defer { folder.remove() }
            // Healthy twice, then failing for good.
            try await FixtureApplication.withScripted([200, 200, 500], folder: folder) { fixture in
                // Two failures open an incident, whose webhook goes to a port nothing listens on: a failed delivery.
                let closed = try FreePort.pick()
                let sidecar = try await HealthSidecarTests.launchSidecar(
                    app, id: "metrics-b", url: fixture.healthURL,
                    [
                        "HEALTH_CHECK_FAILURES": "2", "ROLLBACK_WEBHOOK_URL": "http://127.0.0.1:\(closed)/hook",
                        "NOTIFY_RETRIES": "0",
                    ])
                do {
                    try await PrometheusServer.with(scraping: ["127.0.0.1:\(sidecar.port)"]) { prometheus in
                        func value(_ query: String) async throws -> Double? {
                            let samples = try await prometheus.query(query)
                            return samples.count == 1 ? samples[0].value : nil
                        }
                        do {
                            try await eventually(timeout: .seconds(120), "Prometheus to hold the expected series") {
                                let up = try await value(#"up{job="contingency"}"#)
                                let backups = try await value(#"contingency_backups{store="volume"}"#)
                                let size = try await value("contingency_backup_last_size_bytes")
                                let healthy = try await value(#"contingency_health_probes_total{result="healthy"}"#)
                                let unhealthy = try await value(
                                    #"contingency_health_probes_total{result="unhealthy"}"#)
                                let failures = try await value("contingency_health_consecutive_failures")
                                // `source`, not `job`: the target's own `job` label stays the scrape job's.
                                let webhook = try await value(
                                    #"contingency_webhook_failures_total{source="sidecar",destination="rollback_webhook",job="contingency"}"#
                                )
                                return up == 1 && backups == 1 && size == Double(manifest.archive.size)
                                    && (healthy ?? 0) >= 1 && (unhealthy ?? 0) >= 1 && (failures ?? 0) >= 1
                                    && (webhook ?? 0) >= 1
                            }
                        } catch {
                            let scrape = (try? await Self.scrape(port: sidecar.port)) ?? "(no scrape)"
                            Issue.record(
                                "\(error)\ntargets: \(await prometheus.targets())\n\(prometheus.logContents)\nscrape:\n\(scrape)\nsidecar:\n\(sidecar.output)"
                            )
                            throw error
                        }
                        // What an alert would ask: the failures counted by the sidecar, seen through PromQL.
                        let failing = try await prometheus.query("contingency_health_consecutive_failures > 0")
                        #expect(failing.count == 1 && failing.first?.labels["job"] == "contingency", "\(failing)")
                    }
                } catch {
                    sidecar.process.kill(SIGKILL)
                    throw error
                }
                try await HealthSidecarTests.stop([sidecar])
            }
        }
    }

    @Test(
        "after a backup, a failed backup and a rollback, a real Prometheus evaluating alerts.yml holds the jobs' series and raises AutoRollbackTriggered and BackupFailed"
    )
    func afterARollback() async throws {
        try await ApplicationFixture.with(uploadFiles: 12) { app in
            let scenario = try RollbackTests.Scenario(app)
            do {
                try await scenario.managed.control("start")
                try await eventually("the app is healthy") { await scenario.managed.status() == 200 }
                try scenario.launchSidecar("sidecar-a")
                _ = try await RollbackTests.healthyBackup(scenario)
                let failed = try await app.run("backup-job", environment: ["DATABASE_NAME": "no_such_db"])
                #expect(!failed.succeeded, "\(failed)")
                _ = try scenario.launchRunner()
                try await app.server.psql("DROP TABLE users CASCADE", database: app.database)
                try await eventually(timeout: .seconds(120), "the rollback ends") {
                    try scenario.requests().contains { $0.intent == .rollback && $0.status.isFinished }
                }
                #expect(try scenario.requests().first { $0.intent == .rollback }?.status == .succeeded)

                // A sidecar serving the store's metrics, scraped by a Prometheus that evaluates the product's rules.
                let sidecar = try await HealthSidecarTests.launchSidecar(app, id: "scraped", url: scenario.managed.healthURL)
                let rules = AlertRulesTests.prometheus.appending(path: "alerts.yml")
                do {
                    try await PrometheusServer.with(scraping: ["127.0.0.1:\(sidecar.port)"], ruleFiles: [rules]) { prometheus in
                        func value(_ query: String) async throws -> Double? {
                            let samples = try await prometheus.query(query)
                            return samples.count == 1 ? samples[0].value : nil
                        }
                        do {
                            try await eventually(timeout: .seconds(120), "the jobs' series and the alerts in Prometheus") {
                                let succeeded = try await value(#"contingency_backup_runs_total{result="success"}"#)
                                let failures = try await value(#"contingency_backup_runs_total{result="failure"}"#)
                                let lastRun = try await value("contingency_backup_last_run_success")
                                let rollbacks = try await value(#"contingency_rollbacks_total{result="succeeded"}"#)
                                let rolledBack = try await value("contingency_rollback_last_timestamp_seconds")
                                let rollbackAlert = try await value(#"ALERTS{alertname="AutoRollbackTriggered"}"#)
                                let backupAlert = try await value(#"ALERTS{alertname="BackupFailed"}"#)
                                return (succeeded ?? 0) >= 1 && failures == 1 && lastRun == 0 && rollbacks == 1
                                    && (rolledBack ?? 0) > 0 && rollbackAlert == 1 && backupAlert == 1
                            }
                        } catch {
                            let scrape = (try? await Self.scrape(port: sidecar.port)) ?? "(no scrape)"
                            Issue.record("\(error)\ntargets: \(await prometheus.targets())\nscrape:\n\(scrape)")
                            throw error
                        }
                        // Nothing else fires on this store: its backups are fresh and its disk roomy.
                        let firing = try await prometheus.query("ALERTS")
                        let names = Set(firing.compactMap { $0.labels["alertname"] })
                        #expect(names.isSubset(of: ["AutoRollbackTriggered", "BackupFailed", "BackupNeverVerified"]), "\(firing)")
                    }
                } catch {
                    sidecar.process.kill(SIGKILL)
                    throw error
                }
                try await HealthSidecarTests.stop([sidecar])
            } catch {
                print(scenario.logs)
                await scenario.tearDown()
                throw error
            }
            await scenario.tearDown()
        }
    }
}

import BackupCore
import BackupStorage
import Foundation
import Logging
import TestSupport
import Testing

@testable import BackupKit

/// The metrics the jobs publish (the store's `.contingency/metrics/<job>.prom`, and PUSHGATEWAY_URL), with real
/// parts: backup-job as a process against a real PostgreSQL, Debian's promtool, Debian's Pushgateway.
@Suite(.serialized)
struct JobMetricsTests {
    static func published(_ app: ApplicationFixture, _ job: String) throws -> String {
        try String(
            contentsOf: app.backupDirectory.appendingPathComponent(".contingency/metrics/\(job).prom"), encoding: .utf8)
    }

    static func family(_ name: String, in text: String) throws -> MetricFamily {
        try #require(try PrometheusText.parse(text).first { $0.name == name }, "no \(name) in:\n\(text)")
    }

    @Test(
        "backup.prom adds up once-mode runs (one success, one failure: a wrong database), promtool finds nothing to say"
    )
    func backupRunsAddUp() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let good = try await app.run("backup-job")
            try #require(good.succeeded, "\(good)")
            #expect((good.stdout + good.stderr).contains("No previous metrics file .contingency/metrics/backup.prom"))
            let bad = try await app.run("backup-job", environment: ["DATABASE_NAME": "no_such_db"])
            try #require(bad.status == 1, "\(bad)")

            let text = try Self.published(app, "backup")
            let runs = try Self.family("contingency_backup_runs_total", in: text)
            #expect(runs.kind == .counter)
            #expect(runs.value(["result": "success"]) == 1, "\(text)")
            #expect(runs.value(["result": "failure"]) == 1, "\(text)")
            #expect(try Self.family("contingency_backup_last_run_success", in: text).value() == 0, "\(text)")
            let ended = try #require(try Self.family("contingency_backup_last_run_timestamp_seconds", in: text).value())
            #expect(abs(ended - Date().timeIntervalSince1970) < 300, "\(text)")
            let webhooks = try Self.family("contingency_webhook_failures_total", in: text)
            #expect(webhooks.value(["source": "backup", "destination": "backup_webhook"]) == 0, "\(text)")

            let promtool = try await ProcessRunner.run(
                "/usr/bin/promtool", ["check", "metrics"], stdin: Data(text.utf8))
            #expect(promtool.succeeded, "\(promtool)")
            #expect((promtool.stdout + promtool.stderr).isEmpty, "promtool has something to say: \(promtool)\n\(text)")

            // A file that cannot be read is replaced: its counts start again, with a warning naming it.
            try Data("contingency_backup_runs_total{result=\"success\" 3\n".utf8)
                .write(to: app.backupDirectory.appendingPathComponent(".contingency/metrics/backup.prom"))
            let third = try await app.run("backup-job")
            try #require(third.succeeded, "\(third)")
            #expect(
                (third.stdout + third.stderr).contains("The previous metrics file .contingency/metrics/backup.prom"),
                "\(third)")
            let again = try Self.published(app, "backup")
            #expect(try Self.family("contingency_backup_runs_total", in: again).value(["result": "success"]) == 1)
            #expect(try Self.family("contingency_backup_last_run_success", in: again).value() == 1)

            // A FIFO where the file goes (anyone who writes to the store can make one): the backup is made, the
            // job ends with 0 and a warning, nothing waits for a writer that never comes.
            let file = app.backupDirectory.appendingPathComponent(".contingency/metrics/backup.prom")
            try FileManager.default.removeItem(at: file)
            #expect(mkfifo(file.path, 0o600) == 0)
            let fourth = try await app.run("backup-job")
            #expect(fourth.succeeded, "\(fourth)")
            #expect((fourth.stdout + fourth.stderr).contains("not a regular file"), "\(fourth)")
        }
    }

    @Test("a once-mode run's own outcome message that fails (sent after the metrics) is still counted")
    func lateWebhookFailureCounted() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let port = try FreePort.pick()
            let run = try await app.run(
                "backup-job",
                environment: [
                    "BACKUP_WEBHOOK_URL": "http://127.0.0.1:\(port)/hooks/secret-path", "NOTIFY_RETRIES": "0",
                    "NOTIFY_TIMEOUT": "5s",
                ])
            try #require(run.succeeded, "\(run)")
            #expect((run.stdout + run.stderr).contains("Notification not delivered"), "\(run)")
            let text = try Self.published(app, "backup")
            let webhooks = try Self.family("contingency_webhook_failures_total", in: text)
            #expect(webhooks.value(["source": "backup", "destination": "backup_webhook"]) == 1, "\(text)")
            #expect(try Self.family("contingency_backup_last_run_success", in: text).value() == 1, "\(text)")
            #expect(
                try Self.family("contingency_backup_runs_total", in: text).value(["result": "success"]) == 1, "\(text)")
        }
    }

    @Test("runs refused by the store lock or cancelled are not counted; failed and partial ones are")
    func countedOutcomes() {
        #expect(BackupJob.isCountedFailure(ContingencyError.failed("pg_dump failed")))
        #expect(BackupJob.isCountedFailure(ContingencyError.partial("the bucket copy failed")))
        #expect(!BackupJob.isCountedFailure(ContingencyError.locked("held by backup-job on host-a")))
        #expect(!BackupJob.isCountedFailure(CancellationError()))
        #expect(!BackupJob.isCountedFailure(ContingencyError.cancelled("SIGTERM")))
    }

    @Test("counters continue from the previous file, series of other runners are kept, gauges are this run's")
    func continuing() throws {
        let previous = try PrometheusText.parse(
            """
            # TYPE contingency_backup_runs_total counter
            contingency_backup_runs_total{result="success"} 4
            contingency_backup_runs_total{result="failure"} 2
            # TYPE contingency_webhook_failures_total counter
            contingency_webhook_failures_total{source="backup",destination="ping"} 3
            # TYPE contingency_backup_last_run_success gauge
            contingency_backup_last_run_success 1
            """)
        let file = MetricsFile(
            job: "backup", families: JobMetrics.backupRun(succeeded: false, at: Date(timeIntervalSince1970: 100)))
        let next = file.continuing(previous)
        let runs = try #require(next.first { $0.name == "contingency_backup_runs_total" })
        #expect(runs.value(["result": "success"]) == 4 && runs.value(["result": "failure"]) == 3)
        #expect(
            next.first { $0.name == "contingency_webhook_failures_total" }?.value([
                "source": "backup", "destination": "ping",
            ]) == 3)
        #expect(next.first { $0.name == "contingency_backup_last_run_success" }?.value() == 0)
        #expect(next.first { $0.name == "contingency_backup_last_run_timestamp_seconds" }?.value() == 100)
    }

    @Test("the group is the job alone, under any path prefix; pushed samples carry no job label of their own")
    func groupAndLabels() {
        #expect(
            Pushgateway(url: "http://u:p@gw:9091").groupURL(job: "backup")
                == "http://u:p@gw:9091/metrics/job/contingency_backup")
        #expect(
            Pushgateway(url: "https://gw/prefix/").groupURL(job: "drill")
                == "https://gw/prefix/metrics/job/contingency_drill")
        #expect(Pushgateway(url: "http://u:secret-pw@gw:9091").redacted == "http://gw:9091")
        let pushed = Pushgateway.pushable([
            .counter(JobMetrics.webhookFailuresName, "", [([.init("job", "backup"), .init("destination", "ping")], 1)])
        ])
        #expect(pushed.first?.samples.first?.labels == [.init("destination", "ping")])
    }

    @Test(
        "a once-mode backup pushes to a real Pushgateway, its basic-auth credentials (PUSHGATEWAY_URL_FILE) in no log line"
    )
    func pushesToPushgateway() async throws {
        try await PushgatewayServer.with(basicAuth: true) { gateway in
            try await ApplicationFixture.with(uploadFiles: 3) { app in
                let user = try #require(gateway.user)
                let password = try #require(gateway.password)
                let secret = app.root.appending("pushgateway-url")
                try Data((gateway.pushURL + "\n").utf8).write(to: secret)
                let run = try await app.run("backup-job", environment: ["PUSHGATEWAY_URL_FILE": secret.path])
                try #require(run.succeeded, "\(run)")
                let logs = run.stdout + run.stderr
                #expect(
                    logs.contains("Pushed the backup metrics to the Pushgateway http://127.0.0.1:\(gateway.port)"),
                    "\(logs)")
                #expect(!logs.contains(password) && !logs.contains(user), "the credentials appear in the log:\n\(logs)")
                #expect(!logs.contains("Could not push"), "\(logs)")
                // The gateway here is plain http: the job says what that exposes.
                #expect(logs.contains("sends its basic-auth credentials unencrypted over http://"), "\(logs)")

                let scrape = try await gateway.metrics()
                let runs = try Self.family("contingency_backup_runs_total", in: scrape)
                #expect(
                    runs.value(["job": "contingency_backup", "instance": "", "result": "success"]) == 1, "\(scrape)")
                #expect(
                    runs.value(["job": "contingency_backup", "instance": "", "result": "failure"]) == 0, "\(scrape)")
                let webhooks = try Self.family("contingency_webhook_failures_total", in: scrape)
                #expect(
                    webhooks.value(["job": "contingency_backup", "instance": "", "source": "backup", "destination": "backup_webhook"]) == 0,
                    "\(scrape)")

                // Without the credentials the gateway refuses (so they were what let the push in): a warning only.
                let refused = try await app.run("backup-job", environment: ["PUSHGATEWAY_URL": gateway.baseURL])
                try #require(refused.succeeded, "\(refused)")
                #expect((refused.stdout + refused.stderr).contains("answered HTTP 401"), "\(refused)")
                let after = try Self.family("contingency_backup_runs_total", in: try await gateway.metrics())
                #expect(after.value(["job": "contingency_backup", "instance": "", "result": "success"]) == 1)
                #expect(
                    try Self.family("contingency_backup_runs_total", in: try Self.published(app, "backup"))
                        .value(["result": "success"]) == 2)
            }
        }
    }

    @Test("credentials over http:// are warned of and never shown; over https://, or no credentials, no warning")
    func credentialsInClear() throws {
        let folder = try TemporaryDirectory(prefix: "contingency-push")
        defer { folder.remove() }
        let storage = try VolumeStorage(root: folder.path)
        for (url, warned) in [
            ("http://pusher:s3cret-pw@127.0.0.1:9091", true), ("HTTP://:s3cret-pw@gateway:9091/prefix", true),
            ("http://s3cret-pw@gateway:9091", true), ("https://pusher:s3cret-pw@gateway", false),
            ("http://gateway:9091", false),
        ] {
            let logged = LogCollector()
            _ = JobMetrics(job: "backup", storage: storage, pushgatewayURL: url, countsWebhookFailures: true, logger: logged.logger)
            let warnings = logged.lines.filter { $0.contains("unencrypted over http://") }
            #expect(warnings.count == (warned ? 1 : 0), "\(url): \(logged.lines)")
            #expect(!logged.lines.joined().contains("s3cret-pw"), "\(url)")
            #expect(!logged.lines.joined().contains("pusher"), "\(url)")
        }
    }

    @Test("an unreachable Pushgateway leaves the backup succeeded, with a warning, and backup.prom written")
    func unreachablePushgateway() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let port = try FreePort.pick()
            let run = try await app.run(
                "backup-job", environment: ["PUSHGATEWAY_URL": "http://someone:hidden-pw-123@127.0.0.1:\(port)"])
            #expect(run.status == 0, "\(run)")
            let logs = run.stdout + run.stderr
            #expect(logs.contains("Could not push the backup metrics"), "\(logs)")
            #expect(logs.contains("http://127.0.0.1:\(port)"), "\(logs)")
            #expect(!logs.contains("hidden-pw-123") && !logs.contains("someone"), "\(logs)")
            #expect(
                try Self.family("contingency_backup_runs_total", in: try Self.published(app, "backup"))
                    .value(["result": "success"]) == 1)
        }
    }
}

import BackupCore
import BackupKit
import BackupStorage
import Foundation
import Logging
import TestSupport
import Testing

/// Notifications end to end: the real executables post to a real HTTP receiver on 127.0.0.1
/// (`WebhookReceiver`), which records what they send. Backups succeed whatever the receiver does; no secret
/// (the database password, a webhook URL's path) reaches a payload or a log line.
@Suite(.serialized)
struct NotificationTests {
    /// A webhook path as Slack's look: the last segment is the credential.
    static let secretPath = "/hooks/T0001/B0001/SECRETPATH-9f3a7c"

    /// Nothing secret in what was sent or logged.
    static func expectNoSecret(in texts: [String], app: ApplicationFixture, _ where: String) {
        for text in texts {
            #expect(!text.contains(app.server.password), "the database password in \(`where`): \(text)")
            #expect(!text.contains("SECRETPATH"), "the webhook URL's path in \(`where`): \(text)")
        }
    }

    @Test(
        "A successful and a failed backup-job: one message each saying what, where and the outcome; pings start then success, start then fail"
    )
    func backupOutcomes() async throws {
        try await ApplicationFixture.with(uploadFiles: 5) { app in
            try await WebhookReceiver.with { receiver in
                let host = ProcessInfo.processInfo.hostName
                let good = try await app.run(
                    "backup-job",
                    environment: [
                        "BACKUP_WEBHOOK_URL": receiver.url(Self.secretPath),
                        "BACKUP_PING_URL": receiver.url("/ping/good"),
                    ])
                #expect(good.succeeded, "\(good.stderr)")
                let name = try #require(try app.storeFiles().first { $0.hasSuffix(".tar.gz") })
                var messages = try receiver.requests(under: "/hooks/")
                try #require(messages.count == 1, "\(messages)")
                #expect(messages[0].method == "POST")
                #expect(messages[0].contentType == "application/json")
                let success = try #require(
                    messages[0].text, "a Slack-compatible {\"text\": …} body: \(messages[0].body)")
                #expect(success.hasPrefix("Backup \(name) succeeded on host \(host): "), "\(success)")
                #expect(
                    success.range(of: #": [0-9.]+ [KMG]?B in [0-9.]+ m?s$"#, options: .regularExpression) != nil,
                    "\(success)")
                let goodPings = try receiver.requests(under: "/ping/good")
                #expect(goodPings.map(\.path) == ["/ping/good/start", "/ping/good"])
                #expect(goodPings.last?.body == "Backup succeeded on host \(host)")

                let bad = try await app.run(
                    "backup-job",
                    environment: [
                        "BACKUP_WEBHOOK_URL": receiver.url(Self.secretPath),
                        "BACKUP_PING_URL": receiver.url("/ping/bad"),
                        "DATABASE_NAME": "no_such_database",
                    ])
                #expect(bad.status == 1, "\(bad)")
                messages = try receiver.requests(under: "/hooks/")
                try #require(messages.count == 2, "\(messages)")
                let failure = try #require(messages[1].text)
                #expect(failure.hasPrefix("Backup failed on host \(host): "), "\(failure)")
                #expect(failure.contains("no_such_database"), "names what failed: \(failure)")
                let badPings = try receiver.requests(under: "/ping/bad")
                #expect(badPings.map(\.path) == ["/ping/bad/start", "/ping/bad/fail"])
                #expect(badPings.last?.body.contains("no_such_database") == true, "the check's log says why")

                // A store that cannot be opened (BACKUP_DIR is a file) fails before any backup starts: reported all the same.
                let noStore = try await app.run(
                    "backup-job",
                    environment: [
                        "BACKUP_DIR": app.envFile.path, "BACKUP_WEBHOOK_URL": receiver.url(Self.secretPath),
                        "BACKUP_PING_URL": receiver.url("/ping/nostore"),
                    ])
                #expect(noStore.status == 1, "\(noStore)")
                #expect(try receiver.requests(under: "/ping/nostore").map(\.path) == ["/ping/nostore/start", "/ping/nostore/fail"])
                let noStoreText = try #require(try receiver.requests(under: "/hooks/").last?.text)
                #expect(noStoreText.hasPrefix("Backup failed on host \(host): "), "\(noStoreText)")
                #expect(noStoreText.contains(app.envFile.path), "names the store: \(noStoreText)")

                // restore-job pings too (here --verify, which reads every backup and changes nothing).
                let verify = try await app.run(
                    "restore-job", ["--verify"], environment: ["BACKUP_PING_URL": receiver.url("/ping/verify")])
                #expect(verify.succeeded, "\(verify.stderr)")
                #expect(
                    try receiver.requests(under: "/ping/verify").map(\.path) == ["/ping/verify/start", "/ping/verify"])

                Self.expectNoSecret(
                    in: try receiver.requests().map(\.body) + [good.stdout, good.stderr, bad.stdout, bad.stderr],
                    app: app,
                    "payloads and logs")
            }
        }
    }

    @Test("A backup stopped by SIGTERM still reports: the fail ping and the message go out before it exits 130")
    func cancelledBackupReports() async throws {
        try await ApplicationFixture.with(uploadFiles: 5) { app in
            try await WebhookReceiver.with { receiver in
                // The job stops itself once the database is dumped (a failpoint): SIGTERM lands mid-run.
                let job = try app.launch(
                    "backup-job",
                    environment: [
                        // A slow check: the start ping is still unanswered when the job ends, the fail ping queued
                        // behind it; the job must wait for both (within NOTIFY_TIMEOUT), cancelled as it is.
                        "CONTINGENCY_FAILPOINT": "dump", "BACKUP_WEBHOOK_URL": receiver.url(Self.secretPath),
                        "BACKUP_PING_URL": receiver.url("/delay/4000/ping/stopped"),
                    ])
                do {
                    try await eventually(timeout: .seconds(60), "the job stops after the dump") { job.isStopped }
                    try await eventually(timeout: .seconds(30), "the start ping") {
                        try !receiver.requests(under: "/delay/4000/ping/stopped").isEmpty
                    }
                    job.kill(SIGTERM)
                    job.kill(SIGCONT)
                    let result = try await job.waitForExit(timeout: .seconds(60))
                    #expect(result.status == 130, "\(result)")
                } catch {
                    print(job.stderrSoFar, job.stdoutSoFar)
                    await job.terminateAndWait()
                    throw error
                }
                #expect(
                    try receiver.requests(under: "/delay/4000/ping/").map(\.path)
                        == ["/delay/4000/ping/stopped/start", "/delay/4000/ping/stopped/fail"])
                let text = try #require(try receiver.requests(under: "/hooks/").first?.text)
                #expect(
                    text.hasPrefix("Backup failed on host \(ProcessInfo.processInfo.hostName): cancelled"), "\(text)")
            }
        }
    }

    @Test("backup-job --loop: every scheduled run pings start then success and posts its outcome")
    func loopRunsNotify() async throws {
        try await ApplicationFixture.with(uploadFiles: 5) { app in
            try await WebhookReceiver.with { receiver in
                let loop = try app.launch(
                    "backup-job", ["--loop"],
                    environment: [
                        "BACKUP_SCHEDULE": "2s", "BACKUP_WEBHOOK_URL": receiver.url(Self.secretPath),
                        "BACKUP_PING_URL": receiver.url("/ping/loop"), "LIVENESS_FILE": "",
                    ])
                do {
                    // The message and the pings of a run are delivered on tasks of their own: both awaited.
                    try await eventually(timeout: .seconds(90), "two runs' outcomes and pings") {
                        try receiver.requests(under: "/hooks/").count >= 2
                            && receiver.requests(under: "/ping/loop").count >= 4
                    }
                    let texts = try receiver.requests(under: "/hooks/").compactMap(\.text)
                    #expect(
                        texts.allSatisfy {
                            $0.hasPrefix("Backup visual_backup_") && $0.contains(" succeeded on host ")
                        }, "\(texts)")
                    #expect(Set(texts).count == texts.count, "one message per backup: \(texts)")
                    let pings = try receiver.requests(under: "/ping/loop").map(\.path).prefix(4)
                    #expect(Array(pings) == ["/ping/loop/start", "/ping/loop", "/ping/loop/start", "/ping/loop"])
                } catch {
                    print(loop.stderrSoFar)
                    await loop.terminateAndWait()
                    throw error
                }
                await loop.terminateAndWait()
            }
        }
    }

    @Test(
        "Webhook and ping refused, answering 500, 429, 404 or hanging: the backup still succeeds (exit 0), the failure is logged by host only"
    )
    func failingDestinationsNeverFailTheBackup() async throws {
        try await ApplicationFixture.with(uploadFiles: 5) { app in
            try await WebhookReceiver.with { receiver in
                // Nothing listens on a port just picked and closed: connection refused.
                let refusedPort = try FreePort.pick()
                let refused = try await app.run(
                    "backup-job",
                    environment: [
                        "BACKUP_WEBHOOK_URL": "http://127.0.0.1:\(refusedPort)\(Self.secretPath)",
                        "BACKUP_PING_URL": receiver.url("/status/500\(Self.secretPath)"),
                        "NOTIFY_RETRIES": "2", "NOTIFY_TIMEOUT": "20s",
                    ])
                #expect(refused.succeeded, "\(refused)")
                #expect(
                    refused.stderr.contains("to http://127.0.0.1:\(refusedPort) failed after 3 attempts"),
                    "\(refused.stderr)")
                // Each of the two pings (start, success) is tried three times against the 500.
                let retried = try receiver.requests(under: "/status/500")
                #expect(retried.count == 6, "\(retried.map(\.path))")
                #expect(
                    refused.stderr.contains("success ping to \(receiver.baseURL) failed after 3 attempts: HTTP 500"),
                    "\(refused.stderr)")

                let hanging = try await app.run(
                    "backup-job",
                    environment: [
                        "BACKUP_WEBHOOK_URL": receiver.url("/hang\(Self.secretPath)"),
                        "BACKUP_PING_URL": receiver.url("/status/404\(Self.secretPath)"),
                        "NOTIFY_TIMEOUT": "2s",
                    ])
                #expect(hanging.succeeded, "\(hanging)")
                #expect(try app.storeFiles().filter { $0.hasSuffix(".tar.gz.json") }.count == 2, "both backups exist")
                #expect(hanging.stderr.contains("to \(receiver.baseURL) failed after 1 attempt"), "\(hanging.stderr)")
                #expect(hanging.stderr.contains("within 2 s (NOTIFY_TIMEOUT)"), "\(hanging.stderr)")
                // A 404 is not retried: one request per ping.
                #expect(try receiver.requests(under: "/status/404").count == 2)
                #expect(hanging.stderr.contains("HTTP 404 (error 404)"), "\(hanging.stderr)")

                // 429 is retried, after the Retry-After the receiver asks for (1 s), not the 0.5 s backoff.
                let limited = try await app.run(
                    "backup-job",
                    environment: [
                        "BACKUP_WEBHOOK_URL": receiver.url("/status/429\(Self.secretPath)"), "NOTIFY_RETRIES": "1",
                    ])
                #expect(limited.succeeded, "\(limited)")
                let attempts = try receiver.requests(under: "/status/429")
                try #require(attempts.count == 2, "\(attempts.map(\.path))")
                #expect(attempts[1].received - attempts[0].received >= 1.0, "waited as Retry-After said")
                #expect(limited.stderr.contains("failed after 2 attempts: HTTP 429"), "\(limited.stderr)")

                Self.expectNoSecret(
                    in: [
                        refused.stdout, refused.stderr, hanging.stdout, hanging.stderr, limited.stdout, limited.stderr,
                    ], app: app,
                    "the jobs' logs")
            }
        }
    }

    @Test("restore-job --drill --loop: every drill pings start then success")
    func drillLoopPings() async throws {
        try await ApplicationFixture.with(uploadFiles: 2) { app in
            try await WebhookReceiver.with { receiver in
                try #require(try await app.run("backup-job").succeeded)
                let job = try app.launch(
                    "restore-job", ["--drill", "--loop"],
                    environment: [
                        "DRILL_SCHEDULE": "2s",
                        "DRILL_DATABASE_URL": app.server.connectionURL(database: "drill_scratch"),
                        "BACKUP_PING_URL": receiver.url("/ping/drill"), "LIVENESS_FILE": "",
                    ])
                do {
                    try await eventually(timeout: .seconds(90), "two drills' pings") {
                        try receiver.requests(under: "/ping/drill").count >= 4
                    }
                    let pings = try receiver.requests(under: "/ping/drill").prefix(4)
                    #expect(
                        pings.map(\.path) == ["/ping/drill/start", "/ping/drill", "/ping/drill/start", "/ping/drill"])
                    #expect(pings.last?.body == "Restore drill succeeded on host \(ProcessInfo.processInfo.hostName)")
                } catch {
                    print(job.stdoutSoFar, job.stderrSoFar)
                    await job.terminateAndWait()
                    throw error
                }
                await job.terminateAndWait()
            }
        }
    }

    @Test("In process: each delivery is counted once, delivered or failed, whatever its attempts")
    func deliveriesAreCounted() async throws {
        try await WebhookReceiver.with { receiver in
            var logger = Logger(label: "notification-test")
            logger.logLevel = .critical
            let before = NotificationCounters.counts(.backupWebhook)
            for path in [Self.secretPath, "/status/503\(Self.secretPath)"] {
                let notifications = Notifications(
                    settings: NotificationSettings(backupWebhook: receiver.url(path), timeoutSeconds: 10, retries: 1),
                    host: "test-host", logger: logger)
                await notifications.backupEvents.publish(.cleanupFinished(deleted: 2, total: 5, freedBytes: nil, rule: nil))
                await notifications.flush()
            }
            let after = NotificationCounters.counts(.backupWebhook)
            #expect(after.delivered - before.delivered == 1)
            #expect(after.failed - before.failed == 1)
            // The receiver logs each request before answering it, but its output reaches this process on a reader
            // thread of its own: awaited, not read at once.
            try await eventually(timeout: .seconds(30), "both attempts in the receiver's log") {
                try receiver.requests(under: "/status/503").count >= 2 && !receiver.requests(under: "/hooks/").isEmpty
            }
            let retried = try receiver.requests(under: "/status/503")
            #expect(retried.count == 2, "one retry")
            let delivered = try receiver.requests(under: "/hooks/")
            #expect(delivered.first?.text == "Cleanup removed 2 of 5 backups on host test-host")
        }
    }

    @Test("A rollback the runner runs: ROLLBACK_WEBHOOK_URL hears it start and succeed, naming the backup")
    func rollbackMessages() async throws {
        try await ApplicationFixture.with(uploadFiles: 10) { app in
            try await WebhookReceiver.with { receiver in
                let scenario = try RollbackTests.Scenario(app)
                do {
                    try await scenario.managed.control("start")
                    try await eventually("the app is healthy") { await scenario.managed.status() == 200 }
                    #expect(try await app.run("backup-job").succeeded)
                    let target = try #require(try app.storeFiles().first { $0.hasSuffix(".tar.gz") })
                    try await app.server.psql("DROP TABLE users CASCADE", database: app.database)
                    try RollbackRunnerTests.submit(scenario, lastHealthy: Date().addingTimeInterval(1))
                    _ = try scenario.launchRunner(["ROLLBACK_WEBHOOK_URL": receiver.url(Self.secretPath)])
                    try await eventually(timeout: .seconds(120), "the rollback ends") {
                        try scenario.requests().first?.status.isFinished == true
                    }
                    let request = try #require(try scenario.requests().first)
                    #expect(request.status == .succeeded, "\(request.reason ?? "")\n\(scenario.logs)")
                    let host = ProcessInfo.processInfo.hostName
                    // The outcome is published once the request is ended: wait for its message.
                    try await eventually(timeout: .seconds(30), "the outcome's message") {
                        try receiver.requests(under: "/hooks/").count >= 2
                    }
                    let texts = try receiver.requests(under: "/hooks/").compactMap(\.text)
                    #expect(texts.count == 2, "the start and the outcome, no step: \(texts)")
                    #expect(texts.first == "Rollback to \(target) started on host \(host) (\(request.id))")
                    #expect(
                        texts.last?.hasPrefix(
                            "Rollback to \(target) succeeded on host \(host): the application is healthy again after ")
                            == true,
                        "\(texts)")
                    Self.expectNoSecret(in: texts + [scenario.logs], app: app, "rollback messages and logs")
                } catch {
                    print(scenario.logs)
                    await scenario.tearDown()
                    throw error
                }
                await scenario.tearDown()
            }
        }
    }

    @Test(
        "An incident the sidecar opens is told to ROLLBACK_WEBHOOK_URL, naming the health URL without its credentials or query"
    )
    func incidentMessage() async throws {
        let store = try TemporaryDirectory(prefix: "notify-store")
        defer { store.remove() }
        try await WebhookReceiver.with { receiver in
            let deadPort = try FreePort.pick()
            let sidecar = try ProcessRunner.launch(
                ApplicationFixture.executable("health-sidecar"), ["--loop"],
                environment: [
                    "BACKUP_DIR": store.path,
                    "HEALTH_CHECK_URL": "http://probe:pw-4711@127.0.0.1:\(deadPort)/healthz?key=qs-4711",
                    "HEALTH_CHECK_INTERVAL": "1s", "HEALTH_CHECK_TIMEOUT": "2s", "HEALTH_CHECK_FAILURES": "2",
                    "SIDECAR_BIND": "127.0.0.1", "SIDECAR_PORT": "0", "SIDECAR_ID": "sidecar-n", "LIVENESS_FILE": "",
                    "ROLLBACK_WEBHOOK_URL": receiver.url(Self.secretPath),
                ])
            do {
                try await eventually(timeout: .seconds(60), "the incident's message") {
                    try !receiver.requests(under: "/hooks/").isEmpty
                }
                let text = try #require(try receiver.requests(under: "/hooks/").first?.text)
                #expect(
                    text.hasPrefix(
                        "Incident opened: http://127.0.0.1:\(deadPort)/healthz?… failed 2 times in a row (last: "),
                    "\(text)")
                #expect(text.contains("seen by sidecar-n; rollback requested ("), "\(text)")
                for secret in ["pw-4711", "qs-4711", "SECRETPATH"] {
                    #expect(!text.contains(secret))
                    #expect(
                        !sidecar.stderrSoFar.contains(secret) && !sidecar.stdoutSoFar.contains(secret),
                        "\(secret) in the log")
                }
            } catch {
                print(sidecar.stderrSoFar)
                await sidecar.terminateAndWait()
                throw error
            }
            await sidecar.terminateAndWait()
        }
    }
}

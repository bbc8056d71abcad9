import Foundation
import Testing

@testable import BackupCore

/// The one sentence each notification says, and the rules that keep secrets out of them.
struct NotificationTextTests {
    @Test(arguments: [
        (
            BackupEvent.backupSucceeded(
                name: "visual_backup_2025-01-15_14-30-00.tar.gz", size: 524_288_000, seconds: 42),
            "Backup visual_backup_2025-01-15_14-30-00.tar.gz succeeded on host db-1: 500 MB in 42 s"
        ),
        (
            .backupFailed(reason: "database \"nope\" does not exist", partial: false),
            "Backup failed on host db-1: database \"nope\" does not exist"
        ),
        (
            .backupFailed(reason: "the copy to s3://b/p failed:\n  HTTP 503\n", partial: true),
            "Backup on host db-1 partly failed: the copy to s3://b/p failed: HTTP 503"
        ),
        (
            .cleanupFinished(deleted: 5, total: 12, freedBytes: 2_147_483_648, rule: "older than 30 days"),
            "Cleanup removed 5 of 12 backups older than 30 days on host db-1, freeing 2 GB"
        ),
        (
            .cleanupFinished(deleted: 0, total: 1, freedBytes: nil, rule: nil),
            "Cleanup removed 0 of 1 backup on host db-1"
        ),
        (
            .cleanupFailed(reason: "would delete all 4 existing backups. Refusing"),
            "Cleanup failed on host db-1: would delete all 4 existing backups. Refusing"
        ),
    ])
    func backupEventTexts(_ pair: (BackupEvent, String)) {
        #expect(NotificationText.text(pair.0, host: "db-1") == pair.1)
    }

    @Test func rollbackTexts() {
        #expect(
            NotificationText.incidentOpened(
                target: "https://app/healthz", failures: 3, lastResult: "HTTP 500", sidecar: "sidecar-a",
                request: "rollback-1")
                == "Incident opened: https://app/healthz failed 3 times in a row (last: HTTP 500), seen by sidecar-a; rollback requested (rollback-1)"
        )
        #expect(
            NotificationText.rollbackSucceeded(
                request: "rollback-1", target: "visual_backup_2025-01-15_14-30-00.tar.gz", seconds: 72, host: "h")
                == "Rollback to visual_backup_2025-01-15_14-30-00.tar.gz succeeded on host h: the application is healthy again after 1m 12s (rollback-1)"
        )
        #expect(
            NotificationText.rollbackFailed(request: "r", target: nil, reason: "no backup qualifies", host: "h")
                == "Rollback failed on host h: no backup qualifies (r)")
        #expect(
            NotificationText.rollbackFailed(request: "r", target: "b.tar.gz", reason: "still unhealthy", host: "h")
                == "Rollback to b.tar.gz failed on host h: still unhealthy (r)")
        #expect(
            NotificationText.rollbackRefused(request: "r", reason: "the loop guard allows 1 per 1h", host: "h")
                == "Rollback r was not run on host h: the loop guard allows 1 per 1h; a person must decide")
        #expect(
            NotificationText.recovered(target: nil, failures: 1, sidecar: "s")
                == "Recovered: the application answers again after 1 failed health check, seen by s")
        #expect(NotificationText.jobFailed("backup", host: "h", reason: "x\ny") == "Backup failed on host h: x y")
        #expect(NotificationText.jobStarted("restore drill", host: "h") == "Restore drill started on host h")
    }

    @Test func longReasonsAreCutToOneShortLine() {
        let text = NotificationText.text(
            .backupFailed(reason: String(repeating: "x", count: 5000), partial: false), host: "h")
        #expect(text.count < 1100)
        #expect(!text.contains("\n"))
    }

    @Test(arguments: [
        ("https://hc-ping.com/5f1c", PingKind.start, "https://hc-ping.com/5f1c/start"),
        ("https://hc-ping.com/5f1c/", .fail, "https://hc-ping.com/5f1c/fail"),
        ("https://hc-ping.com/5f1c", .success, "https://hc-ping.com/5f1c"),
        ("http://127.0.0.1:8000/ping/abc?create=1", .start, "http://127.0.0.1:8000/ping/abc/start?create=1"),
    ])
    func pingURLs(_ row: (String, PingKind, String)) {
        #expect(NotificationSettings.pingURL(row.0, row.1) == row.2)
    }

    @Test(arguments: [
        ("https://hooks.slack.com/services/T000/B000/XXXXSECRET", "https://hooks.slack.com"),
        ("http://user:pw@127.0.0.1:9000/hook?token=abc", "http://127.0.0.1:9000"),
        ("not a url", "(unparseable URL)"),
    ])
    func destinationsShowOnlySchemeHostAndPort(_ pair: (String, String)) {
        #expect(NotificationSettings.destination(pair.0) == pair.1)
    }

    static func values(_ environment: [String: String]) -> ConfigurationValues {
        ConfigurationValues(environment: environment) { _ in throw CocoaError(.fileNoSuchFile) }
    }

    @Test func settingsLoadAndRefuseWithoutShowingTheURL() throws {
        let loaded = try NotificationSettings.load(
            Self.values([
                "BACKUP_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/SECRETPATH",
                "BACKUP_PING_URL": "https://hc-ping.com/k",
                "NOTIFY_TIMEOUT": "3s", "NOTIFY_RETRIES": "1",
            ]))
        #expect(loaded.backupWebhook == "https://hooks.slack.com/services/T/B/SECRETPATH")
        #expect(loaded.rollbackWebhook == nil)
        #expect(loaded.timeoutSeconds == 3)
        #expect(loaded.retries == 1)
        #expect(try NotificationSettings.load(Self.values([:])) == NotificationSettings())

        for (name, value) in [
            ("ROLLBACK_WEBHOOK_URL", "ftp://host/SECRETPATH"), ("BACKUP_WEBHOOK_URL", "hooks.slack.com/SECRETPATH"),
            ("NOTIFY_TIMEOUT", "0"), ("NOTIFY_TIMEOUT", "1h"), ("NOTIFY_RETRIES", "50"),
        ] {
            do {
                _ = try NotificationSettings.load(Self.values([name: value]))
                Issue.record("\(name)=\(value) was accepted")
            } catch {
                #expect(error.isConfiguration)
                #expect(error.description.contains(name))
                #expect(!error.description.contains("SECRETPATH"), "the URL is a secret: \(error)")
            }
        }
    }

    @Test func webhookURLsAreSecretsReadFromFiles() throws {
        for setting in [Settings.backupWebhookURL, Settings.rollbackWebhookURL, Settings.backupPingURL] {
            #expect(setting.secret)
            #expect(setting.readsFile)
        }
        let values = ConfigurationValues(environment: ["ROLLBACK_WEBHOOK_URL_FILE": "/run/secrets/hook"]) { _ in
            "https://hooks.slack.com/services/T/B/FROMFILE\n"
        }
        #expect(
            try NotificationSettings.load(values).rollbackWebhook == "https://hooks.slack.com/services/T/B/FROMFILE")
    }

    @Test func secretsAreBlankedOut() {
        let values = Self.values([
            "DATABASE_URL": "postgres://app:pa%24%24word@db:5432/visual_db", "PGPASSWORD": "hunter22",
            "BACKUP_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/SECRETPATH", "AWS_SESSION_TOKEN": "abc",
            "DATABASE_NAME": "visual_db",
        ])
        let secrets = NotificationSettings.secretValues(
            values,
            settings: [
                Settings.databaseURL, Settings.pgPassword, Settings.backupWebhookURL, Settings.awsSessionToken,
                Settings.databaseName,
            ])
        #expect(secrets.contains("pa$$word"))
        #expect(secrets.contains("hunter22"))
        #expect(!secrets.contains("abc"), "too short to blank out")
        #expect(!secrets.contains("visual_db"), "not a secret")
        let text = NotificationText.redacting(
            "could not connect with postgres://app:pa%24%24word@db:5432/visual_db (pa$$word, hunter22) to https://hooks.slack.com/services/T/B/SECRETPATH",
            secrets: secrets)
        #expect(text == "could not connect with *** (***, ***) to ***")
    }
}

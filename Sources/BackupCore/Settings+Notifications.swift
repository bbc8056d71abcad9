/// The notification variables (see docs/notifications.md). The URLs are secrets: a Slack webhook URL's path is
/// its credential, and a ping URL's is the check's key. They are never logged; messages name only their host.
extension Settings {
    public static let backupWebhookURL = Setting(
        "BACKUP_WEBHOOK_URL", secret: true,
        "Slack-compatible webhook (POST {\"text\": …}) told of every backup's and cleanup's outcome")
    public static let rollbackWebhookURL = Setting(
        "ROLLBACK_WEBHOOK_URL", secret: true,
        "Slack-compatible webhook (POST {\"text\": …}) told of incidents (failed health checks) and rollbacks")
    public static let backupPingURL = Setting(
        "BACKUP_PING_URL", secret: true,
        "Dead-man's switch (healthchecks.io convention): each job run pings URL/start, then URL on success or URL/fail")
    public static let notifyTimeout = Setting(
        "NOTIFY_TIMEOUT", default: "10s",
        "A webhook message or ping not delivered within this time, retries included, is given up (logged, never failing the job)"
    )
    public static let notifyRetries = Setting(
        "NOTIFY_RETRIES", default: "3",
        "Retries of a webhook message or ping after a network error, HTTP 5xx or 429, with backoff (other answers are not retried)"
    )
}

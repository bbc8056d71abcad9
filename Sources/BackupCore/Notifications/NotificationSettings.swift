import Foundation

/// Where notifications go and how hard delivery is tried. Every destination is optional: none set, nothing is
/// sent. Delivery never fails a job (see BackupKit's `Notifications`).
public struct NotificationSettings: Sendable, Equatable {
    /// BACKUP_WEBHOOK_URL: backup and cleanup outcomes.
    public var backupWebhook: String?
    /// ROLLBACK_WEBHOOK_URL: incidents and rollbacks.
    public var rollbackWebhook: String?
    /// BACKUP_PING_URL: start, success and failure of each job run.
    public var pingURL: String?
    /// The whole budget of one message or ping, retries and backoff included.
    public var timeoutSeconds: Int
    /// Retries after a transient failure (network error, 5xx, 429).
    public var retries: Int

    public init(
        backupWebhook: String? = nil, rollbackWebhook: String? = nil, pingURL: String? = nil, timeoutSeconds: Int = 10,
        retries: Int = 3
    ) {
        self.backupWebhook = backupWebhook
        self.rollbackWebhook = rollbackWebhook
        self.pingURL = pingURL
        self.timeoutSeconds = timeoutSeconds
        self.retries = retries
    }

    /// backup-job's and cleanup-job's variables (restore-job reads the ping too).
    public static let backupSettings: [Setting] = [
        Settings.backupWebhookURL, Settings.backupPingURL, Settings.notifyTimeout, Settings.notifyRetries,
    ]
    /// The sidecar's and the rollback runner's.
    public static let rollbackSettings: [Setting] = [
        Settings.rollbackWebhookURL, Settings.notifyTimeout, Settings.notifyRetries,
    ]

    public static func load(_ values: ConfigurationValues) throws(ContingencyError) -> NotificationSettings {
        let timeout = try values.duration(Settings.notifyTimeout)
        guard (1...300).contains(timeout) else {
            throw .configuration(
                "NOTIFY_TIMEOUT=\(timeout)s is out of range",
                hint: "use 1s to 5m: a notification must never hold a job up long")
        }
        return NotificationSettings(
            backupWebhook: try url(values, Settings.backupWebhookURL),
            rollbackWebhook: try url(values, Settings.rollbackWebhookURL),
            pingURL: try url(values, Settings.backupPingURL),
            timeoutSeconds: timeout,
            retries: try values.integer(Settings.notifyRetries, in: 0...10) ?? 3)
    }

    /// An http(s) URL with a host, or nil when unset. The error names the variable and the scheme, never the URL.
    static func url(_ values: ConfigurationValues, _ setting: Setting) throws(ContingencyError) -> String? {
        guard let raw = try values.nonEmpty(setting) else { return nil }
        let url = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty
        else {
            throw .configuration(
                "\(setting.name) is not an http:// or https:// URL with a host (its value is a secret and not shown)",
                hint: "give the full URL, e.g. https://hooks.slack.com/services/…, or unset \(setting.name)")
        }
        return url
    }

    /// For logs and messages: scheme, host and port only. A webhook's path and query are its credential.
    public static func destination(_ url: String) -> String {
        guard let components = URLComponents(string: url), let host = components.host else {
            return "(unparseable URL)"
        }
        let port = components.port.map { ":\($0)" } ?? ""
        return "\(components.scheme ?? "http")://\(host)\(port)"
    }

    /// The healthchecks.io ping URLs: `<url>/start`, `<url>` and `<url>/fail` (before any query).
    public static func pingURL(_ base: String, _ kind: PingKind) -> String {
        guard kind != .success else { return base }
        guard var components = URLComponents(string: base) else { return base }
        var path = components.percentEncodedPath
        while path.hasSuffix("/") { path.removeLast() }
        components.percentEncodedPath = path + "/" + kind.rawValue
        return components.string ?? base
    }

    /// The secret values among `settings` that are set (and the password inside a libpq URI), to be blanked out
    /// of anything sent. Values shorter than 4 characters are left: blanking them would garble every message.
    public static func secretValues(_ values: ConfigurationValues, settings: [Setting]) -> [String] {
        var secrets: [String] = []
        for setting in settings where setting.secret {
            guard let value = try? values.nonEmpty(setting) else { continue }
            secrets.append(value)
            if let components = URLComponents(string: value), let password = components.password {
                secrets.append(password)
                if let decoded = password.removingPercentEncoding { secrets.append(decoded) }
            }
        }
        return Array(Set(secrets.filter { $0.count >= 4 })).sorted { $0.count > $1.count }
    }
}

/// The three pings of a job run.
public enum PingKind: String, Sendable, CaseIterable {
    case start
    case success = ""
    case fail
}

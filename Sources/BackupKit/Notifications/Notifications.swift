import BackupCore
import BackupInterop
import Foundation
import Logging

/// A process's notifications: the backup webhook (`BACKUP_WEBHOOK_URL`), the rollback webhook
/// (`ROLLBACK_WEBHOOK_URL`) and the dead-man's switch (`BACKUP_PING_URL`), each optional.
///
/// Contract: nothing here fails or holds up a job. Messages are queued and sent on tasks of their own, in
/// order per destination, each within `NOTIFY_TIMEOUT` (retries included); a failure is logged without the
/// URL's secret path and counted (`NotificationCounters`). A job that ends its process calls `flush()`, which
/// waits at most `NOTIFY_TIMEOUT` for what is still queued. No secret is ever sent: every message is built
/// from the jobs' own messages (which carry none) and then stripped of the configured secrets' values.
public struct Notifications: Sendable {
    public let settings: NotificationSettings
    /// The machine the messages name (the host name; a pod's name in Kubernetes).
    public let host: String
    let secrets: [String]
    let logger: Logger
    private let backupChain = DeliveryChain()
    private let rollbackChain = DeliveryChain()
    private let pingChain = DeliveryChain()

    public init(settings: NotificationSettings, host: String, secrets: [String] = [], logger: Logger) {
        self.settings = settings
        self.host = host
        self.secrets = secrets
        self.logger = logger
    }

    /// Reads the notification variables; `settings` is the configuration's whole list, whose secrets' values are
    /// kept out of every message.
    public static func configured(
        _ values: ConfigurationValues, settings: [Setting], logger: Logger,
        host: String = ProcessInfo.processInfo.hostName
    ) throws(ContingencyError) -> Notifications {
        let notificationSettings = try NotificationSettings.load(values)
        let secrets = NotificationSettings.secretValues(
            values, settings: settings + NotificationSettings.backupSettings + NotificationSettings.rollbackSettings)
        let notifications = Notifications(settings: notificationSettings, host: host, secrets: secrets, logger: logger)
        notifications.logConfiguration()
        return notifications
    }

    /// No destination: every call does nothing.
    public static func disabled(logger: Logger) -> Notifications {
        Notifications(settings: NotificationSettings(), host: ProcessInfo.processInfo.hostName, logger: logger)
    }

    private func logConfiguration() {
        let named: [(String, String?)] = [
            ("backup outcomes", settings.backupWebhook), ("incidents and rollbacks", settings.rollbackWebhook),
            ("job pings", settings.pingURL),
        ]
        for (what, url) in named {
            guard let url else { continue }
            logger.debug("Notifications of \(what) go to \(NotificationSettings.destination(url))")
        }
    }

    private func delivery(_ url: String, _ destination: NotificationCounters.Destination) -> NotificationDelivery {
        NotificationDelivery(
            url: url, destination: destination, timeoutSeconds: Double(settings.timeoutSeconds),
            retries: settings.retries,
            logger: logger)
    }

    /// The stream backup-job, cleanup-job and the admin API publish outcomes on: the backup webhook when set.
    public var backupEvents: BackupEvents {
        guard let url = settings.backupWebhook else { return .none }
        return BackupEvents([
            WebhookSubscriber(
                delivery: delivery(url, .backupWebhook), chain: backupChain, host: host, secrets: secrets, watched: nil,
                recoveredAfter: nil)
        ])
    }

    /// The rollback stream: the log lines (`[Rollback] …`), and the rollback webhook when set. `healthURL` (the
    /// sidecar's HEALTH_CHECK_URL) names what failed in incident messages, shown without credentials or query;
    /// `recoveredAfter` (HEALTH_CHECK_FAILURES) sends recoveries from an incident.
    public func rollbackEvents(logging logger: Logger, healthURL: String? = nil, recoveredAfter: Int? = nil)
        -> RollbackEvents
    {
        guard let url = settings.rollbackWebhook else { return .logging(to: logger) }
        let webhook = WebhookSubscriber(
            delivery: delivery(url, .rollbackWebhook), chain: rollbackChain, host: host, secrets: secrets,
            watched: healthURL.map(CurlEasy.redacted), recoveredAfter: recoveredAfter)
        return RollbackEvents([LogEventSubscriber(logger: logger), webhook])
    }

    /// Queues one ping of the dead-man's switch (`<url>/start`, `<url>`, `<url>/fail`), its body the message
    /// the check's log shows. Does nothing without BACKUP_PING_URL.
    public func ping(_ kind: PingKind, message: String) {
        guard let base = settings.pingURL else { return }
        let delivery = delivery(NotificationSettings.pingURL(base, kind), .ping)
        let body = Array(NotificationText.redacting(message, secrets: secrets).utf8)
        let name = kind == .success ? "success" : kind.rawValue
        pingChain.enqueue { await delivery.send(body, contentType: "text/plain; charset=utf-8", what: "\(name) ping") }
    }

    /// Waits for queued messages and pings, at most `NOTIFY_TIMEOUT`; what is still pending then is dropped
    /// (and logged). Then adds the deliveries that failed since to the jobs' metrics files
    /// (`JobMetrics.publishLateWebhookFailures`). For a process about to exit. Waits even when the calling task is
    /// cancelled: a job stopped by SIGTERM still sends its failure, within the same limit.
    public func flush() async {
        let chains = [backupChain, rollbackChain, pingChain]
        let limit = settings.timeoutSeconds
        // An unstructured task: it does not inherit the caller's cancellation, which would end the wait at once.
        let drained = await Task {
            await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    for chain in chains { await chain.drain() }
                    return true
                }
                group.addTask {
                    try? await Task.sleep(for: .seconds(limit))
                    return false
                }
                let first = await group.next() ?? true
                group.cancelAll()
                return first
            }
        }.value
        if !drained {
            logger.warning(
                "Notifications still being delivered after \(DurationFormat.string(seconds: Double(limit))) (NOTIFY_TIMEOUT) are dropped as the process ends"
            )
        }
        // The jobs' metrics count deliveries that failed after they were published (the run's outcome message).
        await JobMetrics.publishLateWebhookFailures()
    }

    /// Runs `body`, then waits for the queued messages (`flush()`) whether it returned or threw.
    @discardableResult
    public func flushing<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        let result: T
        do {
            result = try await body()
        } catch {
            await flush()
            throw error
        }
        await flush()
        return result
    }

    /// Runs one job (`job`: "backup", "cleanup", "restore", …) under the dead-man's switch and publishes its
    /// outcome: pings start, runs `body`, pings success or fail with a sentence saying why, publishes the event
    /// `succeeded`/`failed` map the result to (nil: none) on `backupEvents`, and returns or rethrows `body`'s
    /// outcome unchanged. The pings and messages are queued, not awaited: call `flush()` before the process ends.
    ///
    /// cleanup-job, for instance:
    ///
    ///     try await notifications.monitor(
    ///         "cleanup", succeeded: { .cleanupFinished(deleted: $0.deleted.count, total: $0.total, freedBytes: nil,
    ///                                                   rule: "older than 30 days") },
    ///         failed: { .cleanupFailed(reason: Notifications.reason($0)) }
    ///     ) { try await cleanup.run() }
    public func monitor<T: Sendable>(
        _ job: String, succeeded: (T) -> BackupEvent? = { _ in nil },
        failed: (any Error) -> BackupEvent? = { _ in nil },
        _ body: () async throws -> T
    ) async throws -> T {
        ping(.start, message: NotificationText.jobStarted(job, host: host))
        do {
            let result = try await body()
            ping(.success, message: NotificationText.jobSucceeded(job, host: host))
            if let event = succeeded(result) { await backupEvents.publish(event) }
            return result
        } catch {
            ping(.fail, message: NotificationText.jobFailed(job, host: host, reason: Self.reason(error)))
            if let event = failed(error) { await backupEvents.publish(event) }
            throw error
        }
    }

    /// An error as a notification states it: the message without the hint (the log has that), "cancelled" for a
    /// cancellation.
    public static func reason(_ error: any Error) -> String {
        switch error {
        case let error as ContingencyError: error.isCancellation ? "cancelled (\(error.message))" : error.message
        case is CancellationError: "cancelled"
        default: "\(error)"
        }
    }
}

extension Notifications {
    /// One backup (`body`) under the dead-man's switch, its outcome on the backup webhook ("Backup visual_backup_…
    /// succeeded on host …: 500 MB in 42 s", "Backup failed on host …: …"); the outcome is `body`'s.
    @discardableResult
    public func monitorBackup(_ body: () async throws -> BackupResult) async throws -> BackupResult {
        try await monitor(
            "backup",
            succeeded: { result in
                .backupSucceeded(
                    name: result.name.fileName, size: result.manifest.archive.size, seconds: result.duration)
            },
            failed: { error in
                .backupFailed(
                    reason: Notifications.reason(error), partial: (error as? ContingencyError)?.exitStatus == .partial)
            },
            body)
    }
}

extension BackupJob {
    /// One backup under `notifications` (`Notifications.monitorBackup`): what each `backup-job --loop` run and
    /// the admin API's `POST /api/backups` call.
    @discardableResult
    public func runReporting(to notifications: Notifications) async throws -> BackupResult {
        try await notifications.monitorBackup { try await runCancellingOnLostLease() }
    }
}

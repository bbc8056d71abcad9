import BackupCore
import BackupStorage
import Foundation
import Logging
import Synchronization

/// Publishes one run's metrics of a job (backup, rollback, cleanup, drill): the store's
/// `.contingency/metrics/<job>.prom`, its counters continued from the previous file (`MetricsFile`), then the same
/// families PUT to the Pushgateway when PUSHGATEWAY_URL is set.
///
/// Contract: never throws and never changes the job's outcome. A file that cannot be written, or a gateway that
/// does not answer, is a warning; the push is skipped when the file could not be written (its counters would
/// not be the store's totals).
public struct JobMetrics: Sendable {
    /// The job's name: the file's (`backup.prom`), the gateway's group (`contingency_backup`) and the `source`
    /// label of `contingency_webhook_failures_total`.
    public let job: String
    public let storage: any Storage
    public let pushgateway: Pushgateway?
    /// Whether this process's failed notification deliveries are added to the file as
    /// `contingency_webhook_failures_total{source=<job>,destination}`: true where the job is its own process
    /// (backup-job, cleanup-job, restore-job); false in the sidecar, whose registry counts its deliveries as
    /// `source="sidecar"`, so that no failure is counted twice.
    public let countsWebhookFailures: Bool
    public let logger: Logger

    public init(job: String, storage: any Storage, pushgatewayURL: String?, countsWebhookFailures: Bool, logger: Logger)
    {
        self.job = job
        self.storage = storage
        pushgateway = pushgatewayURL.map(Pushgateway.init(url:))
        self.countsWebhookFailures = countsWebhookFailures
        self.logger = logger
        if let pushgateway, pushgateway.sendsCredentialsInClear {
            let shown = pushgateway.redacted
            logger.warning(
                "PUSHGATEWAY_URL (\(shown), credentials not shown) sends its basic-auth credentials unencrypted over http://: anyone on the network path can read them; give the gateway an https:// URL, or drop the credentials if it needs none"
            )
        }
    }

    public static let webhookFailuresName = "contingency_webhook_failures_total"

    /// Failed deliveries already added to a file by this process, per job and destination: a process that runs a
    /// job again (`--loop`) adds only what failed since.
    private static let publishedFailures = Mutex<[String: [NotificationCounters.Destination: Int]]>([:])
    /// The last publisher of each job in this process that counts webhook failures, for
    /// `publishLateWebhookFailures`.
    private static let publishers = Mutex<[String: JobMetrics]>([:])

    /// Writes `families` (gauges with this run's values, counters with its increments) and pushes them.
    public func publish(_ families: [MetricFamily]) async {
        await write(families, keepingOthers: false)
    }

    /// Adds what failed to be delivered since each job's last publish in this process to its file, and pushes the
    /// file again; does nothing for a job where nothing failed since. Called when a process's notifications are
    /// flushed (`Notifications.flush`): a once-mode job's own outcome message is sent after its metrics were
    /// published, and its failure would otherwise be in the log only.
    public static func publishLateWebhookFailures() async {
        for publisher in publishers.withLock({ Array($0.values) }) {
            let published = publishedFailures.withLock { $0[publisher.job] ?? [:] }
            let late = NotificationCounters.Destination.allCases.contains {
                NotificationCounters.counts($0).failed > published[$0] ?? 0
            }
            if late { await publisher.write([], keepingOthers: true) }
        }
    }

    /// `keepingOthers`: the previous file's other families stay as they were (a late addition to the last run's
    /// file), instead of being replaced by this run's.
    private func write(_ families: [MetricFamily], keepingOthers: Bool) async {
        var all = families
        var failures: [NotificationCounters.Destination: Int] = [:]
        if countsWebhookFailures {
            let published = Self.publishedFailures.withLock { $0[job] ?? [:] }
            for destination in NotificationCounters.Destination.allCases {
                failures[destination] = NotificationCounters.counts(destination).failed
            }
            all.append(
                .counter(
                    Self.webhookFailuresName,
                    "Notification deliveries that failed after every attempt, by source and destination.",
                    NotificationCounters.Destination.allCases.map { destination -> ([MetricSample.Label], Double) in
                        (
                            [.init("source", job), .init("destination", destination.rawValue)],
                            Double(max(0, (failures[destination] ?? 0) - (published[destination] ?? 0)))
                        )
                    }))
        }
        let file = MetricsFile(job: job, families: all)
        let (storage, logger) = (storage, logger)
        let written: [MetricFamily]
        do {
            written = try await Blocking.run {
                try file.publish(to: storage, keepingOthers: keepingOthers, logger: logger)
            }
        } catch {
            let unpushed = pushgateway == nil ? "" : " (nothing pushed to the Pushgateway either)"
            logger.warning(
                "Could not publish the \(job) metrics to \(MetricsFile.key(job: job)) in \(storage): \(error); the \(job) itself is not affected\(unpushed)"
            )
            return
        }
        if countsWebhookFailures {
            Self.publishedFailures.withLock { $0[job] = failures }
            Self.publishers.withLock { $0[job] = self }
        }
        guard let pushgateway else { return }
        let (name, text) = (job, PrometheusText.render(Pushgateway.pushable(written)))
        do {
            try await Blocking.run { try pushgateway.push(text, job: name) }
            logger.info("Pushed the \(job) metrics to the Pushgateway \(pushgateway.redacted) (job contingency_\(job))")
        } catch {
            logger.warning("Could not push the \(job) metrics: \(error); the \(job) itself is not affected")
        }
    }
}

import BackupCore
import Foundation

/// The families each job publishes (docs: the metrics contract, source C), by name.
extension JobMetrics {
    /// backup.prom, for one counted run.
    public static func backupRun(succeeded: Bool, at date: Date) -> [MetricFamily] {
        [
            .counter(
                "contingency_backup_runs_total",
                "Backup runs by result (success, or failure: failed or partial); runs refused by the store lock or cancelled are not counted.",
                [([.init("result", "success")], succeeded ? 1 : 0), ([.init("result", "failure")], succeeded ? 0 : 1)]),
            .gauge(
                "contingency_backup_last_run_success", "Whether the last backup run succeeded (1) or not (0).",
                succeeded ? 1 : 0),
            .gauge(
                "contingency_backup_last_run_timestamp_seconds",
                "When the last backup run ended, in seconds since the epoch.",
                date.timeIntervalSince1970.rounded()),
        ]
    }

    /// rollback.prom, for one rollback that ran (or was refused by the loop guard).
    public static func rollback(succeeded: Bool, at date: Date) -> [MetricFamily] {
        [
            .counter(
                "contingency_rollbacks_total",
                "Automatic rollbacks by result (succeeded: the application answers again; failed, refusals by the loop guard included).",
                [([.init("result", "succeeded")], succeeded ? 1 : 0), ([.init("result", "failed")], succeeded ? 0 : 1)]),
            .gauge(
                "contingency_rollback_last_success", "Whether the last rollback succeeded (1) or not (0).",
                succeeded ? 1 : 0),
            .gauge(
                "contingency_rollback_last_timestamp_seconds",
                "When the last rollback ended, in seconds since the epoch.",
                date.timeIntervalSince1970.rounded()),
        ]
    }
}

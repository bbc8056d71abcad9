/// What happened to a backup or a cleanup run: published by the jobs (and the admin API) on `BackupEvents`, which
/// the webhook (and later the metrics) subscribe to. Values only: reasons are the jobs' own error messages, which
/// never carry a secret.
public enum BackupEvent: Sendable, Equatable {
    /// A backup was published: `name` (the archive's file name), its size in bytes and how long it took.
    case backupSucceeded(name: String, size: Int64, seconds: Double)
    /// A backup failed (`partial`: it was published, but a secondary step such as the bucket copy failed).
    case backupFailed(reason: String, partial: Bool)
    /// Retention ran: `deleted` of `total` backups removed (`freedBytes` when known); `rule` says why they went,
    /// e.g. "older than 30 days".
    case cleanupFinished(deleted: Int, total: Int, freedBytes: Int64?, rule: String?)
    /// Retention did not run to its end (`reason`), or refused to (the brake).
    case cleanupFailed(reason: String)
}

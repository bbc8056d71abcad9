import Foundation

/// The one sentence each notification says: what happened, to what, where, and the outcome. Pure, so that the
/// wording is tested with plain values. `host` is the machine (or pod) that ran the job.
public enum NotificationText {
    public static func text(_ event: BackupEvent, host: String) -> String {
        switch event {
        case .backupSucceeded(let name, let size, let seconds):
            return
                "Backup \(name) succeeded on host \(host): \(ByteFormat.string(size)) in \(DurationFormat.string(seconds: seconds))"
        case .backupFailed(let reason, let partial):
            return partial
                ? "Backup on host \(host) partly failed: \(oneLine(reason))"
                : "Backup failed on host \(host): \(oneLine(reason))"
        case .cleanupFinished(let deleted, let total, let freedBytes, let rule):
            let why = rule.map { " \($0)" } ?? ""
            let freed = freedBytes.map { ", freeing \(ByteFormat.string($0))" } ?? ""
            return
                "Cleanup removed \(deleted) of \(total) \(total == 1 ? "backup" : "backups")\(why) on host \(host)\(freed)"
        case .cleanupFailed(let reason):
            return "Cleanup failed on host \(host): \(oneLine(reason))"
        }
    }

    /// A job run's ping body (`BACKUP_PING_URL`); the check's own log shows it.
    public static func jobStarted(_ job: String, host: String) -> String {
        "\(capitalized(job)) started on host \(host)"
    }

    public static func jobFailed(_ job: String, host: String, reason: String) -> String {
        "\(capitalized(job)) failed on host \(host): \(oneLine(reason))"
    }

    public static func jobSucceeded(_ job: String, host: String) -> String {
        "\(capitalized(job)) succeeded on host \(host)"
    }

    /// `target` is the health URL as it may be shown (no credentials, no query), or nil where it is not known.
    public static func incidentOpened(
        target: String?, failures: Int, lastResult: String, sidecar: String, request: String
    ) -> String {
        "Incident opened: \(target ?? "the application's health check") failed \(failures) times in a row (last: \(oneLine(lastResult))), seen by \(sidecar); rollback requested (\(request))"
    }

    public static func recovered(target: String?, failures: Int, sidecar: String) -> String {
        "Recovered: \(target ?? "the application") answers again after \(failures) failed health \(failures == 1 ? "check" : "checks"), seen by \(sidecar)"
    }

    public static func rollbackStarted(request: String, target: String, host: String) -> String {
        "Rollback to \(target) started on host \(host) (\(request))"
    }

    public static func rollbackSucceeded(request: String, target: String, seconds: Double, host: String) -> String {
        "Rollback to \(target) succeeded on host \(host): the application is healthy again after \(DurationFormat.string(seconds: seconds)) (\(request))"
    }

    public static func rollbackFailed(request: String, target: String?, reason: String, host: String) -> String {
        "Rollback\(target.map { " to \($0)" } ?? "") failed on host \(host): \(oneLine(reason)) (\(request))"
    }

    public static func rollbackRefused(request: String, reason: String, host: String) -> String {
        "Rollback \(request) was not run on host \(host): \(oneLine(reason)); a person must decide"
    }

    public static func rollbackSkipped(request: String, reason: String, host: String) -> String {
        "Rollback \(request) was not needed on host \(host): \(oneLine(reason))"
    }

    /// `text` with each of `secrets` replaced by `***`, longest first (so a password inside a URL that is also a
    /// secret goes either way).
    public static func redacting(_ text: String, secrets: [String]) -> String {
        secrets.sorted { $0.count > $1.count }.reduce(text) { $0.replacingOccurrences(of: $1, with: "***") }
    }

    /// Error messages can span lines (a tool's stderr); a chat message is one line, at most 1,000 characters.
    static func oneLine(_ text: String) -> String {
        let flat = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.joined(separator: " ")
        return flat.count > 1000 ? String(flat.prefix(999)) + "…" : flat
    }

    private static func capitalized(_ job: String) -> String { job.prefix(1).uppercased() + job.dropFirst() }
}

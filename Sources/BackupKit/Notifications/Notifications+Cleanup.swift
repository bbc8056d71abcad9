import BackupCore

extension Notifications {
    /// One cleanup (`body`) under the dead-man's switch, its outcome on the backup webhook ("Cleanup removed 5 of
    /// 12 backups …"); a cleanup the brake refused is reported as failed. The outcome is `body`'s.
    @discardableResult
    public func monitorCleanup(_ body: () async throws -> CleanupResult) async throws -> CleanupResult {
        try await monitor(
            "cleanup",
            succeeded: { result in
                if let refusal = result.refusal { return .cleanupFailed(reason: refusal) }
                return .cleanupFinished(
                    deleted: result.deletedCount, total: result.total, freedBytes: nil,
                    rule: "older than \(result.retentionDays) days")
            },
            failed: { .cleanupFailed(reason: Notifications.reason($0)) }, body)
    }
}

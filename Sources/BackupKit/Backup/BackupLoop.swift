import BackupCore
import Foundation
import Logging

extension BackupJob {
    /// Runs one backup; if the lease is lost midway (another job took it over), the run is cancelled before
    /// it can publish anything and fails with the lease error (exit 11), not as a cancellation.
    ///
    /// Every backup run of backup-job (once and `--loop`) and of the admin API's `POST /api/backups` comes
    /// through here, and each publishes its outcome once (`backup.prom`, and the Pushgateway): a success counts as
    /// `success`; a failed or partial run (exit 1 or 3: the dump, the store, the bucket copy…) as `failure`. A run
    /// refused because another job holds the store lock, or whose lease was taken over (exit 11), and a cancelled
    /// one (130) are not counted: they did not try a backup of their own, or were stopped on purpose; the
    /// holder's run counts. A rollback's safety backup (`run()` directly) is the rollback's, not counted here.
    @discardableResult
    public func runCancellingOnLostLease() async throws -> BackupResult {
        let handle = CancelHandle()
        let task = Task { try await run(lostLease: { error in handle.cancel(because: error) }) }
        handle.set(task)
        let thrown: any Error
        do {
            let result = try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
            await publishRunMetrics(succeeded: true)
            return result
        } catch {
            if let lost = handle.reason { thrown = lost } else { thrown = error }
        }
        if Self.isCountedFailure(thrown) { await publishRunMetrics(succeeded: false) }
        throw thrown
    }

    /// Whether a run that threw `error` counts as a failed backup (see `runCancellingOnLostLease`).
    static func isCountedFailure(_ error: any Error) -> Bool {
        switch error {
        case let error as ContingencyError: !error.isCancellation && error.exitStatus != .locked
        case is CancellationError: false
        default: true
        }
    }

    private func publishRunMetrics(succeeded: Bool) async {
        await JobMetrics(
            job: "backup", storage: stores.primary, pushgatewayURL: configuration.store.pushgatewayURL,
            countsWebhookFailures: countsWebhookFailures, logger: logger
        ).publish(JobMetrics.backupRun(succeeded: succeeded, at: Date()))
    }
}

/// Lets a callback cancel a task created after the callback was, and remembers why.
final class CancelHandle: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled: ContingencyError?
    private var task: Task<BackupResult, any Error>?

    var reason: ContingencyError? { lock.withLock { cancelled } }

    func set(_ task: Task<BackupResult, any Error>) {
        let cancelNow = lock.withLock {
            self.task = task
            return cancelled != nil
        }
        if cancelNow { task.cancel() }
    }

    func cancel(because reason: ContingencyError) {
        let task = lock.withLock {
            cancelled = reason
            return self.task
        }
        task?.cancel()
    }
}

/// `backup-job --loop`: a backup at every fire time of BACKUP_SCHEDULE; SIGTERM while idle exits 0, during a
/// backup aborts it cleanly.
public struct BackupLoop: Sendable {
    public let job: BackupJob
    /// Touched while the loop runs (`LIVENESS_FILE`).
    public let liveness: Liveness?
    /// Each run's pings and outcome message (BACKUP_PING_URL, BACKUP_WEBHOOK_URL).
    public let notifications: Notifications?

    public init(job: BackupJob, liveness: Liveness? = nil, notifications: Notifications? = nil) {
        self.job = job
        self.liveness = liveness
        self.notifications = notifications
    }

    public func run() async throws {
        try await ScheduledLoop.run(job.configuration.schedule, what: "backup", logger: job.logger, liveness: liveness) {
            if let notifications {
                try await job.runReporting(to: notifications)
            } else {
                try await job.runCancellingOnLostLease()
            }
        }
    }
}

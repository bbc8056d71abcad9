import BackupCore
import Foundation
import Logging

extension BackupJob {
    /// Runs one backup; if the lease is lost midway (another job took it over), the run is cancelled before
    /// it can publish anything and fails with the lease error (exit 11), not as a cancellation.
    @discardableResult
    public func runCancellingOnLostLease() async throws -> BackupResult {
        let handle = CancelHandle()
        let task = Task { try await run(lostLease: { error in handle.cancel(because: error) }) }
        handle.set(task)
        do {
            return try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
        } catch {
            if let lost = handle.reason { throw lost }
            throw error
        }
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

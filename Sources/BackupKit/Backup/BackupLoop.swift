import BackupCore
import Foundation
import Logging

extension BackupJob {
    /// Runs one backup; if the lease is lost midway (another job took it over), the run is cancelled before
    /// it can publish anything.
    @discardableResult
    public func runCancellingOnLostLease() async throws -> BackupResult {
        let handle = CancelHandle()
        let task = Task { try await run(lostLease: { _ in handle.cancel() }) }
        handle.set(task)
        return try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
    }
}

/// Lets a callback cancel a task created after the callback was.
final class CancelHandle: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false
    private var task: Task<BackupResult, any Error>?

    func set(_ task: Task<BackupResult, any Error>) {
        let cancelNow = lock.withLock {
            self.task = task
            return cancelled
        }
        if cancelNow { task.cancel() }
    }

    func cancel() {
        let task = lock.withLock {
            cancelled = true
            return self.task
        }
        task?.cancel()
    }
}

/// `backup-job --loop`: a backup at every fire time of the schedule. A failed run is logged and the loop goes
/// on to the next time; SIGTERM while idle exits 0, during a backup aborts it cleanly.
public struct BackupLoop: Sendable {
    public let job: BackupJob

    public init(job: BackupJob) { self.job = job }

    public func run() async throws {
        let schedule = job.configuration.schedule
        while !Task.isCancelled {
            let next = schedule.nextFire(after: Date())
            job.logger.info("Next backup at \(ISO8601DateFormatter().string(from: next)) (schedule \(schedule))")
            guard await JobRunner.sleep(until: next) else { return }
            do {
                try await job.runCancellingOnLostLease()
                job.logger.info("Scheduled backup completed successfully")
            } catch let error as ContingencyError where !error.isCancellation {
                job.logger.error("Scheduled backup failed: \(error)")
            }
        }
    }
}

import BackupInterop
import Foundation
import Synchronization

/// A task executor with one thread of its own at the backup's lower priority (`ThreadPriority.background`), made
/// for one backup and stopped after it.
///
/// A backup's long synchronous stretch (reading the staged dump and the uploads into the archive, compressing,
/// hashing, writing the store) runs under `withTaskExecutorPreference(executor)`: off Swift's cooperative pool,
/// whose two threads (one per core) the sidecar's HTTP server and probe loop need, and below them in the kernel's
/// scheduling. Unlike `Blocking.run`, the work stays in its task: `Task.checkCancellation()` and the lease's
/// fencing see SIGTERM as they do on the pool. Threads made by the work (the compressors' workers) inherit the
/// lower priority. One executor per backup, so that backups of different stores in one process (the tests, a
/// future admin API) never wait for each other's thread.
///
/// Only synchronous work goes there: the one thread runs one job at a time, so work that waits for other tasks
/// to run on it would wait forever.
public final class BackgroundExecutor: TaskExecutor, Sendable {
    private struct Queue {
        var jobs: [UnownedJob] = []
        var stopped = false
    }
    private let queue = Mutex(Queue())
    private let available = DispatchSemaphore(value: 0)
    private let name: String
    private let lowered: Bool

    /// `name`: the thread's name (at most 15 bytes on Linux). `lowerPriority`: run at the backup's lower priority
    /// (the default; false keeps the creating process's, for work that must not wait behind others).
    public init(name: String = "backup.archive", lowerPriority: Bool = true) {
        self.name = name
        self.lowered = lowerPriority
        startThread()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let stopped = queue.withLock {
            $0.jobs.append(job)
            return $0.stopped
        }
        // After `stop` (nothing of ours does that): a thread of its own for the late job, rather than never.
        if stopped { startThread() }
        available.signal()
    }

    /// Ends the thread once the jobs already enqueued have run.
    public func stop() {
        queue.withLock { $0.stopped = true }
        available.signal()
    }

    private func startThread() {
        NamedThread.start(name, lowered: lowered) { [self] in
            while true {
                available.wait()
                let (job, stopped) = queue.withLock { ($0.jobs.isEmpty ? nil : $0.jobs.removeFirst(), $0.stopped) }
                if let job {
                    job.runSynchronously(on: asUnownedTaskExecutor())
                } else if stopped {
                    available.signal()  // for a thread started after `stop`, if any
                    return
                }
            }
        }
    }
}

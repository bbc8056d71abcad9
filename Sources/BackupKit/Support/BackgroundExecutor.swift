import BackupInterop
import Foundation
import Synchronization

/// A task executor with one thread of its own at the backup's lower priority (`ThreadPriority.background`).
///
/// A backup's long synchronous stretches (reading the staged dump and the uploads into the archive, compressing,
/// hashing, writing the store) run under `withTaskExecutorPreference(BackgroundExecutor.shared)`: off Swift's
/// cooperative pool, whose two threads (one per core) the sidecar's HTTP server and probe loop need, and below
/// them in the kernel's scheduling. Unlike `Blocking.run`, the work stays in its task: `Task.checkCancellation()`
/// and the lease's fencing see SIGTERM as they do on the pool. Threads made by the work (the compressors'
/// workers) inherit the lower priority.
///
/// Only synchronous work goes there: the one thread runs one job at a time, so work that waits for other tasks
/// to run on it would wait forever, and two backups in one process write their archives one after the other
/// (each store's lease allows one at a time anyway). The thread starts on first use and lives as long as the
/// process.
public final class BackgroundExecutor: TaskExecutor, Sendable {
    public static let shared = BackgroundExecutor(name: "backup.archive")

    private let jobs = Mutex<[UnownedJob]>([])
    private let available = DispatchSemaphore(value: 0)

    init(name: String) {
        let thread = Thread { [self] in
            Thread.current.name = name  // named from inside: Linux's thread name too (at most 15 bytes)
            ThreadPriority.lowerCurrentThread()
            while true {
                available.wait()
                guard let job = jobs.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { continue }
                job.runSynchronously(on: asUnownedTaskExecutor())
            }
        }
        thread.start()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        jobs.withLock { $0.append(job) }
        available.signal()
    }
}

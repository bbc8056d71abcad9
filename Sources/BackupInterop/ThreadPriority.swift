#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The scheduling priority of a backup's own threads. A backup shares its cores with whatever serves requests
/// in the same process (the sidecar's HTTP server and probe loop, when the admin API runs a backup inside it)
/// and on the same machine (the application, its database): its threads run at a lower priority (nice +10), so
/// that on two busy cores a request waits for a compression block to end rather than for its turn of a time
/// slice. A backup alone on the machine runs as fast as before: the priority only matters when the cores are
/// contended.
public enum ThreadPriority {
    /// The nice value of a backup's threads: what libdispatch gives its background QoS on Linux (its utility QoS,
    /// where `Blocking`'s probes and store calls run, gets 2; the HTTP server's threads stay at 0).
    public static let background: Int32 = 10

    /// Lowers the calling thread, and only it, to `background` (never raises it: an operator's `nice -n 15` stays).
    /// Linux keeps a nice value per thread and copies it to the threads a thread creates (libzstd's workers
    /// inherit it); elsewhere this does nothing.
    public static func lowerCurrentThread() {
        #if os(Linux)
        errno = 0
        let current = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), callingThread)
        guard errno == 0, current < background else { return }
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), callingThread, background)
        #endif
    }

    /// `PRIO_PROCESS` with id 0: on Linux the calling thread, not the whole process (the kernel reads the
    /// calling task's value; glibc does not declare `gettid` without _GNU_SOURCE).
    private static let callingThread: id_t = 0

    /// The calling thread's nice value (for tests and diagnostics); 0 where unknown.
    public static func currentThread() -> Int32 {
        #if os(Linux)
        errno = 0
        let value = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), callingThread)
        return errno == 0 ? value : 0
        #else
        return 0
        #endif
    }
}

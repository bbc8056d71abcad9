import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Threads of the process's own (compressors' workers, a sink's writer, a restore's COPY sessions), named as Linux
/// shows them in `top -H`, `ps -L` and /proc/<pid>/task/<tid>/comm, so that an operator, a profile or a test can
/// tell them apart.
///
/// Named here rather than through Foundation's `Thread.name`: swift-corelibs-foundation names a thread only once
/// `start()` has stored the thread's handle, which the new thread can outrun (its name is then dropped, and it keeps
/// its creator's), and a name given before `start()` never reaches the system at all. glibc's
/// `pthread_setname_np` is not exported by Swift's Glibc module (it needs `_GNU_SOURCE`); the kernel's own
/// interface for it is the calling thread's `comm` file.
public enum NamedThread {
    /// Starts `body` on a new thread, which names itself `name` first and, when `lowered`, takes a backup's lower
    /// priority (`ThreadPriority.background`) before running it. `name` is ASCII of at most 15 bytes, all Linux
    /// keeps: a longer one would be cut, and threads named alike would no longer be told apart.
    public static func start(_ name: String, lowered: Bool = false, _ body: @escaping @Sendable () -> Void) {
        assert(name.utf8.count <= 15 && name.allSatisfy(\.isASCII), "a thread name Linux would cut: \(name)")
        let thread = Thread {
            nameCurrentThread(name)
            if lowered { ThreadPriority.lowerCurrentThread() }
            body()
        }
        thread.start()
    }

    /// Names the calling thread (Linux keeps its first 15 bytes; threads it creates start with a copy). Elsewhere, or
    /// if /proc is not mounted, the thread keeps its name: a name is for people, never needed to run.
    public static func nameCurrentThread(_ name: String) {
        #if os(Linux)
        let file = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard file >= 0 else { return }
        defer { close(file) }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { write(file, $0.baseAddress, $0.count) }
        #endif
    }
}

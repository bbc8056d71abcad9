import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Feeds bytes into a child's standard input on a dedicated thread, then closes it.
enum PipeWriter {
    /// Writes `data` to `handle` on a new thread and closes it afterwards. A child that exits
    /// without reading everything is fine: SIGPIPE is blocked on that thread only (so the test
    /// process is not killed and children keep the default disposition) and the write just fails.
    static func start(writing data: Data, to handle: FileHandle) {
        let thread = Thread {
            var blocked = sigset_t()
            sigemptyset(&blocked)
            sigaddset(&blocked, SIGPIPE)
            pthread_sigmask(SIG_BLOCK, &blocked, nil)

            let fd = handle.fileDescriptor
            var brokenPipe = false
            data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
                guard var pointer = bytes.baseAddress else { return }
                var remaining = bytes.count
                while remaining > 0 {
                    let written = write(fd, pointer, remaining)
                    if written > 0 {
                        pointer += written
                        remaining -= written
                    } else if written < 0 && errno == EINTR {
                        continue
                    } else {
                        brokenPipe = errno == EPIPE
                        return
                    }
                }
            }
            try? handle.close()
            if brokenPipe {
                // Consume the SIGPIPE left pending on this thread.
                var timeout = timespec(tv_sec: 0, tv_nsec: 0)
                _ = sigtimedwait(&blocked, nil, &timeout)
            }
        }
        thread.start()
    }
}

import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Drains one pipe on a dedicated thread until end-of-file, so a chatty child never blocks on a
/// full pipe while its parent waits for it. The collected bytes can be read at any time.
final class PipeReader: Sendable {
    private struct State {
        var data = Data()
        var finished = false
    }

    private let state = Mutex(State())

    /// Starts reading `handle` (which the reader keeps open until end-of-file) on a new thread.
    init(_ handle: FileHandle) {
        let thread = Thread { [self] in
            let fd = handle.fileDescriptor
            let capacity = 64 * 1024
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 1)
            defer { buffer.deallocate() }
            while true {
                let count = read(fd, buffer, capacity)
                if count > 0 {
                    let chunk = Data(bytes: buffer, count: count)
                    state.withLock { $0.data.append(chunk) }
                } else if count < 0 && errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            try? handle.close()
            state.withLock { $0.finished = true }
        }
        thread.start()
    }

    /// Whether end-of-file was reached.
    var isFinished: Bool { state.withLock { $0.finished } }

    /// What was read so far.
    var data: Data { state.withLock { $0.data } }

    /// What was read so far, decoded as UTF-8 (invalid sequences repaired).
    var text: String { String(decoding: data, as: UTF8.self) }
}

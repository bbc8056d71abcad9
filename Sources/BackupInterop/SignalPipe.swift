import BackupCore
import CSignalPipe
import Foundation
import Synchronization

/// Delivers SIGTERM and SIGINT to Swift code reliably: a C handler writes each signal's number to a pipe, and a
/// thread of its own reads the pipe and calls the current handler.
///
/// A dispatch signal source (with the signal set to SIG_IGN, as it requires) depends on the signal being
/// blocked in every thread: a thread that does not block it (one a library started) takes the signal, ignores
/// it, and it is lost; a job then ran on after a SIGTERM. A real handler runs on whichever thread receives it.
public enum SignalPipe {
    private static let handler = Mutex<(@Sendable (Int32) -> Void)?>(nil)
    private static let started = Mutex(false)

    /// Calls `onSignal` (on the watching thread) for each SIGTERM or SIGINT from now on; a later call replaces
    /// the handler. Throws when the handlers cannot be installed.
    public static func watch(_ onSignal: @escaping @Sendable (Int32) -> Void) throws {
        handler.withLock { $0 = onSignal }
        let signals: [Int32] = [SIGTERM, SIGINT]
        let readEnd = signals.withUnsafeBufferPointer { contingency_signal_pipe($0.baseAddress, Int32($0.count)) }
        guard readEnd >= 0 else {
            throw ContingencyError.failed("cannot install the SIGTERM and SIGINT handlers: \(String(cString: strerror(errno)))")
        }
        let start = started.withLock { started -> Bool in
            defer { started = true }
            return !started
        }
        guard start else { return }
        let thread = Thread {
            // A process started with these signals blocked (the mask is inherited: a parent that spawned us from
            // a thread blocking them) would keep them pending for ever if every thread blocked them: this one
            // takes them.
            var set = sigset_t()
            sigemptyset(&set)
            for signal in signals { sigaddset(&set, signal) }
            pthread_sigmask(SIG_UNBLOCK, &set, nil)
            var byte: UInt8 = 0
            while true {
                let count = read(readEnd, &byte, 1)
                if count == 1 {
                    let current = handler.withLock { $0 }
                    current?(Int32(byte))
                } else if count < 0 && errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
        thread.name = "signals"
        thread.start()
    }

    /// Stops calling the handler (the signals are still caught, and dropped).
    public static func stopWatching() {
        handler.withLock { $0 = nil }
    }
}

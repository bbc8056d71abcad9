import Dispatch
import Foundation
import Synchronization

/// Runs blocking work (libcurl, libpq, the `Storage` protocol's file and network calls, compression) on a
/// thread of its own instead of Swift's cooperative pool: the pool has one thread per core (two here), and a
/// probe or a store write that blocks on it would stall the sidecar's HTTP server and every other task.
public enum Blocking {
    private static let queue = DispatchQueue(label: "contingency.blocking", qos: .utility, attributes: .concurrent)

    public static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try work() }) }
        }
    }

    public static func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: work()) }
        }
    }

    /// Like `run`, but returns at once with `CancellationError` when the task is cancelled: the work goes on
    /// in the background and its result is dropped. Only for work whose effects do not matter once nobody
    /// waits (an HTTP probe), so that SIGTERM during a probe with a long timeout ends the loop promptly.
    public static func runAbandoningOnCancel<T: Sendable>(_ work: @escaping @Sendable () -> T) async throws -> T {
        let waiter = ContinuationSlot<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                waiter.set(continuation)
                // Cancelled before the slot was filled: the handler found it empty.
                if Task.isCancelled {
                    waiter.take()?.resume(throwing: CancellationError())
                    return
                }
                queue.async {
                    let result = work()
                    waiter.take()?.resume(returning: result)
                }
            }
        } onCancel: {
            waiter.take()?.resume(throwing: CancellationError())
        }
    }
}

/// A continuation resumed by whichever comes first, the work or the cancellation.
private final class ContinuationSlot<T: Sendable>: Sendable {
    private let slot = Mutex<CheckedContinuation<T, any Error>?>(nil)

    func set(_ continuation: CheckedContinuation<T, any Error>) { slot.withLock { $0 = continuation } }

    func take() -> CheckedContinuation<T, any Error>? { slot.withLock { $0.take() } }
}

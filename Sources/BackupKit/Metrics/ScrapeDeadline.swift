import Synchronization

/// Waits for work at most a given time, for a scrape that must answer whatever the store does: the scrape
/// gets nil when the work has not finished by then, and the work goes on in the background (store calls cannot
/// be interrupted; what they read still fills the caches the next scrape uses).
///
/// Not a task group: a group waits for all its children before it returns, so a child stuck in a store call
/// would hold the scrape however early the timer fired.
public enum ScrapeDeadline {
    /// `work`'s value, or nil when it has not finished within `deadline`.
    public static func value<T: Sendable>(
        within deadline: Duration, of work: @escaping @Sendable () async -> T
    ) async -> T? {
        let slot = Slot<T?>()
        return await withCheckedContinuation { continuation in
            slot.set(continuation)
            let timer = Task {
                try? await Task.sleep(for: deadline)
                slot.resume(nil)
            }
            Task {
                let value = await work()
                slot.resume(value)
                timer.cancel()
            }
        }
    }

    /// A continuation resumed once, by whichever comes first.
    private final class Slot<T: Sendable>: Sendable {
        private let continuation = Mutex<CheckedContinuation<T, Never>?>(nil)

        func set(_ value: CheckedContinuation<T, Never>) { continuation.withLock { $0 = value } }

        func resume(_ value: T) { continuation.withLock { $0.take() }?.resume(returning: value) }
    }
}

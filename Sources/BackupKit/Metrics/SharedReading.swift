import Synchronization

/// One reading at a time, however many callers: a caller joins the reading in progress rather than starting
/// another, and a result younger than `fresh` is served as it is, so a client that hammers the public
/// `/metrics` costs the store one reading at a time. A caller waits at most its deadline, then gets the last
/// result that ended (nil before the first): a slow store serves its previous answer rather than nothing.
public final class SharedReading<Value: Sendable>: Sendable {
    private struct State: Sendable {
        var running: Task<Value, Never>?
        var last: (value: Value, at: ContinuousClock.Instant)?
    }

    private let read: @Sendable () async -> Value
    private let fresh: Duration
    private let state = Mutex(State())

    public init(fresh: Duration, read: @escaping @Sendable () async -> Value) {
        self.fresh = fresh
        self.read = read
    }

    private enum Next {
        case served(Value)
        case waiting(Task<Value, Never>)
    }

    /// The reading's value, by `deadline` if one ends by then, else the last one that ended.
    public func value(within deadline: Duration) async -> Value? {
        let next: Next = state.withLock { state in
            if let last = state.last, ContinuousClock.now - last.at < fresh { return .served(last.value) }
            if let running = state.running { return .waiting(running) }
            // The task takes the lock to record its end: it cannot do so before `running` is set here.
            let task = Task { () -> Value in
                let value = await self.read()
                self.state.withLock {
                    $0.running = nil
                    $0.last = (value, ContinuousClock.now)
                }
                return value
            }
            state.running = task
            return .waiting(task)
        }
        switch next {
        case .served(let value):
            return value
        case .waiting(let task):
            if let value = await ScrapeDeadline.value(within: deadline, of: { await task.value }) { return value }
            return state.withLock { $0.last?.value }
        }
    }
}

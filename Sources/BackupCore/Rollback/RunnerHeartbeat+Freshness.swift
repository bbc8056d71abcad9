import Foundation

extension RunnerHeartbeat {
    /// Whether the runner that wrote this heartbeat is still polling: the store last wrote it (`written`, by the
    /// store's clock) at most three of its poll intervals before `now` (the store's clock too), and never less than
    /// a minute, so a short interval does not make every pause look like a dead runner. A runner running a request
    /// keeps writing it, so a long restore is not taken for a dead runner.
    public func isFresh(writtenAt written: Date, now: Date) -> Bool {
        now.timeIntervalSince(written) <= Self.staleAfter(pollInterval: pollInterval)
    }

    /// Seconds after its last write that a heartbeat polling every `pollInterval` seconds is stale.
    public static func staleAfter(pollInterval: Int) -> TimeInterval {
        TimeInterval(max(3 * max(pollInterval, 1), 60))
    }
}

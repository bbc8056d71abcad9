import Foundation
import Synchronization

/// Slows down a client that keeps sending wrong tokens: after `allowed` failures within `window`, its API
/// requests are refused with 429 until the oldest of them leaves the window. Kept in memory (a restarted
/// sidecar forgets), bounded in size so that a flood of addresses cannot grow it without end.
final class TokenBrake: Sendable {
    let allowed: Int
    let window: TimeInterval
    let capacity: Int
    private let failures = Mutex([String: [Date]]())

    init(allowed: Int = 10, window: TimeInterval = 60, capacity: Int = 10_000) {
        self.allowed = allowed
        self.window = window
        self.capacity = capacity
    }

    /// Seconds until `client` may try again, or nil when it may now.
    func retryAfter(_ client: String, now: Date) -> Int? {
        failures.withLock { table -> Int? in
            let recent = (table[client] ?? []).filter { now.timeIntervalSince($0) < window }
            guard recent.count >= allowed, let oldest = recent.min() else { return nil }
            return max(1, Int((window - now.timeIntervalSince(oldest)).rounded(.up)))
        }
    }

    func recordFailure(_ client: String, now: Date) {
        failures.withLock { table in
            var recent = (table[client] ?? []).filter { now.timeIntervalSince($0) < window }
            recent.append(now)
            // Only the newest `allowed` matter: the brake holds while that many are within the window.
            table[client] = Array(recent.suffix(allowed))
            guard table.count > capacity else { return }
            table = table.filter { _, times in times.contains { now.timeIntervalSince($0) < window } }
            while table.count > capacity, let stalest = table.min(by: { ($0.value.last ?? .distantPast) < ($1.value.last ?? .distantPast) }) {
                table[stalest.key] = nil
            }
        }
    }
}

import Foundation

/// The rollbacks that ran, kept in the store (`.contingency/state/rollbacks.json`) for the loop guard and for
/// people. Written by the rollback runner under the store's lease.
public struct RollbackHistory: Codable, Sendable, Equatable {
    public static let key = ".contingency/state/rollbacks.json"
    /// Entries older than this are dropped when the history is written.
    public static let kept: TimeInterval = 30 * 86_400

    public var rollbacks: [Entry]

    public init(rollbacks: [Entry] = []) { self.rollbacks = rollbacks }

    public struct Entry: Codable, Sendable, Equatable {
        /// The request that asked for it, and its incident (the request id of a sidecar's rollback).
        public var request: String
        public var incident: String
        public var target: String
        public var started: Date
        public var ended: Date?
        /// `succeeded`, `failed`, or nil while it runs.
        public var outcome: String?
        public init(request: String, incident: String, target: String, started: Date, ended: Date? = nil, outcome: String? = nil) {
            self.request = request
            self.incident = incident
            self.target = target
            self.started = started
            self.ended = ended
            self.outcome = outcome
        }
    }

    /// The targets already restored for `incident`.
    public func targets(of incident: String) -> Set<String> {
        Set(rollbacks.filter { $0.incident == incident }.map(\.target))
    }

    public mutating func prune(before date: Date) {
        rollbacks.removeAll { $0.started < date }
    }
}

/// The loop guard: at most `max` rollbacks per `window`, and never the same target twice for one incident.
/// Beyond that a person decides.
public struct LoopGuard: Sendable, Equatable {
    public let max: Int
    public let window: TimeInterval

    public init(max: Int, window: TimeInterval) {
        self.max = max
        self.window = window
    }

    /// Why a rollback may not run now, or nil when it may.
    /// `now` is the store's clock, as the entries' times are. An entry dated ahead of it by more than a few
    /// minutes (a forged or mis-clocked one) is not counted: it would block rollbacks until its date.
    public func refusal(at now: Date, history: RollbackHistory) -> String? {
        let recent = history.rollbacks.filter {
            now.timeIntervalSince($0.started) < window && $0.started <= now.addingTimeInterval(IncidentID.clockAllowance)
        }
        guard recent.count >= max else { return nil }
        let last = recent.map(\.started).max() ?? now
        let next = ISO8601DateFormatter().string(from: last.addingTimeInterval(window))
        return "\(recent.count) rollback(s) already ran in the last \(DurationFormat.string(seconds: window)) "
            + "(ROLLBACK_MAX=\(max) per ROLLBACK_WINDOW); the loop guard waits for a person: look at the app, "
            + "restore a backup by name if needed (the next automatic rollback is allowed after \(next))"
    }
}

import BackupCore
import Foundation
import Synchronization

/// What the sidecar's probe loop last did, shared with its HTTP server (`/healthz`). The loop writes it after
/// every step; readers get a consistent copy.
public final class SidecarStatus: Sendable {
    public struct Snapshot: Sendable, Equatable {
        /// Set when the loop starts, cleared when it ends.
        public var loopRunning = false
        /// When the loop last finished a probe and its store writes (or started, before the first one).
        public var lastIteration: Date?
        /// This sidecar's heartbeat as last written (or meant to be): the app's health as seen from here.
        public var heartbeat: HealthHeartbeat?
        /// Why the last store access failed; nil once one works again.
        public var storeError: String?
        /// When a store write last worked.
        public var lastStoreWrite: Date?

        public init() {}
    }

    private let state = Mutex(Snapshot())
    /// The last probes, oldest first, apart from the snapshot: the snapshot is copied often (every `/healthz`), the
    /// history only when the status page asks for it.
    private let history = Mutex(ProbeHistory())

    public init() {}

    public var snapshot: Snapshot { state.withLock { $0 } }

    public func update(_ change: (inout Snapshot) -> Void) { state.withLock { change(&$0) } }

    /// The last `ProbeHistory.limit` probes this sidecar made, oldest first (the status page's probe history).
    /// In memory only: a restarted sidecar starts an empty history.
    public var probes: [ProbeRecord] { history.withLock { $0.records } }

    /// Adds a probe to the history, dropping the oldest past `ProbeHistory.limit`.
    public func record(_ probe: ProbeRecord) { history.withLock { $0.append(probe) } }
}

/// One probe of the application as the history keeps it.
public struct ProbeRecord: Sendable, Equatable {
    public var at: Date
    public var healthy: Bool
    /// The HTTP status, nil when no answer came.
    public var status: Int?
    /// Why it failed (no answer, a status other than 200), for people; nil when healthy.
    public var error: String?
    public var seconds: Double

    public init(at: Date, healthy: Bool, status: Int?, error: String?, seconds: Double) {
        self.at = at
        self.healthy = healthy
        self.status = status
        self.error = error
        self.seconds = seconds
    }
}

/// The last `limit` probes, a ring kept in order: a sidecar probing every 5 minutes keeps about 8 hours of them,
/// one probing every few seconds the last few minutes, in a few KiB either way.
public struct ProbeHistory: Sendable, Equatable {
    public static let limit = 100
    public private(set) var records: [ProbeRecord] = []

    public init() {}

    public mutating func append(_ record: ProbeRecord) {
        records.append(record)
        if records.count > Self.limit { records.removeFirst(records.count - Self.limit) }
    }
}

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

    public init() {}

    public var snapshot: Snapshot { state.withLock { $0 } }

    public func update(_ change: (inout Snapshot) -> Void) { state.withLock { change(&$0) } }
}

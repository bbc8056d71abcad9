import Synchronization

/// Process-wide counts of notification deliveries, by destination, for the metrics (`/metrics`, the jobs'
/// `.prom` files) to expose. A delivery is one message or ping, however many attempts it took.
public enum NotificationCounters {
    /// Where a notification went.
    public enum Destination: String, Sendable, CaseIterable {
        case backupWebhook = "backup_webhook"
        case rollbackWebhook = "rollback_webhook"
        case ping
    }

    /// Counts of one destination.
    public struct Counts: Sendable, Equatable {
        public var delivered = 0
        public var failed = 0
    }

    private static let counts = Mutex<[Destination: Counts]>([:])

    public static func counts(_ destination: Destination) -> Counts { counts.withLock { $0[destination] ?? Counts() } }

    /// Failed deliveries to every destination.
    public static var failures: Int { counts.withLock { $0.values.reduce(0) { $0 + $1.failed } } }

    static func record(_ destination: Destination, delivered: Bool) {
        counts.withLock {
            var value = $0[destination] ?? Counts()
            if delivered { value.delivered += 1 } else { value.failed += 1 }
            $0[destination] = value
        }
    }
}

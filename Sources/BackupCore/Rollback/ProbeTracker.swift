import Foundation

/// Counts one sidecar's probes into health, failures and incidents. Pure: the probe loop feeds it results and
/// acts on what it returns.
///
/// - `threshold` consecutive failures open an incident, once; it stays open until a healthy probe closes it.
/// - Failures in the start period (`startPeriod` seconds after `started`) are not counted, as Docker's
///   `--start-period` does; a healthy probe ends the start period early.
/// - Any healthy probe resets the count: flapping health (fail, fail, ok, …) never opens an incident.
public struct ProbeTracker: Sendable, Equatable {
    public let threshold: Int
    public let startPeriod: TimeInterval
    public let started: Date
    public private(set) var consecutiveFailures = 0
    public private(set) var lastHealthy: Date?
    public private(set) var incidentOpen = false
    private var settled = false

    public init(threshold: Int, startPeriod: TimeInterval, started: Date) {
        self.threshold = max(1, threshold)
        self.startPeriod = startPeriod
        self.started = started
    }

    /// What a probe changed.
    public enum Transition: Sendable, Equatable {
        /// Healthy, as before.
        case healthy
        /// Healthy again after failures (`afterFailures` of them; `closedIncident` when one was open).
        case recovered(afterFailures: Int, closedIncident: Bool)
        /// A failure in the start period: not counted.
        case settling
        /// A counted failure below the threshold (the count so far).
        case failing(Int)
        /// The failure that reached the threshold: open an incident now.
        case incident(Int)
        /// A failure while the incident is already open.
        case stillFailing(Int)
    }

    public mutating func record(healthy: Bool, at time: Date) -> Transition {
        if healthy {
            settled = true
            lastHealthy = time
            let failures = consecutiveFailures
            let closed = incidentOpen
            consecutiveFailures = 0
            incidentOpen = false
            return failures == 0 && !closed ? .healthy : .recovered(afterFailures: failures, closedIncident: closed)
        }
        if !settled && time.timeIntervalSince(started) < startPeriod { return .settling }
        consecutiveFailures += 1
        if incidentOpen { return .stillFailing(consecutiveFailures) }
        if consecutiveFailures >= threshold {
            incidentOpen = true
            return .incident(consecutiveFailures)
        }
        return .failing(consecutiveFailures)
    }
}

/// The id of an incident's rollback request, the same on every sidecar that watches the app: it names the last
/// time any of them saw the app healthy (from the store's heartbeats). However many sidecars open the incident,
/// they all create the same request, and the store's conditional create keeps one. A rollback that did not
/// heal the app leaves that time unchanged, so the same incident is never rolled back again by the same path.
public enum IncidentID {
    /// How far ahead of the store's clock a recorded healthy probe may be and still be believed (hosts' clocks
    /// differ a little; a probe dated further ahead is a wrong clock or a forgery).
    public static let clockAllowance: TimeInterval = 300

    /// `lastHealthy` when it is believable at `now` (the store's clock), else nil.
    public static func believable(_ lastHealthy: Date?, now: Date) -> Date? {
        guard let lastHealthy, lastHealthy <= now.addingTimeInterval(clockAllowance) else { return nil }
        return lastHealthy
    }

    public static func make(lastHealthy: Date?) -> String {
        guard let lastHealthy else { return "rollback-never-healthy" }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return "rollback-" + formatter.string(from: lastHealthy)
    }
}

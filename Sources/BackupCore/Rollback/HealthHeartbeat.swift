import Foundation

/// What one sidecar last saw of the application, kept in the store
/// (`.contingency/state/health/<sidecar>.json`) after every probe. Each sidecar writes its own, so several can
/// watch one app; every backup reads them to record the app's health when it began, the rollback runner to
/// know when the app was last healthy, and operators to see what the sidecars see.
public struct HealthHeartbeat: Codable, Sendable, Equatable {
    public static let folder = ".contingency/state/health"

    /// The sidecar's name (SIDECAR_ID, else its host name).
    public var sidecar: String
    /// The endpoint probed, credentials removed.
    public var url: String
    /// Seconds between probes (HEALTH_CHECK_INTERVAL): a heartbeat older than a few of them is stale.
    public var interval: Int
    public var started: Date
    /// When the last probe ended, and what it found.
    public var lastProbe: Date?
    public var lastResult: ProbeResult?
    public var consecutiveFailures: Int
    /// When this sidecar last saw the app healthy.
    public var lastHealthy: Date?
    /// The rollback request of the incident this sidecar has open, if any.
    public var incident: String?

    public init(
        sidecar: String, url: String, interval: Int, started: Date, lastProbe: Date? = nil, lastResult: ProbeResult? = nil,
        consecutiveFailures: Int = 0, lastHealthy: Date? = nil, incident: String? = nil
    ) {
        self.sidecar = sidecar
        self.url = url
        self.interval = interval
        self.started = started
        self.lastProbe = lastProbe
        self.lastResult = lastResult
        self.consecutiveFailures = consecutiveFailures
        self.lastHealthy = lastHealthy
        self.incident = incident
    }

    public static func key(for sidecar: String) -> String { "\(folder)/\(sidecar).json" }

    /// Whether this heartbeat still says something about now: its last probe is at most three intervals old
    /// (and at least a minute, so a short interval does not make every pause look like a dead sidecar).
    public func isFresh(at now: Date) -> Bool {
        guard let lastProbe else { return false }
        return now.timeIntervalSince(lastProbe) <= Double(max(3 * interval, 60))
    }
}

/// One probe's result as recorded.
public struct ProbeResult: Codable, Sendable, Equatable {
    public var healthy: Bool
    /// The HTTP status, nil when no answer came.
    public var status: Int?
    /// Why it failed, for people.
    public var reason: String?
    public var seconds: Double

    public init(healthy: Bool, status: Int?, reason: String?, seconds: Double) {
        self.healthy = healthy
        self.status = status
        self.reason = reason
        self.seconds = seconds
    }
}

/// The application's health when a backup began, as `metadata.json` records it (`health`).
public struct HealthAtStart: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable {
        /// The freshest probe of every fresh heartbeat was healthy.
        case healthy
        /// At least one fresh heartbeat's last probe failed.
        case unhealthy
        /// No fresh heartbeat: no sidecar is watching, or none has probed lately.
        case unknown
    }

    public var state: State
    /// The newest probe any sidecar made, and the newest healthy one.
    public var lastProbe: Date?
    public var lastHealthy: Date?
    /// The highest count of consecutive failures among the fresh heartbeats.
    public var consecutiveFailures: Int
    /// How many sidecars' heartbeats were fresh.
    public var sidecars: Int

    public init(state: State, lastProbe: Date?, lastHealthy: Date?, consecutiveFailures: Int, sidecars: Int) {
        self.state = state
        self.lastProbe = lastProbe
        self.lastHealthy = lastHealthy
        self.consecutiveFailures = consecutiveFailures
        self.sidecars = sidecars
    }

    /// Sums up the heartbeats found in the store at `now` (this host's clock, as the heartbeats' times are).
    public static func summarize(_ heartbeats: [HealthHeartbeat], at now: Date) -> HealthAtStart {
        let fresh = heartbeats.filter { $0.isFresh(at: now) }
        let lastHealthy = heartbeats.compactMap(\.lastHealthy).max()
        let lastProbe = heartbeats.compactMap(\.lastProbe).max()
        let state: State =
            fresh.isEmpty ? .unknown : fresh.allSatisfy { $0.lastResult?.healthy == true } ? .healthy : .unhealthy
        return HealthAtStart(
            state: state, lastProbe: lastProbe, lastHealthy: lastHealthy,
            consecutiveFailures: fresh.map(\.consecutiveFailures).max() ?? 0, sidecars: fresh.count)
    }
}

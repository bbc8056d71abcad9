import CoreMetrics
import Foundation

/// The probe loop's metrics (METRICS20.md, source A), recorded through swift-metrics' API into the factory the
/// sidecar gives: `contingency_health_probes_total{result}`, `contingency_health_consecutive_failures` and
/// `contingency_health_last_probe_timestamp_seconds`. The factory is passed in, never `MetricsSystem`'s global
/// one: each sidecar (several in one test process) keeps its own registry.
public struct ProbeMetrics: Sendable {
    public static let probes = "contingency_health_probes_total"
    public static let consecutiveFailures = "contingency_health_consecutive_failures"
    public static let lastProbe = "contingency_health_last_probe_timestamp_seconds"

    private let healthy: Counter
    private let unhealthy: Counter
    private let failures: Meter
    private let last: Meter

    /// Registers every series at once (the counters at 0), so that a scrape before the first probe already
    /// shows them and `increase()` sees the first failure.
    public init(factory: any MetricsFactory) {
        healthy = Counter(label: Self.probes, dimensions: [("result", "healthy")], factory: factory)
        unhealthy = Counter(label: Self.probes, dimensions: [("result", "unhealthy")], factory: factory)
        failures = Meter(label: Self.consecutiveFailures, factory: factory)
        last = Meter(label: Self.lastProbe, factory: factory)
        failures.set(0)
    }

    /// One probe of HEALTH_CHECK_URL: its result, the failures in a row it leaves (those the loop counts: not
    /// the start period's), and when it ended.
    public func record(healthy isHealthy: Bool, consecutiveFailures: Int, at time: Date) {
        (isHealthy ? healthy : unhealthy).increment()
        failures.set(consecutiveFailures)
        last.set(time.timeIntervalSince1970)
    }
}

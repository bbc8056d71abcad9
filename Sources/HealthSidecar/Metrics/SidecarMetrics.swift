import BackupCore
import BackupKit
import CoreMetrics
import Logging
import Prometheus
import Synchronization

/// The sidecar's own metrics (METRICS20.md, source A): one swift-prometheus registry per sidecar, filled through
/// swift-metrics' API with `factory` (never `MetricsSystem.bootstrap`: a process may hold several sidecars, as
/// the tests do, and each scrape must show its own). The probe loop, the API middleware and any store decorator
/// record into it; `families()` reads it back for `GET /metrics`.
public final class SidecarMetrics: Sendable {
    public static let apiRequests = "contingency_api_requests_total"
    public static let webhookFailures = "contingency_webhook_failures_total"

    public let registry: PrometheusCollectorRegistry
    /// What BackupKit's use cases record with (the probe loop, a store decorator).
    public let factory: any MetricsFactory
    public let probes: ProbeMetrics
    private let logger: Logger
    private let webhookCounters: [NotificationCounters.Destination: CoreMetrics.Counter]
    /// The failure counts already added to `webhookCounters`.
    private let webhookSeen = Mutex<[NotificationCounters.Destination: Int]>([:])

    public init(logger: Logger) {
        self.logger = logger
        let registry = PrometheusCollectorRegistry()
        let factory = PrometheusMetricsFactory(registry: registry)
        self.registry = registry
        self.factory = factory
        probes = ProbeMetrics(factory: factory)
        var counters: [NotificationCounters.Destination: CoreMetrics.Counter] = [:]
        for destination in NotificationCounters.Destination.allCases {
            counters[destination] = CoreMetrics.Counter(
                label: Self.webhookFailures, dimensions: [("source", "sidecar"), ("destination", destination.rawValue)],
                factory: factory)
        }
        webhookCounters = counters
    }

    /// One admin API request: `route` is the matched route's pattern (or "unmatched"), never the path asked for,
    /// so that no client can add series.
    func countRequest(route: String, status: Int) {
        CoreMetrics.Counter(
            label: Self.apiRequests, dimensions: [("route", route), ("status", String(status))], factory: factory
        ).increment()
    }

    /// The registry's families, each with its HELP.
    public func families() -> [MetricFamily] {
        syncWebhookFailures()
        // The registry renders the text format only; BackupCore's parser reads it back to merge it with the
        // other sources. Its output always parses: an error here is a bug in one of the two.
        var families: [MetricFamily]
        do {
            families = try PrometheusText.parse(registry.emitToString())
        } catch {
            logger.error("GET /metrics: the sidecar's own registry is left out: its text does not parse (\(error))")
            return []
        }
        // swift-metrics has no place for a description (the factory registers each family with an empty one),
        // and Prometheus' checks want one per family: BackupCore's catalog gives them.
        families = MetricCatalog.documented(families)
        // In a stable order (the registry keeps its own in dictionaries): scrapes read and compare the same.
        for index in families.indices {
            if families[index].help.isEmpty { families[index].help = "Contingency's \(families[index].name)." }
            families[index].samples.sort { $0.labelText < $1.labelText }
        }
        return families.sorted { $0.name < $1.name }
    }

    /// Brings the webhook counters up to `NotificationCounters`, the process's own counts of failed deliveries
    /// (the API's backups and the incidents' webhooks are delivered by this process). They only grow, so the
    /// counters follow by adding what is new.
    private func syncWebhookFailures() {
        webhookSeen.withLock { seen in
            for (destination, counter) in webhookCounters {
                let failed = NotificationCounters.counts(destination).failed
                let added = failed - (seen[destination] ?? 0)
                guard added > 0 else { continue }
                counter.increment(by: added)
                seen[destination] = failed
            }
        }
    }
}

extension MetricSample {
    /// Its labels as written, to order a family's series.
    fileprivate var labelText: String { labels.map { "\($0.name)=\($0.value)" }.joined(separator: ",") }
}

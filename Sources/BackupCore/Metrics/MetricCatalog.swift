/// The HELP text of every metric family Contingency exposes, by name: the sidecar fills in the help of the
/// families its registry renders without one (swift-metrics, through which they are recorded, carries no help
/// text), so that every family of a scrape is documented (`promtool check metrics` asks for it).
public enum MetricCatalog {
    public static let help: [String: String] = [
        "contingency_health_probes_total": "Probes of HEALTH_CHECK_URL by this sidecar, by result.",
        "contingency_health_consecutive_failures": "Failed probes in a row now, as the loop counts them (0 when healthy).",
        "contingency_health_last_probe_timestamp_seconds": "Time of this sidecar's last probe of HEALTH_CHECK_URL (Unix seconds).",
        "contingency_api_requests_total": "Admin API requests, by route pattern and HTTP status.",
        "contingency_webhook_failures_total": "Notification deliveries that failed after every attempt, by source and destination.",
        "contingency_store_requests_total": "Operations on a store, by store, operation and result (ok or error).",
        "contingency_store_request_duration_seconds": "Duration of operations on a store.",
        "contingency_store_retries_total": "Transient faults of a store that were retried.",
        "contingency_store_bytes_total": "Bytes read from and written to a store.",
    ]

    /// `families` with the catalog's help given to those that have none.
    public static func documented(_ families: [MetricFamily]) -> [MetricFamily] {
        families.map { family in
            guard family.help.isEmpty, let help = help[family.name] else { return family }
            var documented = family
            documented.help = help
            return documented
        }
    }
}

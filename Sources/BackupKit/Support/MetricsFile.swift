import BackupCore
import BackupStorage
import Foundation

/// A job's last-run metrics in Prometheus' text format, published in the store
/// (`.contingency/metrics/<job>.prom`) for the sidecar or a textfile collector to expose.
///
/// Written by hand rather than through swift-prometheus: these are a few gauges written once per run to a
/// file, not an in-process registry scraped over HTTP.
public struct MetricsFile: Sendable {
    /// One gauge.
    public struct Gauge: Sendable {
        public let name: String
        public let help: String
        public let value: Double
        public init(_ name: String, _ help: String, _ value: Double) {
            self.name = name
            self.help = help
            self.value = value
        }
    }

    public let job: String
    public let gauges: [Gauge]

    public init(job: String, gauges: [Gauge]) {
        self.job = job
        self.gauges = gauges
    }

    public static func key(job: String) -> String { ".contingency/metrics/\(job).prom" }

    public var text: String {
        gauges.map { gauge in
            let value = gauge.value.rounded() == gauge.value && abs(gauge.value) < 1e15 ? String(Int64(gauge.value)) : String(gauge.value)
            return "# HELP \(gauge.name) \(gauge.help)\n# TYPE \(gauge.name) gauge\n\(gauge.name) \(value)\n"
        }.joined()
    }

    public func publish(to storage: any Storage) throws {
        try storage.put(key: Self.key(job: job), data: Array(text.utf8))
    }
}

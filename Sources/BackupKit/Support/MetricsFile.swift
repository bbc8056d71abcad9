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

extension MetricsFile {
    /// The folder the jobs publish to.
    public static let folder = ".contingency/metrics"
    /// A published file larger than this is not served (a job writes a few hundred bytes).
    public static let sizeLimit: Int64 = 1 << 20

    /// Every job's published metrics in `storage`, one list of families per file in the order of their names,
    /// for the sidecar's `GET /metrics` to merge (`PrometheusText.merge`). Files that are too large, not UTF-8
    /// or not in the text format are left out, each named in `skipped` with the reason: one bad file never
    /// spoils the scrape.
    public static func collected(
        from storage: any Storage, skipped: (String) -> Void = { _ in }
    ) throws -> [[MetricFamily]] {
        var files: [[MetricFamily]] = []
        for object in try storage.list(folder: folder).sorted(by: { $0.name < $1.name })
        where object.name.hasSuffix(".prom") {
            guard object.size <= sizeLimit else {
                skipped("\(object.key) is \(object.size) bytes, over \(sizeLimit)")
                continue
            }
            guard let read = try storage.read(key: object.key) else { continue }
            guard let content = String(validating: read.data, as: UTF8.self) else {
                skipped("\(object.key) is not UTF-8")
                continue
            }
            do {
                files.append(try PrometheusText.parse(content))
            } catch {
                skipped("\(object.key) is not in Prometheus' text format: \(error)")
            }
        }
        return files
    }
}

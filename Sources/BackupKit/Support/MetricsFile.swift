import BackupCore
import BackupStorage
import Foundation
import Logging

/// A job's run metrics in Prometheus' text format, published in the store (`.contingency/metrics/<job>.prom`) for
/// the sidecar's `GET /metrics` (or a textfile collector) to expose, and pushed to a Pushgateway by `JobMetrics`.
///
/// Gauges hold the run's values. Counters hold the run's increments: `publish` adds them to the totals in the
/// job's previous file, so that the runs of a CronJob, each a new process, add up. The families are BackupCore's
/// `MetricFamily`, written by `PrometheusText.render` and read back by `PrometheusText.parse`: one model for what
/// the jobs write and what the sidecar serves, rather than swift-prometheus' registry, which renders a process's
/// own counters but cannot continue a count another process wrote.
public struct MetricsFile: Sendable {
    public let job: String
    /// Gauges with this run's values, counters with this run's increments.
    public let families: [MetricFamily]

    public init(job: String, families: [MetricFamily]) {
        self.job = job
        self.families = families
    }

    public static func key(job: String) -> String { "\(folder)/\(job).prom" }

    /// The families to write after `previous` (the job's last file): each counter's series is the previous total
    /// plus this run's increment, a series or a whole counter family this run does not mention is carried over
    /// as it was (another runner of the same job may count what this one does not), gauges are this run's.
    /// A previous value that is not a finite, non-negative number starts from zero.
    public func continuing(_ previous: [MetricFamily]) -> [MetricFamily] {
        func total(_ family: MetricFamily?) -> [String: MetricSample] {
            guard let family, family.kind == .counter else { return [:] }
            var totals: [String: MetricSample] = [:]
            for sample in family.samples where sample.name == family.name && sample.value.isFinite && sample.value >= 0
            {
                totals[sample.seriesID] = sample
            }
            return totals
        }
        var result: [MetricFamily] = []
        for family in families {
            guard family.kind == .counter else {
                result.append(family)
                continue
            }
            var before = total(previous.first { $0.name == family.name })
            var continued = family
            continued.samples = family.samples.map { sample in
                var sample = sample
                sample.value += before.removeValue(forKey: sample.seriesID)?.value ?? 0
                return sample
            }
            // Series only the previous file had, in the order it wrote them.
            continued.samples += (previous.first { $0.name == family.name }?.samples ?? []).compactMap {
                before.removeValue(forKey: $0.seriesID)
            }
            result.append(continued)
        }
        let named = Set(families.map(\.name))
        for family in previous where family.kind == .counter && !named.contains(family.name) {
            var carried = family
            var totals = total(family)
            carried.samples = family.samples.compactMap { totals.removeValue(forKey: $0.seriesID) }
            if !carried.samples.isEmpty { result.append(carried) }
        }
        return result
    }

    /// Writes the file, its counters continued from the job's previous file in `storage`, and returns the families
    /// written. The write is a compare-and-swap on the previous file's version, retried, so that two runs ending
    /// together both count. A previous file that cannot be parsed is replaced, its counts starting from zero, with
    /// a warning naming it. Throws when the store cannot be read or written.
    ///
    /// `keepingOthers`: the previous file's families this one does not name (its gauges too) are kept as they were:
    /// for an addition to the last run's file rather than a new run's.
    @discardableResult
    public func publish(to storage: any Storage, keepingOthers: Bool = false, logger: Logger) throws -> [MetricFamily] {
        let key = Self.key(job: job)
        for _ in 0..<5 {
            let current = try storage.read(key: key)
            var previous: [MetricFamily] = []
            if current == nil {
                logger.warning(
                    "No previous metrics file \(key) in \(storage) (the job's first run there, or it was removed): its counters start from zero"
                )
            }
            if let current {
                do {
                    guard let text = String(validating: current.data, as: UTF8.self) else {
                        throw ContingencyError.failed("not UTF-8")
                    }
                    previous = try PrometheusText.parse(text)
                } catch {
                    logger.warning(
                        "The previous metrics file \(key) in \(storage) cannot be read (\(error)): its counters start again from zero"
                    )
                }
            }
            var families = continuing(previous)
            if keepingOthers {
                let named = Set(families.map(\.name))
                families += previous.filter { !named.contains($0.name) && !$0.samples.isEmpty }
            }
            let data = Array(PrometheusText.render(families).utf8)
            let written =
                try current.map { try storage.replace(key: key, data: data, ifMatch: $0.etag) }
                ?? storage.create(key: key, data: data)
            if written != nil { return families }
            // Refused: another run published first, or this very write was applied and its answer lost (the
            // store repeated it, and the repeat was refused). In the second case the file already holds this
            // run's increments, which must not be added again (as `RequestBoard` and `RollbackHistoryStore` do).
            if try storage.read(key: key)?.data == data { return families }
        }
        throw ContingencyError.failed(
            "\(key) in \(storage) kept changing while this run's metrics were added to it",
            hint: "another run of the \(job) job published at the same moment; the next run publishes again")
    }
}

extension MetricSample {
    /// What identifies the series within its family: its name and labels, whatever their order.
    fileprivate var seriesID: String {
        name + "{" + labels.sorted { $0.name < $1.name }.map { "\($0.name)=\"\($0.value)\"" }.joined(separator: ",")
            + "}"
    }
}

extension MetricFamily {
    /// A gauge with one unlabelled sample.
    public static func gauge(_ name: String, _ help: String, _ value: Double) -> MetricFamily {
        MetricFamily(name: name, help: help, kind: .gauge, samples: [MetricSample(name: name, value: value)])
    }

    /// A counter whose samples are this run's increments, one per label set.
    public static func counter(_ name: String, _ help: String, _ increments: [([MetricSample.Label], Double)])
        -> MetricFamily
    {
        MetricFamily(
            name: name, help: help, kind: .counter,
            samples: increments.map { MetricSample(name: name, labels: $0.0, value: $0.1) })
    }
}

extension MetricsFile {
    /// The folder the jobs publish to.
    public static let folder = ".contingency/metrics"
    /// A published file larger than this is not served (a job writes a few hundred bytes).
    public static let sizeLimit: Int64 = 1 << 20
    /// At most this many files are served (in the order of their names).
    public static let fileLimit = 32

    /// Every job's published metrics in `storage`, one list of families per file in the order of their names,
    /// for the sidecar's `GET /metrics` to merge (`PrometheusText.merge`). Files that are too large, not UTF-8
    /// or not in the text format are left out, each named in `skipped` with the reason: one bad file never
    /// spoils the scrape.
    public static func collected(
        from storage: any Storage, skipped: (String) -> Void = { _ in }
    ) throws -> [[MetricFamily]] {
        var files: [[MetricFamily]] = []
        let listed = try storage.list(folder: folder).filter { $0.name.hasSuffix(".prom") }.sorted { $0.name < $1.name }
        // The jobs write four files; a store others write to may hold thousands, each read on every scrape.
        for object in listed.dropFirst(fileLimit) {
            skipped("\(object.key): only the first \(fileLimit) files of \(folder) are served")
        }
        for object in listed.prefix(fileLimit) {
            guard object.size <= sizeLimit else {
                skipped("\(object.key) is \(object.size) bytes, over \(sizeLimit)")
                continue
            }
            let read: StoredObject
            do {
                guard let object = try storage.read(key: object.key) else { continue }
                read = object
            } catch {
                skipped("\(object.key) cannot be read: \(error)")
                continue
            }
            guard read.data.count <= sizeLimit else {
                skipped("\(object.key) is \(read.data.count) bytes, over \(sizeLimit)")
                continue
            }
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

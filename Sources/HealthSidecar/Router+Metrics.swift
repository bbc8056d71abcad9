import BackupCore
import BackupKit
import Foundation
import HTTPTypes
import Hummingbird

extension Router<SidecarRequestContext> {
    /// `GET /metrics` (no token: Prometheus scrapes it), in Prometheus' text format (METRICS20.md): the sidecar's
    /// own registry (probes, API requests, webhook failures), what the stores say of the backups, and the files
    /// the jobs published in the store (`.contingency/metrics/<job>.prom`), merged in that order so that each
    /// family appears once and the earlier source's series wins (the store's own values over a job's file).
    func addMetricsRoute(_ sidecar: SidecarContext) {
        get("metrics") { _, _ in
            let text = PrometheusText.render(await MetricsScrape.families(sidecar))
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(string: text)))
        }
    }
}

/// One scrape of the sidecar's three sources.
enum MetricsScrape {
    /// Every family of a scrape. Never fails: a source that cannot be read is left out with a warning, and
    /// the store is waited for at most `deadline` (see `StoreMetrics`).
    static func families(
        _ sidecar: SidecarContext, deadline: Duration = StoreMetrics.defaultDeadline
    ) async -> [MetricFamily] {
        let own = sidecar.metrics.families()
        // The two store readings run side by side, each within the deadline.
        async let stores = sidecar.storeMetrics.families(deadline: deadline)
        async let files = published(sidecar, deadline: deadline)
        // A file in the store gives only families of its own: never one of the sidecar's registry or of the
        // store's reading, even when those are absent (a forged file would otherwise stand in for them and hold
        // an alert off).
        let reserved = StoreMetrics.names.union(MetricCatalog.help.keys).union(own.map(\.name))
        let jobs = await files.map { $0.filter { !reserved.contains($0.name) } }
        return PrometheusText.merge([own, await stores] + jobs)
    }

    /// The jobs' published files, each parsed on its own (a file that does not parse is skipped and named),
    /// read once at a time for every scrape (`SidecarContext.publishedMetrics`).
    private static func published(_ sidecar: SidecarContext, deadline: Duration) async -> [[MetricFamily]] {
        let logger = sidecar.logger
        switch await sidecar.publishedMetrics.value(within: deadline) {
        case .success(let files)?:
            return files
        case .failure(let error)?:
            logger.warning("GET /metrics: the jobs' metrics files (\(MetricsFile.folder)) are left out: \(error)")
            return []
        case nil:
            logger.warning(
                "GET /metrics: the jobs' metrics files (\(MetricsFile.folder)) are left out: \(sidecar.storage) did not answer within \(deadline)"
            )
            return []
        }
    }
}

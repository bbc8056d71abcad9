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
        return PrometheusText.merge([own, await stores] + (await files))
    }

    /// The jobs' published files, each parsed on its own (a file that does not parse is skipped and named).
    private static func published(_ sidecar: SidecarContext, deadline: Duration) async -> [[MetricFamily]] {
        let storage = sidecar.storage
        let logger = sidecar.logger
        let read = await ScrapeDeadline.value(within: deadline) {
            await Blocking.run { () -> Result<[[MetricFamily]], any Error> in
                Result {
                    try MetricsFile.collected(from: storage) {
                        logger.warning("GET /metrics: a published metrics file is not served: \($0)")
                    }
                }
            }
        }
        switch read {
        case .success(let files)?:
            return files
        case .failure(let error)?:
            logger.warning("GET /metrics: the jobs' metrics files (\(MetricsFile.folder)) are left out: \(error)")
            return []
        case nil:
            logger.warning(
                "GET /metrics: the jobs' metrics files (\(MetricsFile.folder)) are left out: \(storage) did not answer within \(deadline)"
            )
            return []
        }
    }
}

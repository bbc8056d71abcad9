import BackupCore
import BackupKit
import Foundation
import HTTPTypes
import Hummingbird

extension Router<SidecarRequestContext> {
    /// `GET /metrics` (no token: Prometheus scrapes it): the metrics every job published in the store
    /// (`.contingency/metrics/<job>.prom`: drills, cleanups), in Prometheus' text format.
    func addMetricsRoute(_ sidecar: SidecarContext) {
        get("metrics") { _, _ in
            let storage = sidecar.storage
            let logger = sidecar.logger
            do {
                let text = try await Blocking.run {
                    try MetricsFile.collected(from: storage) { logger.warning("Not served on /metrics: \($0)") }
                }
                return Response(
                    status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                    body: .init(byteBuffer: ByteBuffer(string: text)))
            } catch {
                logger.error("GET /metrics: the store's metrics cannot be read: \(error)")
                return Response(
                    status: .serviceUnavailable, headers: [.contentType: "text/plain; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(string: "# the store's metrics cannot be read; see the sidecar's log\n")))
            }
        }
    }
}

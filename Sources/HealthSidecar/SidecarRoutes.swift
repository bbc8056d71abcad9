import BackupCore
import BackupKit
import Foundation
import Hummingbird

/// The sidecar's HTTP routes: `GET /healthz` (its own health, no token), the admin API under `/api`
/// (`APIGate` first: token, brake, JSON errors), and the status page (`GET /`, no token, no data), each group in
/// its own `Router+<Group>.swift` extension.
extension Router<SidecarRequestContext> {
    func addSidecarRoutes(_ context: SidecarContext) {
        // Before any route: a router's middleware applies to the routes added after it. The API's requests are
        // counted before the gate, so that refused ones are counted too.
        add(middleware: APIMetricsMiddleware(metrics: context.metrics))
        add(middleware: APIGate(sidecar: context))
        get("healthz") { _, _ in await SidecarHealth.response(context) }
        addMetricsRoute(context)
        addBackupRoutes(context)
        addStatusRoute(context)
        addStatusPageRoutes()
    }
}

/// The sidecar's own health (its liveness and readiness probe), not the application's: 200 while its probe loop
/// runs and its last store access worked, 503 otherwise. The application's state and the newest backup's age
/// are reported in the body but never fail it: an unhealthy app is the sidecar doing its job.
enum SidecarHealth {
    /// `/healthz`'s body.
    struct Body: Codable, Sendable, Equatable {
        var status: String
        var timestamp: Date
        /// Why the sidecar is not ok.
        var reason: String?
        var sidecar: String
        var app: AppState?
        var backups: Backups

        struct AppState: Codable, Sendable, Equatable {
            var url: String
            var lastProbe: Date?
            var lastResult: ProbeResult?
            var consecutiveFailures: Int
            var failureThreshold: Int
            var lastHealthy: Date?
            /// The rollback request of the open incident.
            var incident: String?
        }

        struct Backups: Codable, Sendable, Equatable {
            var newest: Newest?
            var staleAfterSeconds: Int
            /// Why the store could not be listed.
            var error: String?
        }

        struct Newest: Codable, Sendable, Equatable {
            var name: String
            var created: Date
            var ageSeconds: Int
            var stale: Bool
        }
    }

    static func body(_ context: SidecarContext, now: Date = Date()) async -> Body {
        let snapshot = context.status.snapshot
        let configuration = context.configuration
        var reason: String?
        // A round takes at most the probe's timeout plus a few store calls; two missed rounds mean a stuck loop.
        let allowed = TimeInterval(2 * configuration.intervalSeconds + configuration.health.timeoutSeconds + 30)
        if !snapshot.loopRunning {
            reason = "the probe loop is not running"
        } else if let error = snapshot.storeError {
            reason = error
        } else if let last = snapshot.lastIteration, now.timeIntervalSince(last) > allowed {
            reason = "the probe loop has not finished a round for \(Int(now.timeIntervalSince(last)))s"
        }
        let app = snapshot.heartbeat.map {
            Body.AppState(
                url: $0.url, lastProbe: $0.lastProbe, lastResult: $0.lastResult,
                consecutiveFailures: $0.consecutiveFailures,
                failureThreshold: configuration.failureThreshold, lastHealthy: $0.lastHealthy, incident: $0.incident)
        }
        let report = await context.freshness.report(now: now)
        let newest = report.newest.map {
            Body.Newest(
                name: $0.fileName, created: $0.date, ageSeconds: max(0, Int(now.timeIntervalSince($0.date))),
                stale: context.freshness.isStale(report, now: now))
        }
        return Body(
            status: reason == nil ? "ok" : "error", timestamp: now, reason: reason, sidecar: configuration.sidecarID,
            app: app,
            backups: Body.Backups(
                newest: newest, staleAfterSeconds: configuration.backupStaleAfterSeconds, error: report.error))
    }

    static func response(_ context: SidecarContext) async -> Response {
        let body = await body(context)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let data = (try? encoder.encode(body)) ?? Data(#"{"status":"error","reason":"cannot encode the status"}"#.utf8)
        return Response(
            status: body.status == "ok" ? .ok : .serviceUnavailable,
            headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

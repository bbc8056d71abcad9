import BackupCore
import BackupInterop
import BackupKit
import BackupStorage
import Foundation
import Hummingbird

/// `POST /api/backups/rollback/auto`: the runbook's "check health; roll back if unhealthy", through the same
/// path as the probe loop's incidents. It probes now; when the app answers, nothing happens. When it does not,
/// it joins the open incident's rollback request or opens it (the same id every sidecar derives), so the
/// runner's loop guard and lease decide as for any incident, and waits up to API_ROLLBACK_WAIT for its end.
extension BackupsAPI {
    struct RollbackBody: Encodable {
        let success: Bool
        let rolledBack: Bool
        var message: String?
        var error: String?
        var request: String?
        var status: String?
        var target: String?
        var health: Health?
    }

    struct Health: Encodable {
        let url: String
        let healthy: Bool
        let httpStatus: Int?
        let reason: String?
    }

    func rollbackAuto(_ request: Request, _ context: SidecarRequestContext) async throws -> Response {
        let probe = HealthProbe(configuration: configuration.health)
        let outcome = await Blocking.run { probe.probe() }
        let health = Health(
            url: CurlEasy.redacted(configuration.health.url), healthy: outcome.healthy, httpStatus: outcome.status,
            reason: outcome.reason)
        guard !outcome.healthy else {
            sidecar.logger.info(
                "[API] POST /api/backups/rollback/auto from \(context.client): the application is healthy, no rollback")
            return APIResponse.json(
                RollbackBody(
                    success: true, rolledBack: false, message: "Application is healthy, no rollback needed",
                    health: health))
        }
        let reason = outcome.reason ?? "no answer"
        // A request nobody runs would only wait: say so now, and open nothing.
        let storage = sidecar.storage
        do {
            try await Blocking.run { try RestoreRequests.requireRunner(storage) }
        } catch let error as RestoreRequestError {
            sidecar.logger.error(
                "[API] POST /api/backups/rollback/auto from \(context.client): the application does not answer (\(reason)), but \(error)")
            throw APIError.from(error)
        }
        let failures = max(1, sidecar.status.snapshot.heartbeat?.consecutiveFailures ?? 0)
        let (stored, created) = try await sidecar.probeLoop.requestRollback(
            failures: failures, reason: reason, requestedBy: "api \(context.client)")
        sidecar.logger.warning(
            "[API] POST /api/backups/rollback/auto from \(context.client): the application does not answer (\(reason)); \(created ? "opened" : "joined") rollback request \(stored.id)"
        )
        let final = try await waitForEnd(of: stored.id)
        guard let final, final.status.isFinished else {
            return APIResponse.json(
                RollbackBody(
                    success: true, rolledBack: false,
                    message:
                        "Rollback en cours: request \(stored.id) has not ended after \(DurationFormat.string(seconds: Double(configuration.api.rollbackWaitSeconds))); follow it at /api/backups/requests/\(stored.id)",
                    request: stored.id, status: (final ?? stored).status.rawValue, health: health),
                status: .accepted, headers: [.location: "/api/backups/requests/\(stored.id)"])
        }
        switch final.status {
        case .succeeded:
            return APIResponse.json(
                RollbackBody(
                    success: true, rolledBack: true, message: "Rollback effectué avec succès", request: final.id,
                    status: final.status.rawValue, target: final.target, health: health))
        case .skipped:
            return APIResponse.json(
                RollbackBody(
                    success: true, rolledBack: false,
                    message: "No rollback: \(final.reason ?? "the application answered again when the runner took the request")",
                    request: final.id, status: final.status.rawValue, health: health))
        default:
            return APIResponse.json(
                RollbackBody(
                    success: false, rolledBack: false, error: final.reason ?? "the rollback \(final.status.rawValue)",
                    request: final.id, status: final.status.rawValue, target: final.target, health: health),
                status: .badGateway)
        }
    }

    /// The request once it has ended, or as it last was when API_ROLLBACK_WAIT is over (nil if it vanished).
    /// Polls the store: the runner is another process, and the store is where they meet.
    func waitForEnd(of id: String) async throws -> StoreRequest? {
        let board = RequestBoard(storage: sidecar.storage)
        let deadline = Date().addingTimeInterval(TimeInterval(configuration.api.rollbackWaitSeconds))
        while true {
            let current = try await Blocking.run { try board.get(id)?.request }
            guard let current, !current.status.isFinished, Date() < deadline else { return current }
            try await Task.sleep(for: .seconds(1))
        }
    }
}

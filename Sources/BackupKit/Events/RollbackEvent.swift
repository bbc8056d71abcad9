import BackupCore
import Foundation
import Logging

/// What happened to the application's health and to rollbacks: one stream that notifications (webhooks),
/// metrics and the log subscribe to. The sidecar publishes the health events, the rollback runner the rest.
public enum RollbackEvent: Sendable, Equatable {
    /// `failures` consecutive failed probes: the incident `request` is open.
    case incidentOpened(request: String, sidecar: String, failures: Int, lastResult: String)
    /// The app answered again after `failures` failures.
    case recovered(sidecar: String, failures: Int)
    /// A runner took the rollback `request` on, to restore `target`.
    case rollbackStarted(request: String, target: String, plan: [String])
    /// One step began or ended (`status`: running, succeeded, failed, skipped).
    case step(request: String, name: String, status: String, detail: String?)
    /// The rollback brought the app back to health in `seconds`.
    case rollbackSucceeded(request: String, target: String, seconds: Double)
    /// It did not (`reason`); the app was started again in any case.
    case rollbackFailed(request: String, target: String?, reason: String)
    /// The loop guard or an expiry kept a rollback from running: a person must look.
    case rollbackRefused(request: String, reason: String)
    /// Not run because it was no longer needed (the app answered again).
    case rollbackSkipped(request: String, reason: String)
    /// The broken state was archived as `backup`.
    case safetyBackup(request: String, backup: String)
}

/// Receives every event; must not block (a webhook subscriber queues and sends on its own task).
public protocol RollbackEventSubscriber: Sendable {
    func receive(_ event: RollbackEvent) async
}

/// The stream: publishes each event to every subscriber, in order.
public struct RollbackEvents: Sendable {
    public let subscribers: [any RollbackEventSubscriber]

    public init(_ subscribers: [any RollbackEventSubscriber]) { self.subscribers = subscribers }

    /// The log subscriber alone.
    public static func logging(to logger: Logger) -> RollbackEvents { RollbackEvents([LogEventSubscriber(logger: logger)]) }

    public func publish(_ event: RollbackEvent) async {
        for subscriber in subscribers { await subscriber.receive(event) }
    }
}

/// Writes each event as the runbook's log lines (`[Rollback] …`).
public struct LogEventSubscriber: RollbackEventSubscriber {
    public let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    public func receive(_ event: RollbackEvent) async {
        switch event {
        case .incidentOpened(let request, let sidecar, let failures, let lastResult):
            logger.error("[Rollback] Incident: \(failures) consecutive failed health checks seen by \(sidecar) (last: \(lastResult)); rollback requested (\(request))")
        case .recovered(let sidecar, let failures):
            logger.info("[Backup] Application is healthy again after \(failures) failed check(s) (\(sidecar))")
        case .rollbackStarted(let request, let target, let plan):
            logger.warning("[Rollback] Starting rollback \(request) to \(target): \(plan.joined(separator: "; "))")
        case .step(let request, let name, let status, let detail):
            let line = "[Rollback] \(name): \(status)\(detail.map { " (\($0))" } ?? "") [\(request)]"
            if status == "failed" { logger.error("\(line)") } else { logger.info("\(line)") }
        case .rollbackSucceeded(let request, let target, let seconds):
            logger.info("[Rollback] Rollback \(request) succeeded: the application is healthy on \(target) after \(DurationFormat.string(seconds: seconds))")
        case .rollbackFailed(let request, let target, let reason):
            logger.error("[Rollback] Rollback \(request)\(target.map { " to \($0)" } ?? "") failed: \(reason)")
        case .rollbackRefused(let request, let reason):
            logger.error("[Rollback] Rollback \(request) not run: \(reason)")
        case .rollbackSkipped(let request, let reason):
            logger.info("[Rollback] Rollback \(request) not run: \(reason)")
        case .safetyBackup(let request, let backup):
            logger.info("[Rollback] The broken state before rollback \(request) is kept as the safety backup \(backup)")
        }
    }
}

import BackupCore
import Foundation
import Logging

/// Posts each backup, cleanup, incident and rollback outcome to a Slack-compatible webhook as `{"text": "…"}`:
/// one sentence (`NotificationText`), with every configured secret blanked out. Queued on its own task in
/// order; a delivery failure is logged and counted by `NotificationDelivery`, never reported to the publisher.
/// Rollback steps and safety backups are not sent (the outcome says what matters); recoveries only after an
/// incident's worth of failures.
public struct WebhookSubscriber: BackupEventSubscriber, RollbackEventSubscriber {
    let delivery: NotificationDelivery
    let chain: DeliveryChain
    let host: String
    let secrets: [String]
    /// The health URL as it may be shown (`CurlEasy.redacted`), for incident messages; nil where not known.
    let watched: String?
    /// Recoveries after at least this many failures are sent; nil: none.
    let recoveredAfter: Int?

    /// The message for a rollback event, or nil when it is not sent.
    func text(_ event: RollbackEvent) -> String? {
        switch event {
        case .incidentOpened(let request, let sidecar, let failures, let lastResult):
            NotificationText.incidentOpened(
                target: watched, failures: failures, lastResult: lastResult, sidecar: sidecar, request: request)
        case .recovered(let sidecar, let failures):
            recoveredAfter.map { failures >= $0 } == true
                ? NotificationText.recovered(target: watched, failures: failures, sidecar: sidecar) : nil
        case .rollbackStarted(let request, let target, _):
            NotificationText.rollbackStarted(request: request, target: target, host: host)
        case .rollbackSucceeded(let request, let target, let seconds):
            NotificationText.rollbackSucceeded(request: request, target: target, seconds: seconds, host: host)
        case .rollbackFailed(let request, let target, let reason):
            NotificationText.rollbackFailed(request: request, target: target, reason: reason, host: host)
        case .rollbackRefused(let request, let reason):
            NotificationText.rollbackRefused(request: request, reason: reason, host: host)
        case .rollbackSkipped(let request, let reason):
            NotificationText.rollbackSkipped(request: request, reason: reason, host: host)
        case .step, .safetyBackup:
            nil
        }
    }

    public func receive(_ event: BackupEvent) async { post(NotificationText.text(event, host: host)) }

    public func receive(_ event: RollbackEvent) async {
        if let text = text(event) { post(text) }
    }

    /// The JSON body Slack, Mattermost, Rocket.Chat, Discord's /slack endpoint and Teams' workflows accept.
    static func payload(_ text: String) -> [UInt8] {
        let data =
            (try? JSONSerialization.data(withJSONObject: ["text": text], options: [.withoutEscapingSlashes])) ?? Data()
        return Array(data)
    }

    private func post(_ text: String) {
        let text = NotificationText.redacting(text, secrets: secrets)
        let delivery = delivery
        let summary = text.count > 120 ? text.prefix(119) + "…" : text
        chain.enqueue {
            await delivery.send(Self.payload(text), contentType: "application/json", what: "message \"\(summary)\"")
        }
    }
}

import BackupCore
import Foundation

/// Receives every backup and cleanup event; like `RollbackEventSubscriber`, must not block (the webhook
/// subscriber queues and sends on its own task).
public protocol BackupEventSubscriber: Sendable {
    func receive(_ event: BackupEvent) async
}

/// The backup and cleanup outcomes' stream, the sibling of `RollbackEvents`: publishes each event to every
/// subscriber, in order. The jobs' own log lines already say what these events say, so there is no log
/// subscriber; the webhook subscribes now, the metrics later.
public struct BackupEvents: Sendable {
    public let subscribers: [any BackupEventSubscriber]

    public init(_ subscribers: [any BackupEventSubscriber]) { self.subscribers = subscribers }

    /// No subscriber: publishing does nothing.
    public static let none = BackupEvents([])

    public func publish(_ event: BackupEvent) async {
        for subscriber in subscribers { await subscriber.receive(event) }
    }
}

import BackupCore
import BackupKit
import BackupStorage
import Foundation
import Logging

/// Everything the sidecar's services and routes share: its configuration, the store, the probe loop and what
/// the loop last did. Built once per process (or per test).
public struct SidecarContext: Sendable {
    public let configuration: SidecarConfiguration
    public let storage: any Storage
    public let status: SidecarStatus
    public let freshness: BackupFreshness
    public let probeLoop: ProbeLoop
    public let liveness: Liveness?
    public let logger: Logger

    /// `logger` writes the server's and the loop's lines; `events` receives incidents (by default the log
    /// subscriber, writing `[Rollback] …` lines).
    public init(
        configuration: SidecarConfiguration, storage: any Storage, logger: Logger, events: RollbackEvents? = nil,
        livenessInterval: Duration = .seconds(10)
    ) {
        self.configuration = configuration
        self.storage = storage
        self.logger = logger
        let status = SidecarStatus()
        self.status = status
        freshness = BackupFreshness(
            storage: storage, prefix: configuration.store.prefix,
            staleAfter: TimeInterval(configuration.backupStaleAfterSeconds))
        probeLoop = ProbeLoop(
            configuration: configuration, storage: storage, events: events ?? .logging(to: logger), status: status,
            logger: logger)
        liveness =
            configuration.livenessFile.isEmpty
            ? nil : Liveness(path: configuration.livenessFile, interval: livenessInterval)
    }
}

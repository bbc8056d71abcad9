import BackupCore
import BackupKit
import BackupStorage
import Foundation
import Logging

/// Everything the sidecar's services and routes share: its configuration, the stores, the probe loop and what
/// the loop last did, and the admin API's state. Built once per process (or per test).
public struct SidecarContext: Sendable {
    public let configuration: SidecarConfiguration
    /// Where heartbeats, requests and new backups go (the volume, else the bucket).
    public var storage: any Storage { stores.primary }
    /// Every store: the API lists, deletes and restores across the volume and its bucket copy.
    public let stores: Stores
    /// The process's settings: `POST /api/backups` loads the backup's configuration from them when it is asked
    /// for, so a sidecar without database settings still serves everything else. nil: no backups through the API.
    public let values: ConfigurationValues?
    public let status: SidecarStatus
    public let freshness: BackupFreshness
    public let probeLoop: ProbeLoop
    public let liveness: Liveness?
    public let events: RollbackEvents
    /// Webhooks and pings of the backups and cleanups the API runs (BACKUP_WEBHOOK_URL, BACKUP_PING_URL).
    public let notifications: Notifications
    /// This sidecar's own registry for `/metrics` (probes, API requests, webhook failures).
    public let metrics: SidecarMetrics
    /// The jobs' published metrics files, read once at a time however often `/metrics` is asked, and served
    /// for a few seconds.
    let publishedMetrics: SharedReading<Result<[[MetricFamily]], any Error>>
    /// What `/metrics` says of the backups in the stores, read when scraped.
    public let storeMetrics: StoreMetrics
    /// Repeated wrong tokens, per client (10 in 60 s; settable so a test on a slow machine can widen the window).
    var brake: TokenBrake
    /// The background backups (`?wait=false`) this sidecar is taking, by label.
    let backgroundBackups = BackgroundBackups()
    /// The peers already warned about for sending X-Forwarded-For without being trusted.
    let untrustedForwarding = Once(limit: 100)
    public let logger: Logger

    /// `logger` writes the server's and the loop's lines; `events` receives incidents (by default the log
    /// subscriber, writing `[Rollback] …` lines).
    public init(
        configuration: SidecarConfiguration, stores: Stores, values: ConfigurationValues? = nil, logger: Logger,
        events: RollbackEvents? = nil, notifications: Notifications? = nil, livenessInterval: Duration = .seconds(10)
    ) {
        self.configuration = configuration
        self.notifications = notifications ?? .disabled(logger: logger)
        let metrics = SidecarMetrics(logger: logger)
        self.metrics = metrics
        // Every operation on the stores, whoever makes it (the probe loop's heartbeats, the API, the scrape's own
        // reads), is counted in this sidecar's registry.
        let stores = stores.metered(by: metrics.factory)
        self.stores = stores
        self.values = values
        self.logger = logger
        let status = SidecarStatus()
        self.status = status
        let events = events ?? .logging(to: logger)
        self.events = events
        freshness = BackupFreshness(
            storage: stores.primary, prefix: configuration.store.prefix,
            staleAfter: TimeInterval(configuration.backupStaleAfterSeconds))
        let primary = stores.primary
        publishedMetrics = SharedReading(fresh: .seconds(5)) {
            await Blocking.run {
                Result {
                    try MetricsFile.collected(from: primary) {
                        logger.warning("GET /metrics: a published metrics file is not served: \($0)")
                    }
                }
            }
        }
        storeMetrics = Self.storeMetrics(configuration: configuration, stores: stores, values: values, logger: logger)
        probeLoop = ProbeLoop(
            configuration: configuration, storage: stores.primary, events: events, status: status, logger: logger,
            metrics: metrics.probes)
        liveness =
            configuration.livenessFile.isEmpty
            ? nil : Liveness(path: configuration.livenessFile, interval: livenessInterval)
        brake = TokenBrake(allowed: configuration.api.tokenAttempts)
    }

    /// A sidecar over one store (its staging folder beside it for a volume).
    public init(
        configuration: SidecarConfiguration, storage: any Storage, values: ConfigurationValues? = nil, logger: Logger,
        events: RollbackEvents? = nil, livenessInterval: Duration = .seconds(10)
    ) throws {
        let staging = try storage.localStaging ?? LocalStaging(creating: configuration.store.stagingDirectory)
        self.init(
            configuration: configuration, stores: Stores(primary: storage, staging: staging), values: values,
            logger: logger, events: events, livenessInterval: livenessInterval)
    }
}

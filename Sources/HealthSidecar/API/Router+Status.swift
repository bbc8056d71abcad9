import BackupCore
import BackupInterop
import BackupKit
import BackupStorage
import Foundation
import Hummingbird

extension Router<SidecarRequestContext> {
    /// `GET /api/status` (token, behind `APIGate` like every `/api` route): what the status page shows beside the
    /// backups.
    func addStatusRoute(_ sidecar: SidecarContext) {
        let api = StatusAPI(sidecar: sidecar)
        get("api/status") { _, _ in await api.status() }
    }
}

/// `GET /api/status`: the application's health as this sidecar sees it, its last probes (kept in memory), the
/// store's newest rollback request with its steps, and the runbook's disk rule (free bytes on the volume against
/// twice the last backup). What cannot be read (the store, the requests) is named in `problems`; the rest is
/// still answered, so the page shows what it can.
struct StatusAPI: Sendable {
    let sidecar: SidecarContext

    struct Body: Encodable {
        let success = true
        let timestamp: Date
        let sidecar: String
        let app: App
        /// Oldest first, at most `probeHistoryLimit`.
        let probes: [Probe]
        let probeHistoryLimit: Int
        let lastRollback: RequestStatus?
        let disk: Disk
        let problems: [String]
    }

    struct App: Encodable {
        /// HEALTH_CHECK_URL, its credentials and query hidden.
        let url: String
        /// `healthy`, `unhealthy`, or `unknown` before the first probe.
        let state: String
        let lastProbe: Date?
        let lastHealthy: Date?
        let consecutiveFailures: Int
        let failureThreshold: Int
        let intervalSeconds: Int
        /// The rollback request of the open incident.
        let incident: String?
    }

    struct Probe: Encodable {
        let at: Date
        let healthy: Bool
        /// The HTTP status; absent when no answer came.
        let status: Int?
        /// Why it failed; absent when healthy.
        let error: String?
        let durationSeconds: Double
    }

    struct Disk: Encodable {
        /// The store backups are written to first: `volume` or `bucket`.
        let store: String
        /// Free bytes on the volume; absent for a bucket (no such notion) or when it cannot be read.
        let freeBytes: Int64?
        /// The newest complete, trusted, ordinary backup (never a safety one, never one dated ahead).
        let lastBackup: String?
        let lastBackupSize: Int64?
        /// The runbook's rule: at least twice the last backup free.
        let neededBytes: Int64?
        /// `freeBytes >= neededBytes`; absent when either is unknown.
        let enough: Bool?
    }

    func status() async -> Response {
        let now = Date()
        let snapshot = sidecar.status.snapshot
        let configuration = sidecar.configuration
        let heartbeat = snapshot.heartbeat
        let state = heartbeat?.lastResult.map { $0.healthy ? "healthy" : "unhealthy" } ?? "unknown"
        let app = App(
            url: heartbeat?.url ?? CurlEasy.redacted(configuration.health.url), state: state,
            lastProbe: heartbeat?.lastProbe, lastHealthy: heartbeat?.lastHealthy,
            consecutiveFailures: heartbeat?.consecutiveFailures ?? 0, failureThreshold: configuration.failureThreshold,
            intervalSeconds: configuration.intervalSeconds, incident: heartbeat?.incident)
        let probes = sidecar.status.probes.map {
            Probe(
                at: $0.at, healthy: $0.healthy, status: $0.status, error: $0.healthy ? nil : ($0.error ?? "no answer"),
                durationSeconds: ($0.seconds * 1000).rounded() / 1000)
        }
        var problems: [String] = []
        let (rollback, rollbackProblem) = await newestRollback()
        if let rollbackProblem { problems.append(rollbackProblem) }
        let (disk, diskProblems) = await disk(now: now)
        problems += diskProblems
        return APIResponse.json(
            Body(
                timestamp: now, sidecar: configuration.sidecarID, app: app, probes: probes,
                probeHistoryLimit: ProbeHistory.limit, lastRollback: rollback, disk: disk, problems: problems))
    }

    /// The rollback request created last, with its steps (nil when there is none), or why the requests could
    /// not be read.
    func newestRollback() async -> (RequestStatus?, String?) {
        let storage = sidecar.storage
        let logger = sidecar.logger
        do {
            let newest = try await Blocking.run {
                try RequestBoard(storage: storage).list { logger.warning("[API] GET /api/status: \($0)") }
                    .filter { $0.intent == .rollback }.max { ($0.created, $0.id) < ($1.created, $1.id) }
            }
            return (newest.map(RequestStatus.init), nil)
        } catch {
            logger.error("[API] GET /api/status: the requests in \(storage) cannot be read: \(error)")
            return (nil, "the store's requests cannot be read; see the sidecar's log")
        }
    }

    /// The volume's free bytes against twice the last backup, and what could not be read.
    func disk(now: Date) async -> (Disk, [String]) {
        let storage = sidecar.storage
        let stores = sidecar.stores.all
        let prefix = sidecar.configuration.store.prefix
        let logger = sidecar.logger
        let authenticator = sidecar.authenticator()
        var problems: [String] = []
        let free: Int64?
        do {
            free = try await Blocking.run { try storage.availableBytes() }
        } catch {
            logger.error("[API] GET /api/status: the free space of \(storage) cannot be read: \(error)")
            problems.append("the volume's free space cannot be read; see the sidecar's log")
            free = nil
        }
        var last: BackupEntry?
        do {
            let entries = try await Blocking.run {
                try BackupCatalog(storages: stores, prefix: prefix, logger: logger, authenticator: authenticator).list()
            }
            last =
                NewestBackup.choose(
                    entries.filter { $0.manifest.metadata.kind != .safety }, name: \.name, authenticity: \.authenticity,
                    now: now, allowance: TimeInterval(TrustSettings().clockSkewAllowance)
                ).chosen
        } catch {
            logger.error("[API] GET /api/status: the backups in \(storage) cannot be listed: \(error)")
            problems.append("the backups cannot be listed; see the sidecar's log")
        }
        let needed = last.map { entry in
            let (twice, overflow) = entry.size.multipliedReportingOverflow(by: 2)
            return overflow ? Int64.max : twice
        }
        let enough: Bool? = if let free, let needed { free >= needed } else { nil }
        return (
            Disk(
                store: BackupSummary.storeName(storage), freeBytes: free, lastBackup: last?.fileName,
                lastBackupSize: last?.size, neededBytes: needed, enough: enough),
            problems
        )
    }
}

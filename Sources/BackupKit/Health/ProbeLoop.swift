import BackupCore
import BackupInterop
import BackupStorage
import Foundation
import Logging

/// `health-sidecar --loop`'s work, called alike by the executable (as a service of its ServiceGroup) and the
/// tests: every `HEALTH_CHECK_INTERVAL`, probe the app, count the result (`ProbeTracker`), write this sidecar's
/// heartbeat to the store, and when the failures reach `HEALTH_CHECK_FAILURES`, create the incident's rollback
/// request.
///
/// - Once per incident however many sidecars watch the app: the request's id derives from the newest
///   `lastHealthy` among all heartbeats in the store, which every sidecar reads alike, and it is created with
///   the store's conditional create (a second creator gets the existing request).
/// - A store that cannot be written is logged and reported (`SidecarStatus.storeError`, so `/healthz` answers
///   503) and never stops the loop; a request that could not be created is tried again after the next failure.
/// - Probes and store calls run off the cooperative pool (`Blocking`); cancellation (SIGTERM) ends the loop at
///   once, even in the middle of a probe.
public struct ProbeLoop: Sendable {
    public let configuration: SidecarConfiguration
    public let storage: any Storage
    public let events: RollbackEvents
    public let status: SidecarStatus
    public let logger: Logger
    /// Where each probe is counted for `/metrics`; nil: not counted.
    public let metrics: ProbeMetrics?

    public init(
        configuration: SidecarConfiguration, storage: any Storage, events: RollbackEvents, status: SidecarStatus,
        logger: Logger, metrics: ProbeMetrics? = nil
    ) {
        self.configuration = configuration
        self.storage = storage
        self.events = events
        self.status = status
        self.logger = logger
        self.metrics = metrics
    }

    private var interval: TimeInterval { TimeInterval(configuration.intervalSeconds) }
    private var sidecar: String { configuration.sidecarID }

    /// Runs until the task is cancelled; returns normally then.
    public func run() async {
        let started = Date()
        var tracker = ProbeTracker(
            threshold: configuration.failureThreshold, startPeriod: TimeInterval(configuration.startPeriodSeconds),
            started: started)
        var heartbeat = HealthHeartbeat(
            sidecar: sidecar, url: CurlEasy.redacted(configuration.health.url), interval: configuration.intervalSeconds,
            started: started)
        // A restarted sidecar keeps what it knew of the app's last health: the incident id depends on it.
        if let previous = await readOwnHeartbeat() { heartbeat.lastHealthy = previous.lastHealthy }
        status.update {
            $0.loopRunning = true
            $0.lastIteration = started
            $0.heartbeat = heartbeat
        }
        defer { status.update { $0.loopRunning = false } }
        logger.info(
            "Watching \(heartbeat.url) every \(DurationFormat.string(seconds: interval)) as \(sidecar): \(configuration.failureThreshold) consecutive failures open an incident"
        )
        var requested: String?
        while !Task.isCancelled {
            let round = Date()
            do {
                requested = try await probeOnce(tracker: &tracker, heartbeat: &heartbeat, requested: requested)
            } catch {
                return  // cancelled mid-probe
            }
            status.update { $0.lastIteration = Date() }
            let next = max(round.addingTimeInterval(interval), Date())
            guard await JobRunner.sleep(until: next) else { return }
        }
    }

    /// One round: probe, count, write the heartbeat, open the incident when due. Returns the incident's request
    /// id once it exists. Throws only `CancellationError`.
    private func probeOnce(
        tracker: inout ProbeTracker, heartbeat: inout HealthHeartbeat, requested: String?
    ) async throws -> String? {
        logger.info("[Backup] Checking if rollback is needed...")
        let probe = HealthProbe(configuration: configuration.health)
        let outcome = try await Blocking.runAbandoningOnCancel { probe.probe() }
        let now = Date()
        let transition = tracker.record(healthy: outcome.healthy, at: now)
        metrics?.record(healthy: outcome.healthy, consecutiveFailures: tracker.consecutiveFailures, at: now)
        heartbeat.lastProbe = now
        heartbeat.lastResult = ProbeResult(
            healthy: outcome.healthy, status: outcome.status, reason: outcome.reason, seconds: outcome.duration)
        heartbeat.consecutiveFailures = tracker.consecutiveFailures
        status.record(
            ProbeRecord(
                at: now, healthy: outcome.healthy, status: outcome.status, error: outcome.reason,
                seconds: outcome.duration))
        if let lastHealthy = tracker.lastHealthy { heartbeat.lastHealthy = lastHealthy }
        let reason = outcome.reason ?? "no answer"
        let threshold = configuration.failureThreshold
        var requested = requested
        switch transition {
        case .healthy:
            logger.info("[Backup] Application is healthy, no rollback needed")
        case .recovered(let failures, let closedIncident):
            logger.info("[Backup] Application is healthy, no rollback needed")
            heartbeat.incident = nil
            requested = nil
            await events.publish(.recovered(sidecar: sidecar, failures: failures))
            if closedIncident { logger.info("The incident is closed on this sidecar: the application answers again") }
        case .settling:
            logger.warning(
                "[Backup] Health check failed during the start period (HEALTH_CHECK_START_PERIOD), not counted: \(reason)"
            )
        case .failing(let count):
            logger.warning("[Backup] Health check failed (\(count)/\(threshold)): \(reason)")
        case .incident(let count):
            logger.warning("[Backup] Health check failed (\(count)/\(threshold)): \(reason)")
        case .stillFailing(let count):
            logger.warning("[Backup] Health check failed (\(count) in a row; the incident is open): \(reason)")
        }
        await write(heartbeat)
        if tracker.incidentOpen, requested == nil {
            requested = await openIncident(heartbeat: heartbeat, reason: reason)
            if let requested {
                heartbeat.incident = requested
                await write(heartbeat)
            }
        }
        status.update { $0.heartbeat = heartbeat }
        return requested
    }

    /// Creates (or finds) the incident's rollback request. Returns its id, or nil when the store failed (tried
    /// again after the next failed probe).
    private func openIncident(heartbeat: HealthHeartbeat, reason: String) async -> String? {
        do {
            return try await requestRollback(failures: heartbeat.consecutiveFailures, reason: reason, own: heartbeat)
                .request.id
        } catch {
            logger.error(
                "Could not create the rollback request in \(storage): \(error); trying again after the next probe")
            status.update { $0.storeError = "cannot create the rollback request in \(storage): \(error)" }
            return nil
        }
    }

    /// Creates the current incident's rollback request, or finds it when another sidecar (or an earlier call)
    /// made it: the probe loop when the failures reach the threshold, and the admin API's
    /// `POST /api/backups/rollback/auto` when its own probe fails (it joins the open incident, or opens it).
    /// `requestedBy` names who asked (default: this sidecar). Returns the request as stored and whether this call
    /// created it; publishes `.incidentOpened` when it did.
    public func requestRollback(
        failures: Int, reason: String, own: HealthHeartbeat? = nil, requestedBy: String? = nil
    ) async throws -> (request: StoreRequest, created: Bool) {
        let storage = storage
        let sidecar = sidecar
        let window = TimeInterval(configuration.rollbackWindowSeconds)
        let ownHeartbeat = own ?? status.snapshot.heartbeat
        let requester = requestedBy ?? "health-sidecar \(sidecar)"
        let (request, created) = try await Blocking.run {
            // The request's times are the store's: the runner judges its expiry by the store's clock, so a
            // sidecar whose clock runs behind does not write requests that are already expired.
            let now = (try? storage.currentTime()) ?? Date()
            let expires = now.addingTimeInterval(window)
            let heartbeats = HeartbeatStore(storage: storage).all()
            // Our own as written; in memory if it could not be read back. A healthy probe dated ahead of the
            // store's clock (a sidecar whose clock runs ahead, a forged heartbeat) is not believed: it would
            // fix the incident id for good, and every later incident would find its request finished.
            let believable = now.addingTimeInterval(IncidentID.clockAllowance)
            let known = heartbeats.isEmpty ? (ownHeartbeat.map { [$0] } ?? []) : heartbeats
            let lastHealthy = known.compactMap(\.lastHealthy).filter { $0 <= believable }.max()
            let id = IncidentID.make(lastHealthy: lastHealthy)
            return try RequestBoard(storage: storage).submit(
                id: id, intent: .rollback, requestedBy: requester, now: now, expires: expires,
                incident: StoreRequest.Incident(
                    sidecar: sidecar, opened: now, lastHealthy: lastHealthy, failures: failures, lastResult: reason)
            )
        }
        status.update {
            $0.storeError = nil
            $0.lastStoreWrite = Date()
        }
        if created {
            logger.warning(
                "[Backup] Rollback requested after \(failures) consecutive failed health checks: request \(request.id) (last healthy \(request.incident?.lastHealthy.map { ISO8601DateFormatter().string(from: $0) } ?? "never"))"
            )
            // One event per incident, from whoever created its request: five sidecars watching one app notify
            // once.
            await events.publish(
                .incidentOpened(request: request.id, sidecar: sidecar, failures: failures, lastResult: reason))
        } else {
            logger.warning(
                "[Backup] Rollback for this incident already requested by \(request.requestedBy): request \(request.id) (\(request.status.rawValue))"
            )
        }
        return (request, created)
    }

    /// Writes the heartbeat; a failure is logged and reported, never thrown.
    private func write(_ heartbeat: HealthHeartbeat) async {
        let storage = storage
        do {
            let data = Array(try ContingencyJSON.encoder().encode(heartbeat))
            try await Blocking.run { try storage.put(key: HealthHeartbeat.key(for: heartbeat.sidecar), data: data) }
            let wasFailing = status.snapshot.storeError != nil
            status.update {
                $0.storeError = nil
                $0.lastStoreWrite = Date()
            }
            if wasFailing { logger.info("The heartbeat is written to \(storage) again") }
        } catch {
            logger.error(
                "Could not write the heartbeat \(HealthHeartbeat.key(for: heartbeat.sidecar)) to \(storage): \(error)")
            status.update { $0.storeError = "cannot write the heartbeat to \(storage): \(error)" }
        }
    }

    private func readOwnHeartbeat() async -> HealthHeartbeat? {
        let storage = storage
        let key = HealthHeartbeat.key(for: sidecar)
        return await Blocking.run { () -> HealthHeartbeat? in
            guard let object = try? storage.read(key: key) else { return nil }
            return try? ContingencyJSON.decoder().decode(HealthHeartbeat.self, from: Data(object.data))
        }
    }
}

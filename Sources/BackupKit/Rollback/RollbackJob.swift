import BackupCore
import BackupInterop
import BackupStorage
import Foundation
import Logging

/// One rollback, for one request the runner has taken (status `running`, this worker, its request lease held):
/// the loop guard, the target (the plan's eligible backups in order, each verified in full by the restore
/// before anything is touched, a failing one passed over), the restore with the app stopped by the app
/// control and started again on the recorded version, the health check, the safety backup of what was
/// replaced, and the request's final status. Callable from tests exactly as the runner calls it.
public struct RollbackJob: Sendable {
    public let configuration: RollbackConfiguration
    public let stores: Stores
    public let appControl: any AppControl
    public let events: RollbackEvents
    public let logger: Logger
    /// At most this many backups are tried for one rollback (each is read in full).
    public static let maximumAttempts = 3

    public init(
        configuration: RollbackConfiguration, stores: Stores, appControl: any AppControl, events: RollbackEvents, logger: Logger
    ) {
        self.configuration = configuration
        self.stores = stores
        self.appControl = appControl
        self.events = events
        self.logger = logger
    }

    /// What a rollback ended with.
    public struct Outcome: Sendable {
        public var succeeded: Bool
        /// Not run because it was no longer needed.
        public var skipped = false
        public var target: String?
        public var reason: String
        public var safetyBackup: String?
    }

    /// Runs the rollback `request` to its end and records the outcome in it. Never throws for the rollback's
    /// own failures (they are the request's status); throws only when cancelled before anything was touched.
    public func run(_ request: StoreRequest, worker: String) async -> Outcome {
        let board = RequestBoard(storage: stores.primary)
        let steps = RollbackSteps(board: board, request: request.id, worker: worker, events: events)
        let outcome = await attempt(request, steps: steps)
        let final = outcome
        let finished = try? await Blocking.run {
            try board.update(request.id) { stored in
                guard stored.status == .running, stored.worker == worker else { return false }
                stored.status = final.skipped ? .skipped : final.succeeded ? .succeeded : .failed
                stored.reason = final.reason
                stored.target = final.target ?? stored.target
                return true
            }
        }
        if finished == nil { logger.error("[Rollback] Could not record the outcome of \(request.id) in the store") }
        // rollback.prom (and the Pushgateway): every rollback that was needed counts, succeeded or failed (a
        // refusal by the loop guard is a failed one: the application stays down); one found unnecessary (the app
        // answered again) did not happen and is not counted.
        if !outcome.skipped {
            await JobMetrics(
                job: "rollback", storage: stores.primary, pushgatewayURL: configuration.restore.store.pushgatewayURL,
                countsWebhookFailures: true, logger: logger
            ).publish(JobMetrics.rollback(succeeded: outcome.succeeded, at: Date()))
        }
        return outcome
    }

    private func attempt(_ request: StoreRequest, steps: RollbackSteps) async -> Outcome {
        let started = Date()
        // Health first: an app that answers again (it was restarting, an operator restored a backup meanwhile)
        // is not rolled back.
        let probe = HealthProbe(configuration: configuration.health)
        let now = await Blocking.run { probe.probe() }
        if now.healthy {
            let reason = "not needed: the application answers HTTP 200 again (\(CurlEasy.redacted(configuration.health.url)))"
            await steps.record("health check before the rollback", "succeeded", detail: "HTTP 200: nothing to do")
            await events.publish(.rollbackSkipped(request: request.id, reason: reason))
            return Outcome(succeeded: false, skipped: true, target: nil, reason: reason)
        }
        await steps.record("health check before the rollback", "failed", detail: now.reason ?? "unhealthy")
        let history = RollbackHistoryStore(storage: stores.primary)
        let incident = request.id
        // The loop guard, reserved atomically: a second rollback in the window is refused however many runners.
        let tried: Set<String>
        do {
            let guardRule = configuration.loopGuard
            let storage = stores.primary
            let (refusal, alreadyTried): (String?, Set<String>) = try await Blocking.run {
                var refusal: String?
                var alreadyTried = Set<String>()
                // The store's clock: every runner judges the window alike, whatever its own clock says.
                let now = try storage.currentTime()
                try history.update { history in
                    if let reason = guardRule.refusal(at: now, history: history) {
                        refusal = reason
                        return false
                    }
                    alreadyTried = history.targets(of: incident)
                    history.rollbacks.append(.init(request: request.id, incident: incident, target: "", started: now))
                    return true
                }
                return (refusal, alreadyTried)
            }
            if let refusal {
                await steps.record("loop guard", "failed", detail: refusal)
                await events.publish(.rollbackRefused(request: request.id, reason: refusal))
                return Outcome(succeeded: false, target: nil, reason: "refused by the loop guard: \(refusal)")
            }
            tried = alreadyTried
        } catch {
            await events.publish(.rollbackFailed(request: request.id, target: nil, reason: "\(error)"))
            return Outcome(succeeded: false, target: nil, reason: "the rollback history could not be read or written: \(error)")
        }
        await steps.record("loop guard", "succeeded", detail: "within ROLLBACK_MAX=\(configuration.loopGuard.max) per ROLLBACK_WINDOW")

        let outcome = await restoreAndCheck(request, steps: steps, alreadyTried: tried, started: started)
        let target = outcome.target ?? ""
        let succeeded = outcome.succeeded
        let storage = stores.primary
        _ = try? await Blocking.run {
            let now = (try? storage.currentTime()) ?? Date()
            return try history.update { history in
                guard let index = history.rollbacks.lastIndex(where: { $0.request == request.id && $0.outcome == nil }) else {
                    return false
                }
                history.rollbacks[index].target = target
                history.rollbacks[index].ended = now
                history.rollbacks[index].outcome = succeeded ? "succeeded" : "failed"
                return true
            }
        }
        if outcome.succeeded {
            await events.publish(.rollbackSucceeded(request: request.id, target: target, seconds: Date().timeIntervalSince(started)))
        } else {
            await events.publish(.rollbackFailed(request: request.id, target: outcome.target, reason: outcome.reason))
        }
        return outcome
    }

    private func restoreAndCheck(
        _ request: StoreRequest, steps: RollbackSteps, alreadyTried: Set<String>, started: Date
    ) async -> Outcome {
        // 1. The plan: which backups qualify, newest first. A last healthy probe dated ahead of the store's clock is
        // not believed (the backups' own health records then speak).
        let plan: RollbackPlan
        do {
            let (configuration, stores, logger, appControl) = (configuration, stores, logger, appControl)
            plan = try await Blocking.run {
                let lastHealthy = IncidentID.believable(request.incident?.lastHealthy, now: try stores.primary.currentTime())
                return try RollbackPlan.make(
                    configuration, stores: stores, logger: logger, lastHealthy: lastHealthy, alreadyTried: alreadyTried,
                    appControl: appControl)
            }
        } catch {
            await steps.record("choose the target", "failed", detail: "\(error)")
            return Outcome(succeeded: false, target: nil, reason: "the backups could not be listed: \(error)")
        }
        for choice in plan.choices.prefix(10) {
            if let skip = choice.skip { logger.info("[Rollback] Passing over \(choice.entry.fileName): \(skip)") }
        }
        let candidates = Array(plan.eligible.prefix(Self.maximumAttempts))
        guard !candidates.isEmpty else {
            let reason = "no backup qualifies as a rollback target (complete, genuine, taken while the app was healthy, not a safety or labelled backup); a person must choose one"
            await steps.record("choose the target", "failed", detail: reason)
            return Outcome(succeeded: false, target: nil, reason: reason)
        }

        // 2. The restore, candidate by candidate until one passes verification.
        var failures: [String] = []
        for entry in candidates {
            let target = entry.fileName
            let version: AppDeployment?
            if configuration.code {
                if let problem = await RollbackPlan.versionProblem(entry, code: true, appControl: appControl) {
                    guard configuration.dataOnly else {
                        let reason = "the application's version recorded with \(target) cannot be restored: \(problem); nothing was touched"
                        await steps.record("restore the version", "failed", detail: "\(problem) (set ROLLBACK_DATA_ONLY=true to restore data alone, or ROLLBACK_CODE=false to leave code to the deploy pipeline)")
                        return Outcome(succeeded: false, target: target, reason: reason)
                    }
                    await steps.record("restore the version", "skipped", detail: "\(problem); data only (ROLLBACK_DATA_ONLY=true)")
                    version = nil
                } else {
                    version = entry.manifest.metadata.deployment
                }
            } else {
                version = nil
            }
            await events.publish(
                .rollbackStarted(
                    request: request.id, target: target,
                    plan: ["restore \(target)", version.map { "version \($0.summary)" } ?? "data only", "app control \(appControl)"]))
            // The broken state's version, read before anything changes it: its safety backup records it.
            let brokenVersion = try? await appControl.deployment()
            let gate = RollbackGate(appControl: appControl, deployment: version, steps: steps, logger: logger)
            var restore = RestoreJob(configuration: restoreConfiguration(target), stores: stores, logger: logger)
            restore.gate = gate
            restore.keepReplaced = true
            let replacedSoFar = ReplacedRecord()
            restore.replacedRecord = replacedSoFar
            let verifyStep = await steps.begin("verify \(target) and restore its database beside the live one")
            gate.onEnter = { await steps.end(verifyStep, "succeeded") }
            let result: RestoreResult
            do {
                result = try await restore.run()
                await steps.end(verifyStep, "succeeded")
            } catch {
                await steps.end(verifyStep, "failed", detail: "\(error)")
                if !gate.entered && !Task.isCancelled, (error as? ContingencyError)?.concernsBackup == true {
                    // Nothing was touched, and the fault is this backup's: the next older one may do. Any other
                    // failure (a hook, the store's lease, the database server) would fail an older one alike, and
                    // restoring an older one would lose the rows written since: the rollback stops.
                    logger.error("[Rollback] \(target) cannot be restored (\(error)); trying the next eligible backup")
                    failures.append("\(target): \(error)")
                    continue
                }
                // The app was stopped: what was replaced so far (the database swapped, say, and the start failed)
                // is still archived, or at least named, so nothing of the broken state is lost unnoticed.
                let replaced = replacedSoFar.state
                var reason = "the restore of \(target) failed: \(error)"
                if replaced != ReplacedState() {
                    if Task.isCancelled {
                        reason += "; " + Self.keptDescription(replaced)
                    } else if let safety = await safetyBackup(
                        of: replaced, recording: .init(health: Self.brokenHealth(request), deployment: brokenVersion ?? nil),
                        request: request, steps: steps)
                    {
                        reason += "; the replaced state is the safety backup \(safety)"
                    } else {
                        reason += "; " + Self.keptDescription(replaced)
                    }
                }
                return Outcome(succeeded: false, target: target, reason: reason)
            }

            // 3. Health: the app must answer HTTP 200 again within ROLLBACK_HEALTH_TIMEOUT.
            let healthy = await steps.begin("health check", detail: "until HTTP 200 or \(DurationFormat.string(seconds: TimeInterval(configuration.healthTimeout)))")
            let healed = await waitForHealth()
            await steps.end(healthy, healed.healthy ? "succeeded" : "failed", detail: healed.detail)
            if Task.isCancelled {
                // Stopped (SIGTERM) before the rollback ended: no time for a safety backup; what was replaced is
                // kept where it is (the database marked so that no backup drops it) and named.
                return Outcome(
                    succeeded: false, target: target,
                    reason: "the runner was stopped (SIGTERM) after restoring \(target), before the application's health was confirmed; the application was started again; \(Self.keptDescription(result.replaced))")
            }

            // 4. The broken state, archived once the rollback has ended.
            let safety = await safetyBackup(
                of: result.replaced, recording: .init(health: Self.brokenHealth(request), deployment: brokenVersion ?? nil),
                request: request, steps: steps)
            if healed.healthy {
                let seconds = Date().timeIntervalSince(started)
                return Outcome(
                    succeeded: true, target: target,
                    reason: "restored \(target)\(version.map { " with \($0.summary)" } ?? " (data only)"); the application is healthy (\(healed.detail)); \(DurationFormat.string(seconds: seconds)) in all"
                        + (safety.map { "; the replaced state is the safety backup \($0)" } ?? "; \(Self.keptDescription(result.replaced))"),
                    safetyBackup: safety)
            }
            return Outcome(
                succeeded: false, target: target,
                reason: "restored \(target) but the application is still unhealthy (\(healed.detail)); the loop guard waits for a person"
                    + (safety.map { "; the replaced state is the safety backup \($0) (restore it by name to go back)" }
                        ?? "; \(Self.keptDescription(result.replaced))"),
                safetyBackup: safety)
        }
        return Outcome(
            succeeded: false, target: nil,
            reason: "no eligible backup could be restored: \(failures.joined(separator: "; ")); nothing was touched")
    }

    /// The restore's configuration for `target`: the replaced database always kept (it goes into the safety
    /// backup), and the store's lease waited for (a backup running now finishes first).
    private func restoreConfiguration(_ target: String) -> RestoreConfiguration {
        var restore = configuration.restore
        restore.backup = target
        // A rollback puts everything back, whatever RESTORE_PARTS says (that is restore-job's, for a person).
        restore.parts = .all
        restore.keepOld = true
        // The app is stopped: sessions left on its database are strays, and only a swap keeps the broken database
        // for the safety backup (an in-place restore overwrites it).
        restore.terminateConnections = true
        restore.store.lockTimeoutSeconds = max(restore.store.lockTimeoutSeconds, 1800)
        return restore
    }

    /// The broken state's health, for its safety backup: the incident's.
    static func brokenHealth(_ request: StoreRequest) -> HealthAtStart {
        HealthAtStart(
            state: .unhealthy, lastProbe: request.incident?.opened, lastHealthy: request.incident?.lastHealthy,
            consecutiveFailures: request.incident?.failures ?? 0, sidecars: request.incident == nil ? 0 : 1)
    }

    /// Where the replaced state is, when no safety backup holds it.
    static func keptDescription(_ replaced: ReplacedState) -> String {
        let parts = [
            replaced.database.map { "database \($0) (kept: no backup drops it)" }, replaced.uploads.map { "uploads \($0)" },
            replaced.env.map { ".env \($0)" },
        ].compactMap { $0 }
        return parts.isEmpty ? "nothing was replaced" : "the replaced state is kept: " + parts.joined(separator: ", ")
    }

    /// Probes until HTTP 200 or ROLLBACK_HEALTH_TIMEOUT.
    private func waitForHealth() async -> (healthy: Bool, detail: String) {
        let probe = HealthProbe(configuration: configuration.health)
        let started = Date()
        let deadline = started.addingTimeInterval(TimeInterval(configuration.healthTimeout))
        var last = "no probe"
        var probes = 0
        while !Task.isCancelled {
            let outcome = await Blocking.run { probe.probe() }
            probes += 1
            if outcome.healthy {
                return (true, "HTTP 200 after \(DurationFormat.string(seconds: Date().timeIntervalSince(started))), \(probes) probe(s)")
            }
            last = outcome.reason ?? "unhealthy"
            guard Date() < deadline else { break }
            guard await JobRunner.sleep(until: min(deadline, Date().addingTimeInterval(1))) else { break }
        }
        return (false, "still failing after \(DurationFormat.string(seconds: Date().timeIntervalSince(started))): \(last)")
    }

    /// Archives what the restore replaced as a safety backup, then lets go of the copies set aside. Returns its
    /// name, or nil when it could not be made (the copies then stay where they are, and the log says where).
    func safetyBackup(
        of replaced: ReplacedState, recording context: BackupJob.StartContext, request: StoreRequest, steps: RollbackSteps
    ) async -> String? {
        guard let keptDatabase = replaced.database else {
            // Restored in place (this role may not create databases) or there was none: the broken database is
            // gone, and a backup now would archive the restored one as if it were the broken state.
            await steps.record(
                "safety backup", "skipped",
                detail: "the broken database was not kept (restored in place: the role may not create databases)"
                    + (replaced.uploads.map { "; the replaced uploads are kept at \($0)" } ?? ""))
            return nil
        }
        var backup = configuration.backup
        backup.database.overrides["dbname"] = keptDatabase
        backup.paths.uploadsDirectory = replaced.uploads
        backup.paths.envFile = replaced.env
        backup.store.lockTimeoutSeconds = max(backup.store.lockTimeoutSeconds, 1800)
        var job = BackupJob(configuration: backup, stores: stores, logger: logger)
        job.recordedContext = context
        let index = await steps.begin("safety backup", detail: "the replaced database \(replaced.database ?? "(none kept)") and uploads")
        do {
            let result = try await job.run()
            await steps.end(index, "succeeded", detail: result.name.fileName)
            await events.publish(.safetyBackup(request: request.id, backup: result.name.fileName))
            if let uploads = replaced.uploads { FolderSwap.removeTree(uploads) }
            do {
                let parameters = try ConnectionParameters(configuration.restore.database)
                let database = parameters.databaseName(environment: ProcessInfo.processInfo.environment) ?? "postgres"
                try DatabaseRestorer.dropKeptForSafety(keptDatabase, of: database, parameters: parameters, logger: logger)
            } catch {
                logger.warning("[Rollback] The replaced database \(keptDatabase) is archived but could not be dropped: \(error)")
            }
            return result.name.fileName
        } catch {
            await steps.end(index, "failed", detail: "\(error)")
            logger.error("[Rollback] The safety backup failed (\(error)); the replaced state stays where it is: database \(replaced.database ?? "-"), uploads \(replaced.uploads ?? "-"), .env \(replaced.env ?? "-")")
            return nil
        }
    }
}

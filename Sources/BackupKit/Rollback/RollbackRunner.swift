import BackupCore
import BackupStorage
import Foundation
import Logging

/// `restore-job --loop`: watches the store for rollback and restore requests every RESTORE_POLL_INTERVAL and
/// runs each exactly once. A request is taken under its own lease (`.contingency/locks/request-<id>.lock`)
/// and then moved from pending to running by compare-and-swap, so however many runners watch one store,
/// one runs it. A request found running whose lease is free was being run by a runner that died: it is
/// ended as interrupted (the app started again), never run a second time. A request past its `expires`
/// time (by the store's clock) is expired, never run late.
public struct RollbackRunner: Sendable {
    public let configuration: RollbackConfiguration
    public let stores: Stores
    public let appControl: any AppControl
    public let events: RollbackEvents
    public let logger: Logger
    /// Called after every poll (the liveness file, tests' synchronisation).
    public var afterPoll: @Sendable () async -> Void = {}
    /// Problems already logged: an unreadable request is reported once, not at every poll.
    private let warned = Once()

    public init(
        configuration: RollbackConfiguration, stores: Stores, appControl: any AppControl, events: RollbackEvents, logger: Logger
    ) {
        self.configuration = configuration
        self.stores = stores
        self.appControl = appControl
        self.events = events
        self.logger = logger
    }

    var worker: String { "restore-job \(configuration.runnerID) pid \(getpid()) on \(ProcessInfo.processInfo.hostName)" }

    /// Runs until cancelled (SIGTERM): at once while idle; a rollback in progress is finished or aborted as the
    /// restore's own cancellation allows, and the app is always started again.
    public func run() async throws {
        let started = Date()
        if configuration.code && !configuration.dataOnly && configuration.appControl.kind == .command {
            logger.warning(
                "APP_CONTROL=command cannot restore the application's version, and ROLLBACK_CODE=true with ROLLBACK_DATA_ONLY=false asks for it: every rollback will stop before touching anything. Set ROLLBACK_DATA_ONLY=true (restore the data, leave the code as it is) or ROLLBACK_CODE=false (the deploy pipeline rolls code back), or use APP_CONTROL=docker or kubernetes")
        }
        logger.info("Watching \(configuration.restore.store.description) for rollback and restore requests every \(DurationFormat.string(seconds: TimeInterval(configuration.pollInterval))) (app control: \(appControl))")
        while !Task.isCancelled {
            await writeHeartbeat(started: started, running: nil)
            await pollOnce(started: started)
            await afterPoll()
            guard await JobRunner.sleep(until: Date().addingTimeInterval(TimeInterval(configuration.pollInterval))) else { break }
        }
        logger.info("Stopped watching for requests")
    }

    /// One pass over the store's requests, oldest first.
    public func pollOnce(started: Date = Date()) async {
        let board = RequestBoard(storage: stores.primary)
        let requests: [StoreRequest]
        do {
            let (logger, warned) = (logger, warned)
            requests = try await Blocking.run {
                try board.list(skipped: { problem in if warned.first(problem) { logger.warning("Request not read: \(problem)") } })
            }
        } catch {
            logger.error("Could not read the requests in \(stores.primary): \(error)")
            return
        }
        for request in requests where request.intent != .backup && !request.status.isFinished {
            guard !Task.isCancelled else { return }
            await handle(request, board: board, started: started)
        }
    }

    private func handle(_ request: StoreRequest, board: RequestBoard, started: Date) async {
        let lease: Lease
        do {
            lease = try await Lease.acquire(
                "request-\(request.id)", storage: stores.primary, job: "restore-job", ttl: configuration.restore.store.lockTTLSeconds,
                timeout: 0)
        } catch {
            return  // another runner has it
        }
        defer { lease.release() }
        // Read again under the lease: it may have changed since the listing.
        guard let current = try? await Blocking.run({ try board.get(request.id)?.request }), !current.status.isFinished else { return }
        if current.status == .running {
            await endInterrupted(current, board: board)
            return
        }
        let storeNow = (try? await Blocking.run { [storage = stores.primary] in try storage.currentTime() }) ?? Date()
        // A request without a limit (the admin API's restores) is valid for one window too: a store copied
        // elsewhere replays nothing, whoever wrote the request.
        let expires = current.expires ?? current.created.addingTimeInterval(configuration.loopGuard.window)
        if expires < storeNow {
            let reason = "expired: created \(ISO8601DateFormatter().string(from: current.created)), valid until \(ISO8601DateFormatter().string(from: expires)) by the store's clock (ROLLBACK_WINDOW); never run late"
            _ = try? await Blocking.run { try board.transition(request.id, from: .pending, to: .expired, reason: reason) }
            await events.publish(.rollbackRefused(request: request.id, reason: reason))
            return
        }
        let worker = worker
        guard let taken = try? await Blocking.run({ try board.transition(request.id, from: .pending, to: .running, worker: worker) })
        else { return }
        // The heartbeat goes on while the request runs (a rollback takes minutes): a busy runner is not a dead one.
        let beating = Task { [self] in
            while !Task.isCancelled {
                await writeHeartbeat(started: started, running: taken.id)
                guard await JobRunner.sleep(until: Date().addingTimeInterval(TimeInterval(configuration.pollInterval))) else { return }
            }
        }
        defer { beating.cancel() }
        logger.info("[Rollback] Taking request \(taken.id) (\(taken.intent.rawValue), asked by \(taken.requestedBy))")
        switch taken.intent {
        case .rollback:
            _ = await RollbackJob(configuration: configuration, stores: stores, appControl: appControl, events: events, logger: logger)
                .run(taken, worker: worker)
        case .restore:
            await runRestore(taken, board: board, worker: worker)
        case .backup:
            break
        }
    }

    /// A restore asked through the store (the admin API): the named backup, or the newest trusted one; the parts the
    /// request names (all by default); the app stopped and started by the app control, on the version recorded with
    /// the backup only when the request asks for the code (`code`), else as it is. No health rules; what was
    /// replaced is kept as a rollback keeps it: archived as a safety backup when the database was replaced (then
    /// let go of), else left where it was moved and named in the request's reason.
    private func runRestore(_ request: StoreRequest, board: RequestBoard, worker: String) async {
        let steps = RollbackSteps(board: board, request: request.id, worker: worker, events: events)
        let finish = { (status: StoreRequest.Status, reason: String, target: String?) in
            _ = try? await Blocking.run {
                try board.update(request.id) { stored in
                    guard stored.status == .running, stored.worker == worker else { return false }
                    stored.status = status
                    stored.reason = reason
                    stored.target = target ?? stored.target
                    return true
                }
            }
        }
        // A request names a backup of the store, never a path: whoever can write a request cannot point the
        // runner at another folder of its host.
        if let backup = request.backup, backup.contains("/") || BackupName.parse(fileName: backup, prefix: configuration.restore.store.prefix) == nil {
            let reason = "refused: \(backup.prefix(200)) is not the name of a backup of this store (BACKUP_PREFIX \(configuration.restore.store.prefix)); a request names a backup, never a path"
            await steps.record("restore", "failed", detail: reason)
            await finish(.failed, reason, nil)
            return
        }
        let parts: RestoreParts
        do {
            parts = try RestoreParts.parse(list: request.parts)
        } catch {
            let reason = "refused: \(error); nothing was touched"
            await steps.record("restore", "failed", detail: reason)
            await finish(.failed, reason, nil)
            return
        }
        var restoreConfiguration = configuration.restore
        restoreConfiguration.backup = request.backup
        restoreConfiguration.parts = parts
        // As a rollback: the replaced database is kept (a swap, never in place), the store's lease waited for.
        restoreConfiguration.keepOld = true
        restoreConfiguration.terminateConnections = true
        restoreConfiguration.store.lockTimeoutSeconds = max(restoreConfiguration.store.lockTimeoutSeconds, 1800)
        let asked = request.backup ?? "the newest good backup"
        logger.info(
            "[Rollback] Restore request \(request.id): \(asked), parts \(parts), \(request.code == true ? "with its version" : "data only")")

        // The code, only when asked: the version recorded with the very backup restored, checked before anything
        // is touched.
        var version: AppDeployment?
        if request.code == true {
            let problem: String?
            do {
                let (configuration, stores, logger) = (restoreConfiguration, stores, logger)
                let target = try await Blocking.run {
                    try BackupLocator(configuration, stores: stores, logger: logger).locate(configuration.backup)
                }
                restoreConfiguration.backup = target.fileName
                if let deployment = target.manifest?.metadata.deployment {
                    problem = try await appControl.cannotRestore(deployment)
                    version = deployment
                } else {
                    problem = "\(target.fileName) records no application version (\(appControl) cannot read one, "
                        + "or the backup predates it)"
                }
            } catch {
                problem = "\(error)"
            }
            if let problem {
                let reason = "the application's version cannot be restored: \(problem); nothing was touched "
                    + "(ask again without code to restore the data alone)"
                await steps.record("restore the version", "failed", detail: problem)
                await finish(.failed, reason, restoreConfiguration.backup)
                return
            }
        }

        let brokenVersion = try? await appControl.deployment()
        var job = RestoreJob(configuration: restoreConfiguration, stores: stores, logger: logger)
        job.gate = RollbackGate(appControl: appControl, deployment: version, steps: steps, logger: logger)
        job.keepReplaced = true
        let replacedSoFar = ReplacedRecord()
        job.replacedRecord = replacedSoFar
        let rollback = RollbackJob(
            configuration: configuration, stores: stores, appControl: appControl, events: events, logger: logger)
        let broken = BackupJob.StartContext(health: Self.unknownHealth, deployment: brokenVersion ?? nil)
        let restore = job
        let result: RestoreResult
        do {
            result = try await steps.run("restore \(asked) (\(parts))") { try await restore.run() }
        } catch {
            var reason = "\(error)"
            let replaced = replacedSoFar.state
            if replaced != ReplacedState() {
                if replaced.database != nil, !Task.isCancelled,
                    let safety = await rollback.safetyBackup(of: replaced, recording: broken, request: request, steps: steps)
                {
                    reason += "; the replaced state is the safety backup \(safety)"
                } else {
                    reason += "; " + RollbackJob.keptDescription(replaced)
                }
            }
            await finish(.failed, reason, nil)
            return
        }
        let what = "\(parts)" + (version.map { "; version \($0.summary)" } ?? "; data only")
        var reason = "restored \(result.backup) (\(what)) in \(DurationFormat.string(seconds: result.duration))"
        if result.replaced.database != nil, !Task.isCancelled,
            let safety = await rollback.safetyBackup(of: result.replaced, recording: broken, request: request, steps: steps)
        {
            reason += "; the replaced state is the safety backup \(safety)"
        } else {
            reason += "; " + RollbackJob.keptDescription(result.replaced)
        }
        await finish(.succeeded, reason, result.backup)
    }

    /// The health recorded with a restore request's safety backup: a restore asked by a person says nothing of it.
    static let unknownHealth = HealthAtStart(
        state: .unknown, lastProbe: nil, lastHealthy: nil, consecutiveFailures: 0, sidecars: 0)

    /// A request left running by a runner that stopped (killed, its machine gone): its lease expired. The app
    /// may be stopped: it is started again. The request is ended as failed with what is known; it is never
    /// run a second time (the restore may have got halfway: the status says where to look).
    private func endInterrupted(_ request: StoreRequest, board: RequestBoard) async {
        let lastStep = request.steps?.last.map { "\($0.name) (\($0.status))" } ?? "before its first step"
        logger.error("[Rollback] Request \(request.id) was left running by \(request.worker ?? "a runner") that stopped, at: \(lastStep)")
        var started = "the application was started again"
        do {
            try await Task.detached { [appControl] in try await appControl.start(on: nil) }.value
        } catch {
            started = "the application could NOT be started again (\(error)): start it by hand"
        }
        let reason = "interrupted: \(request.worker ?? "the runner") stopped during \"\(lastStep)\"; \(started); it was not run again. Check the data (restore-job --verify, the app's own checks) and restore a backup by name if needed"
        let history = RollbackHistoryStore(storage: stores.primary)
        _ = try? await Blocking.run {
            try history.update { history in
                guard let index = history.rollbacks.lastIndex(where: { $0.request == request.id && $0.outcome == nil }) else { return false }
                history.rollbacks[index].ended = Date()
                history.rollbacks[index].outcome = "interrupted"
                return true
            }
        }
        _ = try? await Blocking.run { try board.transition(request.id, from: .running, to: .failed, reason: reason) }
        await events.publish(.rollbackFailed(request: request.id, target: request.target, reason: reason))
    }

    private func writeHeartbeat(started: Date, running: String?) async {
        let heartbeat = RunnerHeartbeat(
            runner: configuration.runnerID, host: ProcessInfo.processInfo.hostName, pid: getpid(), started: started,
            lastPoll: Date(), pollInterval: configuration.pollInterval, running: running)
        let storage = stores.primary
        do {
            try await Blocking.run {
                try storage.put(key: RunnerHeartbeat.key(for: heartbeat.runner), data: Array(try ContingencyJSON.encoder().encode(heartbeat)))
            }
        } catch {
            logger.warning("Could not write the runner's heartbeat to \(storage): \(error)")
        }
    }
}

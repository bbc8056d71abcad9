import BackupCore
import BackupStorage
import Foundation
import Logging

/// What a cleanup did (or, in a dry run, would do): the admin API's answer to `POST /api/backups/cleanup` and
/// what notifications report.
public struct CleanupResult: Sendable, Equatable {
    /// One backup kept, and why.
    public struct Kept: Sendable, Equatable {
        public let fileName: String
        public let reason: String
    }

    public let dryRun: Bool
    public let retentionDays: Int
    /// Backups considered (complete backups and shell-script archives of this prefix, in every store).
    public let total: Int
    /// Backups removed (in a dry run: that would be), oldest last, with why.
    public let deleted: [String]
    public let deletedReasons: [String: String]
    public let kept: [Kept]
    /// Backups that should have gone but could not be removed, with the error.
    public let failures: [String: String]
    /// Set when the brake refused the plan: nothing was deleted.
    public let refusal: String?
    public let leftovers: LeftoverReport
    /// The newest backup cleanup verified itself before pruning, and the outcome.
    public let verifiedBackup: String?
    public let verification: Manifest.Verification?

    public var deletedCount: Int { deleted.count }

    /// The runbook's line: "Cleanup completed: 5 old backups removed".
    public var message: String {
        if let refusal { return "Cleanup refused: \(refusal)" }
        let verb = dryRun ? "would be removed (dry run)" : "removed"
        return "Cleanup completed: \(deleted.count) old backup\(deleted.count == 1 ? "" : "s") \(verb)"
    }
}

/// The retention use case (cleanup-job, and the admin API's `POST /api/backups/cleanup`): under the store's lease
/// (never while a restore reads), verifies the newest backup when nothing has yet (as `restore-job --verify`,
/// recording the outcome in its manifest as a drill does), decides each backup's fate with `RetentionRules`,
/// deletes what goes from every store (manifest first), and collects what interrupted runs left
/// (`LeftoverCollector`). A dry run takes no lease and changes nothing.
public struct CleanupJob: Sendable {
    public let configuration: CleanupConfiguration
    public let stores: Stores
    public let logger: Logger
    /// Told of every finished run (notifications hook here).
    public var onFinished: (@Sendable (CleanupResult) -> Void)?
    /// How long to wait for another job's lease; nil: LOCK_TIMEOUT.
    public var lockTimeoutSeconds: Int?
    /// Whether the run's metrics count this process's failed notification deliveries (`JobMetrics`): false in
    /// the sidecar, whose own registry counts them.
    public var countsWebhookFailures = true

    public init(configuration: CleanupConfiguration, stores: Stores, logger: Logger) {
        self.configuration = configuration
        self.stores = stores
        self.logger = logger
    }

    /// One cleanup. `retentionDays` overrides BACKUP_RETENTION_DAYS (the API's `{"retentionDays": N}`, at least 1).
    /// Throws `.locked` (exit 11) when another job holds the store and LOCK_TIMEOUT runs out; a refusal by the
    /// brake is not thrown but returned in `refusal` (nothing deleted).
    public func run(retentionDays: Int? = nil, dryRun: Bool = false) async throws -> CleanupResult {
        var policy = configuration.policy
        if let retentionDays {
            guard (1...RetentionPolicy.maximumDays).contains(retentionDays) else {
                throw ContingencyError.configuration(
                    "retentionDays=\(retentionDays) is out of range",
                    hint: "give a whole number of days from 1 to \(RetentionPolicy.maximumDays)")
            }
            policy.retentionDays = retentionDays
        }
        logger.info("Starting cleanup of old backups\(dryRun ? " (dry run: nothing is deleted)" : "")...")
        let authenticator = try KeyLoader.authenticator(configuration.restore.trust)
        var lease: Lease?
        if !dryRun {
            lease = try await Lease.acquire(
                BackupJob.lockName, storage: stores.primary, job: "cleanup-job",
                ttl: configuration.store.lockTTLSeconds,
                timeout: lockTimeoutSeconds ?? configuration.store.lockTimeoutSeconds,
                onWait: { [logger] holder in logger.info("Waiting for the store lock held by \(holder)") })
        }
        defer { lease?.release() }
        let confirm: @Sendable () throws -> Void = { [lease] in
            try lease?.confirm()
            try Task.checkCancellation()
        }
        let (stores, prefix, logger) = (stores, configuration.store.prefix, logger)
        let now = try await Blocking.run { try stores.primary.currentTime() }
        var inventory = try await Blocking.run {
            try BackupInventory.read(
                stores: stores.all, prefix: prefix, authenticator: authenticator, logger: logger, tolerant: true)
        }

        var verified: (String, Manifest.Verification)?
        if let newest = newestBackup(inventory, now: now, policy: policy), newest.manifest?.verified == nil {
            if dryRun {
                logger.info(
                    "\(newest.name.fileName), the newest backup, has no verification result: a cleanup verifies it before pruning (not in a dry run)"
                )
            } else {
                if let outcome = try await verify(newest, confirm: confirm) { verified = (newest.name.fileName, outcome) }
                inventory = try await Blocking.run {
                    try BackupInventory.read(
                        stores: stores.all, prefix: prefix, authenticator: authenticator, logger: logger, tolerant: true
                    )
                }
            }
        }

        let collector = LeftoverCollector(
            stores: stores, prefix: prefix, graceSeconds: configuration.graceSeconds, logger: logger, dryRun: dryRun)
        var (leftovers, legacy) = try await Blocking.run { [inventory] in
            try collector.collect(inventory, now: now, confirm: confirm)
        }
        // A database kept from before a restore waits for the next backup (RESTORE_KEEP_OLD).
        let latest = now.addingTimeInterval(policy.futureAllowance)
        let newestComplete = inventory.items
            .filter { $0.isComplete && $0.manifest?.metadata.kind != .safety && $0.name.date <= latest }
            .map(\.name.date).max()
        let databases = DatabaseLeftovers(configuration: configuration.restore, logger: logger, dryRun: dryRun)
        leftovers.databases = await Blocking.run { databases.collect(newestBackup: newestComplete) }

        let items = inventory.items.filter(\.isComplete) + legacy
        let candidates = items.map {
            Self.candidate($0, pinned: inventory.pins[$0.name.fileName] != nil, legacy: !$0.isComplete)
        }
        let plan = RetentionRules.plan(candidates, now: now, policy: policy)
        for decision in plan.decisions {
            let verb = decision.keep || plan.refusal != nil ? "Keeping" : dryRun ? "Would delete" : "Deleting"
            logger.info("\(verb) \(decision.fileName): \(decision.reason)")
        }
        var deleted: [String] = []
        var failures: [String: String] = [:]
        if let refusal = plan.refusal {
            logger.error("Cleanup refused: \(refusal)")
        } else if !dryRun {
            for decision in plan.toDelete {
                guard let item = items.first(where: { $0.name.fileName == decision.fileName }) else { continue }
                do {
                    let removed = try await Blocking.run { try BackupInventory.remove(item, confirm: confirm) }
                    logger.info(
                        "Deleted \(decision.fileName) from \(removed.joined(separator: " and ")) (\(decision.reason))")
                    deleted.append(decision.fileName)
                } catch let error as ContingencyError where error.exitStatus == .locked || error.isCancellation {
                    throw error
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    logger.error("Could not delete \(decision.fileName): \(error)")
                    failures[decision.fileName] = "\(error)"
                }
            }
        } else {
            deleted = plan.toDelete.map(\.fileName)
        }
        let result = CleanupResult(
            dryRun: dryRun, retentionDays: policy.retentionDays, total: plan.decisions.count, deleted: deleted,
            deletedReasons: Dictionary(plan.toDelete.map { ($0.fileName, $0.reason.description) }) { first, _ in first
            },
            kept: plan.toKeep.map { .init(fileName: $0.fileName, reason: $0.reason.description) }, failures: failures,
            refusal: plan.refusal, leftovers: leftovers, verifiedBackup: verified?.0, verification: verified?.1)
        if plan.refusal == nil {
            // offen/docker-volume-backup's line, then the runbook's.
            logger.info(
                "\(dryRun ? "Would prune" : "Pruned") \(result.deleted.count) out of \(result.total) backups as they were older than \(policy.retentionDays) days"
            )
            if leftovers.count > 0 {
                logger.info(
                    "\(dryRun ? "Would collect" : "Collected") \(leftovers.count) leftover(s) of interrupted runs (\(leftovers.archives.count) archive(s) without a manifest, \(leftovers.manifests.count) manifest(s) without an archive, \(leftovers.uploads) upload(s), \(leftovers.stagingFiles) staging file(s), \(leftovers.databases.count) database(s))"
                )
            }
            logger.info("\(result.message)")
        }
        await publishMetrics(result)
        onFinished?(result)
        return result
    }

    /// `.contingency/metrics/cleanup.prom` (and the Pushgateway): the last run's outcome (a dry run publishes
    /// nothing). A failure to publish is a warning (`JobMetrics`).
    private func publishMetrics(_ result: CleanupResult) async {
        guard !result.dryRun else { return }
        await JobMetrics(
            job: "cleanup", storage: stores.primary, pushgatewayURL: configuration.store.pushgatewayURL,
            countsWebhookFailures: countsWebhookFailures, logger: logger
        ).publish([
            .gauge(
                "contingency_cleanup_success", "Whether the last cleanup ran without refusal or failure (1) or not (0).",
                result.refusal == nil && result.failures.isEmpty ? 1 : 0),
            .gauge("contingency_cleanup_deleted", "Backups the last cleanup deleted.", Double(result.deletedCount)),
            .gauge("contingency_cleanup_kept", "Backups the last cleanup kept.", Double(result.kept.count)),
            .gauge(
                "contingency_cleanup_leftovers", "Leftovers of interrupted runs the last cleanup collected.",
                Double(result.leftovers.count)),
            .gauge(
                "contingency_cleanup_timestamp_seconds", "When the last cleanup ended, in seconds since the epoch.",
                Date().timeIntervalSince1970.rounded()),
        ])
    }

    /// The newest complete, trusted backup that is not a safety backup nor dated ahead: the one whose
    /// verification retention relies on.
    private func newestBackup(_ inventory: BackupInventory, now: Date, policy: RetentionPolicy) -> BackupInventory.Item?
    {
        inventory.items.first { item in
            guard let manifest = item.manifest, item.authenticity.isTrusted, manifest.metadata.kind != .safety else {
                return false
            }
            return item.name.date <= now.addingTimeInterval(policy.futureAllowance)
        }
    }

    /// `restore-job --verify` on one backup (every byte against its manifest, the dump listed by pg_restore), the
    /// outcome written into its manifest in every store holding it. A failure of the backup is recorded and
    /// retention goes on (that backup then counts as failed); a missing key records nothing (nil), a cancellation
    /// stops the cleanup.
    private func verify(_ item: BackupInventory.Item, confirm: @escaping @Sendable () throws -> Void) async throws
        -> Manifest.Verification?
    {
        guard let storage = item.completeIn, let manifest = item.manifest else {
            throw ContingencyError.failed("no manifest")
        }
        logger.info(
            "Verifying \(item.name.fileName), the newest backup, before pruning anything: nothing has verified it yet")
        let target = BackupTarget(
            fileName: item.name.fileName, storage: storage, manifest: manifest, authenticity: item.authenticity)
        let started = Date()
        let verification: Manifest.Verification
        do {
            _ = try await BackupCheck.verify(
                target, configuration: configuration.restore,
                into: .init(dump: try target.stagedDump(in: stores.staging, "verify"), uploads: nil, env: nil),
                logger: logger)
            verification = .init(
                at: Date(), ok: true,
                detail: "verified by cleanup-job: every byte matches the manifest, pg_restore lists the dump")
            logger.info(
                "Backup \(item.name.fileName) verified in \(DurationFormat.string(seconds: Date().timeIntervalSince(started)))"
            )
        } catch {
            // A missing key or a cancellation says nothing about the backup: nothing is recorded. Without the key
            // the backup stays unverified, which retention counts for nothing: it only keeps more.
            if error is CancellationError || Task.isCancelled { throw error }
            if let stop = error as? ContingencyError, stop.isCancellation { throw error }
            if let stop = error as? ContingencyError, stop.exitStatus == .keyError {
                logger.warning(
                    "\(item.name.fileName) could not be verified (\(stop)): retention goes on as if it were unverified")
                return nil
            }
            let reason = (error as? ContingencyError) ?? ContingencyError.failed("\(error)")
            verification = .init(at: Date(), ok: false, detail: DrillJob.summary(of: reason))
            logger.error("Backup \(item.name.fileName) failed verification: \(error)")
        }
        let (name, logger) = (item.name, logger)
        let holders = item.completeStores
        try await Blocking.run {
            for storage in holders {
                try confirm()
                var saved = false
                for _ in 0..<5 where !saved {
                    guard let current = try storage.read(key: name.manifestName),
                        var stored = try? ContingencyJSON.decoder().decode(Manifest.self, from: Data(current.data))
                    else { break }
                    stored.verified = verification
                    saved =
                        try storage.replace(
                            key: name.manifestName, data: Array(try ContingencyJSON.encoder().encode(stored)),
                            ifMatch: current.etag) != nil
                }
                if !saved {
                    logger.warning(
                        "The verification of \(name.fileName) could not be written into its manifest in \(storage)")
                }
            }
        }
        return verification
    }

    static func candidate(_ item: BackupInventory.Item, pinned: Bool, legacy: Bool) -> RetentionCandidate {
        let manifest = item.manifest
        let kind: RetentionCandidate.Kind =
            legacy
            ? .legacy
            : manifest?.metadata.kind == .safety ? .safety : manifest?.metadata.label != nil ? .labelled : .regular
        var verification = RetentionCandidate.Verification.none
        if let verified = manifest?.verified, item.authenticity.isTrusted {
            verification = verified.ok ? .passed : .failed
        }
        let stores = legacy ? item.archiveIn : item.completeStores
        return RetentionCandidate(
            fileName: item.name.fileName, date: item.name.date, kind: kind, verification: verification, pinned: pinned,
            stores: stores.map(\.description))
    }
}

extension CleanupJob {
    /// How long a scheduled cleanup waits for the store's lease at least.
    public static let scheduledLockWait = 3600

    /// `cleanup-job --loop`: a cleanup at every fire time of CLEANUP_SCHEDULE; a failed or refused one is logged
    /// and the loop goes on. A scheduled cleanup that finds a backup or a restore running waits for it (an hour at
    /// least, whatever LOCK_TIMEOUT says) rather than skip a whole period.
    public func runOnSchedule(liveness: Liveness? = nil, notifications: Notifications? = nil) async throws {
        var job = self
        job.lockTimeoutSeconds = max(configuration.store.lockTimeoutSeconds, Self.scheduledLockWait)
        let notifications = notifications ?? .disabled(logger: logger)
        try await ScheduledLoop.run(configuration.schedule, what: "cleanup", logger: logger, liveness: liveness) {
            [job] in
            let result = try await notifications.flushing { try await notifications.monitorCleanup { try await job.run() } }
            if let refusal = result.refusal { throw ContingencyError.failed(refusal) }
        }
    }
}

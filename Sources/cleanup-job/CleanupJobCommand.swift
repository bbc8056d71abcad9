import ArgumentParser
import BackupCore
import BackupKit
import Foundation

@main
struct CleanupJobCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cleanup-job",
        abstract: "Apply the retention policy to the backup store and collect what interrupted runs left.",
        discussion: JobRunner.discussion(
            """
            Deletes complete backups older than BACKUP_RETENTION_DAYS (ages from their names), from every store \
            (the volume and the bucket copy), keeping: pinned backups; the newest BACKUP_KEEP_MIN verified ones; \
            the newest of each of BACKUP_KEEP_DAILY/WEEKLY/MONTHLY days, weeks, months; safety backups younger \
            than SAFETY_RETENTION_DAYS; and every backup no verified backup is newer than. When the newest backup \
            has no verification result, it is verified first (as restore-job --verify). A plan that would delete \
            every backup (of all stores, or of one) is refused (exit 1). Runs under the store's lock, so never \
            while a restore reads. Also removes this product's archives left without a manifest for longer than \
            CLEANUP_GRACE, manifests whose archive is gone, open uploads and staging files of interrupted runs, and \
            (with the database configured) the databases killed restores left and <db>_before_restore_* copies \
            older than the newest backup; \
            never an archive of the runbook's shell script, nor anything of another BACKUP_PREFIX. --dry-run \
            prints what would go and why each backup goes or stays, and changes nothing. Once, or with --loop on \
            CLEANUP_SCHEDULE.
            """, settings: Executables.cleanupJob.settings))

    @Flag(help: "Keep running and clean up on CLEANUP_SCHEDULE.") var loop = false
    @Flag(help: "Print what would be deleted and why each backup goes or stays; change nothing.") var dryRun = false
    @Option(help: "BACKUP_DIR") var backupDir: String?
    @Option(help: "BACKUP_PREFIX") var prefix: String?
    @Option(help: "BACKUP_RETENTION_DAYS") var retentionDays: String?
    @Option(help: "CLEANUP_SCHEDULE, with --loop") var schedule: String?

    func validate() throws {
        if loop && dryRun { throw ValidationError("--dry-run runs once: not with --loop") }
    }

    func run() async throws {
        let values = JobRunner.values(flags: [
            Settings.backupDir.name: backupDir, Settings.backupPrefix.name: prefix,
            Settings.backupRetentionDays.name: retentionDays, Settings.cleanupSchedule.name: schedule,
        ])
        let (loop, dryRun) = (loop, dryRun)
        // The runbook's lines read "[Backup] Cleanup completed: …".
        let status = await JobRunner.run(label: "Backup", values: values, failure: "Cleanup failed") { logger in
            let configuration = try CleanupConfiguration.load(values)
            // A dry run takes no lease: it needs no conditional writes from a bucket.
            let stores = try Stores.open(configuration.store, coordinating: !dryRun, logger: logger)
            let job = CleanupJob(configuration: configuration, stores: stores, logger: logger)
            let notifications = try Notifications.configured(
                values, settings: CleanupConfiguration.settings, logger: logger)
            guard loop else {
                // A dry run changes nothing: no ping, no message.
                let result =
                    dryRun
                    ? try await job.run(dryRun: true)
                    : try await notifications.flushing { try await notifications.monitorCleanup { try await job.run() } }
                if dryRun { print(Self.report(result)) }
                if let refusal = result.refusal {
                    throw ContingencyError.failed(
                        refusal,
                        hint:
                            "nothing was deleted; raise BACKUP_RETENTION_DAYS or BACKUP_KEEP_MIN, or verify newer backups"
                    )
                }
                if !result.failures.isEmpty {
                    throw ContingencyError.partial(
                        "\(result.failures.count) backup(s) could not be deleted (see above)")
                }
                return
            }
            try await job.runOnSchedule(liveness: try Liveness.configured(values), notifications: notifications)
        }
        throw ExitCode(status.rawValue)
    }

    /// The dry run's table on standard output: one line per backup, what happens to it and why.
    static func report(_ result: CleanupResult) -> String {
        var lines = result.deleted.map { "delete  \($0)  (\(result.deletedReasons[$0] ?? ""))" }
        lines += result.kept.map { "keep    \($0.fileName)  (\($0.reason))" }
        lines += result.leftovers.archives.map {
            "collect \($0)  (archive without a manifest, older than CLEANUP_GRACE)"
        }
        lines += result.leftovers.manifests.map { "collect \($0)  (manifest whose archive is gone)" }
        lines += result.leftovers.databases.map { "drop    database \($0)  (left by a restore)" }
        lines += result.leftovers.young.map { "leave   \($0)  (archive without a manifest, within CLEANUP_GRACE)" }
        if let refusal = result.refusal { lines.append("refused: \(refusal)") }
        lines.append(result.message)
        return lines.joined(separator: "\n")
    }
}

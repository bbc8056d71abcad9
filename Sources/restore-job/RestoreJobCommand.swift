import ArgumentParser
import BackupCore
import BackupKit
import BackupStorage
import Foundation

@main
struct RestoreJobCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore-job",
        abstract: "Restore the database, uploads and .env from a backup, after verifying all of it; or verify or drill backups.",
        discussion: JobRunner.discussion(
            """
            Restores LATEST_BACKUP (a name or a path) or, when unset, the newest complete backup in BACKUP_DIR \
            or BACKUP_S3_URL (both are searched: a fresh machine restores from the bucket). \
            The whole archive is read and checked first (its sha256 against the manifest, every member against \
            metadata.json, the dump with pg_restore --list); any mismatch stops before the database or any \
            file is touched. Then: the database with pg_restore --clean --if-exists in one transaction, the \
            uploads extracted beside UPLOADS_DIR and swapped in, the .env (the current one kept as \
            .env.before-restore). Archives made by the runbook's shell script (uploads.tar.gz inside) are read too.

            What is read is bounded by what the manifest declares (each member's size, the uploads' bytes, files \
            and folders; metadata and manifests at most 16 MiB); an archive without one stops short of filling a \
            file system. The uploads are refused when their root is not a folder, a path has "..", an entry goes \
            through a symlink, or a symlink points outside the uploads (unless RESTORE_ALLOW_OUTSIDE_SYMLINKS=true); \
            setuid, setgid, sticky and world-write bits are dropped, and owners come from the archive only with \
            RESTORE_OWNERS=true.

            Before restoring, it checks (and reports together): pg_restore can read the dump, the server is not \
            older than the backup's source, the roles and extensions exist or can be created, room for the \
            uploads, the key, who is connected; --check runs these checks alone.

            RESTORE_PARTS restores only some parts (database, uploads, env; comma-separated): the whole archive is \
            still verified first, and the parts not named are left untouched (the database neither dropped nor \
            swapped, the uploads folder and the .env as they are).

            --extract DIR unpacks the backup (LATEST_BACKUP or the newest) into DIR for inspection, verified and \
            decrypted as a restore reads it, touching nothing live: database.dump, globals.sql, uploads/, \
            .env.backup, package.json, package-lock.json, metadata.json. DIR must be absent or empty; it appears \
            only once everything in it has passed, mode 0700.

            --verify checks one backup (or all) and restores nothing. --drill restores one backup (default: the \
            newest) into the scratch database DRILL_DATABASE_URL and a scratch folder, compares tables, row \
            counts, files and bytes with what the backup recorded, drops the scratch copies, and records the \
            outcome in the manifest ("verified") and in .contingency/metrics/drill.prom; with --loop it drills \
            the newest backup on DRILL_SCHEDULE.

            --loop (without --drill) is the rollback runner: every RESTORE_POLL_INTERVAL it reads the store's \
            rollback requests (written by health-sidecar after HEALTH_CHECK_FAILURES failed probes) and restore \
            requests (the admin API), and runs each exactly once: the newest backup that is complete, genuine, \
            taken while the app was healthy and not a safety or labelled backup, verified in full; the app \
            stopped (APP_CONTROL), the data swapped in, the app started on the version recorded with the backup \
            (ROLLBACK_CODE), probed until HTTP 200 or ROLLBACK_HEALTH_TIMEOUT; the replaced state archived as a \
            safety backup. At most ROLLBACK_MAX rollbacks per ROLLBACK_WINDOW; beyond that a person decides. \
            --plan prints what a rollback would do now and changes nothing.
            """, settings: Executables.restoreJob.settings))

    @Flag(help: "Only verify the backup, or every backup (every byte, the dump with pg_restore --list).")
    var verify = false
    @Flag(help: "Restore drill into DRILL_DATABASE_URL; nothing live is touched.") var drill = false
    @Flag(help: "Only the pre-restore checks (versions, roles, extensions, disk, key, connections), all reported.")
    var check = false
    @Flag(help: "Run rollback and restore requests from the store as they come (with --drill: drill on DRILL_SCHEDULE).")
    var loop = false
    @Option(
        name: .customLong("extract"), help: ArgumentHelp("Unpack the backup into this new or empty folder, verified; touch nothing live.", valueName: "dir"))
    var extract: String?
    @Flag(help: "Print what a rollback would do now (target, backups passed over and why, version, steps); change nothing.")
    var plan = false
    @Argument(help: "The backup: a name or a path (same as LATEST_BACKUP).") var name: String?
    @Option(name: .customLong("backup"), help: "LATEST_BACKUP: the backup to restore, a name or a path")
    var backup: String?
    @Option(help: "BACKUP_DIR") var backupDir: String?
    @Option(help: "BACKUP_PREFIX") var prefix: String?
    @Option(help: "DATABASE_NAME") var databaseName: String?
    @Option(help: "DATABASE_USER") var databaseUser: String?
    @Option(help: "UPLOADS_DIR") var uploadsDir: String?
    @Option(help: "ENV_FILE") var envFile: String?

    func validate() throws {
        if [verify, drill, check, plan].filter({ $0 }).count > 1 {
            throw ValidationError("--verify, --drill, --check and --plan are different runs: choose one")
        }
        if loop && (verify || check || plan) { throw ValidationError("--loop runs requests (or, with --drill, drills): not with --verify, --check or --plan") }
        if loop && (name ?? backup) != nil {
            throw ValidationError(drill ? "--drill --loop always drills the newest backup: name none" : "--loop runs the requests in the store: name no backup")
        }
        if extract != nil && (verify || drill || check || plan || loop) {
            throw ValidationError("--extract unpacks one backup: not with --verify, --drill, --check, --plan or --loop")
        }
        if plan && (name ?? backup) != nil { throw ValidationError("--plan shows which backup a rollback would choose: name none") }
    }

    func run() async throws {
        let values = JobRunner.values(flags: [
            Settings.latestBackup.name: name ?? backup, Settings.backupDir.name: backupDir,
            Settings.backupPrefix.name: prefix, Settings.databaseName.name: databaseName,
            Settings.databaseUser.name: databaseUser, Settings.uploadsDir.name: uploadsDir, Settings.envFile.name: envFile,
        ])
        let (verify, drill, loop, check, plan, extract) = (verify, drill, loop, check, plan, extract)
        let failure =
            extract != nil ? "Extraction failed" : verify ? "Verification failed" : drill ? "Restore drill failed" : check ? "Checks failed" : plan ? "Plan failed"
            : loop ? "Rollback runner failed" : "Restore failed"
        let label = drill ? "Drill" : loop || plan ? "Rollback" : "Restore"
        let status = await JobRunner.run(label: label, values: values, failure: failure) { logger in
            let notifications = try Notifications.configured(
                values, settings: RollbackConfiguration.settings + DrillConfiguration.settings, logger: logger)
            // Messages are delivered before the process ends, within NOTIFY_TIMEOUT; they never change the exit status.
            try await notifications.flushing {
                if loop && !drill || plan {
                    let configuration = try RollbackConfiguration.load(values)
                    let stores = try Stores.open(configuration.restore.store, coordinating: !plan, logger: logger)
                    let appControl = configuration.appControl.makeAppControl(logger: logger)
                    if plan {
                        for line in try await RollbackPlan.describe(configuration, stores: stores, appControl: appControl, logger: logger) {
                            print(line)
                        }
                        return
                    }
                    // The runner's requests come when they come: no dead-man's switch pings; ROLLBACK_WEBHOOK_URL tells.
                    let runner = RollbackRunner(
                        configuration: configuration, stores: stores, appControl: appControl,
                        events: notifications.rollbackEvents(logging: logger), logger: logger)
                    if let liveness = try Liveness.configured(values) {
                        try await liveness.whileRunning(logger: logger) { try await runner.run() }
                    } else {
                        try await runner.run()
                    }
                    return
                }
                if drill {
                    let configuration = try DrillConfiguration.load(values)
                    let stores = try Stores.open(configuration.restore.store, logger: logger)
                    let job = DrillJob(configuration: configuration, stores: stores, logger: logger)
                    if loop {
                        try await job.runOnSchedule(liveness: try Liveness.configured(values), notifications: notifications)
                    } else {
                        try await notifications.monitor("restore drill") { _ = try await job.run(nil) }
                    }
                    return
                }
                let configuration = try RestoreConfiguration.load(values)
                // --check, --verify and --extract take no lease: they need no conditional writes from a bucket.
                let stores = try Stores.open(
                    configuration.store, coordinating: !(check || verify || extract != nil), logger: logger)
                let job = RestoreJob(configuration: configuration, stores: stores, logger: logger)
                if let extract {
                    _ = try await job.extract(into: extract)
                } else if check {
                    try await job.preRestoreChecks()
                } else if verify {
                    try await notifications.monitor("verification") { try await job.verifyAll() }
                } else {
                    try await notifications.monitor("restore") { _ = try await job.run() }
                }
            }
        }
        throw ExitCode(status.rawValue)
    }
}

import ArgumentParser
import BackupCore
import BackupKit
import BackupStorage
import Foundation

@main
struct RestoreJobCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore-job",
        abstract: "Restore the database, uploads and .env from a backup, after verifying all of it.",
        discussion: JobRunner.discussion(
            """
            Restores LATEST_BACKUP (a name or a path) or, when unset, the newest complete backup in BACKUP_DIR. \
            The whole archive is read and checked first (its sha256 against the manifest, every member against \
            metadata.json, the dump with pg_restore --list); any mismatch stops before the database or any \
            file is touched. Then: the database with pg_restore --clean --if-exists in one transaction, the \
            uploads extracted beside UPLOADS_DIR and swapped in, the .env (the current one kept as \
            .env.before-restore). Archives made by the runbook's shell script (uploads.tar.gz inside) are read too.
            """, settings: RestoreConfiguration.settings))

    @Flag(help: "Only verify the backup (every byte, and the dump with pg_restore --list); restore nothing.")
    var verify = false
    @Option(name: .customLong("backup"), help: "LATEST_BACKUP: the backup to restore, a name or a path")
    var backup: String?
    @Option(help: "BACKUP_DIR") var backupDir: String?
    @Option(help: "BACKUP_PREFIX") var prefix: String?
    @Option(help: "DATABASE_NAME") var databaseName: String?
    @Option(help: "DATABASE_USER") var databaseUser: String?
    @Option(help: "UPLOADS_DIR") var uploadsDir: String?
    @Option(help: "ENV_FILE") var envFile: String?

    func run() async throws {
        let values = JobRunner.values(flags: [
            Settings.latestBackup.name: backup, Settings.backupDir.name: backupDir, Settings.backupPrefix.name: prefix,
            Settings.databaseName.name: databaseName, Settings.databaseUser.name: databaseUser,
            Settings.uploadsDir.name: uploadsDir, Settings.envFile.name: envFile,
        ])
        let verify = verify
        let status = await JobRunner.run(
            label: "Restore", values: values, failure: verify ? "Verification failed" : "Restore failed"
        ) { logger in
            let configuration = try RestoreConfiguration.load(values)
            let storage = try VolumeStorage(root: configuration.store.backupDirectory)
            let job = RestoreJob(configuration: configuration, storage: storage, logger: logger)
            if verify {
                try await job.verifyAll()
            } else {
                _ = try await job.run()
            }
        }
        throw ExitCode(status.rawValue)
    }
}

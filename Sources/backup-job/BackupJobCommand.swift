import ArgumentParser
import BackupCore
import BackupKit
import BackupStorage
import Foundation

@main
struct BackupJobCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup-job",
        abstract: "Back up the application's database, uploads and .env into one archive.",
        discussion: JobRunner.discussion(
            """
            Writes <BACKUP_PREFIX>_YYYY-MM-DD_HH-MM-SS.tar.gz (UTC) into BACKUP_DIR: database.dump (pg_dump custom \
            format), uploads/, .env.backup, package.json, package-lock.json and metadata.json, then its manifest \
            <archive>.json. A backup exists only once its manifest does. The store is BACKUP_DIR, or the bucket \
            BACKUP_S3_URL alone, or BACKUP_DIR with every backup then copied to the bucket (exit 3 when that copy \
            fails; the next run copies what is missing). Runs once (a Kubernetes CronJob) or, with --loop, on \
            BACKUP_SCHEDULE (a compose service).
            """, settings: BackupConfiguration.settings))

    @Flag(help: "Keep running and back up on BACKUP_SCHEDULE.") var loop = false
    @Option(help: "BACKUP_DIR") var backupDir: String?
    @Option(help: "BACKUP_PREFIX") var prefix: String?
    @Option(help: "DATABASE_NAME") var databaseName: String?
    @Option(help: "DATABASE_USER") var databaseUser: String?
    @Option(help: "UPLOADS_DIR") var uploadsDir: String?
    @Option(help: "ENV_FILE") var envFile: String?
    @Option(help: "APP_DIR") var appDir: String?
    @Option(help: "BACKUP_COMPRESSION: gzip or zstd") var compression: String?
    @Option(help: "BACKUP_SCHEDULE, with --loop") var schedule: String?

    func run() async throws {
        let values = JobRunner.values(flags: [
            Settings.backupDir.name: backupDir, Settings.backupPrefix.name: prefix,
            Settings.databaseName.name: databaseName, Settings.databaseUser.name: databaseUser,
            Settings.uploadsDir.name: uploadsDir, Settings.envFile.name: envFile, Settings.appDir.name: appDir,
            Settings.compression.name: compression, Settings.schedule.name: schedule,
        ])
        let loop = loop
        let status = await JobRunner.run(label: "Backup", values: values, failure: "Backup failed") { logger in
            let configuration = try BackupConfiguration.load(values)
            let stores = try Stores.open(configuration.store, logger: logger)
            let job = BackupJob(configuration: configuration, stores: stores, logger: logger)
            guard loop else {
                try await job.runCancellingOnLostLease()
                return
            }
            try await BackupLoop(job: job).run()
        }
        throw ExitCode(status.rawValue)
    }
}

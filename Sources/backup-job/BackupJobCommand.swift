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
            BACKUP_SCHEDULE (a compose service). With BACKUP_SIGNING_KEY_FILE, each manifest is signed (Ed25519) \
            so that restore-job, given the public key in BACKUP_VERIFY_KEYS, can tell genuine backups from forged \
            ones; `backup-job keygen` makes the key pair.
            """, settings: Executables.backupJob.settings),
        subcommands: [KeygenCommand.self])

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
            let makeJob = {
                let configuration = try BackupConfiguration.load(values)
                let stores = try Stores.open(configuration.store, logger: logger)
                var job = BackupJob(configuration: configuration, stores: stores, logger: logger)
                // The app's version is recorded with each backup where the app control can read it (docker, kubernetes).
                if configuration.appControl.kind != .command { job.appControl = configuration.appControl.makeAppControl(logger: logger) }
                return job
            }
            let notifications = try Notifications.configured(values, settings: BackupConfiguration.settings, logger: logger)
            // Messages are delivered before the process ends, within NOTIFY_TIMEOUT; they never change the exit status.
            try await notifications.flushing {
                guard loop else {
                    // A store that cannot be opened is a failed backup too: it is reported like one.
                    try await notifications.monitorBackup { try await makeJob().runCancellingOnLostLease() }
                    return
                }
                let job = try makeJob()
                try await BackupLoop(job: job, liveness: try Liveness.configured(values), notifications: notifications).run()
            }
        }
        throw ExitCode(status.rawValue)
    }
}

/// `backup-job keygen`: the signing key pair.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make an Ed25519 key pair that signs backups (private key) and checks them (public key).",
        discussion: """
            Writes the private key to --out (PEM, mode 0600, never over an existing file) and the public key beside \
            it (.pub.pem), and prints the public key on one line. Give backup-job the private key \
            (BACKUP_SIGNING_KEY_FILE, a secret mounted into backup-job alone, never into the store) and restore-job \
            the public key (BACKUP_VERIFY_KEYS or BACKUP_VERIFY_KEYS_FILE; list the old and the new public key while \
            rotating). Encryption alone does not prove where a backup comes from: anyone can encrypt to a public age \
            recipient; only a signature does.
            """)

    @Option(help: "Where to write the private key; the public key goes beside it as NAME.pub.pem.")
    var out = "contingency-signing.pem"

    func run() throws {
        do {
            let result = try KeyGeneration.generate(privateKeyPath: out)
            print("Private key (backup-job's BACKUP_SIGNING_KEY_FILE): \(result.privateKeyPath)")
            print("Public key (restore-job's BACKUP_VERIFY_KEYS_FILE): \(result.publicKeyPath)")
            print("Key id: \(result.keyID)")
            print("BACKUP_VERIFY_KEYS=\(result.publicKeyLine)")
        } catch let error as ContingencyError {
            FileHandle.standardError.write(Data("backup-job keygen failed: \(error)\n".utf8))
            throw ExitCode(error.exitStatus.rawValue)
        }
    }
}

import BackupCore
import BackupInterop
import BackupStorage
import Foundation
import Logging

/// What a finished backup produced.
public struct BackupResult: Sendable {
    public let name: BackupName
    public let manifest: Manifest
    public let duration: TimeInterval
}

/// The backup use case: one full backup of the database, the uploads and the configuration into one archive,
/// committed by its manifest. The executable and the tests call exactly this.
public struct BackupJob: Sendable {
    public let configuration: BackupConfiguration
    public let stores: Stores
    public let logger: Logger
    public var now: @Sendable () -> Date = { Date() }
    /// Reads the application's version for the metadata; nil: none is recorded (APP_CONTROL=command).
    public var appControl: (any AppControl)?
    /// Recorded as the app's health and version instead of reading them now (a rollback's safety backup).
    public var recordedContext: StartContext?
    /// Whether the run's metrics count this process's failed notification deliveries (`JobMetrics`): false in
    /// the sidecar, whose own registry counts them.
    public var countsWebhookFailures = true
    public static let lockName = "store"
    public static let version = "0.1.0"

    public init(configuration: BackupConfiguration, stores: Stores, logger: Logger) {
        self.configuration = configuration
        self.stores = stores
        self.logger = logger
    }

    /// Runs one backup between BACKUP_PRE_COMMAND and BACKUP_POST_COMMAND. On any error or cancellation
    /// nothing that looks complete is left behind. With a bucket beside the volume, a backup that was published
    /// but not copied to the bucket throws `.partial` (exit 3); the next run copies it.
    public func run(lostLease: @escaping @Sendable (ContingencyError) -> Void = { _ in }) async throws -> BackupResult {
        try await configuration.hooks.around(
            job: "backup", logger: logger, describe: { ["CONTINGENCY_BACKUP": $0.name.fileName] }
        ) {
            try await backUp(lostLease: lostLease)
        }
    }

    private func backUp(lostLease: @escaping @Sendable (ContingencyError) -> Void) async throws -> BackupResult {
        let started = Date()
        logger.info("Starting scheduled backup...")
        let tools = PostgresTools(binDirectory: configuration.pgBinDirectory)
        let preflight = try await Preflight.check(configuration, tools: tools, logger: logger)
        let recipients = try Self.recipients(configuration.encryption)
        let signingKey = try KeyLoader.signingKey(configuration)
        if let signingKey {
            logger.info("Signing the manifest with key \(signingKey.keyID)")
        } else {
            logger.warning("Backups are not signed (BACKUP_SIGNING_KEY_FILE is not set): a restore cannot tell them from forged ones")
        }
        if let recipients {
            logger.info("Encrypting with age for \(recipients.map(\.description).joined(separator: ", "))")
        }

        let storage = stores.primary
        let context = await startContext()
        let lease = try await Lease.acquire(
            Self.lockName, storage: storage, job: "backup-job", ttl: configuration.store.lockTTLSeconds,
            timeout: configuration.store.lockTimeoutSeconds,
            onWait: { [logger] holder in logger.info("Waiting for the store lock held by \(holder)") },
            onLost: lostLease)
        defer { lease.release() }
        stores.removeInterruptedWrites(prefix: configuration.store.prefix, logger: logger)

        let catalog = BackupCatalog(storage: storage, prefix: configuration.store.prefix)
        try checkFreeSpace(catalog: catalog)
        var name = BackupName(
            prefix: configuration.store.prefix, date: now(), compression: configuration.compression,
            encrypted: recipients != nil)
        while try catalog.isTaken(name) {
            // Two backups in the same second: the name is the contract, so the next second is used.
            name = BackupName(
                prefix: name.prefix, date: name.date.addingTimeInterval(1), compression: name.compression,
                encrypted: name.encrypted)
        }

        let dump = try StagedDump(staging: stores.staging, name: "\(name.stem).dump", sealed: recipients != nil)
        let tables = try await dumpDatabase(to: dump, preflight: preflight, tools: tools)
        let globals = try await dumpRoles(preflight: preflight, tools: tools)
        Failpoint.hit("dump", holding: lease)

        // From here on the work is synchronous and long (archiving, compressing, hashing, writing the store, the
        // copy to a bucket): it runs on the backup's own thread at a lower priority, off the cooperative pool,
        // which the sidecar's HTTP server and probe loop need when the backup runs inside it (BackgroundExecutor).
        let executor = BackgroundExecutor()
        defer { executor.stop() }
        return try await withTaskExecutorPreference(executor) {
            let writer = try storage.makeWriter(key: name.fileName)
            defer { writer.abort() }
            // archive → (age) → hash → store: the stored bytes are hashed, plaintext never touches the disk.
            let hashing = HashingSink(writer)
            let encrypting = try recipients.map { try AgeEncryptingSink(recipients: $0, next: hashing) }
            let metadata = try writeArchive(
                name: name, context: context, dump: dump, globals: globals, preflight: preflight, tables: tables, lease: lease,
                into: encrypting ?? hashing)
            try encrypting?.finish()
            let archiveInfo = Manifest.ArchiveInfo(
                name: name.fileName, size: hashing.count, sha256: hashing.finalizeHex(), encrypted: recipients != nil,
                recipients: recipients?.map(\.description))

            // Fencing: publish only while the lease is still ours, checked after the flush, right before the rename.
            try writer.commit {
                try lease.confirm()
                try Task.checkCancellation()
            }
            var published = false
            defer { if !published { _ = try? storage.delete(key: name.fileName, ifMatch: nil) } }
            Failpoint.hit("publish", holding: lease)
            try lease.confirm()
            try Task.checkCancellation()
            // `created` is the name's time (moved on a second when the name was taken): the completion is that
            // plus the time measured here, so the two never disagree whatever the clocks.
            let completed = metadata.created.addingTimeInterval(max(0, Date().timeIntervalSince(started)))
            var manifest = Manifest(metadata: metadata, archive: archiveInfo, completed: completed)
            if let signingKey { manifest = try ManifestAuthenticator.sign(manifest, with: signingKey) }
            try storage.put(key: name.manifestName, data: Array(try ContingencyJSON.encoder().encode(manifest)))
            published = true
            // A newer backup exists now: databases kept from before earlier restores may go.
            do {
                try DatabaseRestorer.dropPrevious(of: preflight.database, parameters: preflight.connection, logger: logger)
            } catch {
                logger.warning("Could not drop the databases kept from before earlier restores: \(error)")
            }

            let copyFailure = copyToBucket(name, lease: lease, signingKey: signingKey)
            let duration = Date().timeIntervalSince(started)
            if let copyFailure {
                throw ContingencyError.partial(
                    "\(name.fileName) was created in \(storage), but the copy to \(stores.copy?.description ?? "the bucket") failed: \(copyFailure)",
                    hint: "the backup is usable from \(storage); the next run copies what the bucket lacks")
            }
            logger.info(
                "Backup created successfully: \(name.fileName) (\(ByteFormat.string(archiveInfo.size)) in \(DurationFormat.string(seconds: duration)), \(ByteFormat.rate(bytes: archiveInfo.size, seconds: duration)); data read \(ByteFormat.string(inputBytes(metadata))))"
            )
            return BackupResult(name: name, manifest: manifest, duration: duration)
        }
    }

    /// With a bucket beside the volume: copies the new backup, and any an earlier run failed to copy. Returns why
    /// a copy failed, or nil.
    private func copyToBucket(_ name: BackupName, lease: Lease, signingKey: Ed25519Key?) -> String? {
        guard let bucket = stores.copy else { return nil }
        var copier = BucketCopy(source: stores.primary, target: bucket, prefix: configuration.store.prefix, logger: logger)
        copier.authenticator = ManifestAuthenticator(keys: signingKey.map { [$0] } ?? [])
        do {
            let failures = try copier.copyMissing { try lease.confirm() }
            for failure in failures { logger.error("Could not copy \(failure.name) to \(bucket): \(failure.error)") }
            guard !failures.isEmpty else { return nil }
            return failures.map { "\($0.name): \($0.error)" }.joined(separator: "; ")
        } catch let error as ContingencyError where error.isCancellation {
            return "cancelled before the copy ended"
        } catch is CancellationError {
            return "cancelled before the copy ended"
        } catch {
            logger.error("Could not copy backups to \(bucket): \(error)")
            return "\(error)"
        }
    }

    /// The roles the database's objects belong to, for restores on a fresh server. Optional: a server that
    /// refuses (a managed service hiding pg_authid) gives a warning and a backup without globals.sql.
    private func dumpRoles(preflight: Preflight, tools: PostgresTools) async throws -> [UInt8]? {
        let sink = MemorySink(limit: 16 << 20)
        let outcome = try await tools.dumpRoles(
            into: sink, connection: preflight.connection, database: preflight.database, passwords: configuration.rolePasswords)
        guard outcome.succeeded else {
            logger.warning("Roles not backed up (pg_dumpall --roles-only failed: \(outcome.standardError)); globals.sql is recorded as missing")
            return nil
        }
        return sink.bytes
    }

    /// The runbook's rule: at least twice the last backup's size free before starting.
    private func checkFreeSpace(catalog: BackupCatalog) throws {
        let storage = stores.primary
        guard let available = try storage.availableBytes(), let last = try catalog.list().first else { return }
        let needed = last.size * 2
        guard available >= needed else {
            throw ContingencyError.failed(
                "not enough free space in \(storage): \(ByteFormat.string(available)) free, \(ByteFormat.string(needed)) needed (twice the last backup, \(last.fileName), \(ByteFormat.string(last.size)))",
                hint: "free space on the backup volume or remove old backups (cleanup-job) before the next run")
        }
    }

    /// Dumps the database and, in the same snapshot and at the same time, counts every table's rows for the
    /// metadata (what a restore drill compares). Returns the counts.
    private func dumpDatabase(to dump: StagedDump, preflight: Preflight, tools: PostgresTools) async throws -> [String: Int64]? {
        let started = Date()
        logger.info("Dumping database \(preflight.database) (PostgreSQL \(preflight.serverVersion), pg_dump \(preflight.pgDumpVersion))")
        let progress = ProgressReporter(logger: logger, interval: TimeInterval(configuration.progressInterval))
        let file = dump.file
        let watcher = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(500))
                progress.update("database dump", bytes: file.size)
            }
        }
        defer { watcher.cancel() }
        let snapshot = try ExportedSnapshot(preflight.connection)
        let counting = Task { try await snapshot.countRowsOnOwnThread(lockTimeout: 60) }
        let stopCounting: @Sendable () -> Void = {
            counting.cancel()
            snapshot.cancel()
        }
        let outcome: PostgresTools.Outcome
        // A plain dump is written by pg_dump itself, which then records where each table's data starts; a sealed
        // one passes through the age sink.
        do {
            outcome = try await withTaskCancellationHandler {
                if let path = dump.writablePath {
                    try await tools.dump(toFile: path, connection: preflight.connection, snapshot: snapshot.id)
                } else {
                    try await tools.dump(into: try dump.sink(), connection: preflight.connection, snapshot: snapshot.id)
                }
            } onCancel: {
                stopCounting()
            }
        } catch {
            stopCounting()
            throw error
        }
        guard outcome.succeeded else {
            stopCounting()
            throw ContingencyError.failed(
                "pg_dump of \(preflight.database) failed (\(outcome.status)): \(outcome.standardError)",
                hint: "nothing was published; check the database server and its logs")
        }
        try dump.finish()
        // Never trust an exit status alone: the dump must be a complete, readable archive.
        let listing = try await tools.list(try dump.input())
        guard listing.succeeded else {
            throw ContingencyError.failed("the dump of \(preflight.database) is not readable by pg_restore: \(listing.standardError)")
        }
        // The counts serve drills; a backup whose dump is good does not fail because they could not be made.
        let tables: [String: Int64]?
        do {
            tables = try await withTaskCancellationHandler {
                try await counting.value
            } onCancel: {
                stopCounting()
            }
        } catch {
            try Task.checkCancellation()
            logger.warning("Row counts not recorded (\(error)); drills of this backup will check tables and files only")
            tables = nil
        }
        logger.info(
            "Database dumped: \(ByteFormat.string(dump.size))\(tables.map { ", \($0.count) tables, \($0.values.reduce(0, +)) rows" } ?? "") in \(DurationFormat.string(seconds: Date().timeIntervalSince(started)))")
        return tables
    }

    private func writeArchive(
        name: BackupName, context: StartContext, dump: StagedDump, globals: [UInt8]?, preflight: Preflight, tables: [String: Int64]?,
        lease: Lease, into sink: any ByteSink
    ) throws -> BackupMetadata {
        let started = Date()
        let archive = try ArchiveWriter(compression: configuration.compression, level: configuration.compressionLevel, sink: sink)
        let members = ArchiveMembers(
            archive: archive, root: name.stem,
            progress: ProgressReporter(logger: logger, interval: TimeInterval(configuration.progressInterval)))
        var recorded: [BackupMetadata.Member] = []
        var missing: [String] = []

        // globals.sql first: a restore creates the roles from it once it matches the manifest, and can then
        // restore the dump as it reads it (owners and grants need the roles).
        if let globals {
            recorded.append(
                try members.addStream(
                    ArchiveLayout.globals, from: MemorySource(globals), size: Int64(globals.count), permissions: 0o600,
                    modified: name.date))
        } else {
            missing.append(ArchiveLayout.globals)
        }
        // database.dump is the one member staged on disk: a tar header needs its size before its data, and
        // pg_dump's output size is known only when it ends.
        recorded.append(
            try members.addStream(
                ArchiveLayout.databaseDump, from: try dump.source(), size: dump.size, permissions: 0o600, modified: name.date,
                blocks: true))
        Failpoint.hit("archive", holding: lease)
        try Task.checkCancellation()

        var uploads: BackupMetadata.UploadsSummary?
        if let directory = configuration.paths.uploadsDirectory {
            uploads = try members.addTree(ArchiveLayout.uploadsDirectory, from: directory, logger: logger)
        }
        try Task.checkCancellation()

        let optional: [(member: String, path: String?)] = [
            (ArchiveLayout.envBackup, configuration.paths.envFile),
            (ArchiveLayout.packageJSON, configuration.paths.appDirectory.map { "\($0)/package.json" }),
            (ArchiveLayout.packageLock, configuration.paths.appDirectory.map { "\($0)/package-lock.json" }),
        ]
        for (member, path) in optional {
            guard let path, let entry = try members.addFile(member, from: path, required: false) else {
                missing.append(member)
                logger.info("No \(member) to back up (\(path ?? "not configured")): recorded as missing")
                continue
            }
            recorded.append(entry)
        }

        var metadata = BackupMetadata(
            producer: "backup-job \(Self.version)", timestamp: name.timestamp, created: name.date,
            database: preflight.database, version: Self.applicationVersion(configuration.paths.appDirectory),
            nodeVersion: configuration.nodeVersion, pgDumpVersion: preflight.pgDumpVersion.description,
            serverVersion: preflight.serverVersion.description, hostname: ProcessInfo.processInfo.hostName,
            compression: configuration.compression, members: recorded, uploads: uploads, missing: missing,
            tables: tables)
        metadata.roles = rolesNamed(preflight)
        metadata.extensions = preflight.requirements.extensions
        metadata.databaseSize = preflight.requirements.size
        metadata.health = context.health
        metadata.deployment = context.deployment
        metadata.kind = configuration.kind
        metadata.label = configuration.label
        try archive.writeFile(
            "\(name.stem)/\(ArchiveLayout.metadata)", contents: Array(try ContingencyJSON.encoder().encode(metadata)))
        try archive.finish()
        logger.info(
            "Archive written from \(ByteFormat.string(inputBytes(metadata))) of data in \(DurationFormat.string(seconds: Date().timeIntervalSince(started)))")
        return metadata
    }

    private func inputBytes(_ metadata: BackupMetadata) -> Int64 {
        metadata.members.reduce(0) { $0 + $1.size } + (metadata.uploads?.bytes ?? 0)
    }

    /// The age recipients archives are encrypted for, or nil for none; bad keys are refused before any work.
    static func recipients(_ encryption: EncryptionSettings) throws -> [AgeRecipient]? {
        switch encryption {
        case .none: return nil
        case .recipients(let text):
            let recipients = try AgeRecipient.parseList(text)
            guard !recipients.isEmpty else { throw ContingencyError.configuration("AGE_RECIPIENTS holds no key") }
            return recipients
        case .passphrase(let passphrase): return [try AgeRecipient.passphrase(passphrase)]
        }
    }

    /// The `version` field of the application's package.json, if there is one.
    static func applicationVersion(_ appDirectory: String?) -> String? {
        guard let appDirectory,
            let data = FileManager.default.contents(atPath: "\(appDirectory)/package.json"),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return object["version"] as? String
    }
}

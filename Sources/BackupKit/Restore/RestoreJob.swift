import BackupCore
import BackupInterop
import BackupStorage
import Foundation
import Logging

/// What a finished restore did.
public struct RestoreResult: Sendable {
    public let backup: String
    public let duration: TimeInterval
    /// What was put back (RESTORE_PARTS); the other parts were left untouched.
    public var parts = RestoreParts.all
    /// What the restore replaced and kept aside (with `keepReplaced`): the state a rollback archives as its
    /// safety backup.
    public var replaced = ReplacedState()
}

/// Where a restore put what it replaced.
public struct ReplacedState: Sendable, Equatable {
    /// The previous database, renamed (`<db>_before_restore_<time>`).
    public var database: String?
    /// The previous uploads folder, moved aside.
    public var uploads: String?
    /// The previous .env (`<env>.before-restore`).
    public var env: String?
    public init(database: String? = nil, uploads: String? = nil, env: String? = nil) {
        self.database = database
        self.uploads = uploads
        self.env = env
    }
}

/// What a restore has replaced so far, readable while it runs and after it failed (a rollback whose start failed
/// after the swap still archives the broken state).
public final class ReplacedRecord: @unchecked Sendable {
    private let lock = NSLock()
    private var current = ReplacedState()
    public init() {}
    public var state: ReplacedState { lock.withLock { current } }
    func update(_ change: (inout ReplacedState) -> Void) { lock.withLock { change(&current) } }
}

/// Stops the application around the part of a restore that replaces live data, and starts it again whatever
/// happened. RESTORE's own default runs APP_STOP_COMMAND / APP_START_COMMAND; the rollback runner passes its
/// app control. `body` runs only once the app is stopped.
public protocol ApplicationGate: Sendable {
    func whileStopped(_ body: () async throws -> Void) async throws
}

/// APP_STOP_COMMAND / APP_START_COMMAND around the body.
struct CommandGate: ApplicationGate {
    let hooks: Hooks
    let logger: Logger
    func whileStopped(_ body: () async throws -> Void) async throws {
        try await hooks.whileApplicationStopped(logger: logger, body)
    }
}

/// The restore use case: verify the chosen backup completely, and only then restore the database, the uploads
/// and the .env. The executable and the tests call exactly this.
public struct RestoreJob: Sendable {
    public var configuration: RestoreConfiguration
    public let stores: Stores
    public let logger: Logger
    /// Stops and starts the app around the swap; nil: the APP_STOP_COMMAND / APP_START_COMMAND of the configuration.
    public var gate: (any ApplicationGate)?
    /// Keep what is replaced (the database, the uploads folder, the .env) aside instead of dropping it, and
    /// report where in `RestoreResult.replaced`: a rollback archives it as a safety backup.
    public var keepReplaced = false
    /// Told of each thing replaced as it happens.
    public var replacedRecord: ReplacedRecord?

    public init(configuration: RestoreConfiguration, stores: Stores, logger: Logger) {
        self.configuration = configuration
        self.stores = stores
        self.logger = logger
    }

    /// Runs one restore between RESTORE_PRE_COMMAND and RESTORE_POST_COMMAND.
    public func run() async throws -> RestoreResult {
        try await configuration.hooks.around(job: "restore", logger: logger, describe: {
            ["CONTINGENCY_BACKUP": $0.backup, "CONTINGENCY_RESTORE_PARTS": $0.parts.names.joined(separator: ",")]
        }) {
            try await restore()
        }
    }

    private func restore() async throws -> RestoreResult {
        let started = Date()
        logger.info("Starting restore...")
        let parts = configuration.parts
        try Self.checkDestinations(parts, configuration.paths)
        let tools = PostgresTools(binDirectory: configuration.pgBinDirectory)
        let lease = try await Lease.acquire(
            BackupJob.lockName, storage: stores.primary, job: "restore-job", ttl: configuration.store.lockTTLSeconds,
            timeout: configuration.store.lockTimeoutSeconds,
            onWait: { [logger] holder in logger.info("Waiting for the store lock held by \(holder)") })
        defer { lease.release() }
        // A restore that died (killed, or a trap) left its staged dump; only files no live job holds are removed.
        let stale = stores.staging.removeStaleTemporaries()
        if stale > 0 { logger.info("Removed \(stale) temporary file(s) left by an interrupted run") }

        let target: BackupTarget
        do {
            target = try chooseTarget()
        } catch let error as ContingencyError where configuration.backup != nil {
            throw error.concerningBackup()  // the named backup is missing or not genuine
        }
        logger.info("Restoring \(target.fileName)")
        if !parts.isAll {
            let left = parts.left.map(\.rawValue).joined(separator: " and ")
            let chosen = parts.names.joined(separator: ",")
            logger.info(
                "RESTORE_PARTS=\(chosen): restoring the \(parts) only; the \(left) left untouched (the whole archive is still verified first)")
        }
        try PreRestoreChecks.report(try await PreRestoreChecks(restore: self).run(target), for: target.fileName, logger: logger)

        // 1. Verify and stage, and meanwhile restore the database beside the live one: nothing live is touched
        // until every check has passed. Targets are resolved first: an UPLOADS_DIR that is a symlink is restored
        // where it points, the link is left alone.
        let id = UUID().uuidString.prefix(8).lowercased()
        let expectedDump = target.manifest?.metadata.members.first { $0.name == ArchiveLayout.databaseDump }
        let dump = try target.stagedDump(
            in: stores.staging, "restore", followed: parts.contains(.database) ? expectedDump : nil)
        let uploadsTarget =
            parts.contains(.uploads) ? configuration.paths.uploadsDirectory.map(FolderSwap.resolved) : nil
        let envTarget = parts.contains(.env) ? configuration.paths.envFile.map(FolderSwap.resolved) : nil
        let leftovers = [uploadsTarget, envTarget].compactMap { $0 }.reduce(0) { $0 + FolderSwap.removeLeftovers(of: $1) }
        if leftovers > 0 { logger.info("Removed \(leftovers) staged folder(s) or file(s) left by an interrupted restore") }
        if let uploadsTarget {
            try FileManager.default.createDirectory(
                atPath: (uploadsTarget as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        }
        let uploadsStaging = uploadsTarget.map { FolderSwap.stagingFolder(for: $0, id: id) }
        let envStaging = envTarget.map { FolderSwap.sibling($0, "restore-\(id)") }
        defer {
            if let uploadsStaging { FolderSwap.removeTree(uploadsStaging) }
            if let envStaging { try? FileManager.default.removeItem(atPath: envStaging) }
        }
        let parameters = try ConnectionParameters(configuration.database)
        let database = parameters.databaseName(environment: ProcessInfo.processInfo.environment) ?? "postgres"
        var restorer = DatabaseRestorer(
            configuration: configuration, parameters: parameters, database: database, tools: tools, logger: logger)
        restorer.keptForSafety = keepReplaced
        let (report, incoming) = try await verifyAndPrepare(
            target,
            into: .init(
                dump: dump, uploads: uploadsStaging, env: envStaging, expectedDump: expectedDump,
                uploadsOwner: uploadsTarget.flatMap(FolderSwap.owner(of:)), hashUploads: false),
            restorer: restorer, lease: lease, restoringDatabase: parts.contains(.database))
        if !parts.isAll {
            // Asked for by name, a part the backup does not hold is an error, found before anything is touched.
            let missing = [
                parts.contains(.uploads) && !report.hasUploads ? "no uploads" : nil,
                parts.contains(.env) && !report.hasEnv ? "no .env" : nil,
            ].compactMap { $0 }
            if !missing.isEmpty {
                if let incoming { restorer.discard(incoming) }
                throw ContingencyError.failed(
                    "\(target.fileName) holds \(missing.joined(separator: " and ")), which RESTORE_PARTS="
                        + "\(parts.names.joined(separator: ",")) asks for; nothing was restored",
                    hint: "choose another backup (LATEST_BACKUP=…) or other parts")
            }
        }

        // 2 to 4 happen with the application stopped (APP_STOP_COMMAND, or the rollback's app control), and it is
        // always started again. The slow part of the database's restore is done by now: what remains is a swap (or,
        // where none can be done, the in-place restore).
        var replaced = ReplacedState()
        // What the swaps moved aside and nothing keeps: removed once the application is back, not while it is
        // stopped (a large uploads tree takes its time to delete, a dropped database forces a checkpoint).
        var swappedOut: (database: DatabaseRestorer.Replaced?, uploads: String?) = (nil, nil)
        func removeSwappedOut() {
            if let old = swappedOut.database { restorer.dropReplaced(old) }
            if let old = swappedOut.uploads {
                FolderSwap.removeTree(old)
                logger.info("Removed the uploads as they were (\(old))")
            }
        }
        do {
            try await (gate ?? CommandGate(hooks: configuration.app, logger: logger)).whileStopped {
                // 2. The database. Fencing: live data changes only while the lease is ours.
                try lease.confirm()
                try Task.checkCancellation()
                if parts.contains(.database) {
                    let old = try await timed("Database \(database) restored") {
                        try await restorer.complete(incoming, dump: dump) {
                            let again = try await stageDumpAgain(target, replacing: dump)
                            try lease.confirm()
                            return again
                        }
                    }
                    if let old, !old.kept { swappedOut.database = old } else { replaced.database = old?.name }
                    replacedRecord?.update { [kept = replaced.database] in $0.database = kept }
                } else {
                    logger.info("The database \(database) is left as it is (RESTORE_PARTS)")
                }
                // 3 and 4. The files. From here on a signal no longer stops the restore (these steps do not wait on
                // anything that cancellation interrupts), so the database and the files end up from the same backup.
                do {
                    if let uploadsTarget, let uploadsStaging {
                        if report.hasUploads {
                            try lease.confirm()
                            try await timed("Uploads restored to \(uploadsTarget) (\(report.uploads?.files ?? 0) files, \(ByteFormat.string(report.uploads?.bytes ?? 0)))") {
                                // Inside a mount point the old files wait in a folder of the uploads themselves,
                                // where the application would see them: those go before it starts.
                                let inside = uploadsStaging.hasPrefix(uploadsTarget + "/")
                                let old = try FolderSwap.swap(
                                    staged: uploadsStaging, into: uploadsTarget, keepingOld: keepReplaced || !inside)
                                if keepReplaced { replaced.uploads = old } else { swappedOut.uploads = old }
                                replacedRecord?.update { [kept = replaced.uploads] in $0.uploads = kept }
                            }
                        } else {
                            logger.warning("The backup holds no uploads; \(uploadsTarget) is left as it is")
                        }
                    }
                    if let envTarget, let envStaging {
                        if report.hasEnv {
                            try lease.confirm()
                            try FolderSwap.replaceFile(envTarget, with: envStaging, keepingOldAs: envTarget + ".before-restore")
                            replaced.env = envTarget + ".before-restore"
                            replacedRecord?.update { $0.env = envTarget + ".before-restore" }
                            logger.info("Restored \(envTarget) (the previous one is kept as \(envTarget).before-restore)")
                        } else {
                            logger.warning("The backup holds no .env; \(envTarget) is left as it is")
                        }
                    }
                } catch let error as ContingencyError {
                    throw ContingencyError.failed(
                        parts.contains(.database)
                            ? "the database was restored from \(target.fileName) but the files were not all restored: \(error.message)"
                            : "the files were not all restored from \(target.fileName): \(error.message)",
                        hint: "fix the cause and run restore-job again with LATEST_BACKUP=\(target.fileName)")
                }
            }
        } catch {
            // A failed stop, swap or cancellation: the new database goes. (After a swap it bears the application's
            // name, so a failure in the files finds nothing left to drop under its old one.)
            if let incoming { restorer.discard(incoming) }
            removeSwappedOut()
            throw error
        }
        removeSwappedOut()

        let duration = Date().timeIntervalSince(started)
        let untouched =
            parts.isAll ? "" : " (restored: \(parts); left untouched: \(parts.left.map(\.rawValue).joined(separator: ", ")))"
        logger.info(
            "Restore completed successfully: \(target.fileName) in \(DurationFormat.string(seconds: duration))\(untouched)")
        return RestoreResult(backup: target.fileName, duration: duration, parts: parts, replaced: replaced)
    }

    /// A part chosen by name (RESTORE_PARTS not all) needs its destination configured: restoring "the uploads" with
    /// no UPLOADS_DIR would do nothing and say it succeeded.
    static func checkDestinations(_ parts: RestoreParts, _ paths: ApplicationPaths) throws {
        guard !parts.isAll else { return }
        if parts.contains(.uploads) && paths.uploadsDirectory == nil {
            throw ContingencyError.configuration(
                "RESTORE_PARTS names uploads but UPLOADS_DIR is not set", hint: "set UPLOADS_DIR")
        }
        if parts.contains(.env) && paths.envFile == nil {
            throw ContingencyError.configuration(
                "RESTORE_PARTS names env but ENV_FILE is not set", hint: "set ENV_FILE")
        }
    }

    /// `restore-job --check`: the pre-restore checks alone, all reported; nothing is read in full or touched.
    public func preRestoreChecks() async throws {
        let target = try chooseTarget()
        logger.info("Pre-restore checks for \(target.fileName)")
        try PreRestoreChecks.report(try await PreRestoreChecks(restore: self).run(target), for: target.fileName, logger: logger)
        logger.info("All pre-restore checks passed for \(target.fileName)")
    }

    /// Checks a backup without restoring anything: every byte hashed and compared, the dump listed by pg_restore.
    public func verify(_ backup: String?) async throws -> String {
        try await verify(try BackupLocator(configuration, stores: stores, logger: logger).locate(backup ?? configuration.backup))
    }

    private func verify(_ target: BackupTarget) async throws -> String {
        _ = try await check(target, into: .init(dump: try target.stagedDump(in: stores.staging, "verify"), uploads: nil, env: nil))
        logger.info("Backup \(target.fileName) verified")
        return target.fileName
    }

    /// The backup to restore: LATEST_BACKUP, else the newest trusted one (see `BackupLocator`).
    func chooseTarget() throws -> BackupTarget {
        try BackupLocator(configuration, stores: stores, logger: logger).locate(configuration.backup)
    }

    /// database.dump staged again from the archive, which is read and verified whole as the first time (the
    /// uploads not extracted), for a restore in place after the first staged copy (`replacing`, given back
    /// whole first: it takes no room beside the new one) was freed as it was loaded into a new database
    /// (`StagedDump.release`).
    private func stageDumpAgain(_ target: BackupTarget, replacing first: StagedDump) async throws -> StagedDump {
        first.release(0..<first.file.size)
        let dump = try target.stagedDump(in: stores.staging, "restore")
        _ = try await timed("Read and verified \(target.fileName) again") {
            try await check(target, into: .init(dump: dump, uploads: nil, env: nil, hashUploads: false))
        }
        return dump
    }

    /// `BackupCheck.verify` with this restore's configuration.
    func check(
        _ target: BackupTarget, into destinations: ArchiveVerifier.Destinations,
        databaseStarting: (ArchiveVerifier.Report) -> Void = { _ in }, databaseRead: (ArchiveVerifier.Report) -> Void = { _ in }
    ) async throws -> ArchiveVerifier.Report {
        try await BackupCheck.verify(
            target, configuration: configuration, into: destinations, logger: logger, databaseStarting: databaseStarting,
            databaseRead: databaseRead)
    }

    /// Verifies the whole archive and restores its database into a new one (`DatabaseRestorer.prepare`), the
    /// application's database untouched either way. With a manifest, the new database's restore starts while
    /// the rest of the archive (the uploads, mostly) is still read and checked; if that check then fails, the new
    /// database is dropped. A plain dump that comes after its globals.sql (as in archives made since this
    /// order) is restored as it is read, once globals.sql matches the manifest (the roles are created from it
    /// only then): the schema first, each table once its data is staged. Otherwise the restore starts once
    /// database.dump and globals.sql are read and match the manifest. Without a manifest (the runbook script's
    /// archives), it starts once everything has been checked.
    private func verifyAndPrepare(
        _ target: BackupTarget, into destinations: ArchiveVerifier.Destinations, restorer: DatabaseRestorer, lease: Lease,
        restoringDatabase: Bool
    ) async throws -> (ArchiveVerifier.Report, DatabaseRestorer.Incoming?) {
        let dump = destinations.dump
        guard restoringDatabase else {
            // The database is not restored: the archive is verified all the same (the dump listed by pg_restore),
            // and nothing is created in the cluster.
            do {
                return (try await timed("Verified") { try await check(target, into: destinations) }, nil)
            } catch {
                throw (error as? ContingencyError)?.concerningBackup() ?? error
            }
        }
        return try await withThrowingTaskGroup(of: DatabaseRestorer.Incoming?.self) { group in
            var started = false
            let report: ArchiveVerifier.Report
            do {
                report = try await timed("Verified") {
                    try await check(
                        target, into: destinations,
                        databaseStarting: { found in
                            guard dump.arrival != nil, let manifest = target.manifest, Self.globalsMatch(found, manifest.metadata) else { return }
                            started = true
                            logger.info("globals.sql matches the manifest: restoring database.dump into a new database as it is read (swapped in only once the whole archive is verified)")
                            let needed = manifest.metadata.roles
                            group.addTask { try await self.prepareDatabase(restorer, dump, globals: found.globals, needed: needed, lease: lease) }
                        },
                        databaseRead: { found in
                            guard !started, let manifest = target.manifest, Self.databaseMembersMatch(found, manifest.metadata) else { return }
                            started = true
                            logger.info("database.dump and globals.sql match the manifest: restoring them into a new database while the rest is verified")
                            let needed = manifest.metadata.roles
                            group.addTask { try await self.prepareDatabase(restorer, dump, globals: found.globals, needed: needed, lease: lease) }
                        })
                }
            } catch {
                group.cancelAll()
                while let result = await group.nextResult() {
                    if case .success(let incoming?) = result { restorer.discard(incoming) }
                }
                // The archive did not verify or could not be read: about this backup, not the system.
                throw (error as? ContingencyError)?.concerningBackup() ?? error
            }
            if started, let result = await group.nextResult() {
                return (report, try result.get())
            }
            let needed = target.manifest?.metadata.roles ?? report.metadata?.roles
            return (report, try await prepareDatabase(restorer, dump, globals: report.globals, needed: needed, lease: lease))
        }
    }

    /// The roles the dump needs, then the dump into a new database.
    private func prepareDatabase(
        _ restorer: DatabaseRestorer, _ dump: StagedDump, globals: [UInt8]?, needed: [String]?, lease: Lease
    ) async throws -> DatabaseRestorer.Incoming? {
        // Roles are created in the cluster, not in the application's database; still only under our lease.
        try lease.confirm()
        if let globals, !configuration.noOwner {
            let maintenance = try PostgresConnection(restorer.parameters.maintenance(besides: restorer.database))
            try RoleRestorer(connection: maintenance, logger: logger).restore(globals, needed: needed)
        }
        let started = Date()
        let incoming = try await restorer.prepare(dump)
        if let incoming {
            logger.info("Restored the dump into \(incoming.name) in \(DurationFormat.string(seconds: Date().timeIntervalSince(started)))")
        }
        return incoming
    }

    /// Whether the dump and the roles read so far are the ones the manifest records (a manifest lists globals.sql
    /// when the backup had it).
    static func databaseMembersMatch(_ found: ArchiveVerifier.Report, _ metadata: BackupMetadata) -> Bool {
        let recorded = { (name: String) in metadata.members.first { $0.name == name } }
        guard let dump = recorded(ArchiveLayout.databaseDump) else { return false }
        return dump.hasSameContent(as: found.members[dump.name]) && globalsMatch(found, metadata)
    }

    /// Whether globals.sql, read so far, is the one the manifest records (or both have none).
    static func globalsMatch(_ found: ArchiveVerifier.Report, _ metadata: BackupMetadata) -> Bool {
        found.members[ArchiveLayout.globals] == metadata.members.first { $0.name == ArchiveLayout.globals }
    }

    private func timed<T>(_ what: String, _ body: () async throws -> T) async throws -> T {
        let started = Date()
        let value = try await body()
        logger.info("\(what) in \(DurationFormat.string(seconds: Date().timeIntervalSince(started)))")
        return value
    }
}

extension RestoreJob {
    /// `restore-job --verify`: the named backup (LATEST_BACKUP), or every complete backup, newest first.
    /// Throws the first failure after checking them all.
    public func verifyAll() async throws {
        let locator = try BackupLocator(configuration, stores: stores, logger: logger)
        if let backup = configuration.backup {
            _ = try await verify(try locator.locate(backup))
            return
        }
        let entries = try locator.catalog.list()
        guard !entries.isEmpty else {
            throw ContingencyError.noBackupFound("no complete backup in \(configuration.store.description) (prefix \(configuration.store.prefix))")
        }
        var failures: [ContingencyError] = []
        for entry in entries {
            do {
                _ = try await verify(try locator.locate(entry.fileName))
            } catch let error as ContingencyError {
                logger.error("\(error)")
                failures.append(error)
            }
        }
        if let first = failures.first {
            // The first failure's kind decides the exit code (12 when a key is missing or wrong).
            throw first.prefixed("\(failures.count) of \(entries.count) backups failed verification; the first")
        }
        logger.info("All \(entries.count) backups verified")
    }
}

import BackupCore
import BackupInterop
import Foundation
import Logging

/// Restores the dump so that the application's database is never left half-restored.
///
/// The chosen way: restore into a new database, and swap it in by renaming both in one transaction once it is
/// complete (the old one kept as `<db>_before_restore_<time>` until the next successful backup, or dropped at
/// once with RESTORE_KEEP_OLD=false). A failure or a `kill -9` at any point before that commit leaves the
/// application's database exactly as it was; the unfinished new one is marked and dropped by the next
/// restore. This also removes what a backup does not hold (tables a later migration added). It takes two
/// steps: `prepare` makes the new database (the slow part, while the application still runs), `complete` swaps
/// it in (with the application stopped).
///
/// Where a swap cannot be done (other sessions stay connected because RESTORE_TERMINATE_CONNECTIONS is off,
/// or the restoring role may not create databases), the restore runs in place as one transaction
/// (`pg_restore --clean --single-transaction`): all or nothing too, but it must take every table's lock.
struct DatabaseRestorer {
    let configuration: RestoreConfiguration
    let parameters: ConnectionParameters
    let database: String
    let tools: PostgresTools
    let logger: Logger

    /// The marks on the databases a restore makes; they name the application's database, so that leftovers
    /// are matched exactly, whatever the names (which PostgreSQL may have had to shorten).
    static func incomingComment(_ database: String) -> String { "contingency: a restore in progress for \(database)" }
    static func previousComment(_ database: String) -> String { "contingency: \(database) as it was before a restore" }
    /// A database a rollback replaced, kept until its safety backup holds it: no backup's clean-up drops it.
    static func safetyComment(_ database: String) -> String {
        "contingency: \(database) replaced by a rollback, kept for its safety backup"
    }
    /// Mark the replaced database with `safetyComment` instead of `previousComment`.
    var keptForSafety = false

    /// A database restored beside the application's, complete but not yet swapped in.
    struct Incoming: Sendable {
        let name: String
    }

    /// The slow part, which leaves the application's database alone and so may run while the application is up
    /// (and while the rest of the archive is still being verified): the dump restored into a new database, to be
    /// swapped in by `complete`. Returns nil when this role cannot swap (it may not create a database owned like
    /// the current one): `complete` then restores in place.
    func prepare(_ dump: StagedDump) async throws -> Incoming? {
        let maintenance = try PostgresConnection(parameters.maintenance(besides: database))
        try Self.dropMarked(Self.incomingComment(database), "left by a restore that did not finish", on: maintenance, logger: logger)
        let existing = try maintenance.query(
            "SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database WHERE datname = $1",
            [database])
        // A swap needs to create a database owned like the current one, and to rename the current one.
        let owner = existing.rowCount > 0 ? existing.value(0, 0) : nil
        let mayCreate = try maintenance.query(
            "SELECT rolsuper OR (rolcreatedb AND ($1::text IS NULL OR pg_has_role(current_user, $1::text, 'MEMBER'))) FROM pg_roles WHERE rolname = current_user",
            [owner]
        ).value(0, 0) == "t"
        guard mayCreate else {
            logger.info("\(maintenance.user) may not create databases owned by \(owner ?? "it"): \(database) will be restored in place, in one transaction")
            return nil
        }

        let incoming = Self.truncated(database, suffix: "_restore_\(UUID().uuidString.prefix(8).lowercased())")
        var create = "CREATE DATABASE \(Self.quote(incoming)) TEMPLATE template0"
        if existing.rowCount > 0, let owner, let encoding = existing.value(0, 1), let collate = existing.value(0, 2),
            let ctype = existing.value(0, 3)
        {
            create += " OWNER \(Self.quote(owner)) ENCODING \(Self.literal(encoding)) LC_COLLATE \(Self.literal(collate)) LC_CTYPE \(Self.literal(ctype))"
        }
        try maintenance.query(create)
        do {
            try maintenance.query("COMMENT ON DATABASE \(Self.quote(incoming)) IS \(Self.literal(Self.incomingComment(database)))")
            Failpoint.hit("restore-database")
            // Nobody uses the new database and a failure drops it: no transaction is needed, so pg_restore may
            // load tables and build indexes in parallel (`jobs`).
            let settings = try sessionSettings(on: maintenance, jobs: jobs)
            if let arrival = dump.arrival {
                // The dump may still be arriving: each part is restored as soon as it is on disk.
                do {
                    var restore = StreamedDumpRestore(
                        tools: tools, dump: dump, arrival: arrival, connection: parameters, database: incoming,
                        applicationName: "contingency-restore", ownership: !configuration.noOwner, settings: settings,
                        jobs: jobs, logger: logger)
                    restore.splitSize = configuration.splitTableSize
                    try await restore.run()
                } catch let error as ContingencyError where !error.isCancellation {
                    throw ContingencyError.failed("\(error.message); \(database) was not touched", hint: error.hint)
                }
            } else {
                let outcome = try await tools.restore(
                    try dump.input(), connection: parameters, database: incoming, applicationName: "contingency-restore",
                    ownership: !configuration.noOwner, mode: .parallel(jobs: jobs), settings: settings)
                guard outcome.succeeded else {
                    throw ContingencyError.failed(
                        "pg_restore into a new database failed (\(outcome.status)); \(database) was not touched: \(outcome.standardError)")
                }
            }
        } catch {
            _ = try? maintenance.query("DROP DATABASE IF EXISTS \(Self.quote(incoming)) WITH (FORCE)")
            throw error
        }
        return Incoming(name: incoming)
    }

    /// How many connections a restore into a new database uses at once: the server's processors, of which this
    /// machine's count is the guess, at least 2, since the server is usually no smaller than the job's container.
    private var jobs: Int { max(2, ProcessInfo.processInfo.activeProcessorCount) }

    /// The quick part, with the application stopped: `incoming` swapped in for the application's database; or,
    /// without one or when other sessions stay connected (RESTORE_TERMINATE_CONNECTIONS off), the dump restored
    /// in place in one transaction. The caller discards `incoming` if this throws.
    /// Returns the name the previous database went under, when there was one and it was swapped out: kept
    /// (RESTORE_KEEP_OLD, or the rollback's safety copy), or to be dropped by the caller with `dropReplaced` once
    /// the application is back: DROP DATABASE forces a checkpoint of the whole server, freshly restored pages
    /// included, which the application need not wait for.
    /// `restage` stages the dump again, read and verified from the archive, for a restore in place when the
    /// restore into the new database freed some of it (`StagedDump.isWhole`).
    @discardableResult
    func complete(
        _ incoming: Incoming?, dump: StagedDump, restage: () async throws -> StagedDump
    ) async throws -> Replaced? {
        let maintenance = try PostgresConnection(parameters.maintenance(besides: database))
        let exists = try maintenance.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]).rowCount > 0
        var connected = 0
        if exists { connected = try sessions(on: maintenance) }
        if connected > 0 && configuration.terminateConnections {
            do {
                let ended = try terminateSessions(on: maintenance)
                logger.info("Ended \(ended) other session(s) on \(database) (RESTORE_TERMINATE_CONNECTIONS=true)")
                connected = 0
            } catch {
                logger.warning("Could not end the other sessions on \(database): \(error)")
            }
        }
        guard let incoming, connected == 0 else {
            if let incoming {
                logger.info("Restoring \(database) in place, in one transaction (\(connected) other session(s) connected and RESTORE_TERMINATE_CONNECTIONS is off)")
                discard(incoming)
            }
            var whole = dump
            if !dump.isWhole {
                logger.info("Reading database.dump from the archive again: its staged copy was freed as the new database was loaded")
                whole = try await restage()
            }
            try await restoreInPlace(whole, exists: exists, on: maintenance)
            return nil
        }
        Failpoint.hit("restore-swap")
        return try swapIn(incoming.name, replacing: exists, on: maintenance)
    }

    /// The application's database as it was, renamed away by the swap.
    struct Replaced: Equatable {
        let name: String
        /// Kept until the next successful backup; otherwise the caller drops it (`dropReplaced`).
        let kept: Bool
    }

    /// Drops the database a swap replaced and does not keep (RESTORE_KEEP_OLD=false). The restore is done by
    /// then: a failure is only a warning (the next successful backup drops what is left, as it drops kept ones).
    func dropReplaced(_ replaced: Replaced) {
        guard !replaced.kept else { return }
        do {
            let maintenance = try PostgresConnection(parameters.maintenance(besides: database))
            try maintenance.query("DROP DATABASE IF EXISTS \(Self.quote(replaced.name)) WITH (FORCE)")
            logger.info("Dropped the database as it was, \(replaced.name) (RESTORE_KEEP_OLD=false)")
        } catch {
            logger.warning("The restore is done, but \(replaced.name) could not be dropped (the next successful backup drops it): \(error)")
        }
    }

    /// Drops a prepared database that will not be swapped in.
    func discard(_ incoming: Incoming) {
        do {
            let maintenance = try PostgresConnection(parameters.maintenance(besides: database))
            try maintenance.query("DROP DATABASE IF EXISTS \(Self.quote(incoming.name)) WITH (FORCE)")
        } catch {
            logger.warning("\(incoming.name) could not be dropped (the next restore drops it): \(error)")
        }
    }

    /// What pg_restore's sessions set: the TOAST compression chosen by RESTORE_TOAST_COMPRESSION, when the
    /// server offers it (PostgreSQL 14+; lz4 only when built with it).
    private func sessionSettings(on maintenance: PostgresConnection, jobs: Int) throws -> [String: String] {
        var settings = try Self.indexBuildSettings(on: maintenance, jobs: jobs)
        guard configuration.toastCompression != .server else { return settings }
        let wanted = configuration.toastCompression.rawValue
        let offered = try maintenance.query(
            "SELECT $1 = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'", [wanted])
        guard offered.value(0, 0) == "t" else {
            logger.info("The server offers no \(wanted) TOAST compression (RESTORE_TOAST_COMPRESSION): restoring with its own default")
            return settings
        }
        settings["default_toast_compression"] = wanted
        return settings
    }

    /// The restore's own sessions build indexes with the server's parallel maintenance workers, as many as it
    /// allows (`max_parallel_workers`) up to `jobs`, and, while maintenance_work_mem is PostgreSQL's default
    /// (64 MB, set by nobody), with `indexBuildMemory`: a parallel build gets one worker per 32 MB of it at most,
    /// so the default allows a single one, and a sort that fits in memory needs no merge passes. A value the
    /// operator set (server, database, role or PGOPTIONS) is kept: it is how a small server is protected, with
    /// up to `jobs` index builds at once. Only the restore's sessions get these: the server is not changed.
    static func indexBuildSettings(on connection: PostgresConnection, jobs: Int) throws -> [String: String] {
        let current = try connection.query(
            """
            SELECT current_setting('max_parallel_workers')::int, pg_size_bytes(current_setting('maintenance_work_mem')),
                   source FROM pg_settings WHERE name = 'maintenance_work_mem'
            """)
        let allowed = Int(current.value(0, 0) ?? "") ?? 0
        let memory = Int64(current.value(0, 1) ?? "") ?? 0
        var settings = ["max_parallel_maintenance_workers": String(max(0, min(allowed, jobs)))]
        if current.value(0, 2) == "default" && memory < indexBuildMemory {
            settings["maintenance_work_mem"] = "\(indexBuildMemory >> 10)kB"
        }
        return settings
    }

    /// maintenance_work_mem for the restore's index builds: at most `jobs` of them run at once.
    static let indexBuildMemory: Int64 = 256 << 20

    /// Renames the old database away and the new one into its name, in one transaction. Sessions that
    /// reconnect meanwhile are ended again (a few attempts) when RESTORE_TERMINATE_CONNECTIONS is on.
    private func swapIn(_ incoming: String, replacing exists: Bool, on maintenance: PostgresConnection) throws -> Replaced? {
        let stamp = BackupName.formatTimestamp(Date()).replacingOccurrences(of: "-", with: "").replacingOccurrences(of: "_", with: "")
        // Two restores in the same second (a retried rollback) must not collide on the kept copy's name.
        var previous = Self.truncated(database, suffix: "_before_restore_\(stamp)")
        var counter = 1
        while try maintenance.query("SELECT 1 FROM pg_database WHERE datname = $1", [previous]).value(0, 0) != nil {
            counter += 1
            previous = Self.truncated(database, suffix: "_before_restore_\(stamp)_\(counter)")
        }
        for attempt in 1...5 {
            if exists && configuration.terminateConnections { _ = try terminateSessions(on: maintenance) }
            do {
                try maintenance.query("BEGIN")
                if exists {
                    try maintenance.query("ALTER DATABASE \(Self.quote(database)) RENAME TO \(Self.quote(previous))")
                    let comment = keptForSafety ? Self.safetyComment(database) : Self.previousComment(database)
                    try maintenance.query("COMMENT ON DATABASE \(Self.quote(previous)) IS \(Self.literal(comment))")
                }
                try maintenance.query("ALTER DATABASE \(Self.quote(incoming)) RENAME TO \(Self.quote(database))")
                try maintenance.query("COMMENT ON DATABASE \(Self.quote(database)) IS NULL")
                try maintenance.query("COMMIT")
                break
            } catch let error as ContingencyError {
                _ = try? maintenance.query("ROLLBACK")
                guard attempt < 5 && configuration.terminateConnections else {
                    throw ContingencyError.failed(
                        "the restored database could not be swapped in for \(database): \(error.message); \(database) was not touched",
                        hint: "stop the application first, or set RESTORE_TERMINATE_CONNECTIONS=true")
                }
            }
        }
        guard exists else { return nil }
        let kept = configuration.keepOld || keptForSafety
        if kept {
            logger.info("The database as it was is kept as \(previous) until the next successful backup (RESTORE_KEEP_OLD=false drops it once the application is back)")
        }
        return Replaced(name: previous, kept: kept)
    }

    /// The fallback: `pg_restore --clean` into the live database, in one transaction, with a watchdog that
    /// cancels it if another session's lock holds it up for longer than RESTORE_LOCK_TIMEOUT.
    private func restoreInPlace(_ dump: StagedDump, exists: Bool, on maintenance: PostgresConnection) async throws {
        let settings = try sessionSettings(on: maintenance, jobs: jobs)
        if !exists {
            logger.info("Database \(database) does not exist: creating it")
            try maintenance.query("CREATE DATABASE \(Self.quote(database))")
        }
        let applicationName = "contingency-restore-\(UUID().uuidString.prefix(8).lowercased())"
        let watchdog = LockWatchdog(
            connection: parameters.with("dbname", database), applicationName: applicationName, timeout: configuration.lockTimeout)
        let watching = Task { try await watchdog.watch() }
        let outcome = try await tools.restore(
            try dump.input(), connection: parameters, database: database, applicationName: applicationName,
            ownership: !configuration.noOwner, settings: settings)
        watching.cancel()
        guard outcome.succeeded else {
            if let blockers = try? await watching.value {
                throw ContingencyError.failed(
                    "pg_restore into \(database) waited more than RESTORE_LOCK_TIMEOUT (\(configuration.lockTimeout)s) for a table held by \(blockers) and was cancelled; it ran in one transaction, so the database is unchanged",
                    hint: "stop the application first, or set RESTORE_TERMINATE_CONNECTIONS=true to end other sessions")
            }
            throw ContingencyError.failed(
                "pg_restore into \(database) failed (\(outcome.status)); it ran in one transaction, so the database is unchanged: \(outcome.standardError)")
        }
    }

    /// The sessions that keep the database from being renamed: all but this one and autovacuum's workers, which
    /// the server itself stops for a rename or a drop (`CountOtherDBBackends`). Counting those made a restore
    /// that followed a large write fall back to the in-place restore whenever autovacuum was at work on it.
    static let otherSessions = """
        FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type <> 'autovacuum worker'
        """

    private func sessions(on maintenance: PostgresConnection) throws -> Int {
        Int(try maintenance.query("SELECT count(*) \(Self.otherSessions)", [database]).value(0, 0) ?? "0") ?? 0
    }

    private func terminateSessions(on maintenance: PostgresConnection) throws -> Int {
        try maintenance.query("SELECT pg_terminate_backend(pid) \(Self.otherSessions)", [database]).rowCount
    }

    /// Drops the databases bearing exactly `comment`.
    static func dropMarked(_ comment: String, _ why: String, on maintenance: PostgresConnection, logger: Logger) throws {
        let marked = try maintenance.query(
            "SELECT datname FROM pg_database WHERE shobj_description(oid, 'pg_database') = $1", [comment])
        for row in 0..<marked.rowCount {
            guard let name = marked.value(row, 0) else { continue }
            try maintenance.query("DROP DATABASE IF EXISTS \(quote(name)) WITH (FORCE)")
            logger.info("Dropped \(name), \(why)")
        }
    }

    /// `<database><suffix>` within PostgreSQL's 63-byte names (the database name is shortened, never the suffix).
    static func truncated(_ database: String, suffix: String) -> String {
        var base = database
        while base.utf8.count + suffix.utf8.count > 63 { base.removeLast() }
        return base + suffix
    }

    static func quote(_ name: String) -> String { SQL.identifier(name) }

    static func literal(_ text: String) -> String { SQL.literal(text) }

    /// A LIKE pattern for names starting with `prefix`, its `_`, `%` and `\` taken literally.
    static func likePrefix(_ prefix: String) -> String {
        prefix.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "_", with: "\\_")
            .replacingOccurrences(of: "%", with: "\\%") + "%"
    }

    /// After a successful backup: drops the databases kept from before earlier restores.
    /// Drops `kept`, a database a rollback replaced, once its safety backup holds it; only if it still bears the
    /// safety mark for `database` (a name alone is not trusted to drop a database).
    static func dropKeptForSafety(_ kept: String, of database: String, parameters: ConnectionParameters, logger: Logger) throws {
        let maintenance = try PostgresConnection(parameters.maintenance(besides: database))
        let marked = try maintenance.query(
            "SELECT 1 FROM pg_database d WHERE d.datname = $1 AND shobj_description(d.oid, 'pg_database') = $2",
            [kept, safetyComment(database)])
        guard marked.rowCount > 0 else { return }
        try maintenance.query("DROP DATABASE IF EXISTS \(quote(kept)) WITH (FORCE)")
        logger.info("Dropped \(kept): its safety backup holds it")
    }

    static func dropPrevious(of database: String, parameters: ConnectionParameters, logger: Logger) throws {
        let maintenance = try PostgresConnection(parameters.maintenance(besides: database))
        try dropMarked(previousComment(database), "kept from before a restore, now that a newer backup exists", on: maintenance, logger: logger)
    }
}

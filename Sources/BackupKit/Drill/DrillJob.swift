import BackupCore
import BackupInterop
import BackupStorage
import Foundation
import Logging

/// What a drill found.
public struct DrillResult: Sendable {
    public let backup: String
    public let verification: Manifest.Verification
}

/// The restore drill: restores a backup into a scratch database and a scratch folder, checks what came back
/// against what the backup recorded (tables, row counts, files, bytes), drops the scratch copies, and records
/// the outcome in the backup's manifest (`verified`) and in the store's metrics. Nothing live is touched.
public struct DrillJob: Sendable {
    public let configuration: DrillConfiguration
    public let storage: VolumeStorage
    public let logger: Logger
    /// Marks the scratch databases this job creates, so it never drops a database it did not make.
    static let scratchComment = "contingency restore drill scratch database"

    public init(configuration: DrillConfiguration, storage: VolumeStorage, logger: Logger) {
        self.configuration = configuration
        self.storage = storage
        self.logger = logger
    }

    /// Drills `backup` (a name or path; nil: the newest complete backup). Throws when the drill fails, after
    /// recording the failure.
    @discardableResult
    public func run(_ backup: String?) async throws -> DrillResult {
        let started = Date()
        var restore = RestoreJob(configuration: configuration.restore, storage: storage, logger: logger)
        restore.configuration.backup = backup ?? configuration.restore.backup
        let target = try restore.chooseTarget()
        guard target.manifest != nil else {
            throw ContingencyError.failed(
                "\(target.fileName) has no manifest: a drill checks a complete backup against what it recorded",
                hint: "drill a backup listed by restore-job --verify")
        }
        logger.info("Starting restore drill of \(target.fileName)")
        let outcome: Result<String, ContingencyError>
        do {
            outcome = .success(try await drill(target))
        } catch let error as ContingencyError {
            if error.isCancellation { throw error }
            outcome = .failure(error)
        }
        let verification: Manifest.Verification
        switch outcome {
        case .success(let figures):
            verification = .init(at: Date(), ok: true, detail: figures)
        case .failure(let error):
            verification = .init(at: Date(), ok: false, detail: error.message)
        }
        try record(verification, for: target.fileName, duration: Date().timeIntervalSince(started))
        if case .failure(let error) = outcome {
            throw ContingencyError.failed("restore drill of \(target.fileName) failed: \(error.message)", hint: error.hint)
        }
        logger.info("Restore drill passed: \(target.fileName) (\(verification.detail)) in \(DurationFormat.string(seconds: Date().timeIntervalSince(started)))")
        return DrillResult(backup: target.fileName, verification: verification)
    }

    private func drill(_ target: RestoreJob.Target) async throws -> String {
        let tools = PostgresTools(binDirectory: configuration.restore.pgBinDirectory)
        let id = UUID().uuidString.prefix(8).lowercased()
        let dump = try target.stagedDump(in: storage, "drill")
        let scratchFolder = "\(storage.root)/.contingency/tmp/drill-\(id)"
        defer { try? FileManager.default.removeItem(atPath: scratchFolder) }
        let report = try await RestoreJob(configuration: configuration.restore, storage: storage, logger: logger)
            .check(target, into: .init(dump: dump, uploads: scratchFolder, env: nil))
        guard let metadata = target.manifest?.metadata else { throw ContingencyError.failed("no metadata") }

        let scratch = try ConnectionParameters(configuration.scratch)
        let database = try scratchDatabaseName(scratch)
        try createScratchDatabase(database, on: scratch)
        do {
            let outcome = try await tools.restore(
                try dump.input(), connection: scratch, database: database, applicationName: "contingency-drill",
                ownership: false)
            guard outcome.succeeded else {
                throw ContingencyError.failed("pg_restore into the scratch database \(database) failed: \(outcome.standardError)")
            }
            let counts = try PostgresConnection(scratch.with("dbname", database)).countRows()
            let files = report.hasUploads ? try Self.figures(of: scratchFolder) : nil
            let figures = try compare(counts: counts, files: files, with: metadata)
            try dropScratchDatabase(database, on: scratch)
            return figures
        } catch {
            try? dropScratchDatabase(database, on: scratch)
            throw error
        }
    }

    /// Every recorded table is there with the same number of rows; the files and bytes are the recorded ones.
    func compare(counts: [String: Int64], files: BackupMetadata.UploadsSummary?, with metadata: BackupMetadata) throws -> String {
        var problems: [String] = []
        if let recorded = metadata.tables {
            for (table, rows) in recorded.sorted(by: { $0.key < $1.key }) {
                guard let restored = counts[table] else {
                    problems.append("table \(table) is missing")
                    continue
                }
                if restored != rows { problems.append("table \(table) has \(restored) rows, \(rows) recorded") }
            }
        }
        if let expected = metadata.uploads, files?.files != expected.files || files?.bytes != expected.bytes {
            problems.append(
                "uploads: \(files?.files ?? 0) files and \(files?.bytes ?? 0) bytes restored, \(expected.files) and \(expected.bytes) recorded")
        }
        guard problems.isEmpty else {
            throw ContingencyError.failed(problems.prefix(5).joined(separator: "; ") + (problems.count > 5 ? "; …" : ""))
        }
        let rows = counts.values.reduce(0, +)
        return "\(counts.count) tables, \(rows) rows, \(files?.files ?? 0) files, \(ByteFormat.string(files?.bytes ?? 0))"
    }

    /// Files and bytes actually on disk under `folder` (walked by libarchive, names byte for byte).
    static func figures(of folder: String) throws -> BackupMetadata.UploadsSummary {
        let tree = try DiskTreeReader(root: folder)
        let entry = ArchiveEntry()
        var files = 0
        var directories = 0
        var bytes: Int64 = 0
        while try tree.next(into: entry) {
            switch entry.kind {
            case .file:
                files += 1
                bytes += entry.size
            case .directory:
                directories += 1
            default:
                break
            }
        }
        return .init(files: files, directories: max(0, directories - 1), bytes: bytes, sha256: "")
    }

    private func scratchDatabaseName(_ scratch: ConnectionParameters) throws -> String {
        guard let name = scratch.values["dbname"], !name.isEmpty else {
            throw ContingencyError.configuration("DRILL_DATABASE_URL names no database", hint: "end it with /<scratch database name>")
        }
        let application = try ConnectionParameters(configuration.restore.database)
        let environment = ProcessInfo.processInfo.environment
        let same = { (key: String, variable: String, fallback: String) in
            (scratch.values[key] ?? environment[variable] ?? fallback) == (application.values[key] ?? environment[variable] ?? fallback)
        }
        if name == application.databaseName(environment: environment), same("host", "PGHOST", "localhost"), same("port", "PGPORT", "5432") {
            throw ContingencyError.configuration(
                "DRILL_DATABASE_URL points at the application's own database \(name)",
                hint: "name a scratch database: the drill drops it when it is done")
        }
        return name
    }

    private func createScratchDatabase(_ name: String, on scratch: ConnectionParameters) throws {
        let maintenance = try PostgresConnection(scratch.with("dbname", "postgres"))
        let existing = try maintenance.query(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", [name])
        if existing.rowCount > 0 {
            guard existing.value(0, 0) == Self.scratchComment else {
                throw ContingencyError.failed(
                    "the drill's scratch database \(name) already exists and was not made by a drill",
                    hint: "name a database that does not exist in DRILL_DATABASE_URL; the drill creates and drops it")
            }
            try dropScratchDatabase(name, on: scratch)
        }
        try maintenance.query("CREATE DATABASE \(RestoreJob.quoteIdentifier(name))")
        try maintenance.query("COMMENT ON DATABASE \(RestoreJob.quoteIdentifier(name)) IS '\(Self.scratchComment)'")
    }

    private func dropScratchDatabase(_ name: String, on scratch: ConnectionParameters) throws {
        let maintenance = try PostgresConnection(scratch.with("dbname", "postgres"))
        try maintenance.query("DROP DATABASE IF EXISTS \(RestoreJob.quoteIdentifier(name)) WITH (FORCE)")
    }

    /// Writes the outcome into the manifest (compare-and-swap, so a concurrent update is not lost) and the
    /// drill's metrics.
    private func record(_ verification: Manifest.Verification, for fileName: String, duration: TimeInterval) throws {
        let key = fileName + ".json"
        for _ in 0..<5 {
            guard let current = try storage.read(key: key),
                var manifest = try? ContingencyJSON.decoder().decode(Manifest.self, from: Data(current.data))
            else { break }
            manifest.verified = verification
            if try storage.replace(key: key, data: Array(try ContingencyJSON.encoder().encode(manifest)), ifMatch: current.etag) != nil {
                break
            }
        }
        let catalog = try BackupCatalog(storage: storage, prefix: configuration.restore.store.prefix).list()
        let lastVerified = catalog.compactMap { $0.manifest.verified }.filter(\.ok).map(\.at).max()
        try MetricsFile(
            job: "drill",
            gauges: [
                .init(
                    "backup_last_verified_timestamp_seconds", "Time of the newest restore drill that passed, in seconds since the epoch.",
                    lastVerified?.timeIntervalSince1970.rounded() ?? 0),
                .init("backup_drill_success", "Whether the last restore drill passed (1) or failed (0).", verification.ok ? 1 : 0),
                .init("backup_drill_duration_seconds", "Duration of the last restore drill.", duration.rounded()),
                .init("backup_drill_timestamp_seconds", "Time of the last restore drill.", verification.at.timeIntervalSince1970.rounded()),
            ]
        ).publish(to: storage)
    }
}

extension DrillJob {
    /// `restore-job --drill --loop`: drills the newest backup at every fire time of DRILL_SCHEDULE (a failed
    /// drill is recorded and logged; the loop goes on).
    public func runOnSchedule() async throws {
        try await ScheduledLoop.run(configuration.schedule, what: "restore drill", logger: logger) {
            try await run(nil)
        }
    }
}

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
    public let stores: Stores
    public let logger: Logger

    public init(configuration: DrillConfiguration, stores: Stores, logger: Logger) {
        self.configuration = configuration
        self.stores = stores
        self.logger = logger
    }

    /// Drills `backup` (a name or path; nil: LATEST_BACKUP, else the newest complete backup; `newest` ignores
    /// LATEST_BACKUP). What is not the backup's fault (configuration, keys, the scratch server, another drill
    /// running) fails before the drill and is not recorded against the backup; the drill's own outcome is
    /// recorded in the manifest and, either way, in the drill metrics.
    @discardableResult
    public func run(_ backup: String?, newest: Bool = false) async throws -> DrillResult {
        let started = Date()
        do {
            let target = try BackupLocator(configuration.restore, stores: stores, logger: logger)
                .locate(newest ? nil : backup ?? configuration.restore.backup)
            guard target.manifest != nil else {
                throw ContingencyError.failed(
                    "\(target.fileName) has no manifest: a drill checks a complete backup against what it recorded",
                    hint: "drill a backup listed by restore-job --verify")
            }
            if target.isEncrypted { _ = try KeyLoader.decryptionIdentities(configuration.restore, for: target) }
            let scratch = try ScratchDatabase(configuration: configuration, logger: logger)
            logger.info("Starting restore drill of \(target.fileName) (scratch database \(scratch.name))")

            let verification: Manifest.Verification
            do {
                verification = .init(at: Date(), ok: true, detail: try await drill(target, scratch: scratch))
            } catch let error as ContingencyError where !error.isCancellation && error.exitStatus != .keyError {
                let failure = Manifest.Verification(at: Date(), ok: false, detail: Self.summary(of: error))
                try await record(failure, for: target, duration: Date().timeIntervalSince(started))
                throw ContingencyError.failed("restore drill of \(target.fileName) failed: \(error.message)", hint: error.hint)
            }
            try await record(verification, for: target, duration: Date().timeIntervalSince(started))
            logger.info("Restore drill passed: \(target.fileName) (\(verification.detail)) in \(DurationFormat.string(seconds: Date().timeIntervalSince(started)))")
            return DrillResult(backup: target.fileName, verification: verification)
        } catch let error as ContingencyError where !error.isCancellation && !error.message.hasPrefix("restore drill of ") {
            await publishMetrics(ok: false, at: Date(), duration: Date().timeIntervalSince(started))
            throw error
        }
    }

    /// What goes into the manifest, which is not encrypted: the first line of the reason, short, so that a
    /// pg_restore error never copies row values (its DETAIL lines) there.
    static func summary(of error: ContingencyError) -> String {
        let first = error.message.split(separator: "\n").first.map(String.init) ?? error.message
        return first.count > 300 ? String(first.prefix(300)) + "…" : first
    }

    private func drill(_ target: BackupTarget, scratch: ScratchDatabase) async throws -> String {
        let tools = PostgresTools(binDirectory: configuration.restore.pgBinDirectory)
        let dump = try target.stagedDump(in: stores.staging, "drill")
        // An encrypted backup's files are counted as they stream by, never written out in plaintext; a plain
        // one is extracted into a scratch folder (held in use, removed after, or by a later run if this dies).
        let folder = target.isEncrypted ? nil : try stores.staging.makeTemporaryFolder("drill")
        let report = try await BackupCheck.verify(
            target, configuration: configuration.restore, into: .init(dump: dump, uploads: folder?.path, env: nil), logger: logger)
        guard let metadata = target.manifest?.metadata else { throw ContingencyError.failed("no metadata") }

        try scratch.create()
        do {
            let outcome = try await tools.restore(
                try dump.input(), connection: scratch.parameters, database: scratch.name,
                applicationName: "contingency-drill", ownership: false)
            guard outcome.succeeded else {
                throw ContingencyError.failed("pg_restore into the scratch database \(scratch.name) failed: \(outcome.standardError)")
            }
            let counts = try PostgresConnection(scratch.parameters.with("dbname", scratch.name)).countRows()
            let files = try folder.map { try Self.figures(of: $0.path) } ?? report.uploads
            let figures = try compare(counts: counts, files: report.hasUploads ? files : nil, with: metadata)
            try scratch.drop()
            return figures
        } catch {
            try? scratch.drop()
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

    /// Writes the outcome into the backup's manifest (compare-and-swap, so a concurrent update is not lost),
    /// when the backup is in one of the stores (not a path elsewhere), and publishes the drill metrics.
    private func record(_ verification: Manifest.Verification, for target: BackupTarget, duration: TimeInterval)
        async throws
    {
        if stores.all.contains(where: { $0.description == target.storage.description }) {
            let storage = target.storage
            let key = target.fileName + ".json"
            var saved = false
            for _ in 0..<5 where !saved {
                guard let current = try storage.read(key: key),
                    var manifest = try? ContingencyJSON.decoder().decode(Manifest.self, from: Data(current.data))
                else { break }
                manifest.verified = verification
                saved = try storage.replace(
                    key: key, data: Array(try ContingencyJSON.encoder().encode(manifest)), ifMatch: current.etag) != nil
            }
            if !saved { logger.warning("The drill's outcome could not be written into \(key) (it changed or vanished meanwhile)") }
        }
        await publishMetrics(ok: verification.ok, at: verification.at, duration: duration)
    }

    /// `.contingency/metrics/drill.prom` (and the Pushgateway): the drill's outcome, and the newest passing drill
    /// of any trusted backup, which the sidecar computes from the store too but a Pushgateway user has only from
    /// here. A failure to publish is a warning (`JobMetrics`): the drill's outcome is in the manifest already.
    private func publishMetrics(ok: Bool, at: Date, duration: TimeInterval) async {
        var families: [MetricFamily] = []
        do {
            let (configuration, stores, logger) = (configuration, stores, logger)
            let catalog = try await Blocking.run {
                try BackupCatalog(
                    storages: stores.all, prefix: configuration.restore.store.prefix, logger: logger,
                    authenticator: try KeyLoader.authenticator(configuration.restore.trust)
                ).list()
            }
            // `verified` is not signed: a drill dated ahead of this clock (an edited manifest) would hold the
            // never-verified alert off for as long as it says.
            let latest = Date().addingTimeInterval(TimeInterval(configuration.restore.trust.clockSkewAllowance))
            let lastVerified = catalog.filter(\.authenticity.isTrusted).compactMap { $0.manifest.verified }
                .filter { $0.ok && $0.at <= latest }.map(\.at).max()
            families.append(
                .gauge(
                    "contingency_backup_last_verified_timestamp_seconds",
                    "When the newest restore drill that passed ran, in seconds since the epoch (0: none ever passed).",
                    lastVerified?.timeIntervalSince1970.rounded() ?? 0))
        } catch {
            logger.warning(
                "The backups could not be listed for contingency_backup_last_verified_timestamp_seconds (\(error)): the drill metrics go without it")
        }
        families += [
            .gauge("contingency_drill_success", "Whether the last restore drill passed (1) or failed (0).", ok ? 1 : 0),
            .gauge("contingency_drill_duration_seconds", "Duration of the last restore drill.", duration.rounded()),
            .gauge(
                "contingency_drill_timestamp_seconds", "When the last restore drill ran, in seconds since the epoch.",
                at.timeIntervalSince1970.rounded()),
        ]
        await JobMetrics(
            job: "drill", storage: stores.primary, pushgatewayURL: configuration.restore.store.pushgatewayURL,
            countsWebhookFailures: true, logger: logger
        ).publish(families)
    }
}

extension DrillJob {
    /// `restore-job --drill --loop`: drills the newest backup at every fire time of DRILL_SCHEDULE (a failed
    /// drill is recorded and logged; the loop goes on).
    public func runOnSchedule(liveness: Liveness? = nil, notifications: Notifications? = nil) async throws {
        try await ScheduledLoop.run(configuration.schedule, what: "restore drill", logger: logger, liveness: liveness) {
            // Each drill pings the dead-man's switch (BACKUP_PING_URL) when one is configured.
            try await (notifications ?? .disabled(logger: logger)).monitor("restore drill") { _ = try await run(nil, newest: true) }
        }
    }
}

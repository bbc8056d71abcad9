import BackupCore
import BackupInterop
import BackupStorage
import Foundation
import Logging

/// What a cleanup found left by interrupted runs, and removed (or, in a dry run, would remove).
public struct LeftoverReport: Sendable, Equatable {
    /// Archives of this product without a manifest, older than the grace period: `<name> in <store>`.
    public var archives: [String] = []
    /// Manifests whose archive is gone from their store: `<name> in <store>`.
    public var manifests: [String] = []
    /// Multipart uploads of our archives left open in a bucket (not counted in a dry run).
    public var uploads = 0
    /// Temporary files and folders in staging (not counted in a dry run).
    public var stagingFiles = 0
    /// Archives without a manifest that are too young to judge (an interrupted run within the grace period).
    public var young: [String] = []
    /// Databases left by restores (see `DatabaseLeftovers`).
    public var databases: [String] = []

    public var count: Int { archives.count + manifests.count + uploads + stagingFiles + databases.count }
}

/// Collects what interrupted runs leave in the stores, under the store's lease (so no job is writing): archives
/// of this product without a manifest once their name is older than the grace period, manifests whose archive
/// is gone (the runbook's `find … -delete` leaves them), multipart uploads of our archives never completed, and
/// staging files no live process holds. An archive without a manifest is this product's when a manifest of the
/// same name exists in another store, when it is encrypted (`.age`) or zstd (the runbook's shell script wrote
/// only `.tar.gz`), or when its metadata.json carries this product's `format`; any other (the shell script's
/// archives, whose metadata.json has no `format`) is a backup aged by its name, handed back to retention and
/// never collected here. Only names of this store's BACKUP_PREFIX are ever considered.
struct LeftoverCollector {
    let stores: Stores
    let prefix: String
    let graceSeconds: Int
    let logger: Logger
    let dryRun: Bool

    /// Who wrote an archive that has no manifest.
    enum Origin: Equatable {
        case product
        case shellScript
        /// Unreadable: left alone.
        case unknown(String)
    }

    /// Collects; returns the report and the shell script's archives (backups for retention).
    func collect(_ inventory: BackupInventory, now: Date, confirm: () throws -> Void) throws -> (
        LeftoverReport, [BackupInventory.Item]
    ) {
        var report = LeftoverReport()
        var legacy: [BackupInventory.Item] = []
        for item in inventory.items {
            for storage in item.manifestIn where !item.holds(storage, in: item.archiveIn) {
                report.manifests.append("\(item.name.manifestName) in \(storage)")
                if !dryRun {
                    try confirm()
                    try storage.delete(key: item.name.manifestName, ifMatch: nil)
                    logger.info("Removed the manifest \(item.name.manifestName) from \(storage): its archive is gone")
                }
            }
            let bare = item.archiveIn.filter { !item.holds($0, in: item.manifestIn) }
            // A pinned archive is never collected, whoever made it.
            guard !bare.isEmpty, inventory.pins[item.name.fileName] == nil || !item.manifestIn.isEmpty else { continue }
            var isLegacy = false
            for storage in bare {
                let origin = item.manifestIn.isEmpty ? classify(item.name, in: storage) : .product
                switch origin {
                case .shellScript:
                    isLegacy = true
                case .unknown(let reason):
                    logger.warning(
                        "\(item.name.fileName) in \(storage) has no manifest and could not be read (\(reason)): left alone"
                    )
                case .product:
                    guard now.timeIntervalSince(item.name.date) > TimeInterval(graceSeconds) else {
                        report.young.append("\(item.name.fileName) in \(storage)")
                        continue
                    }
                    report.archives.append("\(item.name.fileName) in \(storage)")
                    if !dryRun {
                        try confirm()
                        try storage.delete(key: item.name.fileName, ifMatch: nil)
                        logger.info(
                            "Removed \(item.name.fileName) from \(storage): an interrupted run's archive without a manifest"
                        )
                    }
                }
            }
            if isLegacy && item.manifestIn.isEmpty {
                var shellArchive = item
                shellArchive.archiveIn = bare
                legacy.append(shellArchive)
            }
        }
        if !dryRun {
            report.stagingFiles = stores.staging.removeStaleTemporaries()
            if report.stagingFiles > 0 {
                logger.info("Removed \(report.stagingFiles) temporary file(s) left by an interrupted run")
            }
            for bucket in stores.all where bucket.kind == .bucket {
                try confirm()
                do {
                    report.uploads += try bucket.abortInterruptedUploads {
                        BackupName.parse(fileName: $0, prefix: prefix) != nil
                    }
                } catch let error as ContingencyError where !error.isCancellation {
                    logger.warning("Could not list interrupted uploads in \(bucket): \(error)")
                }
            }
            if report.uploads > 0 { logger.info("Aborted \(report.uploads) upload(s) left open by interrupted runs") }
        }
        return (report, legacy)
    }

    /// Reads the archive's metadata.json (the last member of ours; the shell script wrote one without `format`).
    func classify(_ name: BackupName, in storage: any Storage) -> Origin {
        if name.encrypted || name.compression != .gzip { return .product }
        do {
            guard let reader = try storage.openReader(key: name.fileName) else { return .unknown("it vanished") }
            let archive = try ArchiveReader(source: reader, name: name.fileName)
            let entry = ArchiveEntry()
            while try archive.next(into: entry) {
                try Task.checkCancellation()
                var components = entry.pathname.split(separator: "/").filter { $0 != "." }
                if components.count == 2 { components.removeFirst() }
                guard components == [Substring(ArchiveLayout.metadata)] else { continue }
                var data: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 64 << 10)
                while data.count <= 16 << 20 {
                    let count = try buffer.withUnsafeMutableBytes { try archive.read(into: $0) }
                    if count == 0 { break }
                    data += buffer[0..<count]
                }
                let object = try? JSONSerialization.jsonObject(with: Data(data)) as? [String: Any]
                return object?["format"] is String ? .product : .shellScript
            }
            return .shellScript
        } catch {
            return .unknown("\(error)")
        }
    }
}

import BackupCore
import BackupStorage
import CoreMetrics
import Foundation
import Logging

/// The stores a job works with, as configured: a volume (`BACKUP_DIR`), a bucket (`BACKUP_S3_URL`), or both.
///
/// - `primary` holds the leases, requests, metrics and every new backup: the volume when there is one, else
///   the bucket.
/// - `copy` is the bucket when both are set: every backup is copied there after it is published on the volume.
/// - `staging` is the local folder for the database dump and scratch files: the volume's own temporary folder,
///   else `STAGING_DIR`.
///
/// Restores look in both (`all`), so a fresh machine with an empty volume restores from the bucket.
public struct Stores: Sendable {
    public let primary: any Storage
    public let copy: (any Storage)?
    public let staging: LocalStaging

    public init(primary: any Storage, copy: (any Storage)? = nil, staging: LocalStaging) {
        self.primary = primary
        self.copy = copy
        self.staging = staging
    }

    /// Opens what the configuration names. A bucket that coordinates the jobs (no volume; a job that takes the
    /// lease or writes) must honour conditional writes, or this fails. The bucket comes wrapped in
    /// `RetryingStorage` (`S3Storage.open`), so every caller has its transient faults retried; the volume needs
    /// no retries (see `RetryingStorage`).
    public static func open(_ configuration: StoreConfiguration, coordinating: Bool = true, logger: Logger?) throws -> Stores {
        let bucket = try configuration.s3.map {
            try S3Storage.open($0, coordinating: coordinating && configuration.backupDirectory == nil, logger: logger)
        }
        if let directory = configuration.backupDirectory {
            let volume = try VolumeStorage(root: directory)
            return Stores(primary: volume, copy: bucket, staging: volume.staging)
        }
        guard let bucket else { throw ContingencyError.configuration("neither BACKUP_DIR nor BACKUP_S3_URL is set") }
        if let defaultFolder = Settings.backupDir.defaultValue, FileManager.default.fileExists(atPath: "\(defaultFolder)/.contingency") {
            // A volume store is mounted where BACKUP_DIR would be by default, but BACKUP_DIR is not set: with a
            // bucket that means the bucket alone, which may not be what was meant.
            logger?.warning(
                "\(defaultFolder) holds a backup store, but BACKUP_DIR is not set: only \(bucket) is used. Set BACKUP_DIR=\(defaultFolder) to keep the volume as the store and the bucket as its copy")
        }
        return Stores(primary: bucket, staging: try LocalStaging(creating: configuration.stagingDirectory))
    }

    /// The same stores, each wrapped so that its operations are counted and timed in `factory` (see
    /// `MeteredStorage`). The metering goes outside the bucket's `RetryingStorage`: one operation is measured
    /// once, whatever its attempts, and its retries are counted by the decorator below.
    public func metered(by factory: any MetricsFactory) -> Stores {
        Stores(
            primary: MeteredStorage(primary, factory: factory), copy: copy.map { MeteredStorage($0, factory: factory) },
            staging: staging)
    }

    /// Every store, the primary first.
    public var all: [any Storage] { [primary] + (copy.map { [$0] } ?? []) }

    /// Clears what interrupted runs left in the primary store: temporary files in staging, and (on a bucket)
    /// uploads of archives never completed. Call while holding the store's lease. (The copy bucket's are cleared
    /// before each copy: see `BucketCopy`.)
    func removeInterruptedWrites(prefix: String, logger: Logger) {
        let stale = staging.removeStaleTemporaries()
        if stale > 0 { logger.info("Removed \(stale) temporary file(s) left by an interrupted run") }
        Self.abortInterruptedUploads(in: primary, prefix: prefix, logger: logger)
    }

    /// Aborts the uploads of our archives (named with `prefix`) left open in `store` by runs that died (a
    /// bucket's multipart uploads; a volume has none).
    static func abortInterruptedUploads(in store: any Storage, prefix: String, logger: Logger) {
        guard store.kind == .bucket else { return }
        do {
            let aborted = try store.abortInterruptedUploads { BackupName.parse(fileName: $0, prefix: prefix) != nil }
            if aborted > 0 { logger.info("Aborted \(aborted) upload(s) to \(store) left by an interrupted run") }
        } catch {
            logger.warning("Could not list interrupted uploads in \(store): \(error)")
        }
    }
}

import BackupCore
import BackupStorage
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

    /// A volume store alone.
    public init(volume: VolumeStorage) {
        self.init(primary: volume, staging: volume.staging)
    }

    /// Opens what the configuration names. A bucket that coordinates the jobs (no volume; a job that takes the
    /// lease or writes) must honour conditional writes, or this fails.
    public static func open(_ configuration: StoreConfiguration, coordinating: Bool = true, logger: Logger?) throws -> Stores {
        let bucket = try configuration.s3.map {
            try S3Storage.open($0, coordinating: coordinating && configuration.backupDirectory == nil, logger: logger)
        }
        if let directory = configuration.backupDirectory {
            let volume = try VolumeStorage(root: directory)
            return Stores(primary: volume, copy: bucket, staging: volume.staging)
        }
        guard let bucket else { throw ContingencyError.configuration("neither BACKUP_DIR nor BACKUP_S3_URL is set") }
        return Stores(primary: bucket, staging: try LocalStaging(creating: configuration.stagingDirectory))
    }

    /// Every store, the primary first.
    public var all: [any Storage] { [primary] + (copy.map { [$0] } ?? []) }

    /// Clears what interrupted runs left: temporary files in staging, and (on a bucket) multipart uploads never
    /// completed. Call while holding the store's lease.
    func removeInterruptedWrites(logger: Logger) {
        let stale = staging.removeStaleTemporaries()
        if stale > 0 { logger.info("Removed \(stale) temporary file(s) left by an interrupted run") }
        for case let bucket as S3Storage in all {
            do {
                let aborted = try bucket.abortInterruptedUploads()
                if aborted > 0 { logger.info("Aborted \(aborted) upload(s) to \(bucket) left by an interrupted run") }
            } catch {
                logger.warning("Could not list interrupted uploads in \(bucket): \(error)")
            }
        }
    }
}

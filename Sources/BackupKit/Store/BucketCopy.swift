import BackupCore
import BackupInterop
import BackupStorage
import Foundation
import Logging

/// Copies complete backups from the volume to the bucket (`BACKUP_DIR` and `BACKUP_S3_URL` both set): the
/// off-site copy the runbook asks for. The archive goes first and its manifest last, so the bucket too holds a
/// backup only once it is whole. Bytes are hashed on the way and must match the manifest: a copy of an archive
/// damaged on the volume is refused rather than spread.
struct BucketCopy {
    let source: any Storage
    let target: any Storage
    let prefix: String
    let logger: Logger
    /// The clock a backup's name is compared with.
    var now: () -> Date = { Date() }
    /// With the signing key: only backups it signed are copied, so that whoever can write to the volume cannot
    /// spread a forged backup to the off-site copy through this job.
    var authenticator = ManifestAuthenticator(keys: [])

    /// Copies the complete backups of the source that the target lacks, newest first: the one just made, and any
    /// an earlier run failed to copy. Backups older than the target's oldest are left alone (a bucket's own
    /// lifecycle rules may have expired them; they are not sent again), and into an empty target only the newest
    /// goes. Returns what failed, by file name; `confirm` is the lease's fencing check.
    func copyMissing(confirm: () throws -> Void) throws -> [(name: String, error: any Error)] {
        Stores.abortInterruptedUploads(in: target, prefix: prefix, logger: logger)
        let catalog = BackupCatalog(storage: source, prefix: prefix)
        // A name is a claim, not a time: a backup dated ahead of this clock (a forged 2099) is neither copied nor
        // taken as the bucket's oldest, or it would keep every real backup out of the bucket.
        let latest = now().addingTimeInterval(TimeInterval(TrustSettings().clockSkewAllowance))
        let targetNames = try catalog.completeNames(in: target)
        let presentNames = Set(targetNames.map(\.fileName))
        let present = targetNames.filter { $0.date <= latest }
        var candidates = try catalog.completeNames(in: source).filter { !presentNames.contains($0.fileName) }
        for name in candidates where name.date > latest {
            logger.warning("Not copying \(name.fileName) to \(target): its name is dated ahead of this machine's clock")
        }
        candidates.removeAll { $0.date > latest }
        if let oldest = present.last {
            candidates = candidates.filter { $0 > oldest }
        } else {
            candidates = Array(candidates.prefix(1))
        }
        var failures: [(name: String, error: any Error)] = []
        for name in candidates {
            do {
                try Task.checkCancellation()
                guard let manifest = try BackupCatalog.manifest(for: name, in: source) else { continue }
                switch authenticator.authenticate(manifest, fileName: name.fileName).0 {
                case .notGenuine(let reason):
                    logger.warning("Not copying \(name.fileName) to \(target): not signed by this job's key (\(reason))")
                    continue
                case .unsigned:
                    logger.warning("Not copying \(name.fileName) to \(target): it is not signed, and this job signs its backups")
                    continue
                case .genuine, .notChecked:
                    break
                }
                try copy(name, manifest: manifest, confirm: confirm)
            } catch {
                if error is CancellationError || (error as? ContingencyError)?.isCancellation == true { throw error }
                failures.append((name.fileName, error))
            }
        }
        return failures
    }

    func copy(_ name: BackupName, manifest: Manifest, confirm: () throws -> Void) throws {
        let started = Date()
        guard let reader = try source.openReader(key: name.fileName) else {
            throw ContingencyError.failed("\(name.fileName) vanished from \(source) before it was copied")
        }
        let writer = try target.makeWriter(key: name.fileName)
        defer { writer.abort() }
        let hashing = HashingSink(writer)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = try buffer.withUnsafeMutableBytes { try reader.read(into: $0) }
            if count == 0 { break }
            try buffer.withUnsafeBytes { try hashing.write(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        }
        let digest = hashing.finalizeHex()
        guard hashing.count == manifest.archive.size, digest == manifest.archive.sha256 else {
            throw ContingencyError.failed(
                "\(name.fileName) in \(source) does not match its manifest (\(hashing.count) bytes, sha256 \(digest.prefix(12))…; \(manifest.archive.size) bytes, \(manifest.archive.sha256.prefix(12))… recorded); not copied",
                hint: "the archive on the volume is damaged: check it with restore-job --verify")
        }
        try writer.commit(beforePublishing: confirm)
        try confirm()
        try target.put(key: name.manifestName, data: Array(try ContingencyJSON.encoder().encode(manifest)))
        let duration = Date().timeIntervalSince(started)
        logger.info(
            "Copied \(name.fileName) to \(target) (\(ByteFormat.string(manifest.archive.size)) in \(DurationFormat.string(seconds: duration)), \(ByteFormat.rate(bytes: manifest.archive.size, seconds: duration)))")
    }
}

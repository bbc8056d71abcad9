import BackupCore
import BackupInterop
import Foundation
import Logging

/// Compares what a read of an archive found with what its manifest and metadata promise.
enum BackupCheck {
    /// Reads the whole archive once, compares everything with the manifest and metadata, lists the dump.
    /// Decrypts when the archive is encrypted (its name ends in `.age`), with AGE_IDENTITY(_FILE) or
    /// AGE_PASSPHRASE; a missing or wrong key fails here, exit 12, before anything is touched.
    /// `databaseStarting` and `databaseRead` are the verifier's (see `ArchiveVerifier.read`).
    static func verify(
        _ target: BackupTarget, configuration: RestoreConfiguration, into destinations: ArchiveVerifier.Destinations,
        logger: Logger, databaseStarting: (ArchiveVerifier.Report) -> Void = { _ in },
        databaseRead: (ArchiveVerifier.Report) -> Void = { _ in }
    ) async throws -> ArchiveVerifier.Report {
        let tools = PostgresTools(binDirectory: configuration.pgBinDirectory)
        let identities = target.isEncrypted ? try KeyLoader.decryptionIdentities(configuration, for: target) : nil
        guard let reader = try target.storage.openReader(key: target.fileName) else {
            throw ContingencyError.noBackupFound("\(target.fileName) vanished from \(target.storage)")
        }
        let verifier = ArchiveVerifier(
            logger: logger, progressInterval: TimeInterval(configuration.progressInterval),
            policy: .init(allowOutsideSymlinks: configuration.allowOutsideSymlinks, restoreOwners: configuration.restoreOwners))
        let report: ArchiveVerifier.Report
        do {
            report = try verifier.read(
                reader, name: target.fileName, identities: identities, into: destinations, declared: target.manifest?.metadata,
                databaseStarting: databaseStarting, databaseRead: databaseRead)
        } catch let error as ContingencyError {
            throw error.prefixed("\(target.fileName) failed verification; nothing was restored")
        }
        try compare(report, manifest: target.manifest, name: target.fileName, logger: logger)
        let listing = try await tools.list(try destinations.dump.input())
        guard listing.succeeded else {
            throw ContingencyError.failed(
                "\(target.fileName): its database.dump is not readable by pg_restore: \(listing.standardError); nothing was restored")
        }
        return report
    }

    static func compare(_ report: ArchiveVerifier.Report, manifest: Manifest?, name: String, logger: Logger) throws {
        func mismatch(_ what: String) -> ContingencyError {
            .failed("\(name) failed verification: \(what); nothing was restored", hint: "restore an older backup (LATEST_BACKUP=…)")
        }
        if let manifest {
            guard report.archiveSize == manifest.archive.size else {
                throw mismatch("the archive has \(report.archiveSize) bytes, its manifest says \(manifest.archive.size)")
            }
            guard report.archiveSHA256 == manifest.archive.sha256 else {
                throw mismatch("the archive's sha256 is \(report.archiveSHA256), its manifest says \(manifest.archive.sha256)")
            }
        }
        guard let metadata = manifest?.metadata ?? report.metadata else {
            guard report.legacyLayout || report.members[ArchiveLayout.databaseDump] != nil else {
                throw mismatch("it holds neither metadata.json nor a database.dump")
            }
            logger.warning("\(name) has no manifest and no metadata (made by the runbook's shell script?): its members are checked only by reading them")
            guard report.members[ArchiveLayout.databaseDump] != nil else { throw mismatch("it holds no database.dump") }
            return
        }
        if manifest == nil {
            throw ContingencyError.failed(
                "\(name) was written by \(metadata.producer) but has no manifest: the run that wrote it did not finish; nothing was restored",
                hint: "restore a complete backup (one with a .json manifest beside it)")
        }
        if let inside = report.metadata, inside != metadata {
            throw mismatch("metadata.json inside the archive differs from its manifest")
        }
        for expected in metadata.members {
            guard let found = report.members[expected.name] else { throw mismatch("\(expected.name) is missing") }
            guard found.size == expected.size, found.sha256 == expected.sha256 else {
                throw mismatch("\(expected.name) does not match its recorded size and sha256")
            }
        }
        // Files not hashed one by one (a restore's read) are covered by the archive's hash, checked above.
        if let expected = metadata.uploads, !expected.matches(report.uploads, digest: report.uploadsHashed) {
            throw mismatch("the uploads differ from those recorded (\(expected.files) files, \(expected.bytes) bytes)")
        }
    }
}

import BackupCore
import Foundation
import Logging

/// Compares what a read of an archive found with what its manifest and metadata promise.
enum BackupCheck {
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
        if let expected = metadata.uploads, report.uploads != expected {
            throw mismatch("the uploads differ from those recorded (\(expected.files) files, \(expected.bytes) bytes)")
        }
    }
}

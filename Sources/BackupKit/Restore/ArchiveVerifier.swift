import BackupCore
import BackupInterop
import BackupStorage
import Foundation
import Logging

/// Reads an archive once, end to end: hashes the whole object, checks every member against the metadata,
/// and extracts what a restore needs into staging places that touch nothing live. Also reads the runbook
/// shell script's layout (`uploads.tar.gz` nested inside, no metadata).
final class ArchiveVerifier {
    /// Where extracted members go; nil means hash only.
    struct Destinations {
        var dump: String
        var uploads: String?
        var env: String?
    }

    /// What the pass found.
    struct Report {
        var archiveSize: Int64 = 0
        var archiveSHA256 = ""
        var metadata: BackupMetadata?
        var members: [String: BackupMetadata.Member] = [:]
        var uploads: BackupMetadata.UploadsSummary?
        var legacyLayout = false
        var hasUploads = false
        var hasEnv = false
    }

    private let logger: Logger
    private let progress: ProgressReporter
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)
    private var extracted: Int64 = 0

    init(logger: Logger, progressInterval: TimeInterval) {
        self.logger = logger
        self.progress = ProgressReporter(logger: logger, interval: progressInterval)
    }

    func read(_ reader: any ObjectReader, name: String, into destinations: Destinations) throws -> Report {
        let hashing = HashingSource(reader)
        let archive = try ArchiveReader(source: hashing, name: name)
        var report = Report()
        let digest = UploadsDigest()
        var disk = try destinations.uploads.map { _ in try DiskTreeWriter() }
        let entry = ArchiveEntry()
        while try archive.next(into: entry) {
            try Task.checkCancellation()
            guard let member = Self.memberPath(entry.pathname) else { continue }
            switch member {
            case ArchiveLayout.databaseDump:
                report.members[member] = try extract(archive, member, size: entry.size, to: destinations.dump)
            case ArchiveLayout.envBackup:
                report.hasEnv = true
                report.members[member] = try extract(archive, member, size: entry.size, to: destinations.env)
            case ArchiveLayout.packageJSON, ArchiveLayout.packageLock:
                report.members[member] = try extract(archive, member, size: entry.size, to: nil)
            case ArchiveLayout.metadata:
                var data: [UInt8] = []
                try drain(archive) { data.append(contentsOf: $0) }
                // The runbook's script wrote a metadata.json of its own (no `format`): it is informative only.
                let object = try? JSONSerialization.jsonObject(with: Data(data)) as? [String: Any]
                guard object?["format"] != nil else {
                    report.legacyLayout = true
                    continue
                }
                guard let metadata = try? ContingencyJSON.decoder().decode(BackupMetadata.self, from: Data(data)) else {
                    throw ContingencyError.failed("\(name): metadata.json is not valid")
                }
                report.metadata = metadata
            case ArchiveLayout.legacyUploadsArchive:
                report.legacyLayout = true
                report.hasUploads = true
                let nested = try ArchiveReader(source: archive, name: "\(name)/\(member)")
                let nestedEntry = ArchiveEntry()
                while try nested.next(into: nestedEntry) {
                    let path = Self.legacyUploadsPath(nestedEntry.pathname)
                    try extractTreeEntry(nested, nestedEntry, relative: path, into: destinations.uploads, disk: disk, digest: digest)
                }
            default:
                if member == ArchiveLayout.uploadsDirectory || member.hasPrefix(ArchiveLayout.uploadsDirectory + "/") {
                    report.hasUploads = true
                    let relative = String(member.dropFirst(ArchiveLayout.uploadsDirectory.count).drop { $0 == "/" })
                    try extractTreeEntry(archive, entry, relative: relative, into: destinations.uploads, disk: disk, digest: digest)
                } else {
                    logger.warning("Ignoring unexpected member \(entry.pathname) in \(name)")
                }
            }
        }
        try disk?.close()
        disk = nil
        // Read the stream to its very end so the hash covers every byte of the object.
        try buffer.withUnsafeMutableBytes { raw in while try hashing.read(into: raw) > 0 {} }
        report.archiveSize = hashing.count
        report.archiveSHA256 = hashing.finalizeHex()
        if report.hasUploads { report.uploads = digest.summary() }
        return report
    }

    /// The member path inside the archive's top folder: `visual_backup_…/uploads/a.png` → `uploads/a.png`.
    static func memberPath(_ pathname: String) -> String? {
        var components = pathname.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        while components.first == "." { components.removeFirst() }
        guard let first = components.first else { return nil }
        let topLevel: Set<String> = [
            ArchiveLayout.databaseDump, ArchiveLayout.envBackup, ArchiveLayout.packageJSON, ArchiveLayout.packageLock,
            ArchiveLayout.metadata, ArchiveLayout.uploadsDirectory, ArchiveLayout.legacyUploadsArchive,
        ]
        if !topLevel.contains(first) {
            components.removeFirst()  // the archive's top folder
            guard !components.isEmpty else { return nil }
        }
        return components.joined(separator: "/")
    }

    /// Inside the runbook's `uploads.tar.gz`, entries are `uploads/…` or `./…`.
    static func legacyUploadsPath(_ pathname: String) -> String {
        var components = pathname.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        while components.first == "." { components.removeFirst() }
        if components.first == ArchiveLayout.uploadsDirectory { components.removeFirst() }
        return components.joined(separator: "/")
    }

    private func extract(_ archive: ArchiveReader, _ member: String, size: Int64, to path: String?) throws -> BackupMetadata.Member {
        let file = try path.map { try LocalFile(creating: $0) }
        let hash = BackupInterop.SHA256()
        var count: Int64 = 0
        try drain(archive) { chunk in
            hash.update(chunk)
            try file?.write(chunk)
            count += Int64(chunk.count)
        }
        try file?.sync()
        return BackupMetadata.Member(name: member, size: count, sha256: hash.finalizeHex())
    }

    private func extractTreeEntry(
        _ archive: ArchiveReader, _ entry: ArchiveEntry, relative: String, into root: String?, disk: DiskTreeWriter?,
        digest: UploadsDigest
    ) throws {
        let kind = entry.kind
        if let root, let disk {
            entry.pathname = relative.isEmpty ? root : "\(root)/\(relative)"
            try disk.writeHeader(entry)
        }
        switch kind {
        case .file:
            let hash = BackupInterop.SHA256()
            var count: Int64 = 0
            try drain(archive) { chunk in
                hash.update(chunk)
                try disk?.write(chunk)
                count += Int64(chunk.count)
            }
            digest.addFile(relative, size: count, sha256: hash.finalizeHex())
        case .directory:
            if !relative.isEmpty { digest.addDirectory(relative) }
        case .symlink:
            digest.addSymlink(relative, target: entry.linkTarget ?? "")
        case .hardlink, .other:
            break
        }
        if root != nil { try disk?.finishEntry() }
    }

    private func drain(_ archive: ArchiveReader, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try buffer.withUnsafeMutableBytes { raw in
            while true {
                let n = try archive.read(into: raw)
                if n == 0 { return }
                try body(UnsafeRawBufferPointer(rebasing: raw[0..<n]))
                extracted += Int64(n)
                progress.update("reading archive, extracted", bytes: extracted)
            }
        }
    }
}

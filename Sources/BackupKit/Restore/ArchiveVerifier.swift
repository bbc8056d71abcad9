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
        var dump: StagedDump
        var uploads: String?
        var env: String?
        /// database.dump as the manifest records it: a dump that turns out different is abandoned as soon as
        /// it is read (see `DumpArrival`), before anything else in the archive is.
        var expectedDump: BackupMetadata.Member?
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
        /// The roles' SQL (globals.sql), when the archive has it.
        var globals: [UInt8]?
    }

    private let logger: Logger
    private let progress: ProgressReporter
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)
    private var extracted: Int64 = 0

    init(logger: Logger, progressInterval: TimeInterval) {
        self.logger = logger
        self.progress = ProgressReporter(logger: logger, interval: progressInterval)
    }

    /// Reads the archive once. With `identities`, it is age-decrypted on the way: every chunk is authenticated
    /// before its bytes are used, the stored (encrypted) bytes are what is hashed.
    ///
    /// `databaseStarting` is called when database.dump's header is reached, before its first byte is staged,
    /// with what has been found so far (globals.sql, which our archives hold just before it; older ones, just
    /// after). `databaseRead` is called once, as soon as the archive has moved past both, with what has been
    /// found so far: the dump is staged and both are hashed, while the rest of the archive is still unread and
    /// unchecked.
    func read(
        _ reader: any ObjectReader, name: String, identities: [AgeIdentity]?, into destinations: Destinations,
        databaseStarting: (Report) -> Void = { _ in }, databaseRead: (Report) -> Void = { _ in }
    ) throws -> Report {
        let hashing = HashingSource(reader)
        let plain: any ByteSource = try identities.map { try AgeDecryptingSource(identities: $0, source: hashing) } ?? hashing
        let archive = try ArchiveReader(source: plain, name: name)
        var report = Report()
        let digest = UploadsDigest()
        var disk = try destinations.uploads.map { _ in try DiskTreeWriter() }
        let entry = ArchiveEntry()
        var announced = false
        let globalsBytes = Array(ArchiveLayout.globals.utf8)
        while try archive.next(into: entry) {
            try Task.checkCancellation()
            guard let memberBytes = Self.memberPath(entry.pathBytes) else { continue }
            if !announced && report.members[ArchiveLayout.databaseDump] != nil && memberBytes != globalsBytes {
                announced = true
                databaseRead(report)
            }
            if let relative = Self.below(ArchiveLayout.uploadsDirectory, memberBytes) {
                report.hasUploads = true
                try extractTreeEntry(
                    archive, entry, relative: relative, into: destinations.uploads, disk: disk, digest: digest,
                    linkTarget: { Self.memberPath($0).flatMap { Self.below(ArchiveLayout.uploadsDirectory, $0) } })
                continue
            }
            // Every other member has an ASCII name.
            let member = String(decoding: memberBytes, as: UTF8.self)
            // A second copy would overwrite the staged dump that a restore may already be reading.
            guard report.members[member] == nil else {
                throw ContingencyError.failed("\(name): \(member) appears twice in the archive")
            }
            switch member {
            case ArchiveLayout.databaseDump:
                databaseStarting(report)
                let found = try extractOnSecondThread(archive, member, to: try destinations.dump.sink())
                report.members[member] = found
                if let expected = destinations.expectedDump, !found.hasSameContent(as: expected) {
                    destinations.dump.arrival?.abandon("database.dump does not match the manifest")
                }
                try destinations.dump.finish()
            case ArchiveLayout.envBackup:
                report.hasEnv = true
                let file = try destinations.env.map { try LocalFile(writing: $0) }
                report.members[member] = try extract(archive, member, to: file)
                try file?.sync()
            case ArchiveLayout.globals:
                let sink = MemorySink(limit: 16 << 20)
                report.members[member] = try extract(archive, member, to: sink)
                report.globals = sink.bytes
            case ArchiveLayout.packageJSON, ArchiveLayout.packageLock:
                report.members[member] = try extract(archive, member, to: nil)
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
                    try extractTreeEntry(
                        nested, nestedEntry, relative: Self.legacyUploadsPath(nestedEntry.pathBytes),
                        into: destinations.uploads, disk: disk, digest: digest,
                        linkTarget: { Self.legacyUploadsPath($0) })
                }
            default:
                logger.warning("Ignoring unexpected member \(entry.pathname) in \(name)")
            }
        }
        try disk?.close()
        disk = nil
        // Read the stream to its very end so the hash covers every byte of the object and, when encrypted,
        // the final chunk is authenticated too.
        try buffer.withUnsafeMutableBytes { raw in
            while try plain.read(into: raw) > 0 {}
            while try hashing.read(into: raw) > 0 {}
        }
        report.archiveSize = hashing.count
        report.archiveSHA256 = hashing.finalizeHex()
        if report.hasUploads { report.uploads = digest.summary() }
        return report
    }

    /// The member path inside the archive's top folder: `visual_backup_…/uploads/a.png` → `uploads/a.png`.
    static func memberPath(_ pathname: [UInt8]) -> [UInt8]? {
        var components = pathname.split(separator: 0x2F, omittingEmptySubsequences: true).map(Array.init)
        while components.first == [0x2E] { components.removeFirst() }
        guard let first = components.first else { return nil }
        let topLevel: Set<[UInt8]> = Set(
            [
                ArchiveLayout.databaseDump, ArchiveLayout.envBackup, ArchiveLayout.packageJSON, ArchiveLayout.packageLock,
                ArchiveLayout.metadata, ArchiveLayout.uploadsDirectory, ArchiveLayout.legacyUploadsArchive,
                ArchiveLayout.globals,
            ].map { Array($0.utf8) })
        if !topLevel.contains(first) {
            components.removeFirst()  // the archive's top folder
            guard !components.isEmpty else { return nil }
        }
        return Array(components.joined(separator: [0x2F]))
    }

    /// `uploads/a/b.png` below `uploads` → `a/b.png`; `uploads` itself → empty; anything else → nil.
    static func below(_ folder: String, _ path: [UInt8]) -> [UInt8]? {
        let prefix = Array(folder.utf8)
        guard path.starts(with: prefix) else { return nil }
        let rest = path.dropFirst(prefix.count)
        guard rest.isEmpty || rest.first == 0x2F else { return nil }
        return Array(rest.drop { $0 == 0x2F })
    }

    /// Inside the runbook's `uploads.tar.gz`, entries are `uploads/…` or `./…`.
    static func legacyUploadsPath(_ pathname: [UInt8]) -> [UInt8] {
        var components = pathname.split(separator: 0x2F, omittingEmptySubsequences: true).map(Array.init)
        while components.first == [0x2E] { components.removeFirst() }
        if components.first == Array(ArchiveLayout.uploadsDirectory.utf8) { components.removeFirst() }
        return Array(components.joined(separator: [0x2F]))
    }

    /// Copies the current member into `sink` (or only hashes it) and returns its size and sha256.
    private func extract(_ archive: ArchiveReader, _ member: String, to sink: (any ByteSink)?) throws -> BackupMetadata.Member {
        let hash = BackupInterop.SHA256()
        var count: Int64 = 0
        try drain(archive) { chunk in
            hash.update(chunk)
            try sink?.write(chunk)
            count += Int64(chunk.count)
        }
        return BackupMetadata.Member(name: member, size: count, sha256: hash.finalizeHex())
    }

    /// `extract`, with the hashing and the writing (and the sealing, when the dump is staged sealed) on a second
    /// thread while this one goes on reading and inflating: the dump is the largest member, and the one a restore
    /// waits for before pg_restore can start.
    private func extractOnSecondThread(_ archive: ArchiveReader, _ member: String, to sink: any ByteSink) throws -> BackupMetadata.Member {
        let hashing = HashingSink(sink)
        let writer = ThreadedSink(hashing)
        do {
            try drain(archive) { try writer.write($0) }
        } catch {
            try? writer.finish()
            throw error
        }
        try writer.finish()
        return BackupMetadata.Member(name: member, size: hashing.count, sha256: hashing.finalizeHex())
    }

    /// One entry of the uploads tree: hashed into the digest and, when extracting, created under `root`.
    /// Only files, folders and symlinks are created. A hard link is created only when its target is another
    /// entry of the same tree (its path rewritten into `root`); devices, fifos and sockets are never created.
    private func extractTreeEntry(
        _ archive: ArchiveReader, _ entry: ArchiveEntry, relative: [UInt8], into root: String?, disk: DiskTreeWriter?,
        digest: UploadsDigest, linkTarget: ([UInt8]) -> [UInt8]?
    ) throws {
        let shown = String(decoding: relative, as: UTF8.self)
        let rootBytes = root.map { Array($0.utf8) }
        func destination(_ path: [UInt8]) -> [UInt8]? { rootBytes.map { path.isEmpty ? $0 : $0 + [0x2F] + path } }
        switch entry.kind {
        case .file:
            if let path = destination(relative), let disk {
                entry.pathBytes = path
                try disk.writeHeader(entry)
            }
            let hash = BackupInterop.SHA256()
            var count: Int64 = 0
            try drain(archive) { chunk in
                hash.update(chunk)
                try disk?.write(chunk)
                count += Int64(chunk.count)
            }
            digest.addFile(relative, size: count, sha256: hash.finalizeHex())
        case .directory:
            if let path = destination(relative), let disk {
                entry.pathBytes = path
                try disk.writeHeader(entry)
            }
            if !relative.isEmpty { digest.addDirectory(relative) }
        case .symlink:
            if let path = destination(relative), let disk {
                entry.pathBytes = path
                try disk.writeHeader(entry)
            }
            digest.addSymlink(relative, target: entry.symlinkTargetBytes ?? [])
        case .hardlink:
            guard let original = entry.hardlinkTargetBytes, let target = linkTarget(original), !target.isEmpty,
                !target.split(separator: 0x2F).contains([0x2E, 0x2E])
            else {
                throw ContingencyError.failed(
                    "the hard link uploads/\(shown) points outside the uploads (\(String(decoding: entry.hardlinkTargetBytes ?? [], as: UTF8.self)))")
            }
            if let path = destination(relative), let linked = destination(target), let disk {
                entry.pathBytes = path
                entry.hardlinkTargetBytes = linked
                try disk.writeHeader(entry)
            }
            digest.addHardlink(relative, target: target)
        case .other:
            logger.warning("Not restoring uploads/\(shown): not a regular file, folder or link")
            return
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

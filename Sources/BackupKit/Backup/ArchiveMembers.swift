import BackupCore
import BackupInterop
import Foundation
import Logging

/// Adds files and trees to an archive under its top folder, hashing every byte on the way.
final class ArchiveMembers {
    private let archive: ArchiveWriter
    private let root: String
    private let progress: ProgressReporter
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)
    private var bytesIn: Int64 = 0

    init(archive: ArchiveWriter, root: String, progress: ProgressReporter) {
        self.archive = archive
        self.root = root
        self.progress = progress
    }

    /// Adds the file at `path` as `member`. A missing optional file returns nil; a missing required one throws.
    func addFile(_ member: String, from path: String, required: Bool) throws -> BackupMetadata.Member? {
        let file: LocalFile
        do {
            file = try LocalFile(reading: path)
        } catch let error as ContingencyError {
            if !required && !FileManager.default.fileExists(atPath: path) { return nil }
            throw error
        }
        let info = try file.status()
        return try addStream(
            member, from: file, size: Int64(info.st_size), permissions: info.st_mode & 0o7777,
            modified: Date(timeIntervalSince1970: Double(info.st_mtim.tv_sec)), name: path)
    }

    /// Adds `size` bytes read from `source` as the file `member`; with `blocks`, its blocks are hashed too
    /// (`BlockHashes`).
    func addStream(
        _ member: String, from source: any ByteSource, size: Int64, permissions: mode_t, modified: Date, name: String? = nil,
        blocks: Bool = false
    ) throws -> BackupMetadata.Member {
        try archive.writeHeader(ArchiveEntry(file: "\(root)/\(member)", size: size, permissions: permissions, modified: modified))
        let hasher = blocks ? BlockHasher(blockSize: BlockHashes.blockSize(for: size)) : nil
        // A staged stream (no file name) must deliver every byte it announced.
        let sha = try copy(from: source, size: size, name: name ?? member, strict: name == nil, blocks: hasher)
        try archive.finishEntry()
        let hashes = try hasher.map { BlockHashes(blockSize: $0.blockSize, sha256: try $0.finish()) }
        return BackupMetadata.Member(name: member, size: size, sha256: sha, blocks: hashes)
    }

    /// Adds the tree at `path` as `member/…`, in the walk's order, and returns its aggregate digest.
    func addTree(_ member: String, from path: String, logger: Logger) throws -> BackupMetadata.UploadsSummary {
        let tree = try DiskTreeReader(root: path)
        // A restore's working folders inside an uploads mount point (FolderSwap): the broken uploads a rollback
        // keeps for its safety backup, a restore's staging. Never the application's files.
        tree.excludedTopLevelPrefixes = [".contingency-before-restore-", ".contingency-incoming-"]
        let digest = UploadsDigest()
        let entry = ArchiveEntry()
        let prefix = Array("\(root)/\(member)".utf8)
        while try tree.next(into: entry) {
            let relative = Self.relative(entry.pathBytes, to: path)
            let shown = "\(path)/\(String(decoding: relative, as: UTF8.self))"
            entry.pathBytes = relative.isEmpty ? prefix : prefix + [0x2F] + relative
            switch entry.kind {
            case .directory:
                try archive.writeHeader(entry)
                try archive.finishEntry()
                if !relative.isEmpty { digest.addDirectory(relative) }
            case .symlink:
                try archive.writeHeader(entry)
                try archive.finishEntry()
                digest.addSymlink(relative, target: entry.symlinkTargetBytes ?? [])
            case .file:
                let size = entry.size
                try archive.writeHeader(entry)
                let sha = try copy(from: tree, size: size, name: shown, logger: logger)
                try archive.finishEntry()
                digest.addFile(relative, size: size, sha256: sha)
            case .hardlink, .other:
                logger.warning("Skipping \(shown): not a regular file, folder or symlink")
            }
            try Task.checkCancellation()
        }
        return digest.summary()
    }

    /// Copies exactly `size` bytes (the size already in the tar header) and returns their sha256. A file that
    /// shrank while being read is zero-filled to its header size, and said so, so the archive stays valid and
    /// its recorded hash matches what a restore will extract.
    /// `strict`: a source that ends early is an error (the staged dump), not a file that shrank.
    private func copy(
        from source: any ByteSource, size: Int64, name: String, logger: Logger? = nil, strict: Bool = false,
        blocks: BlockHasher? = nil
    ) throws -> String {
        let hash = BackupInterop.SHA256()
        var remaining = size
        try buffer.withUnsafeMutableBytes { raw in
            while remaining > 0 {
                let want = Int(min(Int64(raw.count), remaining))
                try Task.checkCancellation()
                var n = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<want]))
                if n == 0 && strict {
                    throw ContingencyError.failed("\(name) ended after \(size - remaining) of its \(size) bytes")
                }
                if n == 0 {
                    logger?.warning("\(name) shrank while being read; its last \(remaining) bytes are zero-filled in this backup")
                    n = want
                    memset(raw.baseAddress!, 0, n)
                }
                let chunk = UnsafeRawBufferPointer(rebasing: raw[0..<n])
                hash.update(chunk)
                try blocks?.update(chunk)
                try archive.write(chunk)
                remaining -= Int64(n)
                bytesIn += Int64(n)
                progress.update("archive, data read", bytes: bytesIn)
            }
        }
        return hash.finalizeHex()
    }

    /// The entry's path below the walked root, as bytes (the walk reports `<root>/<relative>`).
    static func relative(_ pathname: [UInt8], to root: String) -> [UInt8] {
        var base = Array(root.utf8)
        while base.count > 1 && base.last == 0x2F { base.removeLast() }
        guard pathname.starts(with: base) else { return pathname }
        return Array(pathname.dropFirst(base.count).drop { $0 == 0x2F })
    }
}

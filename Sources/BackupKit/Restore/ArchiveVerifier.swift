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
        /// Who the extracted uploads belong to when the archive's owners are not restored (RESTORE_OWNERS):
        /// the current uploads folder's owner, so the application keeps access. Applied only as root.
        var uploadsOwner: (uid: uid_t, gid: gid_t)? = nil
        /// A folder where globals.sql, package.json, package-lock.json and metadata.json are written under their
        /// own names (`restore-job --extract`); nil: they are only read and hashed. Only these fixed names are
        /// written there: nothing from the archive chooses a path.
        var others: String? = nil
        /// Whether each uploaded file is hashed, for the uploads' digest. A restore does without: the uploads are
        /// swapped in only once the whole archive's hash matches its manifest's, which covers every byte of them
        /// (their count and bytes are still checked); `--verify`, `--extract` and drills hash them all the same.
        var hashUploads = true
    }

    /// How the uploads tree is extracted (RESTORE_ALLOW_OUTSIDE_SYMLINKS, RESTORE_OWNERS).
    struct UploadsPolicy: Sendable {
        var allowOutsideSymlinks = false
        var restoreOwners = false
    }

    /// The most metadata.json may hold: it is parsed in memory.
    static let metadataLimit: Int64 = 16 << 20
    /// Permission bits kept on extracted uploads: never setuid, setgid or sticky, never writable by everyone.
    /// Group write stays, for applications whose users share a group.
    static let permissionMask: mode_t = 0o775

    /// What the pass found.
    struct Report {
        var archiveSize: Int64 = 0
        var archiveSHA256 = ""
        var metadata: BackupMetadata?
        var members: [String: BackupMetadata.Member] = [:]
        var uploads: BackupMetadata.UploadsSummary?
        var legacyLayout = false
        var hasUploads = false
        /// Whether `uploads.sha256` is the digest of the files read (`Destinations.hashUploads`).
        var uploadsHashed = true
        var hasEnv = false
        /// The roles' SQL (globals.sql), when the archive has it.
        var globals: [UInt8]?
    }

    private let logger: Logger
    private let progress: ProgressReporter
    private let policy: UploadsPolicy
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)
    private var extracted: Int64 = 0

    init(logger: Logger, progressInterval: TimeInterval, policy: UploadsPolicy = UploadsPolicy()) {
        self.logger = logger
        self.progress = ProgressReporter(logger: logger, interval: progressInterval)
        self.policy = policy
    }

    /// Reads the archive once. With `identities`, it is age-decrypted on the way: every chunk is authenticated
    /// before its bytes are used, the stored (encrypted) bytes are what is hashed.
    ///
    /// `databaseStarting` is called when database.dump's header is reached, before its first byte is staged,
    /// with what has been found so far (globals.sql, which our archives hold just before it; older ones, just
    /// after). `databaseRead` is called once, as soon as the archive has moved past both, with what has been
    /// found so far: the dump is staged and both are hashed, while the rest of the archive is still unread and
    /// unchecked.
    ///
    /// `declared` (the manifest's metadata) bounds what is read: each member stops at its recorded size, the
    /// uploads at their recorded bytes, files and folders, and a member it does not list holds nothing; without
    /// it (an archive of the runbook's script), what is written stops short of filling a file system (see
    /// `SpaceAllowance`).
    func read(
        _ reader: any ObjectReader, name: String, identities: [AgeIdentity]?, into destinations: Destinations,
        declared: BackupMetadata? = nil,
        databaseStarting: (Report) -> Void = { _ in }, databaseRead: (Report) -> Void = { _ in }
    ) throws -> Report {
        let hashing = HashingSource(reader)
        let plain: any ByteSource = try identities.map { try AgeDecryptingSource(identities: $0, source: hashing) } ?? hashing
        let archive = try ArchiveReader(source: plain, name: name)
        var report = Report()
        if let staging = destinations.uploads { try FolderSwap.makeStagingFolder(staging) }
        let owner = policy.restoreOwners ? nil : destinations.uploadsOwner
        report.uploadsHashed = destinations.hashUploads
        let tree = UploadsExtraction(
            root: destinations.uploads, declared: declared, policy: policy, owner: owner, hashing: destinations.hashUploads,
            space: declared == nil ? try destinations.uploads.map { try SpaceAllowance.of($0) } : nil,
            linkSpace: declared != nil && declared?.uploads?.links == nil
                ? try destinations.uploads.map { try SpaceAllowance.of($0) } : nil)
        let dumpSpace = declared == nil ? try SpaceAllowance.of(destinations.dump.file.path, sharing: tree.space) : nil
        let envSpace = declared == nil ? try destinations.env.map { try SpaceAllowance.of($0, sharing: dumpSpace) } : nil
        var disk = try destinations.uploads.map { _ in try DiskTreeWriter(settingOwners: policy.restoreOwners || owner != nil) }
        func limit(_ member: String) -> Int64? { declared.map { $0.member(named: member)?.size ?? 0 } }
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
                    archive, entry, relative: relative, disk: disk, tree: tree,
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
                let sink = try destinations.dump.sink()
                if let checked = destinations.dump.checkedMember {
                    // Checked block by block as it is staged: no second hash over the whole dump.
                    _ = try extractOnSecondThread(archive, member, to: sink, limit: limit(member), space: dumpSpace, hashed: false)
                    try destinations.dump.finish()
                    report.members[member] = checked
                } else {
                    let found = try extractOnSecondThread(archive, member, to: sink, limit: limit(member), space: dumpSpace)
                    report.members[member] = found
                    if let expected = destinations.expectedDump, !found.hasSameContent(as: expected) {
                        destinations.dump.arrival?.abandon("database.dump does not match the manifest")
                    }
                    try destinations.dump.finish()
                }
            case ArchiveLayout.envBackup:
                report.hasEnv = true
                let file = try destinations.env.map { try LocalFile(writing: $0) }
                report.members[member] = try extract(archive, member, to: file, limit: limit(member), space: envSpace)
                try file?.sync()
            case ArchiveLayout.globals:
                let sink = MemorySink(limit: 16 << 20)
                report.members[member] = try extract(archive, member, to: sink, limit: limit(member))
                report.globals = sink.bytes
                try destinations.others.map { try Self.write(sink.bytes, to: "\($0)/\(member)") }
            case ArchiveLayout.packageJSON, ArchiveLayout.packageLock:
                let file = try destinations.others.map { try LocalFile(writing: "\($0)/\(member)") }
                report.members[member] = try extract(
                    archive, member, to: file, limit: limit(member), space: destinations.others == nil ? nil : envSpace)
                try file?.sync()
            case ArchiveLayout.metadata:
                var data: [UInt8] = []
                let exceeded = "metadata.json is larger than \(Self.metadataLimit >> 20) MiB"
                try drain(archive, limit: Self.metadataLimit, exceeded: exceeded) { data.append(contentsOf: $0) }
                try destinations.others.map { try Self.write(data, to: "\($0)/\(member)") }
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
                        nested, nestedEntry, relative: Self.legacyUploadsPath(nestedEntry.pathBytes), disk: disk, tree: tree,
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
        if report.hasUploads { report.uploads = tree.digest.summary() }
        return report
    }

    /// A small member, whole, into a new private file.
    private static func write(_ bytes: [UInt8], to path: String) throws {
        let file = try LocalFile(writing: path)
        try bytes.withUnsafeBytes { try file.write($0) }
        try file.sync()
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

    /// Copies the current member into `sink` (or only hashes it) and returns its size and sha256. Stops with an
    /// error at the first byte past `limit` (its declared size).
    private func extract(
        _ archive: ArchiveReader, _ member: String, to sink: (any ByteSink)?, limit: Int64?, space: SpaceAllowance? = nil
    ) throws -> BackupMetadata.Member {
        let hash = BackupInterop.SHA256()
        var count: Int64 = 0
        try drain(archive, limit: limit, exceeded: Self.overDeclared(member, limit)) { chunk in
            try space?.consume(bytes: chunk.count, for: member)
            hash.update(chunk)
            try sink?.write(chunk)
            count += Int64(chunk.count)
        }
        return BackupMetadata.Member(name: member, size: count, sha256: hash.finalizeHex())
    }

    /// `extract`, with the hashing and the writing (and the sealing, when the dump is staged sealed) on a second
    /// thread while this one goes on reading and inflating: the dump is the largest member, and the one a restore
    /// waits for before pg_restore can start.
    /// `hashed: false` for a dump whose blocks the sink checks itself: the member returned then has no sha256.
    private func extractOnSecondThread(
        _ archive: ArchiveReader, _ member: String, to sink: any ByteSink, limit: Int64?, space: SpaceAllowance?,
        hashed: Bool = true
    ) throws -> BackupMetadata.Member {
        let hashing = hashed ? HashingSink(sink) : nil
        let writer = ThreadedSink(hashing ?? sink)
        do {
            try drain(archive, limit: limit, exceeded: Self.overDeclared(member, limit)) { chunk in
                try space?.consume(bytes: chunk.count, for: member)
                try writer.write(chunk)
            }
        } catch {
            try? writer.finish()
            throw error
        }
        try writer.finish()
        return BackupMetadata.Member(name: member, size: hashing?.count ?? 0, sha256: hashing?.finalizeHex() ?? "")
    }

    /// One entry of the uploads tree: checked against the tree's rules and bounds, hashed into the digest and,
    /// when extracting, created under the staging root. Only files, folders and symlinks are created, and hard
    /// links to another entry of the same tree (their path rewritten into the root); devices, fifos and sockets
    /// never are. The root's own entry is never written: the staging folder is ours (0700 until the swap, which
    /// keeps the current uploads folder's owner and mode).
    private func extractTreeEntry(
        _ archive: ArchiveReader, _ entry: ArchiveEntry, relative: [UInt8], disk: DiskTreeWriter?,
        tree: UploadsExtraction, linkTarget: ([UInt8]) -> [UInt8]?
    ) throws {
        let shown = Self.shown(relative)
        let kind: UploadsTreeRules.Kind
        switch entry.kind {
        case .file: kind = .file
        case .directory: kind = .directory
        case .symlink: kind = .symlink(target: entry.symlinkTargetBytes ?? [])
        case .hardlink:
            guard let original = entry.hardlinkTargetBytes, let target = linkTarget(original) else {
                throw ContingencyError.failed(
                    "the hard link \(shown) points outside the uploads (\(Self.shown(raw: entry.hardlinkTargetBytes ?? [])))")
            }
            // pax lets a hard link carry data, which libarchive would write into the linked file (opened with
            // O_TRUNC, then grown to the entry's size), past the content the digest verified and past every bound.
            // Neither backup-job nor tar writes one.
            guard entry.size <= 0 else {
                throw ContingencyError.failed(
                    "the hard link \(shown) carries \(entry.size) bytes of its own: they would overwrite the file it links to"
                        + " (a hard link in a backup never carries data)",
                    hint: "restore another backup (LATEST_BACKUP=…); backup-job never writes such an entry")
            }
            kind = .hardlink(target: target)
        case .other: kind = .other
        }
        do {
            try tree.rules.admit(relative, kind)
        } catch {
            throw Self.refusal(error, shown: shown, entry: entry, linkTarget: linkTarget)
        }
        if relative.isEmpty { return }  // the root: a folder, the staging folder stands for it
        let destination = tree.root.map { Array($0.utf8) + [0x2F] + relative }
        if disk != nil {
            entry.permissions &= Self.permissionMask
            if let owner = tree.owner { entry.owner = owner }
        }
        switch kind {
        case .file:
            try tree.countFile(shown)
            if let destination, let disk {
                try tree.space?.consumeInode(for: shown)
                entry.pathBytes = destination
                try disk.writeHeader(entry)
            }
            let hash = tree.hashing ? BackupInterop.SHA256() : nil
            var count: Int64 = 0
            try drain(archive, limit: tree.bytesLeft, exceeded: tree.overBytes(shown)) { chunk in
                hash?.update(chunk)
                if disk != nil { try tree.space?.consume(bytes: chunk.count, for: shown) }
                try disk?.write(chunk)
                count += Int64(chunk.count)
            }
            tree.spent(bytes: count)
            tree.digest.addFile(relative, size: count, sha256: hash?.finalizeHex() ?? "")
        case .directory:
            try tree.countDirectory(shown)
            if let destination, let disk {
                try tree.space?.consumeInode(for: shown)
                entry.pathBytes = destination
                try disk.writeHeader(entry)
            }
            tree.digest.addDirectory(relative)
        case .symlink(let target):
            try tree.countLink(shown)
            if let destination, let disk {
                try tree.space?.consumeInode(for: shown)
                entry.pathBytes = destination
                try disk.writeHeader(entry)
            }
            tree.digest.addSymlink(relative, target: target)
        case .hardlink(let target):
            try tree.countLink(shown)
            if let destination, let root = tree.root, let disk {
                entry.pathBytes = destination
                entry.hardlinkTargetBytes = Array(root.utf8) + [0x2F] + target
                try disk.writeHeader(entry)
            }
            tree.digest.addHardlink(relative, target: target)
        case .other:
            logger.warning("Not restoring \(shown): not a regular file, folder or link")
            return
        }
        try disk?.finishEntry()
    }

    /// `uploads/<path>` for messages.
    static func shown(_ relative: [UInt8]) -> String {
        relative.isEmpty ? ArchiveLayout.uploadsDirectory : "\(ArchiveLayout.uploadsDirectory)/\(shown(raw: relative))"
    }

    /// Bytes as text for a message: invalid UTF-8 replaced, control characters escaped.
    static func shown(raw bytes: [UInt8]) -> String {
        String(decoding: bytes, as: UTF8.self).unicodeScalars.map { scalar in
            scalar.value < 0x20 || scalar.value == 0x7F ? "\\u{\(String(scalar.value, radix: 16))}" : String(scalar)
        }
        .joined()
    }

    private static func refusal(
        _ refusal: UploadsTreeRules.Refusal, shown: String, entry: ArchiveEntry, linkTarget: ([UInt8]) -> [UInt8]?
    ) -> ContingencyError {
        // backup-job never writes these: the archive was made or changed by something else.
        let other = "restore another backup (LATEST_BACKUP=…); backup-job never writes such an entry"
        switch refusal {
        case .rootNotFolder:
            let target = Self.shown(raw: entry.symlinkTargetBytes ?? [])
            let what = entry.kind == .symlink ? "a symlink (to \(target))" : "not a folder"
            return .failed("the archive's uploads entry is \(what): restoring it would replace the uploads folder", hint: other)
        case .dotDot:
            return .failed("\(shown) has a .. in its path: it would be written outside the uploads", hint: other)
        case .throughSymlink(let link):
            return .failed(
                "\(shown) goes through the symlink \(Self.shown(link)): a restore never writes through a link", hint: other)
        case .symlinkOutside:
            return .failed(
                "the symlink \(shown) points outside the uploads (to \(Self.shown(raw: entry.symlinkTargetBytes ?? [])))",
                hint: "if this backup is genuine and such links are wanted, set RESTORE_ALLOW_OUTSIDE_SYMLINKS=true")
        case .hardLinkOutside:
            let target = Self.shown(raw: entry.hardlinkTargetBytes ?? [])
            return .failed("the hard link \(shown) points outside the uploads (\(target))", hint: other)
        case .hardLinkToSymlink:
            let target = Self.shown(entry.hardlinkTargetBytes.flatMap(linkTarget) ?? [])
            return .failed(
                "the hard link \(shown) points to the symlink \(target): the copy of a link in another folder may point "
                    + "outside the uploads",
                hint: "if this backup is genuine, set RESTORE_ALLOW_OUTSIDE_SYMLINKS=true")
        }
    }

    static func overDeclared(_ member: String, _ limit: Int64?) -> String {
        guard let limit else { return "" }
        return limit == 0 && member != ArchiveLayout.metadata
            ? "\(member) is not listed in the manifest but holds data"
            : "\(member) holds more than the \(limit) bytes the manifest records: stopped reading it there"
    }

    /// Feeds the current entry's data to `body`, a chunk at a time. With `limit`, no more than `limit` bytes
    /// reach `body`: at the first byte past it, reading stops with the error `exceeded`.
    private func drain(
        _ archive: ArchiveReader, limit: Int64? = nil, exceeded: @autoclosure () -> String = "",
        _ body: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        var total: Int64 = 0
        try buffer.withUnsafeMutableBytes { raw in
            while true {
                // One byte more than the limit allows is enough to know it is exceeded.
                let want = limit.map { Int(min(Int64(raw.count), max(0, $0 - total) + 1)) } ?? raw.count
                let n = try archive.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<want]))
                if n == 0 { return }
                total += Int64(n)
                if let limit, total > limit { throw ContingencyError.failed(exceeded()) }
                try body(UnsafeRawBufferPointer(rebasing: raw[0..<n]))
                extracted += Int64(n)
                progress.update("reading archive, extracted", bytes: extracted)
            }
        }
    }
}

/// The state of one uploads tree's extraction: its rules, its digest, what the manifest still allows.
final class UploadsExtraction {
    let root: String?
    var rules: UploadsTreeRules
    let digest = UploadsDigest()
    /// Whether each file's content is hashed into `digest` (`ArchiveVerifier.Destinations.hashUploads`).
    let hashing: Bool
    let owner: (uid: uid_t, gid: gid_t)?
    /// Set when the archive declares nothing (no manifest): the file system's free space bounds it instead.
    let space: SpaceAllowance?
    /// Set when the manifest declares no link count (backups made before it did): free inodes bound the links.
    private let linkSpace: SpaceAllowance?
    private var links = 0
    private let declared: BackupMetadata.UploadsSummary?
    private let bounded: Bool
    private var bytes: Int64 = 0
    private var files = 0
    private var directories = 0

    init(
        root: String?, declared: BackupMetadata?, policy: ArchiveVerifier.UploadsPolicy, owner: (uid: uid_t, gid: gid_t)?,
        hashing: Bool = true, space: SpaceAllowance?, linkSpace: SpaceAllowance? = nil
    ) {
        self.root = root
        self.hashing = hashing
        self.rules = UploadsTreeRules(allowOutsideSymlinks: policy.allowOutsideSymlinks)
        self.owner = owner
        self.space = space
        self.linkSpace = linkSpace
        self.declared = declared?.uploads
        self.bounded = declared != nil
    }

    /// Bytes the next file may hold; nil when nothing is declared.
    var bytesLeft: Int64? { bounded ? max(0, (declared?.bytes ?? 0) - bytes) : nil }

    func spent(bytes count: Int64) { bytes += count }

    func overBytes(_ shown: String) -> String {
        "the uploads hold more than the \(declared?.bytes ?? 0) bytes the manifest records: stopped reading at \(shown)"
    }

    func countFile(_ shown: String) throws {
        files += 1
        if bounded && files > declared?.files ?? 0 {
            throw ContingencyError.failed(
                "the uploads hold more than the \(declared?.files ?? 0) files the manifest records: stopped at \(shown)")
        }
    }

    /// A symbolic or hard link: each costs an inode (and a long target a block) that no byte count holds.
    func countLink(_ shown: String) throws {
        links += 1
        if bounded, let declaredLinks = declared?.links, links > declaredLinks {
            throw ContingencyError.failed(
                "the uploads hold more than the \(declaredLinks) links the manifest records: stopped at \(shown)")
        }
        if root != nil { try linkSpace?.consumeInode(for: shown) }
    }

    func countDirectory(_ shown: String) throws {
        directories += 1
        if bounded && directories > declared?.directories ?? 0 {
            throw ContingencyError.failed(
                "the uploads hold more than the \(declared?.directories ?? 0) folders the manifest records: stopped at \(shown)")
        }
    }
}

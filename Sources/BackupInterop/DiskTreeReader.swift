import BackupCore
import CLibArchive
import Foundation

/// Walks a folder on disk and reads its files, through libarchive's disk reader (which already knows
/// stat, symlinks, long names and ownership). Owns one `archive_read_disk` handle.
public final class DiskTreeReader: ByteSource {
    private let archive: OpaquePointer
    public let root: String
    /// Entries directly under the root whose names start with one of these are left out, with all they hold
    /// (a restore's working folders inside a mount point: never part of the application's files).
    public var excludedTopLevelPrefixes: [String] = []

    /// Opens `root` for walking. Symlinks inside the tree are stored as links, the root itself is followed.
    public init(root: String) throws {
        _ = ArchiveCall.utf8Locale
        guard let archive = archive_read_disk_new() else { throw ContingencyError.failed("archive_read_disk_new: out of memory") }
        self.archive = archive
        self.root = root
        let context = "reading \(root)"
        try ArchiveCall.check(archive_read_disk_set_symlink_hybrid(archive), "archive_read_disk_set_symlink_hybrid", archive, context: context)
        try ArchiveCall.check(archive_read_disk_set_standard_lookup(archive), "archive_read_disk_set_standard_lookup", archive, context: context)
        let behavior = ARCHIVE_READDISK_NO_XATTR | ARCHIVE_READDISK_NO_ACL | ARCHIVE_READDISK_NO_FFLAGS
        try ArchiveCall.check(archive_read_disk_set_behavior(archive, behavior), "archive_read_disk_set_behavior", archive, context: context)
        try ArchiveCall.check(archive_read_disk_open(archive, root), "archive_read_disk_open", archive, context: context)
    }

    deinit { archive_read_free(archive) }

    /// The next entry, depth first, starting with the root itself; false when the walk is over. An entry that
    /// cannot be read (permission denied on a sub-folder) throws: a backup never silently skips files.
    public func next(into entry: ArchiveEntry) throws -> Bool {
        while true {
            guard try nextHeader(into: entry) else { return false }
            if excludedTopLevelPrefixes.isEmpty || !isExcluded(entry.pathname) { break }
        }
        if archive_read_disk_can_descend(archive) != 0 {
            try ArchiveCall.check(archive_read_disk_descend(archive), "archive_read_disk_descend", archive, context: "reading \(entry.pathname)")
        }
        return true
    }

    private func isExcluded(_ path: String) -> Bool {
        let base = root.hasSuffix("/") ? root : root + "/"
        guard path.hasPrefix(base) else { return false }
        let name = path.dropFirst(base.count)
        return !name.contains("/") && excludedTopLevelPrefixes.contains { name.hasPrefix($0) }
    }

    private func nextHeader(into entry: ArchiveEntry) throws -> Bool {
        let status = archive_read_next_header2(archive, entry.pointer)
        if status == ARCHIVE_EOF { return false }
        if status != ARCHIVE_OK {
            let code = archive_errno(archive)
            let reason = code != 0 ? " (\(String(cString: strerror(code))))" : ""
            throw ContingencyError.failed(
                "\(root) is not readable by uid \(geteuid()): \(ArchiveCall.message(of: archive))\(reason)",
                hint: "make the whole uploads folder readable by the backup job's user; nothing was published")
        }
        return true
    }

    /// Reads the current regular file's content; 0 at its end.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let count = archive_read_data(archive, buffer.baseAddress, buffer.count)
        if count < 0 {
            throw ContingencyError.failed("reading \(root): archive_read_data: \(ArchiveCall.message(of: archive))",
                hint: "make the uploads folder readable by the backup job's user")
        }
        return count
    }
}

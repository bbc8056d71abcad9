import BackupCore
import CLibArchive
import Foundation

/// Creates files, folders and links on disk from archive entries, refusing `..` and writes through symlinks
/// (libarchive's secure extraction flags: a second guard behind the caller's own checks, tested on its own).
/// Owns one `archive_write_disk` handle.
public final class DiskTreeWriter {
    private let archive: OpaquePointer

    /// - Parameter settingOwners: set each entry's owner (uid and gid as the entry holds them, never its names'
    ///   lookup when the caller set numbers). Only root can; for others entries belong to the writing user.
    public init(settingOwners: Bool = false) throws {
        _ = ArchiveCall.utf8Locale
        guard let archive = archive_write_disk_new() else { throw ContingencyError.failed("archive_write_disk_new: out of memory") }
        self.archive = archive
        // Callers rewrite every entry's path to `<staging folder>/<relative path>`, which is absolute, so
        // NOABSOLUTEPATHS cannot be used; NODOTDOT (any `..` refused) and SYMLINKS (no write through an existing
        // symlink) keep entries inside it.
        var flags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_NODOTDOT
            | ARCHIVE_EXTRACT_SECURE_SYMLINKS
        if settingOwners && geteuid() == 0 { flags |= ARCHIVE_EXTRACT_OWNER }
        try ArchiveCall.check(archive_write_disk_set_options(archive, flags), "archive_write_disk_set_options", archive, context: "extracting")
        try ArchiveCall.check(archive_write_disk_set_standard_lookup(archive), "archive_write_disk_set_standard_lookup", archive, context: "extracting")
    }

    deinit { archive_write_free(archive) }

    /// Creates the entry (its path already rewritten to the destination by the caller).
    public func writeHeader(_ entry: ArchiveEntry) throws {
        try ArchiveCall.check(archive_write_header(archive, entry.pointer), "archive_write_header", archive, context: "extracting \(entry.pathname)")
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let written = archive_write_data(archive, bytes.baseAddress! + offset, bytes.count - offset)
            if written <= 0 {
                throw ContingencyError.failed("extracting: archive_write_data: \(ArchiveCall.message(of: archive))")
            }
            offset += written
        }
    }

    public func finishEntry() throws {
        try ArchiveCall.check(archive_write_finish_entry(archive), "archive_write_finish_entry", archive, context: "extracting")
    }

    /// Applies deferred folder permissions and times.
    public func close() throws {
        try ArchiveCall.check(archive_write_close(archive), "archive_write_close", archive, context: "extracting")
    }
}

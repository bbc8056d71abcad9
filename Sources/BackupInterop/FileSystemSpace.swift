import BackupCore
import CLinux
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Free space of the file system a path is on: the one place every job asks (the store's rule of twice the last
/// backup, the restore's checks before writing, the bound on archives that declare no sizes).
public struct FileSystemSpace: Sendable, Equatable {
    /// Bytes an unprivileged writer may still use.
    public let freeBytes: Int64
    /// The file system's whole size.
    public let totalBytes: Int64
    /// Inodes (files, folders, links) an unprivileged writer may still create.
    public let freeInodes: Int64
    /// The device, to tell whether two paths share a file system.
    public let device: UInt64

    /// The file system holding `path`, or its nearest existing ancestor when it does not exist yet.
    public static func of(_ path: String) throws -> FileSystemSpace {
        var existing = path
        while access(existing, F_OK) != 0, existing.count > 1, existing.contains("/") {
            existing = (existing as NSString).deletingLastPathComponent
            if existing.isEmpty { existing = "/" }
        }
        var info = statvfs()
        var status = stat()
        guard statvfs(existing, &info) == 0, stat(existing, &status) == 0 else {
            throw ContingencyError.failed("checking free space of \(existing): \(String(cString: strerror(errno)))")
        }
        return FileSystemSpace(
            freeBytes: Int64(info.f_bavail) * Int64(info.f_frsize), totalBytes: Int64(info.f_blocks) * Int64(info.f_frsize),
            freeInodes: Int64(info.f_favail), device: UInt64(status.st_dev))
    }
}

extension FileSystemSpace {
    /// Frees the disk space and cached pages of `range` of the open file `fd` (a hole: it reads as zeros, the
    /// file keeps its size), for bytes a job has used and will not read again. Returns whether any of the range
    /// may now read as zeros: when it was freed, and when it failed partway (ENOSPC, EIO: a file system zeroes the
    /// partial blocks at its ends first); not where the file system cannot punch holes at all (EOPNOTSUPP,
    /// ENOSYS), which changes nothing: the bytes then stay, which costs only space.
    public static func release(_ range: Range<Int64>, ofFile fd: Int32) -> Bool {
        guard !range.isEmpty else { return false }
        if contingency_punch_hole(fd, range.lowerBound, Int64(range.count)) == 0 { return true }
        return errno != EOPNOTSUPP && errno != ENOSYS
    }
}

/// Bytes free for new files on the file system holding `path` (or its nearest existing ancestor).
public func freeBytes(at path: String) throws -> Int64 { try FileSystemSpace.of(path).freeBytes }

import BackupCore
import BackupInterop
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A local folder for the temporary files a job needs beside its store: the database dump between pg_dump and
/// the archive (a tar header needs its size first) or between the archive and pg_restore (which needs it
/// whole), and scratch folders. A volume store's is its own `.contingency/tmp`; a bucket-only store's is
/// `STAGING_DIR`.
///
/// Every file or folder in use is held under a shared `flock` by its owner, which the kernel drops when the
/// owner dies: whatever can be locked exclusively belongs to nobody alive and may be removed.
public struct LocalStaging: Sendable, CustomStringConvertible {
    public let folder: String

    /// A folder that the caller has made (the volume store's).
    init(existing folder: String) { self.folder = folder }

    /// Creates `folder` (mode 0700: temporary files hold dumps and .env copies) if needed. A folder that
    /// exists keeps its mode (it may be shared, like /tmp): each file made in it is 0600 anyway.
    public init(creating folder: String) throws {
        self.folder = folder.count > 1 && folder.hasSuffix("/") ? String(folder.dropLast()) : folder
        if !FileManager.default.fileExists(atPath: self.folder) {
            do {
                try FileManager.default.createDirectory(
                    atPath: self.folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw ContingencyError.configuration(
                    "cannot create the staging folder \(self.folder): \(error)", hint: "set STAGING_DIR to a writable local folder")
            }
        }
        guard access(self.folder, W_OK) == 0 else {
            throw ContingencyError.configuration(
                "the staging folder \(self.folder) is not writable by uid \(geteuid())", hint: "set STAGING_DIR to a writable local folder")
        }
    }

    public var description: String { folder }

    static func isTemporaryName(_ name: String) -> Bool {
        let parts = name.split(separator: ".")
        guard parts.count >= 3, parts.last == "partial" else { return false }
        let tag = parts[parts.count - 2]
        return tag.count == 8 && tag.allSatisfy { $0.isHexDigit }
    }

    /// A fresh path in the folder.
    func temporaryPath(_ name: String) -> String {
        "\(folder)/\(name).\(UUID().uuidString.prefix(8).lowercased()).partial"
    }

    /// A new empty folder (mode 0700), held in use until the object goes away, when it is removed with its content.
    public func makeTemporaryFolder(_ name: String) throws -> TemporaryFolder {
        try TemporaryFolder(path: temporaryPath(name))
    }

    /// A new empty file (mode 0600), held in use until the object goes away, when it is removed. For data that
    /// another program writes by path (pg_dump's output).
    public func makeTemporaryFile(_ name: String) throws -> TemporaryFile {
        try TemporaryFile(path: temporaryPath(name))
    }

    /// Bytes free in the folder's filesystem.
    public func availableBytes() -> Int64? { try? freeBytes(at: folder) }

    /// Removes temporary files and folders left by runs that died, whichever job (a lease-free `--verify`
    /// too) made them. Only names this type makes (`….<8 hex>.partial`) are considered: the folder may be
    /// shared. Returns how many.
    public func removeStaleTemporaries() -> Int {
        var removed = 0
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] where Self.isTemporaryName(name) {
            let entry = "\(folder)/\(name)"
            let fd = open(entry, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            if flock(fd, LOCK_EX | LOCK_NB) == 0 {
                try? FileManager.default.removeItem(atPath: entry)
                removed += 1
            }
            close(fd)
        }
        return removed
    }
}

/// A file in a staging folder, marked in use (a shared `flock`) for as long as this object lives, then
/// removed. Created empty with mode 0600 so that what is written into it is never readable by others.
public final class TemporaryFile: Sendable {
    public let path: String
    private let fd: Int32

    init(path: String) throws {
        self.path = path
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw VolumeError.failure("creating", path) }
        flock(fd, LOCK_SH)
    }

    deinit {
        unlink(path)
        close(fd)
    }

    /// Frees the disk space and cached pages of `range`, which nothing will read again (it then reads as zeros);
    /// returns whether any of it may now read as zeros (`FileSystemSpace.release`).
    public func release(_ range: Range<Int64>) -> Bool { FileSystemSpace.release(range, ofFile: fd) }

    /// The file's current size.
    public var size: Int64 {
        var info = stat()
        return stat(path, &info) == 0 ? Int64(info.st_size) : 0
    }
}

/// A folder in a staging folder, marked in use (a shared `flock` on it) for as long as this object lives, then
/// removed with everything in it.
public final class TemporaryFolder: Sendable {
    public let path: String
    private let fd: Int32

    init(path: String) throws {
        self.path = path
        guard mkdir(path, 0o700) == 0 else { throw VolumeError.failure("creating", path) }
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw VolumeError.failure("opening", path) }
        flock(fd, LOCK_SH)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
        close(fd)
    }
}

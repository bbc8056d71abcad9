import BackupCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A file on the local disk opened for streaming. Owns one file descriptor.
public final class LocalFile: ByteSource, ByteSink {
    public let path: String
    private var fd: Int32

    /// Opens an existing file for reading.
    public init(reading path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Self.error("opening", path) }
    }

    /// Opens a file for writing from its start: created (mode `permissions`) when missing, emptied when not.
    public init(writing path: String, permissions: mode_t = 0o600) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, permissions)
        guard fd >= 0 else { throw Self.error("creating", path) }
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno != EINTR { throw Self.error("reading", path) }
        }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw Self.error("writing", path)
            }
            offset += n
        }
    }

    /// Moves to `offset` from the start: the next read or write happens there.
    public func seek(to offset: Int64) throws {
        guard lseek(fd, off_t(offset), SEEK_SET) >= 0 else { throw Self.error("seeking in", path) }
    }

    /// Makes the content durable.
    public func sync() throws {
        guard fsync(fd) == 0 else { throw Self.error("syncing", path) }
    }

    /// The open file's status (size, mode, times), from the descriptor: what is read is what is described.
    public func status() throws -> stat {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw Self.error("checking", path) }
        return info
    }

    public func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    static func error(_ action: String, _ path: String) -> ContingencyError {
        let code = errno
        let hint: String? =
            switch code {
            case ENOSPC, EDQUOT: "free space on that filesystem"
            case EACCES, EPERM: "check the permissions of \(path) for uid \(geteuid())"
            default: nil
            }
        return .failed("\(action) \(path): \(String(cString: strerror(code)))", hint: hint)
    }
}

/// Aggregate digest of an uploads tree: one sha256 over every entry's kind, relative path, size and content
/// hash in archive order. The writer and the reader compute it the same way, so a restore checks the whole
/// tree with one value while the metadata stays small whatever the number of files. Paths are bytes: file
/// names need not be valid UTF-8.
public final class UploadsDigest {
    private let hash = SHA256()
    public private(set) var files = 0
    public private(set) var directories = 0
    public private(set) var bytes: Int64 = 0
    public private(set) var links = 0

    public init() {}

    public func addFile(_ path: [UInt8], size: Int64, sha256: String) {
        add("f", path, "\(size)\u{0}\(sha256)")
        files += 1
        bytes += size
    }

    public func addDirectory(_ path: [UInt8]) {
        add("d", path, "")
        directories += 1
    }

    public func addSymlink(_ path: [UInt8], target: [UInt8]) {
        hash.update(Array("l ".utf8) + path + [0] + target + [0x0A])
        links += 1
    }

    public func addHardlink(_ path: [UInt8], target: [UInt8]) {
        hash.update(Array("h ".utf8) + path + [0] + target + [0x0A])
        links += 1
    }

    private func add(_ kind: String, _ path: [UInt8], _ rest: String) {
        hash.update(Array("\(kind) ".utf8) + path + (rest.isEmpty ? [] : [0] + Array(rest.utf8)) + [0x0A])
    }

    public func summary() -> BackupMetadata.UploadsSummary {
        BackupMetadata.UploadsSummary(
            files: files, directories: directories, bytes: bytes, sha256: hash.finalizeHex(), links: links)
    }
}

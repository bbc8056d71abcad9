import BackupCore
import BackupInterop
import CoreMetrics
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A store on a local or shared folder (`BACKUP_DIR`).
///
/// Atomic publish is write to `.contingency/tmp`, fsync, rename into place, fsync the folder. Conditional
/// create is `link(2)` of a complete temporary file (fails with EEXIST, never shows a half-written object);
/// compare-and-swap runs under an exclusive `flock` on the folder's `.guard` file, which every conditional
/// operation takes. Versions are the sha256 of the content.
public struct VolumeStorage: Storage {
    public let root: String
    /// The store's temporary folder, `.contingency/tmp`: on the store's filesystem, so a finished file is
    /// published by a rename; also where jobs stage the database dump.
    public let staging: LocalStaging
    static let temporaryFolder = ".contingency/tmp"
    /// The mode of every object the store publishes (archives, manifests, leases, requests, state, metrics):
    /// read and write for the owner, read for the group (the containers that share a store share a group),
    /// nothing for others. Set with fchmod, so a umask neither widens nor narrows it: an archive holds the
    /// `.env` and the database, and a manifest tells what it holds.
    public static let objectMode: mode_t = 0o640
    /// How long a conditional operation waits for another process's guard before failing.
    static let guardTimeout: TimeInterval = 30

    /// Opens the store at `root`, creating its `.contingency` folders. Fails when the folder cannot be written,
    /// unless `readOnly`, for reading an archive from a folder that is not a store (and may be read-only).
    public init(root: String, readOnly: Bool = false) throws {
        self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
        staging = LocalStaging(existing: "\(self.root)/\(Self.temporaryFolder)")
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: self.root, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ContingencyError.configuration(
                "BACKUP_DIR \(self.root) does not exist or is not a folder",
                hint: "create it (mkdir -p \(self.root)) or mount the backup volume there")
        }
        guard !readOnly else { return }
        try makeFolder(Self.temporaryFolder)
        // Temporary files hold uncompressed dumps and .env copies: owner only.
        chmod(path(Self.temporaryFolder), 0o700)
        guard access(self.root, W_OK) == 0 else {
            throw ContingencyError.configuration(
                "BACKUP_DIR \(self.root) is not writable by uid \(geteuid())",
                hint: "chown the volume to the job's user or run the job as its owner")
        }
    }

    public var description: String { root }
    public var kind: StoreKind { .volume }
    public var localFolder: String? { root }
    public var localStaging: LocalStaging? { staging }
    /// A volume's writes leave temporary files, not open uploads: `removeStaleTemporaries` clears those.
    public func abortInterruptedUploads(named isOurs: (String) -> Bool) throws -> Int { 0 }
    /// A file system call is not retried, and a volume is not wrapped in `RetryingStorage`: it fails for reasons
    /// another try does not cure (permission, disk full, I/O error), and NFS retries its own requests below it.
    public func countRetries(in factory: any MetricsFactory) {}

    func path(_ key: String) -> String { key.isEmpty ? root : "\(root)/\(key)" }

    func makeFolder(_ folder: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path(folder), withIntermediateDirectories: true)
        } catch {
            throw VolumeError.failure("creating folder", path(folder), errno: EACCES, detail: "\(error)")
        }
    }

    public func makeWriter(key: String) throws -> any ObjectWriter {
        try makeFolder(parent(of: key))
        return try VolumeObjectWriter(storage: self, key: key)
    }

    public func openReader(key: String) throws -> (any ObjectReader)? { try openFile(key) }

    private func openFile(_ key: String) throws -> VolumeObjectReader? {
        let fd = open(path(key), O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw VolumeError.failure("opening", path(key))
        }
        return try VolumeObjectReader(fd: fd, path: path(key))
    }

    /// Reads a regular file whole, no more than the size it had when opened. Anyone who can write to the store
    /// can put a FIFO there (whose open would wait for a writer: O_NONBLOCK returns at once, and the file is then
    /// refused), a device (`/dev/zero` through a symlink: endless), or a file that keeps growing.
    public func read(key: String) throws -> StoredObject? {
        let fd = open(path(key), O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw VolumeError.failure("opening", path(key))
        }
        let reader = try VolumeObjectReader(fd: fd, path: path(key))
        guard reader.isRegularFile else {
            throw ContingencyError.failed(
                "reading \(path(key)): not a regular file", hint: "remove it from the backup volume; nothing here makes one")
        }
        var data: [UInt8] = []
        data.reserveCapacity(Int(min(reader.size, 1 << 24)))
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = try chunk.withUnsafeMutableBytes { try reader.read(into: $0) }
            if n == 0 { break }
            data.append(contentsOf: chunk[0..<n])
            guard data.count <= reader.size else {
                throw ContingencyError.failed("reading \(path(key)): it grew while it was read", hint: "try again")
            }
        }
        return StoredObject(data: data, etag: Self.etag(data), modified: reader.modified)
    }

    public func put(key: String, data: [UInt8]) throws {
        try makeFolder(parent(of: key))
        let temporary = try writeTemporary(for: key, data: data)
        guard rename(temporary, path(key)) == 0 else {
            let error = VolumeError.failure("publishing", path(key))
            unlink(temporary)
            throw error
        }
        try syncFolder(parent(of: key))
    }

    public func create(key: String, data: [UInt8]) throws -> String? {
        try makeFolder(parent(of: key))
        return try withGuard(parent(of: key)) {
            let temporary = try writeTemporary(for: key, data: data)
            defer { unlink(temporary) }
            guard link(temporary, path(key)) == 0 else {
                if errno == EEXIST { return nil }
                throw VolumeError.failure("creating", path(key))
            }
            try syncFolder(parent(of: key))
            return Self.etag(data)
        }
    }

    public func replace(key: String, data: [UInt8], ifMatch etag: String) throws -> String? {
        try withGuard(parent(of: key)) {
            guard let current = try read(key: key), current.etag == etag else { return nil }
            try put(key: key, data: data)
            return Self.etag(data)
        }
    }

    @discardableResult
    public func delete(key: String, ifMatch etag: String?) throws -> Bool {
        let remove = {
            guard unlink(path(key)) == 0 else {
                if errno == ENOENT { return false }
                throw VolumeError.failure("deleting", path(key))
            }
            return true
        }
        guard let etag else { return try remove() }
        return try withGuard(parent(of: key)) {
            guard let current = try read(key: key), current.etag == etag else { return false }
            return try remove()
        }
    }

    public func list(folder: String) throws -> [ObjectInfo] {
        let folderPath = path(folder)
        guard let directory = opendir(folderPath) else {
            if errno == ENOENT { return [] }
            throw VolumeError.failure("listing", folderPath)
        }
        defer { closedir(directory) }
        var objects: [ObjectInfo] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            var info = stat()
            guard lstat("\(folderPath)/\(name)", &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            let key = folder.isEmpty ? name : "\(folder)/\(name)"
            objects.append(ObjectInfo(key: key, size: Int64(info.st_size), modified: Self.date(info.st_mtim)))
        }
        return objects
    }

    /// Whether an object exists under `key`.
    public func exists(_ key: String) -> Bool { access(path(key), F_OK) == 0 }

    public func availableBytes() throws -> Int64? { try freeBytes(at: root) }

    /// The modification time the file system stamps on a file created now in the store's temporary folder:
    /// the kernel's clock on a local disk, the server's on NFS, the same clock as every object's `modified`.
    public func currentTime() throws -> Date {
        let probe = temporaryPath("clock")
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw VolumeError.failure("creating", probe) }
        defer {
            close(fd)
            unlink(probe)
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw VolumeError.failure("reading the time of", probe) }
        return Self.date(info.st_mtim)
    }

    static func date(_ time: timespec) -> Date {
        Date(timeIntervalSince1970: Double(time.tv_sec) + Double(time.tv_nsec) / 1e9)
    }

    /// Removes temporary files left by runs that died (see `LocalStaging.removeStaleTemporaries`).
    public func removeStaleTemporaries() -> Int { staging.removeStaleTemporaries() }

    /// A fresh path in the store's temporary folder, on the same filesystem as the store (for rename).
    func temporaryPath(_ name: String) -> String { staging.temporaryPath(name) }

    static func etag(_ data: [UInt8]) -> String { String(BackupInterop.SHA256.hex(of: data).prefix(32)) }

    private func parent(of key: String) -> String {
        guard let slash = key.lastIndex(of: "/") else { return "" }
        return String(key[..<slash])
    }

    private func writeTemporary(for key: String, data: [UInt8]) throws -> String {
        let temporary = temporaryPath(String(key.split(separator: "/").last ?? "object"))
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw VolumeError.failure("writing", temporary) }
        defer { close(fd) }
        flock(fd, LOCK_SH)
        do {
            guard fchmod(fd, Self.objectMode) == 0 else { throw VolumeError.failure("setting the mode of", temporary) }
            try data.withUnsafeBytes { try VolumeObjectWriter.writeAll(fd, $0, path: path(key)) }
            guard fsync(fd) == 0 else { throw VolumeError.failure("syncing", temporary) }
        } catch {
            unlink(temporary)
            throw error
        }
        return temporary
    }

    func syncFolder(_ folder: String) throws {
        let fd = open(path(folder), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw VolumeError.failure("opening folder", path(folder)) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw VolumeError.failure("syncing folder", path(folder)) }
    }

    private func withGuard<T>(_ folder: String, _ body: () throws -> T) throws -> T {
        let guardPath = path(folder.isEmpty ? ".guard" : "\(folder)/.guard")
        // Read-only is enough for flock, and lets every member of the store's group take the guard.
        let fd = open(guardPath, O_RDONLY | O_CREAT | O_CLOEXEC, Self.objectMode)
        guard fd >= 0 else { throw VolumeError.failure("opening", guardPath) }
        defer { close(fd) }
        // Exact whatever the umask; refused (and harmless) on a guard another user created.
        _ = fchmod(fd, Self.objectMode)
        // Every holder keeps the guard for a read and a write only. One that has held it for long is stopped
        // or hung (SIGSTOP, `docker pause`, a dead NFS server): fail with a reason rather than wait forever.
        let deadline = Date().addingTimeInterval(Self.guardTimeout)
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else { throw VolumeError.failure("locking", guardPath) }
            guard Date() < deadline else {
                throw ContingencyError.failed(
                    "\(guardPath) has been held for \(Int(Self.guardTimeout))s by another process, which must be stopped or hung",
                    hint: "find it with `fuser \(guardPath)`; it is released when that process resumes or ends")
            }
            usleep(10_000)
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }
}

/// Builds errors for failed system calls on the volume, with the advice an operator needs.
enum VolumeError {
    static func failure(_ action: String, _ path: String, errno code: Int32 = errno, detail: String? = nil) -> ContingencyError {
        let reason = detail ?? String(cString: strerror(code))
        switch code {
        case ENOSPC, EDQUOT:
            return .failed(
                "\(action) \(path): \(reason)",
                hint: "free space on the backup volume or remove old backups (cleanup-job); nothing was published")
        case EACCES, EPERM, EROFS:
            return .failed("\(action) \(path): \(reason)", hint: "check the backup volume's permissions and mount options")
        default:
            return .failed("\(action) \(path): \(reason)")
        }
    }
}

/// Streams into a temporary file in the store; `commit` fsyncs and renames it into place.
final class VolumeObjectWriter: ObjectWriter {
    private let storage: VolumeStorage
    private let key: String
    private let temporary: String
    private var fd: Int32
    private var finished = false

    init(storage: VolumeStorage, key: String) throws {
        self.storage = storage
        self.key = key
        self.temporary = storage.temporaryPath(String(key.split(separator: "/").last ?? "object"))
        // Owner only while written, `objectMode` once published: archives hold the application's .env and its
        // database.
        fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw VolumeError.failure("creating", temporary) }
        flock(fd, LOCK_SH)  // in use: see `removeStaleTemporaries`
    }

    deinit { abort() }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try Self.writeAll(fd, bytes, path: storage.path(key))
    }

    func commit(beforePublishing check: () throws -> Void) throws {
        guard !finished else { return }
        do {
            guard fchmod(fd, VolumeStorage.objectMode) == 0 else {
                throw VolumeError.failure("setting the mode of", temporary)
            }
            guard fsync(fd) == 0 else { throw VolumeError.failure("syncing", temporary) }
            try check()
            close(fd)
            fd = -1
            guard rename(temporary, storage.path(key)) == 0 else { throw VolumeError.failure("publishing", storage.path(key)) }
            finished = true
            let folder = key.contains("/") ? String(key[..<key.lastIndex(of: "/")!]) : ""
            try storage.syncFolder(folder)
        } catch {
            abort()
            throw error
        }
    }

    func abort() {
        guard !finished else { return }
        finished = true
        if fd >= 0 { close(fd) }
        fd = -1
        unlink(temporary)
    }

    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw VolumeError.failure("writing", path)
            }
            offset += n
        }
    }
}

/// Reads a file of the store.
final class VolumeObjectReader: ObjectReader {
    private let fd: Int32
    private let path: String
    let size: Int64
    /// The file's modification time, by the file system's clock.
    let modified: Date
    let isRegularFile: Bool

    /// Takes ownership of `fd` (closed on failure too).
    init(fd: Int32, path: String) throws {
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let error = VolumeError.failure("reading the size of", path)
            close(fd)
            throw error
        }
        self.fd = fd
        self.path = path
        size = Int64(info.st_size)
        modified = VolumeStorage.date(info.st_mtim)
        isRegularFile = (info.st_mode & S_IFMT) == S_IFREG
    }

    deinit { close(fd) }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno != EINTR { throw VolumeError.failure("reading", path) }
        }
    }
}

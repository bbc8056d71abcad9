import CLibArchive
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One tar entry's header. Owns one `archive_entry`; reused across entries by readers.
public final class ArchiveEntry {
    /// The kinds of entry the product handles; anything else (fifo, socket, device) is `.other`.
    public enum Kind: Sendable, Equatable {
        case file
        case directory
        case symlink
        case hardlink
        case other
    }

    let pointer: OpaquePointer

    public init() {
        guard let pointer = archive_entry_new() else { fatalError("archive_entry_new: out of memory") }
        self.pointer = pointer
    }

    deinit { archive_entry_free(pointer) }

    /// A regular file entry with the given path, size, permission bits and modification time.
    public convenience init(file path: String, size: Int64, permissions: mode_t = 0o644, modified: Date = Date()) {
        self.init()
        pathname = path
        archive_entry_set_filetype(pointer, UInt32(Glibc.S_IFREG))
        archive_entry_set_perm(pointer, permissions)
        self.size = size
        archive_entry_set_mtime(pointer, time_t(modified.timeIntervalSince1970), 0)
    }

    /// A directory entry.
    public convenience init(directory path: String, permissions: mode_t = 0o755, modified: Date = Date()) {
        self.init()
        pathname = path
        archive_entry_set_filetype(pointer, UInt32(Glibc.S_IFDIR))
        archive_entry_set_perm(pointer, permissions)
        archive_entry_set_mtime(pointer, time_t(modified.timeIntervalSince1970), 0)
    }

    /// A symbolic link entry.
    public convenience init(symlink path: String, target: String) {
        self.init()
        pathname = path
        archive_entry_set_filetype(pointer, UInt32(Glibc.S_IFLNK))
        archive_entry_set_perm(pointer, 0o777)
        archive_entry_copy_symlink(pointer, target)
    }

    public func clear() { archive_entry_clear(pointer) }

    /// The path inside the archive, UTF-8.
    public var pathname: String {
        get {
            if let utf8 = archive_entry_pathname_utf8(pointer) { return String(cString: utf8) }
            if let native = archive_entry_pathname(pointer) { return String(cString: native) }
            return ""
        }
        set { archive_entry_set_pathname_utf8(pointer, newValue) }
    }

    /// The path byte for byte, as the filesystem and the tar header hold it. File names need not be valid
    /// UTF-8: going through `String` would turn two such names into the same one.
    public var pathBytes: [UInt8] {
        get { Self.bytes(archive_entry_pathname(pointer)) ?? [] }
        set { Self.withCString(newValue) { archive_entry_copy_pathname(pointer, $0) } }
    }

    /// A symbolic link's target, byte for byte.
    public var symlinkTargetBytes: [UInt8]? { Self.bytes(archive_entry_symlink(pointer)) }

    /// A hard link's target (another entry's path), byte for byte.
    public var hardlinkTargetBytes: [UInt8]? {
        get { Self.bytes(archive_entry_hardlink(pointer)) }
        set {
            if let newValue { Self.withCString(newValue) { archive_entry_copy_hardlink(pointer, $0) } }
        }
    }

    static func bytes(_ text: UnsafePointer<CChar>?) -> [UInt8]? {
        guard let text else { return nil }
        return Array(UnsafeRawBufferPointer(start: text, count: strlen(text)))
    }

    static func withCString<T>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>) -> T) -> T {
        (bytes + [0]).withUnsafeBytes { body($0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
    }

    /// The permission bits (`0o7777` at most: setuid, setgid and sticky included).
    public var permissions: mode_t {
        get { archive_entry_perm(pointer) }
        set { archive_entry_set_perm(pointer, newValue) }
    }

    /// The owner as numbers; setting it drops the owner's names, which would otherwise be looked up first.
    public var owner: (uid: uid_t, gid: gid_t) {
        get { (uid_t(truncatingIfNeeded: archive_entry_uid(pointer)), gid_t(truncatingIfNeeded: archive_entry_gid(pointer))) }
        set {
            archive_entry_set_uid(pointer, Int64(newValue.uid))
            archive_entry_set_gid(pointer, Int64(newValue.gid))
            archive_entry_copy_uname(pointer, nil)
            archive_entry_copy_gname(pointer, nil)
        }
    }

    public var size: Int64 {
        get { archive_entry_size(pointer) }
        set { archive_entry_set_size(pointer, newValue) }
    }

    public var kind: Kind {
        if archive_entry_hardlink(pointer) != nil { return .hardlink }
        switch Int32(archive_entry_filetype(pointer)) {
        case Int32(Glibc.S_IFREG): return .file
        case Int32(Glibc.S_IFDIR): return .directory
        case Int32(Glibc.S_IFLNK): return .symlink
        default: return .other
        }
    }
}

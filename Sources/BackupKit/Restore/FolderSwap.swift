import BackupCore
import BackupInterop
import Foundation

/// Puts restored files in place so that a failure halfway leaves the old ones there.
enum FolderSwap {
    /// The path with symlinks resolved (of its parent when it does not exist yet), so that a restore replaces
    /// what a symlinked `UPLOADS_DIR` points to and never the link itself.
    static func resolved(_ path: String) -> String {
        if let real = realpath(path, nil) {
            defer { free(real) }
            return String(cString: real)
        }
        let parent = (path as NSString).deletingLastPathComponent
        guard !parent.isEmpty, parent != path, let real = realpath(parent, nil) else { return path }
        defer { free(real) }
        return String(cString: real) + "/" + (path as NSString).lastPathComponent
    }

    /// `/app/uploads` → `/app/.uploads.restore-1a2b3c4d`: beside the target, so a rename swaps it in.
    static func sibling(_ path: String, _ suffix: String) -> String {
        let parent = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        return (parent.isEmpty ? "" : parent + "/") + ".\(name).\(suffix)"
    }

    /// Where to extract a folder before swapping it in: beside it, or inside it when it is a mount point
    /// (a Docker volume cannot be renamed, and staging on the parent's filesystem would fill the container's
    /// writable layer and need a second copy).
    static func stagingFolder(for target: String, id: some StringProtocol) -> String {
        isMountPoint(target) ? "\(target)/.contingency-incoming-\(id)" : sibling(target, "restore-\(id)")
    }

    /// A folder on another filesystem than its parent, or any mount's root: a bind mount from the same filesystem
    /// (a podman volume on the vfs driver, a host folder mounted into a container) keeps the parent's device
    /// number, so the kernel's list of this process's mounts is read too.
    static func isMountPoint(_ path: String) -> Bool {
        var own = stat()
        var parent = stat()
        guard stat(path, &own) == 0, stat((path as NSString).deletingLastPathComponent, &parent) == 0 else { return false }
        return own.st_dev != parent.st_dev || mountPoints().contains(resolved(path))
    }

    /// The mount points of /proc/self/mountinfo (its fifth field, where a space, tab, newline or backslash is
    /// written as an octal escape such as `\040`); empty when it cannot be read.
    static func mountPoints() -> Set<String> {
        guard let lines = ProcFile.lines("/proc/self/mountinfo") else { return [] }
        var points = Set<String>()
        for line in lines {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count > 4 else { continue }
            points.insert(unescapeMountField(fields[4]))
        }
        return points
    }

    static func unescapeMountField(_ field: Substring) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(field.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "\\"), utf8.count >= 3,
                let value = UInt8(String(decoding: utf8.prefix(3), as: UTF8.self), radix: 8)
            {
                bytes.append(value)
                utf8 = utf8.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Makes the folder an archive's uploads are extracted into: a new folder, mode 0700 (nobody else walks into
    /// it while files with their final modes appear in it), or one the caller made that passes `checkStaging`.
    static func makeStagingFolder(_ path: String) throws {
        if mkdir(path, 0o700) != 0 {
            guard errno == EEXIST else {
                throw ContingencyError.failed("creating the staging folder \(path): \(String(cString: strerror(errno)))")
            }
            try checkStaging(path)
        }
        guard chmod(path, 0o700) == 0 else {
            throw ContingencyError.failed("making the staging folder \(path) private: \(String(cString: strerror(errno)))")
        }
    }

    /// A staging folder is only ever renamed into place or emptied into the uploads if it is still what a restore
    /// made: a real folder (not a symlink something put in its place), owned by this user.
    static func checkStaging(_ path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            throw ContingencyError.failed("the staging folder \(path) is gone: \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            let kind = info.st_mode & S_IFMT == S_IFLNK ? "a symlink" : "another kind of file"
            throw ContingencyError.failed("the staging folder \(path) is not a folder (\(kind)): refusing to put it in place")
        }
        guard info.st_uid == geteuid() else {
            throw ContingencyError.failed(
                "the staging folder \(path) belongs to uid \(info.st_uid), not to this restore's \(geteuid()): refusing to put it in place")
        }
    }

    /// The owner of `path` (not following a last symlink), or nil when it does not exist.
    static func owner(of path: String) -> (uid: uid_t, gid: gid_t)? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return (info.st_uid, info.st_gid)
    }

    /// Replaces the folder `target` with `staged`. A sibling is swapped in by two renames, the old folder removed
    /// only once the new one is in place, and takes the old folder's owner and mode (0755 and this user's when
    /// there was none); a folder staged inside `target` (a mount point) is swapped entry by entry, and put back
    /// as it was if that fails halfway. Either way `staged` is checked first (`checkStaging`).
    /// With `keepingOld`, the old folder is not removed but returned (for a rollback's safety backup, or for the
    /// caller to remove once the application is back); inside a
    /// mount point it is the hidden folder `.contingency-before-restore-<id>` in `target`.
    @discardableResult
    static func swap(staged: String, into target: String, keepingOld: Bool = false) throws -> String? {
        try checkStaging(staged)
        if staged.hasPrefix(target + "/") {
            return try swapContents(staged: staged, into: target, keepingOld: keepingOld)
        }
        var current = stat()
        let exists = stat(target, &current) == 0
        if exists { _ = chown(staged, current.st_uid, current.st_gid) }
        guard chmod(staged, exists ? current.st_mode & 0o7777 : 0o755) == 0 else {
            throw ContingencyError.failed("setting the mode of \(staged): \(String(cString: strerror(errno)))")
        }
        guard exists else {
            try rename(staged, target)
            return nil
        }
        let old = sibling(target, "before-restore-\(UUID().uuidString.prefix(8).lowercased())")
        try rename(target, old)
        do {
            try rename(staged, target)
        } catch {
            _ = Glibc.rename(old, target)  // put the old folder back
            throw error
        }
        if keepingOld { return old }
        removeTree(old)
        return nil
    }

    /// Entry by entry, by file descriptors and byte names: names need not be UTF-8, and no path is walked twice.
    private static func swapContents(staged: String, into target: String, keepingOld: Bool) throws -> String? {
        let oldName = ".contingency-before-restore-\(UUID().uuidString.prefix(8).lowercased())"
        let old = "\(target)/\(oldName)"
        guard mkdir(old, 0o700) == 0 else {
            throw ContingencyError.failed("creating \(old): \(String(cString: strerror(errno)))")
        }
        let targetFD = try openFolder(target)
        defer { close(targetFD) }
        let oldFD = try openFolder(old)
        defer { close(oldFD) }
        let stagedFD = try openFolder(staged)
        defer { close(stagedFD) }
        let hidden: Set<[UInt8]> = [Array(oldName.utf8), Array((staged as NSString).lastPathComponent.utf8)]
        var movedOut: [[UInt8]] = []
        var movedIn: [[UInt8]] = []
        do {
            for name in try names(in: targetFD, target) where !hidden.contains(name) {
                try rename(name, from: targetFD, to: oldFD, "\(target) to \(old)")
                movedOut.append(name)
            }
            for name in try names(in: stagedFD, staged) {
                try rename(name, from: stagedFD, to: targetFD, "\(staged) to \(target)")
                movedIn.append(name)
            }
        } catch {
            for name in movedIn { try? rename(name, from: targetFD, to: stagedFD, "") }
            for name in movedOut { try? rename(name, from: oldFD, to: targetFD, "") }
            rmdir(old)  // only once empty: what could not be moved back stays there
            throw error
        }
        if keepingOld { return old }
        removeTree(old)
        return nil
    }

    private static func openFolder(_ path: String) throws -> Int32 {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw ContingencyError.failed("opening \(path): \(String(cString: strerror(errno)))") }
        return fd
    }

    /// The names in a folder, byte for byte, without `.` and `..`.
    private static func names(in folder: Int32, _ shown: String) throws -> [[UInt8]] {
        let copy = dup(folder)
        guard copy >= 0, let directory = fdopendir(copy) else {
            throw ContingencyError.failed("listing \(shown): \(String(cString: strerror(errno)))")
        }
        defer { closedir(directory) }
        rewinddir(directory)
        var names: [[UInt8]] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
            if name == [0x2E] || name == [0x2E, 0x2E] { continue }
            names.append(name)
        }
        return names
    }

    private static func rename(_ name: [UInt8], from: Int32, to: Int32, _ shown: String) throws {
        let status = (name + [0]).withUnsafeBytes { raw in
            let cName = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
            return renameat(from, cName, to, cName)
        }
        guard status == 0 else {
            throw ContingencyError.failed(
                "moving \(ArchiveVerifier.shown(raw: name)) from \(shown): \(String(cString: strerror(errno)))")
        }
    }

    /// Removes a folder and everything in it, by byte paths (names need not be UTF-8), never following a link.
    static func removeTree(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFDIR, let folder = try? openFolder(path) else {
            unlink(path)
            return
        }
        removeContents(of: folder)
        close(folder)
        rmdir(path)
    }

    private static func removeContents(of folder: Int32) {
        for name in (try? names(in: folder, "")) ?? [] {
            (name + [0]).withUnsafeBytes { raw in
                let cName = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
                if unlinkat(folder, cName, 0) == 0 || errno != EISDIR { return }
                let child = openat(folder, cName, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if child >= 0 {
                    removeContents(of: child)
                    close(child)
                }
                unlinkat(folder, cName, AT_REMOVEDIR)
            }
        }
    }

    /// Replaces the file `target` with `staged`, keeping the current one as `keepingOldAs`. The new file gets
    /// the current one's owner and mode, so the application can still read it. A bind-mounted file (which
    /// cannot be renamed over) is rewritten in place instead.
    static func replaceFile(_ target: String, with staged: String, keepingOldAs backup: String) throws {
        let fileManager = FileManager.default
        var current = stat()
        if stat(target, &current) == 0 {
            try? fileManager.removeItem(atPath: backup)
            try fileManager.copyItem(atPath: target, toPath: backup)
            for path in [backup, staged] {
                _ = chown(path, current.st_uid, current.st_gid)
                _ = chmod(path, current.st_mode & 0o7777)
            }
        }
        if Glibc.rename(staged, target) == 0 { return }
        guard errno == EBUSY || errno == EXDEV else {
            throw ContingencyError.failed("replacing \(target): \(String(cString: strerror(errno)))")
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: staged))
        try data.write(to: URL(fileURLWithPath: target))
    }

    private static func rename(_ from: String, _ to: String) throws {
        guard Glibc.rename(from, to) == 0 else {
            throw ContingencyError.failed("moving \(from) to \(to): \(String(cString: strerror(errno)))")
        }
    }
}

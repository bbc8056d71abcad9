import BackupCore
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

    static func isMountPoint(_ path: String) -> Bool {
        var own = stat()
        var parent = stat()
        guard stat(path, &own) == 0, stat((path as NSString).deletingLastPathComponent, &parent) == 0 else { return false }
        return own.st_dev != parent.st_dev
    }

    /// Replaces the folder `target` with `staged`. A sibling is swapped in by two renames, the old folder removed
    /// only once the new one is in place; a folder staged inside `target` (a mount point) is swapped entry by
    /// entry, and put back as it was if that fails halfway.
    static func swap(staged: String, into target: String) throws {
        if staged.hasPrefix(target + "/") {
            try swapContents(staged: staged, into: target)
            return
        }
        guard FileManager.default.fileExists(atPath: target) else {
            try rename(staged, target)
            return
        }
        let old = sibling(target, "before-restore-\(UUID().uuidString.prefix(8).lowercased())")
        try rename(target, old)
        do {
            try rename(staged, target)
        } catch {
            _ = Glibc.rename(old, target)  // put the old folder back
            throw error
        }
        try? FileManager.default.removeItem(atPath: old)
    }

    private static func swapContents(staged: String, into target: String) throws {
        let fileManager = FileManager.default
        let old = "\(target)/.contingency-before-restore-\(UUID().uuidString.prefix(8).lowercased())"
        try fileManager.createDirectory(atPath: old, withIntermediateDirectories: false)
        let hidden: Set<String> = [(old as NSString).lastPathComponent, (staged as NSString).lastPathComponent]
        var movedOut: [String] = []
        var movedIn: [String] = []
        do {
            for entry in try fileManager.contentsOfDirectory(atPath: target) where !hidden.contains(entry) {
                try rename("\(target)/\(entry)", "\(old)/\(entry)")
                movedOut.append(entry)
            }
            for entry in try fileManager.contentsOfDirectory(atPath: staged) {
                try rename("\(staged)/\(entry)", "\(target)/\(entry)")
                movedIn.append(entry)
            }
        } catch {
            for entry in movedIn { _ = Glibc.rename("\(target)/\(entry)", "\(staged)/\(entry)") }
            for entry in movedOut { _ = Glibc.rename("\(old)/\(entry)", "\(target)/\(entry)") }
            try? fileManager.removeItem(atPath: old)
            throw error
        }
        try? fileManager.removeItem(atPath: old)
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

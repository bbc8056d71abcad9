import BackupCore
import Foundation

/// Puts restored files in place so that a failure halfway leaves the old ones there.
enum FolderSwap {
    /// Replaces the folder `target` with `staged` (a sibling on the same filesystem) by two renames; the old
    /// folder is removed only once the new one is in place. When `target` is a mount point, which cannot be
    /// renamed, its contents are swapped entry by entry instead, with the old entries kept until the end.
    static func swap(staged: String, into target: String) throws {
        let fileManager = FileManager.default
        guard fileManager.fileExists(atPath: target) else {
            try rename(staged, target)
            return
        }
        let old = RestoreJob.sibling(target, "before-restore-\(UUID().uuidString.prefix(8).lowercased())")
        if Glibc.rename(target, old) == 0 {
            do {
                try rename(staged, target)
            } catch {
                _ = Glibc.rename(old, target)  // put the old folder back
                throw error
            }
            try? fileManager.removeItem(atPath: old)
            return
        }
        guard errno == EBUSY || errno == EXDEV else {
            throw ContingencyError.failed("moving \(target) aside: \(String(cString: strerror(errno)))")
        }
        try swapContents(staged: staged, into: target)
    }

    /// For a mount point: old entries go into a hidden folder inside it, new ones move in, then the old go.
    private static func swapContents(staged: String, into target: String) throws {
        let fileManager = FileManager.default
        let old = "\(target)/.before-restore-\(UUID().uuidString.prefix(8).lowercased())"
        let incoming = "\(target)/.incoming-\(UUID().uuidString.prefix(8).lowercased())"
        try fileManager.createDirectory(atPath: old, withIntermediateDirectories: false)
        // The staged tree sits on another filesystem: copy it inside the mount first, then rename entries.
        try fileManager.copyItem(atPath: staged, toPath: incoming)
        let hidden = Set([(old as NSString).lastPathComponent, (incoming as NSString).lastPathComponent])
        for entry in try fileManager.contentsOfDirectory(atPath: target) where !hidden.contains(entry) {
            try rename("\(target)/\(entry)", "\(old)/\(entry)")
        }
        for entry in try fileManager.contentsOfDirectory(atPath: incoming) {
            try rename("\(incoming)/\(entry)", "\(target)/\(entry)")
        }
        try? fileManager.removeItem(atPath: incoming)
        try? fileManager.removeItem(atPath: old)
    }

    /// Replaces the file `target` with `staged`, keeping the current one as `keepingOldAs`. A bind-mounted
    /// file (which cannot be renamed over) is rewritten in place instead.
    static func replaceFile(_ target: String, with staged: String, keepingOldAs backup: String) throws {
        let fileManager = FileManager.default
        if fileManager.fileExists(atPath: target) {
            try? fileManager.removeItem(atPath: backup)
            try fileManager.copyItem(atPath: target, toPath: backup)
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

import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Gives back the pages of code and read-only data a long-running process touched only while it started.
///
/// A Swift executable touches a good part of its code at start (the runtime registers conformances and
/// metadata, the configuration and argument parsing run once), and the kernel maps code around each faulting
/// page (fault-around, 64 KiB at a time). Those pages stay counted in the process's resident set for as long as
/// it lives, although an idle sidecar needs a fraction of them. `madvise(MADV_PAGEOUT)` on the read-only file
/// mappings (code, constants: never written, so nothing is lost) lets the kernel reclaim them now; the pages the
/// process does use fault back in from the file on their next access. Writable and anonymous mappings (heap,
/// stacks, relocated data) are left alone. Linux 5.4 or later; elsewhere, or when the kernel refuses, nothing
/// happens (the pages are reclaimed under memory pressure anyway).
public enum StartupPages {
    /// Linux's MADV_PAGEOUT (uapi/asm-generic/mman-common.h), not exported by every Glibc module map.
    private static let madvPageout: Int32 = 21

    /// Advises the kernel to reclaim the process's read-only file-backed pages; returns the bytes advised.
    @discardableResult
    public static func release() -> Int {
        #if os(Linux)
        guard let maps = ProcFile.lines("/proc/self/maps") else { return 0 }
        var advised = 0
        for line in maps {
            guard let mapping = FileMapping(line[...]), mapping.isReadOnlyFile else { continue }
            if madvise(UnsafeMutableRawPointer(bitPattern: mapping.start), mapping.length, madvPageout) == 0 {
                advised += mapping.length
            }
        }
        return advised
        #else
        return 0
        #endif
    }

    /// One line of /proc/self/maps: `start-end perms offset dev inode path`.
    struct FileMapping {
        let start: UInt
        let length: Int
        let permissions: Substring
        let path: Substring?

        init?(_ line: Substring) {
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count >= 5 else { return nil }
            let range = fields[0].split(separator: "-")
            guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16),
                end > start
            else { return nil }
            self.start = start
            length = Int(end - start)
            permissions = fields[1]
            path = fields.count == 6 ? fields[5].drop { $0 == " " } : nil
        }

        /// Mapped from a file, readable and never writable: its pages are the file's, reclaimable at no loss.
        var isReadOnlyFile: Bool {
            guard let path, path.hasPrefix("/"), permissions.count >= 2 else { return false }
            return permissions.first == "r" && permissions.dropFirst().first == "-"
        }
    }
}

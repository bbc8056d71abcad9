import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The content of a directory tree: every entry's path relative to the root, with each regular
/// file's size and SHA-256, each symbolic link's target, and the directories (empty ones too).
/// Compare two with `==`; `differences(from:)` and the description show what changed.
public struct FileTreeSnapshot: Equatable, Sendable, CustomStringConvertible {
    /// What is found at one relative path.
    public enum Entry: Equatable, Sendable, CustomStringConvertible {
        /// A directory.
        case directory
        /// A regular file with its size in bytes and SHA-256 (lowercase hex).
        case file(size: Int64, sha256: String)
        /// A symbolic link (not followed) and its target as stored.
        case symlink(target: String)
        /// Anything else (FIFO, socket, device), by kind.
        case other(kind: String)

        /// A short form such as "file 12 bytes sha256 ab12…".
        public var description: String {
            switch self {
            case .directory: return "directory"
            case let .file(size, sha256): return "file \(size) bytes sha256 \(sha256)"
            case let .symlink(target): return "symlink -> \(target)"
            case let .other(kind): return kind
            }
        }
    }

    /// Every entry below the root (the root itself excluded), by "/"-separated relative path.
    public let entries: [String: Entry]

    /// Creates a snapshot from entries.
    public init(entries: [String: Entry]) {
        self.entries = entries
    }

    /// The relative paths of the regular files, sorted.
    public var filePaths: [String] {
        entries.compactMap { path, entry in
            if case .file = entry { return path } else { return nil }
        }.sorted()
    }

    /// The relative paths of the directories, sorted.
    public var directoryPaths: [String] {
        entries.compactMap { path, entry in entry == .directory ? path : nil }.sorted()
    }

    /// The sum of the regular files' sizes.
    public var totalFileSize: Int64 {
        entries.values.reduce(0) { sum, entry in
            if case let .file(size, _) = entry { return sum + size } else { return sum }
        }
    }

    /// Walks `directory` (symbolic links are recorded, not followed) and hashes every regular
    /// file with /usr/bin/sha256sum, in batches.
    public static func take(_ directory: URL) throws -> FileTreeSnapshot {
        var entries: [String: Entry] = [:]
        var files: [(relative: String, absolute: String, size: Int64)] = []
        try walk(directory.path, relative: "", into: &entries, files: &files)

        let batchSize = 200
        for start in stride(from: 0, to: files.count, by: batchSize) {
            let batch = files[start..<min(start + batchSize, files.count)]
            let result = try ProcessRunner.runBlocking(
                "/usr/bin/sha256sum", ["--zero", "--"] + batch.map(\.absolute), timeout: .seconds(300))
            guard result.succeeded else {
                throw TestSupportError("sha256sum failed: \(result)")
            }
            // With --zero each line is "<64 hex>  <name>\0", unescaped, in argument order.
            let lines = result.stdout.split(separator: "\0", omittingEmptySubsequences: true)
            guard lines.count == batch.count else {
                throw TestSupportError("sha256sum printed \(lines.count) lines for \(batch.count) files")
            }
            for (file, line) in zip(batch, lines) {
                entries[file.relative] = .file(size: file.size, sha256: String(line.prefix(64)))
            }
        }
        return FileTreeSnapshot(entries: entries)
    }

    private static func walk(
        _ absolute: String, relative: String,
        into entries: inout [String: Entry], files: inout [(relative: String, absolute: String, size: Int64)]
    ) throws {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: absolute)
        } catch {
            throw TestSupportError("cannot list \(absolute): \(error)")
        }
        for name in names.sorted() {
            let childAbsolute = absolute + "/" + name
            let childRelative = relative.isEmpty ? name : relative + "/" + name
            var info = stat()
            guard lstat(childAbsolute, &info) == 0 else {
                throw TestSupportError("lstat \(childAbsolute) failed: \(String(cString: strerror(errno)))")
            }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                entries[childRelative] = .directory
                try walk(childAbsolute, relative: childRelative, into: &entries, files: &files)
            case S_IFREG:
                files.append((childRelative, childAbsolute, Int64(info.st_size)))
            case S_IFLNK:
                let target = try FileManager.default.destinationOfSymbolicLink(atPath: childAbsolute)
                entries[childRelative] = .symlink(target: target)
            case S_IFIFO:
                entries[childRelative] = .other(kind: "fifo")
            case S_IFSOCK:
                entries[childRelative] = .other(kind: "socket")
            default:
                entries[childRelative] = .other(kind: "device")
            }
        }
    }

    /// One line per difference between `other` (the expected tree) and this one; empty when equal.
    public func differences(from other: FileTreeSnapshot) -> [String] {
        Set(entries.keys).union(other.entries.keys).sorted().compactMap { path in
            switch (other.entries[path], entries[path]) {
            case let (expected?, actual?) where expected != actual:
                return "\(path): expected \(expected), got \(actual)"
            case let (expected?, nil):
                return "\(path): missing (expected \(expected))"
            case let (nil, actual?):
                return "\(path): unexpected \(actual)"
            default:
                return nil
            }
        }
    }

    /// A sorted listing, one entry per line.
    public var description: String {
        let header = "FileTreeSnapshot(\(filePaths.count) files, \(totalFileSize) bytes, \(directoryPaths.count) directories)"
        return ([header] + entries.keys.sorted().map { "  \($0): \(entries[$0]!)" }).joined(separator: "\n")
    }

    // MARK: - Sample uploads

    /// Fills `directory` (created if needed) with a deterministic uploads folder: `fileCount`
    /// regular files in nested folders, among them an empty file, a 3-byte file, a ~1 MB binary
    /// file, names with spaces and non-ASCII letters, a file whose name is longer than 100
    /// characters (tar's ustar name limit) and one whose path is longer than 255, a hidden
    /// file, JSON and text files and random binaries of varied sizes, plus an empty directory.
    /// With a small `fileCount` the special files come first. Returns the files' relative paths.
    /// Writes `size` bytes of incompressible data (a fixed pseudo-random sequence per `seed`) to `url`, a
    /// megabyte at a time.
    public static func writeRandomFile(_ url: URL, size: Int, seed: UInt64 = 0xB16F11E) throws {
        var random = SplitMix64(seed: seed)
        _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        var remaining = size
        while remaining > 0 {
            let count = min(remaining, 1 << 20)
            try handle.write(contentsOf: random.bytes(count))
            remaining -= count
        }
    }

    @discardableResult
    public static func makeSampleUploads(in directory: URL, fileCount: Int = 30, seed: UInt64 = 0x5EED) throws -> [String] {
        var random = SplitMix64(seed: seed)
        let longName = "a-very-long-upload-file-name-" + String(repeating: "abcdefghij", count: 10) + "-end.txt"
        let deepPath = (1...12).map { "nested folder level \($0)" }.joined(separator: "/") + "/deep file.bin"

        var specials: [(path: String, content: () -> Data)] = [
            ("empty.txt", { Data() }),
            ("tiny.bin", { random.bytes(3) }),
            ("avatars/large photo.bin", { random.bytes(1_048_576 + 4321) }),
            ("long names/\(longName)", { Data("The name of this file is \(longName.count) characters long.\n".utf8) }),
            ("ünïcødé/日本語のファイル.txt", { Data("こんにちは世界 — Grüße, Zoë! 🎉\n".utf8) }),
            ("with spaces/a file with spaces.txt", { Data("spaces in the name\n".utf8) }),
            ("documents/2024/03/report ü.json", { Data(#"{"title":"Rapport über café","pages":[1,2,3],"draft":false,"author":null}"#.utf8) }),
            ("documents/2024/03/notes.txt", { Data((1...200).map { "Line \($0): lorem ipsum dolor sit amet\n" }.joined().utf8) }),
            (".hidden", { Data("dotfile\n".utf8) }),
            (deepPath, { random.bytes(1000) }),
        ]
        var made: [String] = []
        var index = 0
        while made.count < fileCount {
            let path: String
            let content: Data
            if !specials.isEmpty {
                let special = specials.removeFirst()
                path = special.path
                content = special.content()
            } else {
                index += 1
                switch index % 3 {
                case 0:
                    path = "gallery/\(index % 4)/image-\(index).bin"
                    content = random.bytes(Int(random.next() % 65_536) + 1)
                case 1:
                    path = "json/item-\(index).json"
                    content = Data(#"{"id":\#(index),"name":"Item \#(index) — ß","tags":["a","b"],"price":\#(Double(index) * 1.25)}"#.utf8)
                default:
                    path = "text/note \(index).txt"
                    content = Data(String(repeating: "Note \(index): ✓ done.\n", count: index).utf8)
                }
            }
            let url = directory.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try content.write(to: url)
            made.append(path)
        }
        try FileManager.default.createDirectory(
            at: directory.appendingPathComponent("empty folder"), withIntermediateDirectories: true)
        return made
    }
}

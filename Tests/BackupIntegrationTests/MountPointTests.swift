import Foundation
import Testing
import TestSupport

@testable import BackupInterop
@testable import BackupKit

/// A restore stages uploads inside a mount point (a volume cannot be renamed, and its parent may not be
/// writable): mount points are told by device number and by the kernel's list of mounts, which also knows bind
/// mounts from the same filesystem.
struct MountPointTests {
    @Test("mountinfo's octal escapes are decoded; a malformed escape is kept as written")
    func unescape() {
        #expect(FolderSwap.unescapeMountField(#"/app/my\040uploads"#) == "/app/my uploads")
        #expect(FolderSwap.unescapeMountField(#"/a\011b\012c\134d"#) == "/a\tb\nc\\d")
        #expect(FolderSwap.unescapeMountField(#"/plain/path"#) == "/plain/path")
        #expect(FolderSwap.unescapeMountField(#"/bad\09x"#) == #"/bad\09x"#)
        #expect(FolderSwap.unescapeMountField(#"/end\04"#) == #"/end\04"#)
    }

    @Test("A folder bind-mounted from the same filesystem is a mount point; a plain folder is not")
    func bindMountOnTheSameFilesystem() async throws {
        let folder = try TemporaryDirectory(prefix: "bind-mount")
        defer { folder.remove() }
        let target = folder.appending("uploads").path
        let source = folder.appending("volume").path
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        #expect(!FolderSwap.isMountPoint(target))
        // Enough mounts before it that /proc/self/mountinfo is longer than a page: Foundation's readers of a file
        // return only its first page for /proc, and the bind mount's line comes last.
        var fillers: [String] = []
        defer { for filler in fillers.reversed() { _ = try? ProcessRunner.runBlocking("umount", [filler]) } }
        while (ProcFile.contents("/proc/self/mountinfo")?.count ?? 0) < 3 * 4096 {
            let filler = folder.appending("filler-\(fillers.count)").path
            try FileManager.default.createDirectory(atPath: filler, withIntermediateDirectories: true)
            let made = try await ProcessRunner.run("mount", ["-t", "tmpfs", "-o", "size=1m", "filler", filler])
            try #require(made.succeeded, "mount -t tmpfs: \(made)")
            fillers.append(filler)
        }
        let mounted = try await ProcessRunner.run("mount", ["--bind", source, target])
        try #require(mounted.succeeded, "mount --bind (the tests run as root): \(mounted)")
        defer { _ = try? ProcessRunner.runBlocking("umount", [target]) }
        var own = stat()
        var parent = stat()
        #expect(stat(target, &own) == 0 && stat(folder.url.path, &parent) == 0 && own.st_dev == parent.st_dev,
                "the bind mount keeps the parent's device number: only mountinfo tells")
        let whole = try await ProcessRunner.run("cat", ["/proc/self/mountinfo"])
        #expect(ProcFile.contents("/proc/self/mountinfo")?.count ?? 0 >= whole.stdout.utf8.count - 512,
                "the whole file is read, not its first page")
        #expect(FolderSwap.isMountPoint(target))
        #expect(FolderSwap.stagingFolder(for: target, id: "1a2b3c4d").hasPrefix(target + "/"))
    }

    @Test("Only a host name that does not resolve for now, or a server starting, is worth another attempt")
    func transientConnectionFailures() {
        #expect(PostgresConnection.isTransient(
            #"could not translate host name "db" to address: Temporary failure in name resolution"#))
        #expect(PostgresConnection.isTransient("FATAL:  the database system is starting up"))
        #expect(!PostgresConnection.isTransient(#"could not translate host name "dbb" to address: Name or service not known"#))
        #expect(!PostgresConnection.isTransient(#"FATAL:  password authentication failed for user "postgres""#))
        #expect(!PostgresConnection.isTransient("connection to server at \"127.0.0.1\", port 1 failed: Connection refused"))
        #expect(PostgresConnection.retryDelays.reduce(0, +) <= 8_000_000, "a bounded wait")
    }
}

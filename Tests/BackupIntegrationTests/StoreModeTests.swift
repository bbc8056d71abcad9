import BackupCore
import BackupStorage
import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What a volume store publishes is readable by its owner and group only (0640), whatever the job's umask:
/// archives hold the `.env` and the database, manifests say what they hold, and the containers that share a
/// store share a group.
@Suite("Modes of the store's objects")
struct StoreModeTests {
    /// Permission bits of a path (not following a symlink), or nil when it does not exist.
    static func mode(_ path: String) -> mode_t? {
        var info = stat()
        return lstat(path, &info) == 0 ? info.st_mode & 0o7777 : nil
    }

    @Test(
        "a backup-job run with umask 000 and 077: archive, manifest, lease and metrics are 0640",
        arguments: ["000", "077"])
    func backup(umask: String) async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            // The job inherits the shell's umask; arguments go through "$@", never into the command line.
            let result = try await ProcessRunner.run(
                "/bin/sh", ["-c", "umask \(umask) && exec \"$@\"", "sh", ApplicationFixture.executable("backup-job")],
                environment: app.environment(), timeout: .seconds(300))
            try #require(result.succeeded, "\(result)")
            let store = app.backupDirectory.path
            let published = try app.storeFiles()
            #expect(published.count == 2, "\(published)")
            var objects = published.map { "\(store)/\($0)" }
            objects.append("\(store)/\(Lease.key(for: "store"))")
            let metrics = (try? FileManager.default.contentsOfDirectory(atPath: "\(store)/.contingency/metrics")) ?? []
            objects += metrics.map { "\(store)/.contingency/metrics/\($0)" }
            objects.append("\(store)/.contingency/locks/.guard")
            for object in objects {
                #expect(Self.mode(object) == 0o640, "\(object): \(String(Self.mode(object) ?? 0, radix: 8))")
            }
        }
    }

    @Test("every way of writing to a volume publishes 0640: a stream, put, create, replace")
    func volumeWrites() async throws {
        let folder = try TemporaryDirectory()
        let storage = try VolumeStorage(root: folder.path)
        let writer = try storage.makeWriter(key: "visual_backup_2025-01-15_14-30-00.tar.gz")
        try [1, 2, 3].withUnsafeBytes { try writer.write($0) }
        try writer.commit {}
        try storage.put(key: "visual_backup_2025-01-15_14-30-00.tar.gz.json", data: Array("{}".utf8))
        let created = try #require(try storage.create(key: ".contingency/requests/one.json", data: Array("{}".utf8)))
        _ = try #require(try storage.create(key: ".contingency/locks/store.lock", data: Array("{}".utf8)))
        _ = try #require(
            try storage.replace(key: ".contingency/requests/one.json", data: Array("[]".utf8), ifMatch: created))
        for key in [
            "visual_backup_2025-01-15_14-30-00.tar.gz", "visual_backup_2025-01-15_14-30-00.tar.gz.json",
            ".contingency/requests/one.json", ".contingency/locks/store.lock",
        ] {
            #expect(Self.mode("\(folder.path)/\(key)") == 0o640, "\(key)")
        }
    }
}

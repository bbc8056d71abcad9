import BackupCore
import Foundation
import Testing
import TestSupport

/// A restore refuses a damaged or incomplete backup before it touches the database or any file.
@Suite("Restore verification")
struct RestoreVerificationTests {
    /// A restore does not hash the uploads one by one: they are swapped in only once the archive's hash matches
    /// its manifest's, which covers every byte of them (whoever can recompute that hash, an unsigned manifest's
    /// only defence, can recompute the uploads' digest as well). Their count and size are still checked; the
    /// verifying commands hash each file all the same.
    @Test("the uploads' digest: --verify hashes every file; a restore checks their count and bytes and leaves their content to the archive's hash")
    func uploadsDigest() async throws {
        try await ApplicationFixture.with(uploadFiles: 5) { app in
            try #require(try await app.run("backup-job").succeeded)
            let archive = app.backupDirectory.appendingPathComponent(try #require(try app.storeFiles().first { $0.hasSuffix(".tar.gz") }))
            let manifest = try #require(
                try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: archive.path + ".json"))) as? [String: Any])
            let recorded = String(decoding: try JSONSerialization.data(withJSONObject: try #require(manifest["uploads"])), as: UTF8.self)
            let name = try #require(
                FileManager.default.subpaths(atPath: app.uploadsDirectory.path)?.sorted().first { path in
                    var directory: ObjCBool = false
                    FileManager.default.fileExists(atPath: app.uploadsDirectory.appendingPathComponent(path).path, isDirectory: &directory)
                    return !directory.boolValue
                })
            let file = app.uploadsDirectory.appendingPathComponent(name)
            let original = try Data(contentsOf: file)
            try #require(original.count > 1)
            // The file changed inside the archive, every checksum recomputed but the uploads' digest, put back.
            func forge(_ content: Data) async throws {
                try await BackupForger.forge(archive, [.replace("uploads/\(name)", content)])
                try await BackupForger.forge(archive, [.setMetadata("uploads", json: recorded)])
            }

            // One byte shorter: the bytes differ from those recorded, whoever reads.
            try await forge(original.dropLast())
            let before = try await app.snapshot()
            let shorter = try await app.run("restore-job")
            #expect(shorter.status == 1 && shorter.stderr.contains("the uploads differ from those recorded"), "\(shorter)")
            #expect(try await app.snapshot() == before)

            // The same size: --verify finds the digest wrong; the restore, with the archive's hash matching, restores it.
            var changed = original
            changed[0] ^= 0x01
            try await forge(changed)
            let verify = try await app.run("restore-job", ["--verify"])
            #expect(verify.status == 1 && verify.stderr.contains("the uploads differ from those recorded"), "\(verify)")
            let restore = try await app.run("restore-job")
            #expect(restore.succeeded, "\(restore)")
            #expect(try Data(contentsOf: file) == changed)
        }
    }

    @Test("one flipped byte, at the start, the middle and the end of the archive", arguments: [0.01, 0.5, 0.99])
    func flippedByte(at fraction: Double) async throws {
        try await ApplicationFixture.with(uploadFiles: 20) { app in
            try #require(try await app.run("backup-job").succeeded)
            let archive = app.backupDirectory.appendingPathComponent(try #require(try app.storeFiles().first { $0.hasSuffix(".tar.gz") }))
            var bytes = try Data(contentsOf: archive)
            let offset = Int(Double(bytes.count - 1) * fraction)
            bytes[offset] ^= 0x01
            try bytes.write(to: archive)

            // Changes made after the backup must survive the refused restore.
            _ = try await app.server.psql("UPDATE users SET name = 'after the backup' WHERE id = 1", database: app.database)
            try Data("after the backup".utf8).write(to: app.uploadsDirectory.appendingPathComponent("new.txt"))
            let before = try await app.snapshot()

            let restore = try await app.run("restore-job")
            #expect(restore.status == 1, "\(restore)")
            #expect(restore.stderr.contains("nothing was restored"), "\(restore.stderr)")
            #expect(try await app.snapshot() == before)
            let verify = try await app.run("restore-job", ["--verify"])
            #expect(verify.status == 1)
            // No staging folder is left beside the uploads.
            let siblings = try FileManager.default.contentsOfDirectory(atPath: app.appDirectory.path)
            #expect(siblings.filter { $0.contains("restore-") }.isEmpty, "\(siblings)")
        }
    }

    @Test("an empty store: exit 10")
    func noBackup() async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            let restore = try await app.run("restore-job")
            #expect(restore.status == 10, "\(restore)")
            #expect(restore.stderr.contains("no complete backup"), "\(restore.stderr)")
        }
    }

    @Test("a restore into a database that was dropped recreates it")
    func droppedDatabase() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let before = try await app.snapshot()
            try #require(try await app.run("backup-job").succeeded)
            try await app.server.dropDatabase(app.database)
            let restore = try await app.run("restore-job")
            try #require(restore.succeeded, "\(restore)")
            #expect(try await app.snapshot() == before)
        }
    }

    @Test("a session holding a table: refused after RESTORE_LOCK_TIMEOUT with nothing changed; ended with RESTORE_TERMINATE_CONNECTIONS")
    func sessionHoldingATable() async throws {
        try await ApplicationFixture.with(uploadFiles: 5) { app in
            let before = try await app.snapshot()
            try #require(try await app.run("backup-job").succeeded)
            _ = try await app.server.psql("UPDATE users SET name = 'after the backup'", database: app.database)
            let lock = try await TableLock(server: app.server, database: app.database, table: "posts")

            let refused = try await app.run("restore-job", environment: ["RESTORE_LOCK_TIMEOUT": "1s"])
            #expect(refused.status == 1, "\(refused)")
            #expect(refused.stderr.contains("RESTORE_TERMINATE_CONNECTIONS=true"), "\(refused.stderr)")
            // `users` is not locked: it still has the change made after the backup.
            let names = try await app.server.query("SELECT DISTINCT name FROM users", database: app.database)
            #expect(names == [["after the backup"]])

            let restored = try await app.run("restore-job", environment: ["RESTORE_TERMINATE_CONNECTIONS": "true"])
            #expect(restored.succeeded, "\(restored)")
            #expect(restored.stdout.contains("Ended 1 other session(s)"), "\(restored.stdout)")
            try await lock.release()
            #expect(try await app.snapshot() == before)
        }
    }
}

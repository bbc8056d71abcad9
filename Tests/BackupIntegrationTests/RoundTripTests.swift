import BackupCore
import Foundation
import Testing
import TestSupport

/// Backup, damage, restore: everything comes back byte for byte.
@Suite("Backup and restore round trip")
struct RoundTripTests {
    @Test("gzip and zstd archives restore every row, file and the .env exactly", arguments: ["gzip", "zstd"])
    func roundTrip(compression: String) async throws {
        try await ApplicationFixture.with { app in
            let before = try await app.snapshot()
            let backup = try await app.run("backup-job", environment: ["BACKUP_COMPRESSION": compression])
            try #require(backup.succeeded, "\(backup)")
            #expect(backup.stdout.contains("[Backup] Starting scheduled backup..."))
            #expect(backup.stdout.contains("[Backup] Backup created successfully: visual_backup_"))

            let files = try app.storeFiles()
            let archive = try #require(files.first { !$0.hasSuffix(".json") })
            let suffix = compression == "gzip" ? ".tar.gz" : ".tar.zst"
            #expect(archive.hasSuffix(suffix))
            #expect(files == [archive, archive + ".json"])
            #expect(app.temporaryFiles().isEmpty)

            // Damage everything the backup holds.
            _ = try await app.server.psql(
                "DROP TABLE attachments; UPDATE users SET name = 'damaged' WHERE id % 2 = 0; ALTER TABLE posts ADD COLUMN junk int; DELETE FROM posts WHERE id % 3 = 0;",
                database: app.database)
            let uploads = app.uploadsDirectory
            let victim = try #require(try FileTreeSnapshot.take(uploads).filePaths.first { $0.hasSuffix(".json") })
            try FileManager.default.removeItem(at: uploads.appendingPathComponent("avatars"))
            try Data("changed".utf8).write(to: uploads.appendingPathComponent(victim))
            try Data("new file that was not in the backup".utf8).write(to: uploads.appendingPathComponent("intruder.txt"))
            try Data("BROKEN=1\n".utf8).write(to: app.envFile)
            let damaged = try await app.snapshot()
            #expect(damaged != before)

            let restore = try await app.run("restore-job", environment: ["RESTORE_TERMINATE_CONNECTIONS": "true"])
            try #require(restore.succeeded, "\(restore)")
            #expect(restore.stdout.contains("Restore completed successfully: \(archive)"))
            let after = try await app.snapshot()
            #expect(after.database == before.database)
            #expect(after.uploads == before.uploads, "\(after.uploads.differences(from: before.uploads))")
            #expect(after.env == before.env)
            let kept = try Data(contentsOf: URL(fileURLWithPath: app.envFile.path + ".before-restore"))
            #expect(kept == Data("BROKEN=1\n".utf8))
        }
    }

    @Test("the archive is a standard tar that GNU tar lists and pg_restore reads, with the runbook's members")
    func archiveLayout() async throws {
        try await ApplicationFixture.with(uploadFiles: 12) { app in
            try #require(try await app.run("backup-job").succeeded)
            let archive = try #require(try app.storeFiles().first { $0.hasSuffix(".tar.gz") })
            let stem = String(archive.dropLast(".tar.gz".count))
            let path = app.backupDirectory.appendingPathComponent(archive).path
            let listing = try await ProcessRunner.run("tar", ["-tzf", path], requireSuccess: true).stdout
            let members = Set(listing.split(separator: "\n").map(String.init))
            for member in ["database.dump", ".env.backup", "package.json", "metadata.json", "uploads/"] {
                #expect(members.contains("\(stem)/\(member)"), "\(member) missing from \(members.sorted())")
            }
            #expect(!members.contains("\(stem)/package-lock.json"))

            let extract = try TemporaryDirectory()
            _ = try await ProcessRunner.run("tar", ["-xzf", path, "-C", extract.path], requireSuccess: true)
            let dump = extract.appending("\(stem)/database.dump").path
            let list = try await ProcessRunner.run(app.server.binDir.appendingPathComponent("pg_restore").path, ["--list", dump])
            #expect(list.succeeded && list.stdout.contains("TABLE public users"), "\(list)")

            let metadataData = try Data(contentsOf: extract.appending("\(stem)/metadata.json"))
            let metadata = try ContingencyJSON.decoder().decode(BackupMetadata.self, from: metadataData)
            #expect(metadata.database == "visual_db")
            #expect(metadata.version == "1.5.0")
            #expect(metadata.missing == ["package-lock.json"])
            #expect(metadata.timestamp == String(stem.dropFirst("visual_backup_".count)))
            #expect(metadata.uploads?.files == 12)
            // Row counts recorded in the dump's snapshot, for drills: every table, exact.
            let database = try await app.server.snapshot(database: app.database)
            #expect(metadata.tables == database.tables.mapValues { Int64($0.rowCount) })
            let dumpMember = try #require(metadata.member(named: "database.dump"))
            let dumpSHA = try await ProcessRunner.run("sha256sum", [dump], requireSuccess: true).stdout.prefix(64)
            #expect(dumpMember.sha256 == String(dumpSHA))

            let manifestData = try Data(contentsOf: app.backupDirectory.appendingPathComponent(archive + ".json"))
            let manifest = try ContingencyJSON.decoder().decode(Manifest.self, from: manifestData)
            let archiveSHA = try await ProcessRunner.run("sha256sum", [path], requireSuccess: true).stdout.prefix(64)
            #expect(manifest.archive.sha256 == String(archiveSHA))
            #expect(manifest.metadata == metadata)
            // Secrets stay out of the metadata and the logs.
            #expect(!String(decoding: manifestData, as: UTF8.self).contains(app.server.password))
        }
    }

    @Test("restore reads archives made by the runbook's shell script (uploads.tar.gz nested)")
    func legacyArchive() async throws {
        try await ApplicationFixture.with(uploadFiles: 15) { app in
            let before = try await app.snapshot()
            // The runbook's procedure: pg_dump -Fc, tar czf uploads.tar.gz, cp .env, metadata.json, tar czf of the folder.
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("bench/runbook-backup.sh").path
            let legacy = try await ProcessRunner.run("bash", [script], environment: app.environment(["PATH": "\(app.server.binDir.path):/usr/bin:/bin"]))
            try #require(legacy.succeeded, "\(legacy)")
            let archive = try #require(try app.storeFiles().first { $0.hasSuffix(".tar.gz") })
            // No manifest: such an archive is restored only when named.
            let unnamed = try await app.run("restore-job")
            #expect(unnamed.status == 10, "\(unnamed)")

            _ = try await app.server.psql("TRUNCATE users, posts, attachments CASCADE", database: app.database)
            try FileManager.default.removeItem(at: app.uploadsDirectory)
            let restore = try await app.run(
                "restore-job", environment: ["LATEST_BACKUP": app.backupDirectory.appendingPathComponent(archive).path])
            try #require(restore.succeeded, "\(restore)")
            let after = try await app.snapshot()
            #expect(after == before)
        }
    }
}

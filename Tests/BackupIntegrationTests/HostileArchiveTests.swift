import BackupCore
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Backups forged the way someone with write access to the store would: a real backup, members changed, every
/// checksum recomputed (`ArchiveForge`) so that only the content is hostile. After each refused attempt: exit 1
/// with a clear message (never a signal), every table and every file as before, nothing written outside the
/// uploads, no staging folder left.
@Suite("Hostile archives")
struct HostileArchiveTests {
    /// A real backup of the fixture; returns its archive.
    func backup(_ app: ApplicationFixture) async throws -> URL {
        let result = try await app.run("backup-job")
        try #require(result.succeeded, "\(result)")
        return app.backupDirectory.appendingPathComponent(try #require(try app.storeFiles().first { $0.hasSuffix(".tar.gz") }))
    }

    /// Everything below the fixture's root except the store (which a restore writes to: its lock, its staging).
    func outside(_ app: ApplicationFixture) throws -> FileTreeSnapshot {
        let all = try FileTreeSnapshot.take(app.root.url)
        return FileTreeSnapshot(entries: all.entries.filter { !$0.key.hasPrefix("backups/") && $0.key != "backups" })
    }

    /// Changes after the backup, so that "as before" and "restored" differ; a victim folder beside the app.
    func prepareVictims(_ app: ApplicationFixture) async throws -> URL {
        _ = try await app.server.psql("UPDATE users SET name = 'after the backup' WHERE id = 1", database: app.database)
        try Data("after the backup".utf8).write(to: app.uploadsDirectory.appendingPathComponent("new.txt"))
        let victim = app.root.appending("victim", isDirectory: true)
        try FileManager.default.createDirectory(at: victim, withIntermediateDirectories: true)
        try Data("precious".utf8).write(to: victim.appendingPathComponent("precious.txt"))
        return victim
    }

    /// Runs restore-job and checks that it was refused with `message` and that nothing changed anywhere.
    @discardableResult
    func expectRefused(
        _ app: ApplicationFixture, _ message: String, environment: [String: String] = [:],
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> ProcessResult {
        let before = try await app.snapshot()
        let files = try outside(app)
        let restore = try await app.run("restore-job", environment: environment)
        #expect(restore.status == 1, "\(restore)", sourceLocation: sourceLocation)
        #expect(restore.stderr.contains(message), "\(restore.stderr)", sourceLocation: sourceLocation)
        let after = try await app.snapshot()
        #expect(after == before, "\(after.uploads.differences(from: before.uploads))", sourceLocation: sourceLocation)
        let filesAfter = try outside(app)
        #expect(filesAfter == files, "\(filesAfter.differences(from: files))", sourceLocation: sourceLocation)
        return restore
    }

    // MARK: - The uploads tree

    @Test(
        "an uploads entry that is a symlink (to . or ..) is refused, beside the uploads and in a mount point",
        arguments: [(".", false), ("..", false), (".", true), ("..", true)])
    func uploadsRootSymlink(target: String, mountPoint: Bool) async throws {
        try await ApplicationFixture.with(uploadFiles: 0) { app in
            let mount = mountPoint ? try await TmpfsMount(size: "16m", on: app.uploadsDirectory.path) : nil
            defer { mount?.unmount() }
            try FileTreeSnapshot.makeSampleUploads(in: app.uploadsDirectory, fileCount: 5)
            let archive = try await backup(app)
            try await ArchiveForge.forge(archive, [.removeBelow("uploads"), .replace("uploads", .symlink("uploads", to: target))])
            _ = try await prepareVictims(app)
            try await expectRefused(app, "the archive's uploads entry is a symlink (to \(target))")
            var info = stat()
            #expect(lstat(app.uploadsDirectory.path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR)
        }
    }

    @Test("a symlink out of the uploads, then a file written through it: refused by default, and with outside links allowed")
    func writeThroughSymlink() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let archive = try await backup(app)
            let victim = app.root.appending("victim", isDirectory: true)
            try await ArchiveForge.forge(
                archive,
                [
                    .insertAfter("uploads", .symlink("uploads/l", to: victim.path)),
                    .insertAfter("uploads/l", .file("uploads/l/planted.txt", Data("planted".utf8))),
                ])
            _ = try await prepareVictims(app)
            let refused = try await expectRefused(app, "the symlink uploads/l points outside the uploads (to \(victim.path))")
            #expect(refused.stderr.contains("RESTORE_ALLOW_OUTSIDE_SYMLINKS=true"), "\(refused.stderr)")
            try await expectRefused(
                app, "uploads/l/planted.txt goes through the symlink uploads/l", environment: ["RESTORE_ALLOW_OUTSIDE_SYMLINKS": "true"])
            #expect(!FileManager.default.fileExists(atPath: victim.appendingPathComponent("planted.txt").path))
        }
    }

    @Test(
        "symlinks whose target leaves the uploads are refused, however they climb",
        arguments: [
            ("uploads/l", "../../victim"), ("uploads/a/l", "../.."), ("uploads/l", "/etc"), ("uploads/l", "x/../../.."),
        ])
    func symlinkOutside(link: String, target: String) async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let archive = try await backup(app)
            var edits: [ArchiveForge.Edit] = []
            if link.hasPrefix("uploads/a/") { edits.append(.insertAfter("uploads", .directory("uploads/a"))) }
            edits.append(.insertAfter("uploads", .symlink(link, to: target)))
            try await ArchiveForge.forge(archive, edits)
            _ = try await prepareVictims(app)
            try await expectRefused(app, "the symlink \(link) points outside the uploads")
        }
    }

    @Test("a symlink through a link that climbs (s/a -> .., l -> s/a/..) is refused; a hard link to a link too")
    func symlinkThroughSymlink() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let archive = try await backup(app)
            try await ArchiveForge.forge(
                archive,
                [
                    .insertAfter("uploads", .directory("uploads/s")),
                    .insertAfter("uploads/s", .symlink("uploads/s/a", to: "..")),
                    .insertAfter("uploads/s", .symlink("uploads/l", to: "s/a/../victim")),
                ])
            _ = try await prepareVictims(app)
            try await expectRefused(app, "the symlink uploads/l points outside the uploads (to s/a/../victim)")
        }
        // Counted lexically, d/e/l -> s/a/../x stays inside (d/e/s/x); through the link s/a it climbs out.
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let archive = try await backup(app)
            try await ArchiveForge.forge(
                archive,
                [
                    .insertAfter("uploads", .directory("uploads/d")),
                    .insertAfter("uploads/d", .directory("uploads/d/e")),
                    .insertAfter("uploads/d/e", .directory("uploads/d/e/s")),
                    .insertAfter("uploads/d/e/s", .symlink("uploads/d/e/s/a", to: "../../..")),
                    .insertAfter("uploads/d/e/s", .symlink("uploads/d/e/l", to: "s/a/../victim")),
                ])
            _ = try await prepareVictims(app)
            try await expectRefused(app, "the symlink uploads/d/e/l points outside the uploads (to s/a/../victim)")
        }
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let archive = try await backup(app)
            try await ArchiveForge.forge(
                archive,
                [
                    .insertAfter("uploads", .directory("uploads/a")),
                    .insertAfter("uploads/a", .directory("uploads/a/b")),
                    .insertAfter("uploads/a/b", .symlink("uploads/a/b/l", to: "../../victim")),
                    .insertAfter("uploads/a", .hardlink("uploads/h", to: "uploads/a/b/l")),
                ])
            _ = try await prepareVictims(app)
            try await expectRefused(app, "the hard link uploads/h points to the symlink uploads/a/b/l")
        }
    }

    @Test("symlinks that stay inside the uploads are restored; outside ones too when allowed")
    func symlinksInside() async throws {
        try await ApplicationFixture.with(uploadFiles: 12) { app in
            let uploads = app.uploadsDirectory
            try FileManager.default.createSymbolicLink(atPath: uploads.appendingPathComponent("docs").path, withDestinationPath: "documents/2024")
            try FileManager.default.createSymbolicLink(
                atPath: uploads.appendingPathComponent("documents/2024/03/top").path, withDestinationPath: "../../../tiny.bin")
            try FileManager.default.createSymbolicLink(atPath: uploads.appendingPathComponent("hostname").path, withDestinationPath: "/etc/hostname")
            let before = try FileTreeSnapshot.take(uploads)
            _ = try await backup(app)
            try FileManager.default.removeItem(at: uploads.appendingPathComponent("docs"))
            try await expectRefused(app, "the symlink uploads/hostname points outside the uploads (to /etc/hostname)")
            let restore = try await app.run("restore-job", environment: ["RESTORE_ALLOW_OUTSIDE_SYMLINKS": "true"])
            try #require(restore.succeeded, "\(restore)")
            #expect(try FileTreeSnapshot.take(uploads) == before)
        }
    }

    @Test("a path with .. in the uploads is refused, in our layout and in the runbook's nested uploads.tar.gz")
    func dotDotPath() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let archive = try await backup(app)
            try await ArchiveForge.forge(archive, [.insertAfter("uploads", .file("uploads/../../x", Data("planted".utf8)))])
            _ = try await prepareVictims(app)
            try await expectRefused(app, "uploads/../../x has a .. in its path")
        }
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let archive = try await runbookBackup(app)
            try await ArchiveForge.forge(
                archive, [.insertAfter("uploads", .file("uploads/../../x", Data("planted".utf8)))], nested: true)
            _ = try await prepareVictims(app)
            try await expectRefused(app, "uploads/../../x has a .. in its path", environment: ["LATEST_BACKUP": archive.path])
        }
    }

    /// An archive made by the runbook's shell script.
    func runbookBackup(_ app: ApplicationFixture) async throws -> URL {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("bench/runbook-backup.sh").path
        let legacy = try await ProcessRunner.run(
            "bash", [script], environment: app.environment(["PATH": "\(app.server.binDir.path):/usr/bin:/bin"]))
        try #require(legacy.succeeded, "\(legacy)")
        return app.backupDirectory.appendingPathComponent(try #require(try app.storeFiles().first { $0.hasSuffix(".tar.gz") }))
    }

    @Test("setuid, setgid, sticky and world-write bits are not restored")
    func modesMasked() async throws {
        try await ApplicationFixture.with(uploadFiles: 10) { app in
            let archive = try await backup(app)
            try await ArchiveForge.forge(
                archive,
                [
                    .modify("uploads/tiny.bin", mode: 0o4755), .modify("uploads/empty.txt", mode: 0o2666),
                    .modify("uploads/avatars", mode: 0o1777), .modify("uploads/documents", mode: 0o2775),
                ])
            let restore = try await app.run("restore-job")
            try #require(restore.succeeded, "\(restore)")
            func mode(_ path: String) -> mode_t {
                var info = stat()
                return lstat(app.uploadsDirectory.appendingPathComponent(path).path, &info) == 0 ? info.st_mode & 0o7777 : 0o7777
            }
            #expect(mode("tiny.bin") == 0o755)
            #expect(mode("empty.txt") == 0o664)
            #expect(mode("avatars") == 0o775)
            #expect(mode("documents") == 0o775)
        }
    }

    @Test("owners: the current uploads folder's owner by default, the archive's with RESTORE_OWNERS=true")
    func owners() async throws {
        try await ApplicationFixture.with(uploadFiles: 10) { app in
            let archive = try await backup(app)
            try await ArchiveForge.forge(
                archive,
                [.modify("uploads/tiny.bin", uid: 0, gid: 0), .modify("uploads/avatars", uid: 4242, gid: 4243),
                 .modify("uploads/avatars/large photo.bin", uid: 4242, gid: 4243)])
            try #require(chown(app.uploadsDirectory.path, 1000, 1001) == 0)
            func owners() throws -> Set<String> {
                let enumerator = try #require(FileManager.default.enumerator(atPath: app.uploadsDirectory.path))
                var found = Set<String>()
                while let path = enumerator.nextObject() as? String {
                    var info = stat()
                    if lstat(app.uploadsDirectory.appendingPathComponent(path).path, &info) == 0 { found.insert("\(info.st_uid):\(info.st_gid)") }
                }
                return found
            }
            let restore = try await app.run("restore-job")
            try #require(restore.succeeded, "\(restore)")
            #expect(try owners() == ["1000:1001"])
            var info = stat()
            #expect(stat(app.uploadsDirectory.path, &info) == 0 && info.st_uid == 1000 && info.st_gid == 1001)
            let kept = try await app.run("restore-job", environment: ["RESTORE_OWNERS": "true"])
            try #require(kept.succeeded, "\(kept)")
            var avatars = stat()
            #expect(stat(app.uploadsDirectory.appendingPathComponent("avatars/large photo.bin").path, &avatars) == 0)
            #expect(avatars.st_uid == 4242 && avatars.st_gid == 4243)
            var tiny = stat()
            #expect(stat(app.uploadsDirectory.appendingPathComponent("tiny.bin").path, &tiny) == 0 && tiny.st_uid == 0)
        }
    }

    @Test("the staging folder is private (0700) and is put in place only if it is still a real folder of ours")
    func stagingChecked() async throws {
        try await ApplicationFixture.with(uploadFiles: 5) { app in
            _ = try await backup(app)
            let victim = try await prepareVictims(app)
            let uploadsBefore = try FileTreeSnapshot.take(app.uploadsDirectory)
            let victimBefore = try FileTreeSnapshot.take(victim)
            let job = try app.launch("restore-job", environment: ["CONTINGENCY_FAILPOINT": "restore-swap"])
            try await eventually("restore-job to stop before the swap") { job.isStopped || !job.isRunning }
            let names = try FileManager.default.contentsOfDirectory(atPath: app.appDirectory.path)
            let staging = app.appDirectory.appendingPathComponent(try #require(names.first { $0.hasPrefix(".uploads.restore-") }, "\(names)")).path
            var info = stat()
            #expect(lstat(staging, &info) == 0 && info.st_mode & 0o7777 == 0o700)
            // Something puts a link to another folder where the staging folder was.
            try #require(rename(staging, staging + ".moved") == 0)
            try FileManager.default.createSymbolicLink(atPath: staging, withDestinationPath: victim.path)
            job.kill(SIGCONT)
            let result = try await job.waitForExit()
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.contains("is not a folder (a symlink): refusing to put it in place"), "\(result.stderr)")
            #expect(try FileTreeSnapshot.take(app.uploadsDirectory) == uploadsBefore)
            #expect(try FileTreeSnapshot.take(victim) == victimBefore)
            _ = unlink(staging)
            try? FileManager.default.removeItem(atPath: staging + ".moved")
        }
    }

    @Test("names that are not UTF-8 survive the swap of an uploads folder that is a mount point, nothing left behind")
    func nonUTF8NamesInMountPoint() async throws {
        try await ApplicationFixture.with(uploadFiles: 0) { app in
            let mount = try await TmpfsMount(size: "16m", on: app.uploadsDirectory.path)
            defer { mount.unmount() }
            try FileTreeSnapshot.makeSampleUploads(in: app.uploadsDirectory, fileCount: 5)
            let shell = { (script: String) in
                try await ProcessRunner.run("bash", ["-c", script], workingDirectory: app.uploadsDirectory, requireSuccess: true).stdout
            }
            _ = try await shell(#"printf one > $'caf\xe9.png'; printf two > $'caf\xe8.png'; mkdir $'d\xff'; printf three > $'d\xff/f\xfe'"#)
            let listing = #"find . -print0 | LC_ALL=C sort -z | od -An -tx1 | tr -d ' \n'; find . -type f -print0 | LC_ALL=C sort -z | xargs -0 cat"#
            let before = try await shell(listing)
            _ = try await backup(app)
            _ = try await shell(#"rm -rf $'caf\xe9.png' $'d\xff'; printf changed > $'caf\xe8.png'; printf stray > $'stray\xfa'"#)
            let restore = try await app.run("restore-job")
            try #require(restore.succeeded, "\(restore)")
            #expect(try await shell(listing) == before)
        }
    }

    // MARK: - Sizes

    @Test("a gzip bomb in the uploads declared small stops at the declared total, nothing written past it")
    func bombBeyondDeclared() async throws {
        try await ApplicationFixture.with(uploadFiles: 0) { app in
            let mount = try await TmpfsMount(size: "64m", on: app.uploadsDirectory.path)
            defer { mount.unmount() }
            try FileTreeSnapshot.makeSampleUploads(in: app.uploadsDirectory, fileCount: 5)
            let archive = try await backup(app)
            // 2 GiB of zeros, about 2 MB of gzip; the manifest keeps declaring the real uploads' few MB.
            try await ArchiveForge.forge(archive, [.replace("uploads/tiny.bin", .zeros("uploads/tiny.bin", count: 2 << 30))], recompute: [.members, .archive])
            // UPLOADS_DIR is a 64 MiB file system: had more than the declared total been written, the restore would
            // have failed on a full disk instead, with another message.
            try await expectRefused(app, "the uploads hold more than the")
        }
    }

    @Test("a bomb whose manifest declares its real size: refused by the free-space check before anything is written")
    func bombDeclared() async throws {
        try await ApplicationFixture.with(uploadFiles: 0) { app in
            let mount = try await TmpfsMount(size: "64m", on: app.uploadsDirectory.path)
            defer { mount.unmount() }
            try FileTreeSnapshot.makeSampleUploads(in: app.uploadsDirectory, fileCount: 5)
            let archive = try await backup(app)
            try await ArchiveForge.forge(archive, [.replace("uploads/tiny.bin", .zeros("uploads/tiny.bin", count: 2 << 30))])
            let refused = try await expectRefused(app, "pre-restore check(s) failed")
            #expect(refused.stderr.contains("of uploads: free space first"), "\(refused.stderr)")
        }
    }

    @Test("a bomb in the runbook layout (no sizes declared) stops before the file system is full")
    func bombInRunbookArchive() async throws {
        try await ApplicationFixture.with(uploadFiles: 0) { app in
            let mount = try await TmpfsMount(size: "64m", on: app.uploadsDirectory.path)
            defer { mount.unmount() }
            try FileTreeSnapshot.makeSampleUploads(in: app.uploadsDirectory, fileCount: 5)
            let archive = try await runbookBackup(app)
            try await ArchiveForge.forge(
                archive, [.replace("uploads/tiny.bin", .zeros("uploads/tiny.bin", count: 1 << 30))], nested: true)
            // Without the bound, the restore would fail on the full file system instead, with another message.
            try await expectRefused(app, "the archive has no manifest declaring its sizes", environment: ["LATEST_BACKUP": archive.path])
        }
    }

    @Test("a member larger than its manifest says is stopped at the declared size")
    func memberLargerThanDeclared() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let archive = try await backup(app)
            try await ArchiveForge.forge(
                archive, [.replace(".env.backup", .file(".env.backup", Data(String(repeating: "X=1\n", count: 100_000).utf8)))],
                recompute: [.uploads, .archive])
            _ = try await prepareVictims(app)
            try await expectRefused(app, ".env.backup holds more than the")
        }
    }

    @Test("a database.dump larger than its manifest says is stopped at the declared size; the new database goes")
    func dumpLargerThanDeclared() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let archive = try await backup(app)
            try await ArchiveForge.forge(
                archive, [.replace("database.dump", .zeros("database.dump", count: 256 << 20))], recompute: [.uploads, .archive])
            _ = try await prepareVictims(app)
            try await expectRefused(app, "database.dump holds more than the")
            let left = try await app.server.query("SELECT datname FROM pg_database WHERE datname LIKE 'visual\\_db\\_restore\\_%'")
            #expect(left.isEmpty, "\(left)")
        }
    }

    @Test("a member the manifest does not list is refused")
    func undeclaredMember() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let archive = try await backup(app)
            try await ArchiveForge.forge(archive, [.insertAfter("package.json", .file("package-lock.json", Data("{}".utf8)))])
            _ = try await prepareVictims(app)
            try await expectRefused(app, "package-lock.json is not listed in the manifest but holds data")
        }
    }

    @Test("more files or folders than the manifest declares are refused at the first one too many", arguments: [false, true])
    func moreThanDeclared(folder: Bool) async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let archive = try await backup(app)
            let extra: ArchiveForge.Entry = folder ? .directory("uploads/extra") : .file("uploads/extra.txt", Data())
            try await ArchiveForge.forge(archive, [.insertAfter("uploads", extra)], recompute: [.members, .archive])
            _ = try await prepareVictims(app)
            // The sample uploads: 3 files in 2 folders (avatars, empty folder).
            try await expectRefused(app, folder ? "the uploads hold more than the 2 folders the manifest records" : "the uploads hold more than the 3 files the manifest records")
        }
    }

    @Test("a runbook archive of many empty files stops before the file system runs out of inodes")
    func inodeBombInRunbookArchive() async throws {
        try await ApplicationFixture.with(uploadFiles: 0) { app in
            let mount = try await TmpfsMount(size: "16m,nr_inodes=400", on: app.uploadsDirectory.path)
            defer { mount.unmount() }
            try FileTreeSnapshot.makeSampleUploads(in: app.uploadsDirectory, fileCount: 5)
            let archive = try await runbookBackup(app)
            let files = (0..<600).map { ArchiveForge.Edit.insertAfter("uploads", .file("uploads/many/\($0)", Data())) }
            try await ArchiveForge.forge(archive, files, nested: true)
            try await expectRefused(app, "5% of its free inodes", environment: ["LATEST_BACKUP": archive.path])
        }
    }

    @Test("a member changed to the same size with its recorded sha256 left alone is refused")
    func memberChecksum() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let archive = try await backup(app)
            let env = try Data(contentsOf: app.envFile)
            var forged = env
            forged[forged.count - 2] ^= 0x01
            try await ArchiveForge.forge(archive, [.replace(".env.backup", .file(".env.backup", forged, mode: 0o600))], recompute: [.uploads, .archive])
            _ = try await prepareVictims(app)
            try await expectRefused(app, ".env.backup does not match its recorded size and sha256")
        }
    }

    @Test("a metadata.json over 16 MiB is not read into memory")
    func oversizedMetadata() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let archive = try await backup(app)
            var padded = ArchiveForge.Entry.file("metadata.json", Data("{}".utf8))
            padded.fillCount = 17 << 20
            padded.fillByte = 0x20
            try await ArchiveForge.forge(archive, [.replace("metadata.json", padded)], recompute: [.archive])
            _ = try await prepareVictims(app)
            try await expectRefused(app, "metadata.json is larger than 16 MiB")
        }
    }

    @Test("a manifest over 16 MiB is refused when named and not listed otherwise")
    func oversizedManifest() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let archive = try await backup(app)
            try ArchiveForge.patchManifest(archive) { $0["padding"] = String(repeating: " ", count: 17 << 20) }
            _ = try await prepareVictims(app)
            try await expectRefused(app, "is larger than 16 MiB", environment: ["LATEST_BACKUP": archive.lastPathComponent])
            let newest = try await app.run("restore-job")
            #expect(newest.status == 10, "\(newest)")
            #expect(newest.stderr.contains("is not listed: the manifest"), "\(newest.stderr)")
        }
    }
}

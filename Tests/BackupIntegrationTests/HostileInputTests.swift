import BackupCore
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// File names, links and files that are not what they seem: nothing is lost, renamed or written outside.
@Suite("Unusual and hostile input")
struct HostileInputTests {
    /// Runs a shell command in `folder` and returns its output.
    func shell(_ script: String, in folder: URL) async throws -> String {
        try await ProcessRunner.run("bash", ["-c", script], workingDirectory: folder, requireSuccess: true).stdout
    }

    @Test("file names that are not UTF-8 are kept byte for byte, two of them stay two")
    func nonUTF8Names() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let uploads = app.uploadsDirectory
            _ = try await shell(#"printf one > $'caf\xe9.png'; printf two > $'caf\xe8.png'"#, in: uploads)
            let listing = #"find . -type f -print0 | sort -z | xargs -0 sha256sum | od -An -tx1 | tr -d ' \n'"#
            let before = try await shell(listing, in: uploads)
            try #require(try await app.run("backup-job").succeeded)
            _ = try await shell(#"rm -f $'caf\xe9.png' $'caf\xe8.png'"#, in: uploads)
            let restore = try await app.run("restore-job")
            try #require(restore.succeeded, "\(restore)")
            #expect(try await shell(listing, in: uploads) == before)
            #expect(try await shell(#"cat $'caf\xe9.png'; cat $'caf\xe8.png'"#, in: uploads) == "onetwo")
        }
    }

    @Test("an archive holding database.dump twice is refused: the second copy never replaces the staged first")
    func dumpTwice() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            try #require(try await app.run("backup-job").succeeded)
            let good = app.backupDirectory.appendingPathComponent(try #require(try app.storeFiles().first { $0.hasSuffix(".tar.gz") }))
            let archive = app.backupDirectory.appendingPathComponent("crafted.tar.gz").path
            // The good archive's members, then a second database.dump that is not a dump.
            let craft = """
                import tarfile, io
                with tarfile.open('\(good.path)', 'r:gz') as good, tarfile.open('\(archive)', 'w:gz') as t:
                    for member in good.getmembers():
                        t.addfile(member, good.extractfile(member) if member.isfile() else None)
                    data = b'not a dump'
                    f = tarfile.TarInfo('top/database.dump'); f.size = len(data)
                    t.addfile(f, io.BytesIO(data))
                """
            _ = try await ProcessRunner.run("python3", ["-c", craft], requireSuccess: true)
            _ = try await app.server.psql("UPDATE users SET name = 'after the backup'", database: app.database)
            let before = try await app.snapshot()
            let restore = try await app.run("restore-job", environment: ["LATEST_BACKUP": archive])
            #expect(restore.status == 1, "\(restore)")
            #expect(restore.stderr.contains("database.dump appears twice in the archive"), "\(restore.stderr)")
            #expect(try await app.snapshot() == before)
        }
    }

    @Test("a hard link pointing outside the uploads is refused and the file it names is untouched")
    func hardLinkOutside() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let victim = app.root.appending("victim.txt")
            try Data("precious".utf8).write(to: victim)
            let archive = app.backupDirectory.appendingPathComponent("crafted.tar.gz").path
            let craft = """
                import tarfile, io
                with tarfile.open('\(archive)', 'w:gz') as t:
                    link = tarfile.TarInfo('top/uploads/evil'); link.type = tarfile.LNKTYPE; link.linkname = '\(victim.path)'
                    t.addfile(link)
                    data = b'overwritten!'
                    f = tarfile.TarInfo('top/uploads/evil'); f.size = len(data)
                    t.addfile(f, io.BytesIO(data))
                """
            _ = try await ProcessRunner.run("python3", ["-c", craft], requireSuccess: true)
            let restore = try await app.run("restore-job", environment: ["LATEST_BACKUP": archive])
            #expect(restore.status == 1, "\(restore)")
            #expect(restore.stderr.contains("points outside the uploads"), "\(restore.stderr)")
            #expect(try Data(contentsOf: victim) == Data("precious".utf8))
        }
    }

    @Test("hard links inside the uploads of a runbook archive are restored as links")
    func hardLinkInside() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            _ = try await shell("printf shared > a.txt && ln a.txt b.txt", in: app.uploadsDirectory)
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("bench/runbook-backup.sh").path
            let legacy = try await ProcessRunner.run(
                "bash", [script], environment: app.environment(["PATH": "\(app.server.binDir.path):/usr/bin:/bin"]))
            try #require(legacy.succeeded, "\(legacy)")
            let archive = try #require(try app.storeFiles().first { $0.hasSuffix(".tar.gz") })
            _ = try await shell("rm a.txt b.txt", in: app.uploadsDirectory)
            let restore = try await app.run(
                "restore-job", environment: ["LATEST_BACKUP": app.backupDirectory.appendingPathComponent(archive).path])
            try #require(restore.succeeded, "\(restore)")
            #expect(try await shell("cat a.txt b.txt; stat -c %h a.txt", in: app.uploadsDirectory) == "sharedshared2\n")
        }
    }

    @Test("an UPLOADS_DIR that is a symlink stays a symlink; what it points to is restored")
    func symlinkedUploads() async throws {
        try await ApplicationFixture.with(uploadFiles: 10) { app in
            let real = app.root.appending("volume/uploads", isDirectory: true)
            try FileManager.default.createDirectory(at: real.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.moveItem(at: app.uploadsDirectory, to: real)
            try FileManager.default.createSymbolicLink(at: app.uploadsDirectory, withDestinationURL: real)
            let before = try FileTreeSnapshot.take(real)
            try #require(try await app.run("backup-job").succeeded)
            try FileManager.default.removeItem(at: real.appendingPathComponent("avatars"))
            let restore = try await app.run("restore-job")
            try #require(restore.succeeded, "\(restore)")
            let link = try FileManager.default.destinationOfSymbolicLink(atPath: app.uploadsDirectory.path)
            #expect(link == real.path)
            #expect(try FileTreeSnapshot.take(real) == before)
        }
    }

    @Test("the restored .env keeps its owner and mode")
    func envOwnership() async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            chown(app.envFile.path, 1000, 1000)
            chmod(app.envFile.path, 0o640)
            try #require(try await app.run("backup-job").succeeded)
            try Data("BROKEN=1\n".utf8).write(to: app.envFile)
            try #require(try await app.run("restore-job").succeeded)
            for path in [app.envFile.path, app.envFile.path + ".before-restore"] {
                var info = stat()
                try #require(stat(path, &info) == 0)
                #expect(info.st_uid == 1000 && info.st_gid == 1000, "\(path)")
                #expect(info.st_mode & 0o777 == 0o640, "\(path)")
            }
        }
    }

    @Test("a DATABASE_URL libpq cannot parse: the error never quotes the password")
    func unparseableURL() async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            let result = try await app.run("backup-job", environment: ["DATABASE_URL": "postgres://app:S3cr%t!pw@127.0.0.1/visual_db"])
            #expect(result.status == 1)
            #expect(result.stderr.contains("DATABASE_URL is not a valid"), "\(result.stderr)")
            #expect(!result.stderr.contains("S3cr") && !result.stdout.contains("S3cr"))
        }
    }
}

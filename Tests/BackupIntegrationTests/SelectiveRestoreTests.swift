import BackupCore
import Foundation
import Testing
import TestSupport

/// RESTORE_PARTS (restore some parts, leave the others untouched) and `restore-job --extract` (unpack a backup
/// for inspection, touch nothing live), with real backups, a real PostgreSQL and the real executables.
@Suite(.serialized)
struct SelectiveRestoreTests {
    /// After a backup: a table with a row the backup does not have, an upload removed and one added, a rotated
    /// secret in the .env. Returns the state right after the backup and the changed state.
    static func backupThenChange(_ app: ApplicationFixture) async throws -> (backedUp: ApplicationSnapshot, changed: ApplicationSnapshot) {
        let backup = try await app.run("backup-job")
        try #require(backup.succeeded, "\(backup.stderr)")
        let backedUp = try await app.snapshot()
        _ = try await app.server.psql("CREATE TABLE added_later (id int); INSERT INTO added_later VALUES (42)", database: app.database)
        try FileManager.default.removeItem(at: app.uploadsDirectory.appendingPathComponent("tiny.bin"))
        try Data("new since the backup\n".utf8).write(to: app.uploadsDirectory.appendingPathComponent("added-later.txt"))
        try Data("DATABASE_URL=postgres://app@db/visual_db\nSESSION_SECRET=rotated-since\n".utf8).write(to: app.envFile)
        let changed = try await app.snapshot()
        try #require(changed.database != backedUp.database && changed.uploads != backedUp.uploads && changed.env != backedUp.env)
        return (backedUp, changed)
    }

    static func databases(_ app: ApplicationFixture, like pattern: String) async throws -> [String] {
        try await app.server.query("SELECT datname FROM pg_database WHERE datname LIKE '\(pattern)' ORDER BY 1").map { $0[0] }
    }

    /// Folders or files a restore stages beside the uploads and the .env (`.uploads.restore-…`, `.env.restore-…`).
    static func stagedLeftovers(_ app: ApplicationFixture) throws -> [String] {
        let folders = Set([app.uploadsDirectory.deletingLastPathComponent().path, app.envFile.deletingLastPathComponent().path])
        return try folders.flatMap { try FileManager.default.contentsOfDirectory(atPath: $0) }.filter { $0.contains(".restore-") }
    }

    @Test(
        "RESTORE_PARTS restores only the parts named; the others keep what changed since the backup",
        arguments: ["uploads", "env", "database", "uploads,env"])
    func onlySomeParts(_ parts: String) async throws {
        try await ApplicationFixture.with(uploadFiles: 12) { app in
            let (backedUp, changed) = try await Self.backupThenChange(app)
            let restore = try await app.run("restore-job", environment: ["RESTORE_PARTS": parts])
            try #require(restore.succeeded, "\(restore)")
            let chosen = Set(parts.split(separator: ",").map(String.init))
            let after = try await app.snapshot()
            #expect(after.uploads == (chosen.contains("uploads") ? backedUp.uploads : changed.uploads), "uploads")
            #expect(after.env == (chosen.contains("env") ? backedUp.env : changed.env), ".env")
            #expect(after.database == (chosen.contains("database") ? backedUp.database : changed.database), "database")
            let kept = try await Self.databases(app, like: "visual\\_db\\_%")
            // The database not chosen is neither dropped, swapped nor copied: no restore or kept database exists.
            #expect(kept.isEmpty == !chosen.contains("database"), "\(kept)")
            #expect(restore.stdout.contains("RESTORE_PARTS=\(parts)"), "the log names the parts: \(restore.stdout)")
            #expect(restore.stdout.contains("Verified"), "the whole archive is still verified")
            let envKept = FileManager.default.fileExists(atPath: app.envFile.path + ".before-restore")
            #expect(envKept == chosen.contains("env"))
            #expect(try Self.stagedLeftovers(app).isEmpty)
        }
    }

    @Test("restore-job --help explains RESTORE_PARTS and --extract")
    func help() async throws {
        let help = try await ProcessRunner.run(ApplicationFixture.executable("restore-job"), ["--help"])
        #expect(help.status == 0, "\(help)")
        for text in ["RESTORE_PARTS (default: database,uploads,env)", "--extract <dir>", "--extract DIR unpacks the backup"] {
            #expect(help.stdout.contains(text), "\(text)")
        }
    }

    @Test("RESTORE_POST_COMMAND is told which parts were restored")
    func postHookHearsTheParts() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            _ = try await Self.backupThenChange(app)
            let told = app.root.appending("told.txt")
            let restore = try await app.run(
                "restore-job",
                environment: ["RESTORE_PARTS": "env,uploads", "RESTORE_POST_COMMAND": "echo \"$CONTINGENCY_RESTORE_PARTS\" > '\(told.path)'"])
            try #require(restore.succeeded, "\(restore)")
            #expect(try String(contentsOf: told, encoding: .utf8) == "uploads,env\n")
        }
    }

    @Test("--extract of an archive made by the runbook's shell script (uploads.tar.gz nested, no manifest)")
    func extractRunbookArchive() async throws {
        try await ApplicationFixture.with(uploadFiles: 6) { app in
            let before = try await app.snapshot()
            let archive = try await HostileArchiveTests().runbookBackup(app)
            let folder = app.root.appending("inspect")
            let extract = try await app.run("restore-job", ["--extract", folder.path], environment: ["LATEST_BACKUP": archive.path])
            try #require(extract.succeeded, "\(extract)")
            let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
            #expect(names.contains("database.dump") && names.contains("metadata.json") && names.contains(".env.backup"), "\(names)")
            #expect(try FileTreeSnapshot.take(folder.appendingPathComponent("uploads")) == before.uploads)
            #expect(try Data(contentsOf: folder.appendingPathComponent(".env.backup")) == before.env)
            let listed = try await ProcessRunner.run(
                app.server.binDir.appendingPathComponent("pg_restore").path, ["--list", folder.appendingPathComponent("database.dump").path])
            #expect(listed.succeeded && listed.stdout.contains("TABLE DATA public users"), "\(listed)")
            #expect(try await app.snapshot() == before)
        }
    }

    @Test("An unknown part, or a corrupt archive with RESTORE_PARTS=uploads, fails and touches nothing")
    func refusalsTouchNothing() async throws {
        try await ApplicationFixture.with(uploadFiles: 12) { app in
            let (_, changed) = try await Self.backupThenChange(app)
            let unknown = try await app.run("restore-job", environment: ["RESTORE_PARTS": "uploads,files"])
            #expect(unknown.status == 1, "\(unknown)")
            #expect((unknown.stdout + unknown.stderr).contains("\"files\" is not a part of a backup"), "\(unknown)")
            #expect((unknown.stdout + unknown.stderr).contains("database, uploads, env"))
            #expect(try await app.snapshot() == changed)

            // Bytes changed in the middle of the archive: its sha256 no longer matches the manifest, found only by
            // reading it all (the uploads come before the end), and nothing of the uploads is swapped in.
            let archive = try #require(try app.storeFiles().first { $0.hasSuffix(".tar.gz") })
            let handle = try FileHandle(forUpdating: app.backupDirectory.appendingPathComponent(archive))
            let size = try handle.seekToEnd()
            try handle.seek(toOffset: size - 200)
            try handle.write(contentsOf: Data(repeating: 0x5a, count: 64))
            try handle.close()
            let corrupt = try await app.run("restore-job", environment: ["RESTORE_PARTS": "uploads"])
            #expect(!corrupt.succeeded, "\(corrupt)")
            #expect((corrupt.stdout + corrupt.stderr).contains("nothing was restored"), "\(corrupt)")
            #expect(try await app.snapshot() == changed)
            #expect(try Self.stagedLeftovers(app).isEmpty)
        }
    }

    /// sha256 of a file, by the system's tool.
    static func sha256(_ url: URL) async throws -> String {
        let result = try await ProcessRunner.run("sha256sum", [url.path], requireSuccess: true)
        return String(result.stdout.prefix(64))
    }

    @Test("--extract unpacks a verified backup byte for byte beside the app and touches nothing live; a non-empty folder is refused")
    func extract() async throws {
        try await ApplicationFixture.with(uploadFiles: 12) { app in
            let package = try Data(contentsOf: app.appDirectory.appendingPathComponent("package.json"))
            let (backedUp, changed) = try await Self.backupThenChange(app)
            let manifestName = try #require(try app.storeFiles().first { $0.hasSuffix(".json") })
            let manifest = try ContingencyJSON.decoder().decode(
                Manifest.self, from: Data(contentsOf: app.backupDirectory.appendingPathComponent(manifestName)))
            let folder = app.root.appending("inspect/backup")
            let extract = try await app.run("restore-job", ["--extract", folder.path])
            try #require(extract.succeeded, "\(extract)")
            #expect(try await app.snapshot() == changed, "nothing live touched")
            #expect(try await Self.databases(app, like: "visual\\_db\\_%").isEmpty)

            let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
            for member in manifest.metadata.members {
                #expect(names.contains(member.name), "\(member.name) in \(names)")
                let file = folder.appendingPathComponent(member.name)
                #expect(try await Self.sha256(file) == member.sha256, "\(member.name) is byte-identical to the backup's")
            }
            #expect(names.contains("metadata.json") && names.contains("uploads"), "\(names)")
            #expect(!names.contains { $0.hasSuffix(".partial") }, "\(names)")
            let metadata = try ContingencyJSON.decoder().decode(BackupMetadata.self, from: Data(contentsOf: folder.appendingPathComponent("metadata.json")))
            #expect(metadata == manifest.metadata)
            #expect(try FileTreeSnapshot.take(folder.appendingPathComponent("uploads")) == backedUp.uploads)
            #expect(try Data(contentsOf: folder.appendingPathComponent(".env.backup")) == backedUp.env)
            #expect(try Data(contentsOf: folder.appendingPathComponent("package.json")) == package)
            let mode = try #require(try FileManager.default.attributesOfItem(atPath: folder.path)[.posixPermissions] as? Int)
            #expect(mode == 0o700, "it holds the database and the .env in clear: private")
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder.deletingLastPathComponent().path) == ["backup"], "no staging left")

            // Again into the same folder: refused, nothing in it changed.
            let again = try await app.run("restore-job", ["--extract", folder.path])
            #expect(again.status == 1, "\(again)")
            #expect((again.stdout + again.stderr).contains("is not empty"), "\(again)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() == names)
            // An empty folder is fine; inside the live uploads is not.
            let empty = app.root.appending("empty")
            try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
            #expect(try await app.run("restore-job", ["--extract", empty.path]).succeeded)
            let inside = try await app.run("restore-job", ["--extract", app.uploadsDirectory.appendingPathComponent("x").path])
            #expect(inside.status == 1 && (inside.stdout + inside.stderr).contains("inside the live uploads folder"), "\(inside)")
            #expect(try await app.snapshot() == changed)
        }
    }

    @Test("--extract of an encrypted backup: no key is exit 12 and nothing written; with the key, the members in clear")
    func extractEncrypted() async throws {
        try await ApplicationFixture.with(uploadFiles: 8) { app in
            let keys = try TemporaryDirectory()
            defer { keys.remove() }
            let identity = keys.appending("identity.txt").path
            _ = try await ProcessRunner.run("age-keygen", ["-o", identity], requireSuccess: true)
            let recipient = try await ProcessRunner.run("age-keygen", ["-y", identity], requireSuccess: true).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let before = try await app.snapshot()
            try #require(try await app.run("backup-job", environment: ["AGE_RECIPIENTS": recipient]).succeeded)
            let manifestName = try #require(try app.storeFiles().first { $0.hasSuffix(".age.json") })
            let manifest = try ContingencyJSON.decoder().decode(
                Manifest.self, from: Data(contentsOf: app.backupDirectory.appendingPathComponent(manifestName)))
            let folder = app.root.appending("inspect")

            let keyless = try await app.run("restore-job", ["--extract", folder.path])
            #expect(keyless.status == 12, "\(keyless)")
            #expect(!FileManager.default.fileExists(atPath: folder.path), "nothing written without the key")
            #expect(try FileManager.default.contentsOfDirectory(atPath: app.root.path).filter { $0.contains(".extract-") }.isEmpty)

            let extract = try await app.run("restore-job", ["--extract", folder.path], environment: ["AGE_IDENTITY_FILE": identity])
            try #require(extract.succeeded, "\(extract)")
            for member in manifest.metadata.members {
                #expect(try await Self.sha256(folder.appendingPathComponent(member.name)) == member.sha256, "\(member.name) in clear")
            }
            #expect(try FileTreeSnapshot.take(folder.appendingPathComponent("uploads")) == before.uploads)
            #expect(try await app.snapshot() == before)
        }
    }

    @Test("--extract of a hostile archive (a link out of the uploads, a .. path) is refused: the folder never appears, nothing outside written")
    func extractHostile() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let backup = try await app.run("backup-job")
            try #require(backup.succeeded, "\(backup)")
            let archive = app.backupDirectory.appendingPathComponent(try #require(try app.storeFiles().first { $0.hasSuffix(".tar.gz") }))
            let victim = app.root.appending("victim", isDirectory: true)
            try FileManager.default.createDirectory(at: victim, withIntermediateDirectories: true)
            let pristine = try Data(contentsOf: archive)
            let folder = app.root.appending("inspect")
            let cases: [(edits: [ArchiveForge.Edit], message: String)] = [
                (
                    [
                        .insertAfter("uploads", .symlink("uploads/l", to: victim.path)),
                        .insertAfter("uploads/l", .file("uploads/l/planted.txt", Data("planted".utf8))),
                    ],
                    "points outside the uploads"
                ),
                ([.insertAfter("uploads", .file("uploads/../../planted.txt", Data("planted".utf8)))], "has a .. in its path"),
            ]
            for hostile in cases {
                try pristine.write(to: archive)
                try await ArchiveForge.forge(archive, hostile.edits)
                let live = try await app.snapshot()
                let refused = try await app.run("restore-job", ["--extract", folder.path])
                #expect(refused.status == 1, "\(refused)")
                #expect(refused.stderr.contains(hostile.message), "\(refused.stderr)")
                #expect(!FileManager.default.fileExists(atPath: folder.path), "the folder never appears")
                #expect(try FileManager.default.contentsOfDirectory(atPath: victim.path).isEmpty)
                #expect(!FileManager.default.fileExists(atPath: app.root.appending("planted.txt").path))
                #expect(try FileManager.default.contentsOfDirectory(atPath: app.root.path).filter { $0.contains(".extract-") }.isEmpty)
                #expect(try await app.snapshot() == live)
            }
        }
    }
}

import BackupCore
import Foundation
import Testing
import TestSupport

/// Forgeries by someone who can write to the store when no signing key is configured (every checksum
/// recomputed), aimed at what the role allow-list and the declared sizes do not cover.
@Suite("Forgeries beyond globals.sql and the declared sizes")
struct UnboundedForgeryTests {
    @Test("symlinks added to the uploads beyond what the manifest records are refused, not written without bound")
    func symlinksBeyondDeclared() async throws {
        try await ApplicationFixture.with(uploadFiles: 5) { app in
            let result = try await app.run("backup-job")
            try #require(result.succeeded, "\(result)")
            let archive = app.backupDirectory.appendingPathComponent(
                try #require(try app.storeFiles().first { $0.hasSuffix(".tar.gz") }))
            // Each link costs an inode (and, with a long target, a block) that no declared total counts.
            let target = String(repeating: "x", count: 2000)
            let links = (0..<500).map {
                ArchiveForge.Edit.insertAfter("uploads", .symlink("uploads/link-\($0)", to: target))
            }
            try await ArchiveForge.forge(archive, links)
            // Every checksum matches the forged tree; the link count stays the one the backup recorded (none).
            try ArchiveForge.patchManifest(archive) { manifest in
                var uploads = manifest["uploads"] as? [String: Any] ?? [:]
                uploads["links"] = 0
                manifest["uploads"] = uploads
            }
            let restore = try await app.run("restore-job")
            #expect(restore.terminationSignal == nil, "\(restore)")
            #expect(restore.status == 1, "the 500 links were written: \(restore.stderr.suffix(400))")
            #expect(restore.stderr.contains("more than the 0 links the manifest records"), "\(restore.stderr)")
            let written = try FileManager.default.contentsOfDirectory(atPath: app.uploadsDirectory.path)
                .filter { $0.hasPrefix("link-") }.count
            #expect(written == 0, "\(written) links beyond the manifest's totals written")
        }
    }

    @Test("a hard link carrying data of its own never changes the file it links to, whose content was verified")
    func hardLinkCarryingData() async throws {
        try await ApplicationFixture.with(uploadFiles: 5) { app in
            let result = try await app.run("backup-job")
            try #require(result.succeeded, "\(result)")
            let archive = app.backupDirectory.appendingPathComponent(
                try #require(try app.storeFiles().first { $0.hasSuffix(".tar.gz") }))
            let victim = app.uploadsDirectory.appendingPathComponent("tiny.bin")
            let original = try Data(contentsOf: victim)
            // pax lets a hard link entry carry data; libarchive opens the linked file (O_TRUNC) to take it. The
            // digest counts a hard link by its target only, so the forger need not recompute anything for it.
            let payload = Data(repeating: UInt8(ascii: "E"), count: 8192)
            try await ArchiveForge.forge(
                archive, [.insertAfter("uploads", .hardlink("uploads/zz-link", to: "uploads/tiny.bin", carrying: payload))])
            let restore = try await app.run("restore-job")
            #expect(restore.terminationSignal == nil, "\(restore)")
            if restore.status == 0 {
                let restored = try Data(contentsOf: victim)
                #expect(
                    restored == original,
                    "tiny.bin was \(original.count) verified bytes, is now \(restored.count) bytes: \(restored.prefix(8).map { $0 })")
            } else {
                #expect(restore.status == 1 && restore.stderr.contains("hard link"), "\(restore.stderr)")
            }
        }
    }

    @Test("a fresh server: a pg_monitor grant, a NOLOGIN owner, a password with VALID UNTIL, an app setting")
    func commonRoleSetups() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            try await app.server.runScript(
                """
                CREATE ROLE app_owner NOLOGIN;
                CREATE ROLE app LOGIN PASSWORD 'app-password' VALID UNTIL '2031-06-01 00:00:00+00';
                GRANT app_owner TO app;
                CREATE ROLE monitoring LOGIN;
                GRANT pg_monitor TO monitoring;
                ALTER ROLE app SET search_path TO '$user', 'public';
                ALTER ROLE app SET "app.tenant" TO 'acme';
                """)
            _ = try await app.server.psql(
                "ALTER TABLE users OWNER TO app_owner; GRANT SELECT ON users TO monitoring;", database: app.database)
            try #require(try await app.run("backup-job", environment: ["BACKUP_ROLE_PASSWORDS": "true"]).succeeded)
            let before = try await app.snapshot()
            try await PostgresServer.with { fresh in
                let restore = try await app.run("restore-job", environment: fresh.environment)
                try #require(restore.succeeded, "\(restore)")
                #expect(try await fresh.snapshot(database: app.database) == before.database)
                #expect(
                    try await fresh.query(
                        "SELECT rolname, rolcanlogin, rolvaliduntil IS NOT NULL, rolpassword IS NOT NULL FROM pg_authid WHERE rolname IN ('app', 'app_owner', 'monitoring') ORDER BY 1"
                    ) == [["app", "t", "t", "t"], ["app_owner", "f", "f", "f"], ["monitoring", "t", "f", "f"]])
                // The application's login role, a member of the owner: what the application connects as.
                #expect(
                    try await fresh.query(
                        "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = 'app'"
                    ) == [["app_owner"]])
                // Not restored, by design; the log says what to run by hand.
                let log = restore.stdout + restore.stderr
                #expect(log.contains("monitoring is not made a member of pg_monitor"), "\(log)")
                #expect(log.contains("GRANT \"pg_monitor\" TO \"monitoring\""), "\(log)")
                #expect(log.contains("app.tenant is not restored") || log.contains("app\\'s setting app.tenant"), "\(log)")
            }
        }
    }

    @Test(
        "sizes in the manifest near Int64.max or Int64.min: a clear refusal, never an overflow trap",
        arguments: ["database.dump", "uploads", "negative uploads"])
    func hugeDeclaredSizes(what: String) async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let result = try await app.run("backup-job")
            try #require(result.succeeded, "\(result)")
            let archive = app.backupDirectory.appendingPathComponent(
                try #require(try app.storeFiles().first { $0.hasSuffix(".tar.gz") }))
            let huge = what.hasPrefix("negative") ? Int64.min + 10 : Int64.max - 10
            try ArchiveForge.patchManifest(archive) { manifest in
                if what.hasSuffix("uploads") {
                    var uploads = manifest["uploads"] as? [String: Any] ?? [:]
                    uploads["bytes"] = huge
                    manifest["uploads"] = uploads
                } else {
                    manifest["members"] = (manifest["members"] as? [[String: Any]] ?? []).map { member in
                        var member = member
                        if member["name"] as? String == "database.dump" { member["size"] = huge }
                        return member
                    }
                }
            }
            let before = try await app.snapshot()
            // A manifest declaring such a figure is not one this product wrote: the backup is not listed (10), and
            // named, it is read as an archive without a manifest and refused (1).
            let restore = try await app.run("restore-job")
            #expect(restore.terminationSignal == nil, "\(restore)")
            #expect(restore.status == 10, "\(restore)")
            let named = try await app.run("restore-job", environment: ["LATEST_BACKUP": archive.lastPathComponent])
            #expect(named.terminationSignal == nil, "\(named)")
            #expect(named.status == 1 && named.stderr.contains("has no manifest"), "\(named)")
            #expect(try await app.snapshot() == before)
        }
    }
}

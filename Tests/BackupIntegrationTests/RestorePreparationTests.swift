import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The slow part of a restore (pg_restore into a new database) starts as soon as the roles are read and match the
/// manifest, on the dump as it is read, while the rest of the archive is still verified, and before the
/// application is stopped; whatever fails later drops that database and leaves the application's own untouched.
@Suite("Database restored while the archive is verified")
struct RestorePreparationTests {
    /// Rewrites the (only) backup's manifest: the archive itself is left as it was.
    func editManifest(_ app: ApplicationFixture, _ edit: (inout [String: Any]) throws -> Void) throws {
        let url = app.backupDirectory.appendingPathComponent(try #require(try app.storeFiles().first { $0.hasSuffix(".json") }))
        var manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        try edit(&manifest)
        try JSONSerialization.data(withJSONObject: manifest).write(to: url)
    }

    /// A restore-job that stops itself right after creating the new database (seen to exist), until SIGCONT.
    func launchHeldOnceCreated(_ app: ApplicationFixture) async throws -> LaunchedProcess {
        let job = try app.launch("restore-job", environment: ["CONTINGENCY_FAILPOINT": "restore-database"])
        try await eventually("restore-job to stop once the new database exists") { job.isStopped }
        #expect(try await leftovers(app).count == 1)
        return job
    }

    func leftovers(_ app: ApplicationFixture) async throws -> [String] {
        try await app.server.query(#"SELECT datname FROM pg_database WHERE datname LIKE 'visual\_db\_restore\_%'"#).map { $0[0] }
    }

    @Test("pg_restore runs before the application is stopped; while stopped, only the swap and the files")
    func beforeTheStop() async throws {
        try await ApplicationFixture.with(uploadFiles: 10) { app in
            let before = try await app.snapshot()
            try #require(try await app.run("backup-job").succeeded)
            _ = try await app.server.psql("UPDATE users SET name = 'after the backup'", database: app.database)

            let restore = try await app.run(
                "restore-job", environment: ["APP_STOP_COMMAND": "true", "APP_START_COMMAND": "true"])
            try #require(restore.succeeded, "\(restore)")
            let lines = restore.stdout.split(separator: "\n").map(String.init)
            let early = try #require(lines.firstIndex { $0.contains("globals.sql matches the manifest: restoring database.dump into a new database as it is read") }, "\(restore.stdout)")
            let streamed = try #require(lines.firstIndex { $0.contains("Restoring the dump as it is read") }, "\(restore.stdout)")
            let verified = try #require(lines.firstIndex { $0.contains("Verified in") })
            let prepared = try #require(lines.firstIndex { $0.contains("Restored the dump into visual_db_restore_") })
            let stopped = try #require(lines.firstIndex { $0.contains("Application stopped") })
            let swapped = try #require(lines.firstIndex { $0.contains("Database visual_db restored") })
            #expect(early < streamed && early < verified && streamed < stopped, "\(restore.stdout)")
            #expect(verified < stopped && prepared < stopped && stopped < swapped, "\(restore.stdout)")
            #expect(try await app.snapshot() == before)
            #expect(try await leftovers(app).isEmpty)
        }
    }

    @Test("the archive fails verification after its dump matched: the database restored meanwhile is dropped")
    func failsAfterTheDump() async throws {
        try await ApplicationFixture.with(uploadFiles: 10) { app in
            try #require(try await app.run("backup-job").succeeded)
            // The manifest now promises other metadata than the archive holds: its roles and dump still match,
            // the mismatch shows only once metadata.json, the archive's last member, is read.
            try editManifest(app) { $0["hostname"] = "another-host" }
            _ = try await app.server.psql("UPDATE users SET name = 'after the backup'", database: app.database)
            let before = try await app.snapshot()

            // Held right after the new database is created, so the check below sees it exist.
            let job = try await launchHeldOnceCreated(app)
            job.kill(SIGCONT)
            let restore = try await job.waitForExit()
            #expect(restore.status == 1, "\(restore)")
            #expect(restore.stdout.contains("restoring database.dump into a new database as it is read"), "\(restore.stdout)")
            #expect(restore.stderr.contains("metadata.json inside the archive differs from its manifest"), "\(restore.stderr)")
            #expect(restore.stderr.contains("nothing was restored"), "\(restore.stderr)")
            #expect(try await leftovers(app).isEmpty)
            #expect(try await app.snapshot() == before)
        }
    }

    @Test("SIGTERM while the new database is restored: exit 130, the new database dropped, nothing changed")
    func terminated() async throws {
        try await ApplicationFixture.with(uploadFiles: 10) { app in
            try #require(try await app.run("backup-job").succeeded)
            _ = try await app.server.psql("UPDATE users SET name = 'after the backup'", database: app.database)
            let before = try await app.snapshot()

            let job = try await launchHeldOnceCreated(app)
            job.kill(SIGTERM)
            job.kill(SIGCONT)
            let restore = try await job.waitForExit()
            #expect(restore.status == 130, "\(restore)")
            #expect(try await leftovers(app).isEmpty)
            #expect(try await app.snapshot() == before)
        }
    }

    @Test("a dump that does not match its manifest is never swapped in: the new database it went into is dropped")
    func dumpMismatch() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            try #require(try await app.run("backup-job").succeeded)
            try editManifest(app) { manifest in
                var members = try #require(manifest["members"] as? [[String: Any]])
                let dump = try #require(members.firstIndex { $0["name"] as? String == "database.dump" })
                members[dump]["sha256"] = String(repeating: "0", count: 64)
                manifest["members"] = members
            }
            let before = try await app.snapshot()

            let restore = try await app.run("restore-job")
            #expect(restore.status == 1, "\(restore)")
            #expect(restore.stdout.contains("restoring database.dump into a new database as it is read"), "\(restore.stdout)")
            #expect(!restore.stdout.contains("Restored the dump into"), "\(restore.stdout)")
            #expect(restore.stderr.contains("nothing was restored"), "\(restore.stderr)")
            #expect(try await leftovers(app).isEmpty)
            #expect(try await app.snapshot() == before)
        }
    }
}

/// RESTORE_TOAST_COMPRESSION: how the restored database compresses long values (they read back the same).
@Suite("TOAST compression of restored values")
struct ToastCompressionTests {
    @Test("lz4 by default; pglz and the server's own default when asked", arguments: [
        (nil, "lz4"), ("pglz", "pglz"), ("server", "pglz"), ("LZ4", "lz4"),
    ] as [(String?, String)])
    func compression(setting: String?, expected: String) async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            _ = try await app.server.psql(
                "INSERT INTO posts (user_id, title, body) VALUES (1, 'long', repeat('a compressible sentence. ', 4000))",
                database: app.database)
            let before = try await app.snapshot()
            try #require(try await app.run("backup-job").succeeded)
            let restore = try await app.run(
                "restore-job", environment: setting.map { ["RESTORE_TOAST_COMPRESSION": $0] } ?? [:])
            try #require(restore.succeeded, "\(restore)")
            let method = try await app.server.query(
                "SELECT pg_column_compression(body) FROM posts WHERE title = 'long'", database: app.database)
            #expect(method == [[expected]])
            #expect(try await app.snapshot() == before)
        }
    }

    @Test("another value is refused before anything is read")
    func refused() async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            try #require(try await app.run("backup-job").succeeded)
            let restore = try await app.run("restore-job", environment: ["RESTORE_TOAST_COMPRESSION": "zstd"])
            #expect(restore.status == 1, "\(restore)")
            #expect(restore.stderr.contains("RESTORE_TOAST_COMPRESSION=zstd is not one of: lz4, pglz, server"), "\(restore.stderr)")
        }
    }
}

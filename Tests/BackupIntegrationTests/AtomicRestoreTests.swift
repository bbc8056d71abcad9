import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A restore never leaves the application's database half-restored: it is restored into a new database that
/// is swapped in by rename in one transaction.
@Suite("All-or-nothing restore")
struct AtomicRestoreTests {
    func databases(_ app: ApplicationFixture, like pattern: String) async throws -> [String] {
        try await app.server.query("SELECT datname FROM pg_database WHERE datname LIKE '\(pattern)' ORDER BY 1").map { $0[0] }
    }

    @Test("kill -9 while the new database is restored and right before the swap: the application's data is unchanged",
          arguments: ["restore-database", "restore-swap"])
    func killed(at point: String) async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            try #require(try await app.run("backup-job").succeeded)
            _ = try await app.server.psql("UPDATE users SET name = 'after the backup'; CREATE TABLE added_later (id int)", database: app.database)
            let before = try await app.snapshot()
            let job = try app.launch("restore-job", environment: ["CONTINGENCY_FAILPOINT": point])
            try await eventually("restore-job to stop at \(point)") { job.isStopped }
            job.kill(SIGKILL)
            _ = try await job.waitForExit()
            #expect(try await app.snapshot() == before)
            #expect(try await databases(app, like: "visual\\_db\\_restore\\_%").count == 1)

            // The next restore cleans up the unfinished one and brings the backup back exactly.
            let restore = try await app.run("restore-job", environment: ["LOCK_TIMEOUT": "30s", "RESTORE_KEEP_OLD": "false"])
            try #require(restore.succeeded, "\(restore)")
            #expect(restore.stdout.contains("left by a restore that did not finish"), "\(restore.stdout)")
            #expect(try await databases(app, like: "visual\\_db\\_%").isEmpty)
            let names = try await app.server.query("SELECT DISTINCT name FROM users", database: app.database)
            #expect(!names.contains(["after the backup"]))
        }
    }

    @Test("the old database is kept until the next successful backup; tables added after the backup are gone")
    func keptUntilNextBackup() async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            let before = try await app.snapshot()
            try #require(try await app.run("backup-job").succeeded)
            _ = try await app.server.psql("CREATE TABLE added_later (id int)", database: app.database)
            let restore = try await app.run("restore-job")
            try #require(restore.succeeded, "\(restore)")
            #expect(try await app.snapshot().database == before.database)
            let kept = try await databases(app, like: "visual\\_db\\_before\\_restore\\_%")
            #expect(kept.count == 1)
            let old = try await app.server.query("SELECT count(*) FROM pg_tables WHERE tablename = 'added_later'", database: try #require(kept.first))
            #expect(old == [["1"]])

            try #require(try await app.run("backup-job", environment: ["LOCK_TIMEOUT": "10s"]).succeeded)
            #expect(try await databases(app, like: "visual\\_db\\_before\\_restore\\_%").isEmpty)
        }
    }
}

@testable import BackupKit

/// Names of the databases a restore makes: within PostgreSQL's 63 bytes, and matched literally.
@Suite("Restore database names")
struct RestoreDatabaseNameTests {
    @Test(arguments: [
        ("visual_db", "_restore_1234abcd", "visual_db_restore_1234abcd"),
        (String(repeating: "d", count: 60), "_before_restore_20250115143000", String(repeating: "d", count: 33) + "_before_restore_20250115143000"),
    ])
    func truncated(database: String, suffix: String, expected: String) {
        #expect(DatabaseRestorer.truncated(database, suffix: suffix) == expected)
        #expect(DatabaseRestorer.truncated(database, suffix: suffix).utf8.count <= 63)
    }

    @Test(arguments: [("visual_db_restore_", #"visual\_db\_restore\_%"#), ("100%_x", #"100\%\_x%"#), (#"a\b"#, #"a\\b%"#)])
    func likePrefix(prefix: String, pattern: String) {
        #expect(DatabaseRestorer.likePrefix(prefix) == pattern)
    }
}

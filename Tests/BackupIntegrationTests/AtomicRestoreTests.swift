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

    @Test("autovacuum at work on the application's database is no session: the restore still swaps, it does not fall back")
    func autovacuumIsNoSession() async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            try #require(try await app.run("backup-job").succeeded)
            // A slow autovacuum worker on the application's database: dead rows, and a vacuum that takes its time.
            // (One statement per call: ALTER SYSTEM cannot run in psql -c's one transaction.)
            for statement in [
                "ALTER SYSTEM SET autovacuum_naptime = '1s'", "ALTER SYSTEM SET autovacuum_vacuum_cost_delay = '100ms'",
                "ALTER SYSTEM SET autovacuum_vacuum_cost_limit = 1", "SELECT pg_reload_conf()",
            ] {
                _ = try await app.server.psql(statement)
            }
            _ = try await app.server.psql(
                """
                CREATE TABLE churn AS SELECT g AS id, md5(g::text) AS body FROM generate_series(1, 200000) g;
                DELETE FROM churn;
                """, database: app.database)
            try await eventually(timeout: .seconds(60), "an autovacuum worker on the application's database") {
                try await app.server.query(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = '\(app.database)' AND backend_type = 'autovacuum worker'"
                ) == [["1"]]
            }
            let restore = try await app.run("restore-job", environment: ["RESTORE_KEEP_OLD": "false"])
            try #require(restore.succeeded, "\(restore)")
            #expect(restore.stdout.contains("Check ok: no other session is connected to \(app.database)"), "\(restore.stdout)")
            #expect(!restore.stdout.contains("in place"), "\(restore.stdout)")
            // Swapped: the table made after the backup went with the replaced database.
            let churn = try await app.server.query(
                "SELECT count(*) FROM pg_tables WHERE tablename = 'churn'", database: app.database)
            #expect(churn == [["0"]])
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

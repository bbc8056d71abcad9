import Foundation
import Testing
import TestSupport

/// Pre and post commands: a failing or hanging pre command stops the run; the post command always runs and
/// knows the outcome; a failing post command after a good run makes it partial (exit 3).
@Suite("Hooks")
struct HookTests {
    func text(_ url: URL) -> String {
        ((try? String(contentsOf: url, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("a failing pre command: no backup, exit 1, the post command still runs and sees the failure")
    func failingPre() async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            let post = app.root.appending("post.txt")
            let result = try await app.run(
                "backup-job",
                environment: [
                    "BACKUP_PRE_COMMAND": "echo cannot reach the app >&2; exit 3",
                    "BACKUP_POST_COMMAND": "echo \"$CONTINGENCY_OUTCOME\" > '\(post.path)'",
                ])
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.contains("BACKUP_PRE_COMMAND failed (exited(3)): cannot reach the app"), "\(result.stderr)")
            #expect(try app.storeFiles().isEmpty)
            #expect(text(post) == "failure")
        }
    }

    @Test("after a good backup the post command sees its name; a failing post command makes the run partial (exit 3)")
    func post() async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            let post = app.root.appending("post.txt")
            let good = try await app.run(
                "backup-job", environment: ["BACKUP_POST_COMMAND": "echo \"$CONTINGENCY_OUTCOME $CONTINGENCY_BACKUP\" > '\(post.path)'"])
            try #require(good.succeeded, "\(good)")
            let archive = try #require(try app.storeFiles().first { $0.hasSuffix(".tar.gz") })
            #expect(text(post) == "success \(archive)")

            let partial = try await app.run("backup-job", environment: ["BACKUP_POST_COMMAND": "exit 5", "LOCK_TIMEOUT": "10s"])
            #expect(partial.status == 3, "\(partial)")
            #expect(partial.stderr.contains("the backup succeeded but BACKUP_POST_COMMAND failed"), "\(partial.stderr)")
            #expect(try app.storeFiles().filter { $0.hasSuffix(".json") }.count == 2)
        }
    }

    @Test("a pre command that hangs is stopped after HOOK_TIMEOUT and the backup does not run")
    func timeout() async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            let result = try await app.run("backup-job", environment: ["BACKUP_PRE_COMMAND": "sleep 600", "HOOK_TIMEOUT": "1s"])
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.contains("timed out after 1s"), "\(result.stderr)")
            #expect(try app.storeFiles().isEmpty)
            let sleepers = try await ProcessRunner.run("pgrep", ["-f", "sleep 600"])
            #expect(sleepers.stdout.isEmpty, "the hook's process was left running")
        }
    }

    @Test("SIGTERM during a backup: the post command still runs, with the failure")
    func postAfterSignal() async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            let post = app.root.appending("post.txt")
            let lock = try await TableLock(server: app.server, database: app.database, table: "posts")
            let job = try app.launch("backup-job", environment: ["BACKUP_POST_COMMAND": "echo \"$CONTINGENCY_OUTCOME\" > '\(post.path)'"])
            try await lock.waitForBlockedDump()
            job.kill(SIGTERM)
            let result = try await job.waitForExit(timeout: .seconds(30))
            try await lock.release()
            #expect(result.status == 130, "\(result)")
            #expect(text(post) == "failure")
        }
    }

    @Test("SIGTERM during the pre command: it runs to its end, the backup never starts, exit 130, the post command sees the failure")
    func signalDuringPre() async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            let started = app.root.appending("pre-started")
            let go = app.root.appending("pre-go")
            let ended = app.root.appending("pre-ended")
            let post = app.root.appending("post.txt")
            // The pre command waits for this test's word, so the signal lands while it runs however busy the
            // machine is (a fixed sleep let a starved test send it after the backup was over).
            let job = try app.launch(
                "backup-job",
                environment: [
                    "BACKUP_PRE_COMMAND":
                        "touch '\(started.path)'; while [ ! -e '\(go.path)' ]; do sleep 0.1; done; touch '\(ended.path)'",
                    "BACKUP_POST_COMMAND": "echo \"$CONTINGENCY_OUTCOME\" > '\(post.path)'",
                    "HOOK_TIMEOUT": "2m",
                ])
            try await eventually("the pre command to start") { FileManager.default.fileExists(atPath: started.path) }
            job.kill(SIGTERM)
            try await eventually("the job to take the signal") { job.stdoutSoFar.contains("Received SIGTERM") || job.stderrSoFar.contains("Received SIGTERM") }
            #expect(!FileManager.default.fileExists(atPath: ended.path), "the signal came while the pre command ran")
            try Data().write(to: go)
            let result = try await job.waitForExit(timeout: .seconds(120))
            #expect(result.status == 130, "\(result)")
            #expect(FileManager.default.fileExists(atPath: ended.path), "the pre command ran to its end")
            #expect(result.stderr.contains("cancelled by signal during BACKUP_PRE_COMMAND; the backup did not start"), "\(result.stderr)")
            #expect(!result.stdout.contains("Starting") && !result.stdout.contains("Dumping"), "\(result)")
            #expect(try app.storeFiles().filter { $0.hasPrefix("visual_backup_") }.isEmpty)
            #expect(text(post) == "failure")
        }
    }

    @Test("a failing restore pre command leaves the database as it was")
    func restorePre() async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            try #require(try await app.run("backup-job").succeeded)
            _ = try await app.server.psql("UPDATE users SET name = 'after the backup'", database: app.database)
            let before = try await app.snapshot()
            let restore = try await app.run("restore-job", environment: ["RESTORE_PRE_COMMAND": "false"])
            #expect(restore.status == 1, "\(restore)")
            #expect(restore.stderr.contains("RESTORE_PRE_COMMAND failed"), "\(restore.stderr)")
            #expect(try await app.snapshot() == before)
        }
    }

    @Test("the application is stopped around the restore and always started again: after success, a failed stop, a failed restore",
          arguments: ["success", "failed stop", "failed restore"])
    func applicationStoppedAndStarted(_ scenario: String) async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            try #require(try await app.run("backup-job").succeeded)
            _ = try await app.server.psql("UPDATE users SET name = 'after the backup' WHERE id = 1", database: app.database)
            let events = app.root.appending("events.txt")
            var stop = "echo stop >> '\(events.path)'"
            var extra: [String: String] = [:]
            switch scenario {
            case "failed stop":
                stop += "; exit 4"
            case "failed restore":
                // The stop command leaves a session holding a table: the in-place restore gives up after 1 s.
                let psql = app.server.binDir.appendingPathComponent("psql").path
                stop += "; PGPASSWORD='\(app.server.password)' PGAPPNAME=holder '\(psql)' -X -q -d \(app.database) -c 'BEGIN; LOCK TABLE posts; SELECT pg_sleep(120)' >/dev/null 2>&1 &"
                stop += " until PGPASSWORD='\(app.server.password)' '\(psql)' -XAtq -d \(app.database) -c \"SELECT 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'holder' AND l.granted AND l.mode = 'AccessExclusiveLock'\" | grep -q 1; do sleep 0.1; done"
                extra = ["RESTORE_LOCK_TIMEOUT": "1s"]
            default:
                break
            }
            let before = try await app.snapshot()
            let restore = try await app.run(
                "restore-job",
                environment: extra.merging(["APP_STOP_COMMAND": stop, "APP_START_COMMAND": "echo start >> '\(events.path)'"]) { $1 })
            _ = try await app.server.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'holder'")
            let lines = ((try? String(contentsOf: events, encoding: .utf8)) ?? "").split(separator: "\n")
            #expect(lines == ["stop", "start"], "\(lines)")
            if scenario == "success" {
                #expect(restore.succeeded, "\(restore)")
                #expect(restore.stdout.contains("Application stopped") && restore.stdout.contains("Application started"))
            } else {
                #expect(restore.status == 1, "\(restore)")
                #expect(try await app.snapshot() == before)
            }
        }
    }

    @Test("RESTORE_KEEP_OLD=false: the old database and uploads go once the application is started again, not while it is stopped")
    func replacedRemovedAfterStart() async throws {
        try await ApplicationFixture.with(uploadFiles: 2) { app in
            try #require(try await app.run("backup-job").succeeded)
            _ = try await app.server.psql("CREATE TABLE added_later (id int)", database: app.database)
            let seen = app.root.appending("seen-at-start.txt")
            let parent = app.uploadsDirectory.deletingLastPathComponent().path
            let psql = app.server.binDir.appendingPathComponent("psql").path
            // What the application would find when it starts: the replaced copies, if they are still there.
            let start = """
                ls -A '\(parent)' | grep -c '^.uploads.before-restore-' >> '\(seen.path)';
                PGPASSWORD='\(app.server.password)' '\(psql)' -XAtq -d postgres -c "SELECT count(*) FROM pg_database WHERE datname LIKE '\(app.database)\\_before\\_restore\\_%'" >> '\(seen.path)'
                """
            let restore = try await app.run(
                "restore-job",
                environment: ["RESTORE_KEEP_OLD": "false", "APP_STOP_COMMAND": "true", "APP_START_COMMAND": start])
            try #require(restore.succeeded, "\(restore)")
            let lines = try String(contentsOf: seen, encoding: .utf8).split(separator: "\n")
            #expect(lines == ["1", "1"], "the old uploads folder and the old database, still there at the start: \(lines)")
            // Gone once the job is done, and said after the application started.
            #expect(try FileManager.default.contentsOfDirectory(atPath: parent).filter { $0.hasPrefix(".uploads.before-restore-") }.isEmpty)
            let left = try await app.server.query(
                "SELECT count(*) FROM pg_database WHERE datname LIKE '\(app.database)\\_before\\_restore\\_%'")
            #expect(left == [["0"]])
            let out = restore.stdout
            let started = try #require(out.range(of: "Application started"))
            let dropped = try #require(out.range(of: "Dropped the database as it was"), "\(out)")
            let removed = try #require(out.range(of: "Removed the uploads as they were"), "\(out)")
            #expect(started.lowerBound < dropped.lowerBound && started.lowerBound < removed.lowerBound, "\(out)")
            let tables = try await app.server.query(
                "SELECT count(*) FROM pg_tables WHERE tablename = 'added_later'", database: app.database)
            #expect(tables == [["0"]])
        }
    }
}

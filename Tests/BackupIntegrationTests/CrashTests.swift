import BackupCore
import BackupInterop
import BackupKit
import BackupStorage
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A backup-job killed at any point leaves nothing that is listed or restorable, older backups still verify,
/// and the next run goes ahead once the dead holder's lease has expired.
@Suite("Killed and cancelled backups")
struct CrashTests {
    enum Point: String, CaseIterable, Sendable {
        case dump, archive, publish
    }

    @Test("kill -9 during the dump, the archive and the final write", arguments: Point.allCases)
    func killedBackup(at point: Point) async throws {
        try await ApplicationFixture.with(uploadFiles: 20) { app in
            let first = try await app.run("backup-job")
            try #require(first.succeeded, "\(first)")
            let good = try app.storeFiles()

            let job: LaunchedProcess
            var lock: TableLock?
            switch point {
            case .dump:
                // pg_dump blocks behind a table lock: the job is caught in the middle of its dump.
                lock = try await TableLock(server: app.server, database: app.database, table: "posts")
                job = try app.launch("backup-job")
                try await lock?.waitForBlockedDump()
            case .archive, .publish:
                job = try app.launch("backup-job", environment: ["CONTINGENCY_FAILPOINT": point.rawValue])
                try await eventually("backup-job to stop at \(point)") { job.isStopped }
            }
            job.kill(SIGKILL)
            _ = try await job.waitForExit(timeout: .seconds(30))
            try await lock?.release()

            let catalog = BackupCatalog(storage: try VolumeStorage(root: app.backupDirectory.path), prefix: "visual_backup")
            let listed = try catalog.list().map(\.fileName)
            #expect(listed == good.filter { !$0.hasSuffix(".json") })

            if point == .publish {
                // The archive reached its final name, but without its manifest it is not a backup.
                let orphan = try #require(try app.storeFiles().first { !good.contains($0) })
                let restore = try await app.run("restore-job", environment: ["LATEST_BACKUP": orphan, "LOCK_TIMEOUT": "30s"])
                #expect(restore.status == 1, "\(restore)")
                #expect(restore.stderr.contains("has no manifest"), "\(restore.stderr)")
            }
            let verify = try await app.run("restore-job", ["--verify"])
            #expect(verify.succeeded, "\(verify)")

            // The dead job's lease is still there; the next run waits for it to expire (LOCK_TTL=3s), then succeeds.
            let next = try await app.run("backup-job", environment: ["LOCK_TIMEOUT": "30s"])
            #expect(next.succeeded, "\(next)")
            #expect(try catalog.list().count == 2)
            #expect(app.temporaryFiles().isEmpty)
        }
    }

    @Test("a holder paused past its lease is fenced out: another job takes over, the paused one publishes nothing and exits 11")
    func pausedHolder() async throws {
        try await ApplicationFixture.with(uploadFiles: 5) { app in
            let paused = try app.launch("backup-job", environment: ["CONTINGENCY_FAILPOINT": "archive"])
            try await eventually("backup-job to stop midway") { paused.isStopped }
            // The next job waits for the paused holder's lease to expire (LOCK_TTL=3s), takes it over and publishes.
            let next = try await app.run("backup-job", environment: ["LOCK_TIMEOUT": "30s"])
            try #require(next.succeeded, "\(next)")
            let published = try app.storeFiles()
            paused.kill(SIGCONT)
            let result = try await paused.waitForExit(timeout: .seconds(60))
            #expect(result.status == 11, "\(result)")
            #expect(result.stderr.contains("lost the lease"), "\(result.stderr)")
            #expect(try app.storeFiles() == published)
            #expect(published.filter { $0.hasSuffix(".json") }.count == 1)
        }
    }

    @Test("SIGTERM during a backup aborts it cleanly with exit 130")
    func sigterm() async throws {
        try await ApplicationFixture.with(uploadFiles: 5) { app in
            let lock = try await TableLock(server: app.server, database: app.database, table: "posts")
            let job = try app.launch("backup-job")
            try await lock.waitForBlockedDump()
            job.kill(SIGTERM)
            let result = try await job.waitForExit(timeout: .seconds(30))
            try await lock.release()
            #expect(result.status == 130, "\(result)")
            #expect(try app.storeFiles().isEmpty)
            #expect(app.temporaryFiles().isEmpty)
            // The lease was released on the way out: the next run does not wait.
            let next = try await app.run("backup-job")
            #expect(next.succeeded, "\(next)")
        }
    }
}

/// Two jobs at once: exactly one works, the other exits 11 naming the holder.
@Suite("Store lock")
struct LockTests {
    @Test("two backup-jobs at once: one archive, the other exits 11 naming the holder")
    func twoBackups() async throws {
        try await ApplicationFixture.with(uploadFiles: 5) { app in
            let lock = try await TableLock(server: app.server, database: app.database, table: "posts")
            let first = try app.launch("backup-job")
            try await lock.waitForBlockedDump()
            let second = try await app.run("backup-job")
            #expect(second.status == 11, "\(second)")
            #expect(second.stderr.contains("locked by backup-job (pid \(first.pid) on host"), "\(second.stderr)")
            try await lock.release()
            let result = try await first.waitForExit(timeout: .seconds(120))
            #expect(result.succeeded, "\(result)")
            #expect(try app.storeFiles().filter { $0.hasSuffix(".tar.gz") }.count == 1)
        }
    }

    @Test("a lease: one holder at a time, takeover after expiry with a higher token, release never frees another's")
    func leaseSemantics() async throws {
        let folder = try TemporaryDirectory()
        try await CoordinationChecks.leaseSemantics(try VolumeStorage(root: folder.path))
    }

    @Test("concurrent contenders: never two holders at once")
    func contenders() async throws {
        let folder = try TemporaryDirectory()
        try await CoordinationChecks.contenders(try VolumeStorage(root: folder.path), rounds: 3, ownThreads: true)
    }

    @Test("requests: one rollback request however many ask at once; status moves by compare-and-swap")
    func requests() async throws {
        let folder = try TemporaryDirectory()
        try await CoordinationChecks.requests(try VolumeStorage(root: folder.path))
    }
}

/// Counts simultaneous lease holders.
final class Holders: @unchecked Sendable {
    private let lock = NSLock()
    private var current = 0
    private(set) var maximum = 0
    private(set) var total = 0
    func enter() {
        lock.withLock {
            current += 1
            total += 1
            maximum = max(maximum, current)
        }
    }
    func leave() { lock.withLock { current -= 1 } }
}

/// No child of a job outlives it: pg_dump, pg_dumpall and pg_restore run under `contingency-guard`, which ends
/// them when the job ends, even by SIGKILL (which the job cannot catch).
@Suite("Children end with their job")
struct ChildProcessTests {
    /// The job's processes below it right now, asserting that `program` is among them.
    func children(of job: LaunchedProcess, including program: String) throws -> [ProcessTable.Entry] {
        let below = ProcessTable.descendants(of: job.pid)
        try #require(below.contains { $0.name == program }, "no \(program) below the job: \(below)")
        // Each one runs under its guard (`comm` is cut to 15 characters).
        #expect(below.contains { $0.name == String(ChildGuard.programName.prefix(15)) }, "\(below)")
        return below
    }

    @Test(
        "backup-job killed (SIGKILL) or stopped (SIGTERM) mid-dump: its pg_dump ends with it",
        arguments: [SIGKILL, SIGTERM])
    func backupChildren(signal: Int32) async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            // pg_dump blocks behind a table lock: it would wait there for as long as the lock is held.
            let lock = try await TableLock(server: app.server, database: app.database, table: "posts")
            let job = try app.launch("backup-job")
            try await lock.waitForBlockedDump()
            let below = try children(of: job, including: "pg_dump")
            job.kill(signal)
            let result = try await job.waitForExit(timeout: .seconds(30))
            try await eventually("the children of the ended backup-job to end: \(below)") {
                below.allSatisfy { !ProcessTable.isRunning($0) }
            }
            try await lock.release()
            if signal == SIGTERM { #expect(result.status == 130, "\(result)") }
            #expect(try app.storeFiles().isEmpty)
        }
    }

    @Test("backup-job killed while its pre command runs: the command and what it started in the background end")
    func hookChildren() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let job = try app.launch(
                "backup-job", environment: ["BACKUP_PRE_COMMAND": "sleep 3600 & sleep 3600", "HOOK_TIMEOUT": "1h"])
            try await eventually("the pre command's two sleeps to run") {
                ProcessTable.descendants(of: job.pid).filter { $0.name == "sleep" }.count == 2
            }
            let below = try children(of: job, including: "sleep")
            job.kill(SIGKILL)
            _ = try await job.waitForExit(timeout: .seconds(30))
            try await eventually("the pre command of the killed backup-job to end: \(below)") {
                below.allSatisfy { !ProcessTable.isRunning($0) }
            }
        }
    }

    @Test(
        "restore-job killed (SIGKILL) or stopped (SIGTERM) mid pg_restore: no pg_restore keeps running",
        arguments: [SIGKILL, SIGTERM])
    func restoreChildren(signal: Int32) async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            // A table whose CHECK sleeps for an hour when the session asks for it: the restore's pg_restore
            // stalls in the COPY of its row, waiting on the server, independent of the job's pipes.
            _ = try await app.server.psql(
                """
                CREATE FUNCTION public.stall() RETURNS boolean LANGUAGE plpgsql AS $$
                BEGIN
                    IF pg_catalog.current_setting('contingency_test.stall', true) = 'on' THEN
                        PERFORM pg_catalog.pg_sleep(3600);
                    END IF;
                    RETURN true;
                END $$;
                CREATE TABLE public.stalling (id int CHECK (public.stall()));
                INSERT INTO public.stalling VALUES (1);
                """, database: app.database)
            try #require(try await app.run("backup-job").succeeded)
            let job = try app.launch("restore-job", environment: ["PGOPTIONS": "-c contingency_test.stall=on"])
            let stalled = "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
            try await eventually(timeout: .seconds(120), "pg_restore to stall in the CHECK of the restored row") {
                try await app.server.query(stalled, database: app.database).first?.first != "0"
            }
            let below = try children(of: job, including: "pg_restore")
            let before = try await app.server.query("SELECT count(*) FROM users", database: app.database)
            job.kill(signal)
            try await eventually("the children of the ended restore-job to end: \(below)") {
                below.allSatisfy { !ProcessTable.isRunning($0) }
            }
            // The server's side of the stalled session sleeps on without its client: end it (a stopped job then
            // drops its new database).
            _ = try await app.server.query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep'",
                database: app.database)
            let result = try await job.waitForExit(timeout: .seconds(60))
            if signal == SIGTERM { #expect(result.status == 130, "\(result)") }
            #expect(try await app.server.query("SELECT count(*) FROM users", database: app.database) == before)
        }
    }
}

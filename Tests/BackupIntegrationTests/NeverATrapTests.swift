import BackupCore
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// What anyone who can write to the store can craft to break a parser (a database.dump in an archive whose
/// checksums were all recomputed, a lease record), and a restore-job killed midway: an error and a clean staging
/// folder, never a signal or leftovers.
@Suite("Crafted input: an error, never a signal")
struct NeverATrapTests {
    /// The repository's root, for the fuzz seeds.
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Staged files the restore would have left beside the uploads and the .env, or in the store's staging.
    static func leftovers(_ app: ApplicationFixture) throws -> [String] {
        let beside = try FileManager.default.contentsOfDirectory(atPath: app.appDirectory.path).filter { $0.contains(".restore-") }
        return app.temporaryFiles() + beside
    }

    // Issue 16: an 8-byte integer of 2^63 in the header made the scanner negate Int.min, and restore-job died
    // of SIGILL with its staged dump left behind.
    @Test("a dump whose header overflows the reader: exit 1 and a clear error, no signal, nothing staged left")
    func integerOverflowInTheHeader() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            try #require(try await app.run("backup-job").succeeded)
            let archive = app.backupDirectory.appendingPathComponent(try #require(try app.storeFiles().first { $0.hasSuffix(".tar.gz") }))
            // Block hashes recomputed too, so the restore follows the dump (and its scanner reads the header).
            let crafted = try Data(
                contentsOf: Self.packageRoot.appendingPathComponent("fuzz/corpus/dump-scanner/issue16-integer-overflow.dump"))
            try await BackupForger.forge(archive, [.replace("database.dump", crafted)])
            _ = try await app.server.psql("UPDATE users SET name = 'after the backup'", database: app.database)
            let before = try await app.snapshot()

            let restore = try await app.run("restore-job")
            #expect(restore.terminationSignal == nil && restore.status == 1, "\(restore)")
            #expect(restore.stderr.contains("pg_restore"), "\(restore.stderr)")
            #expect(try await app.snapshot() == before)
            #expect(try Self.leftovers(app).isEmpty)
        }
    }

    @Test("a restore-job killed midway leaves its staged dump, uploads and .env; the next restore-job removes them")
    func killedRestoreLeavesNothingForLong() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            try #require(try await app.run("backup-job").succeeded)
            let job = try app.launch("restore-job", environment: ["CONTINGENCY_FAILPOINT": "restore-database"])
            try await eventually("restore-job to stop while restoring the database") { job.isStopped }
            job.kill(SIGKILL)
            _ = try await job.waitForExit()
            let left = try Self.leftovers(app)
            #expect(left.contains { $0.hasPrefix("restore-") && $0.hasSuffix(".partial") }, "\(left)")
            #expect(left.contains { $0.hasPrefix(".uploads.restore-") }, "\(left)")

            let temporaries = app.temporaryFiles().count
            let next = try await app.run("restore-job", environment: ["LOCK_TIMEOUT": "30s"])
            try #require(next.succeeded, "\(next)")
            // The staged dump always; another staged file too when the kill came later (the archive is read on while
            // the database's restore waits at the failpoint).
            #expect(next.stdout.contains("Removed \(temporaries) temporary file(s) left by an interrupted run"), "\(next.stdout)\n\(left)")
            // The uploads' staging folder always, the .env's staged copy when the kill came after it was read (the
            // database's restore starts while the rest of the archive is still read).
            let staged = left.filter { $0.contains(".restore-") }.count
            #expect(next.stdout.contains("Removed \(staged) staged folder(s) or file(s) left by an interrupted restore"), "\(next.stdout)")
            let after = try Self.leftovers(app)
            #expect(after.isEmpty, "\(after)")
        }
    }

    // A lease whose token is Int.max made every job trap when it took the lease over (`token + 1`).
    @Test("a lease record at the end of its tokens: the job exits 1 naming the lock file, no signal")
    func leaseTokenAtTheEnd() async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            let locks = app.backupDirectory.appendingPathComponent(".contingency/locks", isDirectory: true)
            try FileManager.default.createDirectory(at: locks, withIntermediateDirectories: true)
            let record = """
                {"acquired": "2025-01-15T14:30:00Z", "expires": "2025-01-15T14:31:00Z", "host": "elsewhere",
                 "job": "backup-job", "owner": "0f0f0f0f-0000-0000-0000-000000000000", "pid": 1,
                 "released": false, "renewed": "2025-01-15T14:30:00Z", "token": \(Int.max)}
                """
            let lock = locks.appendingPathComponent("store.lock")
            try Data(record.utf8).write(to: lock)
            // Written an hour ago by the store's clock (its lease long expired), so the jobs take it over.
            try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-3600)], ofItemAtPath: lock.path)
            for job in ["backup-job", "restore-job"] {
                let result = try await app.run(job)
                #expect(result.terminationSignal == nil && result.status == 1, "\(job): \(result)")
                #expect(result.stderr.contains("store.lock"), "\(job): \(result.stderr)")
                #expect(result.stderr.contains("cannot grow"), "\(job): \(result.stderr)")
            }
            #expect(try app.storeFiles().isEmpty)
        }
    }
}

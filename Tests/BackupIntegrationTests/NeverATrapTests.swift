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

    /// Replaces the dump in `archive` with `dump`, then recomputes metadata.json's record of it and the manifest
    /// beside the archive (member, archive size and sha256): a forgery every checksum agrees with.
    static func forge(_ archive: URL, dump: URL) async throws {
        let script = """
            import hashlib, io, json, sys, tarfile
            archive, dump = sys.argv[1], open(sys.argv[2], 'rb').read()
            digest = hashlib.sha256(dump).hexdigest()
            def patched(metadata):
                for member in metadata['members']:
                    if member['name'] == 'database.dump':
                        member['size'], member['sha256'] = len(dump), digest
                return metadata
            with tarfile.open(archive, 'r:gz') as old:
                members = [(m, old.extractfile(m).read() if m.isfile() else None) for m in old.getmembers()]
            with tarfile.open(archive, 'w:gz') as new:
                for member, data in members:
                    if member.name.endswith('/database.dump'):
                        data = dump
                    elif member.name.endswith('/metadata.json'):
                        data = json.dumps(patched(json.loads(data)), indent=2, sort_keys=True).encode()
                    if data is not None:
                        member.size = len(data)
                        data = io.BytesIO(data)
                    new.addfile(member, data)
            manifest = patched(json.load(open(archive + '.json')))
            content = open(archive, 'rb').read()
            manifest['archive']['size'], manifest['archive']['sha256'] = len(content), hashlib.sha256(content).hexdigest()
            json.dump(manifest, open(archive + '.json', 'w'), indent=2, sort_keys=True)
            """
        _ = try await ProcessRunner.run("python3", ["-c", script, archive.path, dump.path], requireSuccess: true)
    }

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
            try await Self.forge(archive, dump: Self.packageRoot.appendingPathComponent("fuzz/corpus/dump-scanner/issue16-integer-overflow.dump"))
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

            let next = try await app.run("restore-job", environment: ["LOCK_TIMEOUT": "30s"])
            try #require(next.succeeded, "\(next)")
            #expect(next.stdout.contains("Removed 1 temporary file(s) left by an interrupted run"), "\(next.stdout)")
            #expect(next.stdout.contains("Removed 2 staged folder(s) or file(s) left by an interrupted restore"), "\(next.stdout)")
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
            try Data(record.utf8).write(to: locks.appendingPathComponent("store.lock"))
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

import BackupCore
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Every way a backup can fail: a clear message, a non-zero exit, and no archive left that could pass for a backup.
@Suite("Backup failures")
struct BackupFailureTests {
    struct BadConfiguration: Sendable, CustomTestStringConvertible {
        let variable: String
        let value: String
        let message: String
        var testDescription: String { "\(variable)=\(value)" }
    }

    @Test(
        "a bad value is refused before any work",
        arguments: [
            BadConfiguration(variable: "BACKUP_SCHEDULE", value: "0 0 0 * * *", message: "6 fields"),
            BadConfiguration(variable: "BACKUP_COMPRESSION", value: "lz4", message: "BACKUP_COMPRESSION=lz4 is not one of: gzip, zstd"),
            BadConfiguration(variable: "LOG_FORMAT", value: "xml", message: "LOG_FORMAT=xml"),
            BadConfiguration(variable: "LOCK_TIMEOUT", value: "soon", message: "LOCK_TIMEOUT=soon is not a duration"),
            BadConfiguration(variable: "BACKUP_PREFIX", value: "../escape", message: "BACKUP_PREFIX=../escape"),
        ])
    func badConfiguration(_ bad: BadConfiguration) async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let result = try await app.run("backup-job", environment: [bad.variable: bad.value])
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.contains(bad.message), "\(result.stderr)")
            #expect(try app.storeFiles().isEmpty)
        }
    }

    @Test("a database that does not exist")
    func missingDatabase() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let result = try await app.run("backup-job", environment: ["DATABASE_NAME": "no_such_db"])
            #expect(result.status == 1)
            #expect(result.stderr.contains("database \"no_such_db\" does not exist"), "\(result.stderr)")
            #expect(!result.stderr.contains(app.server.password) && !result.stdout.contains(app.server.password))
            #expect(try app.storeFiles().isEmpty)
        }
    }

    @Test("an uploads folder the job cannot read, at the top or deep inside", arguments: ["", "avatars"])
    func unreadableUploads(subfolder: String) async throws {
        try await ApplicationFixture.with(uploadFiles: 10) { app in
            let folder = subfolder.isEmpty ? app.uploadsDirectory : app.uploadsDirectory.appendingPathComponent(subfolder)
            chmod(folder.path, 0o000)
            defer { chmod(folder.path, 0o755) }
            // Root reads anything: run the job as `nobody`, with a store it may write.
            chmod(app.backupDirectory.path, 0o777)
            chmod(app.uploadsDirectory.path, subfolder.isEmpty ? 0o000 : 0o755)
            chmod(app.envFile.path, 0o644)
            let result = try await ProcessRunner.run(
                "/usr/bin/setpriv",
                ["--reuid=65534", "--regid=65534", "--clear-groups", ApplicationFixture.executable("backup-job")],
                environment: app.environment(["HOME": "/tmp"]))
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.contains("not readable") || result.stderr.contains("Permission denied"), "\(result.stderr)")
            #expect(try app.storeFiles().isEmpty)
            #expect(app.temporaryFiles().isEmpty)
        }
    }

    @Test("a pg_dump older than the server is refused, naming the client needed")
    func oldPgDump() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            // A pg_dump 14 client: a stand-in script that reports that version, as an old image's would.
            let bin = try TemporaryDirectory()
            for tool in ["pg_dump", "pg_restore"] {
                let script = bin.appending(tool)
                try Data("#!/bin/sh\necho '\(tool) (PostgreSQL) 14.12'\n".utf8).write(to: script)
                chmod(script.path, 0o755)
            }
            let result = try await app.run("backup-job", environment: ["PG_BIN_DIR": bin.path])
            #expect(result.status == 1)
            #expect(result.stderr.contains("pg_dump 14.12"), "\(result.stderr)")
            #expect(result.stderr.contains("postgresql-client-15"), "\(result.stderr)")
            #expect(try app.storeFiles().isEmpty)
        }
    }

    @Test("a dump whose session is terminated midway is never reported as a backup")
    func dumpFailsMidway() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let lock = try await TableLock(server: app.server, database: app.database, table: "posts")
            let job = try app.launch("backup-job")
            try await lock.waitForBlockedDump()
            try await lock.terminateDumps()
            let result = try await job.waitForExit(timeout: .seconds(60))
            try await lock.release()
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.contains("pg_dump"), "\(result.stderr)")
            #expect(try app.storeFiles().isEmpty)
            #expect(app.temporaryFiles().isEmpty)
        }
    }

    @Test("pg_dump's command line carries no password")
    func noSecretOnCommandLine() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let lock = try await TableLock(server: app.server, database: app.database, table: "posts")
            let job = try app.launch("backup-job")
            try await lock.waitForBlockedDump()
            let pids = try await ProcessRunner.run("pgrep", ["-x", "pg_dump"]).stdout.split(separator: "\n")
            #expect(!pids.isEmpty)
            for pid in pids {
                let commandLine = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
                #expect(!String(decoding: commandLine, as: UTF8.self).contains(app.server.password))
            }
            try await lock.release()
            let result = try await job.waitForExit(timeout: .seconds(120))
            #expect(result.succeeded, "\(result)")
            #expect(!result.stdout.contains(app.server.password) && !result.stderr.contains(app.server.password))
        }
    }

    @Test("a full disk: clear error, no partial file under a final name, older backups intact")
    func fullDisk() async throws {
        try await ApplicationFixture.with(uploadFiles: 40) { app in
            let store = try await TmpfsMount(size: "3m")
            defer { store.unmount() }
            // A first, small backup fits.
            let small = try await app.run(
                "backup-job", environment: ["BACKUP_DIR": store.path, "UPLOADS_DIR": "", "BACKUP_COMPRESSION": "zstd"])
            try #require(small.succeeded, "\(small)")
            let first = try FileManager.default.contentsOfDirectory(atPath: store.path).filter { !$0.hasPrefix(".") }.sorted()
            // Incompressible uploads larger than the volume.
            let big = app.uploadsDirectory.appendingPathComponent("big.bin")
            _ = try await ProcessRunner.run("dd", ["if=/dev/urandom", "of=\(big.path)", "bs=1M", "count=4"], requireSuccess: true)
            let result = try await app.run("backup-job", environment: ["BACKUP_DIR": store.path, "BACKUP_COMPRESSION": "zstd"])
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.contains("No space left on device"), "\(result.stderr)")
            let after = try FileManager.default.contentsOfDirectory(atPath: store.path).filter { !$0.hasPrefix(".") }.sorted()
            #expect(after == first)
            let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: store.path + "/.contingency/tmp")) ?? []
            #expect(leftovers.isEmpty, "\(leftovers)")
            let verify = try await app.run("restore-job", ["--verify"], environment: ["BACKUP_DIR": store.path])
            #expect(verify.succeeded, "\(verify)")
        }
    }
}

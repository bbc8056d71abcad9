import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The checks made before a restore touches anything, reported together; `restore-job --check` alone.
@Suite("Pre-restore checks")
struct PreRestoreCheckTests {
    @Test("--check on a good backup: every check reported, exit 0, nothing restored")
    func good() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            try #require(try await app.run("backup-job").succeeded)
            _ = try await app.server.psql("UPDATE users SET name = 'after the backup' WHERE id = 1", database: app.database)
            let before = try await app.snapshot()
            let check = try await app.run("restore-job", ["--check"])
            #expect(check.succeeded, "\(check)")
            for expected in ["can read a dump made by pg_dump", "is not older than the backup's source", "the roles the dump names exist",
                             "free in", "no other session is connected", "All pre-restore checks passed"] {
                #expect(check.stdout.contains(expected), "\(expected) missing from \(check.stdout)")
            }
            #expect(try await app.snapshot() == before)
        }
    }

    @Test("a dump made by a newer pg_dump is refused by the checks, before anything is touched")
    func newerDump() async throws {
        try await ApplicationFixture.with(uploadFiles: 2) { app in
            // A pg_dump 17 client: the real pg_dump behind a wrapper that reports version 17.2, as a newer
            // backup image's would (only its version line differs).
            let bin = try TemporaryDirectory()
            let real = app.server.binDir.path
            try Data("#!/bin/sh\n[ \"$1\" = --version ] && { echo 'pg_dump (PostgreSQL) 17.2'; exit 0; }\nexec \(real)/pg_dump \"$@\"\n".utf8)
                .write(to: bin.appending("pg_dump"))
            chmod(bin.appending("pg_dump").path, 0o755)
            for tool in ["pg_restore", "pg_dumpall"] {
                try FileManager.default.createSymbolicLink(atPath: bin.appending(tool).path, withDestinationPath: "\(real)/\(tool)")
            }
            try #require(try await app.run("backup-job", environment: ["PG_BIN_DIR": bin.path]).succeeded)
            _ = try await app.server.psql("DELETE FROM attachments", database: app.database)
            let before = try await app.snapshot()

            let check = try await app.run("restore-job", ["--check"])
            #expect(check.status == 1, "\(check)")
            #expect(check.stderr.contains("the dump was made by pg_dump 17.2; pg_restore 15."), "\(check.stderr)")
            #expect(check.stderr.contains("postgresql-client-17"), "\(check.stderr)")
            let restore = try await app.run("restore-job")
            #expect(restore.status == 1, "\(restore)")
            #expect(restore.stderr.contains("pre-restore check(s) failed") && restore.stderr.contains("nothing was restored"), "\(restore.stderr)")
            #expect(try await app.snapshot() == before)
        }
    }
}

import BackupCore
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// How the jobs behave in operation: the loop, the logs, the free-space rule, mounted folders.
@Suite("Operation")
struct OperationTests {
    @Test("--loop backs up on its schedule and exits 0 on SIGTERM while idle")
    func loop() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let job = try app.launch("backup-job", ["--loop"], environment: ["BACKUP_SCHEDULE": "5s"])
            try await eventually(timeout: .seconds(60), "two scheduled backups") {
                try app.storeFiles().filter { $0.hasSuffix(".json") }.count >= 2
            }
            // SIGTERM while idle, as the test means: the last line is the announcement of a backup still seconds
            // away (a count of announcements would stay true once the loop has begun the next backup, which a
            // slow machine reaches while this test waits; SIGTERM there ends with 130, as it should).
            try await eventually(timeout: .seconds(60), "the loop to be idle with seconds to spare") {
                LoopOutput.isIdle(job.stdoutSoFar, marker: "Next backup at")
            }
            job.kill(SIGTERM)
            let result = try await job.waitForExit(timeout: .seconds(30))
            #expect(result.status == 0, "\(result)")
            #expect(result.stdout.contains("Scheduled backup completed successfully"))
        }
    }

    @Test("LOG_FORMAT=json prints one JSON object per line")
    func jsonLogs() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let result = try await app.run("backup-job", environment: ["LOG_FORMAT": "json"])
            try #require(result.succeeded, "\(result)")
            let lines = result.stdout.split(separator: "\n")
            #expect(lines.count >= 3)
            for line in lines {
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
                #expect(object["component"] as? String == "Backup")
                #expect(object["message"] is String && object["level"] is String && object["time"] is String)
            }
            #expect(lines.contains { $0.contains("Backup created successfully") })
        }
    }

    @Test("less free space than twice the last backup: refused before writing anything")
    func freeSpaceRule() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            let store = try await TmpfsMount(size: "8m")
            defer { store.unmount() }
            _ = try await ProcessRunner.run("dd", ["if=/dev/urandom", "of=\(app.uploadsDirectory.path)/big.bin", "bs=1M", "count=1"], requireSuccess: true)
            try #require(try await app.run("backup-job", environment: ["BACKUP_DIR": store.path]).succeeded)
            // Leave one and a half times that backup's size free: enough to write it, less than the rule's twice.
            let archive = try #require(try FileManager.default.contentsOfDirectory(atPath: store.path).first { $0.hasSuffix(".tar.gz") })
            let size = try #require(try FileManager.default.attributesOfItem(atPath: "\(store.path)/\(archive)")[.size] as? Int)
            let free = try #require(try FileManager.default.attributesOfFileSystem(forPath: store.path)[.systemFreeSize] as? Int)
            let filler = free - size * 3 / 2
            try #require(filler > 0)
            _ = try await ProcessRunner.run("fallocate", ["-l", "\(filler)", "\(store.path)/filler"], requireSuccess: true)
            let result = try await app.run("backup-job", environment: ["BACKUP_DIR": store.path])
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.contains("not enough free space"), "\(result.stderr)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: store.path).filter { $0.hasSuffix(".json") }.count == 1)
        }
    }

    @Test("an uploads folder that is a mount point is restored in place")
    func mountedUploads() async throws {
        try await ApplicationFixture.with(uploadFiles: 0) { app in
            let mount = try await TmpfsMount(size: "16m", on: app.uploadsDirectory.path)
            defer { mount.unmount() }
            try FileTreeSnapshot.makeSampleUploads(in: app.uploadsDirectory, fileCount: 15)
            let before = try await app.snapshot()
            try #require(try await app.run("backup-job").succeeded)
            try FileManager.default.removeItem(at: app.uploadsDirectory.appendingPathComponent("avatars"))
            try Data("stray".utf8).write(to: app.uploadsDirectory.appendingPathComponent("stray.txt"))
            let restore = try await app.run("restore-job")
            try #require(restore.succeeded, "\(restore)")
            let after = try await app.snapshot()
            #expect(after.uploads == before.uploads, "\(after.uploads.differences(from: before.uploads))")
        }
    }

    @Test("the database password from DATABASE_URL_FILE; flags override the environment; progress lines")
    func secretsFlagsAndProgress() async throws {
        try await ApplicationFixture.with(uploadFiles: 12) { app in
            let secrets = try TemporaryDirectory()
            let urlFile = secrets.appending("database-url")
            try Data("\(app.server.connectionURL(database: app.database))\n".utf8).write(to: urlFile)
            chmod(urlFile.path, 0o600)
            let elsewhere = app.root.appending("elsewhere", isDirectory: true)
            try FileManager.default.createDirectory(at: elsewhere, withIntermediateDirectories: true)
            var environment = app.environment(["DATABASE_URL_FILE": urlFile.path, "PROGRESS_INTERVAL": "0"])
            environment["PGPASSWORD"] = nil
            environment["DATABASE_NAME"] = nil
            let result = try await ProcessRunner.run(
                ApplicationFixture.executable("backup-job"), ["--backup-dir", elsewhere.path],
                environment: environment)
            try #require(result.succeeded, "\(result)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: elsewhere.path).contains { $0.hasSuffix(".tar.gz.json") })
            #expect(try app.storeFiles().isEmpty)
            #expect(result.stdout.contains("[Backup] Progress: "), "\(result.stdout)")
            #expect(!result.stdout.contains(app.server.password) && !result.stderr.contains(app.server.password))
        }
    }

    @Test(
        "every executable answers --help with its variables and the exit codes",
        arguments: [
            ("backup-job", "BACKUP_SCHEDULE"), ("restore-job", "LATEST_BACKUP"), ("cleanup-job", "BACKUP_DIR"),
            ("health-sidecar", "HEALTH_CHECK_URL"),
        ])
    func help(executable: String, variable: String) async throws {
        let result = try await ProcessRunner.run(ApplicationFixture.executable(executable), ["--help"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains(variable))
        #expect(result.stdout.contains("Exit codes:") && result.stdout.contains("11   another job holds the store's lock"))
    }

    /// The help lists every variable of the executable's list (the one docs/configuration.md is made from),
    /// each at the start of its entry, and never a secret's value.
    @Test("every executable's --help names every variable of its list", arguments: Executables.all.map(\.name))
    func helpNamesItsList(executable: String) async throws {
        let list = try #require(Executables.all.first { $0.name == executable })
        let result = try await ProcessRunner.run(
            ApplicationFixture.executable(executable), ["--help"],
            environment: ["API_ADMIN_TOKEN": "a-token-that-help-never-prints"])
        #expect(result.status == 0, "\(result)")
        let heads = Set(result.stdout.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("  "), !line.hasPrefix("   ") else { return nil }
            return line.dropFirst(2).split(separator: " ").first.map(String.init)
        })
        let missing = list.settings.map(\.name).filter { !heads.contains($0) }
        #expect(missing.isEmpty, "\(executable) --help does not list \(missing)")
        #expect(!result.stdout.contains("a-token-that-help-never-prints"))
    }
}

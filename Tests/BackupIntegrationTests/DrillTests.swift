import BackupCore
import Foundation
import Testing
import TestSupport

/// Restore drills: a scratch database and folder, checks against what the backup recorded, the outcome in
/// the manifest and the metrics; nothing live touched.
@Suite("Restore drills")
struct DrillTests {
    func manifest(_ app: ApplicationFixture) throws -> Manifest {
        let name = try #require(try app.storeFiles().first { $0.hasSuffix(".json") })
        return try ContingencyJSON.decoder().decode(Manifest.self, from: Data(contentsOf: app.backupDirectory.appendingPathComponent(name)))
    }

    func metrics(_ app: ApplicationFixture) throws -> String {
        try String(contentsOf: app.backupDirectory.appendingPathComponent(".contingency/metrics/drill.prom"), encoding: .utf8)
    }

    @Test("a good backup passes, is marked verified, metrics pass promtool, the scratch database is gone")
    func goodBackup() async throws {
        try await ApplicationFixture.with(uploadFiles: 12) { app in
            try #require(try await app.run("backup-job").succeeded)
            let before = try await app.snapshot()
            let scratch = app.server.connectionURL(database: "drill_scratch")
            let drill = try await app.run("restore-job", ["--drill"], environment: ["DRILL_DATABASE_URL": scratch])
            try #require(drill.succeeded, "\(drill)")
            #expect(drill.stdout.contains("[Drill] Restore drill passed"), "\(drill.stdout)")
            #expect(!drill.stdout.contains(app.server.password) && !drill.stderr.contains(app.server.password))

            let verified = try #require(try manifest(app).verified)
            #expect(verified.ok)
            let rows = before.database.tables.values.reduce(0) { $0 + $1.rowCount }
            #expect(verified.detail.contains("\(before.database.tables.count) tables, \(rows) rows, 12 files"), "\(verified.detail)")
            #expect(abs(verified.at.timeIntervalSinceNow) < 300)

            let text = try metrics(app)
            #expect(text.contains("contingency_drill_success 1"))
            #expect(text.contains("contingency_backup_last_verified_timestamp_seconds \(Int(verified.at.timeIntervalSince1970.rounded()))"))
            let promtool = try await ProcessRunner.run("promtool", ["check", "metrics"], stdin: Data(text.utf8))
            #expect(promtool.succeeded, "\(promtool)")

            #expect(try await app.server.databaseExists("drill_scratch") == false)
            #expect(try await app.snapshot() == before)
            #expect(app.temporaryFiles().isEmpty, "\(app.temporaryFiles())")
        }
    }

    @Test("a passing verification dated ahead (an edited manifest: `verified` is not signed) is not the last one")
    func verificationDatedAhead() async throws {
        try await ApplicationFixture.with(uploadFiles: 2) { app in
            try #require(try await app.run("backup-job").succeeded)
            let older = try #require(try app.storeFiles().first { $0.hasSuffix(".json") })
            try #require(try await app.run("backup-job").succeeded)
            // The older backup's manifest says a drill passed in 2099.
            let url = app.backupDirectory.appendingPathComponent(older)
            var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
            object["verified"] = ["at": "2099-01-01T00:00:00Z", "ok": true, "detail": "edited"]
            try JSONSerialization.data(withJSONObject: object).write(to: url)

            let drill = try await app.run(
                "restore-job", ["--drill"], environment: ["DRILL_DATABASE_URL": app.server.connectionURL(database: "drill_scratch")])
            try #require(drill.succeeded, "\(drill)")
            let text = try metrics(app)
            let family = try #require(
                try PrometheusText.parse(text).first { $0.name == "contingency_backup_last_verified_timestamp_seconds" })
            let last = try #require(family.value())
            #expect(abs(last - Date().timeIntervalSince1970) < 600, "the drill just made, not 2099: \(text)")
        }
    }

    @Test("a backup whose dump was damaged fails, says why, and is recorded as failed")
    func damagedBackup() async throws {
        try await ApplicationFixture.with(uploadFiles: 3) { app in
            try #require(try await app.run("backup-job").succeeded)
            let archive = app.backupDirectory.appendingPathComponent(try #require(try app.storeFiles().first { $0.hasSuffix(".tar.gz") }))
            var bytes = try Data(contentsOf: archive)
            bytes[bytes.count / 3] ^= 0x40  // database.dump comes first in the archive
            try bytes.write(to: archive)
            let drill = try await app.run(
                "restore-job", ["--drill"], environment: ["DRILL_DATABASE_URL": app.server.connectionURL(database: "drill_scratch")])
            #expect(drill.status == 1, "\(drill)")
            #expect(drill.stderr.contains("restore drill of visual_backup_"), "\(drill.stderr)")
            let verified = try #require(try manifest(app).verified)
            #expect(!verified.ok)
            #expect(!verified.detail.isEmpty)
            #expect(try metrics(app).contains("contingency_drill_success 0"))
            #expect(try metrics(app).contains("contingency_backup_last_verified_timestamp_seconds 0"))
        }
    }

    @Test("the drill refuses the application's own database and a database it did not create")
    func refusesLiveDatabases() async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            try #require(try await app.run("backup-job").succeeded)
            let own = try await app.run(
                "restore-job", ["--drill"], environment: ["DRILL_DATABASE_URL": app.server.connectionURL(database: app.database)])
            #expect(own.status == 1)
            #expect(own.stderr.contains("points at the application's own database"), "\(own.stderr)")

            try await app.server.createDatabase("someone_elses")
            let other = try await app.run(
                "restore-job", ["--drill"], environment: ["DRILL_DATABASE_URL": app.server.connectionURL(database: "someone_elses")])
            #expect(other.status == 1)
            #expect(other.stderr.contains("was not made by a drill"), "\(other.stderr)")
            #expect(try await app.server.databaseExists("someone_elses"))
        }
    }

    @Test("--drill --loop drills the newest backup on DRILL_SCHEDULE and exits 0 on SIGTERM")
    func loop() async throws {
        try await ApplicationFixture.with(uploadFiles: 2) { app in
            try #require(try await app.run("backup-job").succeeded)
            let job = try app.launch(
                "restore-job", ["--drill", "--loop"],
                environment: ["DRILL_SCHEDULE": "3s", "DRILL_DATABASE_URL": app.server.connectionURL(database: "drill_scratch")])
            try await eventually(timeout: .seconds(60), "two scheduled drills") {
                job.stdoutSoFar.components(separatedBy: "Restore drill passed").count >= 3
            }
            // SIGTERM while idle: the last line announces a drill still over a second away (a count of
            // announcements stays true once the loop has begun the next drill, which a slow machine reaches).
            try await eventually(timeout: .seconds(60), "the loop to be idle with time to spare") {
                LoopOutput.isIdle(job.stdoutSoFar, marker: "Next restore drill at")
            }
            let output = job.stdoutSoFar
            #expect(!output.contains("failed"), "\(output)")
            job.kill(SIGTERM)
            let result = try await job.waitForExit(timeout: .seconds(30))
            #expect(result.status == 0, "\(result)")
            #expect(try manifest(app).verified?.ok == true)
        }
    }

    @Test("a drill while another holds the scratch database exits 11 and records nothing")
    func oneDrillAtATime() async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            try #require(try await app.run("backup-job").succeeded)
            var environment = app.server.environment
            environment["PGAPPNAME"] = "other-drill"
            let other = try ProcessRunner.launch(
                app.server.binDir.appendingPathComponent("psql").path,
                ["-X", "-q", "-d", "postgres", "-c", "SELECT pg_advisory_lock(hashtext('contingency-drill:drill_scratch')); SELECT pg_sleep(600)"],
                environment: environment)
            try await eventually("the other drill's lock") {
                let rows = try await app.server.query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
                return rows.first?.first == "1"
            }
            let drill = try await app.run(
                "restore-job", ["--drill"], environment: ["DRILL_DATABASE_URL": app.server.connectionURL(database: "drill_scratch")])
            _ = try await app.server.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'other-drill'")
            _ = try await other.waitForExit(timeout: .seconds(30))
            #expect(drill.status == 11, "\(drill)")
            #expect(drill.stderr.contains("another restore drill"), "\(drill.stderr)")
            #expect(try manifest(app).verified == nil)
        }
    }
}

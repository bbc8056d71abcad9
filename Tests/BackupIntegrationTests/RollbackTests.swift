import BackupCore
import BackupStorage
import Foundation
import Testing
import TestSupport

/// The automatic rollback, end to end with real parts: a real PostgreSQL, the fixture application as its own
/// process (started and stopped by shell commands, as compose would), `health-sidecar --loop` processes probing
/// it over HTTP, and `restore-job --loop` running the rollback they ask for.
@Suite(.serialized)
struct RollbackTests {
    /// Everything a rollback scenario runs, stopped at the end whatever happened.
    final class Scenario: @unchecked Sendable {
        let app: ApplicationFixture
        let managed: ManagedApplication
        var sidecars: [LaunchedProcess] = []
        var runner: LaunchedProcess?

        init(_ app: ApplicationFixture) throws {
            self.app = app
            managed = try ManagedApplication(for: app)
        }

        /// The settings every process shares: the store, the app's health endpoint, short intervals.
        func environment(_ extra: [String: String] = [:]) -> [String: String] {
            [
                "HEALTH_CHECK_URL": managed.healthURL, "HEALTH_CHECK_INTERVAL": "1s", "HEALTH_CHECK_TIMEOUT": "3s",
                "HEALTH_CHECK_FAILURES": "3", "SIDECAR_BIND": "127.0.0.1", "SIDECAR_PORT": "0",
                "APP_STOP_COMMAND": managed.stopCommand, "APP_START_COMMAND": managed.startCommand,
                "RESTORE_POLL_INTERVAL": "1s", "ROLLBACK_HEALTH_TIMEOUT": "30s", "ROLLBACK_DATA_ONLY": "true",
                "RESTORE_TERMINATE_CONNECTIONS": "true",
            ].merging(extra) { $1 }
        }

        func launchSidecar(_ id: String, _ extra: [String: String] = [:]) throws {
            sidecars.append(
                try app.launch(
                    "health-sidecar", ["--loop"],
                    environment: environment(["SIDECAR_ID": id, "LIVENESS_FILE": app.root.appending("\(id).alive").path].merging(extra) { $1 })))
        }

        func launchRunner(_ extra: [String: String] = [:]) throws -> LaunchedProcess {
            let runner = try app.launch(
                "restore-job", ["--loop"],
                environment: environment(["SIDECAR_ID": "runner-\(UUID().uuidString.prefix(4))", "LIVENESS_FILE": app.root.appending("runner.alive").path].merging(extra) { $1 }))
            self.runner = runner
            return runner
        }

        var store: VolumeStorage { get throws { try VolumeStorage(root: app.backupDirectory.path) } }

        func requests() throws -> [StoreRequest] { try RequestBoard(storage: try store).list() }

        func heartbeats() throws -> [HealthHeartbeat] {
            let folder = app.backupDirectory.appendingPathComponent(HealthHeartbeat.folder)
            return ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).compactMap {
                guard let data = try? Data(contentsOf: folder.appendingPathComponent($0)) else { return nil }
                return try? ContingencyJSON.decoder().decode(HealthHeartbeat.self, from: data)
            }
        }

        /// The newest healthy probe any sidecar recorded.
        func lastHealthy() throws -> Date? { try heartbeats().compactMap(\.lastHealthy).max() }

        func manifests() throws -> [Manifest] {
            try app.storeFiles().filter { $0.hasSuffix(".json") }.map {
                try ContingencyJSON.decoder().decode(Manifest.self, from: Data(contentsOf: app.backupDirectory.appendingPathComponent($0)))
            }
        }

        func tearDown() async {
            for sidecar in sidecars { _ = await sidecar.terminateAndWait() }
            if let runner { _ = await runner.terminateAndWait() }
            await managed.tearDown()
        }

        var logs: String {
            (sidecars.map(\.stderrSoFar) + [runner?.stderrSoFar ?? ""]).joined(separator: "\n----\n")
        }
    }

    /// A backup while healthy, then a healthy probe after it, so that it qualifies as a target.
    static func healthyBackup(_ scenario: Scenario) async throws -> String {
        let backup = try await scenario.app.run("backup-job")
        try #require(backup.succeeded, "\(backup.stderr)")
        let name = try #require(try scenario.app.storeFiles().filter { $0.hasSuffix(".tar.gz") }.last)
        let created = try #require(BackupName.parse(fileName: name, prefix: "visual_backup")).date
        try await eventually(timeout: .seconds(20), "a healthy probe after the backup") {
            (try scenario.lastHealthy() ?? .distantPast) > created
        }
        return name
    }

    @Test("A failed deploy heals itself: three sidecars, one runner, one rollback, the pre-deploy data back, a safety backup")
    func failedDeployHealsItself() async throws {
        try await ApplicationFixture.with(uploadFiles: 20) { app in
            let scenario = try Scenario(app)
            do {
                try await scenario.managed.control("start")
                try await eventually("the app is healthy") { await scenario.managed.status() == 200 }
                for id in ["sidecar-a", "sidecar-b", "sidecar-c"] { try scenario.launchSidecar(id) }
                try await eventually("three heartbeats") { try scenario.heartbeats().filter { $0.lastHealthy != nil }.count == 3 }
                let target = try await Self.healthyBackup(scenario)
                let manifest = try #require(try scenario.manifests().first { $0.archive.name == target })
                #expect(manifest.metadata.health?.state == .healthy, "the backup records the app's health as it began")
                #expect(manifest.metadata.health?.sidecars == 3)
                let before = try await app.snapshot()
                _ = try scenario.launchRunner()

                // The failed deploy, in one shell (milliseconds, whatever the load on this test process): uploads
                // changed and deleted, a table dropped. Done step by step from here, a busy machine could let the
                // sidecars see the first step and the rollback run before the last.
                let uploads = app.uploadsDirectory.path
                let psql = app.server.binDir.appendingPathComponent("psql").path
                _ = try await ProcessRunner.run(
                    "/bin/sh",
                    ["-c", "echo tampered > '\(uploads)/new-in-deploy.txt' && rm -rf '\(uploads)/documents' && '\(psql)' -qX -d \(app.database) -c 'DROP TABLE users CASCADE'"],
                    environment: app.server.environment, requireSuccess: true)
                // (No check of the app's answer here: on a slow machine the sidecars may already have seen the 500s
                // and the runner stopped the app. The request's incident below records the failures.)

                try await eventually(timeout: .seconds(120), "the rollback ends") {
                    try scenario.requests().contains { $0.intent == .rollback && $0.status.isFinished }
                }
                let requests = try scenario.requests()
                #expect(requests.count == 1, "one rollback however many sidecars: \(requests.map(\.id))")
                let request = try #require(requests.first)
                #expect(request.status == .succeeded, "\(request.reason ?? "") \n\(scenario.logs)")
                #expect(request.target == target)
                #expect(request.incident?.failures ?? 0 >= 3)
                #expect(await scenario.managed.status() == 200)
                #expect(try await app.snapshot() == before, "exactly the pre-deploy data and files")
                let steps = request.steps ?? []
                for step in ["loop guard", "stop the application", "swap in the database, the uploads and the .env", "start the application", "health check", "safety backup"] {
                    #expect(steps.contains { $0.name.hasPrefix(step) && $0.status == "succeeded" }, "step \(step): \(steps.map { "\($0.name)=\($0.status)" })")
                }
                #expect(scenario.managed.events().filter { $0 == "app stopped" }.count == 1)

                // The broken state is a safety backup, never a target, restorable by name.
                let safety = try #require(try scenario.manifests().first { $0.metadata.kind == .safety })
                #expect(safety.metadata.database.contains("_before_restore_"))
                #expect(safety.metadata.health?.state == .unhealthy, "it records the broken state's health, not the healed app's")
                let verify = try #require(steps.first { $0.name.hasPrefix("verify ") })
                let stop = try #require(steps.first { $0.name == "stop the application" })
                #expect(try #require(verify.ended) <= stop.started, "verification ends before the app is stopped")
                #expect(safety.metadata.members.contains { $0.name == ArchiveLayout.databaseDump })
                #expect(request.reason?.contains(safety.archive.name) == true)
                let history = try ContingencyJSON.decoder().decode(
                    RollbackHistory.self, from: Data(contentsOf: app.backupDirectory.appendingPathComponent(RollbackHistory.key)))
                #expect(history.rollbacks.count == 1)
                #expect(history.rollbacks.first?.outcome == "succeeded")
                // rollback.prom counts it (published right after the request's outcome).
                let metrics = app.backupDirectory.appendingPathComponent(".contingency/metrics/rollback.prom")
                try await eventually(timeout: .seconds(30), "rollback.prom") {
                    FileManager.default.fileExists(atPath: metrics.path)
                }
                let rollbacks = try #require(
                    try PrometheusText.parse(String(contentsOf: metrics, encoding: .utf8))
                        .first { $0.name == "contingency_rollbacks_total" })
                #expect(
                    rollbacks.value(["result": "succeeded"]) == 1 && rollbacks.value(["result": "failed"]) == 0,
                    "\(rollbacks)")
                let lastSuccess = try PrometheusText.parse(String(contentsOf: metrics, encoding: .utf8))
                    .first { $0.name == "contingency_rollback_last_success" }?.value()
                #expect(lastSuccess == 1)

                // The goal: the restore's own time plus at most 15 s, from the third failed probe to healthy.
                if let opened = request.incident?.opened, let healthy = steps.first(where: { $0.name == "health check" })?.ended,
                    let verify = steps.first(where: { $0.name.hasPrefix("verify ") })
                {
                    let restoreTime = (steps.first { $0.name.hasPrefix("swap in") }?.ended ?? healthy).timeIntervalSince(verify.started)
                    print("Rollback: third failed probe to healthy in \(String(format: "%.1f", healthy.timeIntervalSince(opened))) s (the restore itself \(String(format: "%.1f", restoreTime)) s)")
                }

                // restore-job --plan now passes over the safety backup.
                let plan = try await app.run("restore-job", ["--plan"], environment: scenario.environment())
                #expect(plan.succeeded, "\(plan.stderr)")
                #expect(plan.stdout.contains("skip \(safety.archive.name): a safety backup"), "\(plan.stdout)")
            } catch {
                print(scenario.logs)
                await scenario.tearDown()
                throw error
            }
            await scenario.tearDown()
        }
    }

    @Test("A rollback that does not heal: the guard stops a second one, a person is told, the safety backup restores the broken state")
    func rollbackThatDoesNotHeal() async throws {
        try await ApplicationFixture.with(uploadFiles: 20) { app in
            let scenario = try Scenario(app)
            do {
                try await scenario.managed.control("start")
                try await eventually("the app is healthy") { await scenario.managed.status() == 200 }
                try scenario.launchSidecar("sidecar-a")
                _ = try await Self.healthyBackup(scenario)
                // The deploy breaks something no backup holds: the app's health query itself (as a broken image would).
                try await app.server.psql("INSERT INTO users (email, name) VALUES ('after@example.com', 'after deploy')", database: app.database)
                try await app.server.psql("CREATE TABLE deploy_marker (id int)", database: app.database)
                let brokenMarker = try await app.server.snapshot(database: app.database)
                _ = try scenario.launchRunner(["ROLLBACK_HEALTH_TIMEOUT": "3s"])
                try await scenario.managed.control("stop")
                // The app comes back broken whatever the data: its query names a missing table.
                let script = try String(contentsOfFile: scenario.managed.script, encoding: .utf8)
                try Data(script.replacingOccurrences(of: "set -e\n", with: "set -e\nexport FIXTURE_QUERY='SELECT count(*) FROM no_such_table'\n").utf8)
                    .write(to: URL(fileURLWithPath: scenario.managed.script))
                try await scenario.managed.control("start")

                try await eventually(timeout: .seconds(120), "the rollback ends") {
                    try scenario.requests().contains { $0.status.isFinished }
                }
                let request = try #require(try scenario.requests().first)
                #expect(request.status == .failed)
                #expect(request.reason?.contains("still unhealthy") == true, "\(request.reason ?? "")")
                #expect(await scenario.managed.status() == 500, "the app runs (started again), still broken")
                try await eventually(timeout: .seconds(30), "the runner logs the failed rollback (read from its pipe)") {
                    scenario.runner?.stderrSoFar.contains("[Rollback] Rollback \(request.id) to ") == true
                        && scenario.runner?.stderrSoFar.contains("failed") == true
                }

                // A second incident request in the window is refused by the loop guard.
                let second = try RequestBoard(storage: try scenario.store).submit(
                    id: "rollback-second", intent: .rollback, requestedBy: "test", expires: Date().addingTimeInterval(600))
                #expect(second.created)
                try await eventually(timeout: .seconds(30), "the second request is ended") {
                    try RequestBoard(storage: try scenario.store).get("rollback-second")?.request.status.isFinished == true
                }
                let refused = try #require(try RequestBoard(storage: try scenario.store).get("rollback-second")?.request)
                #expect(refused.status == .failed)
                #expect(refused.reason?.contains("loop guard") == true, "\(refused.reason ?? "")")
                #expect(scenario.managed.events().filter { $0 == "app stopped" }.count == 2, "the refused one never stopped the app (one stop by the test, one by the rollback)")

                // The safety backup brings the broken state back on request.
                let safety = try #require(try scenario.manifests().first { $0.metadata.kind == .safety })
                _ = await scenario.runner?.terminateAndWait()
                scenario.runner = nil
                let restore = try await app.run("restore-job", [safety.archive.name], environment: ["RESTORE_TERMINATE_CONNECTIONS": "true"])
                #expect(restore.succeeded, "\(restore.stderr)")
                #expect(try await app.server.snapshot(database: app.database) == brokenMarker)
            } catch {
                print(scenario.logs)
                await scenario.tearDown()
                throw error
            }
            await scenario.tearDown()
        }
    }
}

import BackupCore
import BackupKit
import BackupStorage
import Foundation
import Testing
import TestSupport

/// The rollback runner on its own, fed requests as the sidecars write them: a runner killed mid-rollback,
/// target choice among backups that must be passed over, requests that expired.
@Suite(.serialized)
struct RollbackRunnerTests {
    typealias Scenario = RollbackTests.Scenario

    /// A rollback request as a sidecar writes it, with the last healthy probe given.
    static func submit(_ scenario: Scenario, id: String = "rollback-test", lastHealthy: Date, expires: Date? = nil) throws {
        let board = RequestBoard(storage: try scenario.store)
        let submitted = try board.submit(
            id: id, intent: .rollback, requestedBy: "health-sidecar test", expires: expires ?? Date().addingTimeInterval(3600),
            incident: .init(sidecar: "test", opened: Date(), lastHealthy: lastHealthy, failures: 3, lastResult: "HTTP 500"))
        #expect(submitted.created)
    }

    @Test("kill -9 of restore-job mid-rollback: a second runner never runs it at the same time, ends it as interrupted, and the app runs")
    func killedMidRollback() async throws {
        try await ApplicationFixture.with(uploadFiles: 20) { app in
            let scenario = try Scenario(app)
            do {
                try await scenario.managed.control("start")
                try await eventually("the app is healthy") { await scenario.managed.status() == 200 }
                #expect(try await app.run("backup-job").succeeded)
                try await app.server.psql("DROP TABLE users CASCADE", database: app.database)
                try Self.submit(scenario, lastHealthy: Date().addingTimeInterval(1))
                // A lease of 45 s: the frozen runner still holds it while the second one polls (a frozen runner is
                // a dead one once its lease has expired: then the second one must take over).
                let first = try scenario.launchRunner(["CONTINGENCY_FAILPOINT": "rollback-app-stopped", "LOCK_TTL": "45s"])
                try await eventually(timeout: .seconds(60), "the first runner stops with the app stopped") { first.isStopped }
                #expect(await scenario.managed.status() == nil, "the app is stopped")
                let firstWorker = try #require(try scenario.requests().first?.worker)

                // A second runner while the first one's lease is live: it must not touch the request.
                let second = try app.launch(
                    "restore-job", ["--loop"], environment: scenario.environment(["SIDECAR_ID": "second", "LOCK_TTL": "45s"]))
                defer { second.kill() }
                let heartbeat = app.backupDirectory.appendingPathComponent(RunnerHeartbeat.key(for: "second"))
                var polls = Set<Date>()
                try await eventually(timeout: .seconds(30), "the second runner polls twice") {
                    if let data = try? Data(contentsOf: heartbeat),
                        let beat = try? ContingencyJSON.decoder().decode(RunnerHeartbeat.self, from: data)
                    {
                        polls.insert(beat.lastPoll)
                    }
                    return polls.count >= 2
                }
                let during = try #require(try scenario.requests().first)
                #expect(during.status == .running)
                #expect(during.worker == firstWorker, "still the first runner's")
                #expect(scenario.managed.events().filter { $0 == "app stopped" }.count == 1)

                first.kill(SIGKILL)
                _ = try await first.waitForExit()
                try await eventually(timeout: .seconds(120), "the second runner ends the request (once the lease expired)") {
                    try scenario.requests().first?.status.isFinished == true
                }
                let ended = try #require(try scenario.requests().first)
                #expect(ended.status == .failed)
                #expect(ended.reason?.contains("interrupted") == true, "\(ended.reason ?? "")")
                #expect(ended.reason?.contains("stop the application") == true, "names the step it stopped at: \(ended.reason ?? "")")
                #expect(ended.reason?.contains("was not run again") == true)
                try await eventually(timeout: .seconds(30), "the app runs again") { await scenario.managed.status() != nil }
                #expect(scenario.managed.events().filter { $0 == "app stopped" }.count == 1, "never run a second time")
                let history = try ContingencyJSON.decoder().decode(
                    RollbackHistory.self, from: Data(contentsOf: app.backupDirectory.appendingPathComponent(RollbackHistory.key)))
                #expect(history.rollbacks.map(\.outcome) == ["interrupted"])
                _ = await second.terminateAndWait()
            } catch {
                print(scenario.logs)
                await scenario.tearDown()
                throw error
            }
            await scenario.tearDown()
        }
    }

    @Test("Target choice: a corrupted, a safety, an unhealthy-at-start, an after-last-healthy and a future-dated backup are passed over")
    func targetChoice() async throws {
        try await ApplicationFixture.with(uploadFiles: 20) { app in
            let scenario = try Scenario(app)
            do {
                try await scenario.managed.control("start")
                try await eventually("the app is healthy") { await scenario.managed.status() == 200 }
                #expect(try await app.run("backup-job").succeeded)
                let good = try #require(try app.storeFiles().first { $0.hasSuffix(".tar.gz") })
                let t0 = try #require(BackupName.parse(fileName: good, prefix: "visual_backup")).date
                let before = try await app.snapshot()
                func name(_ offset: TimeInterval) -> String {
                    BackupName(prefix: "visual_backup", date: t0.addingTimeInterval(offset), compression: .gzip, encrypted: false).fileName
                }
                // Copies of the good backup under other names (forge_backup.py keeps every checksum right).
                let forge = { (output: String) async throws in
                    _ = try await ProcessRunner.run(
                        "python3", [SignatureTests.script, app.backupDirectory.appendingPathComponent(good).path,
                                    app.backupDirectory.appendingPathComponent(output).path, "--signature", "keep"], requireSuccess: true)
                }
                let corrupted = name(30), safety = name(60), unhealthy = name(90), afterHealthy = name(200)
                let future = "visual_backup_2099-01-01_00-00-00.tar.gz"
                for copy in [corrupted, safety, unhealthy, afterHealthy, future] { try await forge(copy) }
                try await BackupForger.forge(app.backupDirectory.appendingPathComponent(safety), [.setMetadata("kind", json: "\"safety\"")])
                try await BackupForger.forge(
                    app.backupDirectory.appendingPathComponent(unhealthy),
                    [.setMetadata("health", json: #"{"state":"unhealthy","consecutiveFailures":3,"sidecars":1}"#)])
                // Bytes changed in the middle of the archive: its sha256 no longer matches the manifest.
                let handle = try FileHandle(forUpdating: app.backupDirectory.appendingPathComponent(corrupted))
                let size = try handle.seekToEnd()
                try handle.seek(toOffset: size / 2)
                try handle.write(contentsOf: Data(repeating: 0x5a, count: 64))
                try handle.close()
                let lastHealthy = t0.addingTimeInterval(120)
                try HeartbeatStore(storage: try scenario.store).write(
                    HealthHeartbeat(sidecar: "test", url: "x", interval: 1, started: t0, lastProbe: Date(), lastResult: nil, lastHealthy: lastHealthy))

                let plan = try await app.run("restore-job", ["--plan"], environment: scenario.environment())
                #expect(plan.succeeded, "\(plan.stderr)")
                #expect(plan.stdout.contains("skip \(future): dated"), "\(plan.stdout)")
                #expect(plan.stdout.contains("skip \(afterHealthy): began after the app was last seen healthy"))
                #expect(plan.stdout.contains("skip \(unhealthy): the app was unhealthy when it began"))
                #expect(plan.stdout.contains("skip \(safety): a safety backup"))
                #expect(plan.stdout.contains("TARGET \(corrupted)"), "the corruption is found only by reading it")
                #expect(plan.stdout.contains("then \(good)"))
                #expect(try await app.snapshot() == before, "--plan changes nothing")

                try await app.server.psql("DROP TABLE users CASCADE", database: app.database)
                try Self.submit(scenario, lastHealthy: lastHealthy)
                _ = try scenario.launchRunner()
                try await eventually(timeout: .seconds(120), "the rollback ends") { try scenario.requests().first?.status.isFinished == true }
                let request = try #require(try scenario.requests().first)
                #expect(request.status == .succeeded, "\(request.reason ?? "")\n\(scenario.logs)")
                #expect(request.target == good, "the corrupted one failed verification and the next older was restored")
                #expect(request.steps?.contains { $0.name.hasPrefix("verify \(corrupted)") && $0.status == "failed" } == true)
                #expect(try await app.server.snapshot(database: app.database) == before.database)
                #expect(scenario.managed.events().filter { $0 == "app stopped" }.count == 1, "the failed verification touched nothing")
            } catch {
                print(scenario.logs)
                await scenario.tearDown()
                throw error
            }
            await scenario.tearDown()
        }
    }

    @Test("A request older than its window is expired, never run late (a store copied elsewhere replays nothing)")
    func expiredRequest() async throws {
        try await ApplicationFixture.with(uploadFiles: 20) { app in
            let scenario = try Scenario(app)
            do {
                try await scenario.managed.control("start")
                #expect(try await app.run("backup-job").succeeded)
                try Self.submit(scenario, lastHealthy: Date(), expires: Date().addingTimeInterval(-60))
                _ = try scenario.launchRunner()
                try await eventually(timeout: .seconds(60), "the request is ended") { try scenario.requests().first?.status.isFinished == true }
                let request = try #require(try scenario.requests().first)
                #expect(request.status == .expired)
                #expect(request.reason?.contains("never run late") == true)
                #expect(scenario.managed.events().filter { $0 == "app stopped" }.isEmpty)
                // The log line follows the status change: wait for it.
                try await eventually(timeout: .seconds(30), "the runner logs the expiry") {
                    scenario.runner?.stderrSoFar.contains("not run: expired") == true
                }

                // A request for an app that answers again is not run either.
                try await eventually("the app is healthy") { await scenario.managed.status() == 200 }
                try Self.submit(scenario, id: "rollback-healthy", lastHealthy: Date())
                try await eventually(timeout: .seconds(60), "the second request is ended") {
                    try RequestBoard(storage: try scenario.store).get("rollback-healthy")?.request.status.isFinished == true
                }
                let healthy = try #require(try RequestBoard(storage: try scenario.store).get("rollback-healthy")?.request)
                #expect(healthy.status == .skipped)
                #expect(healthy.reason?.contains("not needed") == true)
                #expect(scenario.managed.events().filter { $0 == "app stopped" }.isEmpty)
            } catch {
                print(scenario.logs)
                await scenario.tearDown()
                throw error
            }
            await scenario.tearDown()
        }
    }
}


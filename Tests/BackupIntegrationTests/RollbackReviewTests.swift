import BackupCore
import BackupKit
import BackupStorage
import Foundation
import Testing
import TestSupport

/// A second reader's attempts to break the rollback runner: as someone who can write to the store, and as an
/// operator on a bad day. Each test states what must hold; a failing one is a defect found in review.
@Suite(.serialized)
struct RollbackReviewTests {
    typealias Scenario = RollbackTests.Scenario

    /// Waits until the runner `id` has written its heartbeat at least `count` times (each poll writes one).
    static func waitForPolls(_ scenario: Scenario, runner id: String, count: Int = 2) async throws {
        let heartbeat = scenario.app.backupDirectory.appendingPathComponent(RunnerHeartbeat.key(for: id))
        var polls = Set<Date>()
        try await eventually(timeout: .seconds(60), "the runner polls \(count) times") {
            if let data = try? Data(contentsOf: heartbeat),
                let beat = try? ContingencyJSON.decoder().decode(RunnerHeartbeat.self, from: data)
            {
                polls.insert(beat.lastPoll)
            }
            return polls.count >= count
        }
    }

    /// The databases kept from before a restore (`<db>_before_restore_…`).
    static func keptDatabases(_ app: ApplicationFixture) async throws -> [String] {
        try await app.server.query(
            "SELECT datname FROM pg_database WHERE datname LIKE '\(app.database)\\_before\\_restore\\_%' ORDER BY 1"
        ).compactMap(\.first)
    }

    @Test("A forged request whose id holds '../' makes the runner create nothing outside the store")
    func forgedRequestIDStaysInTheStore() async throws {
        try await ApplicationFixture.with(uploadFiles: 20) { app in
            let scenario = try Scenario(app)
            let outside = try TemporaryDirectory(prefix: "contingency-outside")
            do {
                // A request as the board writes it, then its id rewritten by whoever can write to the store.
                let board = RequestBoard(storage: try scenario.store)
                _ = try board.submit(id: "forged", intent: .rollback, requestedBy: "someone", expires: Date().addingTimeInterval(3600))
                let file = app.backupDirectory.appendingPathComponent(RequestBoard.key(for: "forged"))
                var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any])
                let escape = String(repeating: "../", count: 40) + outside.path.dropFirst() + "/pwned"
                object["id"] = escape
                try JSONSerialization.data(withJSONObject: object).write(to: file)

                _ = try scenario.launchRunner(["SIDECAR_ID": "review-runner"])
                try await Self.waitForPolls(scenario, runner: "review-runner")
                let created = try FileManager.default.contentsOfDirectory(atPath: outside.path)
                #expect(created.isEmpty, "the runner created \(created) in \(outside.path), outside the store")
                let locks = (try? FileManager.default.contentsOfDirectory(
                    atPath: app.backupDirectory.appendingPathComponent(".contingency/locks").path)) ?? []
                #expect(!locks.contains("request-.."), "a folder named by the forged id: \(locks)")
                #expect(scenario.managed.events().filter { $0 == "app stopped" }.isEmpty)
            } catch {
                print(scenario.logs)
                await scenario.tearDown()
                throw error
            }
            await scenario.tearDown()
        }
    }

    @Test("A heartbeat whose last healthy probe is dated 2099 does not stop every later incident from being rolled back")
    func futureHeartbeatDoesNotDisableRollbacks() async throws {
        try await ApplicationFixture.with(uploadFiles: 20) { app in
            let scenario = try Scenario(app)
            do {
                try await scenario.managed.control("start")
                try await eventually("the app is healthy") { await scenario.managed.status() == 200 }
                // A retired sidecar whose clock once ran far ahead (or a forged file): its heartbeat stays in the store.
                let future = Date(timeIntervalSince1970: 4_070_908_800)  // 2099-01-01
                let longAgo = Date().addingTimeInterval(-7 * 86_400)
                try HeartbeatStore(storage: try scenario.store).write(
                    HealthHeartbeat(
                        sidecar: "retired", url: "x", interval: 300, started: longAgo, lastProbe: longAgo,
                        lastResult: ProbeResult(healthy: true, status: 200, reason: nil, seconds: 0.01), lastHealthy: future))
                // An earlier incident was handled while that heartbeat was there: its request is finished.
                let board = RequestBoard(storage: try scenario.store)
                let earlier = try board.submit(
                    id: IncidentID.make(lastHealthy: future), intent: .rollback, requestedBy: "health-sidecar old",
                    now: longAgo, expires: longAgo.addingTimeInterval(3600))
                try #require(try board.transition(earlier.request.id, from: .pending, to: .failed, reason: "an earlier incident") != nil)

                try scenario.launchSidecar("sidecar-a")
                try await eventually(timeout: .seconds(30), "the sidecar sees the app healthy") {
                    try scenario.heartbeats().first { $0.sidecar == "sidecar-a" }?.lastHealthy != nil
                }
                let broken = Date()
                try await app.server.psql("DROP TABLE users CASCADE", database: app.database)
                try await eventually(timeout: .seconds(60), "the sidecar opens an incident") {
                    try scenario.heartbeats().first { $0.sidecar == "sidecar-a" }?.incident != nil
                }
                let id = try #require(try scenario.heartbeats().first { $0.sidecar == "sidecar-a" }?.incident)
                let request = try #require(try board.get(id)?.request)
                #expect(
                    request.created >= broken.addingTimeInterval(-1) && !request.status.isFinished,
                    "today's incident got the request \(id) of an earlier incident (\(request.status.rawValue), created \(request.created)): no rollback will run")
            } catch {
                print(scenario.logs)
                await scenario.tearDown()
                throw error
            }
            await scenario.tearDown()
        }
    }

    @Test("A rollback restored in place (no swap possible): the safety backup holds the broken database, not the restored one")
    func inPlaceRestoreSafetyBackup() async throws {
        try await ApplicationFixture.with(uploadFiles: 20) { app in
            let scenario = try Scenario(app)
            // Another client stays connected and RESTORE_TERMINATE_CONNECTIONS is off: the swap cannot be done and
            // the database is restored in place, in one transaction (the documented fallback).
            do {
                let client = try await IdleSession(server: app.server, database: app.database)
                defer { client.end() }
                try await scenario.managed.control("start")
                try await eventually("the app is healthy") { await scenario.managed.status() == 200 }
                #expect(try await app.run("backup-job").succeeded)
                // The failed deploy.
                try await app.server.psql("DROP TABLE users CASCADE; CREATE TABLE deploy_marker (id int)", database: app.database)
                try RollbackRunnerTests.submit(scenario, lastHealthy: Date().addingTimeInterval(1))
                _ = try scenario.launchRunner(["RESTORE_TERMINATE_CONNECTIONS": "false"])
                try await eventually(timeout: .seconds(120), "the rollback ends") { try scenario.requests().first?.status.isFinished == true }
                let request = try #require(try scenario.requests().first)
                #expect(request.status == .succeeded, "\(request.reason ?? "")\n\(scenario.logs)")
                // A rollback ends other sessions itself (the app is stopped; only a swap keeps the broken database), so
                // the idle client does not force an in-place restore whatever RESTORE_TERMINATE_CONNECTIONS says.

                // What the runner calls the broken state must be the broken state.
                if let safety = try scenario.manifests().first(where: { $0.metadata.kind == .safety }) {
                    let tables = safety.metadata.tables.map { Array($0.keys) } ?? []
                    // The deploy dropped users: the broken database has none; the restored one has it again.
                    #expect(
                        !tables.contains("public.users"),
                        "the safety backup \(safety.archive.name) holds \(safety.metadata.database) as restored (tables \(tables.sorted())), not the broken database; restoring it \"to go back\" brings back the good data with the broken uploads")
                } else {
                    #expect(
                        request.reason?.contains("not kept") == true,
                        "no safety backup, and the request does not say the broken database was not kept: \(request.reason ?? "")")
                }
            } catch {
                print(scenario.logs)
                await scenario.tearDown()
                throw error
            }
            await scenario.tearDown()
        }
    }

    @Test("When the safety backup fails, the broken database it left in place survives the next scheduled backup")
    func brokenStateSurvivesTheNextBackup() async throws {
        try await ApplicationFixture.with(uploadFiles: 20) { app in
            let scenario = try Scenario(app)
            do {
                try await scenario.managed.control("start")
                try await eventually("the app is healthy") { await scenario.managed.status() == 200 }
                #expect(try await app.run("backup-job").succeeded)
                try await app.server.psql("DROP TABLE users CASCADE; CREATE TABLE deploy_marker (id int)", database: app.database)
                try RollbackRunnerTests.submit(scenario, lastHealthy: Date().addingTimeInterval(1))
                // Any failure of the safety backup will do (a full volume, a bucket down): here its signing key is bad,
                // which only the safety backup reads.
                _ = try scenario.launchRunner(["BACKUP_SIGNING_KEY": "not a key"])
                try await eventually(timeout: .seconds(120), "the rollback ends") { try scenario.requests().first?.status.isFinished == true }
                let request = try #require(try scenario.requests().first)
                #expect(request.status == .succeeded, "\(request.reason ?? "")\n\(scenario.logs)")
                #expect(request.steps?.contains { $0.name == "safety backup" && $0.status == "failed" } == true, "the scenario's safety backup failed")
                let kept = try await Self.keptDatabases(app)
                try #require(kept.count == 1, "the runner says the replaced state stays where it is: \(kept)")
                _ = await scenario.runner?.terminateAndWait()
                scenario.runner = nil

                // The next scheduled backup, as backup-job --loop would run it.
                let next = try await app.run("backup-job")
                #expect(next.succeeded, "\(next.stderr)")
                #expect(
                    try await Self.keptDatabases(app) == kept,
                    "the broken database \(kept[0]), archived nowhere, was dropped by the next backup:\n\(next.stderr)")
            } catch {
                print(scenario.logs)
                await scenario.tearDown()
                throw error
            }
            await scenario.tearDown()
        }
    }

    @Test("The app cannot be started after the swap: the request says where the replaced database and uploads are")
    func startFailureReportsTheReplacedState() async throws {
        try await ApplicationFixture.with(uploadFiles: 20) { app in
            let scenario = try Scenario(app)
            do {
                try await scenario.managed.control("start")
                try await eventually("the app is healthy") { await scenario.managed.status() == 200 }
                #expect(try await app.run("backup-job").succeeded)
                try await app.server.psql("DROP TABLE users CASCADE", database: app.database)
                try RollbackRunnerTests.submit(scenario, lastHealthy: Date().addingTimeInterval(1))
                _ = try scenario.launchRunner(["APP_START_COMMAND": "exit 7"])
                try await eventually(timeout: .seconds(120), "the rollback ends") { try scenario.requests().first?.status.isFinished == true }
                let request = try #require(try scenario.requests().first)
                #expect(request.status == .failed)
                let kept = try await Self.keptDatabases(app)
                let aside = try FileManager.default.contentsOfDirectory(atPath: app.uploadsDirectory.deletingLastPathComponent().path)
                    .filter { $0.hasPrefix(".\(app.uploadsDirectory.lastPathComponent).before-restore-") }
                // Whoever reads the request (the API, a person) must learn where the broken state is, or find a
                // safety backup of it: nothing else records it, and the next backup drops the database.
                let told = (request.reason ?? "") + (request.steps ?? []).compactMap(\.detail).joined()
                let safety = try scenario.manifests().contains { $0.metadata.kind == .safety }
                #expect(safety || (kept.count == 1 && aside.count == 1), "the restore kept the broken state aside: \(kept) \(aside)")
                if safety { #expect(request.reason?.contains("safety backup") == true, "\(request.reason ?? "")") }
                #expect(
                    safety || (kept + aside).allSatisfy { told.contains($0) },
                    "the request names neither \(kept) nor \(aside), and no safety backup was made: \(request.reason ?? "")")
            } catch {
                print(scenario.logs)
                await scenario.tearDown()
                throw error
            }
            await scenario.tearDown()
        }
    }

    @Test("SIGTERM to the runner while it waits for health: the request says it was stopped, and the broken state is archived or named")
    func sigtermDuringHealthWait() async throws {
        try await ApplicationFixture.with(uploadFiles: 20) { app in
            let scenario = try Scenario(app)
            do {
                try await scenario.managed.control("start")
                try await eventually("the app is healthy") { await scenario.managed.status() == 200 }
                #expect(try await app.run("backup-job").succeeded)
                try await app.server.psql("DROP TABLE users CASCADE", database: app.database)
                try RollbackRunnerTests.submit(scenario, lastHealthy: Date().addingTimeInterval(1))
                // The runner probes an address where nothing answers: after the restore it waits the whole timeout.
                let runner = try scenario.launchRunner(["HEALTH_CHECK_URL": "http://127.0.0.1:9/healthz", "ROLLBACK_HEALTH_TIMEOUT": "300s"])
                try await eventually(timeout: .seconds(120), "the runner waits for health") {
                    try scenario.requests().first?.steps?.contains { $0.name == "health check" && $0.status == "running" } == true
                }
                runner.kill(SIGTERM)
                _ = try await runner.waitForExit(timeout: .seconds(60))
                let request = try #require(try scenario.requests().first)
                #expect(request.status.isFinished, "left \(request.status.rawValue)")
                let reason = request.reason ?? ""
                #expect(
                    ["SIGTERM", "cancel", "was stopped"].contains { reason.contains($0) },
                    "the reason does not say the runner was stopped mid-check: \(reason)")
                let kept = try await Self.keptDatabases(app)
                let safety = try scenario.manifests().contains { $0.metadata.kind == .safety }
                #expect(safety || kept.allSatisfy { reason.contains($0) }, "no safety backup and \(kept) named nowhere: \(reason)")
            } catch {
                print(scenario.logs)
                await scenario.tearDown()
                throw error
            }
            await scenario.tearDown()
        }
    }

    @Test("Uploads on a mount point, safety backup failed: the broken uploads do not stay inside UPLOADS_DIR for the app and every later backup")
    func mountPointBrokenUploadsStayHidden() async throws {
        try await ApplicationFixture.with(uploadFiles: 20) { app in
            // A Docker volume stand-in, holding the same files.
            let copy = try TemporaryDirectory(prefix: "contingency-uploads-copy")
            _ = try await ProcessRunner.run("cp", ["-a", app.uploadsDirectory.path + "/.", copy.path], requireSuccess: true)
            let mount = try await TmpfsMount(size: "32m", on: app.uploadsDirectory.path)
            defer { mount.unmount() }
            _ = try await ProcessRunner.run("cp", ["-a", copy.path + "/.", app.uploadsDirectory.path], requireSuccess: true)
            let scenario = try Scenario(app)
            do {
                try await scenario.managed.control("start")
                try await eventually("the app is healthy") { await scenario.managed.status() == 200 }
                #expect(try await app.run("backup-job").succeeded)
                let good = try #require(try scenario.manifests().first)
                try await app.server.psql("DROP TABLE users CASCADE", database: app.database)
                try Data("deploy".utf8).write(to: app.uploadsDirectory.appendingPathComponent("new-in-deploy.txt"))
                try RollbackRunnerTests.submit(scenario, lastHealthy: Date().addingTimeInterval(1))
                _ = try scenario.launchRunner(["BACKUP_SIGNING_KEY": "not a key"])
                try await eventually(timeout: .seconds(120), "the rollback ends") { try scenario.requests().first?.status.isFinished == true }
                let request = try #require(try scenario.requests().first)
                #expect(request.status == .succeeded, "\(request.reason ?? "")")
                _ = await scenario.runner?.terminateAndWait()
                scenario.runner = nil

                // Inside a mount point the broken uploads cannot leave it (a rename stops at the mount): with no safety
                // backup they stay there, hidden, and the request names them; no later backup takes them in.
                let hidden = try FileManager.default.contentsOfDirectory(atPath: app.uploadsDirectory.path).filter { $0.hasPrefix(".contingency-") }
                #expect(hidden.allSatisfy { request.reason?.contains($0) == true }, "\(hidden) not named in: \(request.reason ?? "")")
                #expect(try await app.run("backup-job").succeeded)
                let next = try #require(try scenario.manifests().filter { $0.metadata.kind == nil }.max { $0.archive.name < $1.archive.name })
                #expect(
                    next.metadata.uploads?.files == good.metadata.uploads?.files,
                    "the next backup archives \(next.metadata.uploads?.files ?? 0) upload files, the healthy one \(good.metadata.uploads?.files ?? 0): the broken uploads went in with them")
            } catch {
                print(scenario.logs)
                await scenario.tearDown()
                throw error
            }
            await scenario.tearDown()
        }
    }

    @Test("A passing failure before the swap (here RESTORE_PRE_COMMAND failing once) never makes the runner restore an older backup")
    func transientFailureDoesNotFallBackToAnOlderBackup() async throws {
        try await ApplicationFixture.with(uploadFiles: 20) { app in
            let scenario = try Scenario(app)
            do {
                try await scenario.managed.control("start")
                try await eventually("the app is healthy") { await scenario.managed.status() == 200 }
                #expect(try await app.run("backup-job").succeeded)
                try await app.server.psql("INSERT INTO users (email, name) VALUES ('late@example.com', 'signed up after the first backup')", database: app.database)
                #expect(try await app.run("backup-job").succeeded)
                let newest = try #require(try app.storeFiles().filter { $0.hasSuffix(".tar.gz") }.max())
                try await app.server.psql("DROP TABLE users CASCADE", database: app.database)
                try RollbackRunnerTests.submit(scenario, lastHealthy: Date().addingTimeInterval(1))
                // A hook that fails the first time only (a notification endpoint that blinked, a mount not yet there).
                let marker = app.root.appending("pre-command-ran").path
                _ = try scenario.launchRunner(["RESTORE_PRE_COMMAND": "test -e \(marker) || { touch \(marker); exit 1; }"])
                try await eventually(timeout: .seconds(120), "the rollback ends") { try scenario.requests().first?.status.isFinished == true }
                let request = try #require(try scenario.requests().first)
                #expect(
                    request.target == nil || request.target == newest,
                    "restored \(request.target ?? "-") instead of the newest eligible \(newest): the rows written between them are lost (\(request.reason ?? ""))")
            } catch {
                print(scenario.logs)
                await scenario.tearDown()
                throw error
            }
            await scenario.tearDown()
        }
    }

    @Test("Two runners, two different rollback requests at once, ROLLBACK_MAX=1: one rollback, the other refused by the guard")
    func twoRunnersTwoRequests() async throws {
        try await ApplicationFixture.with(uploadFiles: 20) { app in
            let scenario = try Scenario(app)
            do {
                try await scenario.managed.control("start")
                try await eventually("the app is healthy") { await scenario.managed.status() == 200 }
                #expect(try await app.run("backup-job").succeeded)
                try await app.server.psql("DROP TABLE users CASCADE", database: app.database)
                try RollbackRunnerTests.submit(scenario, id: "rollback-one", lastHealthy: Date().addingTimeInterval(1))
                try RollbackRunnerTests.submit(scenario, id: "rollback-two", lastHealthy: Date().addingTimeInterval(1))
                let other = try app.launch("restore-job", ["--loop"], environment: scenario.environment(["SIDECAR_ID": "other"]))
                defer { other.kill() }
                _ = try scenario.launchRunner()
                try await eventually(timeout: .seconds(120), "both requests end") { try scenario.requests().allSatisfy { $0.status.isFinished } }
                let requests = try scenario.requests()
                #expect(requests.filter { $0.status == .succeeded }.count == 1, "\(requests.map { "\($0.id) \($0.status.rawValue) \($0.reason ?? "")" })")
                #expect(requests.contains { $0.reason?.contains("loop guard") == true || $0.status == .skipped })
                #expect(scenario.managed.events().filter { $0 == "app stopped" }.count == 1)
                _ = await other.terminateAndWait()
            } catch {
                print(scenario.logs)
                await scenario.tearDown()
                throw error
            }
            await scenario.tearDown()
        }
    }
}

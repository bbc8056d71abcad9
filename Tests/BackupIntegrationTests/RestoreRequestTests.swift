import BackupCore
import BackupKit
import BackupStorage
import Foundation
import Testing
import TestSupport

/// The admin API's restores without the HTTP layer: `RestoreRequests.submit` / `.status` (what the routes call)
/// against a real store, run by a real `restore-job --loop` on a real PostgreSQL and a real application process.
@Suite(.serialized)
struct RestoreRequestTests {
    typealias Scenario = RollbackTests.Scenario

    /// The kind of `RestoreRequestError` `body` throws, or nil.
    static func refusal(_ body: () throws -> Void) -> RestoreRequestError.Kind? {
        do {
            try body()
            return nil
        } catch let error as RestoreRequestError {
            return error.kind
        } catch {
            Issue.record("not a RestoreRequestError: \(error)")
            return nil
        }
    }

    static func awaitEnd(_ scenario: Scenario, _ id: String) async throws -> RequestStatus {
        let store = try scenario.store
        try await eventually(timeout: .seconds(180), "request \(id) ends") {
            try RestoreRequests.status(id: id, storage: store).finished
        }
        return try RestoreRequests.status(id: id, storage: store)
    }

    @Test("Bad names, parts and ids are typed errors; no runner (or a stale one) is refused; nothing is written")
    func refusals() async throws {
        try await ApplicationFixture.with(uploadFiles: 5) { app in
            #expect(try await app.run("backup-job").succeeded)
            let backup = try #require(try app.storeFiles().first { $0.hasSuffix(".tar.gz") })
            let store = try VolumeStorage(root: app.backupDirectory.path)
            func submit(_ name: String, parts: [String]? = nil) -> RestoreRequestError.Kind? {
                Self.refusal { _ = try RestoreRequests.submit(backup: name, parts: parts, requestedBy: "test", storage: store, prefix: "visual_backup") }
            }
            let stamp = String(backup.dropFirst("visual_backup_".count).prefix(19))
            for name in [
                "../\(backup)", "/backups/\(backup)", "\(backup)/..", "..", "", "\(backup)\0", "\(backup).json",
                "other_backup_\(stamp).tar.gz", "visual_backup_\(stamp).tar.gz/../../etc/passwd", "visual_backup_%2e%2e.tar.gz",
                "visual_backup_2025-13-45_99-99-99.tar.gz", "visual_backup_\(stamp).tar.gz ",
            ] {
                #expect(submit(name) == .invalidName, "\(name.debugDescription)")
            }
            #expect(submit("visual_backup_2001-01-01_00-00-00.tar.gz") == .notFound)
            // A manifest whose archive was deleted by hand (the runbook's `find … -delete`) is no backup.
            let orphan = "visual_backup_2002-02-02_00-00-00.tar.gz"
            try FileManager.default.copyItem(
                at: app.backupDirectory.appendingPathComponent(backup + ".json"), to: app.backupDirectory.appendingPathComponent(orphan + ".json"))
            #expect(submit(orphan) == .notFound)
            #expect(submit(backup, parts: ["files"]) == .invalidParts)
            #expect(submit(backup, parts: []) == .invalidParts)
            #expect(submit(backup) == .noRunner, "no runner has ever run")

            // A runner that stopped polling an hour ago (by the store's clock: the file's time).
            let heartbeat = RunnerHeartbeat(runner: "gone", host: "h", pid: 1, started: Date(), lastPoll: Date(), pollInterval: 10)
            try store.put(key: RunnerHeartbeat.key(for: "gone"), data: Array(try ContingencyJSON.encoder().encode(heartbeat)))
            try FileManager.default.setAttributes(
                [.modificationDate: Date().addingTimeInterval(-3600)],
                ofItemAtPath: app.backupDirectory.appendingPathComponent(RunnerHeartbeat.key(for: "gone")).path)
            do {
                _ = try RestoreRequests.submit(backup: backup, requestedBy: "test", storage: store, prefix: "visual_backup")
                Issue.record("a stale runner was taken for a running one")
            } catch let error as RestoreRequestError {
                #expect(error.kind == .noRunner)
                #expect(error.message.contains("no restore runner is running") && error.message.contains("restore-job --loop"))
            }
            #expect(try RequestBoard(storage: store).list().isEmpty, "nothing was written")

            for id in ["../x", "", ".hidden", "a/b", String(repeating: "a", count: 200)] {
                #expect(Self.refusal { _ = try RestoreRequests.status(id: id, storage: store) } == .invalidID, "\(id)")
            }
            #expect(Self.refusal { _ = try RestoreRequests.status(id: "restore-unknown", storage: store) } == .notFound)
        }
    }

    @Test("Restore requests through restore-job --loop: parts honoured, data only leaves the app's version alone, the replaced state kept")
    func requestsRunByTheRunner() async throws {
        try await ApplicationFixture.with(uploadFiles: 12) { app in
            let scenario = try Scenario(app)
            do {
                try await scenario.managed.control("start")
                try await eventually("the app is healthy") { await scenario.managed.status() == 200 }
                let (backedUp, changed) = try await SelectiveRestoreTests.backupThenChange(app)
                let backup = try #require(try app.storeFiles().first { $0.hasSuffix(".tar.gz") })
                let store = try scenario.store
                _ = try scenario.launchRunner()
                try await eventually(timeout: .seconds(30), "the runner's heartbeat") {
                    !(try store.list(folder: RunnerHeartbeat.folder).isEmpty)
                }

                // 1. The uploads alone, data only.
                let uploadsOnly = try RestoreRequests.submit(
                    backup: backup, parts: ["uploads"], code: false, requestedBy: "api test", storage: store, prefix: "visual_backup")
                #expect(uploadsOnly.status == .pending && uploadsOnly.intent == .restore && uploadsOnly.parts == ["uploads"])
                #expect(StoreObjectName.isValid(uploadsOnly.id))
                let first = try await Self.awaitEnd(scenario, uploadsOnly.id)
                #expect(first.status == "succeeded", "\(first.reason ?? "")\n\(scenario.logs)")
                #expect(first.target == backup && first.parts == ["uploads"] && first.code == false)
                var after = try await app.snapshot()
                #expect(after.uploads == backedUp.uploads, "the uploads came back")
                #expect(after.database == changed.database, "the database keeps the row added after the backup")
                #expect(after.env == changed.env, "the .env is left as it is")
                let steps = first.steps
                #expect(steps.contains { $0.name == "start the application" && $0.status == "succeeded" }, "started as it is: \(steps.map(\.name))")
                #expect(!steps.contains { $0.name.hasPrefix("start the application on") })
                #expect(steps.allSatisfy { step in step.ended.map { $0 >= step.started } == true }, "every step has its times")
                // The replaced uploads are kept where the restore moved them, named in the reason.
                let reason = first.reason ?? ""
                #expect(reason.contains("the replaced state is kept: uploads "), "\(reason)")
                let keptPath = try #require(reason.components(separatedBy: "uploads ").last?.trimmingCharacters(in: .whitespaces))
                #expect(try FileTreeSnapshot.take(URL(fileURLWithPath: keptPath)) == changed.uploads, "the replaced uploads, intact")
                try await eventually("the app answers again") { await scenario.managed.status() == 200 }

                // 2. The code asked for: APP_CONTROL=command cannot restore a version, so nothing is touched.
                let stops = scenario.managed.events().filter { $0 == "app stopped" }.count
                let withCode = try RestoreRequests.submit(
                    backup: backup, parts: nil, code: true, requestedBy: "api test", storage: store, prefix: "visual_backup")
                let second = try await Self.awaitEnd(scenario, withCode.id)
                #expect(second.status == "failed")
                #expect(second.reason?.contains("version cannot be restored") == true, "\(second.reason ?? "")")
                #expect(second.reason?.contains("nothing was touched") == true)
                #expect(scenario.managed.events().filter { $0 == "app stopped" }.count == stops, "the app was not stopped")
                #expect(try await app.snapshot().database == changed.database)

                // 3. Everything, data only: the replaced database goes into a safety backup, as a rollback's does.
                let all = try RestoreRequests.submit(backup: backup, requestedBy: "api test", storage: store, prefix: "visual_backup")
                #expect(all.parts == nil)
                let third = try await Self.awaitEnd(scenario, all.id)
                #expect(third.status == "succeeded", "\(third.reason ?? "")\n\(scenario.logs)")
                #expect(third.parts == ["database", "uploads", "env"])
                after = try await app.snapshot()
                #expect(after == backedUp)
                let safety = try #require(try scenario.manifests().first { $0.metadata.kind == .safety })
                #expect(third.reason?.contains("safety backup \(safety.archive.name)") == true, "\(third.reason ?? "")")
                #expect(third.steps.contains { $0.name == "safety backup" && $0.status == "succeeded" })
                #expect(try await SelectiveRestoreTests.databases(app, like: "visual\\_db\\_before\\_restore\\_%").isEmpty, "archived, then let go of")
                try await eventually("the app answers again") { await scenario.managed.status() == 200 }
            } catch {
                print(scenario.logs)
                await scenario.tearDown()
                throw error
            }
            await scenario.tearDown()
        }
    }

    @Test("Docker app control: a restore request without code leaves the container on its image; with code it is recreated on the recorded one")
    func codeOnlyWhenAsked() async throws {
        try await PodmanService.with { podman in
            try await ApplicationFixture.with(uploadFiles: 5) { app in
                let v1 = try await podman.image(tag: "localhost/web:v1", version: "v1")
                let v2 = try await podman.image(tag: "localhost/web:v2", version: "v2")
                let port = try FreePort.pick()
                let scenario = try Scenario(app)
                let health = "http://127.0.0.1:\(port)/healthz"
                let docker = [
                    "APP_CONTROL": "docker", "APP_CONTAINER_LABEL": CodeRollbackTests.label, "DOCKER_HOST": podman.dockerHost,
                    "HEALTH_CHECK_URL": health,
                ]
                func image() async throws -> String { try await podman.inspect("web", "{{.Image}}") }
                do {
                    try await CodeRollbackTests.runWeb(podman, image: v1, port: port)
                    try await eventually("the app on v1 is healthy") { await httpStatus(health, maxTime: 3) == 200 }
                    let backup = try await app.run("backup-job", environment: docker)
                    try #require(backup.succeeded, "\(backup.stderr)")
                    let name = try #require(try app.storeFiles().first { $0.hasSuffix(".tar.gz") })
                    let before = try await app.server.snapshot(database: app.database)
                    // A deploy of v2 and a migration that drops a table.
                    try await podman.podman("rm", "--force", "--time", "0", "web")
                    try await CodeRollbackTests.runWeb(podman, image: v2, port: port)
                    try await app.server.psql("DROP TABLE posts CASCADE", database: app.database)
                    let store = try scenario.store
                    _ = try scenario.launchRunner(docker)
                    try await eventually(timeout: .seconds(30), "the runner's heartbeat") {
                        !(try store.list(folder: RunnerHeartbeat.folder).isEmpty)
                    }

                    let dataOnly = try RestoreRequests.submit(
                        backup: name, parts: ["database"], code: false, requestedBy: "test", storage: store, prefix: "visual_backup")
                    let first = try await Self.awaitEnd(scenario, dataOnly.id)
                    #expect(first.status == "succeeded", "\(first.reason ?? "")\n\(scenario.logs)")
                    #expect(try await app.server.snapshot(database: app.database) == before, "the data came back")
                    #expect(try await image().hasSuffix(String(v2.dropFirst("sha256:".count))), "still on v2: code was not asked for")
                    #expect(first.steps.contains { $0.name == "start the application" && $0.status == "succeeded" })

                    let withCode = try RestoreRequests.submit(
                        backup: name, parts: ["database"], code: true, requestedBy: "test", storage: store, prefix: "visual_backup")
                    let second = try await Self.awaitEnd(scenario, withCode.id)
                    #expect(second.status == "succeeded", "\(second.reason ?? "")\n\(scenario.logs)")
                    #expect(second.steps.contains { $0.name.hasPrefix("start the application on docker: web") && $0.status == "succeeded" })
                    #expect(try await image().hasSuffix(String(v1.dropFirst("sha256:".count))), "recreated on the recorded v1")
                    try await eventually("the app on v1 answers") { await httpStatus(health, maxTime: 3) == 200 }
                } catch {
                    print(scenario.logs)
                    await scenario.tearDown()
                    throw error
                }
                await scenario.tearDown()
            }
        }
    }
}

import BackupCore
import BackupKit
import BackupStorage
import Foundation
import TestSupport
import Testing

/// The runbook's recovery scenarios driven through the admin API, as an operator with `curl` would: a real
/// `health-sidecar --loop` serving the API, a real `restore-job --loop` running what it asks for, the fixture
/// application started and stopped by shell commands, a real PostgreSQL.
@Suite("Admin API: the runbook's scenarios", .serialized)
struct AdminAPIScenarioTests {
    /// A sidecar with the API over the scenario's store and app, which never opens incidents by itself (only the
    /// API's `rollback/auto` does here).
    static func withScenarioSidecar<T>(
        _ scenario: RollbackTests.Scenario, _ body: (APIClient, LaunchedProcess) async throws -> T
    ) async throws -> T {
        let process = try scenario.app.launch(
            "health-sidecar", ["--loop"],
            environment: scenario.environment([
                "SIDECAR_ID": "api-sidecar", "API_ADMIN_TOKEN": AdminAPITests.token, "HEALTH_CHECK_FAILURES": "1000",
            ]))
        scenario.sidecars.append(process)
        let client = try APIClient(
            port: try await process.servedPort(), token: AdminAPITests.token, folder: scenario.app.root.url)
        return try await body(client, process)
    }

    /// Starts `restore-job --loop` and waits for its first heartbeat (the API refuses restores until then).
    /// Starts a runner and waits for its heartbeat, written whole: the folder alone appears before the file is
    /// renamed into it, and an API call in that moment rightly finds no runner.
    static func launchRunner(_ scenario: RollbackTests.Scenario) async throws {
        _ = try scenario.launchRunner()
        let folder = scenario.app.backupDirectory.appendingPathComponent(RunnerHeartbeat.folder)
        try await eventually(timeout: .seconds(60), "the runner's heartbeat") {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
            return names.contains { name in
                (try? Data(contentsOf: folder.appendingPathComponent(name)))
                    .flatMap { try? ContingencyJSON.decoder().decode(RunnerHeartbeat.self, from: $0) } != nil
            }
        }
    }

    static func run<T>(_ uploads: Int = 20, _ body: (RollbackTests.Scenario) async throws -> T) async throws -> T {
        try await ApplicationFixture.with(uploadFiles: uploads) { app in
            let scenario = try RollbackTests.Scenario(app)
            do {
                try await scenario.managed.control("start")
                try await eventually("the app is healthy") { await scenario.managed.status() == 200 }
                let result = try await body(scenario)
                await scenario.tearDown()
                return result
            } catch {
                print(scenario.logs)
                await scenario.tearDown()
                throw error
            }
        }
    }

    @Test("scenario 1, a failed deploy: POST /api/backups before it, rollback/auto after it: rolledBack true, the data back")
    func failedDeploy() async throws {
        try await Self.run { scenario in
            let app = scenario.app
            try await Self.withScenarioSidecar(scenario) { api, _ in
                // Without a runner, rollback/auto says so and opens nothing (the app is healthy here: no).
                let created = try await api.call("POST", "/api/backups")
                #expect(created.status == 200, "\(created)")
                let name = try #require((created.json["backup"] as? [String: Any])?["filename"] as? String)
                let date = try #require(BackupName.parse(fileName: name, prefix: "visual_backup")).date
                try await eventually(timeout: .seconds(30), "a healthy probe after the backup") {
                    (try scenario.lastHealthy() ?? .distantPast) > date
                }
                let before = try await app.snapshot()
                try await app.server.psql("DROP TABLE users CASCADE", database: app.database)
                try await eventually("the app fails") { await scenario.managed.status() == 500 }

                let noRunner = try await api.call("POST", "/api/backups/rollback/auto")
                #expect(noRunner.status == 503, "\(noRunner)")
                #expect((noRunner.json["error"] as? String)?.hasPrefix("no restore runner is running") == true)
                #expect(try scenario.requests().isEmpty)

                try await Self.launchRunner(scenario)
                let rolled = try await api.call("POST", "/api/backups/rollback/auto")
                #expect(rolled.status == 200, "\(rolled)")
                #expect(rolled.json["success"] as? Bool == true && rolled.json["rolledBack"] as? Bool == true)
                #expect(rolled.json["message"] as? String == "Rollback effectué avec succès")
                #expect(rolled.json["target"] as? String == name)
                #expect(await scenario.managed.status() == 200)
                #expect(try await app.snapshot() == before)
                let request = try #require(try scenario.requests().first)
                #expect(request.requestedBy == "api 127.0.0.1" && request.intent == .rollback)
                let status = try await api.call("GET", "/api/backups/requests/\(request.id)")
                #expect(status.status == 200, "\(status)")
                let steps = (status.json["request"] as? [String: Any])?["steps"] as? [[String: Any]] ?? []
                #expect(steps.contains { $0["name"] as? String == "start the application" && $0["status"] as? String == "succeeded" })

                // Healthy again: a second call does nothing.
                let again = try await api.call("POST", "/api/backups/rollback/auto")
                #expect(again.json["rolledBack"] as? Bool == false, "\(again)")
            }
        }
    }

    @Test("scenario 3, files lost and the database fine: restore of the uploads only by name, in the background; pin, delete and cleanup")
    func restoreUploadsAndManage() async throws {
        try await Self.run { scenario in
            let app = scenario.app
            try await Self.withScenarioSidecar(scenario) { api, sidecar in
                let first = try await api.call("POST", "/api/backups")
                let name = try #require((first.json["backup"] as? [String: Any])?["filename"] as? String, "\(first)")
                let uploads = app.uploadsDirectory
                let before = try FileTreeSnapshot.take(uploads)
                try FileManager.default.removeItem(at: uploads.appendingPathComponent("documents"))
                try await app.server.psql("INSERT INTO users (email, name) VALUES ('late@example.com', 'after the backup')", database: app.database)

                // No runner yet: 503, no request.
                let early = try await api.call("POST", "/api/backups/\(name)/restore", body: #"{"parts": ["uploads"]}"#)
                #expect(early.status == 503, "\(early)")
                try await Self.launchRunner(scenario)
                let started = try await api.call("POST", "/api/backups/\(name)/restore", body: #"{"parts": ["uploads"]}"#)
                #expect(started.status == 202, "\(started)")
                #expect(started.json["message"] as? String == "Restauration démarrée en arrière-plan")
                #expect(started.json["warning"] as? String == "L'application va redémarrer dans quelques instants")
                let id = try #require(started.json["request"] as? String)
                var final: [String: Any] = [:]
                try await eventually(timeout: .seconds(180), "the restore request to end") {
                    final = (try await api.call("GET", "/api/backups/requests/\(id)")).json["request"] as? [String: Any] ?? [:]
                    return final["finished"] as? Bool == true
                }
                #expect(final["status"] as? String == "succeeded", "\(final)")
                #expect(try FileTreeSnapshot.take(uploads) == before)
                let rows = try await app.server.psql(
                    "SELECT count(*) FROM users WHERE name = 'after the backup'", database: app.database)
                #expect(rows.trimmingCharacters(in: .whitespacesAndNewlines) == "1", "the database was not touched")

                // Pin it: DELETE and cleanup keep it.
                let pinned = try await api.call("POST", "/api/backups/\(name)/pin", body: #"{"reason": "before the migration"}"#)
                #expect(pinned.status == 200, "\(pinned)")
                let refused = try await api.call("DELETE", "/api/backups/\(name)")
                #expect(refused.status == 409, "\(refused)")
                #expect((refused.json["error"] as? String)?.contains("pinned") == true, "\(refused)")
                let listed = try await api.call("GET", "/api/backups")
                #expect((listed.json["backups"] as? [[String: Any]])?.first?["pinned"] as? Bool == true)
                #expect(try await api.call("POST", "/api/backups/\(name)/unpin").json["wasPinned"] as? Bool == true)

                // The runbook's cleanup, as written (no Content-Type: curl sends a form): nothing is 30 days old.
                let cleanup = try await api.call(
                    "POST", "/api/backups/cleanup", body: #"{"retentionDays": 30}"#, contentType: nil)
                #expect(cleanup.status == 200, "\(cleanup)")
                #expect(cleanup.json["success"] as? Bool == true && cleanup.json["deletedCount"] as? Int == 0)
                #expect(cleanup.json["message"] as? String == "0 backups supprimés")

                // The cleanup verified the newest backup (nothing had): it is now the only verified one, and stays.
                let second = try await api.call("POST", "/api/backups")
                let secondName = try #require((second.json["backup"] as? [String: Any])?["filename"] as? String, "\(second)")
                let lastVerified = try await api.call("DELETE", "/api/backups/\(name)")
                #expect(lastVerified.status == 409, "\(lastVerified)")
                #expect((lastVerified.json["error"] as? String)?.contains("verified") == true, "\(lastVerified)")
                let deleted = try await api.call("DELETE", "/api/backups/\(secondName)")
                #expect(deleted.status == 200, "\(deleted)")
                #expect(deleted.json["message"] as? String == "Backup supprimé avec succès")
                let files = try app.storeFiles()
                #expect(!files.contains(secondName) && !files.contains(secondName + ".json") && files.contains(name))
                let gone = try await api.call("DELETE", "/api/backups/\(secondName)")
                #expect(gone.status == 404, "\(gone)")
                let log = sidecar.stdoutSoFar + sidecar.stderrSoFar
                #expect(log.contains("[API] POST /api/backups/\(name)/restore from 127.0.0.1: restore request \(id) created"))
                #expect(!log.contains(AdminAPITests.token))
            }
        }
    }
}

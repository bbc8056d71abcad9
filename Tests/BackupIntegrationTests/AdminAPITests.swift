import BackupCore
import BackupKit
import BackupStorage
import Foundation
import TestSupport
import Testing

/// The admin API as operators use it: the runbook's `curl` commands against a real `health-sidecar --loop`, a
/// real PostgreSQL, the fixture application, and (for the rollback) a real `restore-job --loop`.
@Suite("Admin API", .serialized)
struct AdminAPITests {
    static let token = "3f1c0a9e5b7d4e2f8a6c1b0d9e7f5a3c"

    /// A sidecar with the API enabled over the fixture's store, probing `url`.
    static func withSidecar<T>(
        _ app: ApplicationFixture, url: String, _ extra: [String: String] = [:],
        _ body: (APIClient, LaunchedProcess) async throws -> T
    ) async throws -> T {
        let process = try app.launch(
            "health-sidecar", ["--loop"],
            environment: [
                "HEALTH_CHECK_URL": url, "HEALTH_CHECK_INTERVAL": "1s", "HEALTH_CHECK_TIMEOUT": "5s",
                "SIDECAR_ID": "api-sidecar", "SIDECAR_BIND": "127.0.0.1", "SIDECAR_PORT": "0",
                "API_ADMIN_TOKEN": token,
            ].merging(extra) { $1 })
        do {
            let client = try APIClient(port: try await process.servedPort(), token: token, folder: app.root.url)
            let result = try await body(client, process)
            _ = await process.terminateAndWait()
            return result
        } catch {
            _ = await process.terminateAndWait()
            throw TestSupportError("\(error)\nsidecar log:\n\(process.stdoutSoFar)\(process.stderrSoFar)")
        }
    }

    static func archives(_ app: ApplicationFixture) throws -> [String] {
        try app.storeFiles().filter { $0.hasPrefix("visual_backup_") && !$0.hasSuffix(".json") }.sorted()
    }

    @Test("the runbook's curls: POST /api/backups takes a backup and answers with it; GET lists it in the runbook's shape")
    func createAndList() async throws {
        try await ApplicationFixture.with(uploadFiles: 12) { app in
            try await FixtureApplication.with(app) { fixture in
                try await Self.withSidecar(app, url: fixture.healthURL) { api, sidecar in
                    let created = try await api.call("POST", "/api/backups")
                    #expect(created.status == 200, "\(created)")
                    let json = created.json
                    #expect(json["success"] as? Bool == true && json["message"] as? String == "Backup créé avec succès")
                    let backup = try #require(json["backup"] as? [String: Any], "\(created)")
                    let filename = try #require(backup["filename"] as? String)
                    #expect(try Self.archives(app) == [filename])
                    let size = try #require(backup["size"] as? Int)
                    let onDisk = try FileManager.default.attributesOfItem(
                        atPath: app.backupDirectory.appendingPathComponent(filename).path)[.size] as? Int
                    #expect(size == onDisk)
                    #expect(backup["sizeFormatted"] as? String == ByteFormat.string(Int64(size)))
                    let createdAt = try #require(backup["created"] as? String)
                    // 2025-01-15T14:30:00.000Z: the name's time, in milliseconds, UTC.
                    #expect(createdAt.count == 24 && createdAt.hasSuffix(".000Z"), "\(createdAt)")
                    #expect(filename.contains(createdAt.prefix(10)))

                    // A labelled one, "the current state for investigation": listed with its label, newest first.
                    let labelled = try await api.call("POST", "/api/backups", body: #"{"label": "before the 2.5 deploy"}"#)
                    #expect(labelled.status == 200, "\(labelled)")
                    let list = try await api.call("GET", "/api/backups")
                    #expect(list.status == 200, "\(list)")
                    #expect(list.json["success"] as? Bool == true && list.json["count"] as? Int == 2)
                    let backups = try #require(list.json["backups"] as? [[String: Any]])
                    #expect(backups.count == 2)
                    #expect(backups.last?["filename"] as? String == filename)
                    #expect(backups.first?["label"] as? String == "before the 2.5 deploy")
                    for entry in backups {
                        for key in ["filename", "size", "sizeFormatted", "created", "age"] {
                            #expect(entry[key] != nil, "\(key) missing in \(entry)")
                        }
                        #expect((entry["age"] as? String)?.hasSuffix("s") == true || (entry["age"] as? String)?.hasSuffix("m") == true)
                        #expect(entry["stores"] as? [String] == ["volume"])
                    }
                    // The label is in the backup's own metadata: the rollback never takes it.
                    let manifest = try ContingencyJSON.decoder().decode(
                        Manifest.self,
                        from: Data(
                            contentsOf: app.backupDirectory.appendingPathComponent(
                                "\(try #require(backups.first?["filename"] as? String)).json")))
                    #expect(manifest.metadata.label == "before the 2.5 deploy")
                    // Every mutating call is logged with who asked; the token never is.
                    let log = sidecar.stdoutSoFar + sidecar.stderrSoFar
                    #expect(log.contains("[API] POST /api/backups from 127.0.0.1: \(filename) created"), "\(log)")
                    #expect(!log.contains(Self.token))
                }
            }
        }
    }

    @Test("?wait=false answers 202 with the request at once; the request ends succeeded naming the backup")
    func background() async throws {
        try await ApplicationFixture.with(uploadFiles: 12) { app in
            try await FixtureApplication.with(app) { fixture in
                try await Self.withSidecar(app, url: fixture.healthURL) { api, _ in
                    let accepted = try await api.call("POST", "/api/backups?wait=false")
                    #expect(accepted.status == 202, "\(accepted)")
                    let id = try #require(accepted.json["request"] as? String)
                    #expect(accepted.headers["location"] == "/api/backups/requests/\(id)")
                    var final: [String: Any] = [:]
                    try await eventually(timeout: .seconds(300), "the background backup to end") {
                        let answer = try await api.call("GET", "/api/backups/requests/\(id)")
                        final = answer.json["request"] as? [String: Any] ?? [:]
                        return ["succeeded", "failed"].contains(final["status"] as? String ?? "")
                    }
                    #expect(final["status"] as? String == "succeeded", "\(final)")
                    #expect(final["intent"] as? String == "backup" && final["requestedBy"] as? String == "api 127.0.0.1")
                    #expect(try Self.archives(app) == [try #require(final["target"] as? String)])
                }
            }
        }
    }

    @Test("while another job holds the store, POST /api/backups waits API_BACKUP_WAIT, then 409 naming the holder")
    func busyStore() async throws {
        try await ApplicationFixture.with(uploadFiles: 12) { app in
            try await FixtureApplication.with(app) { fixture in
                try await Self.withSidecar(app, url: fixture.healthURL, ["API_BACKUP_WAIT": "2s"]) { api, _ in
                    let store = try VolumeStorage(root: app.backupDirectory.path)
                    let lease = try await Lease.acquire("store", storage: store, job: "restore-job", ttl: 60, timeout: 0)
                    let refused = try await api.call("POST", "/api/backups")
                    lease.release()
                    #expect(refused.status == 409, "\(refused)")
                    #expect(refused.json["success"] as? Bool == false)
                    #expect((refused.json["error"] as? String)?.contains("locked by restore-job") == true, "\(refused)")
                    #expect(try Self.archives(app).isEmpty)
                    let after = try await api.call("POST", "/api/backups")
                    #expect(after.status == 200, "\(after)")
                    // backup.prom: the run refused by the lock is not counted, the API's backup is; the sidecar's
                    // deliveries are its registry's, not the file's.
                    let metrics = try PrometheusText.parse(
                        String(
                            contentsOf: app.backupDirectory.appendingPathComponent(".contingency/metrics/backup.prom"),
                            encoding: .utf8))
                    let runs = try #require(metrics.first { $0.name == "contingency_backup_runs_total" })
                    #expect(runs.value(["result": "success"]) == 1 && runs.value(["result": "failure"]) == 0, "\(runs)")
                    #expect(!metrics.contains { $0.name == "contingency_webhook_failures_total" })
                }
            }
        }
    }

    @Test("rollback/auto on a healthy app: rolledBack false, no request, nothing touched")
    func rollbackAutoHealthy() async throws {
        try await ApplicationFixture.with(uploadFiles: 12) { app in
            try await FixtureApplication.with(app) { fixture in
                try await Self.withSidecar(app, url: fixture.healthURL) { api, _ in
                    let answer = try await api.call("POST", "/api/backups/rollback/auto")
                    #expect(answer.status == 200, "\(answer)")
                    #expect(answer.json["success"] as? Bool == true && answer.json["rolledBack"] as? Bool == false)
                    #expect(answer.json["message"] as? String == "Application is healthy, no rollback needed")
                    #expect(try RequestBoard(storage: VolumeStorage(root: app.backupDirectory.path)).list().isEmpty)
                }
            }
        }
    }

    @Test("the brake and the logs name the client: X-Forwarded-For only from TRUSTED_PROXIES, never from anyone else")
    func clientBehindProxy() async throws {
        try await ApplicationFixture.with(uploadFiles: 12) { app in
            try await FixtureApplication.with(app) { fixture in
                // Behind a trusted proxy (this test's curl at 127.0.0.1): one client's guesses hold back that client only.
                try await Self.withSidecar(
                    app, url: fixture.healthURL, ["TRUSTED_PROXIES": "127.0.0.1", "API_TOKEN_ATTEMPTS": "3"]
                ) { api, sidecar in
                    let guesser = try APIClient(port: Int(api.base.split(separator: ":").last!)!, token: "wrong-token-guess-1234", folder: app.root.url)
                    for _ in 0..<3 {
                        let answer = try await guesser.call("GET", "/api/backups", headers: ["X-Forwarded-For: 198.51.100.7"])
                        #expect(answer.status == 401, "\(answer)")
                    }
                    let held = try await api.call("GET", "/api/backups", headers: ["X-Forwarded-For: 198.51.100.7"])
                    #expect(held.status == 429, "\(held)")
                    #expect(held.headers["retry-after"] != nil)
                    let other = try await api.call("GET", "/api/backups", headers: ["X-Forwarded-For: 198.51.100.8"])
                    #expect(other.status == 200, "\(other)")
                    // A client cannot name itself: what it wrote is left of what the proxy appended.
                    let spoofed = try await api.call("GET", "/api/backups", headers: ["X-Forwarded-For: 198.51.100.8, 198.51.100.7"])
                    #expect(spoofed.status == 429, "\(spoofed)")
                    #expect((sidecar.stdoutSoFar + sidecar.stderrSoFar).contains("from 198.51.100.7 refused: missing or wrong X-API-Token"))
                }
                // No trusted proxy: the header is ignored, the peer is the client.
                try await Self.withSidecar(app, url: fixture.healthURL, ["API_TOKEN_ATTEMPTS": "3"]) { api, sidecar in
                    let guesser = try APIClient(port: Int(api.base.split(separator: ":").last!)!, token: "wrong-token-guess-1234", folder: app.root.url)
                    for index in 0..<3 {
                        _ = try await guesser.call("GET", "/api/backups", headers: ["X-Forwarded-For: 203.0.113.\(index)"])
                    }
                    let held = try await api.call("GET", "/api/backups", headers: ["X-Forwarded-For: 198.51.100.9"])
                    #expect(held.status == 429, "\(held)")
                    let log = sidecar.stdoutSoFar + sidecar.stderrSoFar
                    #expect(log.contains("from 127.0.0.1 refused"))
                    // The operator is told once that the header is ignored, and how to trust the proxy.
                    let warning = "X-Forwarded-For from 127.0.0.1, which is not in TRUSTED_PROXIES"
                    #expect(log.components(separatedBy: warning).count - 1 == 1, "\(log)")
                    #expect(log.contains("set TRUSTED_PROXIES=127.0.0.1"))
                }
            }
        }
    }

    @Test("a second ?wait=false while the first backup still waits joins it (one backup, one request); another label is its own")
    func backgroundJoins() async throws {
        try await ApplicationFixture.with(uploadFiles: 12) { app in
            try await FixtureApplication.with(app) { fixture in
                try await Self.withSidecar(app, url: fixture.healthURL, ["API_BACKUP_WAIT": "5m"]) { api, _ in
                    // Another job holds the store: the background backups wait for it.
                    let store = try VolumeStorage(root: app.backupDirectory.path)
                    let lease = try await Lease.acquire("store", storage: store, job: "restore-job", ttl: 60, timeout: 0)
                    let first = try await api.call("POST", "/api/backups?wait=false")
                    let again = try await api.call("POST", "/api/backups?wait=false")
                    let labelled = try await api.call("POST", "/api/backups?wait=false", body: #"{"label": "investigation"}"#)
                    lease.release()
                    #expect(first.status == 202 && again.status == 202 && labelled.status == 202, "\(first) \(again) \(labelled)")
                    let id = try #require(first.json["request"] as? String)
                    #expect(again.json["request"] as? String == id)
                    #expect(again.json["message"] as? String == "Backup déjà en cours en arrière-plan")
                    let other = try #require(labelled.json["request"] as? String)
                    #expect(other != id)
                    for request in [id, other] {
                        try await eventually(timeout: .seconds(300), "request \(request) to end") {
                            let answer = try await api.call("GET", "/api/backups/requests/\(request)")
                            return (answer.json["request"] as? [String: Any])?["status"] as? String == "succeeded"
                        }
                    }
                    let archives = try Self.archives(app)
                    #expect(archives.count == 2, "one backup per label: \(archives)")
                    // Once it has ended, a new call is a new backup.
                    let later = try await api.call("POST", "/api/backups?wait=false")
                    #expect(later.json["request"] as? String != id, "\(later)")
                }
            }
        }
    }
}

import BackupCore
import BackupKit
import BackupStorage
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import TestSupport
import Testing

@testable import HealthSidecar

/// The status page in process (`app.test(.router)`, the probe loop running): `GET /` and its assets are public,
/// carry the security headers and no data even over a store full of backups; `GET /api/status` needs the token
/// and answers the page's fields. The page in a real browser over a real sidecar is in the integration tests
/// (StatusPageBrowserTests).
@Suite("Status page")
struct StatusPageTests {
    static let token = APIGateTests.token
    static let tokenHeader = APIGateTests.tokenHeader

    /// Two ordinary backups (the newer taking 42 s: manifests hold whole seconds), a safety backup newer than both, one dated ahead of the
    /// clock, and two rollback requests (the newer with its steps): what the page must never show without the token.
    static let older = "visual_backup_2025-01-15_14-30-00.tar.gz"
    static let newer = "visual_backup_2025-01-16_14-30-00.tar.gz"
    static let safety = "visual_backup_2025-01-17_09-00-00.tar.gz"
    static let future = "visual_backup_2099-01-01_00-00-00.tar.gz"
    static let rollbackID = "rollback-status-page-2"

    static func manifest(_ fileName: String, size: Int64, duration: TimeInterval?, kind: BackupKind? = nil) throws
        -> Manifest
    {
        let name = try #require(BackupName.parse(fileName: fileName, prefix: "visual_backup"))
        var metadata = BackupMetadata(
            producer: "backup-job 0.1.0", timestamp: String(fileName.dropFirst("visual_backup_".count).prefix(19)),
            created: name.date, database: "visual_db", version: "1.5.0", nodeVersion: nil, pgDumpVersion: "15.18",
            serverVersion: "15.18", hostname: "backup-1", compression: .gzip,
            members: [.init(name: ArchiveLayout.databaseDump, size: 100, sha256: String(repeating: "a", count: 64))],
            uploads: nil, missing: [])
        metadata.kind = kind
        return Manifest(
            metadata: metadata,
            archive: .init(name: fileName, size: size, sha256: String(repeating: "e", count: 64), encrypted: false),
            completed: duration.map { name.date.addingTimeInterval($0) })
    }

    /// Fills `store` with the backups and requests above.
    static func fill(_ store: TemporaryDirectory) throws {
        let manifests = [
            try manifest(older, size: 1_000, duration: 30), try manifest(newer, size: 1_500, duration: 42),
            try manifest(safety, size: 9_000, duration: 5, kind: .safety),
            try manifest(future, size: 7_000, duration: 1),
        ]
        for manifest in manifests {
            try Data(count: Int(manifest.archive.size)).write(to: store.appending(manifest.archive.name))
            try ContingencyJSON.encoder().encode(manifest).write(to: store.appending(manifest.archive.name + ".json"))
        }
        let board = RequestBoard(storage: try VolumeStorage(root: store.path))
        let start = Date(timeIntervalSince1970: 1_765_000_000)
        _ = try board.submit(
            id: "rollback-status-page-1", intent: .rollback, requestedBy: "health-sidecar a", now: start)
        _ = try board.submit(id: rollbackID, intent: .rollback, requestedBy: "health-sidecar b", now: start + 60)
        _ = try board.submit(id: "restore-status-page", intent: .restore, requestedBy: "api", now: start + 120)
        _ = try board.update(rollbackID) { request in
            request.status = .succeeded
            request.target = older
            typealias Step = StoreRequest.Step
            request.steps = [
                Step(name: "stop the application", status: "succeeded", started: start + 61, ended: start + 62),
                Step(
                    name: "restore the database", status: "succeeded", started: start + 62, ended: start + 70,
                    detail: "12 tables"),
            ]
            return true
        }
    }

    /// A sidecar over a filled store probing a scripted endpoint (`statuses`, one per probe), its router in `body`.
    static func withSidecar(
        statuses: [Int] = [200], token: String? = StatusPageTests.token,
        _ body: @escaping @Sendable (any TestClientProtocol, SidecarContext, TemporaryDirectory) async throws -> Void
    ) async throws {
        let store = try TemporaryDirectory()
        defer { store.remove() }
        try fill(store)
        try await FixtureApplication.withScripted(statuses, folder: store) { fixture in
            var configuration = SidecarConfiguration(
                health: HealthConfiguration(url: fixture.healthURL, timeoutSeconds: 5),
                store: StoreConfiguration(backupDirectory: store.path, prefix: "visual_backup"), intervalSeconds: 1,
                failureThreshold: 3, sidecarID: "status-test", bind: "127.0.0.1", port: 0, livenessFile: "")
            configuration.api = APIConfiguration(token: token)
            var logger = Logger(label: "status-test")
            logger.logLevel = .critical
            let context = try SidecarContext(
                configuration: configuration, storage: try VolumeStorage(root: store.path), logger: logger)
            try await buildApplication(context).test(.router) { client in try await body(client, context, store) }
        }
    }

    /// `text` without the SVG namespace's name (an identifier, never fetched).
    static func withoutSVGNamespace(_ text: String) -> String {
        text.replacingOccurrences(of: "http://www.w3.org/2000/svg", with: "")
    }

    static func json(_ buffer: ByteBuffer) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(buffer: buffer)) as? [String: Any])
    }

    @Test(
        "GET / and its assets: public, with a strict CSP, nosniff and no-referrer, and no backup name or request id even when the store has them",
        arguments: [
            ("/", "text/html; charset=utf-8"), ("/status.css", "text/css; charset=utf-8"),
            ("/status.js", "text/javascript; charset=utf-8"), ("/favicon.svg", "image/svg+xml"),
        ])
    func publicAndEmpty(path: String, contentType: String) async throws {
        try await Self.withSidecar { client, context, _ in
            // The store's backups are there for the API to list: the page's files still hold none of them.
            try await client.execute(uri: "/api/backups", method: .get, headers: [Self.tokenHeader: Self.token]) {
                response in
                let body = try Self.json(response.body)
                #expect(body["count"] as? Int == 4)
            }
            try await client.execute(uri: path, method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == contentType)
                let policy = try #require(response.headers[.contentSecurityPolicy])
                for directive in [
                    "default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
                    "frame-ancestors 'none'", "form-action 'none'", "base-uri 'none'",
                ] {
                    #expect(policy.contains(directive), "\(policy)")
                }
                #expect(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval") && !policy.contains("*"))
                #expect(response.headers[.xContentTypeOptions] == "nosniff")
                #expect(response.headers[HTTPField.Name("Referrer-Policy")!] == "no-referrer")
                #expect(response.headers[HTTPField.Name("X-Frame-Options")!] == "DENY")
                let text = String(buffer: response.body)
                #expect(!text.isEmpty)
                for secret in [Self.older, Self.newer, Self.safety, Self.future, Self.rollbackID, "visual_backup_20"] {
                    #expect(!text.contains(secret), "\(path) holds \(secret)")
                }
                #expect(!text.contains(Self.token))
            }
            #expect(context.configuration.api.token != nil)
        }
    }

    @Test("the page loads only its own script and style: no inline script, style element or style attribute, nothing from elsewhere")
    func noInlineCode() async throws {
        try await Self.withSidecar { client, _, _ in
            try await client.execute(uri: "/", method: .get) { response in
                let html = String(buffer: response.body)
                #expect(html.contains(#"<script src="/status.js" defer></script>"#))
                #expect(html.contains(#"<link rel="stylesheet" href="/status.css">"#))
                // Every <script is the one with a src: an inline one would need 'unsafe-inline' or a hash.
                #expect(html.components(separatedBy: "<script").count == 2)
                #expect(!html.contains("<style") && !html.contains(" style="), "\(html)")
                #expect(html.range(of: #"\son[a-z]+\s*="#, options: .regularExpression) == nil, "an inline handler")
                #expect(!Self.withoutSVGNamespace(html).contains("http"), "something from elsewhere")
            }
            try await client.execute(uri: "/status.js", method: .get) { response in
                let script = String(buffer: response.body)
                // Store data (a backup's name, a step's detail) enters the page as text only.
                for markup in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "Function("] {
                    #expect(!script.contains(markup), "status.js uses \(markup)")
                }
                #expect(script.contains("textContent") && script.contains("'X-API-Token': token"))
                #expect(script.contains("sessionStorage") && !script.contains("localStorage"))
                #expect(!Self.withoutSVGNamespace(script).contains("http"), "something from elsewhere")
            }
            try await client.execute(uri: "/status.css", method: .get) { response in
                let style = String(buffer: response.body)
                #expect(!style.contains("@import") && !style.contains("url(") && !style.contains("@font-face"))
            }
        }
    }

    @Test("GET /api/status: 401 without the token or with a wrong one, 503 with the API disabled; never any data")
    func statusNeedsToken() async throws {
        try await Self.withSidecar { client, _, _ in
            for headers: HTTPFields in [[:], [Self.tokenHeader: "wrong"], [Self.tokenHeader: Self.token + "x"]] {
                try await client.execute(uri: "/api/status", method: .get, headers: headers) { response in
                    #expect(response.status == .unauthorized)
                    let text = String(buffer: response.body)
                    #expect(!text.contains("probes") && !text.contains(Self.rollbackID) && !text.contains(Self.newer))
                }
            }
            try await client.execute(uri: "/api/status", method: .post, headers: [Self.tokenHeader: Self.token]) {
                #expect($0.status == .methodNotAllowed)
                #expect($0.headers[.allow] == "GET")
            }
        }
        try await Self.withSidecar(token: nil) { client, _, _ in
            try await client.execute(uri: "/api/status", method: .get, headers: [Self.tokenHeader: Self.token]) {
                response in
                #expect(response.status == .serviceUnavailable)
                let body = try Self.json(response.body)
                #expect((body["error"] as? String)?.hasPrefix("API disabled") == true)
            }
            // The page itself is still served: it says how to enable the API.
            try await client.execute(uri: "/", method: .get) { #expect($0.status == .ok) }
        }
    }

    @Test("GET /api/status: the app's health and its probes (healthy and not, with status and time), the newest rollback with its steps, free disk against twice the last ordinary backup")
    func statusFields() async throws {
        try await Self.withSidecar(statuses: [200, 503, 200]) { client, context, store in
            // The history takes a probe at once; the heartbeat (the app's state) once the round's store writes end.
            try await eventually(timeout: .seconds(90), "three probes, the last one in the heartbeat") {
                let probes = context.status.probes
                return probes.count >= 3 && context.status.snapshot.heartbeat?.lastProbe == probes.last?.at
            }
            try await client.execute(uri: "/api/status", method: .get, headers: [Self.tokenHeader: Self.token]) {
                response in
                #expect(response.status == .ok)
                #expect(response.headers[.cacheControl] == "no-store")
                let body = try Self.json(response.body)
                #expect(body["success"] as? Bool == true && body["sidecar"] as? String == "status-test")
                #expect(body["probeHistoryLimit"] as? Int == 100)
                #expect((body["problems"] as? [Any])?.isEmpty == true, "\(body)")

                let app = try #require(body["app"] as? [String: Any])
                #expect(app["state"] as? String == "healthy", "\(app)")
                #expect(app["failureThreshold"] as? Int == 3 && app["intervalSeconds"] as? Int == 1)
                #expect((app["url"] as? String)?.hasPrefix("http://127.0.0.1:") == true)
                #expect(app["lastProbe"] is String && app["lastHealthy"] is String)

                let probes = try #require(body["probes"] as? [[String: Any]])
                #expect(Array(probes.prefix(3).map { $0["status"] as? Int }) == [200, 503, 200], "\(probes)")
                #expect(Array(probes.prefix(3).map { $0["healthy"] as? Bool }) == [true, false, true])
                #expect(probes[1]["error"] as? String == "HTTP 503" && probes[0]["error"] == nil)
                let times = probes.compactMap { $0["at"] as? String }
                #expect(times.count == probes.count && times == times.sorted(), "oldest first: \(times)")
                #expect(probes.allSatisfy { ($0["durationSeconds"] as? Double).map { $0 >= 0 && $0 < 5 } == true })

                let rollback = try #require(body["lastRollback"] as? [String: Any])
                #expect(rollback["id"] as? String == Self.rollbackID && rollback["status"] as? String == "succeeded")
                #expect(rollback["target"] as? String == Self.older)
                let steps = try #require(rollback["steps"] as? [[String: Any]])
                #expect(steps.map { $0["name"] as? String } == ["stop the application", "restore the database"])
                #expect(steps[1]["detail"] as? String == "12 tables" && steps[1]["ended"] is String)

                // The newest ordinary, trusted backup not dated ahead: not the safety one, not the one of 2099.
                let disk = try #require(body["disk"] as? [String: Any])
                let free = try #require(try VolumeStorage(root: store.path).availableBytes())
                #expect(disk["store"] as? String == "volume")
                #expect(disk["lastBackup"] as? String == Self.newer && disk["lastBackupSize"] as? Int == 1_500)
                #expect(disk["neededBytes"] as? Int == 3_000)
                let reported = try #require(disk["freeBytes"] as? Int)
                #expect(abs(Int64(reported) - free) < 256 << 20, "\(reported) against \(free)")
                #expect(disk["enough"] as? Bool == (Int64(reported) >= 3_000))
            }
        }
    }

    @Test("GET /api/backups adds the duration (manifest's completed - created) and the signature's verdict, keeping the runbook's fields")
    func backupFields() async throws {
        try await Self.withSidecar { client, _, _ in
            try await client.execute(uri: "/api/backups", method: .get, headers: [Self.tokenHeader: Self.token]) {
                response in
                let backups = try #require(try Self.json(response.body)["backups"] as? [[String: Any]])
                let byName = Dictionary(uniqueKeysWithValues: backups.map { ($0["filename"] as? String ?? "", $0) })
                #expect(byName[Self.newer]?["durationSeconds"] as? Double == 42)
                #expect(byName[Self.older]?["durationSeconds"] as? Double == 30)
                #expect(byName[Self.safety]?["kind"] as? String == "safety")
                for backup in backups {
                    for key in ["filename", "size", "sizeFormatted", "created", "age", "encrypted", "signed", "kind"] {
                        #expect(backup[key] != nil, "\(key) missing in \(backup)")
                    }
                    // No BACKUP_VERIFY_KEYS here: nothing is checked, and the API says so.
                    #expect(backup["authenticity"] as? String == "notChecked")
                    #expect((backup["authenticityDetail"] as? String)?.contains("no BACKUP_VERIFY_KEYS") == true)
                    #expect(backup["verified"] == nil)
                }
            }
        }
    }

    @Test("the probe history keeps the last 100 probes, oldest first")
    func history() {
        var history = ProbeHistory()
        let start = Date(timeIntervalSince1970: 1_765_000_000)
        for index in 0..<130 {
            history.append(
                ProbeRecord(at: start + Double(index), healthy: index % 2 == 0, status: 200, error: nil, seconds: 0.01))
        }
        #expect(history.records.count == ProbeHistory.limit)
        #expect(history.records.first?.at == start + 30 && history.records.last?.at == start + 129)
    }
}

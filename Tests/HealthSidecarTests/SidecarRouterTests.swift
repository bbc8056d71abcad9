import BackupCore
import BackupKit
import BackupStorage
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import TestSupport
import Testing

@testable import HealthSidecar

/// The sidecar application in process, built by the same `buildApplication` the executable runs, with its
/// services (the probe loop) running: `/healthz`'s shape and status, against a real volume store and a scripted
/// endpoint in its own process.
@Suite("Sidecar routes")
struct SidecarRouterTests {
    static func context(store: TemporaryDirectory, url: String, staleAfter: Int = 3600) throws -> SidecarContext {
        let configuration = SidecarConfiguration(
            health: HealthConfiguration(url: url, timeoutSeconds: 5),
            store: StoreConfiguration(backupDirectory: store.path, prefix: "visual_backup"), intervalSeconds: 1,
            failureThreshold: 3, sidecarID: "in-process", bind: "127.0.0.1", port: 0, livenessFile: "",
            backupStaleAfterSeconds: staleAfter)
        var logger = Logger(label: "sidecar-test")
        logger.logLevel = .warning
        return try SidecarContext(
            configuration: configuration, storage: try VolumeStorage(root: store.path), logger: logger)
    }

    /// Decodes `/healthz`'s body.
    static func decode(_ buffer: ByteBuffer) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(buffer: buffer)) as? [String: Any])
    }

    @Test("before the probe loop runs, /healthz says error: the loop is not running")
    func notRunning() async throws {
        let store = try TemporaryDirectory()
        defer { store.remove() }
        let context = try Self.context(store: store, url: "http://127.0.0.1:9/healthz")
        let body = await SidecarHealth.body(context)
        #expect(body.status == "error" && body.reason == "the probe loop is not running")
        #expect(await SidecarHealth.response(context).status == .serviceUnavailable)
    }

    @Test("/healthz: 200 with the app's last result and the newest complete backup, stale past BACKUP_STALE_AFTER")
    func healthy() async throws {
        let store = try TemporaryDirectory()
        defer { store.remove() }
        // An old complete backup, a newer one without its manifest (interrupted), one dated in the future.
        for name in [
            "visual_backup_2020-01-01_00-00-00.tar.gz", "visual_backup_2020-01-01_00-00-00.tar.gz.json",
            "visual_backup_2021-01-01_00-00-00.tar.gz", "visual_backup_2099-01-01_00-00-00.tar.gz",
            "visual_backup_2099-01-01_00-00-00.tar.gz.json",
        ] {
            try Data("{}".utf8).write(to: store.appending(name))
        }
        try await FixtureApplication.withScripted([200], folder: store) { fixture in
            let context = try Self.context(store: store, url: fixture.healthURL)
            let app = buildApplication(context)
            try await app.test(.router) { client in
                try await eventually(timeout: .seconds(90), "a first probe") {
                    context.status.snapshot.heartbeat?.lastProbe != nil
                }
                try await client.execute(uri: "/healthz", method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(response.headers[.contentType] == "application/json")
                    let body = try Self.decode(response.body)
                    #expect(
                        body["status"] as? String == "ok" && body["timestamp"] is String
                            && body["sidecar"] as? String == "in-process")
                    let appState = try #require(body["app"] as? [String: Any])
                    #expect((appState["lastResult"] as? [String: Any])?["status"] as? Int == 200)
                    #expect(appState["failureThreshold"] as? Int == 3)
                    let newest = try #require((body["backups"] as? [String: Any])?["newest"] as? [String: Any])
                    #expect(newest["name"] as? String == "visual_backup_2020-01-01_00-00-00.tar.gz")
                    #expect(newest["stale"] as? Bool == true)
                    #expect((newest["ageSeconds"] as? Int ?? 0) > 365 * 86400)
                }
            }
        }
    }

    @Test("/healthz: 503 with the reason while the heartbeat cannot be written; the app's state is still reported")
    func storeFailure() async throws {
        let store = try TemporaryDirectory()
        defer { store.remove() }
        // A file where the heartbeats' folder goes: the write fails whoever runs the test, root included.
        try FileManager.default.createDirectory(
            at: store.appending(".contingency/state"), withIntermediateDirectories: true)
        try Data().write(to: store.appending(HealthHeartbeat.folder))
        try await FixtureApplication.withScripted([200], folder: store) { fixture in
            let context = try Self.context(store: store, url: fixture.healthURL)
            let app = buildApplication(context)
            try await app.test(.router) { client in
                try await eventually(timeout: .seconds(90), "a failed store write") {
                    context.status.snapshot.storeError != nil
                }
                try await client.execute(uri: "/healthz", method: .get) { response in
                    #expect(response.status == .serviceUnavailable)
                    let body = try Self.decode(response.body)
                    #expect(body["status"] as? String == "error")
                    #expect((body["reason"] as? String)?.contains("cannot write the heartbeat") == true, "\(body)")
                    #expect(
                        ((body["app"] as? [String: Any])?["lastResult"] as? [String: Any])?["healthy"] as? Bool == true)
                }
            }
        }
    }
}

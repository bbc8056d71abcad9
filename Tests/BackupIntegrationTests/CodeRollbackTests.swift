import BackupCore
import BackupStorage
import Foundation
import Testing
import TestSupport

/// Code rolls back with the data: the application is a real container (podman, through its Docker-compatible
/// API), healthy on image v1 and broken on image v2. A backup records the container's image; a failed deploy
/// moves it to v2 and drops a table; the rollback restores the database and recreates the container on v1.
@Suite(.serialized)
struct CodeRollbackTests {
    static let label = "contingency.app=coderollback"

    /// A web server answering /healthz only on image v1 (busybox httpd on the host's network).
    static func runWeb(_ podman: PodmanService, image: String, port: Int) async throws {
        let script = #"/bin/busybox mkdir -p /www; if [ "$(cat /version)" = v1 ]; then echo ok > /www/healthz; fi; exec /bin/busybox httpd -f -p 127.0.0.1:$PORT -h /www"#
        try await podman.podman(
            "run", "-d", "--name", "web", "--label", label, "--network", "host", "-e", "PORT=\(port)", "-e", "KEPT=yes",
            image, "/bin/sh", "-c", script)
    }

    @Test("A failed deploy of a new image: the rollback restores the data and recreates the container on the recorded image")
    func imageRolledBackWithTheData() async throws {
        try await PodmanService.with { podman in
            try await ApplicationFixture.with(uploadFiles: 20) { app in
                let v1 = try await podman.image(tag: "localhost/web:v1", version: "v1")
                let v2 = try await podman.image(tag: "localhost/web:v2", version: "v2")
                let port = try FreePort.pick()
                let scenario = try RollbackTests.Scenario(app)
                let health = "http://127.0.0.1:\(port)/healthz"
                let docker = [
                    "APP_CONTROL": "docker", "APP_CONTAINER_LABEL": Self.label, "DOCKER_HOST": podman.dockerHost,
                    "HEALTH_CHECK_URL": health, "ROLLBACK_DATA_ONLY": "false",
                ]
                func status() async -> Int? { await httpStatus(health, maxTime: 3) }
                do {
                    try await Self.runWeb(podman, image: v1, port: port)
                    try await eventually("the app on v1 is healthy") { await status() == 200 }
                    try scenario.launchSidecar("sidecar-a", docker)

                    let backup = try await app.run("backup-job", environment: docker)
                    try #require(backup.succeeded, "\(backup.stderr)")
                    let manifest = try #require(try scenario.manifests().first)
                    let recorded = try #require(manifest.metadata.deployment?.containers?.first)
                    #expect(recorded.name == "web")
                    #expect(recorded.imageID == v1, "the backup records the image the app ran")
                    try await eventually(timeout: .seconds(20), "a healthy probe after the backup") {
                        (try scenario.lastHealthy() ?? .distantPast) > manifest.metadata.created
                    }
                    let before = try await app.server.snapshot(database: app.database)
                    _ = try scenario.launchRunner(docker)

                    // The failed deploy: image v2 (no /healthz) and a forward migration that drops a table. The
                    // sidecar is paused meanwhile: its probes must see the deployed v2, never the moment between
                    // the two containers (the rollback would then find no container named web and, rightly, stop).
                    let sidecar = try #require(scenario.sidecars.first).pid
                    #expect(kill(sidecar, SIGSTOP) == 0)
                    defer { kill(sidecar, SIGCONT) }
                    try await podman.podman("rm", "--force", "--time", "0", "web")
                    try await Self.runWeb(podman, image: v2, port: port)
                    try await app.server.psql("DROP TABLE posts CASCADE", database: app.database)
                    try await eventually("the app on v2 answers 404") { await status() == 404 }
                    #expect(kill(sidecar, SIGCONT) == 0)

                    try await eventually(timeout: .seconds(120), "the rollback ends") {
                        try scenario.requests().contains { $0.status.isFinished }
                    }
                    let request = try #require(try scenario.requests().first)
                    #expect(request.status == .succeeded, "\(request.reason ?? "")\n\(scenario.logs)")
                    #expect(request.reason?.contains("docker: web on") == true, "the reason names the version: \(request.reason ?? "")")
                    #expect(request.steps?.contains { $0.name.hasPrefix("start the application on docker: web") && $0.status == "succeeded" } == true)
                    #expect(try await podman.inspect("web", "{{.Image}}").hasSuffix(String(v1.dropFirst("sha256:".count))), "recreated on v1")
                    #expect(try await podman.inspect("web", "{{range .Config.Env}}{{.}} {{end}}").contains("KEPT=yes"), "with its configuration")
                    #expect(await status() == 200)
                    #expect(try await app.server.snapshot(database: app.database) == before)
                    let safety = try #require(try scenario.manifests().first { $0.metadata.kind == .safety })
                    #expect(safety.metadata.members.contains { $0.name == ArchiveLayout.databaseDump })
                    #expect(safety.metadata.deployment?.containers?.first?.imageID == v2, "the safety backup records the broken version")
                } catch {
                    print(scenario.logs)
                    await scenario.tearDown()
                    throw error
                }
                await scenario.tearDown()
            }
        }
    }

    @Test("A version that cannot be restored stops the rollback before anything is touched unless ROLLBACK_DATA_ONLY=true")
    func versionThatCannotBeRestored() async throws {
        try await ApplicationFixture.with(uploadFiles: 20) { app in
            let scenario = try RollbackTests.Scenario(app)
            do {
                try await scenario.managed.control("start")
                #expect(try await app.run("backup-job").succeeded)
                try await app.server.psql("DROP TABLE users CASCADE", database: app.database)
                try RollbackRunnerTests.submit(scenario, lastHealthy: Date().addingTimeInterval(1))
                // APP_CONTROL=command records no version: with ROLLBACK_CODE on and no data-only, nothing happens.
                _ = try scenario.launchRunner(["ROLLBACK_DATA_ONLY": "false"])
                try await eventually(timeout: .seconds(60), "the request is ended") { try scenario.requests().first?.status.isFinished == true }
                let request = try #require(try scenario.requests().first)
                #expect(request.status == .failed)
                #expect(request.reason?.contains("cannot be restored") == true, "\(request.reason ?? "")")
                #expect(request.steps?.contains { $0.name == "restore the version" && $0.detail?.contains("ROLLBACK_DATA_ONLY=true") == true } == true)
                #expect(scenario.managed.events().filter { $0 == "app stopped" }.isEmpty, "nothing was touched")
            } catch {
                print(scenario.logs)
                await scenario.tearDown()
                throw error
            }
            await scenario.tearDown()
        }
    }
}

import Foundation
import Testing
import TestSupport

/// `health-sidecar` once: one probe of a real HTTP server on 127.0.0.1, exit 0 when healthy, 1 when not.
@Suite("Health probe")
struct HealthProbeTests {
    /// Python's http.server serving a folder with a `healthz` file; stopped when the body ends.
    func withHTTPServer(_ body: (Int) async throws -> Void) async throws {
        let folder = try TemporaryDirectory()
        try Data("{\"status\":\"ok\"}".utf8).write(to: folder.appending("healthz"))
        let port = try FreePort.pick()
        let server = try ProcessRunner.launch(
            "python3", ["-m", "http.server", "--bind", "127.0.0.1", "--directory", folder.path, String(port)])
        defer { server.kill(SIGKILL) }
        try await eventually("the HTTP server to listen") { FreePort.isAcceptingConnections(port: port) }
        try await body(port)
    }

    @Test("HTTP 200 is healthy; 404, a closed port and a server that never answers are not")
    func probe() async throws {
        try await withHTTPServer { port in
            let healthy = try await ProcessRunner.run(
                ApplicationFixture.executable("health-sidecar"), environment: ["HEALTH_CHECK_URL": "http://127.0.0.1:\(port)/healthz"])
            #expect(healthy.status == 0, "\(healthy)")
            #expect(healthy.stdout.contains("[Health] Application is healthy"))

            let missing = try await ProcessRunner.run(
                ApplicationFixture.executable("health-sidecar"), ["--url", "http://127.0.0.1:\(port)/missing?token=secret"])
            #expect(missing.status == 1)
            #expect(missing.stderr.contains("HTTP 404"), "\(missing.stderr)")
            #expect(!missing.stderr.contains("secret"))
        }
        let closed = try FreePort.pick()
        let refused = try await ProcessRunner.run(
            ApplicationFixture.executable("health-sidecar"), environment: ["HEALTH_CHECK_URL": "http://127.0.0.1:\(closed)/healthz"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("Application is unhealthy"), "\(refused.stderr)")

        // A socket that accepts connections but never answers: the timeout decides.
        let silentPort = try FreePort.pick()
        let silent = try ProcessRunner.launch(
            "python3", ["-c", "import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', \(silentPort))); s.listen(5); time.sleep(300)"])
        defer { silent.kill(SIGKILL) }
        try await eventually("the silent server to listen") { FreePort.isAcceptingConnections(port: silentPort) }
        let slow = try await ProcessRunner.run(
            ApplicationFixture.executable("health-sidecar"),
            environment: ["HEALTH_CHECK_URL": "http://127.0.0.1:\(silentPort)/healthz", "HEALTH_CHECK_TIMEOUT": "1s"])
        #expect(slow.status == 1)
        #expect(slow.stderr.contains("Timeout") || slow.stderr.contains("timed out"), "\(slow.stderr)")
    }
}

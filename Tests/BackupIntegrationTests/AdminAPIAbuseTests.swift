import BackupCore
import BackupKit
import BackupStorage
import Foundation
import TestSupport
import Testing

/// The admin API against an attacker and an operator's bad day, end to end: a real `health-sidecar --loop`, real
/// curl, real backups of the fixture application. Each test is a way in or a way to lose track that must stay
/// shut.
@Suite("Admin API: attacks and bad days", .serialized)
struct AdminAPIAbuseTests {
    @Test("a doubled slash (curl sends it as written) never gets past the token: no listing, no delete, no pin")
    func doubledSlashes() async throws {
        try await ApplicationFixture.with(uploadFiles: 4) { app in
            try await FixtureApplication.with(app) { fixture in
                try await AdminAPITests.withSidecar(app, url: fixture.healthURL) { api, sidecar in
                    let made = try await api.call("POST", "/api/backups")
                    let name = try #require((made.json["backup"] as? [String: Any])?["filename"] as? String, "\(made)")
                    let before = try AdminAPITests.archives(app)
                    let port = try #require(Int(api.base.split(separator: ":").last ?? ""))
                    let anyone = try APIClient(port: port, token: nil, folder: app.root.url)
                    for (method, path) in [
                        ("GET", "//api/backups"), ("DELETE", "//api/backups/\(name)"),
                        ("POST", "//api/backups/\(name)/pin"),
                        ("POST", "///api//backups/\(name)/restore"), ("POST", "//api/backups/cleanup"),
                    ] {
                        let answer = try await anyone.call(method, path)
                        #expect(answer.status == 401, "\(method) \(path) without a token: \(answer)")
                        #expect(answer.json["success"] as? Bool == false, "\(method) \(path): \(answer)")
                        #expect(
                            answer.json["backups"] == nil && answer.json["pin"] == nil, "\(method) \(path): \(answer)")
                    }
                    #expect(try AdminAPITests.archives(app) == before)
                    let pins = try await api.call("GET", "/api/backups")
                    let listed = try #require(pins.json["backups"] as? [[String: Any]], "\(pins)")
                    #expect(listed.map { $0["pinned"] as? Bool } == [false], "\(listed)")
                    #expect(!(sidecar.stdoutSoFar + sidecar.stderrSoFar).contains("Deleted \(name)"))
                }
            }
        }
    }

    @Test("a ?wait=false backup whose sidecar stopped before it ended ends failed (interrupted), never running forever")
    func abandonedBackgroundBackup() async throws {
        try await ApplicationFixture.with(uploadFiles: 4) { app in
            try await FixtureApplication.with(app) { fixture in
                // Another job holds the store: the background backup waits for it, and its sidecar is stopped
                // meanwhile (a rolling update, an OOM kill).
                let store = try VolumeStorage(root: app.backupDirectory.path)
                let busy = try await Lease.acquire("store", storage: store, job: "restore-job", ttl: 60, timeout: 0)
                defer { busy.release() }
                let id = try await AdminAPITests.withSidecar(app, url: fixture.healthURL, ["API_BACKUP_WAIT": "10m"]) {
                    api, _ in
                    let accepted = try await api.call("POST", "/api/backups?wait=false")
                    #expect(accepted.status == 202, "\(accepted)")
                    let id = try #require(accepted.json["request"] as? String, "\(accepted)")
                    let running = try await api.call("GET", "/api/backups/requests/\(id)")
                    #expect(
                        (running.json["request"] as? [String: Any])?["status"] as? String == "running", "\(running)")
                    return id
                }
                busy.release()
                // A new sidecar (the restarted pod) answers for the request the stopped one left.
                try await AdminAPITests.withSidecar(app, url: fixture.healthURL) { api, _ in
                    var final: [String: Any] = [:]
                    try await eventually(
                        timeout: .seconds(60), pollInterval: .milliseconds(500), "the abandoned request to end"
                    ) {
                        let answer = try await api.call("GET", "/api/backups/requests/\(id)")
                        final = answer.json["request"] as? [String: Any] ?? [:]
                        return final["finished"] as? Bool == true
                    }
                    #expect(final["status"] as? String == "failed", "\(final)")
                    #expect((final["reason"] as? String)?.contains("interrupted") == true, "\(final)")
                }
            }
        }
    }
}

extension AdminAPIAbuseTests {
    @Test("a client that never finishes its request is cut off (idle timeout): slow clients cannot hold the sockets")
    func idleConnection() async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            try await AdminAPITests.withSidecar(
                app, url: "http://127.0.0.1:9/healthz", ["HEALTH_CHECK_FAILURES": "1000"]
            ) { api, sidecar in
                let port = try #require(api.base.split(separator: ":").last.map(String.init))
                // Half a request line and a header, then silence, as slowloris sends them; the server's idle
                // timeout is one minute, this waits up to three.
                let script = """
                    import socket, sys
                    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
                    s.sendall(b"POST /api/backups HTTP/1.1\\r\\nHost: sidecar\\r\\nX-API-")
                    s.settimeout(180)
                    try:
                        print("closed" if s.recv(1024) == b"" else "answered")
                    except socket.timeout:
                        print("still open")
                    """
                let result = try await ProcessRunner.run("python3", ["-c", script, port], timeout: .seconds(240))
                #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "closed", "\(result)")
                let health = try await api.call("GET", "/healthz")
                #expect(health.status == 200 || health.status == 503, "\(health)")
                #expect(sidecar.isRunning)
            }
        }
    }
}

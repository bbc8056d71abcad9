import BackupCore
import BackupStorage
import Foundation
import TestSupport
import Testing

/// The admin API against input meant to hurt: hostile backup names, headers and bodies, and a property-based
/// fuzzer (schemathesis) holding the server to docs/openapi.yaml. Whatever comes in: a 4xx (or a documented
/// answer), never a 500, and every backup and the database as they were.
@Suite("Admin API: hostile input", .serialized)
struct AdminAPIHostileTests {
    /// The store's files with their content hashes, and the database's content: what no request may change.
    static func state(_ app: ApplicationFixture) async throws -> (files: [String: Int], snapshot: ApplicationSnapshot) {
        var files: [String: Int] = [:]
        for name in try app.storeFiles() where name.hasPrefix("visual_backup_") {
            files[name] = try Data(contentsOf: app.backupDirectory.appendingPathComponent(name)).hashValue
        }
        return (files, try await app.snapshot())
    }

    @Test("hostile names, headers and bodies: all 4xx with a JSON error, every backup and the database intact")
    func hostileTable() async throws {
        try await ApplicationFixture.with(uploadFiles: 12) { app in
            try await FixtureApplication.with(app) { fixture in
                try await AdminAPITests.withSidecar(app, url: fixture.healthURL) { api, sidecar in
                    let made = try await api.call("POST", "/api/backups")
                    let name = try #require((made.json["backup"] as? [String: Any])?["filename"] as? String, "\(made)")
                    // Something outside the store that a path escape would reach.
                    let outside = app.root.appending("outside.txt")
                    try Data("keep me".utf8).write(to: outside)
                    let before = try await Self.state(app)

                    let names = [
                        "..", ".", "%2e%2e", "..%2F..%2Foutside.txt", "%2e%2e%2f%2e%2e%2foutside.txt",
                        "..%252F..%252Foutside.txt", "\(name)%2F..%2F..%2Foutside.txt", "\(name)%00.json",
                        "\(name).json", "%00", "other_backup_2025-01-15_14-30-00.tar.gz",
                        "visual_backup_2025-13-45_99-99-99.tar.gz", "visual_backup_2025-01-15_14-30-00.tar.gz%0A",
                        "visual_backup_2025-01-15_14-30-00.tar", ".contingency", "%2Fetc%2Fpasswd",
                        "visual_backup_2025-01-15_14-30-00.tar.gz%E2%80%A4", String(repeating: "a", count: 300),
                        "visual_backup_2025-01-15_14-30-00%2Etar%2Egz%2F",
                    ]
                    for hostile in names {
                        for (method, suffix) in [("DELETE", ""), ("POST", "/restore"), ("POST", "/pin"), ("POST", "/unpin")] {
                            let answer = try await api.call(method, "/api/backups/\(hostile)\(suffix)")
                            #expect([400, 404, 405].contains(answer.status), "\(method) \(hostile)\(suffix): \(answer)")
                            #expect(answer.json["success"] as? Bool == false, "\(method) \(hostile)\(suffix): \(answer)")
                            #expect(!answer.text.contains("Error Domain") && !answer.text.contains("Swift."), "\(answer)")
                        }
                    }
                    let bodies: [(String, String, String?, Int)] = [
                        ("/api/backups/cleanup", #"{"retentionDays": 0}"#, "application/json", 400),
                        ("/api/backups/cleanup", #"{"retentionDays": -5}"#, "application/json", 400),
                        ("/api/backups/cleanup", #"{"retentionDays": "30"}"#, "application/json", 400),
                        ("/api/backups/cleanup", #"{"retentionDays": 1e309}"#, "application/json", 400),
                        ("/api/backups/cleanup", #"{"retentionDays": 30.5}"#, "application/json", 400),
                        ("/api/backups/cleanup", #"{"retentionDays": 99999999999999999999}"#, "application/json", 400),
                        ("/api/backups/cleanup", #"{"retentionDays": null}"#, "application/json", 400),
                        ("/api/backups/cleanup", #"{"retentionDay": 90}"#, "application/json", 400),
                        ("/api/backups/cleanup", #"{"retentionDays": 1, "dryRun": true}"#, "application/json", 200),
                        ("/api/backups/cleanup", "retentionDays=0", nil, 400),
                        ("/api/backups/cleanup", String(repeating: "[", count: 100_000), "application/json", 413),
                        ("/api/backups/cleanup", String(repeating: "[", count: 5_000), "application/json", 400),
                        ("/api/backups/cleanup", "\u{FEFF}{\"retentionDays\": 0}", "application/json", 400),
                        ("/api/backups", #"{"label": "\u0000"}"#, "application/json", 400),
                        ("/api/backups", "{\"label\": \"" + String(repeating: "x", count: 201) + "\"}", "application/json", 400),
                        ("/api/backups/\(name)/restore", #"{"parts": ["database", "../../etc"]}"#, "application/json", 400),
                        ("/api/backups/\(name)/restore", #"{"parts": []}"#, "application/json", 400),
                        ("/api/backups/\(name)/restore", #"{"code": "yes"}"#, "application/json", 400),
                    ]
                    for (path, body, type, status) in bodies {
                        let answer = try await api.call("POST", path, body: body, contentType: type)
                        #expect(answer.status == status, "\(path) \(body.prefix(60)): \(answer)")
                        if status != 200 { #expect(answer.json["success"] as? Bool == false, "\(answer)") }
                    }
                    // Invalid UTF-8 in a body.
                    let invalid = try await api.call("POST", "/api/backups/cleanup", body: "{\"retentionDays\": 3\u{0}", contentType: "application/json")
                    #expect(invalid.status == 400, "\(invalid)")
                    for headers in [
                        ["X-Forwarded-For: 1.2.3.4, <script>, \u{7f}"], ["X-API-Token: \(AdminAPITests.token)\u{0b}"],
                        ["Content-Length: 5"], ["X-Forwarded-For: " + String(repeating: "9.9.9.9,", count: 500)],
                    ] {
                        let answer = try await api.call("GET", "/api/backups", headers: headers)
                        #expect([200, 400, 401].contains(answer.status), "\(headers): \(answer)")
                    }
                    let after = try await Self.state(app)
                    #expect(after.files == before.files, "no backup changed")
                    #expect(after.snapshot == before.snapshot, "the database and the uploads as they were")
                    #expect(try String(contentsOf: outside, encoding: .utf8) == "keep me")
                    #expect(sidecar.isRunning)
                    #expect(!(sidecar.stdoutSoFar + sidecar.stderrSoFar).contains(AdminAPITests.token))
                }
            }
        }
    }

    @Test("schemathesis holds the server to docs/openapi.yaml: no 5xx it does not document, every answer matches its schema")
    func openAPIFuzz() async throws {
        try await ApplicationFixture.with(uploadFiles: 12) { app in
            try await FixtureApplication.with(app) { fixture in
                try await AdminAPITests.withSidecar(
                    app, url: fixture.healthURL, ["API_TOKEN_ATTEMPTS": "1000000", "API_BACKUP_WAIT": "60s"]
                ) { api, sidecar in
                    let made = try await api.call("POST", "/api/backups")
                    #expect(made.status == 200, "\(made)")
                    let before = try await Self.state(app)
                    // The token reaches schemathesis through its environment and a config file, never its argv.
                    let config = app.root.appending("schemathesis.toml")
                    try Data(#"headers = { "X-API-Token" = "${CONTINGENCY_API_TOKEN}" }"#.utf8).write(to: config)
                    let document = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                        .deletingLastPathComponent().appendingPathComponent("docs/openapi.yaml")
                    // Through the python3 that installed it (scripts/install-deps.sh): its script's folder may not be
                    // on PATH (/usr/local/bin in a container, ~/.local/bin for a user).
                    let launcher = "import sys; from schemathesis.cli import schemathesis; sys.argv[0] = 'schemathesis'; sys.exit(schemathesis())"
                    let result = try await ProcessRunner.run(
                        "python3",
                        [
                            "-c", launcher,
                            // not_a_server_error fails any 5xx, documented or not: the API's 503s (no runner, a
                            // disabled API) are answers; status_code_conformance still fails any undocumented status.
                            "--config-file", config.path, "run", document.path, "--url", api.base, "--checks", "all",
                            "--exclude-checks", "not_a_server_error",
                            "--max-examples", "12", "--seed", "20261206", "--no-color",
                        ],
                        environment: ["CONTINGENCY_API_TOKEN": AdminAPITests.token, "NO_COLOR": "1"],
                        // Its cache (.schemathesis/) goes to the test's folder, not the repository.
                        workingDirectory: app.root.url,
                        timeout: .seconds(900))
                    #expect(result.succeeded, "\(result.stdout.suffix(8000))\n\(result.stderr.suffix(2000))")
                    #expect(result.stdout.contains("Tested: 12"), "\(result.stdout.suffix(3000))")
                    #expect(!result.stdout.contains("[500]"), "\(result.stdout.suffix(8000))")
                    // It may take, pin and delete backups (it follows the list's names, as it should); it can never
                    // restore one (no runner runs), so the database and the uploads are as they were.
                    let after = try await Self.state(app)
                    #expect(after.snapshot == before.snapshot)
                    #expect(sidecar.isRunning)
                }
            }
        }
    }
}

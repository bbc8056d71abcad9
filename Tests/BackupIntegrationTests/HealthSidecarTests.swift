import BackupCore
import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `health-sidecar --loop` as the real process, against the fixture application (its own process, healthy
/// while its table and its uploads are there) or a scripted endpoint, with 1 s probes and a real volume store.
// One test at a time: each runs PostgreSQL, the fixture app (a psql per probe) and up to five sidecars probing every
// second; together they would starve the rest of the suite on two cores.
@Suite("Health sidecar", .serialized)
struct HealthSidecarTests {
    /// One running sidecar: its process and the port of its own `/healthz`.
    struct Sidecar {
        let process: LaunchedProcess
        let port: Int
        var output: String { process.stdoutSoFar + process.stderrSoFar }

        /// `GET /healthz` of the sidecar itself: the status and the decoded body.
        func healthz() async throws -> (status: Int, body: [String: Any]) {
            let result = try await ProcessRunner.run(
                "curl", ["-s", "--max-time", "60", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)/healthz"],
                timeout: .seconds(90))
            let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            let status = Int(lines.last ?? "") ?? 0
            let text = lines.dropLast().joined(separator: "\n")
            let body = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
            return (status, body)
        }
    }

    /// Starts `health-sidecar --loop` on a port of its own choosing (SIDECAR_PORT=0) and waits until it serves.
    static func launchSidecar(
        _ app: ApplicationFixture, id: String, url: String, _ extra: [String: String] = [:]
    ) async throws -> Sidecar {
        var environment = [
            "HEALTH_CHECK_URL": url, "HEALTH_CHECK_INTERVAL": "1s", "HEALTH_CHECK_TIMEOUT": "20s",
            "HEALTH_CHECK_FAILURES": "3",
            "SIDECAR_ID": id, "SIDECAR_BIND": "127.0.0.1", "SIDECAR_PORT": "0",
            "LIVENESS_FILE": app.root.appending("\(id).alive").path,
        ]
        environment.merge(extra) { _, new in new }
        let process = try app.launch("health-sidecar", ["--loop"], environment: environment)
        return Sidecar(process: process, port: try await process.servedPort(timeout: .seconds(120), "sidecar \(id)"))
    }

    /// Stops every sidecar with SIGTERM and checks each ended promptly with 0.
    static func stop(_ sidecars: [Sidecar]) async throws {
        for sidecar in sidecars { sidecar.process.kill(SIGTERM) }
        for sidecar in sidecars {
            let result = try await sidecar.process.waitForExit(timeout: .seconds(10))
            #expect(result.status == 0, "\(result)")
        }
    }

    static func heartbeat(_ app: ApplicationFixture, _ id: String) -> HealthHeartbeat? {
        guard let data = try? Data(contentsOf: app.backupDirectory.appendingPathComponent(HealthHeartbeat.key(for: id)))
        else {
            return nil
        }
        return try? ContingencyJSON.decoder().decode(HealthHeartbeat.self, from: data)
    }

    static func requestFiles(_ app: ApplicationFixture) -> [String] {
        let folder = app.backupDirectory.appendingPathComponent(".contingency/requests").path
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".json") }
            .sorted()
    }

    static func request(_ app: ApplicationFixture, _ file: String) throws -> [String: Any] {
        let data = try Data(contentsOf: app.backupDirectory.appendingPathComponent(".contingency/requests/\(file)"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func date(_ value: Any?) -> Date? {
        guard let text = value as? String else { return nil }
        return ISO8601DateFormatter().date(from: text)
    }

    /// How many times `text` occurs in `output`.
    static func count(_ text: String, in output: String) -> Int { output.components(separatedBy: text).count - 1 }

    @Test(
        "a healthy app: heartbeat in the store, the runbook's lines, /healthz 200 with the app and the newest backup; SIGTERM exits 0"
    )
    func healthyApp() async throws {
        try await ApplicationFixture.with(uploadFiles: 12) { app in
            try #require(try await app.run("backup-job").succeeded)
            let backup = try #require(try app.storeFiles().first { $0.hasSuffix(".tar.gz") })
            try await FixtureApplication.with(app) { fixture in
                let sidecar = try await Self.launchSidecar(
                    app, id: "sidecar-a", url: fixture.healthURL, ["BACKUP_STALE_AFTER": "1h"])
                try await eventually(timeout: .seconds(90), "a healthy heartbeat") {
                    Self.heartbeat(app, "sidecar-a")?.lastResult?.healthy == true
                }
                let heartbeat = try #require(Self.heartbeat(app, "sidecar-a"))
                #expect(heartbeat.consecutiveFailures == 0 && heartbeat.lastHealthy != nil && heartbeat.incident == nil)
                #expect(heartbeat.url == fixture.healthURL && heartbeat.interval == 1)
                // The runbook's lines exactly, each a whole line (not under the logger's own label as well).
                try await eventually(timeout: .seconds(90), "the runbook's lines") {
                    let lines = sidecar.process.stdoutSoFar.split(separator: "\n")
                    return lines.contains("[Backup] Checking if rollback is needed...")
                        && lines.contains("[Backup] Application is healthy, no rollback needed")
                }

                let (status, body) = try await sidecar.healthz()
                #expect(status == 200, "\(body)")
                #expect(body["status"] as? String == "ok" && body["timestamp"] is String)
                let appState = try #require(body["app"] as? [String: Any], "\(body)")
                #expect((appState["lastResult"] as? [String: Any])?["healthy"] as? Bool == true)
                #expect(appState["consecutiveFailures"] as? Int == 0 && appState["lastHealthy"] is String)
                let newest = try #require((body["backups"] as? [String: Any])?["newest"] as? [String: Any], "\(body)")
                #expect(newest["name"] as? String == backup)
                #expect(newest["stale"] as? Bool == false)
                #expect((newest["ageSeconds"] as? Int).map { $0 >= 0 && $0 < 600 } == true)
                #expect(Self.requestFiles(app).isEmpty)
                // The fixture's own page shows what its health rests on.
                let page = try await ProcessRunner.run(
                    "curl", ["-s", "--max-time", "10", "http://127.0.0.1:\(fixture.port)/"])
                #expect(
                    page.stdout.contains("Query: 40") && page.stdout.contains("Uploads: 12 files"), "\(page.stdout)")
                try await Self.stop([sidecar])
                #expect(sidecar.output.contains("Stopped"))
            }
        }
    }

    @Test("the table is dropped: three failures open one incident, one rollback request with the incident")
    func incident() async throws {
        try await ApplicationFixture.with(uploadFiles: 12) { app in
            try await FixtureApplication.with(app) { fixture in
                let sidecar = try await Self.launchSidecar(
                    app, id: "sidecar-a", url: fixture.healthURL, ["ROLLBACK_WINDOW": "30m"])
                try await eventually(timeout: .seconds(90), "a healthy heartbeat") {
                    Self.heartbeat(app, "sidecar-a")?.lastResult?.healthy == true
                }
                try await app.server.psql("DROP TABLE users CASCADE", database: app.database)
                try await eventually(timeout: .seconds(120), "the rollback request") { !Self.requestFiles(app).isEmpty }
                // Two more failed rounds after the incident: still one request, the incident stays open.
                // (The heartbeat is written after the round's log line: wait for the heartbeat itself.)
                try await eventually(timeout: .seconds(120), "two more failed probes") {
                    (Self.heartbeat(app, "sidecar-a")?.consecutiveFailures ?? 0) >= 5
                }
                let files = Self.requestFiles(app)
                try #require(files.count == 1, "\(files)")
                let heartbeat = try #require(Self.heartbeat(app, "sidecar-a"))
                let id = IncidentID.make(lastHealthy: heartbeat.lastHealthy)
                #expect(files == ["\(id).json"])
                #expect(heartbeat.incident == id && heartbeat.consecutiveFailures >= 5)
                let request = try Self.request(app, files[0])
                #expect(request["intent"] as? String == "rollback" && request["status"] as? String == "pending")
                #expect(request["requestedBy"] as? String == "health-sidecar sidecar-a")
                let incident = try #require(request["incident"] as? [String: Any])
                #expect(incident["failures"] as? Int == 3 && incident["sidecar"] as? String == "sidecar-a")
                #expect((incident["lastResult"] as? String)?.contains("HTTP 500") == true, "\(incident)")
                let created = try #require(Self.date(request["created"]))
                let expires = try #require(Self.date(request["expires"]))
                #expect(abs(expires.timeIntervalSince(created) - 1800) <= 2)
                #expect(
                    Self.count("Rollback requested after 3 consecutive failed health checks", in: sidecar.output) == 1)
                #expect(
                    sidecar.output.contains("[Rollback] Incident: 3 consecutive failed health checks seen by sidecar-a")
                )
                // The app failing is the sidecar doing its job: its own /healthz stays 200 and reports the incident.
                let (status, body) = try await sidecar.healthz()
                #expect(status == 200, "\(body)")
                #expect((body["app"] as? [String: Any])?["incident"] as? String == id)
                try await Self.stop([sidecar])
            }
        }
    }

    @Test("five sidecars (five processes, one store) on one failing app: exactly one rollback request")
    func fiveSidecars() async throws {
        try await ApplicationFixture.with(uploadFiles: 12) { app in
            try await FixtureApplication.with(app) { fixture in
                var sidecars: [Sidecar] = []
                do {
                    for index in 1...5 {
                        sidecars.append(
                            try await Self.launchSidecar(app, id: "sidecar-\(index)", url: fixture.healthURL))
                    }
                    try await eventually(timeout: .seconds(120), "every sidecar to see the app healthy") {
                        (1...5).allSatisfy { Self.heartbeat(app, "sidecar-\($0)")?.lastResult?.healthy == true }
                    }
                    try await app.server.psql("DROP TABLE users CASCADE", database: app.database)
                    try await eventually(timeout: .seconds(90), "every sidecar to open the incident") {
                        (1...5).allSatisfy { Self.heartbeat(app, "sidecar-\($0)")?.incident != nil }
                    }
                    let incidents = Set((1...5).compactMap { Self.heartbeat(app, "sidecar-\($0)")?.incident })
                    #expect(incidents.count == 1, "\(incidents)")
                    #expect(Self.requestFiles(app) == incidents.map { "\($0).json" }, "\(Self.requestFiles(app))")
                    // Each sidecar says whether it created the request or found it (the pipes are read a moment late).
                    var outputs = ""
                    try await eventually(timeout: .seconds(90), "every sidecar's word on the request") {
                        outputs = sidecars.map(\.output).joined(separator: "\n")
                        return Self.count("Rollback requested after", in: outputs)
                            + Self.count("Rollback for this incident already requested", in: outputs) >= 5
                    }
                    #expect(Self.count("Rollback requested after", in: outputs) == 1, "\(outputs)")
                    #expect(Self.count("Rollback for this incident already requested", in: outputs) == 4, "\(outputs)")
                    #expect(Self.count("[Rollback] Incident:", in: outputs) == 1, "one event per incident")
                } catch {
                    for sidecar in sidecars { sidecar.process.kill(SIGKILL) }
                    throw error
                }
                try await Self.stop(sidecars)
            }
        }
    }

    @Test("flapping health (fail, fail, ok, …) never opens an incident")
    func flapping() async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            let pattern = Array(repeating: [500, 500, 200], count: 4).flatMap { $0 } + [200]
            try await FixtureApplication.withScripted(pattern, folder: app.root) { fixture in
                let sidecar = try await Self.launchSidecar(app, id: "sidecar-a", url: fixture.healthURL)
                try await eventually(timeout: .seconds(120), "the whole pattern to be probed") {
                    fixture.remainingStatuses() == [200]
                        && Self.count("Application is healthy, no rollback needed", in: sidecar.output) >= 5
                        && Self.count("Health check failed (2/3)", in: sidecar.output) >= 4
                }
                #expect(Self.count("Health check failed (2/3)", in: sidecar.output) == 4, "\(sidecar.output)")
                #expect(!sidecar.output.contains("(3/3)"))
                #expect(Self.requestFiles(app).isEmpty)
                #expect(Self.heartbeat(app, "sidecar-a")?.incident == nil)
                try await Self.stop([sidecar])
            }
        }
    }

    @Test("failures in HEALTH_CHECK_START_PERIOD are not counted; after it, the threshold opens the incident")
    func startPeriod() async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            try await FixtureApplication.withScripted([500], folder: app.root) { fixture in
                let sidecar = try await Self.launchSidecar(
                    app, id: "sidecar-a", url: fixture.healthURL,
                    ["HEALTH_CHECK_START_PERIOD": "4s", "HEALTH_CHECK_FAILURES": "2"])
                try await eventually(timeout: .seconds(120), "the rollback request") { !Self.requestFiles(app).isEmpty }
                let heartbeat = try #require(Self.heartbeat(app, "sidecar-a"))
                #expect(
                    Self.count("during the start period (HEALTH_CHECK_START_PERIOD), not counted", in: sidecar.output)
                        >= 2)
                let files = Self.requestFiles(app)
                #expect(files == ["rollback-never-healthy.json"], "\(files)")
                let request = try Self.request(app, files[0])
                let opened = try #require(Self.date((request["incident"] as? [String: Any])?["opened"]))
                // Whole seconds in the store: opened at least start period plus one counted failure after start.
                #expect(opened.timeIntervalSince(heartbeat.started) >= 4, "\(opened) \(heartbeat.started)")
                try await Self.stop([sidecar])
            }
        }
    }

    @Test("/healthz is 503 while the store cannot be written, the loop goes on, and 200 once it can again")
    func unwritableStore() async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            try await FixtureApplication.withScripted([200], folder: app.root) { fixture in
                let sidecar = try await Self.launchSidecar(
                    app, id: "sidecar-a", url: fixture.healthURL, ["BACKUP_STALE_AFTER": "1s"])
                try await eventually(timeout: .seconds(90), "a heartbeat") { Self.heartbeat(app, "sidecar-a") != nil }
                let first = try await sidecar.healthz()
                #expect(first.status == 200, "\(first.body)")
                // No backup at all: nothing newest, reported without failing.
                #expect((first.body["backups"] as? [String: Any])?["newest"] == nil)

                // A file where the heartbeats' folder should be: every write fails, even for root (chmod would not).
                let folder = app.backupDirectory.appendingPathComponent(HealthHeartbeat.folder)
                // The running sidecar makes the folder again as soon as it is gone: move it aside until the file wins.
                try await eventually(timeout: .seconds(90), "a file in place of the heartbeats' folder") {
                    var isFolder: ObjCBool = false
                    if FileManager.default.fileExists(atPath: folder.path, isDirectory: &isFolder), isFolder.boolValue {
                        let aside = app.backupDirectory.appendingPathComponent(".contingency/state/aside-\(UUID())")
                        try? FileManager.default.moveItem(at: folder, to: aside)
                    }
                    return (try? Data("not a folder".utf8).write(to: folder)) != nil
                }
                try await eventually(timeout: .seconds(90), "/healthz to answer 503") {
                    try await sidecar.healthz().status == 503
                }
                let failing = try await sidecar.healthz()
                #expect(failing.body["status"] as? String == "error")
                #expect((failing.body["reason"] as? String)?.contains("heartbeat") == true, "\(failing.body)")
                try await eventually(timeout: .seconds(90), "the failed write in the log") { sidecar.output.contains("Could not write the heartbeat") }
                let rounds = Self.count("Checking if rollback is needed", in: sidecar.output)
                try await eventually(timeout: .seconds(90), "the loop to go on") {
                    Self.count("Checking if rollback is needed", in: sidecar.output) >= rounds + 2
                }
                #expect(sidecar.process.isRunning)

                // Without the file in the way, the next write makes the folder again.
                try FileManager.default.removeItem(at: folder)
                try await eventually(timeout: .seconds(90), "/healthz to answer 200 again") {
                    try await sidecar.healthz().status == 200
                }
                try await Self.stop([sidecar])
            }
        }
    }

    @Test("SIGTERM during a probe that waits on a silent server ends the sidecar at once with 0")
    func sigtermMidProbe() async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            let silentPort = try FreePort.pick()
            let silent = try ProcessRunner.launch(
                "python3",
                [
                    "-c",
                    "import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', \(silentPort))); s.listen(5); time.sleep(300)",
                ])
            defer { silent.kill(SIGKILL) }
            try await eventually(timeout: .seconds(90), "the silent server to listen") { FreePort.isAcceptingConnections(port: silentPort) }
            let sidecar = try await Self.launchSidecar(
                app, id: "sidecar-a", url: "http://127.0.0.1:\(silentPort)/healthz", ["HEALTH_CHECK_TIMEOUT": "15m"])
            try await eventually(timeout: .seconds(90), "the first probe to start") {
                sidecar.output.contains("Checking if rollback is needed")
            }
            // The server answers while the probe waits (which it does off the cooperative pool, Blocking).
            let (status, body) = try await sidecar.healthz()
            #expect(status == 200, "\(body)")
            #expect(!sidecar.output.contains("Health check failed"), "the probe is still waiting")
            // The probe would wait 15 minutes: an exit well before says SIGTERM did not wait for it (the bound is
            // loose for a loaded machine; on an idle one it takes a fraction of a second).
            let clock = ContinuousClock()
            let start = clock.now
            sidecar.process.kill(SIGTERM)
            let result = try await sidecar.process.waitForExit(timeout: .seconds(180))
            #expect(result.status == 0, "\(result)")
            #expect(clock.now - start < .seconds(120), "the probe held the shutdown")
        }
    }

    @Test("every --loop process touches LIVENESS_FILE; health-sidecar --liveness checks its age")
    func liveness() async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            try #require(try await app.run("backup-job").succeeded)
            let check: (String, [String]) async throws -> ProcessResult = { path, arguments in
                try await ProcessRunner.run(
                    ApplicationFixture.executable("health-sidecar"), ["--liveness"] + arguments,
                    environment: ["LIVENESS_FILE": path])
            }
            let missing = try await check(app.root.appending("nobody.alive").path, [])
            #expect(missing.status == 1 && missing.stderr.contains("Not alive"), "\(missing)")

            let loops: [(name: String, arguments: [String], environment: [String: String])] = [
                ("backup-job", ["--loop"], ["BACKUP_SCHEDULE": "@yearly"]),
                (
                    "restore-job", ["--drill", "--loop"],
                    [
                        "DRILL_SCHEDULE": "@yearly",
                        "DRILL_DATABASE_URL": app.server.connectionURL(database: "drill_scratch"),
                    ]
                ),
            ]
            for loop in loops {
                let path = app.root.appending("\(loop.name).alive").path
                let process = try app.launch(
                    loop.name, loop.arguments, environment: loop.environment.merging(["LIVENESS_FILE": path]) { $1 })
                try await eventually(timeout: .seconds(120), "\(loop.name) to touch its liveness file") {
                    guard process.isRunning else {
                        throw SidecarTestError("\(loop.name) exited: \(process.stderrSoFar)")
                    }
                    return FileManager.default.fileExists(atPath: path)
                }
                let alive = try await check(path, ["--max-age", "30s"])
                #expect(alive.status == 0 && alive.stdout.contains("Alive"), "\(loop.name): \(alive)")
                process.kill(SIGTERM)
                let result = try await process.waitForExit(timeout: .seconds(30))
                #expect(result.status == 0, "\(loop.name): \(result)")
            }

            try await FixtureApplication.withScripted([200], folder: app.root) { fixture in
                let sidecar = try await Self.launchSidecar(app, id: "sidecar-a", url: fixture.healthURL)
                let path = app.root.appending("sidecar-a.alive").path
                try await eventually(timeout: .seconds(90), "the sidecar to touch its liveness file") {
                    FileManager.default.fileExists(atPath: path)
                }
                // Made an hour old: --liveness fails, and the running loop touches it again within its interval.
                var times = [
                    timespec(tv_sec: time(nil) - 3600, tv_nsec: 0), timespec(tv_sec: time(nil) - 3600, tv_nsec: 0),
                ]
                try #require(utimensat(AT_FDCWD, path, &times, 0) == 0)
                let stale = try await check(path, ["--max-age", "60s"])
                #expect(stale.status == 1 && stale.stderr.contains("Not alive"), "\(stale)")
                try await eventually(timeout: .seconds(90), "the liveness file to be touched again") {
                    try await check(path, ["--max-age", "60s"]).status == 0
                }
                try await Self.stop([sidecar])
            }
        }
    }
}

struct SidecarTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension HealthSidecarTests {
    @Test("--help lists the sidecar's variables and the store's; the loops' --help lists LIVENESS_FILE")
    func help() async throws {
        let sidecar = try await ProcessRunner.run(ApplicationFixture.executable("health-sidecar"), ["--help"])
        #expect(sidecar.status == 0, "\(sidecar)")
        for variable in [
            "HEALTH_CHECK_URL", "HEALTH_CHECK_TIMEOUT", "HEALTH_CHECK_INTERVAL", "HEALTH_CHECK_FAILURES",
            "HEALTH_CHECK_START_PERIOD", "SIDECAR_PORT", "SIDECAR_BIND", "SIDECAR_ID", "LIVENESS_FILE",
            "BACKUP_STALE_AFTER",
            "ROLLBACK_WINDOW", "BACKUP_DIR", "BACKUP_S3_URL", "--liveness", "--loop",
        ] {
            #expect(sidecar.stdout.contains(variable), "\(variable)")
        }
        for job in ["backup-job", "restore-job"] {
            let help = try await ProcessRunner.run(ApplicationFixture.executable(job), ["--help"])
            #expect(help.stdout.contains("LIVENESS_FILE"), "\(job)")
        }
    }
}

extension HealthSidecarTests {
    @Test("on a bucket store (S3, no volume): heartbeats and one rollback request from three sidecars, the newest backup")
    func bucketStore() async throws {
        try await ApplicationFixture.with(uploadFiles: 12) { app in
            try await TestBucket.with { bucket in
                let environment = bucket.environment(app: app)
                try #require(try await app.run("backup-job", environment: environment).succeeded)
                try await FixtureApplication.with(app) { fixture in
                    var sidecars: [Sidecar] = []
                    do {
                        for index in 1...3 {
                            sidecars.append(
                                try await Self.launchSidecar(
                                    app, id: "bucket-\(index)", url: fixture.healthURL, environment))
                        }
                        let storage = try bucket.storage()
                        let heartbeats = { () -> [HealthHeartbeat] in
                            ((try? storage.list(folder: HealthHeartbeat.folder)) ?? []).compactMap { object in
                                guard let stored = try? storage.read(key: object.key) else { return nil }
                                return try? ContingencyJSON.decoder().decode(HealthHeartbeat.self, from: Data(stored.data))
                            }
                        }
                        try await eventually(timeout: .seconds(120), "three healthy heartbeats in the bucket") {
                            let all = heartbeats()
                            return all.count == 3 && all.allSatisfy { $0.lastResult?.healthy == true }
                        }
                        let (status, body) = try await sidecars[0].healthz()
                        #expect(status == 200, "\(body)")
                        let newest = try #require((body["backups"] as? [String: Any])?["newest"] as? [String: Any])
                        let name = try #require(newest["name"] as? String)
                        #expect(try bucket.objects().contains(name), "\(body)")

                        try await app.server.psql("DROP TABLE users CASCADE", database: app.database)
                        try await eventually(timeout: .seconds(90), "every sidecar to open the incident") {
                            let all = heartbeats()
                            return all.count == 3 && all.allSatisfy { $0.incident != nil }
                        }
                        let requests = try storage.list(folder: ".contingency/requests").map(\.name).filter {
                            $0.hasSuffix(".json")
                        }
                        #expect(requests.count == 1, "\(requests)")
                        #expect(Set(heartbeats().compactMap(\.incident).map { "\($0).json" }) == Set(requests))
                    } catch {
                        for sidecar in sidecars { sidecar.process.kill(SIGKILL) }
                        throw error
                    }
                    try await Self.stop(sidecars)
                }
            }
        }
    }
}

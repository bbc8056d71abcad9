import Foundation
import Testing
import TestSupport

/// The image and the compose example, run for real: podman runs the containers and serves the Docker Engine API,
/// Debian's docker-compose drives it with `deploy/compose/docker-compose.yml` as an operator would, and the
/// rollback's Docker app control works against that engine (not recorded exchanges).
///
/// The images come from `.build-image/images.tar`, which `scripts/build-image.sh --storage .build-image/podman
/// --example-images --save .build-image/images.tar` makes (scripts/test.sh runs it before the suite): Contingency's
/// image from the Dockerfile, the example's stand-in app (healthy :1 and its broken release :2-broken, whose
/// startup drops the users table), and stand-ins for postgres:15 and nginx:stable built from Debian's packages,
/// since no registry is reachable here. Loading them makes no network traffic.
@Suite(.serialized)
struct ComposeDeploymentTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let image = "contingency:0.1.0"
    static let executables = ["backup-job", "restore-job", "cleanup-job", "health-sidecar"]

    static func loadImages(_ podman: PodmanService) async throws {
        let archive = repository.appendingPathComponent(".build-image/images.tar").path
        guard FileManager.default.fileExists(atPath: archive) else {
            throw TestSupportError(
                "\(archive) is missing: build the images first with scripts/build-image.sh --storage "
                    + ".build-image/podman --example-images --save .build-image/images.tar (scripts/test.sh does)")
        }
        try await podman.podman(["load", "--quiet", "--input", archive], timeout: .seconds(600))
    }

    @Test("The compose file holds to the Compose Specification's schema, and a misspelt key is refused")
    func composeSpecification() async throws {
        let file = Self.repository.appendingPathComponent("deploy/compose/docker-compose.yml")
        func check(_ path: String) async throws -> ProcessResult {
            try await ProcessRunner.run(
                "python3", ["-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", path])
        }
        let valid = try await check(file.path)
        #expect(valid.succeeded, "check-jsonschema (scripts/install-deps.sh installs it): \(valid)")
        let folder = try TemporaryDirectory(prefix: "compose-schema")
        defer { folder.remove() }
        let text = try String(contentsOf: file, encoding: .utf8)
        #expect(text.contains("    shm_size: 256mb"))
        let misspelt = folder.appending("docker-compose.yml")
        try text.replacingOccurrences(of: "    shm_size: 256mb", with: "    shm_sizes: 256mb")
            .write(to: misspelt, atomically: true, encoding: .utf8)
        let refused = try await check(misspelt.path)
        #expect(!refused.succeeded && (refused.stdout + refused.stderr).contains("shm_sizes"), "\(refused)")
    }

    @Test("The image: every executable runs as uid/gid 10001, finds every library, and its HEALTHCHECK holds for a --loop role")
    func image() async throws {
        try await PodmanService.with { podman in
            try await Self.loadImages(podman)
            #expect(try await podman.podman("run", "--rm", Self.image, "id", "-u") == "10001")
            #expect(try await podman.podman("run", "--rm", Self.image, "id", "-g") == "10001")
            for executable in Self.executables {
                let help = try await podman.run(["run", "--rm", Self.image, executable, "--help"])
                #expect(help.succeeded, "\(executable) --help: \(help)")
                #expect(help.stdout.contains("USAGE: \(executable)"), "\(executable) --help: \(help.stdout.prefix(300))")
            }
            let libraries = try await podman.podman(
                "run", "--rm", Self.image, "sh", "-c", "for binary in /usr/local/bin/*; do ldd \"$binary\"; done")
            #expect(libraries.contains("libpq.so.5"), "the executables link libpq: \(libraries)")
            #expect(!libraries.contains("not found"), "a library is missing in the image:\n\(libraries)")
            let pgDump = try await podman.podman("run", "--rm", Self.image, "sh", "-c", "\"$PG_BIN_DIR/pg_dump\" --version")
            #expect(pgDump.contains("(PostgreSQL) 15."), "the image's pg_dump is the build argument's major: \(pgDump)")

            let configuration = try await podman.podman(
                "image", "inspect", "--format", "{{json .Config.Healthcheck}} {{json .Config.Labels}} {{.Config.User}}",
                Self.image)
            #expect(configuration.contains("--liveness"), "the HEALTHCHECK reads the liveness file: \(configuration)")
            #expect(configuration.contains("org.opencontainers.image.version"), "OCI labels: \(configuration)")
            #expect(configuration.hasSuffix("10001:10001"), "the image's user: \(configuration)")

            // The HEALTHCHECK's command fails in a container that runs no loop and passes in one that does.
            let once = try await podman.run(
                ["run", "--rm", Self.image, "health-sidecar", "--liveness", "--max-age", "90s"])
            #expect(once.status == 1, "no loop, no liveness: \(once)")
            try await podman.podman("run", "-d", "--name", "cleanup-loop", Self.image, "cleanup-job", "--loop")
            do {
                try await eventually(timeout: .seconds(60), pollInterval: .milliseconds(500), "the loop's liveness file") {
                    try await podman.run(["exec", "cleanup-loop", "health-sidecar", "--liveness", "--max-age", "90s"])
                        .succeeded
                }
            } catch {
                print(try await podman.run(["logs", "cleanup-loop"]))
                throw error
            }
            try await podman.podman("rm", "--force", "--time", "5", "cleanup-loop")
        }
    }

    @Test("docker-compose: a failed deploy (a broken image that drops a table) is rolled back to the previous image and the pre-deploy data; a disaster restore with `run --rm restore`")
    func composeRollbackAndRestore() async throws {
        try await PodmanService.with { podman in
            try podman.openSocketToGroup()
            try await Self.loadImages(podman)
            let project = try ComposeProject(podman: podman)
            do {
                try await project.scenario()
            } catch {
                print(await project.logs())
                await project.down()
                throw error
            }
            await project.down()
        }
    }
}

/// A copy of deploy/compose in a temporary folder, configured by its .env as an operator would, driven by
/// docker-compose through podman's socket.
private struct ComposeProject {
    let podman: PodmanService
    let folder: TemporaryDirectory
    let name = "contingency\(UInt32.random(in: 10_000...99_999))"
    let httpsPort: Int

    init(podman: PodmanService) throws {
        self.podman = podman
        folder = try TemporaryDirectory(prefix: "compose-example")
        httpsPort = try FreePort.pick()
        let source = ComposeDeploymentTests.repository.appendingPathComponent("deploy/compose")
        for entry in try FileManager.default.contentsOfDirectory(atPath: source.path) {
            try FileManager.default.copyItem(
                at: source.appendingPathComponent(entry), to: folder.appending(entry))
        }
        var settings = try String(contentsOf: folder.appending(".env.example"), encoding: .utf8)
        for (name, value) in [
            "DOCKER_SOCKET": podman.socketPath, "DOCKER_GID": "0", "HTTPS_PORT": "\(httpsPort)",
            "HEALTH_CHECK_INTERVAL": "2s", "HEALTH_CHECK_START_PERIOD": "0s", "RESTORE_POLL_INTERVAL": "1s",
        ] {
            settings = settings.replacingOccurrences(
                of: #"(?m)^\#(name)=.*$"#, with: "\(name)=\(value)", options: .regularExpression)
        }
        try settings.write(to: folder.appending(".env"), atomically: true, encoding: .utf8)
    }

    var token: String {
        get throws {
            try String(contentsOf: folder.appending("secrets/api_token"), encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    /// docker-compose's environment. Debian's docker-compose 1.29 (its python3-docker 5) fails with "Not supported
    /// URL scheme http+docker" under requests 2.32 or later, which pip puts in /usr/local for the tests' Python
    /// tools on a fresh machine: Debian's own packages come first on its path.
    var composeEnvironment: [String: String] {
        ["DOCKER_HOST": podman.dockerHost, "COMPOSE_INTERACTIVE_NO_CLI": "1", "PYTHONPATH": "/usr/lib/python3/dist-packages"]
    }

    @discardableResult
    func compose(_ arguments: String..., timeout: Duration = .seconds(300)) async throws -> ProcessResult {
        let result = try await ProcessRunner.run(
            "docker-compose", ["--ansi", "never", "-p", name] + arguments,
            environment: composeEnvironment, workingDirectory: folder.url, timeout: timeout)
        guard result.succeeded else {
            throw TestSupportError("docker-compose \(arguments.joined(separator: " ")) failed: \(result)")
        }
        return result
    }

    func container(_ service: String) -> String { "\(name)_\(service)_1" }

    func psql(_ sql: String) async throws -> String {
        try await podman.podman(
            "exec", container("db"), "psql", "-U", "postgres", "-d", "visual_db", "-AtX", "-v", "ON_ERROR_STOP=1",
            "-c", sql)
    }

    /// Calls the admin API through the proxy, over TLS, the token in a header file (never on a command line).
    func api(_ method: String, _ path: String) async throws -> (status: Int, body: String) {
        let header = folder.appending("token-header")
        try "X-API-Token: \(try token)\n".write(to: header, atomically: true, encoding: .utf8)
        let result = try await ProcessRunner.run(
            "curl", [
                "-sk", "-X", method, "-H", "@\(header.path)", "-w", "\n%{http_code}", "--max-time", "120",
                "https://127.0.0.1:\(httpsPort)\(path)",
            ], timeout: .seconds(130))
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    /// The app's /healthz through the proxy (its certificate is make-secrets.sh's self-signed one).
    func appHealth() async -> Int? {
        let result = try? await ProcessRunner.run(
            "curl", ["-sk", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "https://127.0.0.1:\(httpsPort)/healthz"],
            timeout: .seconds(15))
        return result.flatMap { Int($0.stdout) }
    }

    func logs(_ service: String? = nil) async -> String {
        var arguments = ["--ansi", "never", "-p", name, "logs", "--no-color"]
        if let service { arguments.append(service) }
        let result = try? await ProcessRunner.run(
            "docker-compose", arguments, environment: composeEnvironment,
            workingDirectory: folder.url, timeout: .seconds(60))
        return result.map { $0.stdout + $0.stderr } ?? "(no logs)"
    }

    func imageID(_ reference: String) async throws -> String {
        try await podman.podman("image", "inspect", "--format", "{{.Id}}", reference)
    }

    func down() async {
        _ = try? await ProcessRunner.run(
            "docker-compose", ["--ansi", "never", "-p", name, "--profile", "restore", "down", "--volumes", "--timeout", "5"],
            environment: composeEnvironment, workingDirectory: folder.url, timeout: .seconds(300))
        folder.remove()
    }

    func scenario() async throws {
        let secrets = try await ProcessRunner.run(
            "/bin/bash", [folder.appending("make-secrets.sh").path], workingDirectory: folder.url)
        #expect(secrets.succeeded, "make-secrets.sh: \(secrets)")
        try await compose("config", "--quiet")

        // The application's database exists before Contingency arrives, as it does for an operator.
        try await compose("up", "-d", "db")
        try await eventually(timeout: .seconds(120), pollInterval: .milliseconds(500), "PostgreSQL accepting connections") {
            try await podman.run(["exec", container("db"), "pg_isready", "-q", "-d", "visual_db"]).succeeded
        }
        _ = try await psql(
            "CREATE TABLE users (id int PRIMARY KEY, name text); "
                + "INSERT INTO users SELECT g, 'user ' || g FROM generate_series(1, 500) g")
        try await compose("up", "-d")
        try await podman.podman(
            "exec", container("app"), "sh", "-c", "mkdir -p /app/uploads/avatars && echo portrait > /app/uploads/avatars/1.png")
        try await eventually(timeout: .seconds(120), pollInterval: .milliseconds(500), "the app healthy through the proxy") {
            await appHealth() == 200
        }
        try await eventually(timeout: .seconds(60), pollInterval: .milliseconds(500), "the sidecar's first healthy probe") {
            await logs("sidecar").contains("Application is healthy")
        }

        // Every --loop role keeps its liveness file: the image's HEALTHCHECK holds in each.
        for service in ["backup", "cleanup", "sidecar", "restore-runner"] {
            try await eventually(timeout: .seconds(60), pollInterval: .milliseconds(500), "\(service)'s liveness") {
                try await podman.run(["exec", container(service), "health-sidecar", "--liveness", "--max-age", "90s"])
                    .succeeded
            }
        }
        let anonymous = try await ProcessRunner.run(
            "curl", ["-sk", "-o", "/dev/null", "-w", "%{http_code}", "https://127.0.0.1:\(httpsPort)/api/backups"])
        #expect(anonymous.stdout == "401", "the API refuses a call without the token through the proxy")

        // Secrets reach the containers as files: none is in a container's configuration.
        let password = try String(contentsOf: folder.appending("secrets/pg_password"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        for service in ["db", "app", "proxy", "backup", "cleanup", "sidecar", "restore-runner"] {
            let configuration = try await podman.podman(
                "inspect", "--type", "container", "--format", "{{json .Config}}", container(service))
            #expect(!configuration.contains(try token) && !configuration.contains(password), "a secret in \(service)'s configuration")
        }
        let wrongPath = try await ProcessRunner.run(
            "curl", ["-sk", "-o", "/dev/null", "-w", "%{http_code}", "https://127.0.0.1:\(httpsPort)/api/backupsX"])
        #expect(wrongPath.stdout != "401", "only /api/backups and below go to the sidecar")

        // The runbook's pre-deploy backup, through the proxy: it answers when the backup is done.
        let created = try await api("POST", "/api/backups")
        #expect(created.status == 200 || created.status == 201, "POST /api/backups: \(created)")
        #expect(created.body.contains("\"success\":true"), "\(created.body)")
        let sidecarLog = await logs("sidecar")
        #expect(sidecarLog.contains("Application version: docker"), "the sidecar's backup records the app's image")
        let healthyProbes = sidecarLog.components(separatedBy: "Application is healthy").count
        try await eventually(timeout: .seconds(30), pollInterval: .milliseconds(500), "a healthy probe after the backup") {
            await logs("sidecar").components(separatedBy: "Application is healthy").count > healthyProbes
        }
        let requestsBefore = await logs("sidecar").components(separatedBy: "Rollback requested after").count
        let healthyImage = try await imageID("contingency-example-app:1")
        #expect(try await podman.inspect(container("app"), "{{.Image}}") == healthyImage.replacingOccurrences(of: "sha256:", with: ""))

        // The failed deploy: the app's service moves to the broken release, whose startup drops the users table,
        // and an upload goes missing.
        try await podman.podman("exec", container("app"), "rm", "/app/uploads/avatars/1.png")
        var settings = try String(contentsOf: folder.appending(".env"), encoding: .utf8)
        settings = settings.replacingOccurrences(
            of: "APP_IMAGE=contingency-example-app:1", with: "APP_IMAGE=contingency-example-app:2-broken")
        try settings.write(to: folder.appending(".env"), atomically: true, encoding: .utf8)
        try await compose("up", "-d", "app")
        let brokenImage = try await imageID("contingency-example-app:2-broken")
        #expect(brokenImage != healthyImage)

        // Nobody touches anything: the sidecar asks for the rollback, the runner brings back image and data.
        try await eventually(timeout: .seconds(300), pollInterval: .seconds(1), "the rollback healing the app") {
            let image = try? await podman.inspect(container("app"), "{{.Image}}")
            guard let image, "sha256:\(image)" == healthyImage || image == healthyImage else { return false }
            return await appHealth() == 200
        }
        #expect(try await psql("SELECT count(*) FROM users") == "500", "the pre-deploy rows are back")
        #expect(
            try await podman.run(["exec", container("app"), "cat", "/app/uploads/avatars/1.png"]).stdout == "portrait\n",
            "the upload is back")
        // The app was broken (the sidecar saw it fail) and the runner, not something else, brought it back: it
        // recreated the container that ran the broken release.
        #expect(await logs("sidecar").components(separatedBy: "Rollback requested after").count == requestsBefore + 1)
        // The app answers before the runner's own health check has said so: its line is awaited, not read at once.
        try await eventually(timeout: .seconds(60), pollInterval: .seconds(1), "the runner to report the rollback healed it") {
            await logs("restore-runner").contains("succeeded: the application is healthy")
        }
        let runnerLog = await logs("restore-runner")
        #expect(runnerLog.contains("replacing localhost/contingency-example-app:2-broken"), "\(runnerLog)")

        // Disaster recovery by hand: the table is lost again; `docker compose run --rm restore` brings back the
        // newest verified backup (the pre-deploy one: the rollback's safety backup is never a target).
        _ = try await psql("DROP TABLE users")
        let restored = try await compose("--profile", "restore", "run", "--rm", "restore", timeout: .seconds(600))
        #expect(restored.succeeded)
        #expect(try await psql("SELECT count(*) FROM users") == "500", "the disaster restore brought the rows back")
        try await eventually(timeout: .seconds(120), pollInterval: .milliseconds(500), "the app healthy after the restore") {
            await appHealth() == 200
        }
    }
}

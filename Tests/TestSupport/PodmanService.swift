import Foundation
import Synchronization

/// A throwaway podman serving the Docker Engine API on a unix socket of its own, for the Docker app control's
/// tests: real containers, no Docker daemon, no registry.
///
/// Everything it makes lives in one temporary directory and nowhere else: its own storage (`--root`,
/// `--runroot`, `--tmpdir`, the vfs driver, so nothing is mounted), its own `CONTAINERS_CONF` (runc, cgroupfs,
/// the rlimits inherited, file locks, netavark: what these machines need, crun failing on a hybrid cgroup and
/// the default rlimits being refused), its own network configuration with two bridge networks
/// (`network`, `secondNetwork`) on random subnets and interface names, so it never meets the host's podman or
/// another test's. `stop()` stops the service, removes every container, image and network it made and deletes
/// the directory; `with { }` always calls it. Images are made with `image(tag:version:changes:)`
/// from Debian's static busybox (`busybox-static`), no registry involved.
///
/// When podman cannot run here, `start()` throws with podman's own words: a test then fails, it never skips.
public final class PodmanService: Sendable {
    /// The Docker Engine API's socket.
    public let socketPath: String
    /// `unix://` + `socketPath`, as DOCKER_HOST writes it.
    public var dockerHost: String { "unix://\(socketPath)" }
    /// Bridge networks of this podman's own, for the tests' containers.
    public let network: String
    public let secondNetwork: String

    private let directory: TemporaryDirectory
    private let serverProcess: ServerProcess

    private init(directory: TemporaryDirectory, process: LaunchedProcess, networks: (String, String)) {
        self.directory = directory
        serverProcess = ServerProcess(process)
        socketPath = directory.appending("podman.sock").path
        (network, secondNetwork) = networks
    }

    deinit {
        if !serverProcess.isStopped {
            serverProcess.process.kill(SIGKILL)
            _ = try? serverProcess.process.waitForExitBlocking(timeout: .seconds(10))
            _ = try? ProcessRunner.runBlocking(
                "podman", Self.globalOptions(directory) + ["rm", "--all", "--force", "--time", "0"],
                environment: Self.environment(directory), timeout: .seconds(60))
        }
    }

    /// Starts the service and returns once it answers on its socket.
    public static func start() async throws -> PodmanService {
        let directory = try TemporaryDirectory(prefix: "contingency-podman")
        let configuration = """
            [containers]
            default_ulimits = []
            [engine]
            runtime = "runc"
            cgroup_manager = "cgroupfs"
            events_logger = "file"
            lock_type = "file"
            [network]
            network_backend = "netavark"
            network_config_dir = "\(directory.appending("networks").path)"
            """
        try FileManager.default.createDirectory(at: directory.appending("networks"), withIntermediateDirectories: true)
        try configuration.write(to: directory.appending("containers.conf"), atomically: true, encoding: .utf8)

        let suffix = String(UInt32.random(in: 10_000...99_999))
        let networks = ("contingency-test-\(suffix)a", "contingency-test-\(suffix)b")
        try await create(network: networks.0, interface: "ctest\(suffix)a", in: directory)
        try await create(network: networks.1, interface: "ctest\(suffix)b", in: directory)

        let socket = directory.appending("podman.sock").path
        let process = try ProcessRunner.launch(
            "podman", globalOptions(directory) + ["system", "service", "--time=0", "unix://\(socket)"],
            environment: environment(directory))
        let service = PodmanService(directory: directory, process: process, networks: networks)
        do {
            try await eventually(
                timeout: .seconds(60), pollInterval: .milliseconds(50), "podman's API answering on \(socket)"
            ) {
                guard process.isRunning else {
                    throw TestSupportError(
                        "podman system service exited while starting:\n\(process.stderrSoFar)\(process.stdoutSoFar)")
                }
                guard FileManager.default.fileExists(atPath: socket) else { return false }
                let ping = try await ProcessRunner.run(
                    "curl", ["-q", "-s", "--max-time", "5", "--unix-socket", socket, "http://d/v1.41/_ping"],
                    timeout: .seconds(10))
                return ping.stdout == "OK"
            }
        } catch {
            await service.stop()
            throw error
        }
        return service
    }

    /// Starts a service, runs `body` with it and stops it (and removes all it made) whether `body` returns or throws.
    public static func with<T>(isolation: isolated (any Actor)? = #isolation, _ body: (PodmanService) async throws -> T)
        async throws -> T
    {
        try await ServerProcess.run(try await start(), stoppingWith: { await $0.stop() }, body)
    }

    /// Stops the service, removes every container, image and network it made, and deletes its directory.
    /// Idempotent.
    public func stop() async {
        guard !serverProcess.isStopped else { return }
        await serverProcess.stop()
        let directory = directory
        await Task.detached {
            let options = Self.globalOptions(directory)
            let environment = Self.environment(directory)
            _ = try? await ProcessRunner.run(
                "podman", options + ["rm", "--all", "--force", "--time", "0"], environment: environment,
                timeout: .seconds(120))
            _ = try? await ProcessRunner.run(
                "podman", options + ["system", "reset", "--force"], environment: environment, timeout: .seconds(120))
            directory.remove()
        }.value
    }

    /// Runs the podman CLI on this service's storage; throws with its output unless it succeeds. Returns its
    /// standard output, trimmed.
    @discardableResult
    public func podman(_ arguments: String...) async throws -> String {
        try await podman(arguments)
    }

    @discardableResult
    public func podman(_ arguments: [String], timeout: Duration = .seconds(120)) async throws -> String {
        let result = try await ProcessRunner.run(
            "podman", Self.globalOptions(directory) + arguments, environment: Self.environment(directory),
            timeout: timeout)
        guard result.succeeded else {
            throw TestSupportError("podman \(arguments.joined(separator: " ")) failed: \(result)")
        }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs the podman CLI on this service's storage and returns its result, whatever it is.
    public func run(_ arguments: [String], timeout: Duration = .seconds(120)) async throws -> ProcessResult {
        try await ProcessRunner.run(
            "podman", Self.globalOptions(directory) + arguments, environment: Self.environment(directory),
            timeout: timeout)
    }

    /// Lets members of the socket's group (gid 0 here) use the API, as Docker's own socket does for the `docker`
    /// group (podman makes it 0600): a container running as a non-root user with that group added reaches it.
    public func openSocketToGroup() throws {
        guard chmod(socketPath, 0o660) == 0 else {
            throw TestSupportError("chmod 0660 \(socketPath) failed: \(String(cString: strerror(errno)))")
        }
    }

    /// A container's field by a Go template (`{{.Image}}`), through the CLI.
    public func inspect(_ container: String, _ format: String) async throws -> String {
        try await podman("inspect", "--type", "container", "--format", format, container)
    }

    /// Makes the image `tag` from Debian's static busybox (the applets sh, cat, sleep, env, echo, ls), with
    /// `/version` holding `version`, a command that sleeps until SIGTERM (then exits at once), and the extra
    /// `changes` (Dockerfile instructions such as `ENV A=b`). Returns its id, `sha256:…`.
    public func image(tag: String, version: String, changes: [String] = []) async throws -> String {
        let busybox = "/bin/busybox"
        guard FileManager.default.isExecutableFile(atPath: busybox) else {
            throw TestSupportError("\(busybox) is missing: install Debian's busybox-static (scripts/install-deps.sh)")
        }
        let root = directory.appending("image-\(version)", isDirectory: true)
        let bin = root.appendingPathComponent("bin", isDirectory: true)
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: busybox, toPath: bin.appendingPathComponent("busybox").path)
        for applet in ["sh", "cat", "sleep", "env", "echo", "ls"] {
            try FileManager.default.createSymbolicLink(
                atPath: bin.appendingPathComponent(applet).path, withDestinationPath: "busybox")
        }
        try "\(version)\n".write(to: root.appendingPathComponent("version"), atomically: true, encoding: .utf8)
        let tarball = directory.appending("image-\(version).tar").path
        let tar = try await ProcessRunner.run("tar", ["-C", root.path, "-cf", tarball, "."])
        guard tar.succeeded else { throw TestSupportError("tar of the image \(tag) failed: \(tar)") }
        var arguments = [
            "import", "--quiet", "--change", #"CMD ["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]"#,
        ]
        for change in changes { arguments += ["--change", change] }
        let id = try await podman(arguments + [tarball, tag])
        return id.hasPrefix("sha256:") ? id : "sha256:\(id)"
    }

    // MARK: - Internals

    /// The network (on a free 10.213.x.0/24), made with podman's own command, then given an interface name of
    /// its own (podman names bridges podman1, podman2… from the networks it knows, and it knows only this
    /// directory's, so its choice could be a bridge the host's podman uses). Services run side by side in one
    /// test run, each with its own networks: a subnet another one took (podman refuses a subnet a host
    /// interface uses) is skipped for another random one.
    /// The third bytes of the subnets this process's services took (never given back: 254 is plenty).
    private static let subnets = Mutex<Set<Int>>([])

    private static func create(network: String, interface: String, in directory: TemporaryDirectory) async throws {
        var refusals: [String] = []
        while true {
            // Services of this process never share one: podman sees another service's networks only once a
            // container of theirs made the bridge.
            let third = subnets.withLock { taken in
                let free = (1...254).filter { !taken.contains($0) }
                let pick = free.randomElement() ?? Int.random(in: 1...254)
                taken.insert(pick)
                return pick
            }
            let subnet = "10.213.\(third).0/24"
            let result = try await ProcessRunner.run(
                "podman", globalOptions(directory) + ["network", "create", "--disable-dns", "--subnet", subnet, network],
                environment: environment(directory), timeout: .seconds(60))
            if result.succeeded { break }
            refusals.append("\(subnet): \(result.stderr)")
            guard result.stderr.contains("subnet"), refusals.count < 8 else {
                throw TestSupportError("podman network create failed: \(result)\n" + refusals.joined(separator: "\n"))
            }
        }
        let file = directory.appending("networks/\(network).json")
        guard var json = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any] else {
            throw TestSupportError("podman wrote no network configuration at \(file.path)")
        }
        json["network_interface"] = interface
        try JSONSerialization.data(withJSONObject: json).write(to: file)
    }

    private static func globalOptions(_ directory: TemporaryDirectory) -> [String] {
        [
            "--root", directory.appending("storage").path, "--runroot", directory.appending("run").path,
            "--tmpdir", directory.appending("tmp").path, "--storage-driver", "vfs", "--log-level", "error",
        ]
    }

    private static func environment(_ directory: TemporaryDirectory) -> [String: String] {
        ["CONTAINERS_CONF": directory.appending("containers.conf").path]
    }
}

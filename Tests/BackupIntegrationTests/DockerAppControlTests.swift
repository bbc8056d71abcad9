import BackupCore
import Foundation
import Logging
import TestSupport
import Testing

@testable import BackupKit

/// `APP_CONTROL=docker` against a real Docker Engine API: podman's, on a socket of the test's own
/// (`PodmanService`), with real containers on images made from busybox. The code under test talks only to the
/// socket; the podman CLI sets up and checks.
@Suite("DockerAppControl", .serialized, .timeLimit(.minutes(5)))
struct DockerAppControlTests {
    /// The application's label: a key and value of this test run.
    let label = "contingency.app=test\(UInt32.random(in: 1000...9999))"

    /// Two versions of the application: `/version` holds v1 or v2; v2's image also sets `FLAVOUR=v2` and
    /// a label, defaults that must not follow the container back onto v1.
    struct Images {
        let v1: String
        let v2: String
        static let v1Tag = "localhost/contingency-test-app:v1"
        static let v2Tag = "localhost/contingency-test-app:v2"
    }

    func images(_ podman: PodmanService) async throws -> Images {
        Images(
            v1: try await podman.image(tag: Images.v1Tag, version: "v1"),
            v2: try await podman.image(
                tag: Images.v2Tag, version: "v2", changes: ["ENV FLAVOUR=v2", "LABEL org.example.release=2"]))
    }

    /// Runs a detached container the way compose would: a name, the label, an environment variable, a bind
    /// mount, the podman's network, a restart policy.
    func run(
        _ podman: PodmanService, _ name: String, image: String, labelled: Bool = true, data: URL? = nil,
        bothNetworks: Bool = false
    ) async throws {
        var arguments = ["run", "--detach", "--name", name, "--network", podman.network, "--env", "GREETING=hello"]
        if bothNetworks { arguments += ["--network", podman.secondNetwork] }
        arguments += ["--restart", "unless-stopped"]
        if labelled { arguments += ["--label", label] }
        if let data { arguments += ["--volume", "\(data.path):/data"] }
        try await podman.podman(arguments + [image])
    }

    func isRunning(_ podman: PodmanService, _ name: String) async throws -> Bool {
        try await podman.inspect(name, "{{.State.Running}}") == "true"
    }

    /// The container's image id as the API writes it (the CLI leaves out `sha256:`).
    func imageID(_ podman: PodmanService, _ name: String) async throws -> String {
        "sha256:" + (try await podman.inspect(name, "{{.Image}}"))
    }

    func control(_ podman: PodmanService, logger: Logger = Logger(label: "test")) -> DockerAppControl {
        DockerAppControl(label: label, socket: podman.socketPath, logger: logger)
    }

    @Test("stop stops every labelled container and leaves the others running; start starts them again")
    func stopAndStart() async throws {
        try await PodmanService.with { podman in
            let images = try await images(podman)
            try await run(podman, "web", image: images.v1)
            try await run(podman, "worker", image: images.v1)
            try await run(podman, "bystander", image: images.v1, labelled: false)
            let control = control(podman)

            try await control.stop()
            #expect(try await isRunning(podman, "web") == false)
            #expect(try await isRunning(podman, "worker") == false)
            #expect(try await isRunning(podman, "bystander"), "a container without the label was stopped")
            // A second stop (a runner that died after stopping) finds nothing to stop and succeeds.
            try await control.stop()

            let webID = try await podman.inspect("web", "{{.Id}}")
            try await control.start(on: nil)
            #expect(try await isRunning(podman, "web"))
            #expect(try await isRunning(podman, "worker"))
            #expect(try await isRunning(podman, "bystander"))
            #expect(
                try await podman.inspect("web", "{{.Id}}") == webID, "start without a deployment recreated a container")
        }
    }

    @Test("deployment() records each labelled container's name, image id and image reference")
    func deployment() async throws {
        try await PodmanService.with { podman in
            let images = try await images(podman)
            try await run(podman, "web", image: Images.v2Tag)
            try await run(podman, "worker", image: Images.v1Tag)
            try await run(podman, "bystander", image: Images.v1Tag, labelled: false)
            try await podman.podman("stop", "--time", "0", "worker")

            let deployment = try #require(try await control(podman).deployment())
            #expect(
                deployment
                    == AppDeployment(
                        control: "docker",
                        containers: [
                            .init(name: "web", imageID: images.v2, image: Images.v2Tag),
                            .init(name: "worker", imageID: images.v1, image: Images.v1Tag),
                        ]))
        }
    }

    @Test(
        "a failed deploy is undone: start(on:) recreates the container on the recorded image, keeping its configuration"
    )
    func recreateOnRecordedImage() async throws {
        try await PodmanService.with { podman in
            let images = try await images(podman)
            let data = try TemporaryDirectory(prefix: "contingency-docker-data")
            defer { data.remove() }
            try "uploads\n".write(to: data.appending("marker"), atomically: true, encoding: .utf8)
            try await run(podman, "web", image: Images.v1Tag, data: data.url, bothNetworks: true)
            try await run(podman, "worker", image: Images.v1Tag)
            let log = LogCollector()
            let control = control(podman, logger: log.logger)
            let recorded = try #require(try await control.deployment())

            // The failed deploy: compose replaces web by a container of the same configuration on v2.
            try await podman.podman("rm", "--force", "--time", "0", "web")
            try await run(podman, "web", image: Images.v2Tag, data: data.url, bothNetworks: true)
            #expect(try await podman.podman("exec", "web", "cat", "/version") == "v2")
            let workerID = try await podman.inspect("worker", "{{.Id}}")

            try await control.stop()
            try await control.start(on: recorded)

            #expect(try await isRunning(podman, "web"))
            #expect(try await imageID(podman, "web") == images.v1)
            #expect(try await podman.podman("exec", "web", "cat", "/version") == "v1")
            let environment = try await podman.podman("exec", "web", "env")
            #expect(environment.contains("GREETING=hello"), "\(environment)")
            #expect(
                !environment.contains("FLAVOUR"), "v2's image default followed the container onto v1: \(environment)")
            #expect(try await podman.podman("exec", "web", "cat", "/data/marker") == "uploads")
            #expect(try await podman.inspect("web", "{{index .Config.Labels \"\(labelKey)\"}}") == labelValue)
            #expect(try await podman.inspect("web", "{{index .Config.Labels \"org.example.release\"}}") == "")
            #expect(try await podman.inspect("web", "{{.HostConfig.RestartPolicy.Name}}") == "unless-stopped")
            let networks = try await podman.inspect(
                "web", "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}")
            #expect(networks.split(separator: " ").map(String.init).sorted() == [podman.network, podman.secondNetwork])
            // The worker was on its recorded image already: started, not recreated.
            #expect(try await podman.inspect("worker", "{{.Id}}") == workerID)
            #expect(try await isRunning(podman, "worker"))
            // Nothing left aside: web, worker.
            let names = try await podman.podman("ps", "--all", "--format", "{{.Names}}").split(separator: "\n").sorted()
            #expect(names == ["web", "worker"])
            #expect(
                log.lines.contains { $0.contains("Recreated container web on its recorded image \(Images.v1Tag)") },
                "\(log.lines)")
        }
    }

    @Test(
        "cannotRestore: nil while the images and containers are there, else why; a failed recreate leaves all as it was"
    )
    func cannotRestore() async throws {
        try await PodmanService.with { podman in
            let images = try await images(podman)
            try await run(podman, "web", image: Images.v1Tag)
            let control = control(podman)
            let recorded = try #require(try await control.deployment())
            #expect(try await control.cannotRestore(recorded) == nil)
            let kubernetes = AppDeployment(control: "kubernetes", deployment: "web")
            #expect(try await control.cannotRestore(kubernetes)?.contains("APP_CONTROL=kubernetes") == true)

            // The failed deploy, then v1 pruned from the host.
            try await podman.podman("rm", "--force", "--time", "0", "web")
            try await run(podman, "web", image: Images.v2Tag)
            try await podman.podman("rmi", Images.v1Tag)
            let reason = try #require(try await control.cannotRestore(recorded))
            #expect(
                reason.contains("image \(images.v1) (\(Images.v1Tag)) of container web is no longer on this host"),
                "\(reason)")
            #expect(reason.contains("ROLLBACK_DATA_ONLY=true"), "\(reason)")

            // Restoring anyway fails, names the image, and leaves web as it was: on v2, with its name, running.
            try await control.stop()
            let error = await #expect(throws: ContingencyError.self) { try await control.start(on: recorded) }
            #expect(
                "\(error.map { "\($0)" } ?? "")".contains("container web could not be recreated"),
                "\(String(describing: error))")
            #expect(try await isRunning(podman, "web"))
            #expect(try await imageID(podman, "web") == images.v2)
            #expect(try await podman.podman("ps", "--all", "--format", "{{.Names}}") == "web")

            try await podman.podman("rm", "--force", "--time", "0", "web")
            let gone = try #require(
                try await control.cannotRestore(
                    AppDeployment(
                        control: "docker", containers: [.init(name: "web", imageID: images.v2, image: Images.v2Tag)])))
            #expect(gone.contains("container web"), "\(gone)")
            #expect(gone.contains("no longer exists"), "\(gone)")
        }
    }

    @Test(
        "a recreate cut short by a killed runner: the next start puts the old container back or removes it"
    )
    func interruptedRecreate() async throws {
        try await PodmanService.with { podman in
            _ = try await images(podman)
            try await run(podman, "web", image: Images.v1Tag)
            let control = control(podman)
            let webID = try await podman.inspect("web", "{{.Id}}")
            try await control.stop()
            // Killed right after renaming web aside, before creating the new one.
            let aside = "web-replaced-\(webID.prefix(12))"
            try await podman.podman("rename", "web", aside)
            try await control.start(on: nil)
            #expect(try await podman.inspect("web", "{{.Id}}") == webID)
            #expect(try await isRunning(podman, "web"))

            // Killed after the new web was made, before the old one was removed: the old one never runs again.
            try await run(podman, "web-replaced-0123456789ab", image: Images.v2Tag)
            try await podman.podman("stop", "--time", "0", "web-replaced-0123456789ab")
            try await control.start(on: nil)
            #expect(try await podman.podman("ps", "--all", "--format", "{{.Names}}") == "web")
            #expect(try await isRunning(podman, "web"))
        }
    }

    @Test("no labelled container: stop, start and deployment() say which label, on which socket, and what to do")
    func noLabelledContainer() async throws {
        try await PodmanService.with { podman in
            _ = try await images(podman)
            try await run(podman, "bystander", image: Images.v1Tag, labelled: false)
            let control = control(podman)
            for (what, call) in [
                ("stop", { try await control.stop() }), ("start", { try await control.start(on: nil) }),
                ("deployment", { _ = try await control.deployment() }),
            ] as [(String, () async throws -> Void)] {
                let error = await #expect(throws: ContingencyError.self, "\(what)") { try await call() }
                let text = error.map { "\($0)" } ?? ""
                #expect(text.contains("no container carries the label \(label)"), "\(what): \(text)")
                #expect(text.contains(podman.socketPath), "\(what): \(text)")
                #expect(text.contains("APP_CONTAINER_LABEL"), "\(what): \(text)")
            }
            #expect(try await isRunning(podman, "bystander"))
        }
    }

    @Test("no engine at DOCKER_HOST: the error names the socket and says to mount it")
    func missingSocket() async throws {
        let directory = try TemporaryDirectory(prefix: "contingency-docker")
        defer { directory.remove() }
        let socket = directory.appending("docker.sock").path
        let control = DockerAppControl(label: label, socket: socket, logger: Logger(label: "test"))
        let error = await #expect(throws: ContingencyError.self) { try await control.stop() }
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains("the Docker engine at \(socket) (DOCKER_HOST) is not there"), "\(text)")
        #expect(text.contains("-v /var/run/docker.sock:/var/run/docker.sock"), "\(text)")
    }

    var labelKey: String { String(label.prefix { $0 != "=" }) }
    var labelValue: String { String(label.drop { $0 != "=" }.dropFirst()) }
}

/// The create body built from an inspect document (pure): what is kept, what is left to the recorded image.
@Suite("DockerAppControl create body")
struct DockerAppControlCreateBodyTests {
    static let oldID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

    func json(_ text: String) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    func body(_ inspect: String, image: String? = nil) throws -> (JSONValue, [(String, JSONValue)]) {
        let made = DockerCreateBody.make(
            from: try json(inspect), imageID: "sha256:old", imageConfig: try image.map(json), keepingLabel: "app")
        return (made.create, made.extraNetworks)
    }

    @Test("the image's defaults are left out, the container's own settings and the selection label kept")
    func imageDefaults() throws {
        let (create, _) = try body(
            """
            {"Id": "\(Self.oldID)", "Config": {"Hostname": "0123456789ab", "Image": "app:v2",
              "Env": ["PATH=/bin", "FLAVOUR=v2", "GREETING=hello", "HOSTNAME=0123456789ab"],
              "Cmd": ["serve"], "Entrypoint": [], "WorkingDir": "/srv", "User": "app",
              "Labels": {"app": "visual", "release": "2", "team": "web"},
              "ExposedPorts": {"80/tcp": {}, "9000/tcp": {}}},
             "HostConfig": {"NetworkMode": "none", "Binds": ["/data:/data:rw"]}}
            """,
            image: """
                {"Env": ["PATH=/bin", "FLAVOUR=v2"], "Cmd": ["serve"], "WorkingDir": "/srv", "User": "root",
                 "Labels": {"app": "visual", "release": "2"}, "ExposedPorts": {"80/tcp": {}}}
                """)
        #expect(create["Image"] == .string("sha256:old"))
        #expect(create["Hostname"] == nil, "the old id's hostname was kept")
        #expect(create["Env"] == .array([.string("GREETING=hello")]))
        #expect(create["Cmd"] == nil)
        #expect(create["Entrypoint"] == nil, "an empty entrypoint would override the recorded image's")
        #expect(create["WorkingDir"] == nil)
        #expect(create["User"] == .string("app"))
        #expect(create["Labels"] == .object(["app": .string("visual"), "team": .string("web")]))
        #expect(create["ExposedPorts"] == .object(["9000/tcp": .object([:])]))
        #expect(create["HostConfig"]?["Binds"] == .array([.string("/data:/data:rw")]))
        #expect(create["NetworkingConfig"] == nil, "a container without a network got one")
    }

    @Test("a hostname set on purpose is kept; with the current image gone nothing is left out")
    func noImage() throws {
        let (create, _) = try body(
            """
            {"Id": "\(Self.oldID)", "Config": {"Hostname": "web", "Env": ["HOSTNAME=web", "A=1"], "Cmd": ["x"]},
             "HostConfig": {}}
            """)
        #expect(create["Hostname"] == .string("web"))
        #expect(create["Env"] == .array([.string("HOSTNAME=web"), .string("A=1")]))
        #expect(create["Cmd"] == .array([.string("x")]))
    }

    @Test("an anonymous volume is carried over by name; named volumes, binds and mounts stay as they are")
    func volumes() throws {
        let (create, _) = try body(
            """
            {"Id": "\(Self.oldID)", "Config": {},
             "HostConfig": {"Binds": ["named:/var/lib/db", "/host:/host"],
                            "Mounts": [{"Type": "tmpfs", "Target": "/cache"}]},
             "Mounts": [{"Type": "volume", "Name": "named", "Destination": "/var/lib/db"},
                        {"Type": "bind", "Source": "/host", "Destination": "/host"},
                        {"Type": "tmpfs", "Destination": "/cache"},
                        {"Type": "volume", "Name": "f00d", "Destination": "/uploads"}]}
            """)
        #expect(
            create["HostConfig"]?["Binds"]
                == .array([.string("named:/var/lib/db"), .string("/host:/host"), .string("f00d:/uploads")]))
        let tmpfs = JSONValue.object(["Type": .string("tmpfs"), "Target": .string("/cache")])
        #expect(create["HostConfig"]?["Mounts"] == .array([tmpfs]))
    }

    @Test(
        "only a recreate's aside name is taken for one",
        arguments: [
            ("web-replaced-0123456789ab", "web"), ("my-web-replaced-0123456789ab", "my-web"),
            ("web-replaced-0123456789AB", nil), ("web-replaced-0123456789a", nil), ("-replaced-0123456789ab", nil),
            ("web", nil), ("web-replaced-", nil),
        ] as [(String, String?)])
    func asideNames(aside: String, original: String?) {
        #expect(DockerAppControl.originalName(ofAside: aside) == original)
    }

    @Test("networks: the network mode's at create (aliases without the old id, static address kept), the rest after")
    func networks() throws {
        let (create, extra) = try body(
            """
            {"Id": "\(Self.oldID)", "Config": {}, "HostConfig": {"NetworkMode": "front"},
             "NetworkSettings": {"Networks": {
               "back": {"Aliases": ["db-client"], "IPAMConfig": null},
               "front": {"Aliases": ["web", "0123456789ab"], "IPAMConfig": {"IPv4Address": "10.1.0.5"}}}}}
            """)
        #expect(
            create["NetworkingConfig"]
                == .object([
                    "EndpointsConfig": .object([
                        "front": .object([
                            "Aliases": .array([.string("web")]),
                            "IPAMConfig": .object(["IPv4Address": .string("10.1.0.5")]),
                        ])
                    ])
                ]))
        #expect(extra.map(\.0) == ["back"])
        #expect(extra.first?.1 == .object(["Aliases": .array([.string("db-client")])]))

        let (host, hostExtra) = try body(
            """
            {"Id": "\(Self.oldID)", "Config": {}, "HostConfig": {"NetworkMode": "host"},
             "NetworkSettings": {"Networks": {"host": {}}}}
            """)
        #expect(host["NetworkingConfig"] == nil)
        #expect(hostExtra.isEmpty)
    }
}

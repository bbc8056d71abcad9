import BackupCore
import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

@testable import BackupKit

/// `APP_CONTROL=kubernetes` against written exchanges, not a live cluster: no Kubernetes runs where these tests
/// run. Each test starts `KubeExchangeServer` (Tests/Support/kube_exchanges.py, HTTPS with a CA made by `openssl`
/// for the test) on the exchanges of `Tests/Support/kubernetes/<name>.json`, written from the Kubernetes API
/// reference (apps/v1 Deployment, core/v1 PodList, meta/v1 Status, JSON merge patch). The server answers only the
/// exact requests written there, in order (method, path, query, bearer token, Content-Type, JSON body), fails the
/// test on any other, and fails it too if an exchange was never requested; it is stopped after each test however
/// the test ends. What this proves: the control sends what the reference says a client must send and acts right
/// on what the reference says a server answers. What it cannot prove: that a particular cluster answers so.
@Suite("Kubernetes app control (written exchanges, not a live cluster)")
struct KubernetesAppControlTests {
    static let tokenA =
        "eyJhbGciOiJSUzI1NiIsImtpZCI6ImNvbnRpbmdlbmN5LXRlc3QifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6dmlzdWFsOmNvbnRpbmdlbmN5LXJ1bm5lciJ9.c2lnbmF0dXJlLW9uZQ"
    static let tokenB =
        "eyJhbGciOiJSUzI1NiIsImtpZCI6ImNvbnRpbmdlbmN5LXRlc3QifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6dmlzdWFsOmNvbnRpbmdlbmN5LXJ1bm5lciJ9.c2lnbmF0dXJlLXR3bw"
    /// Short polls; limits far beyond what the replay needs, so a loaded machine (CI's two cores) never meets them.
    static let fast = KubernetesAppControl.Waits(
        stop: .seconds(180), start: .seconds(180), pollInterval: .milliseconds(20))

    /// A control of deployment visual/visual-platform through `server`, its token file holding `token`.
    fileprivate func makeControl(
        _ server: KubeExchangeServer, token: String = tokenA, caFile: String? = nil, log: KubeTestLog
    ) throws -> KubernetesAppControl {
        let tokenFile = server.directory.appending("token")
        try Data(token.utf8).write(to: tokenFile)
        let config = InClusterConfig(
            apiServer: server.apiServer, tokenFile: tokenFile.path, caFile: caFile ?? server.caFile, namespace: "visual"
        )
        return KubernetesAppControl(deployment: "visual-platform", config: config, logger: log.logger, waits: Self.fast)
    }

    /// The pod template of the Deployment the `deployment` exchanges answer, read straight from the file.
    func writtenTemplate() throws -> JSONValue {
        let file = try JSONDecoder().decode(
            JSONValue.self, from: Data(contentsOf: KubeExchangeServer.exchangeFile("deployment")))
        guard case .array(let exchanges)? = file["exchanges"],
            let template = exchanges.first?["response"]?["body"]?["spec"]?["template"]
        else { throw TestSupportError("deployment.json has no template") }
        return template
    }

    /// What `deployment()` records, after a trip through JSON as in a backup's metadata.json.
    func recordedDeployment() async throws -> AppDeployment {
        let log = KubeTestLog()
        let recorded = try await KubeExchangeServer.with("deployment") { server in
            try await makeControl(server, log: log).deployment()
        }
        let deployment = try #require(recorded)
        return try JSONDecoder().decode(AppDeployment.self, from: JSONEncoder().encode(deployment))
    }

    @Test("deployment() records the Deployment's pod template whole, with its name and namespace")
    func recordsTemplate() async throws {
        let recorded = try await recordedDeployment()
        #expect(recorded.control == "kubernetes")
        #expect(recorded.deployment == "visual-platform")
        #expect(recorded.namespace == "visual")
        #expect(recorded.podTemplate == (try writtenTemplate()))
        #expect(AppDeployment.images(in: recorded.podTemplate) == ["registry.example.com/visual/platform:1.4.2"])
        #expect(
            recorded.summary.contains(
                "deployment visual/visual-platform with registry.example.com/visual/platform:1.4.2"))
    }

    @Test(
        "stop() scales to 0 recording the replica count in an annotation, in one patch, and waits until no pod is left")
    func stopScalesToZero() async throws {
        let log = KubeTestLog()
        try await KubeExchangeServer.with("stop") { server in
            try await makeControl(server, log: log).stop()
        }
        #expect(log.contains("Scaled deployment visual/visual-platform from 3 replica(s) to 0"), "\(log.lines)")
        #expect(log.contains("Waiting for 2 pod(s) of deployment visual/visual-platform to end"), "\(log.lines)")
        #expect(log.contains("No pod of deployment visual/visual-platform is left"), "\(log.lines)")
    }

    @Test("stop() reads again after a 409 Conflict and records the count it actually replaced")
    func stopRetriesConflict() async throws {
        let log = KubeTestLog()
        try await KubeExchangeServer.with("stop-conflict") { server in
            try await makeControl(server, log: log).stop()
        }
        #expect(log.contains("changed while it was being patched"), "\(log.lines)")
        #expect(log.contains("from 4 replica(s) to 0"), "\(log.lines)")
    }

    @Test("start() by a new process after a kill restores the replica count from the annotation and awaits the rollout")
    func startAfterKill() async throws {
        let log = KubeTestLog()
        try await KubeExchangeServer.with("start-after-kill") { server in
            // A control object made afresh: nothing of the stop is in memory.
            try await makeControl(server, log: log).start(on: nil)
        }
        #expect(log.contains("Patched deployment visual/visual-platform: replicas 0 → 3"), "\(log.lines)")
        #expect(log.contains("waiting for the deployment controller to see the change"), "\(log.lines)")
        #expect(log.contains("1 of 3 updated replica(s) available"), "\(log.lines)")
        #expect(log.contains("rolled out: 3 of 3 replica(s) available"), "\(log.lines)")
    }

    @Test(
        "start(on: recorded) patches the pod template back (old image, added env var, annotation and nodeSelector gone) with the replicas, then awaits the rollout"
    )
    func startOnRecorded() async throws {
        let recorded = try await recordedDeployment()
        let log = KubeTestLog()
        try await KubeExchangeServer.with("start-on-recorded") { server in
            let control = try makeControl(server, log: log)
            #expect(try await control.cannotRestore(recorded) == nil)
            try await control.start(on: recorded)
        }
        #expect(
            log.contains(
                "images registry.example.com/visual/platform:1.5.0 → registry.example.com/visual/platform:1.4.2"),
            "\(log.lines)")
        #expect(log.contains("replicas 0 → 3"), "\(log.lines)")
        #expect(log.contains("1 of 3 replica(s) updated"), "\(log.lines)")
        #expect(log.contains("1 old replica(s) still terminating"), "\(log.lines)")
        #expect(log.contains("rolled out: 3 of 3 replica(s) available"), "\(log.lines)")
    }

    @Test("stop() waits for the pods only up to its limit, then fails naming the pods still there", .timeLimit(.minutes(1)))
    func stopTimeout() async throws {
        let log = KubeTestLog()
        try await KubeExchangeServer.with("stop-timeout") { server in
            let tokenFile = server.directory.appending("token")
            try Data(Self.tokenA.utf8).write(to: tokenFile)
            let control = KubernetesAppControl(
                deployment: "visual-platform",
                config: InClusterConfig(
                    apiServer: server.apiServer, tokenFile: tokenFile.path, caFile: server.caFile, namespace: "visual"),
                logger: log.logger,
                waits: .init(stop: .milliseconds(300), start: .seconds(20), pollInterval: .milliseconds(20)))
            let error = await #expect(throws: ContingencyError.self) { try await control.stop() }
            // The wait is bounded by its limit, not by the pod: at one listing per poll interval, a 300 ms limit
            // allows about 15 listings (fewer on a busy machine), never an endless poll.
            let listings = try server.report().answered - 2
            #expect((1...20).contains(listings), "\(listings) pod listings")
            let text = String(describing: error)
            #expect(text.contains("still run \(Duration.milliseconds(300)) after"), "\(text)")
            #expect(text.contains("1 pod(s) of deployment visual/visual-platform still run"), "\(text)")
            #expect(text.contains("visual-platform-5f6c9d7b8-x2kqp"), "\(text)")
        }
    }

    @Test("start() after a stop that failed before scaling (no annotation, replicas as they were) patches nothing")
    func startAfterFailedStop() async throws {
        let log = KubeTestLog()
        try await KubeExchangeServer.with("start-after-failed-stop") { server in
            try await makeControl(server, log: log).start(on: nil)
        }
        #expect(log.contains("already runs 3 replica(s); nothing to patch"), "\(log.lines)")
        #expect(log.contains("rolled out: 3 of 3 replica(s) available"), "\(log.lines)")
    }

    @Test("a rollout that exceeds its progress deadline fails start() with the controller's message")
    func startDeadline() async throws {
        let log = KubeTestLog()
        try await KubeExchangeServer.with("start-deadline") { server in
            let error = await #expect(throws: ContingencyError.self) {
                try await makeControl(server, log: log).start(on: nil)
            }
            #expect(error?.description.contains("did not start") == true, "\(String(describing: error))")
            #expect(error?.description.contains("has timed out progressing") == true, "\(String(describing: error))")
        }
    }

    @Test("403 Forbidden: the error names the RBAC verb and resource the service account lacks, and never the token")
    func forbidden() async throws {
        let log = KubeTestLog()
        try await KubeExchangeServer.with("forbidden-patch") { server in
            let error = await #expect(throws: ContingencyError.self) {
                try await makeControl(server, log: log).stop()
            }
            let text = String(describing: error)
            #expect(text.contains("403 Forbidden"), "\(text)")
            #expect(text.contains("cannot patch resource \"deployments\""), "\(text)")
            #expect(
                text.contains("needs the RBAC verb \"patch\" on deployments (API group apps) in namespace visual"),
                "\(text)")
            #expect(!text.contains(Self.tokenA))
            #expect(!text.contains("c2lnbmF0dXJl"))
        }
        #expect(!log.lines.joined().contains("c2lnbmF0dXJl"))
    }

    @Test("a 503 and a 429 from an API server that restarts are sent again; the answer after them is used")
    func transientFaults() async throws {
        let log = KubeTestLog()
        let recorded = try await KubeExchangeServer.with("transient") { server in
            try await makeControl(server, log: log).deployment()
        }
        #expect(recorded?.podTemplate == (try writtenTemplate()))
    }

    @Test("the token file is read at each request: a token rotated between two calls is sent")
    func tokenRotation() async throws {
        let log = KubeTestLog()
        try await KubeExchangeServer.with("token-rotation") { server in
            let control = try makeControl(server, token: Self.tokenA, log: log)
            _ = try await control.deployment()
            // As the kubelet rotates a projected token: a new file moved into place.
            let next = server.directory.appending("token.next")
            try Data("\(Self.tokenB)\n".utf8).write(to: next)
            guard rename(next.path, server.directory.appending("token").path) == 0 else {
                throw TestSupportError("rename: \(String(cString: strerror(errno)))")
            }
            _ = try await control.deployment()
        }
        #expect(!log.lines.joined().contains("c2lnbmF0dXJl"))
    }

    @Test("a server whose certificate the service account's CA did not sign is refused before any request")
    func wrongCA() async throws {
        let log = KubeTestLog()
        try await KubeExchangeServer.with("no-request") { server in
            let error = await #expect(throws: ContingencyError.self) {
                try await makeControl(server, caFile: server.otherCAFile, log: log).deployment()
            }
            #expect(String(describing: error).contains("did not answer"), "\(String(describing: error))")
        }
    }

    @Test("cannotRestore: another control, another deployment or namespace, no template, labels off the selector")
    func cannotRestore() async throws {
        let recorded = try await recordedDeployment()
        let log = KubeTestLog()
        // Refused before any request (the server expects none).
        try await KubeExchangeServer.with("no-request") { server in
            let control = try makeControl(server, log: log)
            var docker = recorded
            docker.control = "docker"
            #expect(try await control.cannotRestore(docker)?.contains("APP_CONTROL=docker") == true)
            var other = recorded
            other.deployment = "billing"
            #expect(try await control.cannotRestore(other)?.contains("deployment billing's version") == true)
            var elsewhere = recorded
            elsewhere.namespace = "staging"
            #expect(try await control.cannotRestore(elsewhere)?.contains("namespace staging") == true)
            var bare = recorded
            bare.podTemplate = nil
            #expect(try await control.cannotRestore(bare)?.contains("no pod template") == true)
            // start(on:) refuses it too, changing nothing.
            await #expect(throws: ContingencyError.self) { try await control.start(on: bare) }
        }
        // Checked against the Deployment's selector (one read each).
        try await KubeExchangeServer.with("cannot-restore") { server in
            let control = try makeControl(server, log: log)
            #expect(try await control.cannotRestore(recorded) == nil)
            var relabelled = recorded
            relabelled.podTemplate = Self.replacingLabels(of: recorded.podTemplate, with: ["app": "visual"])
            let reason = try await control.cannotRestore(relabelled)
            #expect(
                reason?.contains("do not match deployment visual/visual-platform's selector") == true,
                "\(String(describing: reason))")
        }
    }

    @Test("the merge patch made from two templates: removed members become null, arrays are replaced whole")
    func mergePatchTable() throws {
        func json(_ text: String) throws -> JSONValue {
            try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        }
        let cases: [(from: String, to: String, patch: String?)] = [
            (#"{"a":1}"#, #"{"a":1}"#, nil),
            (#"{"a":1,"b":2}"#, #"{"a":1}"#, #"{"b":null}"#),
            (#"{"a":{"x":1,"y":2}}"#, #"{"a":{"x":1}}"#, #"{"a":{"y":null}}"#),
            (#"{"env":[{"name":"A"},{"name":"B"}]}"#, #"{"env":[{"name":"A"}]}"#, #"{"env":[{"name":"A"}]}"#),
            (#"{"t":null}"#, #"{"t":null}"#, nil),
            (#"{"t":"x"}"#, #"{"t":null}"#, #"{"t":null}"#),
            (#"{}"#, #"{"n":{"k":"v"}}"#, #"{"n":{"k":"v"}}"#),
            (#"{"s":"a"}"#, #"{"s":{"k":1}}"#, #"{"s":{"k":1}}"#),
        ]
        for item in cases {
            let patch = KubernetesAppControl.mergePatch(from: try json(item.from), to: try json(item.to))
            #expect(patch == (try item.patch.map(json)), "\(item.from) → \(item.to)")
        }
        #expect(
            KubernetesAppControl.selector(
                try json(
                    #"{"matchLabels":{"b":"2","a":"1"},"matchExpressions":[{"key":"t","operator":"In","values":["x","y"]},{"key":"u","operator":"DoesNotExist"}]}"#
                ))
                == "a=1,b=2,t in (x,y),!u")
    }

    @Test(
        "the in-cluster configuration: KUBERNETES_SERVICE_HOST/PORT and the service account's files; outside a pod, a clear error"
    )
    func inClusterConfig() async throws {
        let folder = try TemporaryDirectory()
        try Data(Self.tokenA.utf8).write(to: folder.appending("token"))
        try Data("visual\n".utf8).write(to: folder.appending("namespace"))
        let environment = ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"]
        let config = try InClusterConfig.fromEnvironment(environment, namespace: nil, directory: folder.path)
        #expect(
            config
                == InClusterConfig(
                    apiServer: "https://10.96.0.1:443", tokenFile: folder.appending("token").path,
                    caFile: folder.appending("ca.crt").path, namespace: "visual"))
        let billing = try InClusterConfig.fromEnvironment(environment, namespace: "billing", directory: folder.path)
        #expect(billing.namespace == "billing")
        let ipv6 = ["KUBERNETES_SERVICE_HOST": "fd00:10:96::1", "KUBERNETES_SERVICE_PORT": "443"]
        let ipv6Config = try InClusterConfig.fromEnvironment(ipv6, namespace: nil, directory: folder.path)
        #expect(ipv6Config.apiServer == "https://[fd00:10:96::1]:443")

        let outside = #expect(throws: ContingencyError.self) {
            try InClusterConfig.fromEnvironment([:], namespace: nil, directory: folder.path)
        }
        #expect(outside?.isConfiguration == true)
        #expect(outside?.message.contains("KUBERNETES_SERVICE_HOST") == true)
        try FileManager.default.removeItem(at: folder.appending("token"))
        let noToken = #expect(throws: ContingencyError.self) {
            try InClusterConfig.fromEnvironment(environment, namespace: nil, directory: folder.path)
        }
        #expect(noToken?.message.contains("no service account token") == true)

        // The factory's initializer, here outside any pod: the first call says so, as a configuration error.
        let log = KubeTestLog()
        let control = KubernetesAppControl(
            settings: AppControlSettings(kind: .kubernetes, deployment: "visual-platform", namespace: "visual"),
            logger: log.logger)
        #expect(control.description == "Kubernetes deployment visual/visual-platform")
        // Names go into request paths: anything Kubernetes would not accept as a name is refused first.
        for name in ["../../api/v1/secrets", "Visual", "web/x", "", "-web"] {
            let bad = KubernetesAppControl(
                deployment: name,
                config: InClusterConfig(
                    apiServer: "https://127.0.0.1:1", tokenFile: "/nonexistent",
                    caFile: "/nonexistent", namespace: "visual"), logger: log.logger)
            let error = await #expect(throws: ContingencyError.self, "\(name)") { _ = try await bad.deployment() }
            #expect(error?.isConfiguration == true, "\(name): \(String(describing: error))")
        }
        #expect(KubernetesAppControl.isName("visual-platform.v2", maximum: 253, dots: true))
        #expect(!KubernetesAppControl.isName("visual.ns", maximum: 63, dots: false))
        if ProcessInfo.processInfo.environment["KUBERNETES_SERVICE_HOST"] == nil {
            let error = await #expect(throws: ContingencyError.self) { try await control.stop() }
            #expect(error?.isConfiguration == true, "\(String(describing: error))")
        }
    }

    @Test(
        "the exchange server itself refuses a missing or wrong token, another verb, Content-Type or body, and a float")
    func replayServerIsStrict() async throws {
        try await KubeExchangeServer.with("stop", verify: false) { server in
            let deployment = "\(server.apiServer)/apis/apps/v1/namespaces/visual/deployments/visual-platform"
            func curl(_ arguments: [String]) async throws -> String {
                let result = try await ProcessRunner.run(
                    "curl", ["-q", "-sS", "--noproxy", "*", "--max-time", "10", "--cacert", server.caFile] + arguments,
                    requireSuccess: true)
                return result.stdout
            }
            let bearer = ["-H", "Authorization: Bearer \(Self.tokenA)"]
            _ = try await curl([deployment])
            _ = try await curl(["-H", "Authorization: Bearer \(Self.tokenB)", deployment])
            _ = try await curl(bearer + ["-X", "DELETE", deployment])
            #expect(try await curl(bearer + [deployment]).contains("\"resourceVersion\": \"51870\""))  // served
            let merge = ["-X", "PATCH", "-H", "Content-Type: application/merge-patch+json"]
            let good =
                #"{"metadata":{"annotations":{"contingency.io/replicas-before-stop":"3"},"resourceVersion":"51870"},"spec":{"replicas":0}}"#
            _ = try await curl(
                bearer + [
                    "-X", "PATCH", "-H", "Content-Type: application/strategic-merge-patch+json", "--data-binary", good,
                    deployment,
                ])
            _ = try await curl(
                bearer + merge + ["--data-binary", good.replacingOccurrences(of: "0}}", with: "0.0}}"), deployment])
            _ = try await curl(
                bearer + merge + ["--data-binary", good.replacingOccurrences(of: "\"3\"", with: "3"), deployment])
            let report = try server.report()
            #expect(report.served == 1)
            let expected = [
                "no Authorization header", "wrong bearer token", "got DELETE",
                "Content-Type 'application/strategic-merge-patch+json'",
                "writes the number 0.0", "body differs at $.metadata.annotations.contingency.io/replicas-before-stop",
            ]
            #expect(report.failures.count == expected.count, "\(report)")
            for (failure, text) in zip(report.failures, expected) { #expect(failure.contains(text), "\(failure)") }
            #expect(!report.unconsumed.isEmpty)
        }
    }

    static func replacingLabels(of template: JSONValue?, with labels: [String: String]) -> JSONValue? {
        guard case .object(var members)? = template, case .object(var metadata)? = members["metadata"] else {
            return template
        }
        metadata["labels"] = .object(labels.mapValues { .string($0) })
        members["metadata"] = .object(metadata)
        return .object(members)
    }
}

/// A logger that keeps every line, for assertions on what was logged.
private final class KubeTestLog: Sendable {
    private let storage = Mutex<[String]>([])

    var lines: [String] { storage.withLock { $0 } }
    func contains(_ text: String) -> Bool { lines.contains { $0.contains(text) } }

    var logger: Logger {
        let handler = Handler(owner: self)
        return Logger(label: "test") { _ in handler }
    }

    fileprivate func append(_ line: String) { storage.withLock { $0.append(line) } }

    struct Handler: LogHandler {
        let owner: KubeTestLog
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) { owner.append("\(event.message)") }
    }
}

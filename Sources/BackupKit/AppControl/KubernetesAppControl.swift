import BackupCore
import Foundation
import Logging

/// `APP_CONTROL=kubernetes`: the application is the Deployment `APP_DEPLOYMENT` in `APP_NAMESPACE` (default: the
/// service account's namespace), reached through the API server with the pod's service account.
///
/// - `stop` scales it to 0 and records the replica count it had in the Deployment's annotation
///   `contingency.io/replicas-before-stop`, in the same request, so a runner killed after the stop still finds
///   it; then waits until no pod of the Deployment's selector is left.
/// - `start` scales it back to the recorded count (1 when nothing was recorded and it is at 0) and removes the
///   annotation; with a deployment it also patches the pod template back to the recorded one, in the same request.
///   Then it waits for the rollout to complete (updated, available, no old pod left), as `kubectl rollout status`.
///
/// Every write carries the `resourceVersion` it was computed from (a 409 Conflict reads again and retries), so a
/// concurrent change (an autoscaler, a person) is never overwritten by a stale decision. The runner cannot run in
/// the application's own pod: scaling the Deployment to 0 would stop it. The RBAC it needs is in docs/rollback.md.
public struct KubernetesAppControl: AppControl {
    /// The annotation holding the replica count `stop` replaced, until `start` puts it back.
    public static let replicasAnnotation = "contingency.io/replicas-before-stop"

    /// How long `stop` and `start` wait, and how often they look.
    public struct Waits: Sendable, Equatable {
        /// For the last pod to end after the scale to 0 (a pod's default grace period is 30 s).
        public var stop: Duration
        /// For the rollout to complete after the start (a Deployment's default progress deadline is 600 s; a
        /// Deployment that reports `ProgressDeadlineExceeded` ends the wait sooner).
        public var start: Duration
        public var pollInterval: Duration

        public init(
            stop: Duration = .seconds(300), start: Duration = .seconds(600), pollInterval: Duration = .seconds(2)
        ) {
            self.stop = stop
            self.start = start
            self.pollInterval = pollInterval
        }
    }

    private let deploymentName: String?
    private let namespaceSetting: String?
    /// nil: the in-cluster configuration, resolved at each use (a missing service account is reported by the call
    /// that needs it, not when the runner is built).
    private let explicitConfig: InClusterConfig?
    private let logger: Logger
    private let waits: Waits

    /// The control of a runner in a pod: `settings.deployment` in `settings.namespace` (or the service account's),
    /// with the in-cluster configuration.
    public init(settings: AppControlSettings, logger: Logger, waits: Waits = Waits()) {
        deploymentName = settings.deployment
        namespaceSetting = settings.namespace
        explicitConfig = nil
        self.logger = logger
        self.waits = waits
    }

    /// The control of `deployment` through the API server `config` describes (`config.namespace` is the
    /// Deployment's).
    public init(deployment: String, config: InClusterConfig, logger: Logger, waits: Waits = Waits()) {
        deploymentName = deployment
        namespaceSetting = config.namespace
        explicitConfig = config
        self.logger = logger
        self.waits = waits
    }

    public var description: String {
        "Kubernetes deployment \(namespaceSetting.map { "\($0)/" } ?? "")\(deploymentName ?? "(APP_DEPLOYMENT not set)")"
    }

    // MARK: - AppControl

    public func deployment() async throws -> AppDeployment? {
        let target = try await resolve()
        let object = try await target.read("reading the application's version")
        guard let template = object["spec"]?["template"], template.kubeObject != nil else {
            throw ContingencyError.failed("deployment \(target.shown) has no spec.template")
        }
        return AppDeployment(
            control: AppControlSettings.Kind.kubernetes.rawValue, deployment: target.name,
            namespace: target.api.config.namespace, podTemplate: template)
    }

    public func cannotRestore(_ recorded: AppDeployment) async throws -> String? {
        let target = try await resolve()
        if let reason = Self.reason(recorded, name: target.name, namespace: target.api.config.namespace) {
            return reason
        }
        // The selector cannot change; a template whose labels it no longer matches would be refused (422).
        let current = try await target.read("checking the recorded pod template")
        let matchLabels = current["spec"]?["selector"]?["matchLabels"]?.kubeObject ?? [:]
        let labels = recorded.podTemplate?["metadata"]?["labels"]?.kubeObject ?? [:]
        let missing = matchLabels.keys.sorted().filter { labels[$0] != matchLabels[$0] }
        if !missing.isEmpty {
            return "the recorded pod template's labels do not match deployment \(target.shown)'s selector "
                + "(\(Self.selector(current["spec"]?["selector"]))) on \(missing.joined(separator: ", ")): the API "
                + "server would refuse it"
        }
        return nil
    }

    public func stop() async throws {
        let target = try await resolve()
        let stopped = try await withConflictRetry(target) {
            let current = try await target.read("stopping the application")
            let replicas = current["spec"]?["replicas"]?.kubeInt ?? 1
            guard replicas > 0 else {
                let recorded = Self.recordedReplicas(current).map { " (\($0) replica(s) recorded to start again)" }
                logger.info("Deployment \(target.shown) is already scaled to 0\(recorded ?? "")")
                return current
            }
            let patch: JSONValue = .object([
                "metadata": .object([
                    "resourceVersion": current["metadata"]?["resourceVersion"] ?? .null,
                    "annotations": .object([Self.replicasAnnotation: .string(String(replicas))]),
                ]),
                "spec": .object(["replicas": .number(0)]),
            ])
            let patched = try await target.patch(patch, "stopping the application")
            let recorded = "\(replicas) recorded in its annotation \(Self.replicasAnnotation)"
            logger.info("Scaled deployment \(target.shown) from \(replicas) replica(s) to 0 (\(recorded))")
            return patched
        }
        try await waitForNoPods(target, selector: stopped["spec"]?["selector"])
    }

    public func start(on recorded: AppDeployment?) async throws {
        let target = try await resolve()
        if let recorded, let reason = Self.reason(recorded, name: target.name, namespace: target.api.config.namespace) {
            throw ContingencyError.failed(
                "cannot put back \(recorded.summary) on deployment \(target.shown): \(reason); nothing was changed",
                hint: "start the application without restoring its version")
        }
        try await withConflictRetry(target) {
            let current = try await target.read("starting the application")
            let replicas = current["spec"]?["replicas"]?.kubeInt ?? 1
            let annotation = current["metadata"]?["annotations"]?[Self.replicasAnnotation]
            let recordedReplicas = Self.recordedReplicas(current)
            if annotation != nil, recordedReplicas == nil {
                let annotationName = Self.replicasAnnotation
                logger.warning(
                    "Deployment \(target.shown)'s annotation \(annotationName) is not a replica count; ignoring it")
            }
            let wanted = recordedReplicas ?? (replicas == 0 ? 1 : replicas)

            var metadata: [String: JSONValue] = ["resourceVersion": current["metadata"]?["resourceVersion"] ?? .null]
            if annotation != nil { metadata["annotations"] = .object([Self.replicasAnnotation: .null]) }
            var spec: [String: JSONValue] = [:]
            if wanted != replicas { spec["replicas"] = .number(Double(wanted)) }
            var changes: [String] = []
            if wanted != replicas { changes.append("replicas \(replicas) → \(wanted)") }
            if let template = recorded?.podTemplate {
                let now = current["spec"]?["template"] ?? .object([:])
                if let templatePatch = Self.mergePatch(from: now, to: template) {
                    spec["template"] = templatePatch
                    let before = AppDeployment.images(in: now).joined(separator: ", ")
                    let after = AppDeployment.images(in: template).joined(separator: ", ")
                    changes.append("pod template put back as recorded (images \(before) → \(after))")
                } else {
                    logger.info("Deployment \(target.shown)'s pod template is already the recorded one")
                }
            }
            guard !spec.isEmpty || annotation != nil else {
                logger.info("Deployment \(target.shown) already runs \(replicas) replica(s); nothing to patch")
                return
            }
            var patch: [String: JSONValue] = ["metadata": .object(metadata)]
            if !spec.isEmpty { patch["spec"] = .object(spec) }
            _ = try await target.patch(.object(patch), "starting the application")
            if changes.isEmpty { changes.append("annotation \(Self.replicasAnnotation) removed") }
            logger.info("Patched deployment \(target.shown): \(changes.joined(separator: "; "))")
        }
        try await waitForRollout(target)
    }

    // MARK: - Steps

    /// The Deployment this control acts on, with its API client.
    private struct Target: Sendable {
        let api: KubernetesAPI
        let name: String
        var shown: String { "\(api.config.namespace)/\(name)" }
        var path: String { "/apis/apps/v1/namespaces/\(api.config.namespace)/deployments/\(name)" }

        func read(_ what: String) async throws -> JSONValue {
            try await api.get(
                path, access: .init(verb: "get", resource: "deployments", group: "apps"),
                what: "\(what): deployment \(shown)")
        }

        func patch(_ patch: JSONValue, _ what: String) async throws -> JSONValue {
            try await api.mergePatch(
                path, patch, access: .init(verb: "patch", resource: "deployments", group: "apps"),
                what: "\(what): deployment \(shown)")
        }
    }

    private func resolve() async throws -> Target {
        guard let deploymentName, !deploymentName.isEmpty else {
            throw ContingencyError.configuration(
                "APP_CONTROL=kubernetes needs APP_DEPLOYMENT (the application's Deployment)")
        }
        // Both go into request paths: only the names Kubernetes itself accepts.
        guard Self.isName(deploymentName, maximum: 253, dots: true) else {
            throw ContingencyError.configuration(
                "APP_DEPLOYMENT=\(deploymentName) is not a Deployment name (lowercase letters, digits, '-' and '.')")
        }
        let config: InClusterConfig
        if let explicitConfig {
            config = explicitConfig
        } else {
            let namespace = namespaceSetting
            config = try await Blocking.run { () throws -> InClusterConfig in
                try InClusterConfig.fromEnvironment(namespace: namespace)
            }
        }
        guard Self.isName(config.namespace, maximum: 63, dots: false) else {
            throw ContingencyError.configuration(
                "the namespace \(config.namespace) is not a Kubernetes namespace name (lowercase letters, digits, '-')",
                hint: "check APP_NAMESPACE")
        }
        return Target(api: KubernetesAPI(config: config, retryDelay: waits.pollInterval), name: deploymentName)
    }

    /// A DNS-1123 name (a Deployment's, with `dots`) or label (a namespace's).
    static func isName(_ name: String, maximum: Int, dots: Bool) -> Bool {
        let scalars = Array(name.unicodeScalars)
        guard !scalars.isEmpty, scalars.count <= maximum else { return false }
        let alphanumeric: (Unicode.Scalar) -> Bool = { ("a"..."z").contains($0) || ("0"..."9").contains($0) }
        guard alphanumeric(scalars.first!), alphanumeric(scalars.last!) else { return false }
        return scalars.allSatisfy { alphanumeric($0) || $0 == "-" || (dots && $0 == ".") }
    }

    /// Runs `body` again (it reads the Deployment afresh) when its write met a 409 Conflict, up to 5 times.
    private func withConflictRetry<T: Sendable>(_ target: Target, _ body: () async throws -> T) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await body()
            } catch let conflict as KubernetesConflict {
                guard attempt < 5 else {
                    throw ContingencyError.failed(
                        "\(conflict.message) (\(attempt) attempts)",
                        hint:
                            "something else keeps changing deployment \(target.shown): pause it (a GitOps tool, an autoscaler) and retry"
                    )
                }
                logger.info("Deployment \(target.shown) changed while it was being patched; reading it again")
                attempt += 1
            }
        }
    }

    /// Waits until no running pod matches the Deployment's selector (terminating pods still count: they may still
    /// write to the database; pods that ended, such as evicted ones, do not).
    private func waitForNoPods(_ target: Target, selector: JSONValue?) async throws {
        let labelSelector = Self.selector(selector)
        guard !labelSelector.isEmpty else {
            throw ContingencyError.failed(
                "deployment \(target.shown) has no label selector: cannot tell when its pods are gone")
        }
        let path = "/api/v1/namespaces/\(target.api.config.namespace)/pods"
        let query = [
            ("labelSelector", labelSelector), ("fieldSelector", "status.phase!=Failed,status.phase!=Succeeded"),
        ]
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: waits.stop)
        var announced = false
        while true {
            let list = try await target.api.get(
                path, query: query, access: .init(verb: "list", resource: "pods", group: ""),
                what: "waiting for the pods of deployment \(target.shown) to end")
            let pods = (list["items"]?.kubeArray ?? []).filter {
                let phase = $0["status"]?["phase"]?.stringValue
                return phase != "Failed" && phase != "Succeeded"
            }
            let names = pods.compactMap { $0["metadata"]?["name"]?.stringValue }
            if pods.isEmpty {
                logger.info("No pod of deployment \(target.shown) is left")
                return
            }
            if clock.now >= deadline {
                throw ContingencyError.failed(
                    "\(pods.count) pod(s) of deployment \(target.shown) still run \(waits.stop) after it was scaled to 0: "
                        + names.joined(separator: ", "),
                    hint: "look at them with kubectl describe pod (a finalizer, a long terminationGracePeriodSeconds, "
                        + "or another workload's pod that the selector also matches)")
            }
            if !announced {
                logger.info(
                    "Waiting for \(pods.count) pod(s) of deployment \(target.shown) to end: \(names.joined(separator: ", "))"
                )
                announced = true
            }
            try await Task.sleep(for: waits.pollInterval)
        }
    }

    /// Waits until the rollout is complete, by `kubectl rollout status`'s rules: the controller has seen the
    /// latest generation, every replica runs the current template, no old one is left, all are available.
    private func waitForRollout(_ target: Target) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: waits.start)
        var lastState = ""
        while true {
            let current = try await target.read("waiting for the application to start")
            let status = current["status"]
            let generation = current["metadata"]?["generation"]?.kubeInt ?? 0
            let observed = status?["observedGeneration"]?.kubeInt ?? 0
            let wanted = current["spec"]?["replicas"]?.kubeInt ?? 1
            // Zero counts are left out of a Deployment's status.
            let replicas = status?["replicas"]?.kubeInt ?? 0
            let updated = status?["updatedReplicas"]?.kubeInt ?? 0
            let available = status?["availableReplicas"]?.kubeInt ?? 0
            let state: String
            if observed < generation {
                state = "waiting for the deployment controller to see the change"
            } else {
                let progressing = (status?["conditions"]?.kubeArray ?? []).first {
                    $0["type"]?.stringValue == "Progressing"
                }
                if progressing?["reason"]?.stringValue == "ProgressDeadlineExceeded" {
                    throw ContingencyError.failed(
                        "deployment \(target.shown) did not start: "
                            + (progressing?["message"]?.stringValue ?? "its progress deadline was exceeded")
                            + " (\(available) of \(wanted) replica(s) available)",
                        hint:
                            "see kubectl describe deployment \(target.name) -n \(target.api.config.namespace) and its pods' events"
                    )
                }
                if updated < wanted {
                    state = "\(updated) of \(wanted) replica(s) updated"
                } else if replicas > updated {
                    state = "\(replicas - updated) old replica(s) still terminating"
                } else if available < updated {
                    state = "\(available) of \(updated) updated replica(s) available"
                } else {
                    logger.info("Deployment \(target.shown) rolled out: \(available) of \(wanted) replica(s) available")
                    return
                }
            }
            if clock.now >= deadline {
                throw ContingencyError.failed(
                    "deployment \(target.shown) did not start within \(waits.start): \(state)",
                    hint: "see kubectl rollout status deployment/\(target.name) -n \(target.api.config.namespace)")
            }
            if state != lastState {
                logger.info("Waiting for deployment \(target.shown): \(state)")
                lastState = state
            }
            try await Task.sleep(for: waits.pollInterval)
        }
    }

    // MARK: - Pure rules

    /// Why `recorded` cannot be put back on deployment `name` in `namespace`, before asking the API server.
    static func reason(_ recorded: AppDeployment, name: String, namespace: String) -> String? {
        guard recorded.control == AppControlSettings.Kind.kubernetes.rawValue else {
            return "it was recorded by APP_CONTROL=\(recorded.control), and this runner uses APP_CONTROL=kubernetes"
        }
        guard let recordedName = recorded.deployment, recordedName == name else {
            return "it is \(recorded.deployment.map { "deployment \($0)'s" } ?? "no deployment's") version, and "
                + "APP_DEPLOYMENT is \(name)"
        }
        if let recordedNamespace = recorded.namespace, recordedNamespace != namespace {
            return "it was recorded in namespace \(recordedNamespace), and the deployment is in \(namespace)"
        }
        guard recorded.podTemplate?.kubeObject != nil else { return "the backup recorded no pod template" }
        return nil
    }

    /// The replica count `stop` recorded, if the annotation holds one.
    static func recordedReplicas(_ deployment: JSONValue) -> Int? {
        guard let text = deployment["metadata"]?["annotations"]?[replicasAnnotation]?.stringValue,
            let count = Int(text), count > 0
        else { return nil }
        return count
    }

    /// A label selector (`matchLabels` and `matchExpressions`) in the query syntax: `app=web,tier in (a,b)`.
    static func selector(_ selector: JSONValue?) -> String {
        var terms: [String] = []
        for (key, value) in (selector?["matchLabels"]?.kubeObject ?? [:]).sorted(by: { $0.key < $1.key }) {
            terms.append("\(key)=\(value.stringValue ?? "")")
        }
        for expression in selector?["matchExpressions"]?.kubeArray ?? [] {
            guard let key = expression["key"]?.stringValue, let op = expression["operator"]?.stringValue else {
                continue
            }
            let values = (expression["values"]?.kubeArray ?? []).compactMap(\.stringValue).joined(separator: ",")
            switch op {
            case "In": terms.append("\(key) in (\(values))")
            case "NotIn": terms.append("\(key) notin (\(values))")
            case "Exists": terms.append(key)
            case "DoesNotExist": terms.append("!\(key)")
            default: continue
            }
        }
        return terms.joined(separator: ",")
    }

    /// The JSON merge patch (RFC 7386) that turns `current` into `target`, or nil when they are equal.
    ///
    /// A merge patch keeps every object member it does not name, so patching the recorded template alone would
    /// leave what a broken deploy added to an object (a `nodeSelector` entry, a template annotation, a
    /// `securityContext` field) in place: every member of `current` that `target` lacks is set to null, which
    /// removes it. Arrays (`containers`, `env`, `volumes`) are replaced whole by a merge patch, so an env var
    /// the broken deploy added to a container disappears with the recorded `containers` array. A null in
    /// `target` (`creationTimestamp: null`) means absent, as Kubernetes reads it.
    static func mergePatch(from current: JSONValue, to target: JSONValue) -> JSONValue? {
        guard case .object(let now) = current, case .object(let wanted) = target else {
            return current == target ? nil : target
        }
        var patch: [String: JSONValue] = [:]
        for (key, value) in now where value != .null && (wanted[key] == nil || wanted[key] == .null) {
            patch[key] = .null
        }
        for (key, value) in wanted where value != .null {
            if let old = now[key], old != .null {
                if let change = mergePatch(from: old, to: value) { patch[key] = change }
            } else {
                patch[key] = value
            }
        }
        return patch.isEmpty ? nil : .object(patch)
    }
}

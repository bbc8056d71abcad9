import BackupCore
import Foundation
import TestSupport
import Testing

/// The Helm chart (charts/contingency) rendered and linted by Helm's own Go SDK (PyPI helm-python-sdk, no helm
/// binary, no cluster, no network), for the defaults and each realistic values file of charts/contingency/ci/.
/// Every rendered object of a core kind is validated against the Kubernetes 1.30 schemas kubernetes-validate
/// ships (strict: an unknown field is an error); ServiceMonitor and PrometheusRule against the prometheus-operator
/// CRDs kept in Tests/Support/helm/crds. Then the objects are held to the product's rules: CronJobs never overlap,
/// pods run as 10001 on a read-only root, secrets reach the processes as files, every variable is one the
/// executable reads, RBAC is exactly what the Kubernetes app control calls. No Kubernetes runs here.
/// The CI/CD example is validated against GitHub's workflow schema (check-jsonschema's vendored copy).
@Suite("Helm chart and CI example (rendered, linted, validated offline)")
struct HelmChartTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let chart = root.appending(path: "charts/contingency")
    static let helper = root.appending(path: "Tests/Support/helm_check.py")
    static let install =
        "run scripts/install-deps.sh (pip-installs helm-python-sdk, kubernetes-validate, check-jsonschema, pinned)"

    /// The values files an operator would start from: nil is the chart's defaults.
    static let valueFiles: [String?] = [
        nil, "ci/volume-values.yaml", "ci/s3-values.yaml", "ci/injected-values.yaml", "ci/prometheus-values.yaml",
    ]

    /// What the helper printed for one rendering.
    struct Rendering {
        var objects: [[String: Any]]
        var validation: [[String: Any]]
        var values: [String: Any]

        func all(_ kind: String) -> [[String: Any]] { objects.filter { $0["kind"] as? String == kind } }
        func named(_ kind: String, _ suffix: String) -> [String: Any]? {
            all(kind).first { ($0.path("metadata", "name") as? String)?.hasSuffix(suffix) == true }
        }
    }

    // MARK: - Running the tools

    static func python(_ arguments: [String]) async throws -> ProcessResult {
        let result = try await ProcessRunner.run("python3", arguments, timeout: .seconds(180))
        if result.status == 3 || result.stderr.contains("No module named") {
            Issue.record("the chart's test tools are missing: \(install)\n\(result.stderr)")
        }
        return result
    }

    /// Renders the chart (or `parent` with the chart as its dependency) with `values` files under charts/contingency.
    static func render(
        _ values: [String?] = [nil], setJSON: [String] = [], parent: String? = nil
    ) async throws -> (ProcessResult, Rendering?) {
        var arguments = [helper.path, parent == nil ? "render" : "parent", "--chart", chart.path]
        if let parent { arguments += ["--parent", root.appending(path: parent).path] }
        for file in values.compactMap({ $0 }) {
            arguments += ["--values", file.hasPrefix("/") ? file : chart.appending(path: file).path]
        }
        for json in setJSON { arguments += ["--set-json", json] }
        let result = try await python(arguments)
        guard result.succeeded else { return (result, nil) }
        let decoded = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let objects = (decoded["objects"] as? [[String: Any]] ?? []).compactMap { $0["object"] as? [String: Any] }
        return (
            result,
            Rendering(
                objects: objects, validation: decoded["validation"] as? [[String: Any]] ?? [],
                values: decoded["values"] as? [String: Any] ?? [:])
        )
    }

    /// A rendering that must succeed and validate.
    static func valid(_ values: [String?] = [nil], setJSON: [String] = [], parent: String? = nil) async throws
        -> Rendering
    {
        let (result, rendering) = try await render(values, setJSON: setJSON, parent: parent)
        let shown = values.map { $0 ?? "defaults" }.joined(separator: " + ")
        let rendered = try #require(rendering, "\(shown) did not render: \(result)")
        #expect(!rendered.objects.isEmpty, "\(shown) rendered nothing")
        for check in rendered.validation {
            #expect(
                check["error"] is NSNull,
                "\(shown): \(check["kind"] ?? "?") \(check["name"] ?? "?") fails \(check["schema"] ?? "?"): \(check["error"] ?? "")"
            )
        }
        #expect(rendered.validation.count == rendered.objects.count, "\(shown): not every object was validated")
        return rendered
    }

    // MARK: - Rendering, validation, lint

    @Test("the defaults and every ci/ values file render, and every object passes its Kubernetes or CRD schema")
    func everyValuesFileRendersAndValidates() async throws {
        for file in Self.valueFiles {
            let rendered = try await Self.valid([file])
            Self.checkPods(rendered, file ?? "defaults")
            Self.checkSecretsStayFiles(rendered, file ?? "defaults")
            Self.checkCronJobs(rendered, file ?? "defaults")
        }
    }

    @Test("helm lint (strict, Kubernetes 1.30) finds no error nor warning for the defaults and every ci/ file")
    func lintIsClean() async throws {
        for file in Self.valueFiles {
            var arguments = [Self.helper.path, "lint", "--chart", Self.chart.path]
            if let file { arguments += ["--values", Self.chart.appending(path: file).path] }
            let result = try await Self.python(arguments)
            #expect(result.succeeded, "\(result)")
            let report = try #require(
                try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            #expect((report["errors"] as? [Any])?.isEmpty == true, "\(file ?? "defaults"): \(report)")
            let serious = (report["messages"] as? [[String: Any]] ?? []).filter { ($0["severity"] as? Int ?? 0) >= 2 }
            #expect(serious.isEmpty, "\(file ?? "defaults"): \(serious)")
        }
    }

    @Test("every key of values.yaml has a comment on the line above it")
    func valuesAreDocumented() throws {
        let lines = try String(contentsOf: Self.chart.appending(path: "values.yaml"), encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false)
        let key = try Regex(#"^\s*[A-Za-z0-9]+:"#)
        var keys = 0
        for (index, line) in lines.enumerated() where line.prefixMatch(of: key) != nil {
            keys += 1
            let above = index > 0 ? lines[index - 1].trimmingCharacters(in: .whitespaces) : ""
            #expect(above.hasPrefix("#"), "values.yaml line \(index + 1) has no comment: \(line)")
        }
        #expect(keys > 100, "only \(keys) keys found: is values.yaml read?")
    }

    @Test(
        "values.schema.json refuses wrong types and unknown keys, naming the key",
        arguments: [
            ("schedule-number.yaml", "/backup/schedule"), ("port-string.yaml", "/sidecar/port"),
            ("unknown-key.yaml", "'backups' not allowed"), ("retention-string.yaml", "/cleanup/retentionDays"),
        ])
    func schemaRefusesBadValues(file: String, key: String) async throws {
        let path = Self.root.appending(path: "Tests/Support/helm/bad/\(file)").path
        let (result, rendering) = try await Self.render([path])
        let accepted = rendering != nil
        #expect(!accepted, "\(file) was accepted")
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr.contains("schema") && result.stderr.contains(key), "\(file): \(result.stderr)")
    }

    @Test("contradictory values fail the rendering with what to change")
    func contradictionsFail() async throws {
        let cases: [(String, String)] = [
            (
                #"{"sidecar": {"mode": "injected", "injected": {"podSelector": {"app": "visual"}}}}"#,
                "sidecar.mode=injected with appControl.kind=kubernetes"
            ),
            (#"{"store": {"volume": {"enabled": false}}}"#, "no store"),
            (#"{"runner": {"restoreParts": "database,uploads,env"}}"#, "runner.restoreParts includes env"),
            (#"{"secrets": {"existingSecret": ""}}"#, "secrets.values.apiToken is empty"),
            (#"{"app": {"deployment": ""}}"#, "needs app.deployment"),
        ]
        for (json, message) in cases {
            let (result, rendering) = try await Self.render(setJSON: [json])
            let rendered = rendering != nil
            #expect(!rendered, "\(json) rendered")
            #expect(result.stderr.contains(message), "\(json): \(result.stderr)")
        }
    }

    // MARK: - What the objects must say

    @Test(
        "defaults: backup and cleanup CronJobs, runner and sidecar Deployments, the Service on SIDECAR_PORT's default"
    )
    func defaultsShape() async throws {
        let rendered = try await Self.valid()
        let backup = try #require(rendered.named("CronJob", "-backup"))
        #expect(backup.path("spec", "schedule") as? String == "0 0 * * *")
        #expect(Self.containers(backup).first?["args"] as? [String] == ["backup-job"])
        #expect(rendered.named("CronJob", "-cleanup") != nil)
        #expect(rendered.named("CronJob", "-drill") == nil, "drills need a scratch database: off by default")
        let runner = try #require(rendered.named("Deployment", "-runner"))
        #expect(Self.containers(runner).first?["args"] as? [String] == ["restore-job", "--loop"])
        #expect(Self.env(Self.containers(runner)[0])["RESTORE_PARTS"] == "database,uploads")
        let sidecar = try #require(rendered.named("Deployment", "-sidecar"))
        let container = try #require(Self.containers(sidecar).first)
        #expect(container["args"] as? [String] == ["health-sidecar", "--loop"])
        let port = try #require(Settings.sidecarPort.defaultValue.flatMap { Int($0) })
        #expect((container["ports"] as? [[String: Any]])?.first?["containerPort"] as? Int == port)
        #expect(Self.env(container)["SIDECAR_PORT"] == String(port))
        for probe in ["livenessProbe", "readinessProbe"] {
            #expect(container.path(probe, "httpGet", "path") as? String == "/healthz", "\(probe)")
        }
        let service = try #require(rendered.named("Service", "-sidecar"))
        #expect((service.path("spec", "ports") as? [[String: Any]])?.first?["targetPort"] as? Int == port)
        #expect(
            service.path("spec", "selector") as? [String: String] == sidecar.path("spec", "selector", "matchLabels")
                as? [String: String])
        // The loops' liveness file and the staging folder live under /tmp, the pods' only writable emptyDir.
        #expect(Settings.livenessFile.defaultValue?.hasPrefix("/tmp/") == true)
        #expect(Settings.stagingDir.defaultValue?.hasPrefix("/tmp/") == true)
        let pvc = try #require(rendered.all("PersistentVolumeClaim").first)
        #expect(pvc.path("spec", "accessModes") as? [String] == ["ReadWriteMany"])
        #expect(rendered.all("Secret").isEmpty, "the defaults read the operator's Secret, they make none")
    }

    @Test("RBAC: exactly the verbs KubernetesAppControl's requests need, on the application's Deployment, namespaced")
    func rbacIsExactlyWhatTheControlCalls() async throws {
        // The (verb, resource, group) of every request the control makes, read from its source.
        let source = try String(
            contentsOf: Self.root.appending(path: "Sources/BackupKit/AppControl/KubernetesAppControl.swift"),
            encoding: .utf8)
        let pattern = try Regex(#"access: \.init\(verb: "([a-z]+)", resource: "([a-z/]+)", group: "([a-z.]*)"\)"#)
        var called: Set<String> = []
        for match in source.matches(of: pattern) {
            called.insert(
                "\(match.output[3].substring ?? "")/\(match.output[2].substring ?? ""):\(match.output[1].substring ?? "")"
            )
        }
        #expect(called == ["apps/deployments:get", "apps/deployments:patch", "/pods:list"], "\(called)")

        let rendered = try await Self.valid(setJSON: [#"{"app": {"namespace": "shop"}}"#])
        let roles = rendered.all("Role")
        #expect(roles.count == 2)
        #expect(rendered.all("ClusterRole").isEmpty && rendered.all("ClusterRoleBinding").isEmpty)
        var granted: Set<String> = []
        for role in roles {
            #expect(
                role.path("metadata", "namespace") as? String == "shop", "Roles live in the application's namespace")
            for rule in role["rules"] as? [[String: Any]] ?? [] {
                let resources = rule["resources"] as? [String] ?? []
                if resources == ["deployments"] {
                    #expect(
                        rule["resourceNames"] as? [String] == ["visual-platform"], "only the application's Deployment")
                }
                for group in rule["apiGroups"] as? [String] ?? [] {
                    for resource in resources {
                        for verb in rule["verbs"] as? [String] ?? [] { granted.insert("\(group)/\(resource):\(verb)") }
                    }
                }
            }
        }
        #expect(granted == called, "granted \(granted.sorted()), the control calls \(called.sorted())")
        let recorder = try #require(rendered.named("Role", "-recorder"))
        #expect((recorder["rules"] as? [[String: Any]])?.flatMap { $0["verbs"] as? [String] ?? [] } == ["get"])
        for binding in rendered.all("RoleBinding") {
            #expect((binding["subjects"] as? [[String: Any]])?.first?["namespace"] as? String == "visual")
        }
        // Only the runner, the backups and the sidecar get a token; cleanup gets none.
        let runner = try #require(rendered.named("Deployment", "-runner"))
        #expect(Self.podSpec(runner)?["serviceAccountName"] as? String == "visual-contingency-runner")
        let cleanup = try #require(rendered.named("CronJob", "-cleanup"))
        #expect(Self.podSpec(cleanup)?["automountServiceAccountToken"] as? Bool == false)
        #expect(Self.podSpec(cleanup)?["serviceAccountName"] == nil)
        // Without Kubernetes app control there is nothing to grant.
        let command = try await Self.valid(setJSON: [#"{"appControl": {"kind": "command"}}"#])
        #expect(command.all("Role").isEmpty && command.all("ServiceAccount").isEmpty)
        for object in command.objects where Self.podSpec(object) != nil {
            #expect(Self.podSpec(object)?["automountServiceAccountToken"] as? Bool == false)
        }
    }

    @Test(
        "volume store: a ReadWriteMany claim of the class asked for, the chart's Secret, the .env read-only"
    )
    func volumeStore() async throws {
        let rendered = try await Self.valid(["ci/volume-values.yaml"])
        let pvc = try #require(rendered.all("PersistentVolumeClaim").first)
        #expect(pvc.path("spec", "storageClassName") as? String == "nfs-client")
        #expect(pvc.path("spec", "accessModes") as? [String] == ["ReadWriteMany"])
        #expect(pvc.path("metadata", "annotations", "helm.sh/resource-policy") as? String == "keep")
        let secret = try #require(rendered.all("Secret").first)
        let data = secret["data"] as? [String: String] ?? [:]
        let given = rendered.values.path("secrets", "values") as? [String: String] ?? [:]
        #expect(data["api-token"].flatMap { Data(base64Encoded: $0) } == Data(given["apiToken", default: "?"].utf8))
        #expect(data["s3-access-key-id"] == nil, "no bucket: no bucket keys")
        let backup = try #require(rendered.named("CronJob", "-backup"))
        let container = try #require(Self.containers(backup).first)
        #expect(Self.env(container)["ENV_FILE"] == "/app/env/.env")
        let envMount = (container["volumeMounts"] as? [[String: Any]])?.first {
            $0["mountPath"] as? String == "/app/env"
        }
        #expect(envMount?["readOnly"] as? Bool == true)
        let envVolume = Self.volumes(backup).first { $0["name"] as? String == envMount?["name"] as? String }
        #expect(envVolume?.path("secret", "secretName") as? String == "visual-env")
        #expect(Self.env(container)["BACKUP_SIGNING_KEY_FILE"] == "/run/secrets/contingency/signing-key")
        // The .env is never written back into the Secret by the runner.
        let runner = try #require(rendered.named("Deployment", "-runner"))
        let runnerEnv = Self.env(Self.containers(runner)[0])
        #expect(runnerEnv["RESTORE_PARTS"]?.contains("env") == false)
        #expect(runnerEnv["ENV_FILE"] == "")
        #expect(Self.volumes(runner).allSatisfy { $0["name"] as? String != "contingency-env" })
        let uploads = (Self.containers(runner)[0]["volumeMounts"] as? [[String: Any]])?.first {
            $0["mountPath"] as? String == "/app/uploads"
        }
        #expect(uploads?["readOnly"] as? Bool == false, "the runner restores the uploads")
        let drill = try #require(rendered.named("CronJob", "-drill"))
        #expect(Self.containers(drill).first?["args"] as? [String] == ["restore-job", "--drill"])
        #expect(Self.env(Self.containers(drill)[0])["DRILL_DATABASE_URL_FILE"] != nil)
        let config = try #require(rendered.all("ConfigMap").first)
        #expect((config.path("data", "verify-keys.pem") as? String)?.contains("BEGIN PUBLIC KEY") == true)
    }

    @Test(
        "S3 store: no claim, the bucket's credentials as files, the disaster-recovery Job restoring the named backup"
    )
    func s3Store() async throws {
        let rendered = try await Self.valid(["ci/s3-values.yaml"])
        #expect(rendered.all("PersistentVolumeClaim").isEmpty)
        #expect(rendered.all("Secret").isEmpty, "existingSecret: the chart makes none")
        let backupEnv = Self.env(Self.containers(try #require(rendered.named("CronJob", "-backup")))[0])
        #expect(backupEnv["BACKUP_DIR"] == nil, "the bucket alone: BACKUP_DIR unset")
        #expect(backupEnv["BACKUP_S3_URL"] == "s3://visual-backups/prod")
        #expect(backupEnv["S3_ENDPOINT"] == "https://minio.storage.svc:9000")
        #expect(backupEnv["AWS_ACCESS_KEY_ID_FILE"] == "/run/secrets/contingency/s3-access-key-id")
        #expect(backupEnv["AWS_SECRET_ACCESS_KEY_FILE"] == "/run/secrets/contingency/s3-secret-access-key")
        #expect(backupEnv["S3_CA_BUNDLE"] == "/etc/contingency/s3-ca.pem")
        let job = try #require(rendered.all("Job").first)
        let container = try #require(Self.containers(job).first)
        #expect(container["args"] as? [String] == ["restore-job"])
        let env = Self.env(container)
        #expect(env["LATEST_BACKUP"] == "visual_backup_2025-01-15_00-00-00.tar.gz")
        #expect(env["RESTORE_PARTS"] == "database,uploads")
        #expect(env["AGE_PASSPHRASE_FILE"] != nil)
        #expect(job.path("spec", "backoffLimit") as? Int == 0)
        let tmp = Self.volumes(job).first { $0["name"] as? String == "contingency-tmp" }
        #expect(tmp?.path("emptyDir", "sizeLimit") as? String == "20Gi", "the dump is staged in /tmp without a volume")
    }

    @Test(
        "injected sidecar: the application's chart adds the container to its pod; the chart makes no sidecar Deployment"
    )
    func injectedSidecar() async throws {
        let own = try await Self.valid(["ci/injected-values.yaml"])
        #expect(own.named("Deployment", "-sidecar") == nil)
        let service = try #require(own.named("Service", "-sidecar"))
        #expect(service.path("spec", "selector") as? [String: String] == ["app": "visual-platform"])

        let rendered = try await Self.valid(parent: "Tests/Support/helm/app-chart")
        Self.checkPods(rendered, "app-chart")
        Self.checkSecretsStayFiles(rendered, "app-chart")
        let app = try #require(
            rendered.all("Deployment").first { $0.path("metadata", "name") as? String == "visual-platform" })
        let names = Self.containers(app).compactMap { $0["name"] as? String }
        #expect(names == ["app", "contingency-sidecar"])
        let sidecar = Self.containers(app)[1]
        #expect(sidecar["args"] as? [String] == ["health-sidecar", "--loop"])
        #expect(sidecar.path("readinessProbe", "httpGet", "path") as? String == "/healthz")
        // Every volume the sidecar mounts is in the pod: the snippet's own, and the app's uploads by its name.
        let volumes = Set(Self.volumes(app).compactMap { $0["name"] as? String })
        for mount in sidecar["volumeMounts"] as? [[String: Any]] ?? [] {
            #expect(volumes.contains(mount["name"] as? String ?? "?"), "\(mount) has no volume in the pod")
        }
        #expect(
            (sidecar["volumeMounts"] as? [[String: Any]])?.contains {
                $0["name"] as? String == "uploads" && $0["readOnly"] as? Bool == true
            } == true)
    }

    @Test("Prometheus on: a ServiceMonitor on the sidecar's /metrics and the PrometheusRule, both valid for their CRDs")
    func prometheus() async throws {
        let rendered = try await Self.valid(["ci/prometheus-values.yaml"])
        let monitor = try #require(rendered.all("ServiceMonitor").first)
        let endpoint = try #require((monitor.path("spec", "endpoints") as? [[String: Any]])?.first)
        #expect(endpoint["path"] as? String == "/metrics" && endpoint["port"] as? String == "http")
        let service = try #require(rendered.named("Service", "-sidecar"))
        let labels = service.path("metadata", "labels") as? [String: String] ?? [:]
        for (key, value) in monitor.path("spec", "selector", "matchLabels") as? [String: String] ?? [:] {
            #expect(labels[key] == value, "the ServiceMonitor's selector misses the sidecar's Service on \(key)")
        }
        let rule = try #require(rendered.all("PrometheusRule").first)
        // Contingency's rules (files/alerts.yml), then the values' own group.
        let groups = (rule.path("spec", "groups") as? [[String: Any]])?.compactMap { $0["name"] as? String }
        #expect(groups == ["contingency", "contingency-local"])
        let crdChecked = rendered.validation.filter { ($0["schema"] as? String)?.hasPrefix("CRD ") == true }
        #expect(Set(crdChecked.compactMap { $0["kind"] as? String }) == ["ServiceMonitor", "PrometheusRule"])
    }

    @Test("PrometheusRule: Contingency's rules, CRD-valid; defaultRules=false leaves yours; a group named twice fails")
    func prometheusRule() async throws {
        let enabled = #"{"metrics": {"prometheusRule": {"enabled": true}}}"#
        let rendered = try await Self.valid(setJSON: [enabled])
        let rule = try #require(rendered.all("PrometheusRule").first)
        let check = rendered.validation.first { $0["kind"] as? String == "PrometheusRule" }
        #expect(check?["schema"] as? String == "CRD monitoring.coreos.com_prometheusrules.yaml", "\(check ?? [:])")
        let groups = rule.path("spec", "groups") as? [[String: Any]] ?? []
        #expect(groups.compactMap { $0["name"] as? String } == ["contingency"])
        let alerts = (groups.first?["rules"] as? [[String: Any]] ?? []).compactMap { $0["alert"] as? String }
        #expect(Set(alerts) == AlertRulesTests.alertNames, "\(alerts)")

        let own = #"{"metrics": {"prometheusRule": {"defaultRules": false, "groups": [{"name": "contingency", "#
            + #""rules": [{"alert": "Mine", "expr": "vector(1)"}]}]}}}"#
        let replaced = try await Self.valid(setJSON: [enabled, own])
        let replacedGroups = replaced.all("PrometheusRule").first?.path("spec", "groups") as? [[String: Any]]
        let replacedRules = replacedGroups?.first?["rules"] as? [[String: Any]] ?? []
        let replacedAlerts = replacedRules.compactMap { $0["alert"] as? String }
        #expect(replacedAlerts == ["Mine"])
        #expect(replacedGroups?.count == 1)

        let twice = #"{"metrics": {"prometheusRule": {"groups": [{"name": "contingency", "rules": []}]}}}"#
        let (result, refused) = try await Self.render(setJSON: [enabled, twice])
        #expect(refused == nil, "a second group named contingency rendered")
        #expect(result.stderr.contains("a group named \"contingency\" is already"), "\(result)")
    }

    // MARK: - The CI/CD example

    @Test(
        "the GitHub Actions example is a valid workflow, waits on the backup's answer, rolls back on failed health"
    )
    func workflow() async throws {
        let file = Self.root.appending(path: "deploy/github-actions/backup-before-deploy.yml")
        let check = try await Self.python([
            "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", file.path,
        ])
        #expect(check.succeeded, "\(check)")
        let text = try String(contentsOf: file, encoding: .utf8)
        #expect(!text.contains("sleep 60"), "waits on the answer, not on a clock")
        #expect(text.contains("--fail-with-body") && text.contains("/api/backups\""))
        #expect(text.contains("/api/backups/rollback/auto"))
        #expect(text.contains("secrets.CONTINGENCY_API_TOKEN"))
        // The token reaches curl through a header file, never a command line.
        for line in text.split(separator: "\n") where line.contains("curl") || line.contains("-H ") {
            #expect(!line.contains("secrets.") && !line.contains("$CONTINGENCY_API_TOKEN"), "\(line)")
        }
        // The validator does refuse a broken workflow (a job without runs-on), so its "ok" above means something.
        let broken = try TemporaryDirectory()
        defer { broken.remove() }
        let copy = broken.appending("broken.yml")
        try Data(text.replacingOccurrences(of: "    runs-on: ubuntu-latest\n", with: "").utf8).write(to: copy)
        let refused = try await Self.python([
            "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", copy.path,
        ])
        #expect(!refused.succeeded, "a job without runs-on was accepted: \(refused)")
    }

    // MARK: - Rules every rendering holds

    /// Pods run as the image's user on a read-only root with /tmp an emptyDir; containers drop every capability.
    static func checkPods(_ rendered: Rendering, _ shown: String) {
        for object in rendered.objects {
            guard let pod = podSpec(object) else { continue }
            let name = "\(shown): \(object["kind"] ?? "?") \(object.path("metadata", "name") ?? "?")"
            for container in pod["containers"] as? [[String: Any]] ?? [] {
                guard (container["image"] as? String)?.hasPrefix("contingency:") == true else { continue }
                let security = container["securityContext"] as? [String: Any] ?? [:]
                #expect(security["runAsUser"] as? Int == 10001 && security["runAsGroup"] as? Int == 10001, "\(name)")
                #expect(security["runAsNonRoot"] as? Bool == true, "\(name)")
                #expect(security["readOnlyRootFilesystem"] as? Bool == true, "\(name)")
                #expect(security["allowPrivilegeEscalation"] as? Bool == false, "\(name)")
                #expect(security.path("capabilities", "drop") as? [String] == ["ALL"], "\(name)")
                #expect(pod.path("securityContext", "fsGroup") as? Int == 10001, "\(name): fsGroup")
                let tmp = (container["volumeMounts"] as? [[String: Any]])?.first {
                    $0["mountPath"] as? String == "/tmp"
                }
                let volume = volumes(pod: pod).first { $0["name"] as? String == tmp?["name"] as? String }
                #expect(volume?["emptyDir"] != nil, "\(name): /tmp is not an emptyDir")
                #expect(container["resources"] != nil, "\(name): no resources")
            }
            if (object.path("metadata", "name") as? String)?.hasPrefix("visual-contingency") == true {
                #expect(pod.path("securityContext", "runAsUser") as? Int == 10001, "\(name)")
                #expect(pod.path("securityContext", "runAsNonRoot") as? Bool == true, "\(name)")
            }
        }
    }

    /// Secrets reach the processes as files: no env value holds a secret or takes one from a Secret, each NAME_FILE
    /// names a file of a mounted volume (secrets 0440), and every variable is one its executable reads.
    static func checkSecretsStayFiles(_ rendered: Rendering, _ shown: String) {
        let secrets = (rendered.values.path("secrets", "values") as? [String: String] ?? [:]).values.filter {
            !$0.isEmpty
        }
        for object in rendered.objects where object["kind"] as? String != "Secret" {
            let json = try? JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes])
            let text = String(decoding: json ?? Data(), as: UTF8.self)
            for secret in secrets {
                let line = String(
                    secret.split(separator: "\n").dropFirst(secret.hasPrefix("-----") ? 1 : 0).first ?? "")
                #expect(!text.contains(line), "\(shown): \(object["kind"] ?? "?") holds a secret value")
            }
        }
        for object in rendered.objects {
            guard let pod = podSpec(object) else { continue }
            for container in pod["containers"] as? [[String: Any]] ?? [] {
                guard (container["image"] as? String)?.hasPrefix("contingency:") == true else { continue }
                let name =
                    "\(shown): \(object["kind"] ?? "?") \(object.path("metadata", "name") ?? "?")/\(container["name"] ?? "?")"
                #expect(container["envFrom"] == nil, "\(name)")
                let component =
                    container["name"] as? String == "contingency-sidecar"
                    ? "sidecar" : container["name"] as? String ?? "?"
                let readable = settingNames(component)
                let fileVariables = Set(allSettings.filter(\.readsFile).map { $0.name + "_FILE" } + ["PGPASSWORD_FILE"])
                let mounts = container["volumeMounts"] as? [[String: Any]] ?? []
                for variable in container["env"] as? [[String: Any]] ?? [] {
                    let key = variable["name"] as? String ?? "?"
                    #expect(readable.contains(key), "\(name): \(key) is not a variable \(component) reads")
                    if let source = variable["valueFrom"] as? [String: Any] {
                        #expect(source["secretKeyRef"] == nil, "\(name): \(key) takes a Secret into the environment")
                    }
                    // NAME_FILE of a setting read from a file (ENV_FILE is a setting of its own, the .env's path).
                    guard fileVariables.contains(key), let path = variable["value"] as? String else { continue }
                    let directory = (path as NSString).deletingLastPathComponent
                    let file = (path as NSString).lastPathComponent
                    let mount = mounts.first { $0["mountPath"] as? String == directory }
                    let volume = volumes(pod: pod).first { $0["name"] as? String == mount?["name"] as? String }
                    #expect(mount?["readOnly"] as? Bool == true, "\(name): \(key)=\(path) is not on a read-only mount")
                    if let secret = volume?["secret"] as? [String: Any] {
                        let items = secret["items"] as? [[String: Any]] ?? []
                        #expect(
                            items.contains { $0["path"] as? String == file }, "\(name): \(key)=\(path) is not mounted")
                        #expect(secret["defaultMode"] as? Int == 0o440, "\(name): secret files must be 0440")
                    } else {
                        #expect(volume?["configMap"] != nil, "\(name): \(key)=\(path) is on no Secret or ConfigMap")
                    }
                }
            }
        }
    }

    /// CronJobs never overlap and keep a bounded history.
    static func checkCronJobs(_ rendered: Rendering, _ shown: String) {
        for cron in rendered.all("CronJob") {
            let name = "\(shown): CronJob \(cron.path("metadata", "name") ?? "?")"
            #expect(cron.path("spec", "concurrencyPolicy") as? String == "Forbid", "\(name)")
            #expect(cron.path("spec", "successfulJobsHistoryLimit") is Int, "\(name)")
            #expect(cron.path("spec", "failedJobsHistoryLimit") is Int, "\(name)")
            #expect(cron.path("spec", "schedule") is String, "\(name)")
            #expect(podSpec(cron)?["restartPolicy"] as? String == "Never", "\(name)")
        }
    }

    /// The variables one component's executable reads (its settings, NAME_FILE for those read from files), and
    /// libpq's own PGHOST, PGPORT and PGPASSWORD_FILE.
    static func settingNames(_ component: String) -> Set<String> {
        let settings: [Setting] =
            switch component {
            case "backup": BackupConfiguration.settings + [Settings.livenessFile]
            case "cleanup":
                CleanupConfiguration.settings + NotificationSettings.backupSettings + [Settings.livenessFile]
            case "drill", "restore":
                RestoreConfiguration.settings + DrillConfiguration.settings + NotificationSettings.backupSettings
            // The runner's safety backups load the backup settings too.
            case "runner": RollbackConfiguration.settings + BackupConfiguration.settings
            // The sidecar's POST /api/backups takes a backup with the backup settings; its DELETE and cleanup
            // routes read the verify keys and the retention settings.
            case "sidecar":
                SidecarConfiguration.settings + BackupConfiguration.settings + TrustSettings.settings
                    + CleanupConfiguration.settings
            default: []
            }
        var names: Set<String> = ["PGHOST", "PGPORT", "PGPASSWORD_FILE"]
        for setting in settings {
            names.insert(setting.name)
            if setting.readsFile { names.insert(setting.name + "_FILE") }
        }
        return names
    }

    static var allSettings: [Setting] {
        BackupConfiguration.settings + CleanupConfiguration.settings + RestoreConfiguration.settings
            + DrillConfiguration.settings + RollbackConfiguration.settings + SidecarConfiguration.settings
            + NotificationSettings.backupSettings
    }

    // MARK: - Reading objects

    static func podSpec(_ object: [String: Any]) -> [String: Any]? {
        switch object["kind"] as? String {
        case "CronJob": object.path("spec", "jobTemplate", "spec", "template", "spec") as? [String: Any]
        case "Deployment", "Job": object.path("spec", "template", "spec") as? [String: Any]
        default: nil
        }
    }

    static func containers(_ object: [String: Any]) -> [[String: Any]] {
        podSpec(object)?["containers"] as? [[String: Any]] ?? []
    }

    static func volumes(_ object: [String: Any]) -> [[String: Any]] { volumes(pod: podSpec(object) ?? [:]) }
    static func volumes(pod: [String: Any]) -> [[String: Any]] { pod["volumes"] as? [[String: Any]] ?? [] }

    /// A container's plain environment values.
    static func env(_ container: [String: Any]) -> [String: String] {
        var values: [String: String] = [:]
        for variable in container["env"] as? [[String: Any]] ?? [] {
            if let name = variable["name"] as? String, let value = variable["value"] as? String { values[name] = value }
        }
        return values
    }
}

extension Dictionary where Key == String, Value == Any {
    /// The value at a path of keys through nested objects.
    fileprivate func path(_ keys: String...) -> Any? {
        var current: Any? = self
        for key in keys { current = (current as? [String: Any])?[key] }
        return current
    }
}

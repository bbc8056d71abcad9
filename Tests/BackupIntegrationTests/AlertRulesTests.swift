import Foundation
import TestSupport
import Testing

/// The alert rules of deploy/prometheus, for docker-compose users and the Helm chart alike: promtool (Debian's
/// prometheus package) finds them valid and lint-free, their unit tests (alerts.test.yml: for every alert a case
/// where it fires, labels and annotations compared, and one where it must not) pass and fail when a rule is
/// broken, the example scrape config is valid, and the chart's PrometheusRule carries the same rules: its
/// files/alerts.yml is byte-identical to deploy/prometheus/alerts.yml, and the rendered rules, parsed, equal the
/// file's and pass the same unit tests.
@Suite("Alert rules: promtool checks and unit tests; the chart's PrometheusRule carries the same rules")
struct AlertRulesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let prometheus = root.appending(path: "deploy/prometheus")
    static let rules = prometheus.appending(path: "alerts.yml")
    static let ruleTests = prometheus.appending(path: "alerts.test.yml")
    static let chartCopy = root.appending(path: "charts/contingency/files/alerts.yml")
    static let install =
        "promtool is missing: it comes with Debian's prometheus package (run scripts/install-deps.sh, or "
        + "apt-get install prometheus)"

    /// The alerts of the metrics contract, and the one for a sidecar Prometheus cannot scrape.
    static let alertNames: Set<String> = [
        "BackupFailed", "BackupDiskSpaceLow", "AutoRollbackTriggered", "RollbackFailed", "BackupStale",
        "BackupNeverVerified", "BackupSlow", "BackupShrank", "HealthCheckFailing", "ContingencySidecarDown",
    ]

    /// Runs promtool in `directory`; nil, with a failure that says how to install it, when it is missing.
    static func promtool(_ arguments: [String], in directory: URL = prometheus) async throws -> ProcessResult? {
        do {
            return try await ProcessRunner.run(
                "promtool", arguments, workingDirectory: directory, timeout: .seconds(180))
        } catch ProcessError.launchFailed(_, let reason) {
            Issue.record("\(install) (\(reason))")
            return nil
        }
    }

    /// The alert names of a rule file, in order (a rule may share its name with another only by mistake).
    static func alerts(in text: String) throws -> [String] {
        let pattern = try Regex(#"(?m)^\s*- alert: (\w+)\s*$"#)
        return text.matches(of: pattern).compactMap { $0.output[1].substring.map(String.init) }
    }

    // MARK: - promtool

    @Test("promtool check rules --lint-fatal: valid PromQL, no duplicate rule, every alert of the contract")
    func rulesAreValid() async throws {
        let result = try #require(try await Self.promtool(["check", "rules", "--lint-fatal", "alerts.yml"]))
        #expect(result.succeeded, "promtool check rules deploy/prometheus/alerts.yml failed:\n\(result)")
        let names = try Self.alerts(in: String(contentsOf: Self.rules, encoding: .utf8))
        #expect(Set(names) == Self.alertNames, "\(names)")
        #expect(names.count == Self.alertNames.count, "an alert is defined twice: \(names)")
        #expect(result.stdout.contains("SUCCESS: \(names.count) rules found"), "\(result)")
    }

    @Test(
        "promtool test rules alerts.test.yml: every alert fires where it must, labelled and annotated, not elsewhere")
    func ruleUnitTestsPass() async throws {
        let result = try #require(try await Self.promtool(["test", "rules", "alerts.test.yml"]))
        #expect(result.succeeded, "promtool test rules deploy/prometheus/alerts.test.yml failed:\n\(result)")
        // Each alert has an evaluation expecting it (exp_alerts with entries) and one expecting none.
        let lines = try String(contentsOf: Self.ruleTests, encoding: .utf8).split(separator: "\n")
        var firing: Set<String> = []
        var quiet: Set<String> = []
        let evaluation = try Regex(#"^\s*alertname: (\w+)\s*$"#)
        for (index, line) in lines.enumerated() where index + 1 < lines.count {
            guard let match = line.wholeMatch(of: evaluation), let name = match.output[1].substring else {
                continue
            }
            let next = lines[index + 1].trimmingCharacters(in: .whitespaces)
            if next == "exp_alerts: []" { quiet.insert(String(name)) } else if next == "exp_alerts:" {
                firing.insert(String(name))
            }
        }
        #expect(firing == Self.alertNames, "alerts without a firing case: \(Self.alertNames.subtracting(firing))")
        #expect(quiet == Self.alertNames, "alerts without a quiet case: \(Self.alertNames.subtracting(quiet))")
    }

    /// Rules broken on purpose, each in a way its unit tests must notice: (alert, text of alerts.yml, replacement).
    static let breakages: [(String, String, String)] = [
        ("BackupFailed", "contingency_backup_last_run_success == 0", "contingency_backup_last_run_success < 0"),
        ("BackupDiskSpaceLow", "< 10 * 1024^3", "< 5 * 1024^3"),
        ("BackupDiskSpaceLow", "ignoring (store) group_left\n", "ignoring (store)\n"),
        ("BackupDiskSpaceLow", "2 * contingency_backup_last_size_bytes", "5 * contingency_backup_last_size_bytes"),
        ("AutoRollbackTriggered", "rollback_last_timestamp_seconds < 3600", "rollback_last_timestamp_seconds < 0"),
        ("RollbackFailed", "contingency_rollback_last_success == 0", "contingency_rollback_last_success == 2"),
        ("RollbackFailed", "< 60 * 60", "< 60"),
        ("BackupStale", "> 26 * 3600", "> 28 * 3600"),
        ("BackupStale", "(contingency_backups offset 26h)", "(contingency_backups offset 1h)"),
        ("BackupNeverVerified", "> 8 * 86400", "> 9 * 86400"),
        ("BackupSlow", "last_duration_seconds > 300", "last_duration_seconds > 600"),
        ("BackupShrank", "< 0.5 * contingency_backup_previous", "< 0.7 * contingency_backup_previous"),
        ("HealthCheckFailing", "consecutive_failures > 0", "consecutive_failures > 2"),
        ("ContingencySidecarDown", "unless on () (up == 0 and", "unless on () (up == 2 and"),
    ]

    @Test(
        "a broken rule (a threshold, a label match, a branch) fails its unit tests, naming the alert",
        arguments: breakages)
    func brokenRulesFailTheirTests(alert: String, text: String, replacement: String) async throws {
        let original = try String(contentsOf: Self.rules, encoding: .utf8)
        let occurrences = original.components(separatedBy: text).count - 1
        try #require(occurrences == 1, "alerts.yml holds `\(text)` \(occurrences) times: update this breakage")
        let directory = try TemporaryDirectory(prefix: "alert-rules")
        defer { directory.remove() }
        try Data(original.replacingOccurrences(of: text, with: replacement).utf8)
            .write(to: directory.url.appending(path: "alerts.yml"))
        try FileManager.default.copyItem(at: Self.ruleTests, to: directory.url.appending(path: "alerts.test.yml"))
        let result = try #require(try await Self.promtool(["test", "rules", "alerts.test.yml"], in: directory.url))
        #expect(!result.succeeded, "\(alert) with `\(replacement)` still passes its unit tests:\n\(result)")
        // promtool prints the failed cases on standard error.
        #expect(
            (result.stdout + result.stderr).contains("alertname: \(alert),"),
            "the failure does not name \(alert):\n\(result)")
    }

    @Test("promtool check config: the example scrape config (job contingency, sidecar:8080) loads alerts.yml")
    func scrapeConfigIsValid() async throws {
        let result = try #require(try await Self.promtool(["check", "config", "prometheus.yml"]))
        #expect(result.succeeded, "promtool check config deploy/prometheus/prometheus.yml failed:\n\(result)")
        #expect(result.stdout.contains("SUCCESS: 1 rule files found"), "\(result)")
        let text = try String(contentsOf: Self.prometheus.appending(path: "prometheus.yml"), encoding: .utf8)
        #expect(text.contains("job_name: contingency") && text.contains("\"sidecar:8080\""))
    }

    // MARK: - The Helm chart's copy

    @Test("charts/contingency/files/alerts.yml is byte-identical to deploy/prometheus/alerts.yml")
    func chartCopyIsIdentical() throws {
        let source = try Data(contentsOf: Self.rules)
        let copy = try Data(contentsOf: Self.chartCopy)
        let fix = "cp deploy/prometheus/alerts.yml charts/contingency/files/alerts.yml"
        #expect(source == copy, "the chart's rules differ from their source, deploy/prometheus/alerts.yml: `\(fix)`")
    }

    @Test("the rendered PrometheusRule's groups equal alerts.yml's, Prometheus templates kept, and pass its tests")
    func renderedRulesAreTheFile() async throws {
        let rendered = try await HelmChartTests.valid(
            setJSON: [#"{"metrics": {"prometheusRule": {"enabled": true}}}"#])
        let rule = try #require(rendered.all("PrometheusRule").first, "no PrometheusRule rendered")
        let spec = try #require(rule["spec"] as? [String: Any])
        let groups = try #require(spec["groups"] as? [[String: Any]])

        let parsed = try await HelmChartTests.python([
            HelmChartTests.helper.path, "yaml", "--file", Self.rules.path,
        ])
        try #require(parsed.succeeded, "\(parsed)")
        let file = try #require(try JSONSerialization.jsonObject(with: Data(parsed.stdout.utf8)) as? [String: Any])
        let expected = try #require(file["groups"] as? [[String: Any]])
        #expect(groups.count == expected.count, "groups: \(groups.map { $0["name"] ?? "?" })")
        for (index, group) in expected.enumerated() where index < groups.count {
            let renderedRules = groups[index]["rules"] as? [[String: Any]] ?? []
            let fileRules = group["rules"] as? [[String: Any]] ?? []
            #expect(groups[index]["name"] as? String == group["name"] as? String)
            #expect(renderedRules.count == fileRules.count)
            for (rendered, written) in zip(renderedRules, fileRules) {
                #expect(
                    NSDictionary(dictionary: rendered).isEqual(to: written),
                    "rendered \(rendered)\n is not alerts.yml's \(written)")
            }
        }
        // Helm left Prometheus' templates alone (its own would have failed or emptied them).
        let json = String(
            decoding: try JSONSerialization.data(withJSONObject: groups, options: [.withoutEscapingSlashes]),
            as: UTF8.self)
        #expect(json.contains("{{ $value | humanize1024 }}B") && json.contains("{{ $labels.instance }}"))

        // The rules as the PrometheusRule carries them (JSON is YAML) pass the unit tests of alerts.yml.
        let directory = try TemporaryDirectory(prefix: "rendered-rules")
        defer { directory.remove() }
        try JSONSerialization.data(withJSONObject: spec, options: [.withoutEscapingSlashes])
            .write(to: directory.url.appending(path: "alerts.yml"))
        try FileManager.default.copyItem(at: Self.ruleTests, to: directory.url.appending(path: "alerts.test.yml"))
        let result = try #require(try await Self.promtool(["test", "rules", "alerts.test.yml"], in: directory.url))
        #expect(result.succeeded, "the rendered PrometheusRule's rules fail alerts.test.yml:\n\(result)")
    }
}

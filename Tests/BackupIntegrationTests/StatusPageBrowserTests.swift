import BackupCore
import BackupStorage
import Foundation
import TestSupport
import Testing

/// The status page as an operator sees it: headless Chromium (Debian's) on a real `health-sidecar --loop` over a
/// store with real backups (unsigned, signed and drilled, signed and encrypted) and a rollback's request, on
/// 127.0.0.1 with no internet. Without the token no backup name is in the DOM; a wrong token is told as such; the
/// right one shows every backup with its size and one chart point per backup; a screenshot is kept under
/// .build/test-artifacts/.
@Suite("Status page in a browser", .serialized)
struct StatusPageBrowserTests {
    static let wrongToken = "0000wrong0000token0000"

    /// A rollback's request as the runner leaves it: succeeded, with its steps.
    static func recordRollback(_ app: ApplicationFixture, target: String) throws -> String {
        let board = RequestBoard(storage: try VolumeStorage(root: app.backupDirectory.path))
        let start = Date().addingTimeInterval(-600)
        let id = "rollback-status-page"
        _ = try board.submit(id: id, intent: .rollback, requestedBy: "health-sidecar api-sidecar", now: start)
        _ = try board.update(id) { request in
            request.status = .succeeded
            request.target = target
            request.worker = "restore-job pid 7 on host a"
            request.reason = "restored \(target)"
            typealias Step = StoreRequest.Step
            request.steps = [
                Step(name: "stop the application", status: "succeeded", started: start + 1, ended: start + 2),
                Step(name: "restore the database", status: "succeeded", started: start + 2, ended: start + 9),
                Step(name: "start the application", status: "succeeded", started: start + 9, ended: start + 10),
            ]
            return true
        }
        return id
    }

    /// Waits for the clock's next second: a backup started in the same second as the one before is named a second
    /// ahead (names are unique), so its manifest's completion would come before its name's time and it would
    /// have no duration to show.
    static func nextSecond() async throws {
        let now = Date().timeIntervalSince1970.rounded(.down)
        try await eventually("the next second") { Date().timeIntervalSince1970.rounded(.down) > now }
    }

    @Test("headless Chromium: without the token no backup name in the DOM, a wrong token is told, the right one shows each backup and its chart points; screenshot saved")
    func browser() async throws {
        try await ApplicationFixture.with(uploadFiles: 12) { app in
            let keys = try TemporaryDirectory(prefix: "contingency-keys")
            defer { keys.remove() }
            let signingKey = keys.appending("signing.pem").path
            let keygen = try await app.run("backup-job", ["keygen", "--out", signingKey])
            try #require(keygen.succeeded, "\(keygen)")
            let verifyKey = try String(contentsOfFile: keys.appending("signing.pub.pem").path, encoding: .utf8)
            let identity = keys.appending("identity.txt").path
            _ = try await ProcessRunner.run("age-keygen", ["-o", identity], requireSuccess: true)
            let recipient = try await ProcessRunner.run("age-keygen", ["-y", identity], requireSuccess: true).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)

            // Unsigned; signed, then drilled (verified); signed and encrypted.
            try #require(try await app.run("backup-job").succeeded)
            try await Self.nextSecond()
            let signed = try await app.run("backup-job", environment: ["BACKUP_SIGNING_KEY_FILE": signingKey])
            try #require(signed.succeeded, "\(signed)")
            let drill = try await app.run(
                "restore-job", ["--drill"],
                environment: [
                    "DRILL_DATABASE_URL": app.server.connectionURL(database: "drill_scratch"),
                    "BACKUP_VERIFY_KEYS": verifyKey,
                ])
            try #require(drill.succeeded, "\(drill)")
            try await Self.nextSecond()
            let encrypted = try await app.run(
                "backup-job", environment: ["BACKUP_SIGNING_KEY_FILE": signingKey, "AGE_RECIPIENTS": recipient])
            try #require(encrypted.succeeded, "\(encrypted)")
            let archives = try AdminAPITests.archives(app)
            try #require(archives.count == 3, "\(archives)")
            let rollback = try Self.recordRollback(app, target: archives[1])

            try await FixtureApplication.with(app) { fixture in
                try await AdminAPITests.withSidecar(app, url: fixture.healthURL, ["BACKUP_VERIFY_KEYS": verifyKey]) {
                    api, sidecar in
                    try await eventually(
                        timeout: .seconds(60), pollInterval: .milliseconds(250), "two probes in the sidecar's history"
                    ) {
                        let status = try await api.call("GET", "/api/status")
                        return (status.json["probes"] as? [Any])?.count ?? 0 >= 2
                    }
                    let list = try await api.call("GET", "/api/backups")
                    let backups = try #require(list.json["backups"] as? [[String: Any]], "\(list)")
                    let names = backups.compactMap { $0["filename"] as? String }
                    let sizes = backups.compactMap { $0["sizeFormatted"] as? String }
                    #expect(Set(names) == Set(archives))

                    let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "-")
                    let screenshot = HeadlessBrowser.artifacts.appendingPathComponent("status-page-\(stamp).png")
                    let report = try await HeadlessBrowser.checkStatusPage(
                        url: api.base + "/", token: AdminAPITests.token, wrongToken: Self.wrongToken,
                        screenshot: screenshot,
                        wrongScreenshot: HeadlessBrowser.artifacts.appendingPathComponent(
                            "status-page-\(stamp)-wrong-token.png"))
                    print("Status page screenshot: \(report.screenshot)")

                    // No token: a frame, no data, nothing asked of the API.
                    let signedOut = report.signedOut
                    #expect(signedOut.state == "signed-out" && !signedOut.tokenStored && !signedOut.contentShown)
                    for observation in [signedOut, report.wrongToken, report.forgotten] {
                        for name in names + [rollback, "visual_backup_20"] {
                            #expect(!observation.html.contains(name), "\(observation.state): \(name) in the DOM")
                        }
                        #expect(observation.backups.isEmpty && observation.charts.isEmpty, "\(observation.state)")
                        #expect(!observation.html.contains(AdminAPITests.token))
                    }

                    // A wrong token: said so, forgotten.
                    #expect(report.wrongToken.state == "unauthorized")
                    #expect(report.wrongToken.message.contains("Wrong API token (401)"), "\(report.wrongToken.message)")
                    #expect(!report.wrongToken.tokenStored)

                    // The right one: every backup, newest first, with its size; one point per backup in each chart.
                    let shown = report.rightToken
                    #expect(shown.state == "loaded" && shown.tokenStored && shown.contentShown, "\(shown.message)")
                    #expect(shown.backups.map(\.name) == names)
                    #expect(shown.backups.map(\.size) == sizes)
                    #expect(shown.charts["size"]?.points == names.count, "\(shown.charts)")
                    #expect(shown.charts["duration"]?.points == names.count, "\(shown.charts)")
                    let titled = shown.charts["size"]?.pointTitles.map { String($0.prefix { $0 != ":" }) } ?? []
                    #expect(Set(titled) == Set(names), "\(titled)")
                    #expect(shown.charts["disk"]?.bars == 2)
                    #expect((shown.charts["probes"]?.probes ?? 0) >= 2)
                    let rows = Dictionary(uniqueKeysWithValues: shown.backups.map { ($0.name, $0) })
                    #expect(rows[archives[0]]?.signature == "unsigned" && rows[archives[0]]?.encrypted == "no")
                    #expect(rows[archives[1]]?.signature == "genuine")
                    let drilled = rows[archives[1]]?.verified ?? ""
                    #expect(drilled.hasPrefix("passed"), "\(drilled)")
                    #expect(rows[archives[0]]?.verified == "never")
                    #expect(rows[archives[2]]?.signature == "genuine" && rows[archives[2]]?.encrypted == "encrypted")
                    #expect(shown.backups.allSatisfy { $0.duration != "—" }, "\(shown.backups.map(\.duration))")
                    #expect(shown.health.contains("Healthy"), "\(shown.health)")
                    #expect(shown.steps == ["stop the application", "restore the database", "start the application"])
                    #expect(shown.rollback.contains(archives[1]))

                    // The token is kept for the tab: a reload shows the data again without asking.
                    #expect(report.reloaded.state == "loaded" && report.reloaded.backups.map(\.name) == names)
                    #expect(report.forgotten.state == "signed-out" && !report.forgotten.tokenStored)

                    // Only this sidecar was asked for anything; every API request carried the token; the page
                    // broke none of its own policy and threw nothing.
                    #expect(report.requests.allSatisfy { $0.url.hasPrefix(api.base + "/") }, "\(report.requests)")
                    #expect(report.requests.filter { $0.url.contains("/api/") }.allSatisfy { $0.token })
                    #expect(report.requests.contains { $0.url == api.base + "/api/status" })
                    #expect(
                        (report.signedOut.violations + shown.violations + report.reloaded.violations).isEmpty,
                        "\(shown.violations)")
                    #expect(report.exceptions.isEmpty, "\(report.exceptions)")
                    let policyMessages = report.log.filter {
                        $0.source == "security" || ($0.text ?? "").contains("Content Security Policy")
                    }
                    #expect(policyMessages.isEmpty, "\(policyMessages)")
                    #expect(!report.console.contains { $0.type == "error" }, "\(report.console)")

                    let png = try Data(contentsOf: URL(fileURLWithPath: report.screenshot))
                    #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]) && png.count > 20_000, "\(png.count) bytes")
                    #expect(!(sidecar.stdoutSoFar + sidecar.stderrSoFar).contains(AdminAPITests.token))
                }
            }
        }
    }

    /// A `health-sidecar --loop` over an empty store with `environment` (its app never answers: the page's data is
    /// not what these runs look at), its base URL in `body`; stopped however `body` ends.
    static func withBareSidecar(
        _ environment: [String: String], _ body: (String) async throws -> Void
    ) async throws {
        let store = try TemporaryDirectory(prefix: "contingency-status-page")
        defer { store.remove() }
        let sidecar = try ProcessRunner.launch(
            ApplicationFixture.executable("health-sidecar"), ["--loop"],
            environment: [
                "BACKUP_DIR": store.path, "HEALTH_CHECK_URL": "http://127.0.0.1:9/healthz", "HEALTH_CHECK_INTERVAL": "1s",
                "HEALTH_CHECK_FAILURES": "1000", "SIDECAR_ID": "refusals", "SIDECAR_BIND": "127.0.0.1",
                "SIDECAR_PORT": "0",
            ].merging(environment) { $1 })
        do {
            try await body("http://127.0.0.1:\(try await sidecar.servedPort())/")
            _ = await sidecar.terminateAndWait()
        } catch {
            _ = await sidecar.terminateAndWait()
            throw TestSupportError("\(error)\nsidecar log:\n\(sidecar.stdoutSoFar)\(sidecar.stderrSoFar)")
        }
    }

    @Test("headless Chromium: a disabled API (503) is told with how to enable it; too many wrong tokens (429) are told with when to try again; no data shown either way")
    func refusals() async throws {
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "-")
        try await Self.withBareSidecar([:]) { url in
            let report = try await HeadlessBrowser.typeTokens(
                ["some-token-0123456789"], url: url,
                screenshot: HeadlessBrowser.artifacts.appendingPathComponent("status-page-\(stamp)-disabled.png"))
            let step = try #require(report.steps.first)
            #expect(step.state == "disabled", "\(step.message)")
            #expect(step.message.contains("The admin API is disabled (503)"), "\(step.message)")
            #expect(step.message.contains("Set API_ADMIN_TOKEN (or API_ADMIN_TOKEN_FILE)"), "\(step.message)")
            #expect(!step.contentShown && step.backups.isEmpty && !step.tokenStored)
        }
        try await Self.withBareSidecar(["API_ADMIN_TOKEN": AdminAPITests.token, "API_TOKEN_ATTEMPTS": "1"]) { url in
            let report = try await HeadlessBrowser.typeTokens(
                ["wrong-token-one-0000", "wrong-token-two-0000"], url: url,
                screenshot: HeadlessBrowser.artifacts.appendingPathComponent("status-page-\(stamp)-throttled.png"))
            #expect(report.steps.map(\.state) == ["unauthorized", "throttled"], "\(report.steps.map(\.message))")
            let held = try #require(report.steps.last)
            #expect(held.message.contains("Too many wrong tokens (429)"), "\(held.message)")
            // The wait is the sidecar's Retry-After: at most its one-minute window.
            let wait = held.message.split(separator: " ").firstIndex(of: "in").map {
                Int(held.message.split(separator: " ")[$0 + 1]) ?? 0
            }
            #expect((1...60).contains(wait ?? 0), "\(held.message)")
            #expect(!held.contentShown && held.backups.isEmpty)
        }
    }
}

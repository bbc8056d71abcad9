import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The sidecar's status page in headless Chromium (Debian's `chromium`), driven by Tests/Support/
/// status_page_browser.py over the DevTools protocol: opened without a token, given a wrong one, then the right
/// one (a full-page screenshot), reloaded, and its token forgotten; what the DOM held after each step comes back
/// as a `StatusPageReport`.
///
/// Chromium runs in the script's process group with a fresh profile: it ends with the script, and a script that
/// overruns its time is killed with its group (`ProcessRunner`), so no browser outlives the test.
public enum HeadlessBrowser {
    /// What the page showed after one step.
    public struct Observation: Decodable, Sendable {
        /// The page's `data-state`: `signed-out`, `loading`, `loaded`, `unauthorized`, `disabled`, `throttled`,
        /// `error`.
        public let state: String
        /// The whole DOM, serialized.
        public let html: String
        public let text: String
        /// The message banner's text, empty when hidden.
        public let message: String
        /// Whether the tab's sessionStorage holds a token.
        public let tokenStored: Bool
        public let contentShown: Bool
        public let backups: [Row]
        /// By chart name (`size`, `duration`, `disk`, `probes`).
        public let charts: [String: Chart]
        public let health: String
        /// The last rollback's step names.
        public let steps: [String]
        public let rollback: String
        /// Content-Security-Policy violations the page caused.
        public let violations: [String]
    }

    /// One row of the backups table, as text.
    public struct Row: Decodable, Sendable {
        public let name: String
        public let size: String
        public let duration: String
        public let verified: String
        public let encrypted: String
        public let signature: String
    }

    /// The SVG elements of one chart.
    public struct Chart: Decodable, Sendable {
        public let points: Int
        public let bars: Int
        public let probes: Int
        public let pointTitles: [String]
    }

    public struct Request: Decodable, Sendable {
        public let url: String
        /// Whether it carried X-API-Token.
        public let token: Bool
    }

    public struct LogEntry: Decodable, Sendable {
        public let source: String?
        public let level: String?
        public let text: String?
    }

    public struct ConsoleEntry: Decodable, Sendable {
        public let type: String?
        public let text: String?
    }

    public struct StatusPageReport: Decodable, Sendable {
        public let signedOut: Observation
        public let wrongToken: Observation
        public let rightToken: Observation
        public let reloaded: Observation
        public let forgotten: Observation
        /// The PNG of the page with the right token.
        public let screenshot: String
        /// Every request the page made, in order.
        public let requests: [Request]
        public let exceptions: [String]
        public let log: [LogEntry]
        public let console: [ConsoleEntry]
    }

    /// What the page showed when opened and after each token typed (`typeTokens`).
    public struct SequenceReport: Decodable, Sendable {
        public let signedOut: Observation
        public let steps: [Observation]
        public let screenshot: String
    }

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Support/status_page_browser.py").path

    /// `.build/test-artifacts/` of this package (outside git): where screenshots go.
    public static var artifacts: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/test-artifacts", isDirectory: true)
    }

    /// Runs the steps against the page at `url`. The tokens reach the script through its environment, never its
    /// command line. Throws, saying how to install it, when Chromium is missing.
    public static func checkStatusPage(
        url: String, token: String, wrongToken: String, screenshot: URL, wrongScreenshot: URL? = nil
    ) async throws -> StatusPageReport {
        var arguments = ["--url", url, "--screenshot", screenshot.path]
        if let wrongScreenshot { arguments += ["--wrong-screenshot", wrongScreenshot.path] }
        let output = try await run(
            arguments, environment: ["STATUS_PAGE_TOKEN": token, "STATUS_PAGE_WRONG_TOKEN": wrongToken],
            screenshot: screenshot)
        do {
            return try JSONDecoder().decode(StatusPageReport.self, from: Data(output.utf8))
        } catch {
            throw TestSupportError("the browser run's report cannot be read (\(error)): \(output.prefix(2000))")
        }
    }

    /// Opens the page at `url` and types each of `tokens` in turn, observing the page after each answer: for the
    /// answers that carry no data (a disabled API, a client held back).
    public static func typeTokens(_ tokens: [String], url: String, screenshot: URL) async throws -> SequenceReport {
        let output = try await run(
            ["--url", url, "--screenshot", screenshot.path, "--sequence"],
            environment: ["STATUS_PAGE_TOKENS": tokens.joined(separator: "\n")], screenshot: screenshot)
        do {
            return try JSONDecoder().decode(SequenceReport.self, from: Data(output.utf8))
        } catch {
            throw TestSupportError("the browser run's report cannot be read (\(error)): \(output.prefix(2000))")
        }
    }

    /// Runs the script with `arguments`, the tokens in `environment`; returns its report (standard output).
    static func run(_ arguments: [String], environment: [String: String], screenshot: URL) async throws -> String {
        guard ["chromium", "chromium-browser"].contains(where: { Self.onPath($0) }) else {
            throw TestSupportError(
                "chromium is not installed: the status page's browser test needs Debian's chromium (apt-get install -y chromium; scripts/install-deps.sh installs it)"
            )
        }
        try FileManager.default.createDirectory(
            at: screenshot.deletingLastPathComponent(), withIntermediateDirectories: true)
        // The browser's profile, removed here even if the script had to be killed.
        let profile = try TemporaryDirectory(prefix: "status-page-browser")
        defer { profile.remove() }
        let result = try await ProcessRunner.run(
            "python3", [script] + arguments + ["--profile-parent", profile.path],
            environment: environment.merging(["PYTHONUNBUFFERED": "1"]) { $1 }, timeout: .seconds(300))
        guard result.succeeded else {
            throw TestSupportError("the status page's browser run failed:\n\(result.stderr.suffix(6000))")
        }
        return result.stdout
    }

    static func onPath(_ name: String) -> Bool {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").contains { access("\($0)/\(name)", X_OK) == 0 }
    }
}

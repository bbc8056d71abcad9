import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A webhook (and dead-man's switch) receiver on 127.0.0.1 for the notification tests: runs
/// `Tests/Support/webhook_receiver.py`, which records every request it gets (method, path, body) and answers
/// by path: `/status/<code>/…` with that status, `/hang/…` never, `/delay/<ms>/…` 200 after that long, anything
/// else 200 at once. `with(_:)` starts it on a
/// port the kernel picks, runs the test's body and stops it whatever happens.
public final class WebhookReceiver: Sendable {
    /// `http://127.0.0.1:PORT`.
    public let baseURL: String
    public let port: Int
    private let serverProcess: ServerProcess
    private var process: LaunchedProcess { serverProcess.process }

    /// One request as received.
    public struct Request: Decodable, Sendable, Equatable {
        public let method: String
        public let path: String
        public let contentType: String
        public let body: String
        /// When it arrived, in seconds since 1970.
        public let received: Double

        /// The `text` of a Slack-compatible JSON body, or nil when the body is not one.
        public var text: String? {
            guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
                object.count == 1
            else { return nil }
            return object["text"] as? String
        }
    }

    private init(process: LaunchedProcess, port: Int) {
        serverProcess = ServerProcess(process)
        self.port = port
        baseURL = "http://127.0.0.1:\(port)"
    }

    deinit {
        if !serverProcess.isStopped {
            process.kill(SIGKILL, includingChildren: true)
            _ = try? process.waitForExitBlocking(timeout: .seconds(5))
        }
    }

    /// `baseURL` + `path` (which starts with `/`).
    public func url(_ path: String) -> String { baseURL + path }

    /// Every request received so far, in order.
    public func requests() throws -> [Request] {
        try process.stdoutSoFar.split(separator: "\n").filter { $0.hasPrefix("request ") }.map { line in
            try JSONDecoder().decode(Request.self, from: Data(line.dropFirst("request ".count).utf8))
        }
    }

    /// The requests whose path starts with `prefix`.
    public func requests(under prefix: String) throws -> [Request] {
        try requests().filter { $0.path.hasPrefix(prefix) }
    }

    public static func with<T>(
        isolation: isolated (any Actor)? = #isolation, _ body: (WebhookReceiver) async throws -> T
    ) async throws -> T {
        try await ServerProcess.run(try await start(), stoppingWith: { await $0.serverProcess.stop() }, body)
    }

    static var scriptURL: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Support/webhook_receiver.py")
    }

    static func start() async throws -> WebhookReceiver {
        let process = try ProcessRunner.launch(
            "python3", [scriptURL.path], environment: ["PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"])
        let prefix = "listening on 127.0.0.1:"
        var port: Int?
        do {
            try await eventually(
                timeout: .seconds(30), pollInterval: .milliseconds(10), "the webhook receiver listening"
            ) {
                let output = process.stdoutSoFar
                if let start = output.range(of: prefix), let end = output[start.upperBound...].firstIndex(of: "\n") {
                    port = Int(output[start.upperBound..<end])
                    return true
                }
                if !process.isRunning {
                    let result = try await process.waitForExit(timeout: .seconds(5))
                    throw TestSupportError("webhook_receiver.py exited while starting: \(result)")
                }
                return false
            }
        } catch {
            await process.terminateAndWait()
            throw error
        }
        guard let port else {
            await process.terminateAndWait()
            throw TestSupportError("webhook_receiver.py printed no port: \(process.stdoutSoFar)")
        }
        return WebhookReceiver(process: process, port: port)
    }
}

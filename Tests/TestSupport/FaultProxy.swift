import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A fault-injecting HTTP/1.1 proxy on 127.0.0.1 in front of one upstream server (usually a
/// `MotoServer`), for tests of what the S3 store does when the network or the server misbehaves.
///
/// It runs `Tests/Support/fault_proxy.py` (Python 3, standard library only) on a port the proxy
/// picks itself (so no other process can take it in between). Point the client at `endpoint`
/// instead of the server's; requests are relayed unchanged, Host header included, so SigV4
/// signatures made for the proxy's address stay valid at the server. The client connection is
/// kept alive between requests (the proxy opens a new upstream connection for each request).
/// Configure faults at any time with `set(_:)`; they take effect from the next request. Use
/// `FaultProxy.with(upstreamPort:) { proxy in … }`, which always stops the proxy, or pair `start`
/// with `stop()`; a forgotten proxy is killed when the object is deallocated.
///
/// Stripping conditional headers (`Faults.stripConditionalHeaders`) simulates an S3-compatible
/// server that ignores conditional writes. A client signs the `If-None-Match`/`If-Match` headers
/// it sends, so removing them breaks the signature: against a `MotoServer` that verifies
/// signatures every such request gets 403 SignatureDoesNotMatch. Put the stripping proxy in front
/// of `MotoServer.with(verifyingSignatures: false)`; the proxy cannot re-sign (it has no secret),
/// and answering for the server instead would not exercise the real server's state.
public final class FaultProxy: Sendable {
    /// The port the proxy listens on (127.0.0.1).
    public let port: Int
    /// "http://127.0.0.1:PORT", the endpoint to give the client under test.
    public let endpoint: String
    /// The upstream server's host.
    public let upstreamHost: String
    /// The upstream server's port.
    public let upstreamPort: Int

    private let serverProcess: ServerProcess
    private var process: LaunchedProcess { serverProcess.process }

    private static let startTimeout: Duration = .seconds(30)

    private init(process: LaunchedProcess, port: Int, upstreamHost: String, upstreamPort: Int) {
        serverProcess = ServerProcess(process)
        self.port = port
        endpoint = "http://127.0.0.1:\(port)"
        self.upstreamHost = upstreamHost
        self.upstreamPort = upstreamPort
    }

    deinit {
        if !serverProcess.isStopped {
            process.kill(SIGKILL, includingChildren: true)
            _ = try? process.waitForExitBlocking(timeout: .seconds(5))
        }
    }

    // MARK: - Starting and stopping

    /// The proxy's script, `Tests/Support/fault_proxy.py` in this package's source tree.
    public static var scriptURL: URL {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("Support/fault_proxy.py")
    }

    /// Starts a proxy with no faults in front of `upstreamHost:upstreamPort` and returns once it
    /// listens. With `verbose`, the proxy logs every request to its standard error (`logContents`).
    public static func start(
        upstreamHost: String = "127.0.0.1", upstreamPort: Int, verbose: Bool = false
    ) async throws -> FaultProxy {
        let process = try ProcessRunner.launch(
            "python3",
            [scriptURL.path, "--upstream-host", upstreamHost, "--upstream-port", String(upstreamPort)]
                + (verbose ? ["-v"] : []),
            environment: ["PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"])
        do {
            let port = try await waitForPort(process)
            return FaultProxy(process: process, port: port, upstreamHost: upstreamHost, upstreamPort: upstreamPort)
        } catch {
            await process.terminateAndWait()
            throw error
        }
    }

    /// Starts a proxy, runs `body` with it and stops the proxy whether `body` returns or throws.
    public static func with<T>(
        upstreamHost: String = "127.0.0.1",
        upstreamPort: Int,
        verbose: Bool = false,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (FaultProxy) async throws -> T
    ) async throws -> T {
        try await ServerProcess.run(try await start(upstreamHost: upstreamHost, upstreamPort: upstreamPort, verbose: verbose),
            stoppingWith: { await $0.stop() }, body)
    }

    /// `with(upstreamHost:upstreamPort:verbose:_:)` in front of the server at `endpoint`
    /// ("http://HOST:PORT", e.g. a `MotoServer`'s `endpoint`).
    public static func with<T>(
        upstream endpoint: String,
        verbose: Bool = false,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (FaultProxy) async throws -> T
    ) async throws -> T {
        guard let url = URL(string: endpoint), url.scheme == "http", let host = url.host, let port = url.port else {
            throw TestSupportError("FaultProxy: the upstream \(endpoint.debugDescription) is not http://HOST:PORT")
        }
        return try await with(upstreamHost: host, upstreamPort: port, verbose: verbose, body)
    }

    /// `with(upstreamHost:upstreamPort:verbose:_:)` in front of `server`.
    public static func with<T>(
        inFrontOf server: MotoServer,
        verbose: Bool = false,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (FaultProxy) async throws -> T
    ) async throws -> T {
        try await with(upstreamHost: server.host, upstreamPort: server.port, verbose: verbose, body)
    }

    /// Stops the proxy (SIGTERM, SIGKILL after 5 seconds) and returns once it is gone: its port is
    /// closed and open client connections are reset. Idempotent.
    public func stop() async {
        await serverProcess.stop()
    }

    /// What the proxy printed so far (with `verbose`, one line per request and what it did).
    public var logContents: String { process.stderrSoFar }

    // MARK: - Control

    /// Replaces the proxy's fault configuration (the counts start afresh).
    public func set(_ faults: Faults) throws {
        let body = try JSONEncoder().encode(faults)
        _ = try control("POST", "faults", body: body)
    }

    /// The proxy's counters since it started.
    public func stats() throws -> Stats {
        let body = try control("GET", "stats", body: nil)
        do {
            return try JSONDecoder().decode(Stats.self, from: body)
        } catch {
            throw TestSupportError(
                "The fault proxy's stats are not understood: \(String(decoding: body, as: UTF8.self))")
        }
    }

    /// Calls `/__proxy__/<path>` with curl and returns the answer's body; throws unless it is 200.
    private func control(_ method: String, _ path: String, body: Data?) throws -> Data {
        var arguments = ["-q", "-sS", "--noproxy", "*", "--max-time", "10", "-X", method, "-w", "\n%{http_code}"]
        if body != nil {
            arguments += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
        }
        let result = try ProcessRunner.runBlocking(
            "curl", arguments + ["\(endpoint)/__proxy__/\(path)"], stdin: body, timeout: .seconds(20))
        guard result.succeeded, let newline = result.stdout.lastIndex(of: "\n") else {
            throw TestSupportError("\(method) \(endpoint)/__proxy__/\(path) failed: \(result)")
        }
        let status = result.stdout[result.stdout.index(after: newline)...]
        let answer = String(result.stdout[..<newline])
        guard status == "200" else {
            throw TestSupportError("\(method) \(endpoint)/__proxy__/\(path) answered \(status): \(answer)")
        }
        return Data(answer.utf8)
    }

    /// Waits for the script's "listening on 127.0.0.1:PORT" line and returns PORT.
    private static func waitForPort(_ process: LaunchedProcess) async throws -> Int {
        let prefix = "listening on 127.0.0.1:"
        var port: Int?
        do {
            try await eventually(timeout: startTimeout, pollInterval: .milliseconds(10), "the fault proxy listening") {
                let output = process.stdoutSoFar
                if let start = output.range(of: prefix), let end = output[start.upperBound...].firstIndex(of: "\n") {
                    port = Int(output[start.upperBound..<end])
                    if port == nil { throw TestSupportError("fault_proxy.py printed \(output.debugDescription)") }
                    return true
                }
                if !process.isRunning {
                    let result = try await process.waitForExit(timeout: .seconds(5))
                    throw TestSupportError("fault_proxy.py exited while starting: \(result)")
                }
                return false
            }
        } catch let error as EventuallyTimeoutError {
            throw TestSupportError("\(error)\n--- fault_proxy.py stderr ---\n\(process.stderrSoFar)")
        }
        guard let port else { throw TestSupportError("fault_proxy.py printed no port") }
        return port
    }
}

extension FaultProxy {
    /// The proxy's whole configuration: rules tried in order for each request, and whether
    /// conditional headers are stripped from every forwarded request.
    public struct Faults: Sendable, Equatable, Encodable {
        /// For each request the first rule that matches and has a count left applies.
        public var rules: [Fault]
        /// Whether `If-None-Match`, `If-Match`, `If-Modified-Since` and `If-Unmodified-Since` are
        /// removed from every forwarded request (see the note on signatures in `FaultProxy`).
        public var stripConditionalHeaders: Bool

        /// Creates a configuration.
        public init(_ rules: [Fault] = [], stripConditionalHeaders: Bool = false) {
            self.rules = rules
            self.stripConditionalHeaders = stripConditionalHeaders
        }

        /// One `Fault.status` rule: `status` for the next `count` matching requests (nil: all).
        public init(
            status: Int, errorCode: String? = nil, count: Int?, method: String? = nil, targetContains: String? = nil,
            stripConditionalHeaders: Bool = false
        ) {
            self.init(
                [.status(status, errorCode: errorCode, count: count, method: method, targetContains: targetContains)],
                stripConditionalHeaders: stripConditionalHeaders)
        }

        /// No faults: every request is relayed unchanged.
        public static let none = Faults()
        /// Only conditional headers are stripped, from every request.
        public static let stripConditionalHeaders = Faults(stripConditionalHeaders: true)
    }

    /// One fault and the requests it applies to.
    public struct Fault: Sendable, Equatable, Encodable {
        /// What the proxy does to a matching request.
        public enum Action: Sendable, Equatable {
            /// Answers `status` with an S3 error document (`<Error><Code>errorCode</Code>…`) without
            /// forwarding; the connection stays open unless `closeConnection`.
            case status(Int, errorCode: String?, closeConnection: Bool)
            /// Forwards the request, and closes both connections after `bytes` bytes of the request
            /// body reached the upstream (or, for a shorter body, before any response byte).
            case cutRequest(afterBytes: Int)
            /// Forwards the request, and closes both connections after the response head and
            /// `bytes` bytes of the response body (as on the wire) reached the client.
            case cutResponse(afterBytes: Int)
            /// Reads the request, sends nothing for `seconds`, then closes the connection.
            case stall(seconds: Double)
        }

        /// Where `cutAfter` cuts.
        public enum Part: Sendable {
            /// In the request body: an interrupted upload.
            case request
            /// In the response body: an interrupted download.
            case response
        }

        /// What is done.
        public var action: Action
        /// How many matching requests it applies to (the next ones); nil for all of them.
        public var count: Int?
        /// Only requests with this method (e.g. "PUT"); nil for any.
        public var method: String?
        /// Only requests whose target (path and query) contains this, e.g. "partNumber=" or
        /// "uploads"; nil for any.
        public var targetContains: String?

        /// Creates a fault; see the factory methods for the common cases.
        public init(_ action: Action, count: Int? = 1, method: String? = nil, targetContains: String? = nil) {
            self.action = action
            self.count = count
            self.method = method
            self.targetContains = targetContains
        }

        /// Answers `status` (503 SlowDown by default) without forwarding, to the next `count`
        /// matching requests. `errorCode` nil picks S3's: SlowDown for 503, InternalError for 500.
        public static func status(
            _ status: Int = 503, errorCode: String? = nil, closeConnection: Bool = false,
            count: Int? = 1, method: String? = nil, targetContains: String? = nil
        ) -> Fault {
            Fault(
                .status(status, errorCode: errorCode, closeConnection: closeConnection),
                count: count, method: method, targetContains: targetContains)
        }

        /// Cuts both connections after `bytes` bytes of the request or the response body.
        public static func cutAfter(
            bytes: Int, of part: Part = .request, count: Int? = 1, method: String? = nil, targetContains: String? = nil
        ) -> Fault {
            Fault(
                part == .request ? .cutRequest(afterBytes: bytes) : .cutResponse(afterBytes: bytes),
                count: count, method: method, targetContains: targetContains)
        }

        /// Sends nothing for `duration` after reading the request, then closes the connection.
        public static func stall(
            _ duration: Duration, count: Int? = 1, method: String? = nil, targetContains: String? = nil
        ) -> Fault {
            let (seconds, attoseconds) = duration.components
            return Fault(
                .stall(seconds: Double(seconds) + Double(attoseconds) / 1e18),
                count: count, method: method, targetContains: targetContains)
        }

        private enum CodingKeys: String, CodingKey {
            case action, count, method, target, status, errorCode, closeConnection, part, afterBytes, seconds
        }

        /// The proxy's JSON form of a rule (see fault_proxy.py).
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            // An explicit null: "all matching requests".
            if let count {
                try container.encode(count, forKey: .count)
            } else {
                try container.encodeNil(forKey: .count)
            }
            try container.encodeIfPresent(method, forKey: .method)
            try container.encodeIfPresent(targetContains, forKey: .target)
            switch action {
            case .status(let status, let errorCode, let closeConnection):
                try container.encode("status", forKey: .action)
                try container.encode(status, forKey: .status)
                try container.encodeIfPresent(errorCode, forKey: .errorCode)
                try container.encode(closeConnection, forKey: .closeConnection)
            case .cutRequest(let bytes), .cutResponse(let bytes):
                try container.encode("cut", forKey: .action)
                try container.encode(action == .cutRequest(afterBytes: bytes) ? "request" : "response", forKey: .part)
                try container.encode(bytes, forKey: .afterBytes)
            case .stall(let seconds):
                try container.encode("stall", forKey: .action)
                try container.encode(seconds, forKey: .seconds)
            }
        }
    }

    /// The proxy's counters (control calls not included).
    public struct Stats: Sendable, Equatable, Decodable {
        /// Requests received from clients.
        public var requests: Int
        /// Requests a fault rule applied to.
        public var faultsInjected: Int
        /// Requests sent on to the upstream, whole or (cut) in part.
        public var forwarded: Int
        /// Conditional headers removed (a request may lose several).
        public var conditionalHeadersStripped: Int

        /// Creates counters, e.g. to compare with `stats()`.
        public init(requests: Int, faultsInjected: Int, forwarded: Int, conditionalHeadersStripped: Int) {
            self.requests = requests
            self.faultsInjected = faultsInjected
            self.forwarded = forwarded
            self.conditionalHeadersStripped = conditionalHeadersStripped
        }
    }
}

import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A stand-in for the Kubernetes API server that replays written exchanges over HTTPS, for the Kubernetes app
/// control's tests. No Kubernetes runs where the tests run: the exchanges (`Tests/Support/kubernetes/*.json`)
/// are written from the Kubernetes API reference, not recorded from a cluster.
///
/// It runs `Tests/Support/kube_exchanges.py`, which makes a throwaway CA and a certificate for 127.0.0.1 with the
/// `openssl` tool (`caFile`; `otherCAFile` is an unrelated CA), and answers each request with the next exchange
/// only if the request is exactly the one written (method, path, query, bearer token, Content-Type, JSON body);
/// anything else is recorded as a failure. `with(_:_:)` starts it, runs the test's body, stops it whatever
/// happens, and fails unless every exchange was served and none failed.
public final class KubeExchangeServer: Sendable {
    /// `https://127.0.0.1:PORT`.
    public let apiServer: String
    /// The CA that signed the server's certificate: the service account's `ca.crt`.
    public let caFile: String
    /// A CA that did not.
    public let otherCAFile: String
    /// A private folder for the test's files (the token file).
    public let directory: TemporaryDirectory

    private let serverProcess: ServerProcess
    private var process: LaunchedProcess { serverProcess.process }

    private init(process: LaunchedProcess, port: Int, directory: TemporaryDirectory) {
        serverProcess = ServerProcess(process)
        apiServer = "https://127.0.0.1:\(port)"
        caFile = directory.appending("ca.crt").path
        otherCAFile = directory.appending("other-ca.crt").path
        self.directory = directory
    }

    deinit {
        if !serverProcess.isStopped {
            process.kill(SIGKILL, includingChildren: true)
            _ = try? process.waitForExitBlocking(timeout: .seconds(5))
        }
    }

    /// `Tests/Support/kubernetes/<name>.json`.
    public static func exchangeFile(_ name: String) -> URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Support/kubernetes/\(name).json")
    }

    static var scriptURL: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Support/kube_exchanges.py")
    }

    /// Starts a server replaying `Tests/Support/kubernetes/<exchanges>.json`, runs `body`, stops the server. Throws
    /// the server's failures (requests that were not the written ones) and the exchanges left unserved, after
    /// `body` returns or together with what `body` threw; with `verify` false (for tests of the server itself),
    /// `body` reads `report()` itself.
    public static func with<T>(
        _ exchanges: String, verify: Bool = true, isolation: isolated (any Actor)? = #isolation,
        _ body: (KubeExchangeServer) async throws -> T
    ) async throws -> T {
        guard verify else {
            return try await ServerProcess.run(
                try await start(exchanges), stoppingWith: { await $0.serverProcess.stop() }, body)
        }
        let server = try await start(exchanges)
        return try await ServerProcess.run(server, stoppingWith: { await $0.serverProcess.stop() }) { server in
            let result: T
            do {
                result = try await body(server)
            } catch {
                let report = (try? server.report()).map { "\n\($0)" } ?? ""
                throw TestSupportError("\(error)\(report)")
            }
            let report = try server.report()
            guard report.failures.isEmpty, report.unconsumed.isEmpty else {
                throw TestSupportError("the exchanges of \(exchanges).json were not followed:\n\(report)")
            }
            return result
        }
    }

    static func start(_ exchanges: String) async throws -> KubeExchangeServer {
        let directory = try TemporaryDirectory(prefix: "kube-exchanges")
        let process = try ProcessRunner.launch(
            "python3", [scriptURL.path, "--dir", directory.path, exchangeFile(exchanges).path],
            environment: ["PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"])
        do {
            let port = try await waitForPort(process)
            return KubeExchangeServer(process: process, port: port, directory: directory)
        } catch {
            await process.terminateAndWait()
            throw error
        }
    }

    /// What the server saw so far.
    public struct Report: Decodable, CustomStringConvertible, Sendable {
        /// Requests that were not the next written exchange, and why.
        public let failures: [String]
        /// Exchanges not served yet.
        public let unconsumed: [String]
        /// Written exchanges served.
        public let served: Int
        /// Requests answered, each repeat of a repeating exchange included.
        public let answered: Int

        public var description: String {
            "served \(served) exchange(s) in \(answered) answer(s)"
                + (failures.isEmpty ? "" : "\nunexpected requests:\n  " + failures.joined(separator: "\n  "))
                + (unconsumed.isEmpty ? "" : "\nexchanges never requested:\n  " + unconsumed.joined(separator: "\n  "))
        }
    }

    /// Asks the server (with curl, trusting its CA).
    public func report() throws -> Report {
        let result = try ProcessRunner.runBlocking(
            "curl",
            ["-q", "-sS", "--noproxy", "*", "--max-time", "10", "--cacert", caFile, "\(apiServer)/__replay__/report"],
            timeout: .seconds(20))
        guard result.succeeded else { throw TestSupportError("the exchange server's report: \(result)") }
        do {
            return try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8))
        } catch {
            throw TestSupportError("the exchange server's report is not understood: \(result.stdout)")
        }
    }

    /// What the script logged (one line per request, and each failure).
    public var logContents: String { process.stderrSoFar }

    private static func waitForPort(_ process: LaunchedProcess) async throws -> Int {
        let prefix = "listening on 127.0.0.1:"
        var port: Int?
        do {
            try await eventually(
                timeout: .seconds(30), pollInterval: .milliseconds(10), "the exchange server listening"
            ) {
                let output = process.stdoutSoFar
                if let start = output.range(of: prefix), let end = output[start.upperBound...].firstIndex(of: "\n") {
                    port = Int(output[start.upperBound..<end])
                    if port == nil { throw TestSupportError("kube_exchanges.py printed \(output.debugDescription)") }
                    return true
                }
                if !process.isRunning {
                    let result = try await process.waitForExit(timeout: .seconds(5))
                    throw TestSupportError("kube_exchanges.py exited while starting: \(result)")
                }
                return false
            }
        } catch let error as EventuallyTimeoutError {
            throw TestSupportError("\(error)\n--- kube_exchanges.py stderr ---\n\(process.stderrSoFar)")
        }
        guard let port else { throw TestSupportError("kube_exchanges.py printed no port") }
        return port
    }
}

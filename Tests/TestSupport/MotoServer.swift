import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A throwaway S3 server (moto's `moto_server`) on 127.0.0.1, for the S3 store's tests.
///
/// Each server is its own process on its own free port, with its own empty state. Use
/// `MotoServer.with { server in … }`, which always stops the server, or pair `start()` with
/// `stop()`; a server a test forgets is killed when the object is deallocated.
///
/// By default the server verifies SigV4 signatures like S3 does: a request signed with an unknown
/// key id gets 403 InvalidAccessKeyId, one with a wrong secret (or a header altered after signing)
/// 403 SignatureDoesNotMatch. moto checks signatures only after `INITIAL_NO_AUTH_ACTION_COUNT`
/// unauthenticated actions, and only for keys that exist in its IAM. So the server starts with
/// that count infinite, the first (unchecked) requests create an IAM user `contingency-tests` with
/// an inline `s3:*` policy and an access key, and then `POST /moto-api/reset-auth` with "0" (the
/// call moto's own `set_initial_no_auth_action_count` makes in server mode) turns checking on for
/// every later request. `accessKeyID` and `secretAccessKey` are that key (random per server).
/// Pass `verifyingSignatures: false` for a server that accepts any signature (still with those
/// properties set and the same user), e.g. behind a `FaultProxy` that strips signed headers.
///
/// What moto 5.2.1 does with conditional requests under signature verification (checked by
/// `HarnessTests`): `If-None-Match: *` and `If-Match` on PutObject, `If-Match` on DeleteObject
/// and `If-None-Match: *` on CompleteMultipartUpload answer 412 PreconditionFailed when the
/// condition fails. moto ignores `If-Match` on CompleteMultipartUpload (S3 honours it).
///
/// moto 5.2.1 checks S3 signatures against a URL with its percent-escapes decoded, so a prefix
/// with "/" or a key with ":" would fail; the server runs with a small patch for that (see
/// `launcherScript`), which is also why it is started with `python3` rather than `moto_server`.
///
/// Quirks of moto a client or test must know: a request without an `Authorization` header gets
/// 500 once signatures are verified (S3 would say 403) and 403 AccessDenied on private objects
/// when they are not; a body sent with `Content-Type: application/x-www-form-urlencoded` (curl's
/// default for `--data`) is parsed as a form and stored empty; without an `x-amz-content-sha256`
/// header moto's check hashes the wrong payload, so a client must send it (S3 requires it too).
public final class MotoServer: Sendable {
    /// Always "127.0.0.1".
    public let host = "127.0.0.1"
    /// The TCP port.
    public let port: Int
    /// "http://127.0.0.1:PORT", the S3 endpoint for path-style requests.
    public let endpoint: String
    /// The signing region, "us-east-1".
    public let region = "us-east-1"
    /// The access key id of the server's IAM user, allowed `s3:*` on everything.
    public let accessKeyID: String
    /// The secret of `accessKeyID`. Pass it to child processes in their environment, never in argv.
    public let secretAccessKey: String
    /// Whether the server refuses requests whose SigV4 signature is wrong or whose key is unknown.
    public let verifiesSignatures: Bool

    private let serverProcess: ServerProcess
    private var process: LaunchedProcess { serverProcess.process }

    /// How many times `start()` tries again with another port when the chosen one was taken.
    private static let portAttempts = 5
    /// How long moto may take to import and bind (it takes one or two seconds).
    private static let startTimeout: Duration = .seconds(60)
    /// The IAM user whose key signs every request once signatures are verified.
    private static let userName = "contingency-tests"

    private init(process: LaunchedProcess, port: Int, key: (id: String, secret: String), verifiesSignatures: Bool) {
        serverProcess = ServerProcess(process)
        self.port = port
        endpoint = "http://127.0.0.1:\(port)"
        accessKeyID = key.id
        secretAccessKey = key.secret
        self.verifiesSignatures = verifiesSignatures
    }

    deinit {
        if !serverProcess.isStopped {
            Self.terminateBlocking(process)
        }
    }

    // MARK: - Starting and stopping

    /// Starts a server on a free port, creates its IAM user and key, turns signature verification
    /// on unless `verifyingSignatures` is false, and returns once it answers HTTP.
    public static func start(verifyingSignatures: Bool = true) async throws -> MotoServer {
        var lastFailure = ""
        for _ in 0..<portAttempts {
            let port = try FreePort.pick()
            let process = try launch(port: port)
            do {
                guard try await waitUntilAnswering(process, port: port) else {
                    lastFailure = "port \(port) was taken:\n\(logTail(process))"
                    await process.terminateAndWait()
                    continue
                }
                let key = try await createUser(endpoint: "http://127.0.0.1:\(port)", enforcing: verifyingSignatures)
                return MotoServer(process: process, port: port, key: key, verifiesSignatures: verifyingSignatures)
            } catch {
                await process.terminateAndWait()
                throw error
            }
        }
        throw TestSupportError(
            "moto_server could not bind a free port in \(portAttempts) attempts; last: \(lastFailure)")
    }

    /// Starts a server, runs `body` with it and stops the server whether `body` returns or throws.
    public static func with<T>(
        verifyingSignatures: Bool = true,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (MotoServer) async throws -> T
    ) async throws -> T {
        try await ServerProcess.run(try await start(verifyingSignatures: verifyingSignatures),
            stoppingWith: { await $0.stop() }, body)
    }

    /// Stops the server: SIGTERM, then SIGKILL to its process group after 5 seconds; returns once
    /// the process is gone (and its port closed). Idempotent; runs to completion even if the
    /// calling task is cancelled.
    public func stop() async {
        await serverProcess.stop()
    }

    /// Whether the server process is running.
    public var isRunning: Bool { process.isRunning }

    /// What the server printed so far (its request log and any traceback), for failure messages.
    public var logContents: String { process.stderrSoFar + process.stdoutSoFar }

    // MARK: - Assertions and setup

    /// Creates bucket `name` (in us-east-1), signed with the server's key.
    public func createBucket(_ name: String) throws {
        _ = try runBoto3(
            "s3.create_bucket(Bucket=sys.argv[2])", arguments: [name], what: "create bucket \(name)")
    }

    /// How many multipart uploads of `bucket` are open (started, neither completed nor aborted).
    public func openMultipartUploads(bucket: String) throws -> Int {
        let output = try runBoto3(
            """
            pages = s3.get_paginator("list_multipart_uploads").paginate(Bucket=sys.argv[2])
            print(sum(len(page.get("Uploads", [])) for page in pages))
            """, arguments: [bucket], what: "list the multipart uploads of \(bucket)")
        guard let count = Int(output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw TestSupportError(
                "list_multipart_uploads of \(bucket) printed \(output.debugDescription), not a count")
        }
        return count
    }

    /// The keys in `bucket` that start with `prefix`, in S3's (UTF-8 binary) order, all pages.
    public func objectKeys(bucket: String, prefix: String = "") throws -> [String] {
        let output = try runBoto3(
            """
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[2], Prefix=sys.argv[3])
            json.dump([item["Key"] for page in pages for item in page.get("Contents", [])], sys.stdout)
            """, arguments: [bucket, prefix], what: "list the objects of \(bucket) under \(prefix.debugDescription)")
        do {
            return try JSONDecoder().decode([String].self, from: Data(output.utf8))
        } catch {
            throw TestSupportError("list_objects_v2 of \(bucket) printed \(output.debugDescription), not a JSON list")
        }
    }

    /// Runs a boto3 script with `s3` (a path-style client for this server, signed with its key, no
    /// retries) and `sys.argv[2...]` = `arguments`; returns its standard output.
    private func runBoto3(_ body: String, arguments: [String], what: String) throws -> String {
        let script = """
            import json, sys, boto3
            from botocore.config import Config
            s3 = boto3.client("s3", endpoint_url=sys.argv[1],
                              config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
            \(body)
            """
        let result = try ProcessRunner.runBlocking(
            "python3", ["-c", script, endpoint] + arguments,
            environment: Self.pythonEnvironment(accessKeyID: accessKeyID, secretAccessKey: secretAccessKey),
            inheritEnvironment: false, timeout: .seconds(60))
        guard result.succeeded else {
            throw TestSupportError("boto3 could not \(what) on moto at \(endpoint): \(result)")
        }
        return result.stdout
    }

    // MARK: - Internals

    /// Starts moto's server with `python3` (the interpreter that must have moto and boto3 for the
    /// helpers anyway), through `launcherScript`.
    private static func launch(port: Int) throws -> LaunchedProcess {
        // Signature checks start only after reset-auth: the unauthenticated setup requests must pass.
        var environment = pythonEnvironment()
        environment["INITIAL_NO_AUTH_ACTION_COUNT"] = "inf"
        return try ProcessRunner.launch(
            "python3", ["-c", launcherScript, "-H", "127.0.0.1", "-p", String(port)],
            environment: environment, inheritEnvironment: false)
    }

    /// `moto_server`'s `main()`, after fixing how moto 5.2.1 checks S3 signatures.
    ///
    /// moto recomputes a signature from the URL as Werkzeug hands it over, which has
    /// percent-escapes in the query and path decoded ("prefix=a%2F" arrives as "prefix=a/", a key
    /// "a%3Ab" as "a:b"), and botocore does not encode them again; so every signed request with a
    /// "/" in a prefix, a continuation token, or a key with ":", "+", "=", "%" or non-ASCII
    /// characters failed with SignatureDoesNotMatch (getmoto/moto#5948, fix #5949 unmerged). The
    /// patch hands moto's check the canonical form of the raw request target instead (each path
    /// segment and query name and value decoded, then encoded as SigV4 says, as S3 does). It
    /// changes nothing else; if moto's internals change, the server fails to start and says why. A second patch
    /// makes moto's conditional writes atomic, as S3's are (see the script).
    /// The script also ends the server when its parent, the test process, is gone.
    private static let launcherScript = """
        import sys, urllib.parse
        import flask
        from moto.core.authorization import ActionAuthenticatorMixin

        checked = ActionAuthenticatorMixin._authenticate_and_authorize_action

        def encode(text):
            return urllib.parse.quote(urllib.parse.unquote(text), safe="-_.~")

        def canonical_target(raw):
            path, _, query = raw.partition("?")
            pairs = [pair.partition("=") for pair in query.split("&") if pair]
            canonical = "/".join(encode(segment) for segment in path.split("/"))
            return canonical + ("?" + "&".join(encode(k) + "=" + encode(v) for k, _, v in pairs) if pairs else "")

        def authenticate_with_raw_target(self, iam_request_cls, resource="*"):
            raw = flask.request.environ.get("RAW_URI") if flask.has_request_context() else None
            if iam_request_cls.__name__ != "S3IAMRequest" or not raw:
                return checked(self, iam_request_cls, resource)
            decoded_uri = self.uri
            parts = urllib.parse.urlsplit(decoded_uri)
            # WSGI strings carry the request's bytes as latin-1.
            self.uri = parts.scheme + "://" + parts.netloc + canonical_target(raw.encode("latin-1").decode("utf-8"))
            try:
                return checked(self, iam_request_cls, resource)
            finally:
                self.uri = decoded_uri

        ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate_with_raw_target

        # moto checks If-Match and If-None-Match, then writes, with other requests' threads in between: two
        # conditional writes of one key could both pass, which S3 never allows and the leases rely on. Conditional
        # writes (small objects: leases, requests) go one at a time here, as S3 makes them atomic.
        import functools, threading
        from moto.s3.responses import S3Response
        conditional_writes = threading.Lock()
        unserialized_key_response = S3Response.key_response

        @functools.wraps(unserialized_key_response)
        def key_response(self, request, full_url, headers):
            conditional = "If-Match" in request.headers or "If-None-Match" in request.headers
            if request.method in ("PUT", "POST", "DELETE") and conditional:
                with conditional_writes:
                    return unserialized_key_response(self, request, full_url, headers)
            return unserialized_key_response(self, request, full_url, headers)

        S3Response.key_response = key_response

        # A server whose test process died (crashed, killed) exits within a second.
        import os, threading, time
        parent = os.getppid()
        def exit_with_parent():
            while os.getppid() == parent:
                time.sleep(1)
            os._exit(0)
        threading.Thread(target=exit_with_parent, daemon=True).start()

        from moto.server import main
        sys.argv[0] = "moto_server"
        main()
        """

    /// Waits until the server answers `GET /moto-api/` with 200 (a page outside the S3 API, so it
    /// does not count as an action). Returns false if the server exited because its port was
    /// taken; throws if it exited for another reason or did not answer in time.
    private static func waitUntilAnswering(_ process: LaunchedProcess, port: Int) async throws -> Bool {
        var portTaken = false
        do {
            try await eventually(
                timeout: startTimeout, pollInterval: .milliseconds(50), "moto_server answering HTTP on port \(port)"
            ) {
                if !process.isRunning {
                    let log = logTail(process)
                    if log.contains("Address already in use") {
                        portTaken = true
                        return true
                    }
                    throw TestSupportError("moto_server exited while starting on port \(port):\n\(log)")
                }
                guard FreePort.isAcceptingConnections(port: port) else { return false }
                let probe = try await ProcessRunner.run(
                    "curl",
                    [
                        "-q", "-s", "--noproxy", "*", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}",
                        "http://127.0.0.1:\(port)/moto-api/",
                    ],
                    environment: pythonEnvironment(), inheritEnvironment: false, timeout: .seconds(10))
                return probe.stdout == "200"
            }
        } catch let error as EventuallyTimeoutError {
            throw TestSupportError("\(error)\n--- moto_server log (tail) ---\n\(logTail(process))")
        }
        return !portTaken
    }

    /// Creates the IAM user, its `s3:*` policy and its access key with unchecked requests, then,
    /// when `enforcing`, makes moto check every later request's signature. Returns the key.
    private static func createUser(endpoint: String, enforcing: Bool) async throws -> (id: String, secret: String) {
        let script = """
            import json, sys, urllib.request, boto3
            endpoint, user, enforce = sys.argv[1], sys.argv[2], sys.argv[3] == "enforce"
            iam = boto3.client("iam", endpoint_url=endpoint)
            iam.create_user(UserName=user)
            policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
            iam.put_user_policy(UserName=user, PolicyName="s3-all", PolicyDocument=json.dumps(policy))
            key = iam.create_access_key(UserName=user)["AccessKey"]
            if enforce:
                request = urllib.request.Request(endpoint + "/moto-api/reset-auth", data=b"0", method="POST",
                                                 headers={"Content-Type": "text/plain"})
                with urllib.request.urlopen(request, timeout=30) as response:
                    answer = json.load(response)
                    if answer.get("status") != "ok":
                        sys.exit(f"reset-auth answered {answer}")
            print(key["AccessKeyId"])
            print(key["SecretAccessKey"])
            """
        // Before reset-auth moto checks no signature; any key will do.
        let result = try await ProcessRunner.run(
            "python3", ["-c", script, endpoint, userName, enforcing ? "enforce" : "open"],
            environment: pythonEnvironment(accessKeyID: "setup", secretAccessKey: "setup"),
            inheritEnvironment: false, timeout: .seconds(60))
        let lines = result.stdout.split(separator: "\n").map(String.init)
        // stdout holds the secret: only stderr goes into the error.
        guard result.succeeded, lines.count == 2 else {
            throw TestSupportError(
                "Setting up moto's IAM user at \(endpoint) failed (status \(result.status)):\n\(result.stderr)")
        }
        return (lines[0], lines[1])
    }

    /// Our environment without AWS settings or proxies (so neither a developer's profile nor an HTTP
    /// proxy gets in the way), plus the given key and fixed region for boto3.
    private static func pythonEnvironment(
        accessKeyID: String? = nil, secretAccessKey: String? = nil
    ) -> [String: String] {
        let proxyVariables: Set<String> = ["http_proxy", "https_proxy", "all_proxy", "no_proxy"]
        var environment = ProcessInfo.processInfo.environment.filter { name, _ in
            !name.hasPrefix("AWS_") && !proxyVariables.contains(name.lowercased())
        }
        environment["NO_PROXY"] = "127.0.0.1,localhost"
        environment["AWS_DEFAULT_REGION"] = "us-east-1"
        environment["AWS_CONFIG_FILE"] = "/dev/null"
        environment["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null"
        environment["AWS_EC2_METADATA_DISABLED"] = "true"
        environment["PYTHONUNBUFFERED"] = "1"
        if let accessKeyID, let secretAccessKey {
            environment["AWS_ACCESS_KEY_ID"] = accessKeyID
            environment["AWS_SECRET_ACCESS_KEY"] = secretAccessKey
        }
        return environment
    }

    /// The last 40 lines the server printed.
    private static func logTail(_ process: LaunchedProcess) -> String {
        let lines = (process.stderrSoFar + process.stdoutSoFar).split(separator: "\n", omittingEmptySubsequences: false)
        return lines.suffix(40).joined(separator: "\n")
    }

    /// `stop()` for `deinit`: SIGTERM, up to 5 seconds, then SIGKILL to the group; blocks until gone.
    private static func terminateBlocking(_ process: LaunchedProcess) {
        process.kill(SIGTERM)
        _ = try? process.waitForExitBlocking(timeout: .seconds(5))
    }
}

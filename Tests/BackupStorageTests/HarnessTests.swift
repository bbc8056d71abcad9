import Foundation
import TestSupport
import Testing

/// Checks of the S3 test harness itself: `MotoServer` really is an S3 server that verifies
/// signatures and honours conditional writes, and each `FaultProxy` fault is what a client sees.
/// The client here is curl (`--aws-sigv4`), so these checks do not depend on the S3 store.
@Suite("S3 test harness: MotoServer and FaultProxy", .timeLimit(.minutes(3)))
struct HarnessTests {
    // MARK: - MotoServer

    @Test("moto starts, stores and lists objects, and its port is closed after stop")
    func motoStartsAndStops() async throws {
        let port = try await MotoServer.with { moto in
            #expect(moto.isRunning)
            #expect(moto.endpoint == "http://127.0.0.1:\(moto.port)")
            try moto.createBucket("harness-start")
            #expect(try moto.objectKeys(bucket: "harness-start") == [])
            let curl = try SignedCurl(for: moto)
            for key in ["a/1", "a/2", "b/1"] {
                let put = try await curl.send("PUT", "\(moto.endpoint)/harness-start/\(key)", body: Data(key.utf8))
                #expect(put.status == 200, "\(put)")
            }
            #expect(try moto.objectKeys(bucket: "harness-start", prefix: "a/") == ["a/1", "a/2"])
            #expect(try moto.objectKeys(bucket: "harness-start").count == 3)
            let get = try await curl.send("GET", "\(moto.endpoint)/harness-start/b/1")
            #expect(get.status == 200 && get.body == "b/1", "\(get)")
            return moto.port
        }
        #expect(!FreePort.isAcceptingConnections(port: port))
    }

    @Test("moto refuses a wrong secret and an unknown key id, and accepts the right key")
    func motoVerifiesSignatures() async throws {
        try await MotoServer.with { moto in
            #expect(moto.verifiesSignatures)
            try moto.createBucket("harness-auth")
            let url = "\(moto.endpoint)/harness-auth/object"
            let right = try SignedCurl(for: moto)
            let put = try await right.send("PUT", url, body: Data("content".utf8))
            #expect(put.status == 200, "\(put)")

            let wrongSecret = try SignedCurl(accessKeyID: moto.accessKeyID, secretAccessKey: moto.secretAccessKey + "x")
            let badGet = try await wrongSecret.send("GET", url)
            #expect(badGet.status == 403 && badGet.body.contains("<Code>SignatureDoesNotMatch</Code>"), "\(badGet)")
            let badPut = try await wrongSecret.send("PUT", "\(url)-forged", body: Data("forged".utf8))
            #expect(badPut.status == 403, "\(badPut)")

            let unknownKey = try SignedCurl(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: moto.secretAccessKey)
            let unknown = try await unknownKey.send("GET", url)
            #expect(unknown.status == 403 && unknown.body.contains("<Code>InvalidAccessKeyId</Code>"), "\(unknown)")

            #expect(try moto.objectKeys(bucket: "harness-auth") == ["object"])
        }
    }

    @Test("moto answers failed conditions with 412 while verifying signatures; multipart uploads are counted")
    func motoHonoursConditionalRequests() async throws {
        try await MotoServer.with { moto in
            try moto.createBucket("harness-conditional")
            let curl = try SignedCurl(for: moto)
            let url = "\(moto.endpoint)/harness-conditional/object"

            let created = try await curl.send("PUT", url, body: Data("one".utf8), headers: ["If-None-Match: *"])
            #expect(created.status == 200, "\(created)")
            let again = try await curl.send("PUT", url, body: Data("two".utf8), headers: ["If-None-Match: *"])
            #expect(again.status == 412 && again.body.contains("PreconditionFailed"), "\(again)")

            let staleTag = "If-Match: \"0123456789abcdef0123456789abcdef\""
            let stalePut = try await curl.send("PUT", url, body: Data("three".utf8), headers: [staleTag])
            #expect(stalePut.status == 412, "\(stalePut)")
            let matchingPut = try await curl.send(
                "PUT", url, body: Data("four".utf8), headers: ["If-Match: \(created.etag)"])
            #expect(matchingPut.status == 200, "\(matchingPut)")
            let staleDelete = try await curl.send("DELETE", url, headers: [staleTag])
            #expect(staleDelete.status == 412, "\(staleDelete)")
            let get = try await curl.send("GET", url)
            #expect(get.body == "four")

            // A multipart upload completed with If-None-Match: * over an existing key.
            // "uploads=": curl 7.88 signs a bare "uploads" without the "=" SigV4 requires.
            let started = try await curl.send("POST", "\(url)?uploads=")
            let uploadID = try #require(started.xmlValue("UploadId"), "\(started)")
            #expect(try moto.openMultipartUploads(bucket: "harness-conditional") == 1)
            let part = try await curl.send("PUT", "\(url)?partNumber=1&uploadId=\(uploadID)", body: Data("part".utf8))
            #expect(part.status == 200, "\(part)")
            let completion = Data(
                "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\(part.etag)</ETag></Part></CompleteMultipartUpload>"
                    .utf8)
            let completed = try await curl.send(
                "POST", "\(url)?uploadId=\(uploadID)", body: completion, headers: ["If-None-Match: *"])
            #expect(completed.status == 412, "\(completed)")
            #expect(try moto.openMultipartUploads(bucket: "harness-conditional") == 1)
            let aborted = try await curl.send("DELETE", "\(url)?uploadId=\(uploadID)")
            #expect(aborted.status == 204, "\(aborted)")
            #expect(try moto.openMultipartUploads(bucket: "harness-conditional") == 0)

            let matchingDelete = try await curl.send("DELETE", url, headers: ["If-Match: \(matchingPut.etag)"])
            #expect(matchingDelete.status == 204, "\(matchingDelete)")
            #expect(try moto.objectKeys(bucket: "harness-conditional") == [])
        }
    }

    // MARK: - FaultProxy

    @Test("a status burst answers 503 SlowDown, keeps the connection, then lets requests through signed")
    func proxyStatusBurst() async throws {
        try await MotoServer.with { moto in
            try moto.createBucket("harness-status")
            let curl = try SignedCurl(for: moto)
            try await FaultProxy.with(inFrontOf: moto) { proxy in
                let url = "\(proxy.endpoint)/harness-status/object"
                try proxy.set(.init([.status(503, count: 1, method: "PUT")]))
                // Two PUTs of one body on one connection: the first is refused, its body drained.
                let puts = try await curl.run(
                    [
                        "-X", "PUT", "-H", "Content-Type: application/octet-stream", "--data-binary", "payload",
                        "-w", "%{http_code} %{num_connects}\n", "-o", "/dev/null", url, "-o", "/dev/null", url,
                    ])
                #expect(puts.stdout == "503 1\n200 0\n", "\(puts)")

                try proxy.set(.init([.status(503, count: 2, method: "GET")]))
                let gets = try await curl.run(
                    [
                        "-w", "%{http_code} %{num_connects}\n", "-o", "/dev/null", url, "-o", "/dev/null", url,
                        "-o", "/dev/null", url,
                    ])
                #expect(gets.stdout == "503 1\n503 0\n200 0\n", "\(gets)")

                try proxy.set(.init([.status(count: 1)]))
                let refused = try await curl.send("GET", url)
                #expect(refused.status == 503 && refused.body.contains("<Code>SlowDown</Code>"), "\(refused)")
                let passed = try await curl.send("GET", url)
                #expect(passed.status == 200 && passed.body == "payload", "\(passed)")

                let expected = FaultProxy.Stats(
                    requests: 7, faultsInjected: 4, forwarded: 3, conditionalHeadersStripped: 0)
                #expect(try proxy.stats() == expected)
            }
        }
    }

    @Test("cutAfter interrupts an upload (nothing stored) and a download (short transfer)")
    func proxyCutsTransfers() async throws {
        try await MotoServer.with { moto in
            try moto.createBucket("harness-cut")
            let curl = try SignedCurl(for: moto)
            let payload = Data((0..<(256 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
            try await FaultProxy.with(inFrontOf: moto) { proxy in
                let url = "\(proxy.endpoint)/harness-cut/object"
                try proxy.set(.init([.cutAfter(bytes: 10_000, of: .request, method: "PUT")]))
                let cutUpload = try await curl.send("PUT", url, body: payload)
                #expect(cutUpload.exitCode != 0 && cutUpload.exitCode != 28, "\(cutUpload)")
                #expect(try moto.objectKeys(bucket: "harness-cut") == [])

                let upload = try await curl.send("PUT", url, body: payload)
                #expect(upload.status == 200, "\(upload)")

                try proxy.set(.init([.cutAfter(bytes: 10_000, of: .response, method: "GET")]))
                let cutDownload = try await curl.send("GET", url)
                #expect(cutDownload.exitCode == 18, "curl: partial file; \(cutDownload)")
                let download = try await curl.send("GET", url)
                #expect(download.status == 200 && download.bodyData == payload)
                #expect(try proxy.stats().faultsInjected == 2)
            }
        }
    }

    @Test("stall sends nothing, so the client's low-speed timeout fires; the next request passes")
    func proxyStalls() async throws {
        try await MotoServer.with { moto in
            try moto.createBucket("harness-stall")
            let curl = try SignedCurl(for: moto)
            try await FaultProxy.with(inFrontOf: moto) { proxy in
                let url = "\(proxy.endpoint)/harness-stall/object"
                #expect(try await curl.send("PUT", url, body: Data("x".utf8)).status == 200)
                try proxy.set(.init([.stall(.seconds(20), method: "GET")]))
                let clock = ContinuousClock()
                let start = clock.now
                let stalled = try await curl.send("GET", url, extra: ["--speed-limit", "1", "--speed-time", "1"])
                #expect(stalled.exitCode == 28, "curl: operation timed out; \(stalled)")
                #expect(clock.now - start < .seconds(15), "the client gave up, not the proxy")
                let next = try await curl.send("GET", url)
                #expect(next.status == 200 && next.body == "x", "\(next)")
            }
        }
    }

    @Test("stripping conditional headers lets a second If-None-Match PUT through (moto not verifying)")
    func proxyStripsConditionalHeaders() async throws {
        try await MotoServer.with(verifyingSignatures: false) { moto in
            try moto.createBucket("harness-strip")
            let curl = try SignedCurl(for: moto)
            try await FaultProxy.with(inFrontOf: moto) { proxy in
                let url = "\(proxy.endpoint)/harness-strip/object"
                let first = try await curl.send("PUT", url, body: Data("one".utf8), headers: ["If-None-Match: *"])
                #expect(first.status == 200, "\(first)")
                let honoured = try await curl.send("PUT", url, body: Data("two".utf8), headers: ["If-None-Match: *"])
                #expect(honoured.status == 412, "\(honoured)")

                try proxy.set(.stripConditionalHeaders)
                let ignored = try await curl.send("PUT", url, body: Data("three".utf8), headers: ["If-None-Match: *"])
                #expect(ignored.status == 200, "\(ignored)")
                #expect(try await curl.send("GET", url).body == "three")
                #expect(try proxy.stats().conditionalHeadersStripped == 1)
            }
        }
    }

    @Test("stripping a signed conditional header breaks the signature when moto verifies it")
    func proxyStripBreaksSignatures() async throws {
        try await MotoServer.with { moto in
            try moto.createBucket("harness-strip-signed")
            let curl = try SignedCurl(for: moto)
            try await FaultProxy.with(inFrontOf: moto) { proxy in
                try proxy.set(.stripConditionalHeaders)
                let url = "\(proxy.endpoint)/harness-strip-signed/object"
                let stripped = try await curl.send("PUT", url, body: Data("one".utf8), headers: ["If-None-Match: *"])
                #expect(stripped.status == 403 && stripped.body.contains("SignatureDoesNotMatch"), "\(stripped)")
                let plain = try await curl.send("PUT", url, body: Data("two".utf8))
                #expect(plain.status == 200, "\(plain)")
            }
        }
    }

    @Test("the proxy answers 502 without an upstream and its port is closed after stop")
    func proxyStops() async throws {
        let nothingListens = try FreePort.pick()
        let port = try await FaultProxy.with(upstreamPort: nothingListens) { proxy in
            #expect(FreePort.isAcceptingConnections(port: proxy.port))
            let curl = try SignedCurl(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "unused")
            let answer = try await curl.send("GET", "\(proxy.endpoint)/bucket/key")
            #expect(answer.status == 502, "\(answer)")
            return proxy.port
        }
        #expect(!FreePort.isAcceptingConnections(port: port))
    }
}

/// curl signing S3 requests with SigV4 (`--aws-sigv4`); the key is in a `-K` config file, not in argv.
///
/// Every request carries `x-amz-content-sha256: UNSIGNED-PAYLOAD` (curl 7.88 would otherwise sign
/// the hash of an empty payload for uploads), and a body is sent from standard input with a
/// Content-Length, as `application/octet-stream` (curl adds `Expect: 100-continue` above 1 KiB).
private struct SignedCurl {
    /// One exchange's outcome.
    struct Response: CustomStringConvertible {
        /// curl's exit code (0, or e.g. 18 partial file, 28 timeout, 52/55/56 connection failures).
        let exitCode: Int32
        /// The HTTP status, 0 when there was no response.
        let status: Int
        /// The response body.
        let bodyData: Data
        /// The ETag header, quotes included ("" when absent).
        let etag: String
        /// curl's error output.
        let stderr: String

        var body: String { String(decoding: bodyData, as: UTF8.self) }

        /// The text of the first `<name>` element in the body.
        func xmlValue(_ name: String) -> String? {
            guard let open = body.range(of: "<\(name)>"),
                let close = body.range(of: "</\(name)>", range: open.upperBound..<body.endIndex)
            else { return nil }
            return String(body[open.upperBound..<close.lowerBound])
        }

        var description: String {
            "curl exit \(exitCode), HTTP \(status), etag \(etag), body \(body.prefix(500).debugDescription), stderr \(stderr)"
        }
    }

    private let directory: TemporaryDirectory
    private let configFile: URL

    init(accessKeyID: String, secretAccessKey: String) throws {
        directory = try TemporaryDirectory(prefix: "harness-curl")  // mode 0700
        configFile = directory.appending("curl.config")
        try Data("user = \"\(accessKeyID):\(secretAccessKey)\"\n".utf8).write(to: configFile)
    }

    init(for server: MotoServer) throws {
        try self.init(accessKeyID: server.accessKeyID, secretAccessKey: server.secretAccessKey)
    }

    /// Sends one request and returns what came back (a failed transfer is a result, not an error).
    func send(
        _ method: String, _ url: String, body: Data? = nil, headers: [String] = [], extra: [String] = []
    ) async throws -> Response {
        let output = try TemporaryDirectory(prefix: "harness-curl-body")
        let bodyFile = output.appending("body")
        var arguments = ["-X", method, "-o", bodyFile.path, "-w", "%header{etag}\n%{http_code}"]
        for header in headers { arguments += ["-H", header] }
        if body != nil {
            // Not "-H Expect:": curl 7.88 signs that removed header, and the signature no longer matches.
            arguments += ["-H", "Content-Type: application/octet-stream", "--data-binary", "@-"]
        }
        let result = try await run(arguments + extra + [url], stdin: body)
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        return Response(
            exitCode: result.status,
            status: lines.last.flatMap { Int($0) } ?? 0,
            bodyData: (try? Data(contentsOf: bodyFile)) ?? Data(),
            etag: lines.count >= 2 ? String(lines[lines.count - 2]) : "",
            stderr: result.stderr)
    }

    /// Runs curl with the signing options followed by `arguments`.
    func run(_ arguments: [String], stdin: Data? = nil) async throws -> ProcessResult {
        let common = [
            "-q", "-sS", "--noproxy", "*", "--max-time", "60", "-K", configFile.path,
            "--aws-sigv4", "aws:amz:us-east-1:s3", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
        ]
        return try await ProcessRunner.run("curl", common + arguments, stdin: stdin, timeout: .seconds(90))
    }
}

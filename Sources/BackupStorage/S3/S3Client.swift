import BackupCore
import BackupInterop
import CoreMetrics
import Foundation
import Logging

/// Signed requests to one bucket over libcurl.
///
/// A request is sent once (`send`), or with retries of transient faults (`sendRetrying`). The store's whole
/// operations (a small object read, put, created, replaced or deleted, the clock) send once and throw
/// a `TransientStoreFault` for `RetryingStorage`, the decorator every opened bucket is wrapped in, to repeat the
/// operation. Only where an operation cannot be repeated whole are requests retried here, each signed anew for
/// each attempt: an archive streams through a writer (pg_dump's output cannot be rewound), so only the part in
/// hand can be sent again (a part, the one PUT of a small archive, starting, completing and aborting the
/// multipart upload), and a reader resends only the range in hand; the same goes for the two operations whose
/// repetition would change their answer (`S3Storage.delete` without a version, `abortInterruptedUploads`), and
/// a listing's pages (repeated whole, a listing would start again from its first page under one budget).
/// Both kinds of retry follow one `RetryPolicy` (`S3_RETRIES`, the same backoff, log line and counter); each
/// retry made here is counted once `countRetries(in:)` names where.
///
/// No AWS SDK for Swift is available offline; the handful of S3 calls the store needs (object PUT/GET/HEAD/
/// DELETE, ListObjectsV2, multipart upload) are plain HTTP requests signed with SigV4.
///
/// Thread-safe: each request borrows a libcurl handle from a small pool (a handle keeps its connections open,
/// so successive requests reuse them), and returns it after.
final class S3Client: @unchecked Sendable {
    let configuration: S3Configuration
    let logger: Logger?
    private let signer: SigV4Signer
    private let lock = NSLock()
    private var handles: [CurlEasy] = []
    /// `S3_RETRIES`, for the requests retried here; counted in `contingency_store_retries_total{store="bucket"}`.
    let retryPolicy: RetryPolicy
    private let scheme: String
    private let hostPort: String

    init(configuration: S3Configuration, logger: Logger?) throws {
        self.configuration = configuration
        self.logger = logger
        retryPolicy = RetryPolicy(retries: configuration.retries, logger: logger)
        signer = SigV4Signer(
            credentials: AWSCredentials(
                accessKeyID: configuration.accessKeyID, secretAccessKey: configuration.secretAccessKey,
                sessionToken: configuration.sessionToken),
            region: configuration.region)
        guard let components = URLComponents(string: configuration.endpoint), let scheme = components.scheme,
            let host = components.host
        else {
            throw ContingencyError.configuration("S3_ENDPOINT=\(configuration.endpoint) is not a URL")
        }
        self.scheme = scheme
        let defaultPort = scheme == "https" ? 443 : 80
        hostPort = components.port.map { $0 == defaultPort ? host : "\(host):\($0)" } ?? host
    }

    func countRetries(in factory: any MetricsFactory) { retryPolicy.countRetries(in: factory, store: .bucket) }

    /// One S3 call's outcome: the answer, whatever its status, other than a transient fault.
    struct Answer {
        let status: Int
        let headers: [String: String]
        let body: [UInt8]
        let truncated: Bool

        /// `<Error><Code>` of an error body, if there is one.
        var errorCode: String? { S3XMLElement.parse(body).flatMap { $0.name == "Error" ? $0.value("Code") : nil } }
        var errorMessage: String? { S3XMLElement.parse(body).flatMap { $0.name == "Error" ? $0.value("Message") : nil } }
        var etag: String? { headers["etag"] }
    }

    /// The full key of a store key: the bucket prefix joined in front.
    func objectKey(_ key: String) -> String {
        configuration.prefix.isEmpty ? key : key.isEmpty ? configuration.prefix : "\(configuration.prefix)/\(key)"
    }

    /// `s3://bucket/prefix/key`, for messages.
    func describe(_ objectKey: String) -> String { "s3://\(configuration.bucket)/\(objectKey)" }

    /// Sends one request, retrying transient faults `S3_RETRIES` times (see `RetryPolicy`): only for requests
    /// that cannot be left to `RetryingStorage`, which repeats whole operations (see the type's comment).
    /// Returns any other answer, including 4xx, for the caller to interpret; throws when the retries are spent,
    /// the fault is permanent, or `shouldStop` says to stop.
    func sendRetrying(
        _ method: String, key objectKey: String?, query: [(String, String)] = [],
        headers extra: [(String, String)] = [], body: [UInt8]? = nil, bodyLimit: Int = 1 << 20,
        shouldStop: (@Sendable () -> Bool)? = nil
    ) throws -> Answer {
        // Only transfers of data stop early (parts, ranged reads); the clean-up requests (aborting an upload)
        // run to their end even in a cancelled job.
        let shouldStop = shouldStop ?? { false }
        return try retryPolicy.run(stoppingWhen: shouldStop) {
            try send(
                method, key: objectKey, query: query, headers: extra, body: body, bodyLimit: bodyLimit,
                shouldStop: shouldStop)
        }
    }

    /// Sends one request, once. A transient fault (connection refused or reset, timeouts, stalls, 5xx, 429,
    /// S3's RequestTimeout / SlowDown / conditional-write conflicts) throws a `TransientStoreFault`, for the
    /// caller's retry (`sendRetrying`, `RetryingStorage`). Returns any other answer, including 4xx, for the
    /// caller to interpret; throws a `ContingencyError` when the fault is permanent or `shouldStop` stopped it.
    func send(
        _ method: String, key objectKey: String?, query: [(String, String)] = [], headers extra: [(String, String)] = [],
        body: [UInt8]? = nil, bodyLimit: Int = 1 << 20, shouldStop: (@Sendable () -> Bool)? = nil
    ) throws -> Answer {
        let shouldStop = shouldStop ?? { false }
        let path: String
        let host: String
        let encodedKey = objectKey.map { SigV4Signer.encode($0, keepSlash: true) }
        if configuration.pathStyle {
            host = hostPort
            path = "/\(configuration.bucket)" + (encodedKey.map { "/\($0)" } ?? "")
        } else {
            host = "\(configuration.bucket).\(hostPort)"
            path = "/" + (encodedKey ?? "")
        }
        let queryString = Self.queryString(query)
        let url = "\(scheme)://\(host)\(path)" + (queryString.isEmpty ? "" : "?\(queryString)")
        let what = "\(method) \(objectKey.map(describe) ?? "s3://\(configuration.bucket)")"
        let payloadHash = BackupInterop.SHA256.hex(of: body ?? [])

        // Signed now: a retry signs its request anew, with its own date.
        let headers = [("Host", host)] + extra
        var request = HTTPRequest(
            method: method, url: url,
            headers: headers + signer.sign(
                method: method, path: path, query: query, headers: headers, payloadHash: payloadHash, date: Date()),
            body: body)
        request.caBundle = configuration.caBundle
        request.lowSpeedSeconds = configuration.stallTimeoutSeconds
        request.connectTimeout = Double(min(configuration.stallTimeoutSeconds, 30))
        request.bodyLimit = bodyLimit
        request.userAgent = "contingency-s3"
        request.shouldStop = shouldStop
        let fault: String
        do {
            let response = try handle { try $0.perform(request) }
            let answer = Answer(
                status: response.status, headers: response.headers, body: response.body, truncated: response.truncated)
            guard Self.isTransient(answer) else { return answer }
            fault = "HTTP \(answer.status)" + (answer.errorCode.map { " \($0)" } ?? "")
        } catch let error as CurlTransportError where shouldStop() {
            throw ContingencyError.cancelled("\(what) stopped: \(error.message)")
        } catch let error as CurlTransportError where error.isTransient {
            fault = error.message
        } catch let error as CurlTransportError {
            throw ContingencyError.failed(
                "\(what) at \(configuration.endpoint): \(error)",
                hint: "check S3_ENDPOINT, S3_CA_BUNDLE and that the server is reachable from here")
        }
        throw TransientStoreFault(
            operation: what, fault: fault,
            hint: "the bucket's server at \(configuration.endpoint) is unreachable or overloaded "
                + "(S3_RETRIES and S3_TIMEOUT set how long a request is retried)")
    }

    /// The query as sent: the same encoding and order as the signature's canonical query. A parameter without a
    /// value is sent bare (`?uploads`) and signed as `uploads=`, as S3 expects.
    static func queryString(_ query: [(String, String)]) -> String {
        let encoded: [(name: String, value: String)] = query.map {
            (SigV4Signer.encode($0.0, keepSlash: false), SigV4Signer.encode($0.1, keepSlash: false))
        }
        let sorted = encoded.sorted { $0.name == $1.name ? $0.value < $1.value : $0.name < $1.name }
        return sorted.map { $0.value.isEmpty ? $0.name : "\($0.name)=\($0.value)" }.joined(separator: "&")
    }

    /// For requests that should stop when the task making them is cancelled (SIGTERM): evaluated on the calling
    /// thread, inside libcurl's progress callback.
    static let whenTaskCancelled = RetryPolicy.whenTaskCancelled

    static func isTransient(_ answer: Answer) -> Bool {
        switch answer.status {
        case 500, 502, 503, 504, 429, 408: return true
        case 400, 409:
            // IncompleteBody: S3's answer to an upload cut short.
            return ["RequestTimeout", "OperationAborted", "ConditionalRequestConflict", "IncompleteBody"].contains(answer.errorCode ?? "")
        // CompleteMultipartUpload can answer 200 and still fail, with an error body.
        case 200: return answer.body.count < 4096 && answer.errorCode.map { ["InternalError", "SlowDown"].contains($0) } == true
        default: return false
        }
    }

    /// The error for an answer that was not what the call needed: names the bucket and key, never a secret,
    /// and says what to check.
    func failure(_ answer: Answer, _ method: String, _ objectKey: String?) -> ContingencyError {
        let target = objectKey.map(describe) ?? "s3://\(configuration.bucket)"
        let code = answer.errorCode ?? "HTTP \(answer.status)"
        let message = answer.errorMessage.map { ": \($0)" } ?? ""
        let hint: String
        switch answer.errorCode ?? "" {
        case "InvalidAccessKeyId": hint = "AWS_ACCESS_KEY_ID \(configuration.accessKeyID) is not known to \(configuration.endpoint)"
        case "SignatureDoesNotMatch": hint = "AWS_SECRET_ACCESS_KEY does not match AWS_ACCESS_KEY_ID \(configuration.accessKeyID) (or AWS_REGION is wrong)"
        case "NoSuchBucket": hint = "create the bucket \(configuration.bucket) or fix BACKUP_S3_URL"
        case "AccessDenied", "AllAccessDisabled": hint = "the key \(configuration.accessKeyID) may not \(method) in \(configuration.bucket): check its policy"
        case "ExpiredToken", "InvalidToken": hint = "AWS_SESSION_TOKEN has expired or is invalid: renew the temporary credentials"
        case "AuthorizationHeaderMalformed": hint = "AWS_REGION (\(configuration.region)) is probably not the bucket's region"
        default: hint = answer.status == 403 ? "check the credentials and the bucket policy" : "see the server's message"
        }
        return .failed("\(method) \(target): \(code)\(message)", hint: hint)
    }

    private func handle<T>(_ body: (CurlEasy) throws -> T) throws -> T {
        let easy = try lock.withLock { handles.popLast() } ?? CurlEasy()
        defer { lock.withLock { if handles.count < 8 { handles.append(easy) } } }
        return try body(easy)
    }
}

import BackupCore
import CCurl
import Foundation

/// One HTTP request for `CurlEasy.perform`. The body, when there is one, is sent from memory with a
/// `Content-Length` (so a failed request can be sent again as it was).
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(String, String)]
    public var body: [UInt8]?
    /// Whole-request limit in seconds, or nil for none (large transfers rely on `lowSpeedSeconds` instead).
    public var timeout: Double?
    public var connectTimeout: Double = 10
    /// Abort when less than one byte per second moved for this long: a stalled peer, not a slow one.
    public var lowSpeedSeconds: Int?
    /// A CA bundle to verify the server with instead of the system's.
    public var caBundle: String?
    /// Connect to this unix socket instead of the URL's host (the Docker Engine API); the URL still gives
    /// the path, and its host the `Host` header.
    public var unixSocketPath: String?
    /// At most this much of the response body is kept.
    public var bodyLimit: Int = 64 * 1024
    public var followRedirects = false
    /// Polled while the transfer runs (about once a second at least); returning true stops it at once with a
    /// `CurlTransportError` that is not transient. For a job being cancelled.
    public var shouldStop: (@Sendable () -> Bool)?
    public var userAgent = "contingency"

    public init(method: String, url: String, headers: [(String, String)] = [], body: [UInt8]? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

/// What a server answered.
public struct HTTPResponse: Sendable {
    public let status: Int
    /// Header names lowercased; for a repeated header, the last value.
    public let headers: [String: String]
    /// The start of the body, at most the request's `bodyLimit` bytes.
    public let body: [UInt8]
    /// Whether the body was longer than `bodyLimit` (and `body` is only its start).
    public let truncated: Bool
}

/// A request that got no HTTP answer: refused, reset, timed out, or cut short. Carries libcurl's code so callers
/// can tell a fault worth retrying from a permanent one.
public struct CurlTransportError: Error, CustomStringConvertible, Sendable {
    public let code: Int
    public let message: String

    /// Faults of the network or of an overloaded peer, where the same request may succeed a moment later.
    public var isTransient: Bool {
        let transient: [CURLcode] = [
            CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT, CURLE_SEND_ERROR, CURLE_RECV_ERROR,
            CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE, CURLE_HTTP2, CURLE_HTTP2_STREAM, CURLE_SSL_CONNECT_ERROR,
            // The connection died mid-upload and libcurl could not rewind the body itself: the caller resends it.
            CURLE_SEND_FAIL_REWIND,
        ]
        return transient.contains { Int($0.rawValue) == code }
    }

    public var description: String { "\(message) (curl error \(code))" }
}

/// One libcurl easy handle. Owns the `CURL*`, frees it in `deinit`; not `Sendable` (libcurl handles must not
/// be used from two threads at once). Reusing one handle for several requests reuses its connections.
/// Variadic `curl_easy_setopt` is reached through the typed shims in CCurl's header.
public final class CurlEasy {
    private let handle: UnsafeMutableRawPointer
    private var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE))

    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    public init() throws {
        _ = Self.globalInit
        guard let handle = curl_easy_init() else { throw ContingencyError.failed("curl_easy_init failed") }
        self.handle = handle
    }

    deinit { curl_easy_cleanup(handle) }

    /// The state of one transfer, reached from libcurl's callbacks through their context pointer.
    private final class Transfer {
        let upload: [UInt8]
        var uploaded = 0
        var shouldStop: (@Sendable () -> Bool)?
        var body: [UInt8] = []
        var bodyLimit: Int
        var truncated = false
        var headers: [String: String] = [:]

        init(upload: [UInt8], bodyLimit: Int) {
            self.upload = upload
            self.bodyLimit = bodyLimit
        }
    }

    /// Sends `request` and returns the answer, whatever its status. Throws `CurlTransportError` when no
    /// complete answer came back, and `ContingencyError` when the request could not be set up.
    public func perform(_ request: HTTPRequest) throws -> HTTPResponse {
        let transfer = Transfer(upload: request.body ?? [], bodyLimit: request.bodyLimit)
        transfer.shouldStop = request.shouldStop
        curl_easy_reset(handle)
        try set(CURLOPT_URL, request.url)
        try set(CURLOPT_NOSIGNAL, 1)
        try set(CURLOPT_FOLLOWLOCATION, request.followRedirects ? 1 : 0)
        try set(CURLOPT_USERAGENT, request.userAgent)
        try set(CURLOPT_CONNECTTIMEOUT_MS, max(1, Int(request.connectTimeout * 1000)))
        if let timeout = request.timeout { try set(CURLOPT_TIMEOUT_MS, max(1, Int(timeout * 1000))) }
        if let seconds = request.lowSpeedSeconds {
            try set(CURLOPT_LOW_SPEED_LIMIT, 1)
            try set(CURLOPT_LOW_SPEED_TIME, max(1, seconds))
        }
        if let caBundle = request.caBundle { try set(CURLOPT_CAINFO, caBundle) }
        if let socket = request.unixSocketPath { try set(CURLOPT_UNIX_SOCKET_PATH, socket) }
        switch (request.method, request.body) {
        case ("GET", nil): try set(CURLOPT_HTTPGET, 1)
        case ("HEAD", nil): try set(CURLOPT_NOBODY, 1)
        case (_, nil): try set(CURLOPT_CUSTOMREQUEST, request.method)
        case (_, let body?):
            // UPLOAD sends the body with the read callback; CUSTOMREQUEST then names the verb (PUT or POST).
            try set(CURLOPT_UPLOAD, 1)
            try check(contingency_curl_setopt_off(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(body.count)), "CURLOPT_INFILESIZE_LARGE")
            try set(CURLOPT_CUSTOMREQUEST, request.method)
        }

        var list: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(list) }
        // No "Expect: 100-continue" round trip before each body.
        for (name, value) in request.headers + (request.body == nil ? [] : [("Expect", "")]) {
            list = curl_slist_append(list, value.isEmpty ? "\(name):" : "\(name): \(value)")
        }
        try check(contingency_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, list), "CURLOPT_HTTPHEADER")

        let context = Unmanaged.passUnretained(transfer).toOpaque()
        let status: CURLcode = errorBuffer.withUnsafeMutableBufferPointer { buffer in
            _ = contingency_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, buffer.baseAddress)
            _ = contingency_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, context)
            _ = contingency_curl_setopt_pointer(handle, CURLOPT_READDATA, context)
            _ = contingency_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, context)
            _ = contingency_curl_setopt_write_function(handle) { data, size, count, context in
                let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
                let length = size * count
                let keep = min(length, max(0, transfer.bodyLimit - transfer.body.count))
                if keep < length { transfer.truncated = true }
                if keep > 0, let data {
                    transfer.body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: keep))
                }
                return length
            }
            _ = contingency_curl_setopt_read_function(handle) { data, size, count, context in
                let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
                let length = min(size * count, transfer.upload.count - transfer.uploaded)
                guard length > 0, let data else { return 0 }
                transfer.upload.withUnsafeBytes { bytes in
                    UnsafeMutableRawPointer(data).copyMemory(from: bytes.baseAddress! + transfer.uploaded, byteCount: length)
                }
                transfer.uploaded += length
                return length
            }
            _ = contingency_curl_setopt_header_function(handle) { data, size, count, context in
                let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
                let length = size * count
                guard let data else { return length }
                let line = String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
                if line.hasPrefix("HTTP/") {
                    transfer.headers = [:]  // a new response (after a 100 Continue or a redirect)
                } else if let colon = line.firstIndex(of: ":") {
                    let name = line[..<colon].lowercased()
                    transfer.headers[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
                }
                return length
            }
            if transfer.shouldStop != nil {
                _ = contingency_curl_setopt_long(handle, CURLOPT_NOPROGRESS, 0)
                _ = contingency_curl_setopt_pointer(handle, CURLOPT_XFERINFODATA, context)
                _ = contingency_curl_setopt_xferinfo_function(handle) { context, _, _, _, _ in
                    let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
                    return transfer.shouldStop?() == true ? 1 : 0
                }
            }
            buffer[0] = 0
            let status = curl_easy_perform(handle)
            _ = contingency_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, nil)
            return status
        }
        withExtendedLifetime(transfer) {}
        guard status == CURLE_OK else {
            let detail = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw CurlTransportError(
                code: Int(status.rawValue), message: detail.isEmpty ? String(cString: curl_easy_strerror(status)) : detail)
        }
        var code = 0
        _ = contingency_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &code)
        return HTTPResponse(status: code, headers: transfer.headers, body: transfer.body, truncated: transfer.truncated)
    }

    /// A GET of `url` that must complete within `timeout` seconds. Follows no redirects: a health endpoint that
    /// redirects is reported as what it answered. Transport failures throw with libcurl's own message.
    public func get(_ url: String, timeout: Double, bodyLimit: Int = 64 * 1024) throws -> HTTPResponse {
        var request = HTTPRequest(method: "GET", url: url)
        request.timeout = timeout
        request.connectTimeout = timeout
        request.bodyLimit = bodyLimit
        request.userAgent = "contingency-health-sidecar"
        do {
            return try perform(request)
        } catch let error as CurlTransportError {
            throw ContingencyError.failed("GET \(Self.redacted(url)): \(error.message)")
        }
    }

    /// The URL without credentials or query (which may hold a token), for messages.
    public static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url) else { return "(unparseable URL)" }
        if components.user != nil || components.password != nil {
            components.user = nil
            components.password = nil
        }
        // Set as a query, "…" would be percent-encoded (`?%E2%80%A6`); it is appended as written instead.
        let hadQuery = components.query != nil
        components.query = nil
        return components.string.map { hadQuery ? $0 + "?…" : $0 } ?? "(unparseable URL)"
    }

    private func set(_ option: CURLoption, _ value: Int) throws {
        try check(contingency_curl_setopt_long(handle, option, value), "\(option)")
    }

    private func set(_ option: CURLoption, _ value: String) throws {
        try check(contingency_curl_setopt_string(handle, option, value), "\(option)")
    }

    private func check(_ code: CURLcode, _ option: String) throws {
        guard code == CURLE_OK else {
            throw ContingencyError.failed("curl_easy_setopt(\(option)): \(String(cString: curl_easy_strerror(code)))")
        }
    }
}

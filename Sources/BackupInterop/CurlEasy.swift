import BackupCore
import CCurl
import Foundation

/// One libcurl easy handle. Owns the `CURL*`, frees it in `deinit`; not `Sendable` (libcurl handles must not
/// be used from two threads at once). Variadic `curl_easy_setopt` is reached through the typed shims in
/// CCurl's header.
public final class CurlEasy {
    private let handle: UnsafeMutableRawPointer
    private var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE))

    /// What one request returned.
    public struct Response: Sendable {
        public let status: Int
        /// The start of the body, at most `bodyLimit` bytes.
        public let body: [UInt8]
    }

    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    public init() throws {
        _ = Self.globalInit
        guard let handle = curl_easy_init() else { throw ContingencyError.failed("curl_easy_init failed") }
        self.handle = handle
    }

    deinit { curl_easy_cleanup(handle) }

    /// A GET of `url` that must complete within `timeout` seconds. Follows no redirects: a health endpoint that
    /// redirects is reported as what it answered. Transport failures throw with libcurl's own message.
    public func get(_ url: String, timeout: Double, bodyLimit: Int = 64 * 1024) throws -> Response {
        final class Body {
            var bytes: [UInt8] = []
            var limit = 0
        }
        let body = Body()
        body.limit = bodyLimit
        curl_easy_reset(handle)
        try check(contingency_curl_setopt_string(handle, CURLOPT_URL, url), "CURLOPT_URL")
        try check(contingency_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, max(1, Int(timeout * 1000))), "CURLOPT_TIMEOUT_MS")
        try check(contingency_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1), "CURLOPT_NOSIGNAL")
        try check(contingency_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0), "CURLOPT_FOLLOWLOCATION")
        try check(contingency_curl_setopt_string(handle, CURLOPT_USERAGENT, "contingency-health-sidecar"), "CURLOPT_USERAGENT")
        let status: CURLcode = errorBuffer.withUnsafeMutableBufferPointer { buffer in
            _ = contingency_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, buffer.baseAddress)
            _ = contingency_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, Unmanaged.passUnretained(body).toOpaque())
            _ = contingency_curl_setopt_write_function(handle) { data, size, count, context in
                let body = Unmanaged<Body>.fromOpaque(context!).takeUnretainedValue()
                let length = size * count
                let keep = min(length, max(0, body.limit - body.bytes.count))
                if keep > 0, let data {
                    body.bytes.append(contentsOf: UnsafeRawBufferPointer(start: data, count: keep))
                }
                return length
            }
            buffer[0] = 0
            let status = curl_easy_perform(handle)
            _ = contingency_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, nil)
            return status
        }
        withExtendedLifetime(body) {}
        guard status == CURLE_OK else {
            let detail = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let message = detail.isEmpty ? String(cString: curl_easy_strerror(status)) : detail
            throw ContingencyError.failed("GET \(Self.redacted(url)): \(message)")
        }
        var code = 0
        _ = contingency_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &code)
        return Response(status: code, body: body.bytes)
    }

    /// The URL without credentials or query (which may hold a token), for messages.
    public static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url) else { return "(unparseable URL)" }
        if components.user != nil || components.password != nil {
            components.user = nil
            components.password = nil
        }
        if components.query != nil { components.query = "…" }
        return components.string ?? "(unparseable URL)"
    }

    private func check(_ code: CURLcode, _ option: String) throws {
        guard code == CURLE_OK else {
            throw ContingencyError.failed("curl_easy_setopt(\(option)): \(String(cString: curl_easy_strerror(code)))")
        }
    }
}

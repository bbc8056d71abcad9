import Foundation

extension CurlEasy {
    /// A POST of `body` to `url`, whatever the answer's status, within `timeout` seconds in all (connecting
    /// included). Follows no redirects. Throws `CurlTransportError` when no answer came (so callers can tell a
    /// transient fault); its message is libcurl's, which names the host and never the path.
    public func post(
        _ url: String, body: [UInt8], contentType: String, timeout: Double, userAgent: String = "contingency"
    ) throws -> HTTPResponse {
        var request = HTTPRequest(method: "POST", url: url, headers: [("Content-Type", contentType)], body: body)
        request.timeout = timeout
        request.connectTimeout = timeout
        request.bodyLimit = 4 * 1024
        request.userAgent = userAgent
        return try perform(request)
    }
}

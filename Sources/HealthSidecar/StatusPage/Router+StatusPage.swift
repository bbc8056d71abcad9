import HTTPTypes
import Hummingbird

extension Router<SidecarRequestContext> {
    /// `GET /` (the status page) and its assets, served from the binary without a token: they hold no data.
    /// Everything the page shows it fetches from the token-protected API in the browser, with the token the
    /// operator types (`APIGate.isPublic` lists the same paths).
    func addStatusPageRoutes() {
        for asset in StatusPage.assets {
            get(RouterPath(asset.path)) { _, _ in asset.response }
        }
    }
}

/// The status page's files: the page, its style, its script and its icon, each a Swift string (no build step, no
/// CDN, no font from elsewhere: the page works on a network without internet).
enum StatusPage {
    struct Asset: Sendable {
        let path: String
        let contentType: String
        let body: String

        var response: Response {
            var headers = StatusPage.securityHeaders
            headers[.contentType] = contentType
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
        }
    }

    static let assets = [
        Asset(path: "/", contentType: "text/html; charset=utf-8", body: html),
        Asset(path: "/status.css", contentType: "text/css; charset=utf-8", body: css),
        Asset(path: "/status.js", contentType: "text/javascript; charset=utf-8", body: script),
        Asset(path: "/favicon.svg", contentType: "image/svg+xml", body: icon),
    ]

    /// The paths served without a token, exactly as written (no other spelling: `//` is not `/` here).
    static let publicPaths = Set(assets.map(\.path))

    /// Only this origin's own script and style, no inline code, no frames, no form posted anywhere (the token
    /// form is handled in the script; if the script did not run, the browser posts nothing), and the only
    /// connections the page makes are to this sidecar's API.
    static let contentSecurityPolicy = [
        "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self'", "connect-src 'self'",
        "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
    ].joined(separator: "; ")

    /// Sent with the page and each asset. `no-store`: a proxy or the browser's cache keeps no copy that could
    /// outlive an upgrade of the sidecar.
    static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy: contentSecurityPolicy,
        .xContentTypeOptions: "nosniff",
        HTTPField.Name("Referrer-Policy")!: "no-referrer",
        HTTPField.Name("X-Frame-Options")!: "DENY",
        HTTPField.Name("Cross-Origin-Opener-Policy")!: "same-origin",
        .crossOriginResourcePolicy: "same-origin",
        .cacheControl: "no-store",
    ]
}

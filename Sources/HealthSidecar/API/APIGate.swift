import BackupCore
import BackupInterop
import BackupKit
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// The door of every route but `/healthz`, `/metrics` and the status page (the admin API, and any other path: deny
/// by default):
/// the client is named; a client that keeps sending wrong tokens is held back (429; a missing token is refused
/// but not counted); the token is checked in constant time (401, the same answer for a missing and a wrong one);
/// with no token configured the answer is 503: the API is never open. Every error behind it, the router's own
/// 404 included, leaves as `{"success": false, "error": …}`.
struct APIGate: RouterMiddleware {
    typealias Context = SidecarRequestContext
    let sidecar: SidecarContext

    static let tokenHeader = HTTPField.Name("X-API-Token")!
    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!

    /// The only paths served without the token: the sidecar's own health and its metrics, and the status page
    /// with its assets (which hold no data: the page asks the API, with the token). Everything else, the API and
    /// any path the router might take for it (it reads `//api/backups` as `/api/backups`), is behind the gate:
    /// deny by default, so no spelling of a path reaches a route around it. The page's paths count only as
    /// written (`//` is not public).
    static func isPublic(_ path: String) -> Bool {
        if StatusPage.publicPaths.contains(path) { return true }
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        return segments == ["healthz"] || segments == ["metrics"]
    }

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let path = request.uri.path
        guard !Self.isPublic(path) else {
            do {
                return try await next(request, context)
            } catch let error as HTTPError where error.status == .notFound {
                guard let notAllowed = Self.methodNotAllowed(request) else { throw error }
                return notAllowed
            }
        }
        var context = context
        if let peer = context.remoteAddress?.ipAddress, request.headers[Self.forwardedFor] != nil,
            !sidecar.configuration.api.trustedProxies.contains(where: { $0.contains(peer) }),
            sidecar.untrustedForwarding.first(peer)
        {
            // Behind a proxy that is not trusted, every client counts as the proxy: one client's wrong tokens
            // would hold all of them back. Said once per proxy.
            sidecar.logger.warning(
                "[API] X-Forwarded-For from \(peer), which is not in TRUSTED_PROXIES: the header is ignored and every client behind it counts as \(peer) (in the logs and the brake on wrong tokens). If \(peer) is your reverse proxy, set TRUSTED_PROXIES=\(peer)"
            )
        }
        context.client = ClientAddress.resolve(
            peer: context.remoteAddress?.ipAddress, forwardedFor: request.headers[values: Self.forwardedFor],
            trusted: sidecar.configuration.api.trustedProxies)
        do {
            guard let token = sidecar.configuration.api.token else { throw APIError.disabled }
            let now = Date()
            // The brake holds back clients that send tokens; one that sends none is told 401 (it cannot guess).
            if request.headers[Self.tokenHeader] != nil, let wait = sidecar.brake.retryAfter(context.client, now: now) {
                throw APIError(
                    .tooManyRequests, "too many wrong tokens from \(context.client): try again in \(wait) s",
                    headers: [.retryAfter: String(wait)])
            }
            guard let presented = request.headers[Self.tokenHeader], SecretComparison.equal(presented, token) else {
                // Only a token that was sent and is wrong is a guess; a request without one (a probe, a
                // misconfigured client) is refused without counting against the client.
                if request.headers[Self.tokenHeader] != nil { sidecar.brake.recordFailure(context.client, now: now) }
                sidecar.logger.warning(
                    "[API] \(request.method) \(LogText.clean(path)) from \(context.client) refused: missing or wrong X-API-Token")
                throw APIError.unauthorized
            }
            return try await next(request, context)
        } catch let error as APIError {
            return error.response
        } catch let error as HTTPError {
            // The router's own: no such route (404), a body over the limit (413), ….
            let message: String
            switch error.status {
            case .notFound:
                if let notAllowed = Self.methodNotAllowed(request) { return notAllowed }
                message = "no route \(request.method) \(LogText.clean(path)); see docs/openapi.yaml"
            case .contentTooLarge: message = "the request body is larger than \(APIResponse.bodyLimit / 1024) KiB"
            default: message = error.body ?? error.status.reasonPhrase
            }
            return APIError(error.status, message, headers: error.headers).response
        } catch let error as ContingencyError {
            return APIError.from(error).response
        } catch is CancellationError {
            return APIError(.serviceUnavailable, "the sidecar is shutting down; try again").response
        } catch {
            sidecar.logger.error("[API] \(request.method) \(LogText.clean(path)) failed: \(error)")
            return APIError(.internalServerError, "the request failed; the sidecar's log says why").response
        }
    }
}

extension APIGate {
    /// 405 with `Allow` when the router found no route because the path exists under other methods; nil when
    /// it does not exist at all (404).
    static func methodNotAllowed(_ request: Request) -> Response? {
        let allowed = Router<Context>.allowedMethods(request.uri.path)
        guard !allowed.isEmpty else { return nil }
        let list = allowed.map(\.rawValue).joined(separator: ", ")
        return APIError(
            .methodNotAllowed, "\(request.method) is not allowed on \(LogText.clean(request.uri.path)); use \(list)",
            headers: [.allow: list]
        ).response
    }
}

extension APIError {
    /// A use case's error, by its kind: what it means for the client, with the use case's own message (written
    /// for operators: what failed and what to do, never a secret).
    static func from(_ error: ContingencyError) -> APIError {
        if error.isConfiguration { return APIError(.serviceUnavailable, error.description) }
        switch error.exitStatus {
        case .noBackupFound: return APIError(.notFound, error.description)
        case .locked: return APIError(.conflict, error.description)
        case .cancelled, .keyError: return APIError(.serviceUnavailable, error.description)
        case .ok, .failed, .partial: return APIError(.internalServerError, error.description)
        }
    }
}

/// Text from a request (a path, a name) for one log line or error message: at most `limit` characters, and
/// escaped as the log handler escapes (`JobLogHandler.escapingControls`).
enum LogText {
    static func clean(_ text: some StringProtocol, limit: Int = 200) -> String {
        let kept = String(String.UnicodeScalarView(text.unicodeScalars.prefix(limit)))
        return JobLogHandler.escapingControls(kept) + (text.unicodeScalars.count > limit ? "…" : "")
    }
}

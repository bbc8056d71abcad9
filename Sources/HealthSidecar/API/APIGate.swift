import BackupCore
import BackupInterop
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// The door of every `/api` route (and of any other path under `/api`): the client is named, a client that
/// keeps sending wrong tokens is held back (429; a missing token is refused but not counted), the token is checked in constant time (401, the same answer
/// for a missing and a wrong one), and with no token configured the API answers 503: it is never open. Every
/// error under `/api`, the router's own 404 included, leaves as `{"success": false, "error": …}`.
struct APIGate: RouterMiddleware {
    typealias Context = SidecarRequestContext
    let sidecar: SidecarContext

    static let tokenHeader = HTTPField.Name("X-API-Token")!
    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let path = request.uri.path
        guard Self.isAPIPath(path) else {
            do {
                return try await next(request, context)
            } catch let error as HTTPError where error.status == .notFound {
                let allowed = Router<Context>.allowedMethods(path)
                guard !allowed.isEmpty else { throw error }
                return Self.methodNotAllowed(request, allowed: allowed)
            }
        }
        var context = context
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
                let allowed = Router<Context>.allowedMethods(path)
                if !allowed.isEmpty { return Self.methodNotAllowed(request, allowed: allowed) }
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
    /// Whether `path` reaches an `/api` route. The router skips empty segments (`//api/backups`, the absolute
    /// form `http://host//api/backups` and `/api/backups/` all reach `/api/backups`), so the door decides on the
    /// same segments: no spelling of a path gets to a route of the API around it.
    static func isAPIPath(_ path: String) -> Bool {
        path.split(separator: "/").first == "api"
    }

    static func methodNotAllowed(_ request: Request, allowed: [HTTPRequest.Method]) -> Response {
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

/// Text from a request (a path, a name) made safe for one log line: control characters escaped, length bounded.
enum LogText {
    static func clean(_ text: some StringProtocol, limit: Int = 200) -> String {
        var out = ""
        for scalar in text.unicodeScalars.prefix(limit) {
            if scalar.value < 0x20 || scalar.value == 0x7f || (0x80..<0xa0).contains(scalar.value) {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return text.unicodeScalars.count > limit ? out + "…" : out
    }
}

import HTTPTypes
import Hummingbird

/// Counts every request to `/api…` in `contingency_api_requests_total{route,status}`, refused ones included:
/// added before `APIGate`, it sees the gate's 401, 429 and 503 too.
///
/// `route` is the pattern of the route the router matched (`/api/backups/:filename`), read from Hummingbird's
/// `endpointPath`, and "unmatched" when none did: the label's values are the routes the sidecar has, whatever
/// paths clients send. Hummingbird's own `MetricsMiddleware` is not used: it records into the process-wide
/// `MetricsSystem`, not this sidecar's registry, under names of its own.
struct APIMetricsMiddleware: RouterMiddleware {
    typealias Context = SidecarRequestContext
    let metrics: SidecarMetrics

    /// Whether `path` is the API's, spelled as the router reads it (empty segments skipped).
    static func isAPI(_ path: String) -> Bool {
        path.split(separator: "/", omittingEmptySubsequences: true).first == "api"
    }

    /// The label of a matched route: Hummingbird writes captures as `{name}`, the API's documentation and its
    /// clients as `:name`.
    static func route(_ endpointPath: String?) -> String {
        // The router's own marker for a request no route took.
        guard let endpointPath, endpointPath != "NotFound" else { return "unmatched" }
        return endpointPath.split(separator: "/", omittingEmptySubsequences: false).map { segment -> String in
            segment.hasPrefix("{") && segment.hasSuffix("}") ? ":\(segment.dropFirst().dropLast())" : String(segment)
        }.joined(separator: "/")
    }

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard Self.isAPI(request.uri.path) else { return try await next(request, context) }
        do {
            let response = try await next(request, context)
            metrics.countRequest(route: Self.route(context.endpointPath), status: Int(response.status.code))
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status ?? .internalServerError
            metrics.countRequest(route: Self.route(context.endpointPath), status: Int(status.code))
            throw error
        }
    }
}

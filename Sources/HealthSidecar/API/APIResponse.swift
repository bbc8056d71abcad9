import Foundation
import HTTPTypes
import Hummingbird

/// The API's JSON answers: `{"success": true, …}` on success, `{"success": false, "error": "…"}` otherwise
/// (DESIGN.md §6), keys sorted so that the same state always reads the same.
enum APIResponse {
    /// The most a request body may hold (`{"retentionDays": 30}`, `{"label": "…"}`): larger is 413.
    static let bodyLimit = 64 * 1024

    static func json<Body: Encodable>(_ body: Body, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:])
        -> Response
    {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(timestamp(date))
        }
        let data =
            (try? encoder.encode(body))
            ?? Data(#"{"success":false,"error":"the answer could not be encoded"}"#.utf8)
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        fields[.cacheControl] = "no-store"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// `2025-01-15T14:30:00.000Z`, as the runbook's answers write times.
    static func timestamp(_ date: Date) -> String {
        date.formatted(
            Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: TimeZone(identifier: "UTC")!))
    }
}

/// An API failure: its status and a message that says what to do, sent as `{"success": false, "error": …}`
/// with any details (`request`, `holder`) beside it. Never an internal error's text or a stack.
struct APIError: Error, HTTPResponseError, Sendable {
    struct Body: Encodable, Sendable {
        let success = false
        let error: String
        var request: String?
    }

    let status: HTTPResponse.Status
    let message: String
    var request: String?
    var headers: HTTPFields = [:]

    init(_ status: HTTPResponse.Status, _ message: String, request: String? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.request = request
        self.headers = headers
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        response
    }

    var response: Response {
        APIResponse.json(Body(error: message, request: request), status: status, headers: headers)
    }

    /// The disabled API's one answer.
    static let disabled = APIError(
        .serviceUnavailable, "API disabled: set API_ADMIN_TOKEN (openssl rand -hex 32 makes one) and restart the sidecar")
    /// The same answer for a missing and a wrong token: which of the two it was is not told.
    static let unauthorized = APIError(.unauthorized, "missing or wrong X-API-Token")
}

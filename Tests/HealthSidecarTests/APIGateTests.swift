import BackupCore
import BackupStorage
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import TestSupport
import Testing

@testable import HealthSidecar

/// The admin API's door, in process (`app.test(.router)`): the token, the brake on wrong tokens, the JSON errors
/// and the limits, over a real volume store. The routes behind it, with a real database and real backups, are in
/// the integration tests (AdminAPITests).
@Suite("Admin API gate")
struct APIGateTests {
    static let token = "0123456789abcdef0123456789abcdef"
    static let tokenHeader = HTTPField.Name("X-API-Token")!

    static func context(store: TemporaryDirectory, token: String?) throws -> SidecarContext {
        var configuration = SidecarConfiguration(
            health: HealthConfiguration(url: "http://127.0.0.1:9/healthz", timeoutSeconds: 5),
            // One probe an hour: the probe loop runs with the router, and three failed probes of this unreachable
            // app would put a rollback request in the store before a test on a slow machine ends.
            store: StoreConfiguration(backupDirectory: store.path, prefix: "visual_backup"), intervalSeconds: 3600,
            failureThreshold: 3, sidecarID: "gate-test", bind: "127.0.0.1", port: 0, livenessFile: "")
        configuration.api = APIConfiguration(token: token)
        var logger = Logger(label: "gate-test")
        logger.logLevel = .critical
        return try SidecarContext(configuration: configuration, storage: try VolumeStorage(root: store.path), logger: logger)
    }

    static func json(_ buffer: ByteBuffer) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(buffer: buffer)) as? [String: Any])
    }

    /// Runs `body` against the router of a sidecar over an empty store; `brake` replaces its brake on wrong tokens.
    static func withRouter(
        token: String? = APIGateTests.token, brake: TokenBrake? = nil,
        _ body: @escaping @Sendable (any TestClientProtocol, SidecarContext, TemporaryDirectory) async throws -> Void
    ) async throws {
        let store = try TemporaryDirectory()
        defer { store.remove() }
        var built = try Self.context(store: store, token: token)
        if let brake { built.brake = brake }
        let context = built
        try await buildApplication(context).test(.router) { client in try await body(client, context, store) }
    }

    @Test("with no token configured, every /api route answers 503 'API disabled', whatever the token sent; /healthz is not behind it")
    func disabled() async throws {
        try await Self.withRouter(token: nil) { client, _, _ in
            for (uri, method, headers) in [
                ("/api/backups", HTTPRequest.Method.get, HTTPFields()),
                ("/api/backups", .post, [Self.tokenHeader: ""]),
                ("/api/backups/visual_backup_2025-01-15_14-30-00.tar.gz", .delete, [Self.tokenHeader: Self.token]),
                ("/api/nothing-here", .get, HTTPFields()),
            ] {
                try await client.execute(uri: uri, method: method, headers: headers) { response in
                    #expect(response.status == .serviceUnavailable, "\(method) \(uri)")
                    let body = try Self.json(response.body)
                    #expect(body["success"] as? Bool == false)
                    #expect((body["error"] as? String)?.hasPrefix("API disabled: set API_ADMIN_TOKEN") == true, "\(body)")
                }
            }
            try await client.execute(uri: "/healthz", method: .get) { response in
                // The sidecar's own health, never the API's answer.
                let body = try Self.json(response.body)
                #expect(body["sidecar"] as? String == "gate-test" && body["success"] == nil, "\(body)")
            }
        }
    }

    /// The router skips empty path segments: `//api/backups` reaches the route of `/api/backups`. The door must
    /// stand in front of every spelling that does, or anyone lists, deletes and restores backups without a token.
    static let apiSpellings: [(String, HTTPRequest.Method)] = [
        ("//api/backups", .get), ("///api/backups/", .get), ("//api//backups", .get), ("/api//backups", .get),
        ("//api/backups", .post), ("//api/backups/cleanup", .post), ("//api/backups/rollback/auto", .post),
        ("//api/backups/visual_backup_2025-01-15_14-30-00.tar.gz", .delete),
        ("//api/backups/visual_backup_2025-01-15_14-30-00.tar.gz/restore", .post),
        ("//api/backups/visual_backup_2025-01-15_14-30-00.tar.gz/pin", .post),
        ("//api/backups/requests/restore-1", .get), ("//api/nothing-here", .get),
    ]

    @Test("doubled and trailing slashes never reach an /api route around the token (401), nor a disabled API (503)")
    func pathSpellings() async throws {
        for token in [Self.token, nil] {
            let expected: HTTPResponse.Status = token == nil ? .serviceUnavailable : .unauthorized
            try await Self.withRouter(token: token) { client, context, store in
                for (uri, method) in Self.apiSpellings {
                    try await client.execute(uri: uri, method: method) { response in
                        let text = String(buffer: response.body)
                        #expect(response.status == expected, "\(method) \(uri): \(text)")
                        let body = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
                        #expect(body?["success"] as? Bool == false, "\(method) \(uri): \(text)")
                        #expect(body?["backups"] == nil, "\(method) \(uri): \(text)")
                    }
                }
                // Nothing was asked of the store: no request, no pin.
                #expect(try RequestBoard(storage: context.storage).list().isEmpty)
                #expect(!FileManager.default.fileExists(atPath: store.path + "/.contingency/pins"))
            }
        }
    }

    @Test("a missing and a wrong token get the same 401 body; the right one lists the (empty) store in the runbook's shape")
    func tokens() async throws {
        try await Self.withRouter { client, _, _ in
            var bodies: [ByteBuffer] = []
            for headers: HTTPFields in [
                [:], [Self.tokenHeader: ""], [Self.tokenHeader: "wrong"], [Self.tokenHeader: Self.token + "0"],
                [Self.tokenHeader: String(Self.token.dropLast())], [Self.tokenHeader: Self.token.uppercased()],
            ] {
                try await client.execute(uri: "/api/backups", method: .get, headers: headers) { response in
                    #expect(response.status == .unauthorized, "\(headers)")
                    bodies.append(response.body)
                }
            }
            #expect(Set(bodies).count == 1)
            #expect(try Self.json(bodies[0])["error"] as? String == "missing or wrong X-API-Token")
            try await client.execute(uri: "/api/backups", method: .get, headers: [Self.tokenHeader: Self.token]) {
                response in
                #expect(response.status == .ok)
                let body = try Self.json(response.body)
                #expect(body["success"] as? Bool == true && body["count"] as? Int == 0)
                #expect((body["backups"] as? [Any])?.isEmpty == true)
            }
        }
    }

    @Test("after 10 wrong tokens the client is held back with 429 and Retry-After, even with the right token; missing ones do not count")
    func brake() async throws {
        // The product's brake (10 wrong tokens) with an hour's window, so a slow machine cannot let the first guesses
        // leave it before the 11th; the 60 s window itself is checked with a given clock (brakeCapacity).
        try await Self.withRouter(brake: TokenBrake(allowed: 10, window: 3600)) { client, _, _ in
            for _ in 0..<20 {
                try await client.execute(uri: "/api/backups", method: .get) { #expect($0.status == .unauthorized) }
            }
            for _ in 0..<10 {
                try await client.execute(uri: "/api/backups", method: .get, headers: [Self.tokenHeader: "guess"]) {
                    #expect($0.status == .unauthorized)
                }
            }
            for headers: HTTPFields in [[Self.tokenHeader: "guess"], [Self.tokenHeader: Self.token]] {
                try await client.execute(uri: "/api/backups", method: .get, headers: headers) { response in
                    #expect(response.status == .tooManyRequests)
                    let wait = Int(response.headers[.retryAfter] ?? "") ?? 0
                    #expect((3500...3600).contains(wait))
                    let body = try Self.json(response.body)
                    #expect(body["error"] as? String == "too many wrong tokens from unknown: try again in \(wait) s")
                }
            }
        }
    }

    @Test("errors under /api are JSON: unknown route 404 (401 first without a token), body over 64 KiB 413, malformed JSON and bad values 400")
    func errors() async throws {
        try await Self.withRouter { client, _, _ in
            let good: HTTPFields = [Self.tokenHeader: Self.token, .contentType: "application/json"]
            try await client.execute(uri: "/api/nothing-here", method: .get) { #expect($0.status == .unauthorized) }
            let cases: [(String, HTTPRequest.Method, String?, HTTPResponse.Status, String)] = [
                ("/api/nothing-here", .get, nil, .notFound, "no route GET /api/nothing-here"),
                ("/api/backups", .post, String(repeating: " ", count: 70_000) + "{}", .contentTooLarge, "larger than 64 KiB"),
                ("/api/backups", .post, "{\"label\": ", .badRequest, "not a JSON object"),
                ("/api/backups", .post, "[1, 2]", .badRequest, "not a JSON object"),
                ("/api/backups", .post, "{\"label\": 5}", .badRequest, "label has the wrong type"),
                ("/api/backups", .post, "{\"label\": \"a\\nb\"}", .badRequest, "label holds control characters"),
                ("/api/backups", .post, "{\"label\": \"   \"}", .badRequest, "label is empty"),
                ("/api/backups?wait=maybe", .post, nil, .badRequest, "wait=maybe is not true or false"),
                ("/api/backups/requests/..%2Fetc", .get, nil, .badRequest, "is not a request id"),
                ("/api/backups/requests/no-such-request", .get, nil, .notFound, "no request no-such-request"),
            ]
            for (uri, method, body, status, message) in cases {
                try await client.execute(
                    uri: uri, method: method, headers: good, body: body.map { ByteBuffer(string: $0) }
                ) { response in
                    #expect(response.status == status, "\(method) \(uri)")
                    let json = try Self.json(response.body)
                    #expect(json["success"] as? Bool == false, "\(uri)")
                    #expect((json["error"] as? String)?.contains(message) == true, "\(uri): \(json)")
                    #expect(response.headers[.contentType] == "application/json; charset=utf-8")
                }
            }
        }
    }

    @Test("a field named twice is refused (400), however its name is spelt: parsers disagree on which value wins")
    func duplicateFields() async throws {
        try await Self.withRouter { client, _, _ in
            let headers: HTTPFields = [Self.tokenHeader: Self.token, .contentType: "application/json"]
            for (uri, body) in [
                // A proxy or an audit log reading the last value sees 30 days; the first one would be applied.
                ("/api/backups/cleanup", #"{"retentionDays": 1, "retentionDays": 30}"#),
                ("/api/backups/cleanup", #"{"retentionDays": 1, "dryRun": true, "retention\u0044ays": 30}"#),
                ("/api/backups", #"{"label": "a", "label": "b"}"#),
            ] {
                try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: body)) {
                    response in
                    #expect(response.status == .badRequest, "\(uri) \(body): \(String(buffer: response.body))")
                    let json = try Self.json(response.body)
                    #expect((json["error"] as? String)?.contains("more than once") == true, "\(json)")
                }
            }
            // The same field in nested values is no duplicate of the body's own.
            try await client.execute(
                uri: "/api/backups/cleanup", method: .post, headers: headers,
                body: ByteBuffer(string: #"{"retentionDays": 7, "dryRun": {"retentionDays": 1}}"#)
            ) { response in
                #expect(response.status == .badRequest)
                let json = try Self.json(response.body)
                #expect(json["error"] as? String == "dryRun has the wrong type", "\(json)")
            }
        }
    }

    @Test("a request of the store is read back by id with its status and steps")
    func requestStatus() async throws {
        try await Self.withRouter { client, context, _ in
            let (request, _) = try RequestBoard(storage: context.storage).submit(
                id: "restore-1", intent: .restore, backup: "visual_backup_2025-01-15_14-30-00.tar.gz",
                requestedBy: "api 10.0.0.5")
            try await client.execute(
                uri: "/api/backups/requests/\(request.id)", method: .get, headers: [Self.tokenHeader: Self.token]
            ) { response in
                #expect(response.status == .ok)
                let body = try Self.json(response.body)
                let stored = try #require(body["request"] as? [String: Any])
                #expect(stored["id"] as? String == "restore-1" && stored["status"] as? String == "pending")
                #expect(stored["backup"] as? String == "visual_backup_2025-01-15_14-30-00.tar.gz")
                #expect((stored["created"] as? String)?.hasSuffix("Z") == true)
            }
        }
    }
}

@Suite("Admin API: who the client is")
struct ClientAddressTests {
    static let proxies = [IPAddressRange("10.0.0.0/8")!, IPAddressRange("127.0.0.1")!]

    @Test(
        "X-Forwarded-For counts only from a trusted peer, read from the right, garbage stopping it",
        arguments: [
            // peer, X-Forwarded-For, trusted?, expected
            ("203.0.113.9", ["198.51.100.1"], true, "203.0.113.9"),  // untrusted peer: its header is ignored
            ("127.0.0.1", [], true, "127.0.0.1"),
            ("127.0.0.1", ["198.51.100.1"], true, "198.51.100.1"),
            ("127.0.0.1", ["6.6.6.6, 198.51.100.1"], true, "198.51.100.1"),  // the client's own claim is left of it
            ("127.0.0.1", ["198.51.100.1, 10.1.2.3"], true, "198.51.100.1"),  // a second trusted hop is skipped
            ("127.0.0.1", ["198.51.100.1", "10.1.2.3"], true, "198.51.100.1"),  // two header lines
            ("127.0.0.1", ["not-an-address"], true, "127.0.0.1"),
            ("127.0.0.1", ["6.6.6.6, 10.0.0.0/8"], true, "127.0.0.1"),  // a range is not an address
            ("127.0.0.1", ["198.51.100.1"], false, "127.0.0.1"),  // no TRUSTED_PROXIES: never believed
            ("::ffff:10.0.0.7", ["2001:db8::1"], true, "2001:db8::1"),
        ])
    func resolve(peer: String, forwarded: [String], trusted: Bool, expected: String) {
        #expect(
            ClientAddress.resolve(peer: peer, forwardedFor: forwarded, trusted: trusted ? Self.proxies : []) == expected)
    }

    @Test("the brake forgets clients whose failures left the window, and holds at most its capacity")
    func brakeCapacity() throws {
        let store = try TemporaryDirectory()
        defer { store.remove() }
        let sidecar = try APIGateTests.context(store: store, token: APIGateTests.token).brake
        #expect(sidecar.allowed == 10 && sidecar.window == 60, "a sidecar's brake: 10 wrong tokens in 60 s")
        let brake = TokenBrake(allowed: 2, window: 60, capacity: 3)
        let start = Date(timeIntervalSince1970: 1_000_000)
        brake.recordFailure("a", now: start)
        brake.recordFailure("a", now: start)
        #expect(brake.retryAfter("a", now: start.addingTimeInterval(10)) == 50)
        #expect(brake.retryAfter("a", now: start.addingTimeInterval(61)) == nil)
        for (offset, client) in ["b", "c", "d", "e"].enumerated() {
            brake.recordFailure(client, now: start.addingTimeInterval(30 + Double(offset)))
        }
        brake.recordFailure("e", now: start.addingTimeInterval(33))
        // Over capacity, the stalest went: "a" (still within the window, it would be held back for 25 s more), then
        // "b"; "e" is held back.
        #expect(brake.retryAfter("a", now: start.addingTimeInterval(35)) == nil)
        #expect(brake.retryAfter("e", now: start.addingTimeInterval(34)) == 59)
    }

    @Test(
        "no spelling of a path reaches a route around the token: only /healthz, /metrics, / and the page's assets are public",
        arguments: [
            "//api/backups", "///api/backups", "/api//backups", "/api/backups/", "//api//backups//", "/API/backups",
            "/api/backups?wait=true", "/./api/backups", "/healthz/../api/backups", "/favicon.ico", "//",
            "/api/status", "//api/status", "/api/status/", "/api//status", "/status.js/", "//status.js", "/STATUS.JS",
            "/status.css/..", "/index.html", "/status.js/../api/backups", "/favicon.svg/",
        ])
    func noBypass(path: String) async throws {
        try await APIGateTests.withRouter { client, _, _ in
            try await client.execute(uri: path, method: .get) { response in
                #expect(response.status == .unauthorized, "\(path)")
            }
        }
    }

    @Test(
        "exactly these are public, without a token: /healthz, /metrics, the status page and its assets",
        arguments: ["/healthz", "/metrics", "/", "/status.css", "/status.js", "/favicon.svg", "/?token=x"])
    func publicPaths(path: String) async throws {
        try await APIGateTests.withRouter { client, _, _ in
            try await client.execute(uri: path, method: .get) { response in
                // /healthz answers 503 until the probe loop's first round: public all the same, never 401.
                #expect([.ok, .serviceUnavailable].contains(response.status), "\(path): \(response.status)")
                #expect(response.status != .unauthorized)
            }
        }
        #expect(APIGate.isPublic(String(path.prefix { $0 != "?" })))
    }
}

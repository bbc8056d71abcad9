import BackupCore
import BackupInterop
import Foundation

/// A small client of the Docker Engine API on its unix socket, for `DockerAppControl`: the handful of calls it
/// needs (list by label, inspect, stop, start, rename, create, connect, remove), JSON in and out.
///
/// Paths are pinned to API version 1.41 (Docker 20.10, and what podman 4.3's Docker-compatible service
/// serves): a newer engine answers an older version as that version did, so the bodies read and sent here
/// keep their shape whatever the engine. Every call is a blocking libcurl transfer run through `Blocking`.
/// Errors name the socket and carry Docker's own `message`, never the request (a container's environment,
/// which may hold secrets, travels in create bodies).
struct DockerEngine: Sendable {
    /// The socket's path (DOCKER_HOST without `unix://`).
    let socket: String

    static let apiVersion = "v1.41"

    /// What the engine answered: its status and body.
    struct Answer: Sendable {
        let status: Int
        let body: [UInt8]

        /// The body as JSON (null when empty or not JSON).
        var json: JSONValue { (try? JSONDecoder().decode(JSONValue.self, from: Data(body))) ?? .null }

        /// Docker's error `message`, or the start of the body.
        var message: String {
            if let message = json["message"]?.stringValue { return message }
            let text = String(decoding: body.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return text.isEmpty ? "HTTP \(status)" : text
        }
    }

    /// Sends one request and returns the answer whatever its status; throws when the engine could not be
    /// reached or did not answer in `timeout` seconds. `what` names the call in errors ("stop container web").
    func send(
        _ method: String, _ path: String, query: [String: String] = [:], body: JSONValue? = nil, timeout: Double = 60,
        what: String
    ) async throws -> Answer {
        // The host is only the Host header's value on a unix socket. Query values are JSON (filters): every
        // character but the unreserved ones is escaped, "+" and "&" included, as Go's query parser expects.
        let unreserved = CharacterSet(
            charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
        let encodedQuery = query.sorted { $0.key < $1.key }.map { name, value in
            "\(name)=\(value.addingPercentEncoding(withAllowedCharacters: unreserved) ?? "")"
        }.joined(separator: "&")
        let url = "http://docker/\(Self.apiVersion)\(path)" + (encodedQuery.isEmpty ? "" : "?\(encodedQuery)")
        var request = HTTPRequest(method: method, url: url)
        request.unixSocketPath = socket
        request.timeout = timeout
        request.connectTimeout = 10
        request.bodyLimit = 8 * 1024 * 1024
        request.userAgent = "contingency-app-control"
        if let body {
            request.body = Array(try JSONEncoder().encode(body))
            request.headers = [("Content-Type", "application/json")]
        } else if method == "POST" {
            request.body = []
        }
        let socket = self.socket
        let sent = request
        do {
            return try await Blocking.run {
                let answer = try CurlEasy().perform(sent)
                return Answer(status: answer.status, body: answer.body)
            }
        } catch let error as CurlTransportError {
            var info = stat()
            if stat(socket, &info) != 0 {
                throw ContingencyError.failed(
                    "\(what): the Docker engine at \(socket) (DOCKER_HOST) is not there: no such socket",
                    hint: "mount the engine's socket into this container "
                        + "(-v /var/run/docker.sock:/var/run/docker.sock) or set DOCKER_HOST=unix:///path/to/docker.sock")
            }
            if access(socket, R_OK | W_OK) != 0 {
                throw ContingencyError.failed(
                    "\(what): the Docker engine's socket \(socket) (DOCKER_HOST) is not open to this process "
                        + "(uid \(getuid()); the socket belongs to uid \(info.st_uid), gid \(info.st_gid))",
                    hint: "run the job as root or with the socket's group (compose: group_add: [\"\(info.st_gid)\"])")
            }
            throw ContingencyError.failed(
                "\(what): the Docker engine at \(socket) (DOCKER_HOST) did not answer: \(error.message)")
        }
    }

    /// Sends one request that must answer one of `accepted` statuses; returns its body as JSON.
    @discardableResult
    func call(
        _ method: String, _ path: String, query: [String: String] = [:], body: JSONValue? = nil, timeout: Double = 60,
        accepted: Set<Int> = [200, 201, 204, 304], what: String
    ) async throws -> JSONValue {
        let answer = try await send(method, path, query: query, body: body, timeout: timeout, what: what)
        guard accepted.contains(answer.status) else { throw failure(answer, what) }
        return answer.json
    }

    /// The error for an answer that is not what `what` needed: Docker's message and the socket.
    func failure(_ answer: Answer, _ what: String) -> ContingencyError {
        .failed("\(what): the Docker engine at \(socket) answered \(answer.status): \(answer.message)")
    }

    /// The containers (running or not) that carry `label` (`key=value` or `key`), as the list shows them.
    func containers(labelled label: String) async throws -> [JSONValue] {
        let filters = JSONValue.object(["label": .array([.string(label)])])
        let encoded = String(decoding: try JSONEncoder().encode(filters), as: UTF8.self)
        let list = try await call(
            "GET", "/containers/json", query: ["all": "1", "filters": encoded], accepted: [200],
            what: "list the containers labelled \(label)")
        guard case .array(let containers) = list else {
            throw ContingencyError.failed(
                "list the containers labelled \(label): the Docker engine at \(socket) did not answer a list")
        }
        return containers
    }

    /// A container's inspect document, or nil when there is no such container.
    func inspectContainer(_ idOrName: String) async throws -> JSONValue? {
        let answer = try await send(
            "GET", "/containers/\(Self.escaped(idOrName))/json", what: "inspect container \(idOrName)")
        if answer.status == 404 { return nil }
        guard answer.status == 200 else { throw failure(answer, "inspect container \(idOrName)") }
        return answer.json
    }

    /// An image's inspect document, or nil when the engine no longer has it.
    func inspectImage(_ id: String) async throws -> JSONValue? {
        let answer = try await send("GET", "/images/\(Self.escaped(id))/json", what: "inspect image \(id)")
        if answer.status == 404 { return nil }
        guard answer.status == 200 else { throw failure(answer, "inspect image \(id)") }
        return answer.json
    }

    /// A path segment: names and ids are `[a-zA-Z0-9_.-]`, image references add `:` and `/`.
    static func escaped(_ segment: String) -> String {
        let allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~:")
        return segment.addingPercentEncoding(withAllowedCharacters: allowed) ?? segment
    }
}

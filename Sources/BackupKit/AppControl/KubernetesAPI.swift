import BackupCore
import BackupInterop
import Foundation

/// Where the Kubernetes API server is and how this pod proves who it is: the in-cluster configuration every
/// client library reads (`KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT` and the service account Kubernetes
/// mounts at /var/run/secrets/kubernetes.io/serviceaccount: `token`, `ca.crt`, `namespace`).
public struct InClusterConfig: Sendable, Equatable {
    /// `https://HOST:PORT`, without a trailing slash.
    public var apiServer: String
    /// The service account token's file. Read at each request: the kubelet rotates projected tokens (about every
    /// hour), so a token read once would expire under a long-running runner.
    public var tokenFile: String
    /// The CA bundle that signed the API server's certificate.
    public var caFile: String
    /// The namespace of the Deployment.
    public var namespace: String

    public static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    public init(apiServer: String, tokenFile: String, caFile: String, namespace: String) {
        self.apiServer = apiServer
        self.tokenFile = tokenFile
        self.caFile = caFile
        self.namespace = namespace
    }

    /// The configuration of a process running in a pod. `namespace` (APP_NAMESPACE) overrides the service
    /// account's own namespace. Reads the namespace file when needed (a small blocking read).
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment, namespace: String?,
        directory: String = serviceAccountDirectory
    ) throws(ContingencyError) -> InClusterConfig {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty,
            let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty
        else {
            throw .configuration(
                "APP_CONTROL=kubernetes: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set, so this "
                    + "process does not run in a Kubernetes pod",
                hint: "run restore-job as a pod of the cluster, with a service account allowed to scale the Deployment")
        }
        // An IPv6 service address goes in brackets in a URL.
        let shownHost = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        let tokenFile = directory + "/token"
        guard FileManager.default.isReadableFile(atPath: tokenFile) else {
            throw .configuration(
                "APP_CONTROL=kubernetes: no service account token at \(tokenFile)",
                hint: "mount the pod's service account token (automountServiceAccountToken: true)")
        }
        var resolved = namespace
        if resolved == nil {
            let file = directory + "/namespace"
            let text = (try? String(contentsOfFile: file, encoding: .utf8))?.trimmingCharacters(
                in: .whitespacesAndNewlines)
            guard let text, !text.isEmpty else {
                throw .configuration(
                    "APP_CONTROL=kubernetes: APP_NAMESPACE is not set and \(file) cannot be read",
                    hint: "set APP_NAMESPACE to the Deployment's namespace")
            }
            resolved = text
        }
        return InClusterConfig(
            apiServer: "https://\(shownHost):\(port)", tokenFile: tokenFile, caFile: directory + "/ca.crt",
            namespace: resolved!)
    }
}

/// A small client of the Kubernetes API server, for the few calls `KubernetesAppControl` makes: JSON in and out,
/// the service account's bearer token, the cluster's CA. Every call runs on `Blocking`'s threads (libcurl).
///
/// Errors are `ContingencyError`s naming the request, with the API's own `Status` message (a 403 also names the
/// RBAC verb and resource the service account lacks), except a 409 Conflict, thrown as `KubernetesConflict` so
/// the caller can read again and retry. No error or log line carries the token.
struct KubernetesAPI: Sendable {
    let config: InClusterConfig
    /// Limit of each request in seconds.
    var requestTimeout: Double = 30
    /// A request that met a fault of the network or an overloaded API server (a transport error, 429, 502, 503,
    /// 504) is sent again this many times, after `retryDelay`, then twice that. Safe for every request made here:
    /// reads change nothing, and a patch that was applied although its answer was lost carries a
    /// `resourceVersion` that is now stale, so its second sending gets 409 and the caller reads the result.
    var retries = 2
    var retryDelay: Duration = .seconds(1)

    /// What a request needs the service account to be allowed, for the error of a 403.
    struct Access: Sendable {
        let verb: String
        let resource: String
        let group: String
    }

    /// `GET path?query`, answering the JSON body.
    func get(_ path: String, query: [(String, String)] = [], access: Access, what: String) async throws -> JSONValue {
        try await send(method: "GET", path: path, query: query, body: nil, contentType: nil, access: access, what: what)
    }

    /// `PATCH path` with a JSON merge patch (RFC 7386, `application/merge-patch+json`), answering the patched
    /// object.
    ///
    /// A merge patch rather than a strategic merge patch: a strategic merge patch merges lists such as
    /// `containers` and `env` by their keys (name), so an env var added by a broken deploy would survive a patch
    /// that omits it; a merge patch replaces every array whole and removes an object's member set to null, so the
    /// result is exactly what the patch describes. `metadata.resourceVersion` in a patch is a precondition: the
    /// API server refuses it with 409 Conflict if the object changed since it was read.
    func mergePatch(_ path: String, _ patch: JSONValue, access: Access, what: String) async throws -> JSONValue {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = try [UInt8](encoder.encode(patch))
        return try await send(
            method: "PATCH", path: path, query: [], body: body, contentType: "application/merge-patch+json",
            access: access, what: what)
    }

    private func send(
        method: String, path: String, query: [(String, String)], body: [UInt8]?, contentType: String?,
        access: Access, what: String
    ) async throws -> JSONValue {
        var attempt = 0
        while true {
            do {
                return try await sendOnce(
                    method: method, path: path, query: query, body: body, contentType: contentType, access: access,
                    what: what)
            } catch is TransientFault where attempt < retries {
                attempt += 1
                try await Task.sleep(for: retryDelay * attempt)
            } catch let fault as TransientFault {
                throw fault.error
            }
        }
    }

    /// A failure worth one more try; `error` is what the caller sees when no try is left.
    private struct TransientFault: Error {
        let error: ContingencyError
    }

    private func sendOnce(
        method: String, path: String, query: [(String, String)], body: [UInt8]?, contentType: String?,
        access: Access, what: String
    ) async throws -> JSONValue {
        let config = self.config
        let timeout = requestTimeout
        let (response, token): (HTTPResponse, String) = try await Blocking.run {
            let token = try Self.readToken(config.tokenFile)
            let encodedQuery =
                query.isEmpty
                ? "" : "?" + query.map { "\(Self.escape($0.0))=\(Self.escape($0.1))" }.joined(separator: "&")
            var request = HTTPRequest(method: method, url: config.apiServer + path + encodedQuery, body: body)
            request.headers = [("Authorization", "Bearer \(token)"), ("Accept", "application/json")]
            if let contentType { request.headers.append(("Content-Type", contentType)) }
            request.caBundle = config.caFile
            request.timeout = timeout
            request.bodyLimit = 16 * 1024 * 1024
            do {
                return (try CurlEasy().perform(request), token)
            } catch let error as CurlTransportError {
                let failure = ContingencyError.failed(
                    "\(what): the Kubernetes API server \(config.apiServer) did not answer: \(Self.redact(error.message, token))",
                    hint:
                        "check that the runner's pod reaches the API server and that \(config.caFile) is the cluster's CA"
                )
                throw error.isTransient ? TransientFault(error: failure) : failure
            }
        }
        guard !response.truncated else {
            throw ContingencyError.failed("\(what): the API server's answer to \(method) \(path) is larger than 16 MiB")
        }
        let json = try? JSONDecoder().decode(JSONValue.self, from: Data(response.body))
        if (200..<300).contains(response.status), let json { return json }

        // Failures come as a `Status` object (kind Status, status Failure, message, reason, code).
        let message =
            json?["message"]?.stringValue.map { Self.redact($0, token) }
            ?? "HTTP \(response.status) without a Status message"
        let reason = json?["reason"]?.stringValue.map { " \($0)" } ?? ""
        let failure = "\(what): \(method) \(path) answered \(response.status)\(reason): \(message)"
        let namespace = config.namespace
        switch response.status {
        case 409:
            throw KubernetesConflict(message: failure)
        case 401:
            throw ContingencyError.failed(
                failure,
                hint:
                    "the API server did not accept the service account token in \(config.tokenFile): is it mounted and current?"
            )
        case 403:
            let resource = access.group.isEmpty ? access.resource : "\(access.resource) (API group \(access.group))"
            throw ContingencyError.failed(
                failure,
                hint: "the runner's service account needs the RBAC verb \"\(access.verb)\" on \(resource) in namespace "
                    + "\(namespace): bind it to the Role in docs/rollback.md (Kubernetes app control)")
        case 404:
            throw ContingencyError.failed(failure, hint: "check APP_DEPLOYMENT and APP_NAMESPACE (now \(namespace))")
        case 429, 502, 503, 504:
            throw TransientFault(
                error: .failed(failure, hint: "the API server is overloaded or restarting: try again later"))
        case 200..<300:
            throw ContingencyError.failed("\(what): the API server's answer to \(method) \(path) is not JSON")
        default:
            throw ContingencyError.failed(failure)
        }
    }

    /// `text` percent-encoded for a query, all but RFC 3986's unreserved characters (a label selector holds `=`,
    /// `,`, `!` and spaces).
    private static func escape(_ text: String) -> String {
        let unreserved = CharacterSet(
            charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        return text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text
    }

    /// The token, trimmed; never logged nor put in an error.
    private static func readToken(_ file: String) throws -> String {
        let token: String
        do {
            token = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            throw ContingencyError.failed(
                "cannot read the service account token \(file): \((error as NSError).localizedDescription)",
                hint: "mount the pod's service account token (automountServiceAccountToken: true)")
        }
        guard !token.isEmpty else { throw ContingencyError.failed("the service account token \(file) is empty") }
        return token
    }

    /// `text` with any occurrence of the token replaced: the server's messages are not ours to trust.
    private static func redact(_ text: String, _ token: String) -> String {
        token.isEmpty ? text : text.replacingOccurrences(of: token, with: "<token>")
    }
}

/// The API server refused a write made against an older `resourceVersion` (409 Conflict): read again, retry.
struct KubernetesConflict: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

extension JSONValue {
    /// An integer member, as Kubernetes writes int32/int64 fields.
    var kubeInt: Int? {
        if case .number(let value) = self, value.rounded() == value, abs(value) < 1e15 { return Int(value) }
        return nil
    }

    var kubeObject: [String: JSONValue]? {
        if case .object(let members) = self { return members }
        return nil
    }

    var kubeArray: [JSONValue]? {
        if case .array(let items) = self { return items }
        return nil
    }
}

import Foundation

/// Calls the admin API as an operator does, with curl: the token from a 0600 header file (never on curl's
/// command line), a body on standard input. Every answer is read whole: status, headers, text, JSON.
public struct APIClient: Sendable {
    public let base: String
    /// A file holding `X-API-Token: …`, or nil to send none.
    public let headerFile: URL?

    /// `token` nil: no X-API-Token header at all.
    public init(port: Int, token: String?, folder: URL) throws {
        base = "http://127.0.0.1:\(port)"
        if let token {
            let file = folder.appendingPathComponent("api-token-\(UUID().uuidString).headers")
            try Data("X-API-Token: \(token)\n".utf8).write(to: file)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path)
            headerFile = file
        } else {
            headerFile = nil
        }
    }

    public struct Answer: Sendable, CustomStringConvertible {
        public let status: Int
        public let text: String
        public let headers: [String: String]
        /// The body as a JSON object, or empty when it is not one.
        public var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
        }
        public var description: String { "HTTP \(status): \(text.prefix(2000))" }
    }

    /// `method path` with `body` (sent as given; `contentType` nil sends curl's default for `-d`, a form, as the
    /// runbook's own `curl -d '{"retentionDays": 7}'` does).
    public func call(
        _ method: String, _ path: String, body: String? = nil, contentType: String? = "application/json",
        headers: [String] = [], maxTime: Int = 900
    ) async throws -> Answer {
        let folder = FileManager.default.temporaryDirectory
        let headerDump = folder.appendingPathComponent("api-answer-\(UUID().uuidString).headers")
        defer { try? FileManager.default.removeItem(at: headerDump) }
        var arguments = [
            "-q", "-sS", "--noproxy", "*", "--max-time", "\(maxTime)", "-X", method, "-D", headerDump.path, "-w",
            "\n%{http_code}",
        ]
        if let headerFile { arguments += ["-H", "@\(headerFile.path)"] }
        for header in headers { arguments += ["-H", header] }
        if body != nil {
            arguments += ["--data-binary", "@-"]
            if let contentType { arguments += ["-H", "Content-Type: \(contentType)"] }
        }
        arguments.append(base + path)
        let result = try await ProcessRunner.run(
            "curl", arguments, stdin: body.map { Data($0.utf8) }, timeout: .seconds(maxTime + 30))
        guard result.succeeded else { throw TestSupportError("curl \(method) \(path) failed: \(result)") }
        var lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let status = Int(lines.popLast() ?? "") ?? 0
        var fields: [String: String] = [:]
        for line in ((try? String(contentsOf: headerDump, encoding: .utf8)) ?? "").split(separator: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Answer(status: status, text: lines.joined(separator: "\n"), headers: fields)
    }
}

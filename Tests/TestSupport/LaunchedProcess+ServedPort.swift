import Foundation

extension LaunchedProcess {
    /// The port a server child (`health-sidecar --loop` with SIDECAR_PORT=0) listens on, read from its
    /// "Server started and listening on …:PORT" line once it prints it. Throws when the child exits first or the
    /// line does not come within `timeout`.
    public func servedPort(timeout: Duration = .seconds(120), _ what: String = "the server") async throws -> Int {
        var port: Int?
        try await eventually(timeout: timeout, "\(what) to serve HTTP") {
            guard isRunning else { throw TestSupportError("\(what) exited: \(stdoutSoFar)\(stderrSoFar)") }
            port =
                stdoutSoFar.split(separator: "\n").lazy.compactMap { line -> Int? in
                    guard line.contains("Server started and listening on") else { return nil }
                    return line.split(separator: ":").last.flatMap { Int($0) }
                }.first
            return port != nil
        }
        return port!
    }
}

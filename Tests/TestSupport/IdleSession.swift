import Foundation

/// Another client connected to a database, idle in a `pg_sleep`: what keeps a restore from renaming databases
/// (a swap) unless it ends other sessions itself.
public final class IdleSession: Sendable {
    private let session: LaunchedProcess

    /// Connects and returns once the server lists the session.
    public init(server: PostgresServer, database: String) async throws {
        let name = "contingency-test-idle-\(UUID().uuidString.prefix(8))"
        var environment = server.environment
        environment["PGAPPNAME"] = name
        session = try ProcessRunner.launch(
            server.binDir.appendingPathComponent("psql").path, ["-X", "-q", "-d", database, "-c", "SELECT pg_sleep(3600)"],
            environment: environment)
        do {
            try await eventually("the idle session to connect") {
                try await server.query(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = '\(name)' AND datname = '\(database)'"
                ).first?.first == "1"
            }
        } catch {
            session.kill()
            throw error
        }
    }

    /// Ends the client (and so its session).
    public func end() { session.kill() }
}

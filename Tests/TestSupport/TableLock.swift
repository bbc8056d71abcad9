import Foundation

/// Holds an ACCESS EXCLUSIVE lock on a table from another session, so that a `pg_dump` started meanwhile
/// blocks on it: a real, deterministic way to catch a backup in the middle of its dump.
public final class TableLock: Sendable {
    private let server: PostgresServer
    private let database: String
    private let session: LaunchedProcess
    private let name: String

    /// Takes the lock and returns once the server reports it granted.
    public init(server: PostgresServer, database: String, table: String) async throws {
        self.server = server
        self.database = database
        self.name = "contingency-test-lock-\(UUID().uuidString.prefix(8))"
        var environment = server.environment
        environment["PGAPPNAME"] = name
        session = try ProcessRunner.launch(
            server.binDir.appendingPathComponent("psql").path,
            ["-X", "-q", "-d", database, "-c", "BEGIN; LOCK TABLE \(table) IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3600);"],
            environment: environment)
        try await waitForSession(
            "the lock on \(table) to be granted",
            "pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.application_name = '\(name)' AND l.mode = 'AccessExclusiveLock' AND l.granted")
    }

    /// Waits until a `pg_dump` session is blocked behind the lock.
    public func waitForBlockedDump() async throws {
        try await waitForSession(
            "pg_dump to block on the table lock",
            "pg_stat_activity WHERE application_name = 'pg_dump' AND wait_event_type = 'Lock'")
    }

    /// Waits until `SELECT count(*) FROM <relation>` counts at least one row.
    private func waitForSession(_ what: String, _ relation: String) async throws {
        let server = self.server
        let database = self.database
        try await eventually(what) {
            let rows = try await server.query("SELECT count(*) FROM \(relation)", database: database)
            return rows.first?.first.flatMap { Int($0) } ?? 0 > 0
        }
    }

    /// Ends the sessions of every blocked pg_dump (as if the server had killed them).
    public func terminateDumps() async throws {
        _ = try await server.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pg_dump'", database: database)
    }

    /// Ends the locking session; the lock goes with it.
    public func release() async throws {
        _ = try await server.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '\(name)'", database: database)
        _ = try await session.waitForExit(timeout: .seconds(30))
    }
}

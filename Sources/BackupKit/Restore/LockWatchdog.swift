import BackupCore
import BackupInterop
import Foundation

/// Cancels a pg_restore that waits too long for a lock another session holds, so a restore fails with the
/// names of the blocking sessions instead of hanging behind an idle transaction. The dump's preamble sets
/// `lock_timeout = 0`, so PostgreSQL's own setting cannot do this.
struct LockWatchdog: Sendable {
    let connection: ConnectionParameters
    let applicationName: String
    /// Seconds of continuous waiting before cancelling; 0 never cancels.
    let timeout: Int

    /// Watches until cancelled. Returns a description of the blocking sessions if it cancelled the restore,
    /// nil if the watch ended without doing so.
    func watch() async throws -> String? {
        guard timeout > 0 else { return nil }
        let session = try PostgresConnection(connection)
        var waitingSince: Date?
        while !Task.isCancelled {
            let rows = try session.query(
                """
                SELECT w.pid, string_agg(format('pid %s (%s, %s)', b.pid, coalesce(nullif(b.application_name, ''), 'no application name'), b.state), ', ')
                FROM pg_stat_activity w
                JOIN pg_stat_activity b ON b.pid = ANY (pg_blocking_pids(w.pid))
                WHERE w.application_name = $1 AND w.wait_event_type = 'Lock'
                GROUP BY w.pid
                """, [applicationName])
            if rows.rowCount == 0 {
                waitingSince = nil
            } else if let since = waitingSince, Date().timeIntervalSince(since) >= TimeInterval(timeout) {
                _ = try session.query("SELECT pg_cancel_backend($1::int)", [rows.value(0, 0)])
                return rows.value(0, 1) ?? "another session"
            } else if waitingSince == nil {
                waitingSince = Date()
            }
            try? await Task.sleep(for: .milliseconds(250))
        }
        return nil
    }
}

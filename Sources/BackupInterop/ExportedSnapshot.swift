import BackupCore
import Foundation

/// A read-only transaction whose snapshot is exported for pg_dump (`--snapshot`), so that what is counted here
/// is exactly what the dump holds. Owns its connection; the transaction stays open until this object goes.
///
/// `@unchecked Sendable`: the connection is used by one task at a time, never concurrently: the snapshot is
/// exported in `init`, then `countRows` runs in one task while pg_dump runs in another process.
public final class ExportedSnapshot: @unchecked Sendable {
    private let connection: PostgresConnection
    /// The snapshot's identifier, for `pg_dump --snapshot`.
    public let id: String

    public init(_ parameters: ConnectionParameters) throws {
        connection = try PostgresConnection(parameters.with("application_name", "contingency-backup"))
        try connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        guard let id = try connection.query("SELECT pg_export_snapshot()").value(0, 0) else {
            throw ContingencyError.failed("pg_export_snapshot() returned nothing")
        }
        self.id = id
    }

    /// Cancels a `countRows` in progress (from another task); it then throws.
    public func cancel() { connection.cancelRunningQuery() }

    /// Exact row counts of every dumped table, in the exported snapshot (see `PostgresConnection.countRows`).
    /// Locks the tables first, as pg_dump does, so none is renamed or dropped under the count, and gives up
    /// after `lockTimeout` seconds rather than wait behind another session's DDL.
    ///
    /// Runs on a thread of its own: libpq blocks, and on Swift's shared pool (one thread per CPU) a blocked
    /// count could keep the pool from draining pg_dump's output, which the count may be waiting for.
    public func countRowsOnOwnThread(lockTimeout: Int) async throws -> [String: Int64] {
        try await withCheckedThrowingContinuation { continuation in
            NamedThread.start("row-counts") { [self] in
                continuation.resume(with: Result { try connection.countRows(lockingFirstWithTimeout: lockTimeout) })
            }
        }
    }
}

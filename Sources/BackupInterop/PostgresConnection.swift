import BackupCore
import CLibPQ
import Foundation

/// A libpq connection. Owns one `PGconn`; freed in `deinit` whatever state it reached (a failed
/// connection must be freed too, as pgBackRest does).
public final class PostgresConnection {
    let connection: OpaquePointer
    private let canceller: PostgresCanceller?

    /// Connects with resolved libpq keyword parameters (see `ConnectionParameters`). Never prompts.
    public init(_ parameters: ConnectionParameters) throws {
        let keywords = parameters.values.keys.sorted()
        let values = keywords.map { parameters.values[$0]! }
        let cKeywords = keywords.map { strdup($0) } + [nil]
        let cValues = values.map { strdup($0) } + [nil]
        defer {
            cKeywords.forEach { free($0) }
            cValues.forEach { free($0) }
        }
        func connect() throws -> OpaquePointer {
            let connection = cKeywords.map { UnsafePointer($0) }.withUnsafeBufferPointer { keywordBuffer in
                cValues.map { UnsafePointer($0) }.withUnsafeBufferPointer { valueBuffer in
                    PQconnectdbParams(keywordBuffer.baseAddress, valueBuffer.baseAddress, 0)
                }
            }
            guard let connection else { throw ContingencyError.failed("PQconnectdbParams: out of memory") }
            return connection
        }
        var connection = try connect()
        var attempt = 0
        while PQstatus(connection) != CONNECTION_OK, attempt < Self.retryDelays.count,
            Self.isTransient(String(cString: PQerrorMessage(connection)))
        {
            PQfinish(connection)
            usleep(Self.retryDelays[attempt])
            attempt += 1
            connection = try connect()
        }
        self.connection = connection
        // Server notices (DROP … IF EXISTS) are not the operator's business: libpq would print them to stderr.
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        canceller = PQstatus(connection) == CONNECTION_OK ? PQgetCancel(connection).map(PostgresCanceller.init) : nil
        guard PQstatus(connection) == CONNECTION_OK else {
            throw ContingencyError.failed(
                "cannot connect to PostgreSQL (\(parameters)): \(errorMessage)",
                hint: "check the connection settings (DATABASE_URL, DATABASE_NAME, DATABASE_USER, DRILL_DATABASE_URL for drills, PGHOST, PGPORT) and the password")
        }
    }

    deinit { PQfinish(connection) }

    /// Waits between attempts when a connection fails for a reason that passes by itself (7.5 s in all).
    static let retryDelays: [useconds_t] = [500_000, 1_000_000, 2_000_000, 4_000_000]

    /// A host name that did not resolve (a container network's DNS answers nothing for a moment while the
    /// engine reconfigures it, as podman's does when a container stops) or a server still starting: worth a few
    /// more attempts. A refused password, a missing database or a closed port is not.
    static func isTransient(_ message: String) -> Bool {
        message.contains("could not translate host name") && message.contains("Temporary failure")
            || message.contains("the database system is starting up")
    }

    /// Asks the server to cancel the query this connection is running, if any. Safe from another thread
    /// (libpq's PQcancel is made for that); the running `query` then throws.
    public func cancelRunningQuery() { canceller?.cancel() }

    /// The server's version (`PQserverVersion`).
    public var serverVersion: PostgresVersion { PostgresVersion(versionNumber: Int(PQserverVersion(connection))) }

    /// The database this connection is on.
    public var database: String { PQdb(connection).map { String(cString: $0) } ?? "" }

    public var user: String { PQuser(connection).map { String(cString: $0) } ?? "" }

    /// Runs one statement with text parameters ($1, $2 …) and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ parameters: [String?] = []) throws -> PostgresResult {
        let copies = parameters.map { $0.map { strdup($0) } ?? nil }
        defer { copies.forEach { free($0) } }
        let raw = copies.map { UnsafePointer($0) }.withUnsafeBufferPointer { buffer in
            PQexecParams(connection, sql, Int32(parameters.count), nil, buffer.baseAddress, nil, nil, 0)
        }
        guard let raw else { throw ContingencyError.failed("PQexecParams: \(errorMessage)") }
        let result = PostgresResult(raw)
        let status = PQresultStatus(raw)
        guard status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK else {
            let message = PQresultErrorMessage(raw).map { String(cString: $0) } ?? errorMessage
            throw ContingencyError.failed("query failed: \(message.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return result
    }

    var errorMessage: String {
        (PQerrorMessage(connection).map { String(cString: $0) } ?? "unknown libpq error")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// The rows of one query. Owns one `PGresult`.
public final class PostgresResult {
    private let result: OpaquePointer

    init(_ result: OpaquePointer) { self.result = result }

    deinit { PQclear(result) }

    public var rowCount: Int { Int(PQntuples(result)) }
    public var columnCount: Int { Int(PQnfields(result)) }

    /// The text value at (row, column); nil for SQL NULL.
    public func value(_ row: Int, _ column: Int) -> String? {
        guard PQgetisnull(result, Int32(row), Int32(column)) == 0 else { return nil }
        return String(cString: PQgetvalue(result, Int32(row), Int32(column)))
    }
}

/// libpq's cancel request for one connection (`PGcancel`), made when the connection opens so that another
/// thread can use it while the connection is busy.
final class PostgresCanceller {
    private let handle: OpaquePointer

    init(_ handle: OpaquePointer) { self.handle = handle }

    deinit { PQfreeCancel(handle) }

    func cancel() {
        var buffer = [CChar](repeating: 0, count: 256)
        _ = PQcancel(handle, &buffer, Int32(buffer.count))
    }
}

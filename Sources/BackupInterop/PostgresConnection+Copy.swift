import BackupCore
import CLibPQ
import Foundation

/// `COPY … FROM STDIN` through libpq's copy-in mode: start it, send data, end it. Blocking, like the rest of
/// `PostgresConnection`: a connection loading data is meant to have a thread of its own.
extension PostgresConnection {
    /// Starts a `COPY … FROM STDIN` statement; the connection is then in copy-in mode until `endCopy`.
    public func startCopy(_ sql: String) throws {
        guard let raw = PQexec(connection, sql) else { throw ContingencyError.failed("PQexec: \(errorMessage)") }
        defer { PQclear(raw) }
        guard PQresultStatus(raw) == PGRES_COPY_IN else {
            let message = PQresultErrorMessage(raw).map { String(cString: $0) } ?? errorMessage
            throw ContingencyError.failed("COPY failed: \(message.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    /// Sends rows of COPY data (whole rows or not: the server reassembles them).
    public func sendCopyData(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        // PQputCopyData takes an int length.
        while offset < bytes.count {
            let count = min(bytes.count - offset, 1 << 30)
            let sent = bytes.baseAddress!.advanced(by: offset).withMemoryRebound(to: CChar.self, capacity: count) {
                PQputCopyData(connection, $0, Int32(count))
            }
            guard sent == 1 else { throw ContingencyError.failed("sending COPY data failed: \(errorMessage)") }
            offset += count
        }
    }

    /// Ends copy-in mode: the rows sent are loaded, or, with `failure`, the COPY is abandoned with that message
    /// (nothing it sent is kept). Throws the server's error when the COPY failed.
    public func endCopy(failure: String? = nil) throws {
        guard PQputCopyEnd(connection, failure) == 1 else {
            throw ContingencyError.failed("ending COPY failed: \(errorMessage)")
        }
        var failed: String?
        while let raw = PQgetResult(connection) {
            defer { PQclear(raw) }
            if PQresultStatus(raw) != PGRES_COMMAND_OK, failed == nil {
                failed = PQresultErrorMessage(raw).map { String(cString: $0) } ?? errorMessage
            }
        }
        if let failed, failure == nil {
            throw ContingencyError.failed("COPY failed: \(failed.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }
}

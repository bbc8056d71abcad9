import BackupCore
import CLibArchive
import Foundation

/// Turns libarchive's status codes into errors naming the failing function and libarchive's own message.
enum ArchiveCall {
    /// Checks a libarchive status. OK, EOF and WARN pass; RETRY, FAILED and FATAL throw (a RETRY on a
    /// damaged header would otherwise skip entries silently).
    @discardableResult
    static func check(_ status: Int32, _ function: String, _ archive: OpaquePointer, context: String) throws -> Int32 {
        if succeeded(status) { return status }
        throw ContingencyError.failed("\(context): \(function): \(message(of: archive))")
    }

    static func succeeded(_ status: Int32) -> Bool {
        status == ARCHIVE_OK || status == ARCHIVE_EOF || status == ARCHIVE_WARN
    }

    static func message(of archive: OpaquePointer) -> String {
        if let text = archive_error_string(archive) { return String(cString: text) }
        let errno = archive_errno(archive)
        return errno != 0 ? String(cString: strerror(errno)) : "unknown libarchive error"
    }

    /// libarchive's string APIs need a UTF-8 locale to store non-ASCII paths in pax headers; the C locale
    /// a container starts in would turn them into "Can't translate pathname" warnings.
    static let utf8Locale: Void = {
        if setlocale(LC_CTYPE, "C.UTF-8") == nil { _ = setlocale(LC_CTYPE, "") }
    }()
}

/// Holds the Swift side of a libarchive callback: the stream and the first error it threw, which is
/// rethrown in place of libarchive's generic "write callback failed".
final class CallbackBox<Stream> {
    let stream: Stream
    var error: (any Error)?
    var buffer: UnsafeMutableRawBufferPointer

    init(_ stream: Stream, bufferSize: Int = 0) {
        self.stream = stream
        self.buffer = .allocate(byteCount: max(bufferSize, 1), alignment: 16)
    }

    deinit { buffer.deallocate() }
}

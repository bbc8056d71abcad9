import BackupCore
import CLibArchive
import Foundation

/// Reads a (compressed) tar stream from a `ByteSource`, entry by entry. Owns one libarchive read handle.
/// Archives this program wrote with gzip are inflated on every processor (`ParallelGunzipSource`).
///
/// It is itself a `ByteSource` of the current entry's data, so an archive nested inside another (the
/// runbook's `uploads.tar.gz`) is read by a second reader over the first, streaming, with no temporary file.
public final class ArchiveReader: ByteSource {
    private let archive: OpaquePointer
    private let box: CallbackBox<any ByteSource>
    private let name: String

    /// - Parameter name: what the stream is, for error messages ("visual_backup_….tar.gz").
    public init(source: any ByteSource, name: String, bufferSize: Int = 256 * 1024) throws {
        _ = ArchiveCall.utf8Locale
        guard let archive = archive_read_new() else { throw ContingencyError.failed("archive_read_new: out of memory") }
        self.archive = archive
        self.name = name
        self.box = CallbackBox(try Self.inflatingInParallel(source), bufferSize: bufferSize)
        try ArchiveCall.check(archive_read_support_filter_all(archive), "archive_read_support_filter_all", archive, context: name)
        try ArchiveCall.check(archive_read_support_format_tar(archive), "archive_read_support_format_tar", archive, context: name)
        try ArchiveCall.check(archive_read_support_format_gnutar(archive), "archive_read_support_format_gnutar", archive, context: name)
        let status = archive_read_open(
            archive, Unmanaged.passUnretained(box).toOpaque(), nil,
            { _, client, outBuffer in
                let box = Unmanaged<CallbackBox<any ByteSource>>.fromOpaque(client!).takeUnretainedValue()
                guard box.error == nil else { return -1 }
                do {
                    let count = try box.stream.read(into: box.buffer)
                    outBuffer?.pointee = UnsafeRawPointer(box.buffer.baseAddress)
                    return count
                } catch {
                    box.error = error
                    return -1
                }
            }, nil)
        try rethrowing(status, "archive_read_open")
    }

    deinit { archive_read_free(archive) }

    /// Our own gzip streams (members marked with their sizes) are inflated on every processor; anything else
    /// (other gzip files, zstd, plain tar) goes to libarchive's filters as it is. Peeks at the first bytes.
    private static func inflatingInParallel(_ source: any ByteSource) throws -> any ByteSource {
        var prefix = [UInt8](repeating: 0, count: GzipMember.headerSize)
        var count = 0
        try prefix.withUnsafeMutableBytes { buffer in
            while count < buffer.count {
                let got = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[count...]))
                if got == 0 { break }
                count += got
            }
        }
        prefix.removeLast(prefix.count - count)
        if ParallelGunzipSource.recognizes(prefix) { return try ParallelGunzipSource(peeked: prefix, source: source) }
        return PrefixedSource(prefix, source)
    }

    /// Loads the next entry's header into `entry`; false at the end of the archive.
    public func next(into entry: ArchiveEntry) throws -> Bool {
        let status = archive_read_next_header2(archive, entry.pointer)
        if status == ARCHIVE_EOF { return false }
        try rethrowing(status, "archive_read_next_header")
        return true
    }

    /// Reads the current entry's data; 0 at its end.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let count = archive_read_data(archive, buffer.baseAddress, buffer.count)
        if count < 0 { try rethrowing(Int32(count), "archive_read_data") }
        return count
    }

    private func rethrowing(_ status: Int32, _ function: String) throws {
        if ArchiveCall.succeeded(status) { return }
        if let error = box.error { throw error }
        let message = ArchiveCall.message(of: archive)
        throw ContingencyError.failed("\(name) is not a readable archive: \(function): \(message)")
    }
}

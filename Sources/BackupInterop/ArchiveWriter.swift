import BackupCore
import CLibArchive
import Foundation

/// Writes a compressed pax tar stream into a `ByteSink`. Owns one libarchive write handle.
///
/// The stream is produced once: entries go in, compressed bytes come out to the sink as they are ready, so
/// memory stays at a few fixed buffers whatever the size of the data. libarchive writes the plain tar;
/// compression behind it uses every processor (`threads`): gzip as independent members compressed in
/// parallel (`ParallelGzipSink`), zstd with libzstd's worker threads (`ZstdSink`).
public final class ArchiveWriter {
    private let archive: OpaquePointer
    private let box: CallbackBox<any ByteSink>
    private let finishCompression: () throws -> Void
    private var closed = false

    public init(
        compression: Compression, level: Int?, sink: any ByteSink,
        threads: Int = ProcessInfo.processInfo.activeProcessorCount
    ) throws {
        _ = ArchiveCall.utf8Locale
        let compressor: any ByteSink
        switch compression {
        case .gzip:
            let gzip = try ParallelGzipSink(level: level ?? 6, threads: threads, next: sink)
            (compressor, finishCompression) = (gzip, gzip.finish)
        case .zstd:
            let zstd = try ZstdSink(level: level ?? 3, threads: threads, next: sink)
            (compressor, finishCompression) = (zstd, zstd.finish)
        }
        guard let archive = archive_write_new() else { throw ContingencyError.failed("archive_write_new: out of memory") }
        self.archive = archive
        self.box = CallbackBox(compressor)
        let context = "creating the archive"
        try ArchiveCall.check(archive_write_set_format_pax_restricted(archive), "archive_write_set_format_pax_restricted", archive, context: context)
        // No zero padding after the tar's end: the object's size is exactly the compressor's output.
        try ArchiveCall.check(archive_write_set_bytes_in_last_block(archive, 1), "archive_write_set_bytes_in_last_block", archive, context: context)
        let status = archive_write_open(
            archive, Unmanaged.passUnretained(box).toOpaque(), nil,
            { _, client, buffer, length in
                let box = Unmanaged<CallbackBox<any ByteSink>>.fromOpaque(client!).takeUnretainedValue()
                guard box.error == nil else { return -1 }
                do {
                    try box.stream.write(UnsafeRawBufferPointer(start: buffer, count: length))
                    return length
                } catch {
                    box.error = error
                    return -1
                }
            }, nil)
        try rethrowing(status, "archive_write_open")
    }

    deinit { archive_write_free(archive) }

    /// Writes an entry's header. For a regular file, exactly `entry.size` bytes must follow through `write`.
    public func writeHeader(_ entry: ArchiveEntry) throws {
        try rethrowing(archive_write_header(archive, entry.pointer), "archive_write_header(\(entry.pathname))")
    }

    /// Writes entry data; every byte is taken or the call throws.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let written = archive_write_data(archive, bytes.baseAddress! + offset, bytes.count - offset)
            if written <= 0 {
                try rethrowing(Int32(written < 0 ? Int(written) : Int(ARCHIVE_FATAL)), "archive_write_data")
            }
            offset += written
        }
    }

    public func finishEntry() throws {
        try rethrowing(archive_write_finish_entry(archive), "archive_write_finish_entry")
    }

    /// A whole small file from memory: header, data, end.
    public func writeFile(_ path: String, contents: [UInt8], permissions: mode_t = 0o644, modified: Date = Date()) throws {
        let entry = ArchiveEntry(file: path, size: Int64(contents.count), permissions: permissions, modified: modified)
        try writeHeader(entry)
        try contents.withUnsafeBytes { try write($0) }
        try finishEntry()
    }

    /// Flushes the compressor and the tar trailer into the sink. The sink has every byte once this returns.
    public func finish() throws {
        guard !closed else { return }
        closed = true
        try rethrowing(archive_write_close(archive), "archive_write_close")
        try finishCompression()
    }

    private func rethrowing(_ status: Int32, _ function: String) throws {
        if ArchiveCall.succeeded(status) { return }
        if let error = box.error { throw error }
        try ArchiveCall.check(status, function, archive, context: "writing the archive")
    }
}

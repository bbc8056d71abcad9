import BackupCore
import CLibDeflate

/// Compresses whole buffers into complete gzip members (RFC 1952) with libdeflate. Owns one
/// `libdeflate_compressor`; not thread-safe, so each thread that compresses has its own.
///
/// libdeflate rather than zlib: at the same level it compresses as well or better at about 2.5 times zlib's
/// speed (measured here: 97 MB/s against 36–51 MB/s at level 6, on text and on random bytes), and a backup's
/// time is mostly compression. It has no streaming API; `ParallelGzipSink` cuts the stream into blocks.
final class GzipCompressor {
    private let compressor: OpaquePointer

    /// - Parameter level: 1 (fastest) to 9 as gzip's levels (libdeflate goes up to 12).
    init(level: Int) throws {
        guard (0...12).contains(level), let compressor = libdeflate_alloc_compressor(Int32(level)) else {
            throw ContingencyError.failed("libdeflate_alloc_compressor(\(level)): no compressor for this level (0–12) or out of memory")
        }
        self.compressor = compressor
    }

    deinit { libdeflate_free_compressor(compressor) }

    /// The most bytes compressing `count` bytes can produce.
    func bound(_ count: Int) -> Int { libdeflate_gzip_compress_bound(compressor, count) }

    /// Compresses `input` into one gzip member in `output` and returns its size; 0 when `output` is smaller
    /// than `bound(input.count)` needs.
    func compress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Int {
        libdeflate_gzip_compress(compressor, input.baseAddress, input.count, output.baseAddress, output.count)
    }
}

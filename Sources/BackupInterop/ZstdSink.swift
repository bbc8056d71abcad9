import BackupCore
import CZstd
import Foundation

/// Compresses a byte stream into one zstd frame with libzstd's worker threads, written to `next` as it comes.
/// Owns one `ZSTD_CCtx`.
///
/// libzstd directly rather than libarchive's zstd filter: the filter cannot set the job size, and libzstd's
/// default for level 3 (8 MiB jobs, 4 times the window) holds about 70 MB with two workers; 1 MiB jobs keep
/// the whole job under 100 MB at the cost of about 1% of ratio (measured with bench/run.sh).
///
/// Its workers run at a backup's lower priority (`ThreadPriority.background`), so that a backup inside the sidecar
/// leaves the cores to its HTTP server whenever it has a request: libzstd makes them on the thread of the first
/// compression call and Linux gives them that thread's priority, so the sink makes that call itself, with no
/// input, on a short-lived thread at the lower priority.
public final class ZstdSink: ByteSink {
    private let context: OpaquePointer
    private let next: any ByteSink
    private let output: UnsafeMutableRawBufferPointer
    private var finished = false

    /// - Parameters:
    ///   - level: 1 (fastest) to 19.
    ///   - threads: worker threads; 1 compresses on the calling thread.
    public init(level: Int, threads: Int, next: any ByteSink, jobSize: Int = 1 << 20) throws {
        guard let context = ZSTD_createCCtx() else { throw ContingencyError.failed("ZSTD_createCCtx: out of memory") }
        self.context = context
        self.next = next
        self.output = .allocate(byteCount: ZSTD_CStreamOutSize(), alignment: 16)
        try Self.check(
            ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, Int32(level)),
            "ZSTD_CCtx_setParameter(level \(level))")
        try Self.check(ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1), "ZSTD_CCtx_setParameter(checksum)")
        if threads > 1 {
            try Self.check(
                ZSTD_CCtx_setParameter(context, ZSTD_c_nbWorkers, Int32(threads)),
                "ZSTD_CCtx_setParameter(nbWorkers \(threads))")
            try Self.check(
                ZSTD_CCtx_setParameter(context, ZSTD_c_jobSize, Int32(jobSize)), "ZSTD_CCtx_setParameter(jobSize)")
            try startWorkers()
        }
    }

    /// The first compression call (no input, so no output yet), on a thread at the lower priority: it makes the
    /// workers, which inherit that priority. The caller waits for it, so the context is never used by two threads.
    private func startWorkers() throws {
        nonisolated(unsafe) let context = context
        nonisolated(unsafe) let output = output
        nonisolated(unsafe) var result = 0
        nonisolated(unsafe) var produced = 0
        let done = DispatchSemaphore(value: 0)
        // Linux copies the thread's name and priority to the workers libzstd makes from it.
        NamedThread.start("backup.zstd", lowered: true) {
            var input = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
            var out = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
            result = ZSTD_compressStream2(context, &out, &input, ZSTD_e_continue)
            produced = out.pos
            done.signal()
        }
        done.wait()
        try Self.check(result, "ZSTD_compressStream2")
        if produced > 0 { try next.write(UnsafeRawBufferPointer(start: output.baseAddress, count: produced)) }
    }

    deinit {
        ZSTD_freeCCtx(context)
        output.deallocate()
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        precondition(!finished, "write after finish")
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        var input = ZSTD_inBuffer(src: base, size: bytes.count, pos: 0)
        while input.pos < input.size {
            _ = try compress(&input, ZSTD_e_continue)
        }
    }

    /// Ends the frame and writes what is left.
    public func finish() throws {
        guard !finished else { return }
        finished = true
        var input = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
        while try compress(&input, ZSTD_e_end) > 0 {}
    }

    /// One call of the compressor; what it produced goes to `next`. Returns what libzstd still has to flush.
    private func compress(_ input: inout ZSTD_inBuffer, _ directive: ZSTD_EndDirective) throws -> Int {
        var out = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
        let remaining = try Self.check(ZSTD_compressStream2(context, &out, &input, directive), "ZSTD_compressStream2")
        if out.pos > 0 { try next.write(UnsafeRawBufferPointer(start: output.baseAddress, count: out.pos)) }
        return remaining
    }

    @discardableResult
    private static func check(_ result: Int, _ function: String) throws -> Int {
        guard ZSTD_isError(result) != 0 else { return result }
        throw ContingencyError.failed("\(function): \(String(cString: ZSTD_getErrorName(result)))")
    }
}

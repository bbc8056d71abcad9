import BackupCore
import Dispatch
import Foundation

/// Compresses a byte stream into a gzip file made of consecutive, independent members (RFC 1952 §2.2: "a gzip
/// file consists of a series of members"), each holding `blockSize` bytes of the input, compressed on several
/// threads at once and written to `next` in order. `gzip -d`, GNU tar (`tar -xzf`) and libarchive read such a
/// file as one stream; it is what `pigz --independent` and bgzip make.
///
/// Written here rather than taken from a library: pigz is a program, not a library, and neither zlib nor
/// libdeflate compresses on several threads. The work is small: cut, compress each block whole, write in order.
///
/// Memory is bounded whatever the stream's size: `2 × threads` blocks in flight, each an input buffer, an
/// output buffer and a compressor (about 5 MiB in all with 2 threads and 1 MiB blocks). Independent members
/// cost a little ratio (each starts without a dictionary: under 0.1% with 1 MiB blocks).
///
/// The blocks are compressed on `threads` threads of the sink's own, at a backup's lower priority
/// (`ThreadPriority.background`), ended with the sink: a backup running inside the sidecar then leaves the cores
/// to its HTTP server whenever it has a request, instead of taking one turn in two (a dispatch queue's workers
/// would also share their pool, and their priority, with the process's other dispatch work).
///
/// `write` and `finish` are called from one thread; `next` is written only from that thread.
public final class ParallelGzipSink: ByteSink {
    private let next: any ByteSink
    private let blocks: [Block]
    private let workers: Workers
    /// The block being filled; the blocks after it, round the ring, are the oldest in flight.
    private var current = 0
    private var membersWritten = 0
    private var finished = false

    /// - Parameters:
    ///   - level: gzip's compression level, 1 (fastest) to 9.
    ///   - threads: how many blocks are compressed at once (this machine's processors by default).
    public init(
        level: Int, threads: Int = ProcessInfo.processInfo.activeProcessorCount, blockSize: Int = 1 << 20,
        next: any ByteSink
    ) throws {
        precondition(blockSize > 0, "blockSize must be positive")
        let threads = max(1, threads)
        self.next = next
        self.blocks = try (0..<(2 * threads)).map { _ in try Block(level: level, size: blockSize) }
        self.workers = Workers(count: threads)
    }

    deinit {
        // A worker may still be compressing into a block's buffers (after an error downstream): wait for it.
        for block in blocks where block.inFlight { block.done.wait() }
        workers.stop()
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        precondition(!finished, "write after finish")
        var offset = 0
        while offset < bytes.count {
            let block = blocks[current]
            let count = min(block.input.count - block.filled, bytes.count - offset)
            block.input.baseAddress!.advanced(by: block.filled).copyMemory(
                from: bytes.baseAddress! + offset, byteCount: count)
            block.filled += count
            offset += count
            if block.filled == block.input.count { try advance() }
        }
    }

    /// Compresses what is left and writes every remaining member. An empty stream still gives one (empty)
    /// member, so the output is always a valid gzip file.
    public func finish() throws {
        guard !finished else { return }
        finished = true
        if blocks[current].filled > 0 || membersWritten == 0 && !blocks.contains(where: \.inFlight) {
            submit(blocks[current])
        }
        for step in 1...blocks.count {
            let block = blocks[(current + step) % blocks.count]
            if block.inFlight { try drain(block) }
        }
    }

    /// Sends the full current block to be compressed and makes the next one in the ring free to fill.
    private func advance() throws {
        submit(blocks[current])
        current = (current + 1) % blocks.count
        let block = blocks[current]
        if block.inFlight { try drain(block) }
    }

    private func submit(_ block: Block) {
        block.inFlight = true
        workers.submit(block)
    }

    /// Waits for `block` (the oldest in flight) and writes its member.
    private func drain(_ block: Block) throws {
        block.done.wait()
        block.inFlight = false
        let produced = block.produced
        block.filled = 0
        guard produced > 0 else {
            throw ContingencyError.failed("libdeflate_gzip_compress: the output did not fit its bound")
        }
        try next.write(UnsafeRawBufferPointer(rebasing: block.output[0..<produced]))
        membersWritten += 1
    }

    /// The compressing threads: each takes the next submitted block, compresses it, and waits for another,
    /// until `stop`. The list of blocks is shared under a lock; the semaphore counts what is in it.
    private final class Workers: @unchecked Sendable {
        private let lock = NSLock()
        /// nil: a thread's cue to end.
        private var pending: [Block?] = []
        private let available = DispatchSemaphore(value: 0)
        private let count: Int

        init(count: Int) {
            self.count = count
            for index in 0..<count {
                NamedThread.start("backup.gzip.\(index)", lowered: true) { [self] in
                    while let block = take() { block.compress() }
                }
            }
        }

        func submit(_ block: Block) {
            lock.withLock { pending.append(block) }
            available.signal()
        }

        /// Ends every thread once it has finished the blocks submitted before.
        func stop() {
            lock.withLock { pending.append(contentsOf: [Block?](repeating: nil, count: count)) }
            for _ in 0..<count { available.signal() }
        }

        private func take() -> Block? {
            available.wait()
            return lock.withLock { pending.removeFirst() }
        }
    }

    /// One block of the ring. Handed between the writing thread and one worker: the writer touches it only
    /// while it is not in flight (before `submit`, after `done.wait()`), the worker only in between, and the
    /// semaphore orders the two. That hand-over is what `@unchecked Sendable` stands for.
    private final class Block: @unchecked Sendable {
        let compressor: GzipCompressor
        let input: UnsafeMutableRawBufferPointer
        let output: UnsafeMutableRawBufferPointer
        let done = DispatchSemaphore(value: 0)
        var filled = 0
        var produced = 0
        var inFlight = false

        init(level: Int, size: Int) throws {
            compressor = try GzipCompressor(level: level)
            input = .allocate(byteCount: size, alignment: 16)
            output = .allocate(byteCount: compressor.bound(size), alignment: 16)
        }

        deinit {
            input.deallocate()
            output.deallocate()
        }

        func compress() {
            produced = compressor.compress(UnsafeRawBufferPointer(rebasing: input[0..<filled]), into: output)
            done.signal()
        }
    }
}

import BackupCore
import Dispatch
import Foundation

/// Reads a gzip stream written by `ParallelGzipSink` (members marked with their sizes, `GzipMember`) and
/// inflates several members at once with libdeflate, delivering the bytes in order. `ArchiveReader` uses it
/// for such streams and libarchive's own (single-threaded zlib) filter for any other gzip file.
///
/// Memory is bounded: `2 × threads` members in flight, each at most a compressed and an inflated buffer
/// (about 2 MiB each with the writer's 1 MiB blocks). Every member's CRC-32 and size are checked before its
/// bytes are delivered; a member that is damaged, truncated or not marked is an error, never skipped.
///
/// `read` is called from one thread.
public final class ParallelGunzipSource: ByteSource {
    private let source: any ByteSource
    private var peeked: [UInt8]
    private let slots: [Slot]
    private let queue = DispatchQueue(label: "contingency.gunzip", attributes: .concurrent)
    /// The slot being delivered, and how many (from it on, round the ring) hold a member.
    private var head = 0
    private var filled = 0
    private var delivered = 0
    private var members = 0
    private var offset: Int64 = 0
    private var ended = false

    /// Whether `prefix` (the stream's first bytes, at least `GzipMember.headerSize`) starts a stream of ours.
    public static func recognizes(_ prefix: [UInt8]) -> Bool {
        prefix.withUnsafeBytes { GzipMember.sizes($0) != nil }
    }

    /// - Parameters:
    ///   - peeked: the bytes already read from `source` (its start).
    public init(peeked: [UInt8], source: any ByteSource, threads: Int = ProcessInfo.processInfo.activeProcessorCount)
        throws
    {
        self.source = source
        self.peeked = peeked
        self.slots = try (0..<(2 * max(1, threads))).map { _ in try Slot() }
    }

    deinit {
        for slot in slots where slot.inFlight { slot.done.wait() }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            try fillAhead()
            guard filled > 0 else { return 0 }
            let slot = slots[head]
            if slot.inFlight {
                slot.done.wait()
                slot.inFlight = false
                if let problem = slot.problem {
                    throw ContingencyError.failed(
                        "gzip member \(slot.number + 1) (at byte \(slot.offset)) cannot be inflated: \(problem)")
                }
            }
            let count = min(buffer.count, slot.output.count - delivered)
            if count > 0 {
                buffer.baseAddress!.copyMemory(from: slot.output.baseAddress! + delivered, byteCount: count)
                delivered += count
                return count
            }
            head = (head + 1) % slots.count
            filled -= 1
            delivered = 0
        }
    }

    /// Reads members into the free slots and hands them to the workers, until the ring is full or the stream ends.
    private func fillAhead() throws {
        while filled < slots.count && !ended {
            let slot = slots[(head + filled) % slots.count]
            var header = [UInt8](repeating: 0, count: GzipMember.headerSize)
            let got = try header.withUnsafeMutableBytes { try readFully($0) }
            if got == 0 {
                ended = true
                return
            }
            guard got == header.count, let sizes = header.withUnsafeBytes({ GzipMember.sizes($0) }) else {
                throw ContingencyError.failed(
                    "the gzip stream is truncated or damaged at byte \(offset) (after \(members) members): not a member written by this program"
                )
            }
            slot.prepare(memberSize: sizes.member, uncompressedSize: sizes.uncompressed)
            slot.input.copyBytes(from: header)
            let body = UnsafeMutableRawBufferPointer(rebasing: slot.input[header.count..<sizes.member])
            guard try readFully(body) == body.count else {
                throw ContingencyError.failed(
                    "the gzip stream is truncated in member \(members + 1) (at byte \(offset))")
            }
            slot.number = members
            slot.offset = offset
            members += 1
            offset += Int64(sizes.member)
            slot.inFlight = true
            filled += 1
            queue.async { slot.inflate() }
        }
    }

    /// Fills `buffer` from the peeked bytes, then the source; fewer bytes only at the end of the stream.
    private func readFully(_ buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var count = 0
        if !peeked.isEmpty {
            count = min(peeked.count, buffer.count)
            peeked.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: count) }
            peeked.removeFirst(count)
        }
        while count < buffer.count {
            let got = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[count...]))
            if got == 0 { break }
            count += got
        }
        return count
    }

    /// One member's buffers. Handed between the reading thread and one worker: the reader touches it only
    /// while it is not in flight (before the hand-over, after `done.wait()`), the worker only in between, and
    /// the semaphore orders the two. That hand-over is what `@unchecked Sendable` stands for.
    private final class Slot: @unchecked Sendable {
        let decompressor: GzipDecompressor
        let done = DispatchSemaphore(value: 0)
        private var inputStorage = UnsafeMutableRawBufferPointer.allocate(byteCount: 0, alignment: 16)
        private var outputStorage = UnsafeMutableRawBufferPointer.allocate(byteCount: 0, alignment: 16)
        private(set) var input = UnsafeMutableRawBufferPointer(start: nil, count: 0)
        private(set) var output = UnsafeMutableRawBufferPointer(start: nil, count: 0)
        var inFlight = false
        var problem: String?
        var number = 0
        var offset: Int64 = 0

        init() throws { decompressor = try GzipDecompressor() }

        deinit {
            inputStorage.deallocate()
            outputStorage.deallocate()
        }

        /// Sizes the buffers for a member (they only grow, to the largest member seen).
        func prepare(memberSize: Int, uncompressedSize: Int) {
            if inputStorage.count < memberSize {
                inputStorage.deallocate()
                inputStorage = .allocate(byteCount: memberSize, alignment: 16)
            }
            if outputStorage.count < uncompressedSize {
                outputStorage.deallocate()
                outputStorage = .allocate(byteCount: uncompressedSize, alignment: 16)
            }
            input = UnsafeMutableRawBufferPointer(rebasing: inputStorage[0..<memberSize])
            output = UnsafeMutableRawBufferPointer(rebasing: outputStorage[0..<uncompressedSize])
            problem = nil
        }

        func inflate() {
            problem = decompressor.decompress(UnsafeRawBufferPointer(input), into: output)
            done.signal()
        }
    }
}

/// A source that first gives back bytes already read from another (a peek at its start), then the rest of it.
final class PrefixedSource: ByteSource {
    private var prefix: [UInt8]
    private let source: any ByteSource

    init(_ prefix: [UInt8], _ source: any ByteSource) {
        self.prefix = prefix
        self.source = source
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard prefix.isEmpty else {
            let count = min(prefix.count, buffer.count)
            prefix.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: count) }
            prefix.removeFirst(count)
            return count
        }
        return try source.read(into: buffer)
    }
}

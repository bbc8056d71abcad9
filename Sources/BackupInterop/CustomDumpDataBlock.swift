import BackupCore
import Foundation

/// Reads the data of one uncompressed data block of a pg_dump custom-format archive (pg_backup_custom.c
/// `_readBlockHeader`, `_PrintData`): a block type (1, data) and its entry's dump ID, then chunks, each a length
/// and that many bytes, ended by a chunk of length 0. What the chunks hold, one after the other, is the table's
/// COPY data (`CopyDataSplitter` cuts it into rows).
///
/// Read here rather than by pg_restore, which sends a table's data through one connection only; the layout is
/// the one `CustomDumpScanner` follows, and what does not match it is an error, never a guess.
public struct CustomDumpDataBlock {
    public struct Malformed: Error, CustomStringConvertible {
        public let description: String
    }

    private let source: any ByteSource
    private let intSize: Int
    private var buffer: [UInt8]
    private var start = 0
    private var end = 0
    /// Bytes left in the chunk being read.
    private var remaining = 0
    private var finished = false

    /// `source` starts at the block's first byte (its type); the block must be `dumpId`'s.
    public init(source: any ByteSource, intSize: Int, dumpId: Int, bufferSize: Int = 1 << 20) throws {
        self.source = source
        self.intSize = intSize
        buffer = [UInt8](repeating: 0, count: max(bufferSize, 64))
        guard try fill(1 + 1 + intSize) else { throw Malformed(description: "the data block of entry \(dumpId) is cut short") }
        guard buffer[start] == 1 else {
            throw Malformed(description: "the block at entry \(dumpId)'s place is not a data block (type \(buffer[start]))")
        }
        start += 1
        let found = try integer()
        guard found == dumpId else {
            throw Malformed(description: "the block at entry \(dumpId)'s place is entry \(found)'s")
        }
    }

    /// Hands the block's data to `body`, a run of bytes at a time (each run a view into the reader's buffer,
    /// valid only during the call), until the block ends.
    ///
    /// pg_dump writes a chunk per row: the payloads of the chunks lying whole in the buffer are moved together,
    /// over the lengths between them, into one run, since a call per row cost more than moving its bytes.
    public mutating func forEachRun(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let width = 1 + intSize
        while !finished {
            // The run is buffer[run..<joined]; what is read next is at `start`, never before `joined`.
            let run = start
            var joined = start
            while true {
                if remaining == 0 {
                    guard end - start >= width else { break }
                    let length = try integer()
                    guard length >= 0 else { throw Malformed(description: "a data chunk of negative length \(length)") }
                    if length == 0 {
                        finished = true
                        break
                    }
                    remaining = length
                }
                let count = min(remaining, end - start)
                if count == 0 { break }
                if joined != start {
                    buffer.withUnsafeMutableBytes { raw in
                        _ = memmove(raw.baseAddress! + joined, raw.baseAddress! + start, count)
                    }
                }
                joined += count
                start += count
                remaining -= count
                if remaining > 0 { break }
            }
            if joined > run {
                try buffer.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[run..<joined])) }
            }
            if finished { return }
            // The buffer holds no more of the chunk under way, or only part of the next length.
            guard try fill(remaining == 0 ? width : 1) else {
                throw Malformed(description: remaining == 0 ? "a data block is cut short" : "a data chunk is cut short")
            }
        }
    }

    /// Makes at least `count` bytes available from `start`; false at the end of the source before that.
    private mutating func fill(_ count: Int) throws -> Bool {
        if end - start >= count { return true }
        if start > 0 {
            buffer.withUnsafeMutableBytes { raw in
                _ = memmove(raw.baseAddress!, raw.baseAddress! + start, end - start)
            }
            end -= start
            start = 0
        }
        while end < count {
            let read = try buffer.withUnsafeMutableBytes { raw in
                try source.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[end...]))
            }
            guard read > 0 else { return false }
            end += read
        }
        return true
    }

    private mutating func integer() throws -> Int {
        guard let value = CustomDumpScanner.decode(buffer[start..<start + 1 + intSize]) else {
            throw Malformed(description: "an integer out of range in a data block")
        }
        start += 1 + intSize
        return value
    }
}

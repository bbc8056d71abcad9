import BackupCore
import Foundation
import Testing
import TestSupport

@testable import BackupInterop

/// A table's data block read on its own, as a split load reads it from the staged dump: every byte of every chunk,
/// in order, whatever the buffer and however the source hands its bytes over; and nothing but errors for a block
/// that is not one.
@Suite("Reading one data block of a pg_dump custom archive")
struct CustomDumpDataBlockTests {
    /// Gives at most the next of `sizes` bytes per read (cycling through them), as a file, a pipe or a decompressor
    /// may.
    final class UnevenSource: ByteSource {
        private let bytes: [UInt8]
        private let sizes: [Int]
        private var offset = 0
        private var reads = 0

        init(_ bytes: [UInt8], sizes: [Int]) {
            self.bytes = bytes
            self.sizes = sizes
        }

        func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
            let count = min(buffer.count, bytes.count - offset, sizes[reads % sizes.count])
            reads += 1
            guard count > 0 else { return 0 }
            bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + count)])) }
            offset += count
            return count
        }
    }

    static func integer(_ value: Int, intSize: Int) -> [UInt8] {
        [value < 0 ? 1 : 0] + (0..<intSize).map { UInt8(truncatingIfNeeded: abs(value) >> (8 * $0)) }
    }

    /// A block of entry `dumpId`: type 1, the ID, a chunk per payload, the closing chunk of length 0.
    static func block(_ payloads: [[UInt8]], dumpId: Int = 7, intSize: Int = 4, closed: Bool = true) -> [UInt8] {
        var bytes: [UInt8] = [1] + integer(dumpId, intSize: intSize)
        for payload in payloads { bytes += integer(payload.count, intSize: intSize) + payload }
        return closed ? bytes + integer(0, intSize: intSize) : bytes
    }

    /// Rows of varied lengths, as pg_dump writes them (a chunk per row), with a few chunks far larger than a row.
    static func payloads(seed: UInt64) -> [[UInt8]] {
        var random = SplitMix64(seed: seed)
        return (0..<600).map { number in
            let length = number % 97 == 0 ? Int.random(in: 3000...9000, using: &random) : Int.random(in: 1...180, using: &random)
            return (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
        }
    }

    /// What the reader hands over, run by run.
    static func read(_ bytes: [UInt8], dumpId: Int = 7, intSize: Int = 4, bufferSize: Int, sizes: [Int]) throws -> [[UInt8]] {
        var block = try CustomDumpDataBlock(
            source: UnevenSource(bytes, sizes: sizes), intSize: intSize, dumpId: dumpId, bufferSize: bufferSize)
        var runs: [[UInt8]] = []
        try block.forEachRun { runs.append(Array($0)) }
        return runs
    }

    @Test("every payload byte, in order, whatever the buffer and the reads", arguments: [4, 8])
    func everyByte(intSize: Int) throws {
        let payloads = Self.payloads(seed: UInt64(intSize))
        let bytes = Self.block(payloads, intSize: intSize) + Array("next block".utf8)
        for bufferSize in [64, 100, 4096, 1 << 20] {
            for sizes in [[1], [3, 7, 1, 64], [4093], [1 << 20]] {
                let runs = try Self.read(bytes, intSize: intSize, bufferSize: bufferSize, sizes: sizes)
                #expect(Array(runs.joined()) == Array(payloads.joined()), "buffer \(bufferSize), reads \(sizes)")
                #expect(!runs.contains { $0.isEmpty })
            }
        }
    }

    @Test("the chunks lying whole in the buffer come as one run, not a run per row")
    func joinsChunks() throws {
        let rows = (0..<1000).map { Array("row \($0)\t\($0 * 7)\n".utf8) }
        let runs = try Self.read(Self.block(rows), bufferSize: 1 << 20, sizes: [1 << 20])
        #expect(runs.count == 1)
        #expect(runs.first == Array(rows.joined()))
        // A buffer of 4 KiB holds about 250 rows at a time: a few runs, each many rows.
        let small = try Self.read(Self.block(rows), bufferSize: 4096, sizes: [1 << 20])
        #expect(small.count < 20, "\(small.count) runs")
        #expect(Array(small.joined()) == Array(rows.joined()))
    }

    @Test("a block cut short, a negative length, another entry's or another kind of block: an error, never a guess")
    func refuses() throws {
        let payloads = Self.payloads(seed: 9)
        let whole = Self.block(payloads)
        for sizes in [[1], [4093], [1 << 20]] {
            for bufferSize in [64, 1 << 20] {
                // Cut in a length, in a payload, and before the closing chunk.
                for end in [whole.count - 2, whole.count - 5 - 1, whole.count / 2, 12] {
                    #expect(throws: CustomDumpDataBlock.Malformed.self, "cut at \(end) of \(whole.count)") {
                        _ = try Self.read(Array(whole[..<end]), bufferSize: bufferSize, sizes: sizes)
                    }
                }
                let negative = Self.block(payloads.prefix(3).map { $0 }, closed: false) + Self.integer(-4, intSize: 4) + [1, 2, 3, 4]
                let error = #expect(throws: CustomDumpDataBlock.Malformed.self) {
                    _ = try Self.read(negative, bufferSize: bufferSize, sizes: sizes)
                }
                #expect(error?.description.contains("negative length") == true)
                let outOfRange = Self.block([[1, 2]], closed: false) + [0, 0, 0, 0, 0x80]
                #expect(throws: CustomDumpDataBlock.Malformed.self) {
                    _ = try Self.read(outOfRange, bufferSize: bufferSize, sizes: sizes)
                }
            }
        }
        #expect(throws: CustomDumpDataBlock.Malformed.self) { _ = try Self.read(whole, dumpId: 8, bufferSize: 64, sizes: [1]) }
        var blobs = whole
        blobs[0] = 3
        #expect(throws: CustomDumpDataBlock.Malformed.self) { _ = try Self.read(blobs, bufferSize: 64, sizes: [1]) }
    }
}

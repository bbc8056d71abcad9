import BackupCore
import BackupStorage
import Foundation
import Testing
import TestSupport

@testable import BackupKit

/// The staged dump read in parts while it is still written: what a restore of a dump as it arrives relies on.
@Suite("A staged dump read in parts")
struct StagedDumpTests {
    /// Bytes that say where they are: every 4-byte word is its own offset.
    static func pattern(_ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: ($0 / 4) >> (8 * ($0 % 4))) }
    }

    static func read(_ source: any ByteSource) throws -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 10_000)
        while true {
            let count = try buffer.withUnsafeMutableBytes { try source.read(into: $0) }
            if count == 0 { return result }
            result += buffer[..<count]
        }
    }

    @Test("any ranges, across and at the ends of the 64 KiB chunks, read back as written, sealed or plain", arguments: [true, false])
    func ranges(sealed: Bool) throws {
        let folder = try TemporaryDirectory(prefix: "contingency-staged")
        defer { folder.remove() }
        let dump = try StagedDump(staging: try LocalStaging(creating: folder.path), name: "a.dump", sealed: sealed)
        let bytes = Self.pattern(3 * 65_536 + 12_345)
        let sink = try dump.sink()
        try bytes.withUnsafeBytes { try sink.write($0) }
        try dump.finish()
        if sealed {
            let stored = try Data(contentsOf: URL(fileURLWithPath: dump.file.path))
            #expect(stored.prefix(21) == Data("age-encryption.org/v1".utf8))
        }
        let cases: [[Range<Int64>]] = [
            [0..<10], [65_530..<65_542], [65_536..<131_072], [100..<200, 70_000..<200_000],
            [Int64(bytes.count) - 5..<Int64(bytes.count)], [0..<Int64(bytes.count)], [131_071..<131_073, 5..<6],
        ]
        for ranges in cases {
            let expected = ranges.flatMap { bytes[Int($0.lowerBound)..<Int($0.upperBound)] }
            #expect(try Self.read(try dump.source(ranges: ranges)) == expected, "\(ranges)")
        }
    }

    @Test("a block is announced once the bytes holding its end are in the file: at once when plain, a chunk later when sealed", arguments: [
        (Int64(0), ["contents", "block 1", "block 2", "abandoned"]), (Int64(65_536), ["contents", "block 1", "abandoned"]),
    ] as [(Int64, [String])])
    func lag(lag: Int64, expected: [String]) async throws {
        let arrival = DumpArrival(lag: lag)
        let archive = Self.minimalArchive(blockSizes: [100_000, 100_000])
        for part in [archive.toc] + archive.blocks { part.withUnsafeBytes { arrival.observe($0) } }
        // Closes the events: what was announced so far is all there is.
        arrival.abandon("the test is over")
        var events: [String] = []
        for await event in arrival.events {
            switch event {
            case .contents: events.append("contents")
            case .block(let id, let range):
                events.append("block \(id)")
                #expect(range.count == archive.blocks[id - 1].count)
            case .abandoned: events.append("abandoned")
            default: events.append("\(event)")
            }
        }
        #expect(events == expected)
    }

    /// The header and TOC of a custom-format archive (version 1.14) with a TABLE DATA entry per block size (dump
    /// IDs from 1), and the blocks.
    static func minimalArchive(blockSizes: [Int]) -> (toc: [UInt8], blocks: [[UInt8]]) {
        func int(_ value: Int) -> [UInt8] { [value < 0 ? 1 : 0] + (0..<4).map { UInt8(truncatingIfNeeded: abs(value) >> (8 * $0)) } }
        func string(_ text: String?) -> [UInt8] { text.map { int($0.utf8.count) + Array($0.utf8) } ?? int(-1) }
        var toc = Array("PGDMP".utf8) + [1, 14, 0, 4, 8, 1] + int(0)
        for _ in 0..<7 { toc += int(0) }
        toc += string("db") + string("15.0") + string("15.0") + int(blockSizes.count)
        for id in 1...blockSizes.count {
            toc += int(id) + int(1) + string("0") + string("0") + string("t\(id)") + string("TABLE DATA") + int(3)
            toc += string("") + string("") + string("COPY t\(id) FROM stdin;\n") + string("public") + string("") + string("")
            toc += string("postgres") + string("false") + string(nil) + [2] + [UInt8](repeating: 0, count: 8)
        }
        let blocks = blockSizes.enumerated().map { index, size in
            [1] + int(index + 1) + int(size) + [UInt8](repeating: 0x61, count: size) + int(0)
        }
        return (toc, blocks)
    }
}

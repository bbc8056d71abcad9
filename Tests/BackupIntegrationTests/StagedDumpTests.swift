import BackupCore
import BackupInterop
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
        let arrival = DumpArrival(lag: lag, checkedBlocks: false)
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

    /// The block hashes of `bytes` as backup-job records them, each block hashed on its own here.
    static func recorded(_ bytes: [UInt8]) -> BackupMetadata.Member {
        let size = BlockHashes.blockSize(for: Int64(bytes.count))
        let hashes = stride(from: 0, to: bytes.count, by: Int(size)).map {
            BackupInterop.SHA256.hex(of: Array(bytes[$0..<min($0 + Int(size), bytes.count)]))
        }
        return .init(
            name: "database.dump", size: Int64(bytes.count), sha256: BackupInterop.SHA256.hex(of: bytes),
            blocks: BlockHashes(blockSize: size, sha256: hashes))
    }

    /// The events `arrival` sent, as words.
    static func events(_ arrival: DumpArrival) async -> [String] {
        var events: [String] = []
        for await event in arrival.events {
            switch event {
            case .contents: events.append("contents")
            case .block(let id, _): events.append("block \(id)")
            case .abandoned: events.append("abandoned")
            case .staged: events.append("staged")
            case .unfollowable: events.append("unfollowable")
            case .opened(let id, _): events.append("opened \(id)")
            }
        }
        return events
    }

    @Test(
        "a followed dump announces a table only once every block holding it matches its recorded hash; a changed byte stops the staging there",
        arguments: [nil, 0, 1_200_000, 2_500_000] as [Int?], [false, true])
    func checkedBlocks(changedAt: Int?, sealed: Bool) async throws {
        let folder = try TemporaryDirectory(prefix: "contingency-staged")
        defer { folder.remove() }
        // Three tables of 1 MB: blocks of 1 MiB, so table 1 ends in block 1, table 2 in block 2 and so on.
        let archive = Self.minimalArchive(blockSizes: [1_000_000, 1_000_000, 1_000_000])
        let bytes = archive.toc + archive.blocks.flatMap { $0 }
        let dump = try StagedDump(
            staging: try LocalStaging(creating: folder.path), name: "a.dump", sealed: sealed, followed: Self.recorded(bytes))
        let arrival = try #require(dump.arrival)
        var written = bytes
        if let changedAt { written[changedAt] ^= 0x01 }
        let sink = try dump.sink()
        var failure: (any Error)?
        do {
            // Written in small pieces, as the archive reader does.
            for start in stride(from: 0, to: written.count, by: 100_000) {
                try written[start..<min(start + 100_000, written.count)].withUnsafeBytes { try sink.write($0) }
            }
            try dump.finish()
        } catch {
            failure = error
        }
        let events = await Self.events(arrival)
        switch changedAt {
        case nil:
            #expect(failure == nil)
            // A block begun is announced as soon as its first bytes are checked, and again once it is whole.
            #expect(events == ["contents", "block 1", "opened 2", "block 2", "opened 3", "block 3", "staged"])
        case 0?:
            // The table of contents itself is in the changed block: nothing of it is announced (its scan may say
            // it cannot be followed, which only makes a restore wait).
            #expect(events.filter { $0 != "unfollowable" } == ["abandoned"])
        case 1_200_000?:
            let whole = events.filter { !$0.hasPrefix("opened") }
            #expect(whole == ["contents", "abandoned"] || whole == ["contents", "block 1", "abandoned"], "\(events)")
            #expect(!events.contains("block 2"))
        default:
            #expect(events.last == "abandoned" && !events.contains("block 3"), "\(events)")
        }
        if changedAt != nil {
            let error = try #require(failure as? ContingencyError)
            #expect(error.message.contains("does not match its recorded sha256"), "\(error)")
        }
    }

    @Test("a followed dump longer or shorter than recorded is refused, and the staging stops at the recorded size")
    func checkedLength() throws {
        let folder = try TemporaryDirectory(prefix: "contingency-staged")
        defer { folder.remove() }
        let bytes = Self.pattern(2_000_000)
        for written in [bytes + [0], Array(bytes.dropLast())] {
            let dump = try StagedDump(
                staging: try LocalStaging(creating: folder.path), name: "a.dump", sealed: false, followed: Self.recorded(bytes))
            let sink = try dump.sink()
            #expect(throws: ContingencyError.self) {
                try written.withUnsafeBytes { try sink.write($0) }
                try dump.finish()
            }
            #expect(dump.file.size <= Int64(bytes.count))
        }
    }

    /// A reader of the dump from `start`, on its own thread, as a split load's reader: what it has read so far,
    /// and how it ended.
    final class Follower: @unchecked Sendable {
        private let lock = NSLock()
        private var read: [UInt8] = []
        private var ending: Result<Void, any Error>?
        private var stopped = false

        init(_ dump: StagedDump, from start: Int64, arrival: DumpArrival, releasingBefore: Int64? = nil) {
            NamedThread.start("test.follower") { [self] in
                do {
                    let source = try dump.following(from: start, arrival: arrival, releasingBefore: releasingBefore) { [self] in
                        lock.withLock { stopped }
                    }
                    var buffer = [UInt8](repeating: 0, count: 64 << 10)
                    while true {
                        let count = try buffer.withUnsafeMutableBytes { try source.read(into: $0) }
                        if count == 0 { break }
                        lock.withLock { read += buffer[..<count] }
                    }
                    lock.withLock { ending = .success(()) }
                } catch {
                    lock.withLock { ending = .failure(error) }
                }
            }
        }

        /// What a split load does when it stops: its source is told so.
        func stop() { lock.withLock { stopped = true } }
        var bytes: [UInt8] { lock.withLock { read } }
        var ended: Result<Void, any Error>? { lock.withLock { ending } }
    }

    /// Tables of these sizes (by default 1 MB, 3 MB and 1 MB), with the block hashes backup-job records (1 MiB
    /// blocks); `block`: where the second table's block lies.
    static func followedDump(
        in folder: TemporaryDirectory, blockSizes: [Int] = [1_000_000, 3_000_000, 1_000_000], changedAt: Int? = nil
    ) throws -> (dump: StagedDump, written: [UInt8], block: Range<Int>) {
        let archive = Self.minimalArchive(blockSizes: blockSizes)
        let bytes = archive.toc + archive.blocks.flatMap { $0 }
        let dump = try StagedDump(
            staging: try LocalStaging(creating: folder.path), name: "a.dump", sealed: false, followed: Self.recorded(bytes))
        var written = bytes
        if let changedAt { written[changedAt] ^= 0x01 }
        let start = archive.toc.count + archive.blocks[0].count
        return (dump, written, start..<(start + archive.blocks[1].count))
    }

    @Test("a block still arriving is read as it is staged: never past the bytes checked, to the dump's end once it is whole")
    func followsAsStaged() async throws {
        let folder = try TemporaryDirectory(prefix: "contingency-staged")
        defer { folder.remove() }
        let (dump, written, block) = try Self.followedDump(in: folder)
        let start = Int64(block.lowerBound)
        let arrival = try #require(dump.arrival)
        var events = arrival.events.makeAsyncIterator()
        let sink = try dump.sink()
        // Up to 2.5 MB: table 2 begun, its first 1 MiB blocks checked.
        let first = 2_500_000
        try written[..<first].withUnsafeBytes { try sink.write($0) }
        var seen: [String] = []
        while !seen.contains("opened 2"), let event = await events.next() {
            if case .opened(let id, let at) = event {
                #expect(at == start)
                seen.append("opened \(id)")
            } else {
                seen.append("\(event)".prefix { $0 != "(" }.description)
            }
        }
        #expect(seen == ["contents", "block", "opened 2"])
        let follower = Follower(dump, from: start, arrival: arrival)
        defer { follower.stop() }
        // It reads what is checked: up to the last whole 1 MiB block written (2 MiB), and waits there.
        let checked = 2 << 20
        try await eventually("the follower to read the checked bytes") { follower.bytes.count == checked - Int(start) }
        #expect(follower.ended == nil)
        #expect(follower.bytes == Array(written[Int(start)..<checked]))
        // The rest, in pieces: it follows to the end of the dump.
        for piece in stride(from: first, to: written.count, by: 300_000) {
            try written[piece..<min(piece + 300_000, written.count)].withUnsafeBytes { try sink.write($0) }
        }
        try dump.finish()
        try await eventually("the follower to end") { follower.ended != nil }
        #expect(throws: Never.self) { try follower.ended?.get() }
        #expect(follower.bytes == Array(written[Int(start)...]))
    }

    @Test("a follower waiting for bytes stops with an error when a later block does not match, or when its load stops", arguments: [true, false])
    func followerStops(mismatch: Bool) async throws {
        let folder = try TemporaryDirectory(prefix: "contingency-staged")
        defer { folder.remove() }
        // A changed byte in the 3rd 1 MiB block: the first two are read, then the staging stops.
        let (dump, written, block) = try Self.followedDump(in: folder, changedAt: mismatch ? 2_200_000 : nil)
        let start = Int64(block.lowerBound)
        let arrival = try #require(dump.arrival)
        let sink = try dump.sink()
        try written[..<2_150_000].withUnsafeBytes { try sink.write($0) }
        let follower = Follower(dump, from: start, arrival: arrival)
        defer { follower.stop() }
        try await eventually("the follower to read the checked bytes") { follower.bytes.count == (2 << 20) - Int(start) }
        if mismatch {
            #expect(throws: ContingencyError.self) {
                try written[2_150_000..<2_300_000].withUnsafeBytes { try sink.write($0) }
                try written[2_300_000...].withUnsafeBytes { try sink.write($0) }
            }
        } else {
            follower.stop()
        }
        try await eventually("the follower to stop") { follower.ended != nil }
        let error = try #require(follower.ended.flatMap { result -> (any Error)? in
            if case .failure(let error) = result { return error }
            return nil
        } as? ContingencyError)
        #expect(error.message.contains(mismatch ? "does not match the manifest" : "stopped"), "\(error)")
        // Nothing past what was checked was read.
        #expect(follower.bytes == Array(written[Int(start)..<(2 << 20)]))
    }

    @Test("a plain dump's released range reads as zeros and leaves the disk, the rest and the size kept; a sealed dump is left whole", arguments: [false, true])
    func release(sealed: Bool) throws {
        let folder = try TemporaryDirectory(prefix: "contingency-staged")
        defer { folder.remove() }
        let dump = try StagedDump(staging: try LocalStaging(creating: folder.path), name: "a.dump", sealed: sealed)
        let bytes = Self.pattern(8 << 20)
        let sink = try dump.sink()
        try bytes.withUnsafeBytes { try sink.write($0) }
        try dump.finish()
        #expect(dump.isWhole)
        func allocated() throws -> Int64 {
            var status = stat()
            try #require(stat(dump.file.path, &status) == 0)
            return Int64(status.st_blocks) * 512
        }
        let before = try allocated()
        // Not on page boundaries: the bytes at either side stay.
        let freed = 1_000_001..<7_000_003
        dump.release(Int64(freed.lowerBound)..<Int64(freed.upperBound))
        #expect(dump.isWhole == sealed)
        #expect(try Self.read(dump.source()) == (sealed ? bytes : bytes.enumerated().map { freed.contains($0.offset) ? 0 : $0.element }))
        let after = try allocated()
        if sealed {
            #expect(after == before)
        } else {
            #expect(after <= before - 5_900_000, "\(before) bytes allocated before, \(after) after")
        }
    }

    @Test("a follower that releases gives back what it has read, a few MiB at a time, never past its block's end, and reads every byte all the same")
    func followerReleases() async throws {
        let folder = try TemporaryDirectory(prefix: "contingency-staged")
        defer { folder.remove() }
        // The followed block, 13 MB, then another of 4 MB that the follower reads on into (it reads to the dump's
        // end) but that another step still needs.
        let (dump, written, block) = try Self.followedDump(in: folder, blockSizes: [1_000_000, 13_000_000, 4_000_000])
        let arrival = try #require(dump.arrival)
        let (start, end) = (block.lowerBound, block.upperBound)
        let sink = try dump.sink()
        try written[..<start].withUnsafeBytes { try sink.write($0) }
        let follower = Follower(dump, from: Int64(start), arrival: arrival, releasingBefore: Int64(end))
        defer { follower.stop() }
        for piece in stride(from: start, to: written.count, by: 500_000) {
            try written[piece..<min(piece + 500_000, written.count)].withUnsafeBytes { try sink.write($0) }
        }
        try dump.finish()
        try await eventually("the follower to end") { follower.ended != nil }
        #expect(throws: Never.self) { try follower.ended?.get() }
        #expect(follower.bytes == Array(written[start...]))
        #expect(!dump.isWhole)
        // What it read went back each time 4 MiB more had been read (its reads are 64 KiB at most): three times in
        // the 13 MB block. Before it, and from its end on, nothing was: the fourth 4 MiB would have reached into
        // the next block.
        let step = Int(FollowingSource.releaseStep)
        let staged = try Self.read(dump.source())
        #expect(staged.count == written.count)
        let before = staged[..<start] == written[..<start]
        #expect(before)
        #expect(staged[start..<(start + 3 * step)].allSatisfy { $0 == 0 })
        #expect(start + 4 * step < written.count)
        let after = staged[end...] == written[end...]
        #expect(after, "the next block was freed")
    }

    @Test("a sealed dump is not followed: its chunks are only readable whole")
    func sealedNotFollowed() throws {
        let folder = try TemporaryDirectory(prefix: "contingency-staged")
        defer { folder.remove() }
        let archive = Self.minimalArchive(blockSizes: [1_000])
        let dump = try StagedDump(
            staging: try LocalStaging(creating: folder.path), name: "a.dump", sealed: true,
            followed: Self.recorded(archive.toc + archive.blocks[0]))
        let arrival = try #require(dump.arrival)
        #expect(throws: ContingencyError.self) { _ = try dump.following(from: 0, arrival: arrival) { false } }
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

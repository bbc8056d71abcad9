import BackupCore
import BackupInterop
import Foundation
import TestSupport
import Testing

/// Parallel gzip (independent members) and multithreaded zstd: what they write is read back by our own
/// reader (libarchive) and by the stock tools, byte for byte. Their speed and memory are the benchmark's
/// business (bench/run.sh), not the tests'.
@Suite("Parallel compression")
struct ParallelCompressionTests {
    /// Bytes that compress somewhat (repeated words) with random stretches, reproducible.
    static func sample(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        let words = ["backup", "restore", "uploads", "visual", "platform", "{\"id\":", "archive", "\n"].map {
            Array($0.utf8)
        }
        while bytes.count < count {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            if state >> 60 == 0 {
                for _ in 0..<64 {
                    state = state &* 6_364_136_223_846_793_005 &+ 1
                    bytes.append(UInt8(truncatingIfNeeded: state >> 33))
                }
            } else {
                bytes += words[Int(state >> 61)]
                bytes.append(0x20)
            }
        }
        return Array(bytes.prefix(count))
    }

    /// Number of gzip members: each starts with the magic bytes, method 8, FLG.FEXTRA and our "Cg" subfield.
    static func memberCount(_ gzip: [UInt8]) -> Int {
        guard gzip.count >= 24 else { return 0 }
        return (0..<(gzip.count - 23)).filter {
            gzip[$0] == 0x1F && gzip[$0 + 1] == 0x8B && gzip[$0 + 2] == 8 && gzip[$0 + 3] == 4
                && gzip[$0 + 12] == UInt8(ascii: "C")
                && gzip[$0 + 13] == UInt8(ascii: "g")
        }.count
    }

    @Test("gzip -d reads the members as one stream", arguments: [0, 1, 4095, 4096, 4097, 30_000, 100_003])
    func gzipRoundTrip(size: Int) async throws {
        let input = Self.sample(size, seed: UInt64(size) + 1)
        let output = MemorySink(limit: 1 << 24)
        // Small blocks and more threads than blocks in some cases: many members, out-of-order completion.
        let gzip = try ParallelGzipSink(level: 6, threads: 3, blockSize: 4096, next: output)
        // Written in uneven pieces, across block boundaries.
        var offset = 0
        var piece = 1
        while offset < input.count {
            let count = min(piece, input.count - offset)
            try input[offset..<(offset + count)].withUnsafeBytes { try gzip.write($0) }
            offset += count
            piece = piece * 3 + 7
        }
        try gzip.finish()
        #expect(Self.memberCount(output.bytes) >= max(1, (size + 4095) / 4096))

        let folder = try TemporaryDirectory(prefix: "gzip-members")
        let file = folder.url.appendingPathComponent("out.gz")
        try Data(output.bytes).write(to: file)
        _ = try await ProcessRunner.run("gzip", ["-t", file.path], requireSuccess: true)
        _ = try await ProcessRunner.run("gzip", ["-d", file.path], requireSuccess: true)
        #expect(try Data(contentsOf: folder.url.appendingPathComponent("out")) == Data(input))
    }

    @Test("archives read back by our reader and by GNU tar", arguments: [Compression.gzip, .zstd])
    func archiveRoundTrip(compression: Compression) async throws {
        // Several MiB: more than one 1 MiB gzip member and more than one zstd job per thread.
        let files: [(name: String, bytes: [UInt8])] = [
            ("root/database.dump", Self.sample(5 << 20, seed: 7)),
            ("root/uploads/empty.txt", []),
            ("root/uploads/small.json", Self.sample(300, seed: 8)),
            ("root/uploads/photo.bin", (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) }),
        ]
        let folder = try TemporaryDirectory(prefix: "parallel-archive")
        let path = folder.url.appendingPathComponent("backup.tar.\(compression == .gzip ? "gz" : "zst")").path
        let file = try LocalFile(writing: path)
        let writer = try ArchiveWriter(compression: compression, level: nil, sink: file, threads: 2)
        for (name, bytes) in files { try writer.writeFile(name, contents: bytes) }
        try writer.finish()
        file.close()
        if compression == .gzip {
            #expect(Self.memberCount(Array(try Data(contentsOf: URL(fileURLWithPath: path)))) > 1)
        }

        // Our reader.
        let reader = try ArchiveReader(source: try LocalFile(reading: path), name: path)
        let entry = ArchiveEntry()
        var read: [String: [UInt8]] = [:]
        var buffer = [UInt8](repeating: 0, count: 65536)
        while try reader.next(into: entry) {
            var bytes: [UInt8] = []
            while true {
                let count = try buffer.withUnsafeMutableBytes { try reader.read(into: $0) }
                if count == 0 { break }
                bytes += buffer[0..<count]
            }
            read[entry.pathname] = bytes
        }
        #expect(read.count == files.count)
        for (name, bytes) in files { #expect(read[name] == bytes, "\(name)") }

        // GNU tar lists and extracts it (and gzip -t checks every member).
        let flag = compression == .gzip ? "-z" : "--zstd"
        let listing = try await ProcessRunner.run("tar", [flag, "-tf", path], requireSuccess: true)
        #expect(Set(listing.stdout.split(separator: "\n").map(String.init)) == Set(files.map(\.name)))
        let extracted = folder.url.appendingPathComponent("extracted")
        try FileManager.default.createDirectory(at: extracted, withIntermediateDirectories: true)
        _ = try await ProcessRunner.run("tar", [flag, "-xf", path, "-C", extracted.path], requireSuccess: true)
        for (name, bytes) in files {
            #expect(try Data(contentsOf: extracted.appendingPathComponent(name)) == Data(bytes), "\(name)")
        }
        if compression == .gzip { _ = try await ProcessRunner.run("gzip", ["-t", path], requireSuccess: true) }
    }

    /// Our reader of marked members, fed in small uneven reads: the same bytes, in order.
    @Test("marked members inflated in parallel, in order", arguments: [0, 1, 4096, 100_003])
    func gunzipRoundTrip(size: Int) throws {
        let input = Self.sample(size, seed: UInt64(size) + 99)
        let compressed = try Self.gzip(input, blockSize: 4096)
        #expect(ParallelGunzipSource.recognizes(Array(compressed.prefix(24))))
        let source = try ParallelGunzipSource(
            peeked: Array(compressed.prefix(10)), source: MemorySource(Array(compressed.dropFirst(10))), threads: 3)
        #expect(try Self.readAll(source, pieces: 777) == input)
    }

    @Test("a damaged or truncated member is an error, never skipped", arguments: [30, 5000, -3, -20_000])
    func gunzipRefusesDamage(position: Int) throws {
        let input = Self.sample(60_000, seed: 5)
        var compressed = try Self.gzip(input, blockSize: 4096)
        if position >= 0 {
            compressed[position] ^= 0x10  // a flipped bit inside a member's data
        } else {
            compressed.removeLast(-position)  // cut short
        }
        let source = try ParallelGunzipSource(peeked: [], source: MemorySource(compressed), threads: 2)
        #expect(throws: ContingencyError.self) { _ = try Self.readAll(source, pieces: 65536) }
    }

    static func gzip(_ input: [UInt8], blockSize: Int) throws -> [UInt8] {
        let output = MemorySink(limit: 1 << 24)
        let gzip = try ParallelGzipSink(level: 6, threads: 2, blockSize: blockSize, next: output)
        try input.withUnsafeBytes { try gzip.write($0) }
        try gzip.finish()
        return output.bytes
    }

    static func readAll(_ source: any ByteSource, pieces: Int) throws -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: pieces)
        while true {
            let count = try buffer.withUnsafeMutableBytes { try source.read(into: $0) }
            if count == 0 { return result }
            result += buffer[0..<count]
        }
    }
}

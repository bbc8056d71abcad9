import BackupCore
import Foundation
import Testing
import TestSupport

@testable import BackupInterop

/// The scanner against pg_dump's own archives, with pg_restore as the judge of what they contain.
@Suite("Following a pg_dump custom-format archive as it streams")
struct CustomDumpScannerTests {
    struct Scan {
        var contents: CustomDumpScanner.Contents
        var blocks: [CustomDumpScanner.Block]
        var size: Int64
    }

    /// The whole file, fed in `chunk`-byte pieces; fails the test if the scanner gave up.
    static func scan(_ path: String, chunk: Int = 1 << 20) throws -> Scan {
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let (blocks, scanner) = feed(bytes, chunk: chunk)
        if let failure = scanner.failure { throw ContingencyError.failed("the scanner stopped: \(failure)") }
        let contents = try #require(scanner.contents)
        return Scan(contents: contents, blocks: blocks, size: Int64(bytes.count))
    }

    /// The dump IDs `pg_restore --list` prints, in order.
    static func listed(_ path: String, server: PostgresServer) async throws -> [Int] {
        let result = try await ProcessRunner.run(server.binDir.appendingPathComponent("pg_restore").path, ["--list", path], requireSuccess: true)
        return result.stdout.split(separator: "\n").filter { !$0.hasPrefix(";") }.compactMap { line in
            line.split(separator: ";").first.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        }
    }

    /// A database with ordinary tables, an empty one, a large object and a sequence.
    static func seed(_ server: PostgresServer, _ database: String) async throws {
        try await server.seedSampleData(database: database)
        _ = try await server.psql(
            """
            CREATE TABLE empty_one (id int);
            CREATE TABLE wide AS SELECT g AS id, repeat(md5(g::text), 40) AS body FROM generate_series(1, 3000) g;
            SELECT lo_from_bytea(0, decode(repeat('00ff', 50000), 'hex'));
            CREATE SEQUENCE counter START 42;
            """, database: database)
    }

    @Test("every entry pg_restore lists, every data block in archive order, however the bytes are cut", arguments: [
        ["--compress=0"], ["--compress=6"],
    ])
    func followsRealDumps(options: [String]) async throws {
        try await PostgresServer.with { server in
            try await Self.seed(server, "scanned")
            let folder = try TemporaryDirectory(prefix: "contingency-scan")
            defer { folder.remove() }
            let path = folder.appending("file.dump").path
            _ = try await ProcessRunner.run(
                server.binDir.appendingPathComponent("pg_dump").path,
                ["--format=custom"] + options + ["--file=\(path)", server.connectionURL(database: "scanned")], requireSuccess: true)

            let whole = try Self.scan(path)
            // pg_restore lists what it would restore: all but the session settings and the database itself.
            let listed = try await Self.listed(path, server: server)
            #expect(whole.contents.entries.map(\.dumpId).filter(Set(listed).contains) == listed)
            let unlisted = Set(whole.contents.entries.filter { !listed.contains($0.dumpId) }.map(\.desc))
            #expect(unlisted.isSubset(of: ["ENCODING", "STDSTRINGS", "SEARCHPATH", "DATABASE"]), "\(unlisted)")
            let withData = whole.contents.entries.filter(\.hasData)
            #expect(withData.contains { $0.desc == "BLOBS" }, "\(withData)")
            #expect(withData.filter { $0.desc == "TABLE DATA" }.count >= 6, "\(withData)")
            #expect(withData.allSatisfy { $0.section == CustomDumpScanner.Entry.data })
            // The blocks tile the data area, one per entry with data, in the order of the table of contents.
            #expect(whole.blocks.map(\.dumpId) == withData.map(\.dumpId))
            #expect(whole.blocks.first?.range.lowerBound == whole.contents.tableOfContentsSize)
            #expect(whole.blocks.last?.range.upperBound == whole.size)
            #expect(zip(whole.blocks, whole.blocks.dropFirst()).allSatisfy { $0.range.upperBound == $1.range.lowerBound })
            #expect(whole.contents.entries.first { $0.desc == "TABLE" }?.section == CustomDumpScanner.Entry.preData)
            #expect(whole.contents.entries.first { $0.desc == "INDEX" || $0.desc == "CONSTRAINT" }?.section == CustomDumpScanner.Entry.postData)

            // pg_dump wrote a file it could seek in: the table of contents says where each block starts.
            for block in whole.blocks {
                #expect(whole.contents.entries.first { $0.dumpId == block.dumpId }?.dataOffset == block.range.lowerBound)
            }
            // Halfway through a block, it is the one begun.
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            for block in whole.blocks where block.range.count > 20 {
                let scanner = CustomDumpScanner()
                let middle = Int(block.range.lowerBound) + block.range.count / 2
                _ = bytes[..<middle].withUnsafeBytes { scanner.consume($0) }
                #expect(scanner.opened?.dumpId == block.dumpId && scanner.opened?.start == block.range.lowerBound)
                _ = bytes[middle..<Int(block.range.upperBound)].withUnsafeBytes { scanner.consume($0) }
                #expect(scanner.opened == nil, "block \(block.dumpId) ended")
            }

            for chunk in [1, 7, 4093] {
                let cut = try Self.scan(path, chunk: chunk)
                #expect(cut.blocks == whole.blocks, "cut in \(chunk)-byte pieces")
                #expect(cut.contents.entries == whole.contents.entries)
            }
        }
    }

    @Test("stops, never guesses: a cut dump, another format, an unknown version")
    func refuses() async throws {
        try await PostgresServer.with { server in
            try await Self.seed(server, "refused")
            let folder = try TemporaryDirectory(prefix: "contingency-scan")
            defer { folder.remove() }
            let path = folder.appending("file.dump").path
            _ = try await ProcessRunner.run(
                server.binDir.appendingPathComponent("pg_dump").path,
                ["--format=custom", "--compress=0", "--file=\(path)", server.connectionURL(database: "refused")], requireSuccess: true)
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            let whole = try Self.scan(path)

            func failure(_ bytes: [UInt8]) -> String? {
                let scanner = CustomDumpScanner()
                _ = bytes.withUnsafeBytes { scanner.consume($0) }
                _ = scanner.finish()
                return scanner.failure
            }
            #expect(failure(Array(bytes[..<Int(whole.contents.tableOfContentsSize - 3)]))?.contains("table of contents") == true)
            let inside = Int(whole.blocks[whole.blocks.count / 2].range.lowerBound) + 10
            #expect(failure(Array(bytes[..<inside]))?.contains("inside a data block") == true)
            #expect(failure(Array("--\n-- PostgreSQL database dump\n".utf8))?.contains("not a pg_dump custom-format archive") == true)
            var future = bytes
            future[6] = 40
            #expect(failure(future)?.contains("archive version 1.40") == true)
            var foreignBlock = bytes
            foreignBlock[Int(whole.blocks[0].range.lowerBound)] = 9
            #expect(failure(foreignBlock)?.contains("unknown data block type 9") == true)
        }
    }

    /// A custom-format archive as the scanner reads it, written here so that each field can be made hostile:
    /// version 1.14, `intSize`-byte integers, one TABLE DATA entry (dump ID 1), then `data` as the data area.
    static func crafted(intSize: Int = 4, compression: [UInt8]? = nil, data: [UInt8] = []) -> [UInt8] {
        func integer(_ value: Int) -> [UInt8] {
            [value < 0 ? 1 : 0] + (0..<intSize).map { UInt8(truncatingIfNeeded: abs(value) >> (8 * $0)) }
        }
        func string(_ text: String?) -> [UInt8] {
            guard let text else { return integer(-1) }
            return integer(text.utf8.count) + Array(text.utf8)
        }
        var bytes = Array("PGDMP".utf8) + [1, 14, 0, UInt8(intSize), 8, 1]
        bytes += compression ?? integer(0)
        for _ in 0..<7 { bytes += integer(0) }
        bytes += string("db") + string("15.0") + string("15.0") + integer(1)
        bytes += integer(1) + integer(1) + string("0") + string("0") + string("t") + string("TABLE DATA")
        bytes += integer(3)
        for text in ["", "", "COPY t FROM stdin;\n", "public", "", "", "postgres", "false"] { bytes += string(text) }
        bytes += string(nil) + [2] + [UInt8](repeating: 0, count: 8)
        return bytes + data
    }

    /// `bytes` fed to a new scanner in `chunk`-byte pieces, then finished: the blocks it gave, and the scanner.
    static func feed(_ bytes: [UInt8], chunk: Int) -> (blocks: [CustomDumpScanner.Block], scanner: CustomDumpScanner) {
        let scanner = CustomDumpScanner()
        var blocks: [CustomDumpScanner.Block] = []
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + chunk)
            blocks += bytes[offset..<end].withUnsafeBytes { scanner.consume($0) }
            offset = end
        }
        blocks += scanner.finish()
        return (blocks, scanner)
    }

    /// The scanner's failure for `bytes` fed in `chunk`-byte pieces, or nil when it follows them to the end.
    static func failure(_ bytes: [UInt8], chunk: Int = 1 << 20) -> String? {
        feed(bytes, chunk: chunk).scanner.failure
    }

    @Test("the crafted archive itself is followed to its end: the hostile cases below differ from it in one field")
    func craftedIsValid() {
        for intSize in [4, 8] {
            let block: [UInt8] = [1] + [0, 1] + [UInt8](repeating: 0, count: intSize - 1)  // BLK_DATA, entry 1
            let chunk = [0, 3] + [UInt8](repeating: 0, count: intSize - 1) + Array("abc".utf8)
            let end = [UInt8](repeating: 0, count: 1 + intSize)
            #expect(Self.failure(Self.crafted(intSize: intSize, data: block + chunk + end)) == nil)
        }
    }

    // The crash of issue 16: with 8-byte integers, a sign byte of 1 and a magnitude of 2^63 decoded to Int.min,
    // whose negation trapped (SIGILL) and killed restore-job with its staging files.
    @Test("an integer beyond pg_dump's range is an error, never a trap, in the header, the TOC and a data block",
          arguments: [1, 7, 4096])
    func integerOutOfRange(chunk: Int) {
        let intMin: [UInt8] = [1, 0, 0, 0, 0, 0, 0, 0, 0x80]
        let header = Self.crafted(intSize: 8, compression: intMin)
        #expect(Self.failure(header, chunk: chunk)?.contains("an integer out of range") == true)
        let huge: [UInt8] = [0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        #expect(Self.failure(Self.crafted(intSize: 8, compression: huge), chunk: chunk)?.contains("out of range") == true)
        // 2^31 needs more than a C int: also refused.
        let wide: [UInt8] = [0, 0, 0, 0, 0x80, 0, 0, 0, 0]
        #expect(Self.failure(Self.crafted(intSize: 8, compression: wide), chunk: chunk)?.contains("out of range") == true)
        // In the data area, read by the streaming state machine: the block's entry ID, then a chunk length.
        let block: [UInt8] = [1] + intMin
        #expect(Self.failure(Self.crafted(intSize: 8, data: block), chunk: chunk)?.contains("out of range") == true)
        let length: [UInt8] = [1, 0, 1, 0, 0, 0, 0, 0, 0] + intMin
        #expect(Self.failure(Self.crafted(intSize: 8, data: length), chunk: chunk)?.contains("out of range") == true)
    }

    @Test("chunk lengths read whole or a byte at a time: the same blocks, and the same errors at the same byte")
    func chunkLengthsEitherWay() {
        for intSize in [4, 8] {
            func integer(_ value: Int) -> [UInt8] {
                [value < 0 ? 1 : 0] + (0..<intSize).map { UInt8(truncatingIfNeeded: abs(value) >> (8 * $0)) }
            }
            // A chunk per row, as pg_dump writes them.
            var rows: [UInt8] = [1] + integer(1)
            for number in 0..<300 {
                let row = Array("\(number)\trow \(String(repeating: "x", count: number % 40))\n".utf8)
                rows += integer(row.count) + row
            }
            func scanned(_ bytes: [UInt8], chunk: Int) -> (blocks: [CustomDumpScanner.Block], failure: String?) {
                let fed = Self.feed(bytes, chunk: chunk)
                return (fed.blocks, fed.scanner.failure)
            }
            let valid = Self.crafted(intSize: intSize, data: rows + integer(0))
            let one = scanned(valid, chunk: 1)
            #expect(one.failure == nil && one.blocks.count == 1 && one.blocks.first?.range.upperBound == Int64(valid.count))
            // Negative: refused where it stands. Beyond a C int: refused. Int32.max: valid, but the archive ends first.
            let negative = Self.crafted(intSize: intSize, data: rows + integer(-3) + Array("abc".utf8))
            var beyond = Self.crafted(intSize: intSize, data: rows + integer(0) + [1] + integer(1))
            beyond += intSize == 8 ? [0, 0, 0, 0, 0x80, 0, 0, 0, 0] : [1, 0, 0, 0, 0x80]
            let huge = Self.crafted(intSize: intSize, data: rows + integer(Int(Int32.max)) + Array("abc".utf8))
            for chunk in [7, 4096, 1 << 20] {
                #expect(scanned(valid, chunk: chunk).blocks == one.blocks, "\(chunk)-byte pieces")
                #expect(scanned(valid, chunk: chunk).failure == nil)
                for (bytes, expected) in [(negative, "a negative chunk length at byte"), (beyond, "out of range"),
                                          (huge, "it ends inside a data block")] {
                    let failure = scanned(bytes, chunk: chunk).failure
                    #expect(failure == scanned(bytes, chunk: 1).failure, "\(chunk)-byte pieces")
                    #expect(failure?.contains(expected) == true, "\(failure ?? "no failure")")
                }
            }
        }
    }

    @Test("the largest and smallest C ints are still read")
    func integerLimits() {
        #expect(CustomDumpScanner.decode([0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0]) == Int(Int32.max))
        #expect(CustomDumpScanner.decode([1, 0xff, 0xff, 0xff, 0x7f]) == -Int(Int32.max))
        #expect(CustomDumpScanner.decode([1, 0, 0, 0, 0x80]) == nil)
        #expect(CustomDumpScanner.decode([0, 0, 0, 0, 0, 1, 0, 0, 0]) == nil)
    }
}

import BackupCore
import Foundation
import Testing
import TestSupport

@testable import BackupInterop

@Suite("PostgreSQL's client programs")
struct PostgresToolsTests {
    @Test("session settings go after the operator's PGOPTIONS, spaces and backslashes escaped", arguments: [
        ([:], nil, ""),
        (["default_toast_compression": "lz4"], nil, "-c default_toast_compression=lz4"),
        (["default_toast_compression": "lz4"], "-c geqo=off", "-c geqo=off -c default_toast_compression=lz4"),
        (["b": "x", "a": #"one two\three"#], "", #"-c a=one\ two\\three -c b=x"#),
    ] as [([String: String], String?, String)])
    func sessionOptions(settings: [String: String], given: String?, expected: String) {
        #expect(PostgresTools.sessionOptions(settings, after: given) == expected)
    }

    /// pg_restore --jobs goes straight to a table's data only when the dump's table of contents says where it
    /// starts; pg_dump can record that only when it writes a file it can seek in, not a pipe.
    @Test("pg_dump into a file records where each table's data starts; into a pipe it cannot")
    func dataOffsets() async throws {
        try await PostgresServer.with { server in
            try await server.seedSampleData(database: "offsets")
            let connection = try ConnectionParameters(DatabaseSettings(url: server.connectionURL(database: "offsets")))
            let tools = PostgresTools(binDirectory: server.binDir.path)
            let folder = try TemporaryDirectory(prefix: "contingency-dump")
            defer { folder.remove() }

            let filePath = folder.appending("file.dump").path
            try #require(try await tools.dump(toFile: filePath, connection: connection).succeeded)
            let fromFile = try CustomDumpTOC(Array(try Data(contentsOf: URL(fileURLWithPath: filePath))))
            #expect(fromFile.tableData.count >= 5)
            #expect(fromFile.tableData.allSatisfy { $0.offsetFlag == CustomDumpTOC.offsetSet }, "\(fromFile.tableData)")

            let pipePath = folder.appending("pipe.dump").path
            let sink = try LocalFile(writing: pipePath)
            try #require(try await tools.dump(into: sink, connection: connection).succeeded)
            sink.close()
            let fromPipe = try CustomDumpTOC(Array(try Data(contentsOf: URL(fileURLWithPath: pipePath))))
            #expect(fromPipe.tableData.map(\.tag) == fromFile.tableData.map(\.tag))
            #expect(fromPipe.tableData.allSatisfy { $0.offsetFlag == CustomDumpTOC.offsetNotSet })
        }
    }
}

/// The table of contents of a pg_dump custom-format archive (format 1.14, PostgreSQL 14 and 15), read as far as
/// each entry's data offset: pg_backup_archiver.c's WriteHead/WriteToc and pg_backup_custom.c's WriteExtraToc.
/// Written for this test: no library reads the format.
struct CustomDumpTOC {
    struct Entry: CustomStringConvertible {
        let tag: String
        let kind: String
        let offsetFlag: UInt8
        var description: String { "\(kind) \(tag): offset flag \(offsetFlag)" }
    }

    static let offsetNotSet: UInt8 = 1
    static let offsetSet: UInt8 = 2

    let entries: [Entry]
    var tableData: [Entry] { entries.filter { $0.kind == "TABLE DATA" } }

    init(_ bytes: [UInt8]) throws {
        var position = 0
        func byte() throws -> UInt8 {
            guard position < bytes.count else { throw ContingencyError.failed("the dump ends inside its table of contents") }
            defer { position += 1 }
            return bytes[position]
        }
        guard bytes.starts(with: Array("PGDMP".utf8)) else { throw ContingencyError.failed("not a custom-format dump") }
        position = 5
        let version = (try byte(), try byte(), try byte())
        guard version.0 == 1, version.1 == 14 else { throw ContingencyError.failed("format \(version) is not 1.14") }
        let intSize = Int(try byte())
        let offSize = Int(try byte())
        _ = try byte()  // format
        func int() throws -> Int {
            let negative = try byte() != 0
            var value = 0
            for shift in 0..<intSize { value |= Int(try byte()) << (8 * shift) }
            return negative ? -value : value
        }
        func string() throws -> String? {
            let length = try int()
            guard length >= 0 else { return nil }
            guard position + length <= bytes.count else { throw ContingencyError.failed("a string runs past the end") }
            defer { position += length }
            return String(decoding: bytes[position..<position + length], as: UTF8.self)
        }
        _ = try int()  // compression
        for _ in 0..<7 { _ = try int() }  // creation time
        for _ in 0..<3 { _ = try string() }  // database, server and pg_dump versions
        var entries: [Entry] = []
        for _ in 0..<(try int()) {
            _ = try int()  // dump id
            _ = try int()  // has a data dumper
            _ = try string()  // table oid
            _ = try string()  // oid
            let tag = try string() ?? ""
            let kind = try string() ?? ""
            _ = try int()  // section
            for _ in 0..<7 { _ = try string() }  // definition, drop, copy, namespace, tablespace, access method, owner
            _ = try string()  // "false" (with oids)
            while try string() != nil {}  // dependencies
            let flag = try byte()
            position += offSize
            entries.append(Entry(tag: tag, kind: kind, offsetFlag: flag))
        }
        self.entries = entries
    }
}

import BackupCore
import BackupInterop
import BackupStorage
import Foundation
import Logging
import TestSupport
import Testing

@testable import BackupKit

/// A dump restored as it arrives, when its layout is followed only in part or not at all: what was not
/// followed is restored from the whole staged dump, and the result is the same database.
@Suite("Restoring a dump as it is read, when it cannot be followed")
struct StreamedDumpRestoreTests {
    enum Seen: String, CaseIterable, Sendable {
        /// Every byte: the normal case.
        case all
        /// Only the first half: the blocks in it are restored as they come, the rest once the dump is staged.
        case half
        /// A table of contents too large to follow: the whole dump once it is staged.
        case none
    }

    @Test(
        "the database restored is the source's, whatever part of the dump was followed, sealed or plain",
        arguments: Seen.allCases, [false, true])
    func restores(seen: Seen, sealed: Bool) async throws {
        try await PostgresServer.with { server in
            try await server.seedSampleData(database: "source")
            _ = try await server.psql(
                "CREATE TABLE wide AS SELECT g AS id, repeat(md5(g::text), 40) AS body FROM generate_series(1, 20000) g; CREATE INDEX ON wide (id)",
                database: "source")
            let folder = try TemporaryDirectory(prefix: "contingency-streamed")
            defer { folder.remove() }
            let tools = PostgresTools(binDirectory: server.binDir.path)
            let source = try ConnectionParameters(DatabaseSettings(url: server.connectionURL(database: "source")))
            let path = folder.appending("file.dump").path
            let dumped = try await tools.dump(toFile: path, connection: source)
            try #require(dumped.succeeded, "pg_dump: \(dumped)")
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))

            let dump = try StagedDump(
                staging: try LocalStaging(creating: folder.appending("staging").path), name: "a.dump", sealed: sealed)
            let sink = try dump.sink()
            try bytes.withUnsafeBytes { try sink.write($0) }
            try dump.finish()
            let arrival = DumpArrival(
                checkedBlocks: false, tableOfContentsLimit: seen == .none ? 100 : CustomDumpScanner.tableOfContentsLimit)
            let shown = seen == .half ? bytes.count / 2 : bytes.count
            bytes[..<shown].withUnsafeBytes { arrival.observe($0) }
            arrival.finish()

            try await server.createDatabase("target")
            let logged = LogCollector()
            try await StreamedDumpRestore(
                tools: tools, dump: dump, arrival: arrival,
                connection: try ConnectionParameters(DatabaseSettings(url: server.connectionURL(database: "postgres"))),
                database: "target", applicationName: "contingency-test", ownership: true, settings: [:], jobs: 2,
                logger: logged.logger
            ).run()
            #expect(try await server.snapshot(database: "target") == (try await server.snapshot(database: "source")))
            let lines = logged.lines
            switch seen {
            case .all:
                #expect(!lines.contains { $0.contains("not followed") }, "\(lines)")
                #expect(lines.contains { $0.contains("Restored the data of") }, "\(lines)")
            case .half:
                #expect(
                    lines.contains { $0.contains("not followed further") && $0.contains("the rest is restored") },
                    "\(lines)")
                #expect(lines.contains { $0.contains("Restored the data of") }, "\(lines)")
            case .none:
                #expect(lines.contains { $0.contains("it is restored whole") }, "\(lines)")
                #expect(!lines.contains { $0.contains("Restored the data of") }, "\(lines)")
            }
            let indexes = try await server.query(
                "SELECT count(*) FROM pg_indexes WHERE tablename = 'wide'", database: "target")
            #expect(indexes == [["1"]])
        }
    }
}

/// Log lines kept in memory, for a test to read.
struct LogCollector {
    final class Box: @unchecked Sendable {
        let lock = NSLock()
        var lines: [String] = []
    }

    struct Handler: LogHandler {
        let box: Box
        var logLevel: Logger.Level = .info
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            box.lock.withLock { box.lines.append("\(event.message)") }
        }
    }

    let box = Box()
    var logger: Logger { Logger(label: "test") { _ in Handler(box: box) } }
    var lines: [String] { box.lock.withLock { box.lines } }
}

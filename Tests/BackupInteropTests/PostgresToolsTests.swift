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

    /// A setting marked secret that is missing from `withheld` reaches every child (pg_dump, the hooks); PGPASSWORD
    /// alone is passed on on purpose, to PostgreSQL's own programs.
    @Test("every secret setting, and its _FILE, is withheld from child processes")
    func secretsWithheld() {
        let all =
            BackupConfiguration.settings + RestoreConfiguration.settings + DrillConfiguration.settings
            + SidecarConfiguration.settings + CleanupConfiguration.settings + RollbackConfiguration.settings
        for setting in all where setting.secret && setting.name != "PGPASSWORD" {
            #expect(PostgresTools.withheld.contains(setting.name), "\(setting.name)")
            #expect(PostgresTools.withheld.contains(setting.name + "_FILE") || setting.name == "AWS_SESSION_TOKEN", "\(setting.name)_FILE")
        }
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
            let fromFile = try CustomDumpScannerTests.scan(filePath).contents.entries.filter { $0.desc == "TABLE DATA" }
            #expect(fromFile.count >= 5)
            #expect(fromFile.allSatisfy { $0.dataOffsetKnown }, "\(fromFile)")

            let pipePath = folder.appending("pipe.dump").path
            let sink = try LocalFile(writing: pipePath)
            try #require(try await tools.dump(into: sink, connection: connection).succeeded)
            sink.close()
            let fromPipe = try CustomDumpScannerTests.scan(pipePath).contents.entries.filter { $0.desc == "TABLE DATA" }
            #expect(fromPipe.map(\.tag) == fromFile.map(\.tag))
            #expect(fromPipe.allSatisfy { $0.hasData && !$0.dataOffsetKnown })
        }
    }
}

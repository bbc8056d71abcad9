import BackupCore
import BackupInterop
import BackupStorage
import Foundation
import Logging
import TestSupport
import Testing

@testable import BackupKit

/// A large table's rows loaded through several connections at once: the same rows as pg_restore loads, whatever
/// they hold, in any encoding, sealed or plain; a bad row or a cancellation stops every connection.
@Suite("A large table loaded through several connections")
struct SplitTableLoadTests {
    /// Rows that test the text COPY format: escaped newlines, tabs, carriage returns and backslashes, the end
    /// marker as a value, empty strings and NULLs, bytea, non-ASCII letters, XML fragments (not documents), a
    /// generated column (left out of the COPY's column list), values larger than a segment and one larger than a
    /// long row (sent in pieces).
    static func makeTable(_ server: PostgresServer, database: String, latin1: Bool) async throws {
        let letters = latin1 ? "chr(233) || chr(252)" : "'é€😀'"
        _ = try await server.psql(
            """
            CREATE TABLE odd (
                id int NOT NULL, body text, raw bytea, doubled int GENERATED ALWAYS AS (id * 2) STORED,
                fragment xml, CHECK (id > 0));
            INSERT INTO odd (id, body, raw, fragment)
            SELECT g,
                   CASE g % 7
                       WHEN 0 THEN E'line\\nbreak\\ttab\\rreturn\\\\back'
                       WHEN 1 THEN '\\.'
                       WHEN 2 THEN ''
                       WHEN 3 THEN NULL
                       WHEN 4 THEN \(letters) || g
                       WHEN 5 THEN E'\\\\.\\n\\\\.'
                       ELSE repeat(md5(g::text), 3)
                   END,
                   CASE WHEN g % 5 = 0 THEN NULL ELSE decode(md5(g::text), 'hex') END,
                   CASE WHEN g % 11 = 0 THEN ('text, not a document <a/><b>' || g || '</b>')::xml END
            FROM generate_series(1, 60000) g;
            INSERT INTO odd (id, body)
                SELECT 60000 + g, repeat(chr(65 + g), CASE WHEN g = 6 THEN 9000000 ELSE 1500000 END)
                FROM generate_series(1, 6) g;
            CREATE INDEX odd_body ON odd (md5(body));
            CREATE TABLE little (id int PRIMARY KEY, note text);
            INSERT INTO little SELECT g, 'note ' || g FROM generate_series(1, 50) g;
            CREATE TABLE ordered (at timestamptz);
            INSERT INTO ordered SELECT '2026-01-01'::timestamptz + g * interval '1 second' FROM generate_series(1, 1000) g;
            CREATE INDEX ordered_at ON ordered USING brin (at);
            """, database: database)
    }

    /// The source dump staged (sealed or not) and fully observed, as a restore stages it.
    static func stage(_ path: String, in folder: TemporaryDirectory, sealed: Bool) throws -> (StagedDump, DumpArrival) {
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let dump = try StagedDump(
            staging: try LocalStaging(creating: folder.appending("staging-\(UUID().uuidString)").path), name: "a.dump",
            sealed: sealed)
        let sink = try dump.sink()
        try bytes.withUnsafeBytes { try sink.write($0) }
        try dump.finish()
        let arrival = DumpArrival(checkedBlocks: false)
        bytes.withUnsafeBytes { arrival.observe($0) }
        arrival.finish()
        return (dump, arrival)
    }

    /// A server whose database "source" holds `makeTable`'s tables (or what `make` puts there instead), dumped as
    /// backup-job stages it (custom format, uncompressed), for `body`: the server, its tools, a scratch folder
    /// (removed after) and the dump's path.
    static func withDumpedSource(
        latin1: Bool = false, make: ((PostgresServer) async throws -> Void)? = nil,
        _ body: (PostgresServer, PostgresTools, TemporaryDirectory, String) async throws -> Void
    ) async throws {
        try await PostgresServer.with { server in
            try await Self.createDatabase(server, "source", latin1: latin1)
            if let make {
                try await make(server)
            } else {
                try await Self.makeTable(server, database: "source", latin1: latin1)
            }
            let folder = try TemporaryDirectory(prefix: "contingency-split")
            defer { folder.remove() }
            let tools = PostgresTools(binDirectory: server.binDir.path)
            let path = folder.appending("file.dump").path
            let dumped = try await tools.dump(
                toFile: path,
                connection: try ConnectionParameters(DatabaseSettings(url: server.connectionURL(database: "source"))))
            try #require(dumped.succeeded, "pg_dump: \(dumped)")
            try await body(server, tools, folder, path)
        }
    }

    /// A table of `rows` rows of 64 characters with a primary key added to the application's database, then a
    /// backup-job; returns the application as backed up.
    static func backUp(_ app: ApplicationFixture, withTable table: String, rows: Int) async throws -> ApplicationSnapshot {
        _ = try await app.server.psql(
            """
            CREATE TABLE \(table) AS SELECT g AS id, md5(g::text) || md5((g + 1)::text) AS body
                FROM generate_series(1, \(rows)) g;
            ALTER TABLE \(table) ADD PRIMARY KEY (id);
            """, database: app.database, timeout: .seconds(300))
        let before = try await app.snapshot()
        let backup = try await app.run("backup-job")
        try #require(backup.succeeded, "\(backup)")
        return before
    }

    /// A restore of `dump` as it arrives into `database` on two connections, tables over 1 MiB split.
    static func restore(
        _ dump: StagedDump, _ arrival: DumpArrival, into database: String, on server: PostgresServer, tools: PostgresTools,
        logger: Logger
    ) throws -> StreamedDumpRestore {
        var restore = StreamedDumpRestore(
            tools: tools, dump: dump, arrival: arrival,
            connection: try ConnectionParameters(DatabaseSettings(url: server.connectionURL(database: "postgres"))),
            database: database, applicationName: "contingency-test", ownership: true, settings: [:], jobs: 2,
            logger: logger)
        restore.splitSize = 1 << 20
        return restore
    }

    static func createDatabase(_ server: PostgresServer, _ name: String, latin1: Bool) async throws {
        _ = try await server.psql(
            latin1
                ? "CREATE DATABASE \(name) ENCODING 'LATIN1' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'"
                : "CREATE DATABASE \(name)")
    }

    /// `makeTable`'s `odd` table dumped, and a database "split" holding only the schema: for loads started by hand.
    struct OddTable {
        let path: String
        let dumpId: Int
        let range: Range<Int64>
        let copy: StreamedRestorePlan.SplitCopy
        let maintenance: ConnectionParameters
        let server: PostgresServer

        /// A load of `odd` into "split", its sessions named `name`.
        func load(_ name: String, connections: Int) -> SplitTableLoad {
            SplitTableLoad(
                source: { [path, range] _ in
                    let file = try LocalFile(reading: path)
                    try file.seek(to: range.lowerBound)
                    return SliceSource(file, length: Int64(range.count))
                },
                dumpId: dumpId, copy: copy, connection: maintenance, database: "split", applicationName: name,
                settings: [:], connections: connections)
        }

        /// A session holding `odd` locked in "split" until it rolls back: COPYs into it wait.
        func hold() throws -> PostgresConnection {
            let holder = try PostgresConnection(
                try ConnectionParameters(DatabaseSettings(url: server.connectionURL(database: "split"))))
            try holder.query("BEGIN")
            try holder.query("LOCK TABLE public.odd IN ACCESS EXCLUSIVE MODE")
            return holder
        }

        /// How many of the COPYs of sessions named `name` wait on a lock.
        func waiting(_ name: String) async throws -> String {
            try await server.query(
                """
                SELECT count(*) FROM pg_stat_activity
                WHERE application_name = '\(name)' AND wait_event_type = 'Lock' AND query LIKE 'COPY %'
                """
            ).first?.first ?? ""
        }
    }

    static func withOddTable(_ body: (PostgresServer, OddTable) async throws -> Void) async throws {
        try await Self.withDumpedSource { server, tools, folder, path in
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            let scanner = CustomDumpScanner()
            let blocks = bytes.withUnsafeBytes { scanner.consume($0) } + scanner.finish()
            let contents = try #require(scanner.contents)
            let odd = try #require(contents.entries.first { $0.desc == "TABLE DATA" && $0.tag == "odd" })
            let range = try #require(blocks.first { $0.dumpId == odd.dumpId }?.range)
            let statement = try #require(odd.copyStatement.flatMap(CopyStatement.init(parsing:)))
            let maintenance = try ConnectionParameters(
                DatabaseSettings(url: server.connectionURL(database: "postgres")))
            try await server.createDatabase("split")
            let list = folder.appending("schema.list").path
            try Data(StreamedRestorePlan.schemaEntries(contents).map { "\($0)\n" }.joined().utf8)
                .write(to: URL(fileURLWithPath: list))
            let schema = try await tools.restore(
                .file(path), connection: maintenance, database: "split", applicationName: "contingency-test",
                mode: .parallel(jobs: 1), list: list)
            try #require(schema.succeeded, "\(schema)")
            let copy = StreamedRestorePlan.SplitCopy(
                statement: statement, encoding: try #require(contents.encoding), intSize: contents.intSize)
            try await body(
                server,
                OddTable(
                    path: path, dumpId: odd.dumpId, range: range, copy: copy, maintenance: maintenance, server: server))
        }
    }

    @Test(
        "the rows split across connections are pg_restore's, in UTF-8 or Latin-1, plain or sealed",
        arguments: [false, true], [false, true])
    func sameRows(latin1: Bool, sealed: Bool) async throws {
        try await Self.withDumpedSource(latin1: latin1) { server, tools, folder, path in
            let maintenance = try ConnectionParameters(DatabaseSettings(url: server.connectionURL(database: "postgres")))

            // pg_restore alone, the reference.
            try await Self.createDatabase(server, "plain", latin1: latin1)
            let plain = try await tools.restore(
                .file(path), connection: maintenance, database: "plain", applicationName: "contingency-test",
                mode: .parallel(jobs: 2))
            try #require(plain.succeeded, "pg_restore: \(plain)")

            // pg_restore's sessions accept XML fragments whatever the server's xmloption; so must the split's.
            // (One statement per call: ALTER SYSTEM cannot run in psql -c's one transaction.)
            _ = try await server.psql("ALTER SYSTEM SET xmloption = 'document'")
            _ = try await server.psql("SELECT pg_reload_conf()")

            // Every table large enough to split (1 byte), with connections to spare.
            let (dump, arrival) = try Self.stage(path, in: folder, sealed: sealed)
            try await Self.createDatabase(server, "split", latin1: latin1)
            let logged = LogCollector()
            var restore = StreamedDumpRestore(
                tools: tools, dump: dump, arrival: arrival, connection: maintenance, database: "split",
                applicationName: "contingency-test", ownership: true, settings: [:], jobs: 8, logger: logged.logger)
            restore.splitSize = 1
            try await restore.run()

            let reference = try await server.snapshot(database: "plain")
            #expect(try await server.snapshot(database: "split") == reference)
            #expect(try await server.snapshot(database: "source") == reference)
            let lines = logged.lines
            // Eight connections: the other tables are small, and do not keep any from odd.
            #expect(
                lines.contains { $0.contains("Loading the data of \"public\".\"odd\"") && $0.contains("through 8 connections") },
                "\(lines)")
            #expect(lines.contains { $0.contains("60006 rows") }, "\(lines)")
            // A table with a BRIN index keeps its rows' order: pg_restore loads it.
            #expect(!lines.contains { $0.contains("Loading the data of \"public\".\"ordered\"") }, "\(lines)")
            let correlation = try await server.query(
                "SELECT bool_and(a.at < b.at) FROM ordered a JOIN ordered b ON b.ctid = (SELECT min(ctid) FROM ordered c WHERE c.ctid > a.ctid)",
                database: "split")
            #expect(correlation == [["t"]], "rows of ordered out of their order")
            // Several connections loaded rows: each COPY is its own transaction.
            let writers = try await server.query("SELECT count(DISTINCT xmin::text) FROM odd", database: "split")
            #expect(Int(writers.first?.first ?? "") ?? 0 > 1, "\(writers)")
            // The index and the constraint came after the data, as with pg_restore.
            let indexes = try await server.query("SELECT indexname FROM pg_indexes WHERE tablename = 'odd'", database: "split")
            #expect(indexes == [["odd_body"]])
            // The bytes of a non-ASCII value are the source's, not re-encoded twice.
            let letters = try await server.query(
                "SELECT encode(convert_to(body, 'UTF8'), 'hex') FROM odd WHERE id = 4", database: "split")
            let expected = try await server.query(
                "SELECT encode(convert_to(body, 'UTF8'), 'hex') FROM odd WHERE id = 4", database: "source")
            #expect(letters == expected)
        }
    }

    @Test("a row the server refuses fails the load with the server's message; no connection is left behind")
    func refusedRow() async throws {
        try await Self.withDumpedSource { server, tools, folder, path in
            // Row 43210's id made "x3210": not an integer. (pg_dump writes each row as a chunk of its own, after
            // its length, whose last byte is 0 here.)
            var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            let row = Array("\u{0}43210\t".utf8)
            let at = try #require(bytes.indices.first { bytes[$0..<min(bytes.count, $0 + row.count)].elementsEqual(row) })
            bytes[at + 1] = UInt8(ascii: "x")
            try Data(bytes).write(to: URL(fileURLWithPath: path))

            let (dump, arrival) = try Self.stage(path, in: folder, sealed: false)
            try await server.createDatabase("split")
            var restore = StreamedDumpRestore(
                tools: tools, dump: dump, arrival: arrival,
                connection: try ConnectionParameters(DatabaseSettings(url: server.connectionURL(database: "postgres"))),
                database: "split", applicationName: "contingency-split-test", ownership: true, settings: [:], jobs: 8,
                logger: LogCollector().logger)
            restore.splitSize = 1
            let error = try await #require(throws: ContingencyError.self) { try await restore.run() }
            #expect(error.message.contains("loading the data of odd"), "\(error)")
            #expect(error.message.contains("invalid input syntax for type integer"), "\(error)")
            try await eventually("the load's sessions to end") {
                try await server.query(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'contingency-split-test'") == [["0"]]
            }
        }
    }

    @Test("data going on after the end marker is refused before the table is loaded in part elsewhere")
    func afterMarker() async throws {
        try await Self.withDumpedSource(make: { server in
            _ = try await server.psql(
                "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 1000)", database: "source")
        }) { server, tools, folder, path in
            // The row "500" becomes the marker and an empty line (its chunk keeps its 4 bytes): rows 501 to 1000
            // come after it.
            var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            let row = Array("\u{0}500\n".utf8)
            let at = try #require(bytes.indices.first { bytes[$0..<min(bytes.count, $0 + row.count)].elementsEqual(row) })
            bytes.replaceSubrange(at + 1..<at + 5, with: Array("\\.\n\n".utf8))
            try Data(bytes).write(to: URL(fileURLWithPath: path))

            let (dump, arrival) = try Self.stage(path, in: folder, sealed: false)
            try await server.createDatabase("split")
            var restore = StreamedDumpRestore(
                tools: tools, dump: dump, arrival: arrival,
                connection: try ConnectionParameters(DatabaseSettings(url: server.connectionURL(database: "postgres"))),
                database: "split", applicationName: "contingency-test", ownership: true, settings: [:], jobs: 2,
                logger: LogCollector().logger)
            restore.splitSize = 1
            let error = try await #require(throws: ContingencyError.self) { try await restore.run() }
            #expect(error.message.contains("after its end-of-data marker"), "\(error)")
        }
    }

    @Test("restore-job splits a table over 64 MiB by default, and builds its index with parallel workers the server's own setting would not give")
    func byDefault() async throws {
        try await ApplicationFixture.with(uploadFiles: 1) { app in
            // The server's own settings would build indexes with no worker; trace_sort logs each sort's workers
            // and memory.
            // (One statement per call: ALTER SYSTEM cannot run in psql -c's one transaction.)
            for statement in [
                "ALTER SYSTEM SET max_parallel_maintenance_workers = 0", "ALTER SYSTEM SET trace_sort = on",
                "SELECT pg_reload_conf()",
            ] {
                _ = try await app.server.psql(statement)
            }
            let before = try await Self.backUp(app, withTable: "big", rows: 1_000_000)
            let restore = try await app.run("restore-job", environment: ["RESTORE_KEEP_OLD": "false"])
            try #require(restore.succeeded, "\(restore)")
            #expect(
                restore.stdout.contains("Loading the data of \"public\".\"big\"") && restore.stdout.contains("through 2 connections"),
                "\(restore.stdout)")
            #expect(restore.stdout.contains("1000000 rows"), "\(restore.stdout)")
            #expect(try await app.snapshot() == before)
            let writers = try await app.server.query("SELECT count(DISTINCT xmin::text) FROM big", database: app.database)
            #expect(Int(writers.first?.first ?? "") ?? 0 > 1, "\(writers) \(restore.stdout)")
            // The primary key's sort: 256 MB, and a parallel worker's sort beside the leader's.
            let log = app.server.logContents
            #expect(log.contains("workMem = 262144"), "no index sort with the restore's maintenance_work_mem")
            #expect(log.contains("sort of worker 0 ended"), "no index sort by a parallel worker")

            // RESTORE_SPLIT_TABLE_SIZE=0: every table by pg_restore, the same database.
            let unsplit = try await app.run(
                "restore-job", environment: ["RESTORE_KEEP_OLD": "false", "RESTORE_SPLIT_TABLE_SIZE": "0"])
            try #require(unsplit.succeeded, "\(unsplit)")
            #expect(!unsplit.stdout.contains("Loading the data of"), "\(unsplit.stdout)")
            #expect(try await app.snapshot() == before)
            let bad = try await app.run("restore-job", environment: ["RESTORE_SPLIT_TABLE_SIZE": "big"])
            #expect(!bad.succeeded)
            #expect(bad.stderr.contains("RESTORE_SPLIT_TABLE_SIZE=big is not a size"), "\(bad.stderr)")
        }
    }

    @Test(
        "the last large table's load begins while its block is still arriving and loads the source's rows; sealed, once it is whole",
        arguments: [false, true])
    func followsItsBlock(sealed: Bool) async throws {
        try await Self.withDumpedSource(make: { server in
            _ = try await server.psql(
                """
                CREATE TABLE aa_small AS SELECT g AS id FROM generate_series(1, 100) g;
                CREATE TABLE zz_big AS SELECT g AS id, md5(g::text) AS body FROM generate_series(1, 200000) g;
                ALTER TABLE zz_big ADD PRIMARY KEY (id);
                """, database: "source")
        }) { server, tools, folder, path in
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            // Where zz_big's block is: the last of the dump.
            let scanner = CustomDumpScanner()
            let blocks = bytes.withUnsafeBytes { scanner.consume($0) } + scanner.finish()
            let contents = try #require(scanner.contents)
            let big = try #require(contents.entries.first { $0.desc == "TABLE DATA" && $0.tag == "zz_big" })
            let block = try #require(blocks.first { $0.dumpId == big.dumpId })
            #expect(block.range.upperBound == Int64(bytes.count))
            let dump = try StagedDump(
                staging: try LocalStaging(creating: folder.appending("staging").path), name: "a.dump", sealed: sealed,
                followed: StagedDumpTests.recorded(bytes))
            let arrival = try #require(dump.arrival)
            try await Self.createDatabase(server, "target", latin1: false)
            let logged = LogCollector()
            let restore = try Self.restore(dump, arrival, into: "target", on: server, tools: tools, logger: logged.logger)
            let restoring = Task { try await restore.run() }
            defer { restoring.cancel() }

            // The dump up to the middle of zz_big's block, in the archive reader's pieces (sealed: all of it).
            let sink = try dump.sink()
            let middle = sealed ? bytes.count : Int(block.range.lowerBound) + block.range.count / 2
            for start in stride(from: 0, to: middle, by: 100_000) {
                try bytes[start..<min(start + 100_000, middle)].withUnsafeBytes { try sink.write($0) }
            }
            if !sealed {
                try await eventually("zz_big's load to begin as its block arrives") {
                    logged.lines.contains { $0.contains("Loading the data of \"public\".\"zz_big\"") && $0.contains("as it is staged") }
                }
                // Its COPYs take rows while the rest of the block is not even written.
                try await eventually("rows of zz_big in the new database's COPYs") {
                    let copied = try await server.query(
                        "SELECT coalesce(sum(tuples_processed), 0) FROM pg_stat_progress_copy WHERE datname = 'target'")
                    return (Int(copied.first?.first ?? "") ?? 0) > 0
                }
            }
            for start in stride(from: middle, to: bytes.count, by: 100_000) {
                try bytes[start..<min(start + 100_000, bytes.count)].withUnsafeBytes { try sink.write($0) }
            }
            try dump.finish()
            try await restoring.value
            #expect(try await server.snapshot(database: "target") == (try await server.snapshot(database: "source")))
            #expect(logged.lines.contains { $0.contains("Restored the data of zz_big") && $0.contains("200000 rows") }, "\(logged.lines)")
            // Sealed, split all the same, once its block is whole.
            let loading = logged.lines.filter { $0.contains("Loading the data of \"public\".\"zz_big\"") }
            #expect(loading.count == 1 && loading.allSatisfy { $0.contains("as it is staged") != sealed }, "\(logged.lines)")
            // Plain, zz_big's block was given back (as it was read, and whole once loaded), as was aa_small's: their
            // bytes are no longer on disk; the table of contents is.
            #expect(dump.isWhole == sealed)
            if !sealed {
                let staged = Array(try Data(contentsOf: URL(fileURLWithPath: dump.file.path)))
                #expect(staged.count == bytes.count)
                let toc = Int(contents.tableOfContentsSize)
                let tocKept = staged[..<toc] == bytes[..<toc]
                #expect(tocKept)
                for each in blocks {
                    #expect(
                        staged[Int(each.range.lowerBound)..<Int(each.range.upperBound)].allSatisfy { $0 == 0 },
                        "the block of entry \(each.dumpId) is still in the file")
                }
            }
        }
    }

    @Test(
        "a plain dump gives back each table's block once it is loaded, its table of contents kept; a sealed one, or one that does not record where its blocks start (pg_dump into a pipe), stays whole",
        arguments: ["file", "pipe", "sealed"])
    func releasesLoadedBlocks(kind: String) async throws {
        try await Self.withDumpedSource { server, tools, folder, path in
            var dumpPath = path
            if kind == "pipe" {
                dumpPath = folder.appending("pipe.dump").path
                let sink = try LocalFile(writing: dumpPath)
                let dumped = try await tools.dump(
                    into: sink, connection: try ConnectionParameters(DatabaseSettings(url: server.connectionURL(database: "source"))))
                try #require(dumped.succeeded, "pg_dump: \(dumped)")
                sink.close()
            }
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: dumpPath)))
            let (dump, arrival) = try Self.stage(dumpPath, in: folder, sealed: kind == "sealed")
            try await Self.createDatabase(server, "target", latin1: false)
            let logged = LogCollector()
            try await Self.restore(dump, arrival, into: "target", on: server, tools: tools, logger: logged.logger).run()
            #expect(try await server.snapshot(database: "target") == (try await server.snapshot(database: "source")))
            #expect(dump.isWhole == (kind != "file"), "\(logged.lines)")
            guard kind != "sealed" else { return }

            let scanner = CustomDumpScanner()
            let blocks = bytes.withUnsafeBytes { scanner.consume($0) } + scanner.finish()
            let contents = try #require(scanner.contents)
            #expect(blocks.count == contents.entries.filter(\.hasData).count && blocks.count >= 3)
            let staged = Array(try Data(contentsOf: URL(fileURLWithPath: dump.file.path)))
            #expect(staged.count == bytes.count)
            let toc = Int(contents.tableOfContentsSize)
            let tocKept = staged[..<toc] == bytes[..<toc]
            #expect(tocKept)
            for block in blocks {
                let range = Int(block.range.lowerBound)..<Int(block.range.upperBound)
                if kind == "file" {
                    #expect(staged[range].allSatisfy { $0 == 0 }, "the block of entry \(block.dumpId) is still in the file")
                } else {
                    let kept = staged[range] == bytes[range]
                    #expect(kept, "the block of entry \(block.dumpId) changed")
                }
            }
            // Given back, not only zeroed: the file takes less room than the blocks.
            var status = stat()
            try #require(stat(dump.file.path, &status) == 0)
            let allocated = Int64(status.st_blocks) * 512
            if kind == "file" {
                #expect(allocated < Int64(bytes.count) / 4, "\(allocated) bytes allocated for a dump of \(bytes.count)")
            } else {
                #expect(allocated >= Int64(bytes.count), "\(allocated) bytes allocated for a dump of \(bytes.count)")
            }
        }
    }

    @Test("restored in place (another session stays connected, RESTORE_TERMINATE_CONNECTIONS off) after the new database's load gave back the staged dump: the dump is read from the archive again")
    func inPlaceAfterRelease() async throws {
        try await ApplicationFixture.with(uploadFiles: 2) { app in
            let before = try await Self.backUp(app, withTable: "zz_big", rows: 100_000)
            _ = try await app.server.psql("DELETE FROM zz_big WHERE id % 3 = 0", database: app.database)

            let client = try await IdleSession(server: app.server, database: app.database)
            defer { client.end() }
            let restore = try await app.run("restore-job", environment: ["RESTORE_SPLIT_TABLE_SIZE": "1MiB"])
            try #require(restore.succeeded, "\(restore)")
            #expect(restore.stdout.contains("Loading the data of \"public\".\"zz_big\""), "\(restore.stdout)")
            #expect(restore.stdout.contains("in place, in one transaction"), "\(restore.stdout)")
            #expect(
                restore.stdout.contains("Reading database.dump from the archive again: its staged copy was freed"),
                "\(restore.stdout)")
            #expect(restore.stdout.contains("Read and verified visual_backup_"), "\(restore.stdout)")
            let after = try await app.snapshot()
            #expect(after == before, "\(restore.stdout)")
        }
    }

    @Test("a load cancelled while its connections wait on the server stops at once and leaves no session")
    func cancelledWhileWaiting() async throws {
        try await Self.withOddTable { server, table in
            // The table held by another session before the load starts: its COPYs wait in libpq.
            let holder = try table.hold()

            let load = table.load("contingency-cancel-test", connections: 3)
            let loading = Task { try await load.run() }
            try await eventually("the load's COPYs to wait on the lock") {
                try await table.waiting("contingency-cancel-test") == "3"
            }
            loading.cancel()
            let outcome = await loading.result
            if case .failure(let error as ContingencyError) = outcome {
                #expect(error.isCancellation, "\(error)")
            } else {
                Issue.record("the load did not stop as cancelled: \(outcome)")
            }
            try await eventually("the load's sessions to end") {
                try await server.query(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'contingency-cancel-test'") == [["0"]]
            }
            try holder.query("ROLLBACK")
            #expect(try await server.query("SELECT count(*) FROM odd", database: "split") == [["0"]])
        }
    }

    @Test("a load begun on one connection takes more while it runs, each gets rows; before it runs, they start with it")
    func growsWhileRunning() async throws {
        try await Self.withOddTable { server, table in
            let rows = "SELECT count(*), md5(string_agg(odd::text, '|' ORDER BY id)) FROM odd"
            let reference = try await server.query(rows, database: "source")

            // Held by another session: the first COPY waits, the reader fills its queue and waits for room, so
            // every row is still to be handed out when the two connections are added.
            let holder = try table.hold()
            let growing = table.load("contingency-grow-test", connections: 1)
            let loading = Task { try await growing.run() }
            try await eventually("the first COPY to wait on the lock") {
                try await table.waiting("contingency-grow-test") == "1"
            }
            #expect(growing.add(connections: 2) == (2, 3))
            try await eventually("the added COPYs to start") {
                try await table.waiting("contingency-grow-test") == "3"
            }
            try holder.query("ROLLBACK")
            let loaded = try await loading.value
            #expect(loaded.rows == 60006)
            #expect(try await server.query(rows, database: "split") == reference)
            // Each of the three connections wrote rows: one transaction each.
            #expect(try await server.query("SELECT count(DISTINCT xmin::text) FROM odd", database: "split") == [["3"]])
            // Once every row is handed out, nothing more is added.
            #expect(growing.add(connections: 1) == (0, 3))

            // Added before the load runs: the connections start with it.
            _ = try await server.query("TRUNCATE odd", database: "split")
            let early = table.load("contingency-early-test", connections: 1)
            #expect(early.add(connections: 1) == (1, 2))
            #expect(try await early.run().rows == 60006)
            #expect(try await server.query(rows, database: "split") == reference)
            #expect(try await server.query("SELECT count(DISTINCT xmin::text) FROM odd", database: "split") == [["2"]])
        }
    }

    @Test("a restore's last table, begun on the one connection a larger table leaves, takes that connection when freed")
    func growsInRestore() async throws {
        try await Self.withDumpedSource(make: { server in
            // `sorted` (over 64 MiB, BRIN: loaded by pg_restore) holds one connection for its data and then its
            // index; `gated` (40 MB: more than the sockets between it and the server hold) waits at its first row
            // for the test to open the gate, so it is still loading when the connection frees up.
            _ = try await server.psql(
                """
                CREATE TABLE sorted (at timestamptz, pad text);
                INSERT INTO sorted SELECT '2026-01-01'::timestamptz + g * interval '1 second', repeat('x', 600)
                    FROM generate_series(1, 115000) g;
                CREATE INDEX sorted_at ON sorted USING brin (at);
                CREATE FUNCTION gate(int) RETURNS boolean LANGUAGE plpgsql AS $$
                BEGIN PERFORM pg_advisory_lock_shared(7); PERFORM pg_advisory_unlock_shared(7); RETURN true; END $$;
                CREATE TABLE gated (id int CHECK (public.gate(id)), body text);
                INSERT INTO gated SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 150000) g;
                """, database: "source")
        }) { server, tools, folder, path in
            let (dump, arrival) = try Self.stage(path, in: folder, sealed: false)
            try await server.createDatabase("split")
            let gate = try PostgresConnection(
                try ConnectionParameters(DatabaseSettings(url: server.connectionURL(database: "split"))))
            try gate.query("SELECT pg_advisory_lock(7)")
            let logged = LogCollector()
            let restore = try Self.restore(dump, arrival, into: "split", on: server, tools: tools, logger: logged.logger)
            let restoring = Task { try await restore.run() }
            do {
                try await eventually("the freed connection to join gated's load") {
                    logged.lines.contains { $0.contains("Loading the data of \"public\".\"gated\" through 2 connections now") }
                }
            } catch {
                try? gate.query("SELECT pg_advisory_unlock(7)")
                restoring.cancel()
                Issue.record("the restore said: \(logged.lines)")
                throw error
            }
            try gate.query("SELECT pg_advisory_unlock(7)")
            try await restoring.value
            let lines = logged.lines
            #expect(
                lines.contains {
                    $0.contains("Loading the data of \"public\".\"gated\" (") && $0.contains("through one connection, and more")
                }, "\(lines)")
            #expect(!lines.contains { $0.contains("Loading the data of \"public\".\"sorted\"") }, "\(lines)")
            let rows = "SELECT count(*), md5(string_agg(gated::text, '|' ORDER BY id)) FROM gated"
            #expect(try await server.query(rows, database: "split") == (try await server.query(rows, database: "source")))
            #expect(try await server.query("SELECT count(*) FROM sorted", database: "split") == [["115000"]])
            // Both connections loaded rows of gated: one transaction each.
            #expect(try await server.query("SELECT count(DISTINCT xmin::text) FROM gated", database: "split") == [["2"]])
        }
    }

    @Test("index builds: parallel workers up to the server's cap, 256 MB unless the operator set maintenance_work_mem")
    func indexBuildSettings() async throws {
        try await PostgresServer.with { server in
            func settings() throws -> [String: String] {
                let connection = try PostgresConnection(
                    try ConnectionParameters(DatabaseSettings(url: server.connectionURL(database: "postgres"))))
                return try DatabaseRestorer.indexBuildSettings(on: connection, jobs: 4)
            }
            #expect(try settings() == ["max_parallel_maintenance_workers": "4", "maintenance_work_mem": "262144kB"])
            for statement in [
                "ALTER SYSTEM SET maintenance_work_mem = '32MB'", "ALTER SYSTEM SET max_parallel_workers = 1",
                "SELECT pg_reload_conf()",
            ] {
                _ = try await server.psql(statement)
            }
            #expect(try settings() == ["max_parallel_maintenance_workers": "1"])
        }
    }
}

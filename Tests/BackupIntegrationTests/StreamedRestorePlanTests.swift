import Testing

@testable import BackupInterop
@testable import BackupKit

/// When each step of a restore that follows a dump may start, case by case: events in, steps out.
@Suite("The streamed restore's plan")
struct StreamedRestorePlanTests {
    static let mib: Int64 = 1 << 20

    /// A schema of three tables: `big` (with an index and a primary key), `small1`, `small2`, a foreign key
    /// between them, a sequence value and a grant.
    static let contents = makeContents()

    /// The same schema as a dump whose tables' rows may be split: with an encoding and pg_dump's COPY statements
    /// (`compressed`: but its data compressed; `badCopy`: but `big`'s statement not pg_dump's).
    static func splittable(
        compressed: Bool = false, badCopy: Bool = false, encoding: Bool = true, twoEncodings: Bool = false,
        brin: Bool = false, offsets: Bool = false
    ) -> CustomDumpScanner.Contents {
        makeContents(
            copy: true, compressed: compressed, badCopy: badCopy, encoding: encoding, twoEncodings: twoEncodings,
            brin: brin, offsets: offsets)
    }

    static func makeContents(
        copy: Bool = false, compressed: Bool = false, badCopy: Bool = false, encoding: Bool = false,
        twoEncodings: Bool = false, brin: Bool = false, offsets: Bool = false
    ) -> CustomDumpScanner.Contents {
        func entry(_ id: Int, _ desc: String, _ tag: String, _ section: Int, data: Bool = false, _ dependencies: [Int] = [])
            -> CustomDumpScanner.Entry
        {
            let statement = badCopy && tag == "big" ? "COPY public.big (id) FROM stdin; SELECT 1;\n" : "COPY public.\(tag) (id) FROM stdin;\n"
            return .init(
                dumpId: id, desc: desc, tag: tag, section: section, hasData: data,
                // Where "block" places them: at their id × 1000 MiB.
                dataOffset: offsets && data ? Int64(id) * 1000 * mib : nil,
                dependencies: dependencies, copyStatement: copy && desc == "TABLE DATA" ? statement : nil,
                definition: desc == "ENCODING" ? "SET client_encoding = 'UTF8';\n" : nil,
                needsRowOrder: brin && tag == "big_name")
        }
        let pre = CustomDumpScanner.Entry.preData
        let data = CustomDumpScanner.Entry.data
        let post = CustomDumpScanner.Entry.postData
        return .init(
            version: (1, 14, 0),
            entries: (encoding ? [entry(100, "ENCODING", "ENCODING", pre)] : [])
                + (twoEncodings ? [entry(101, "ENCODING", "ENCODING", pre)] : []) + [
                entry(1, "TABLE", "big", pre), entry(2, "TABLE", "small1", pre), entry(3, "TABLE", "small2", pre),
                entry(4, "SEQUENCE", "big_id_seq", pre), entry(5, "ACL", "TABLE big", pre),
                entry(11, "TABLE DATA", "big", data, data: true, [1]), entry(12, "TABLE DATA", "small1", data, data: true, [2]),
                entry(13, "TABLE DATA", "small2", data, data: true, [3]), entry(14, "SEQUENCE SET", "big_id_seq", data, [4]),
                entry(21, "INDEX", "big_name", post, [1]), entry(22, "CONSTRAINT", "big_pkey", post, [1]),
                entry(23, "INDEX", "small1_name", post, [2]), entry(24, "FK CONSTRAINT", "small1_big", post, [2, 22]),
            ],
            tableOfContentsSize: 1000, compressed: compressed)
    }

    /// A plan for a dump whose rows may be split (`splittable()`), its schema restored: tables may start.
    static func pastSchema(jobs: Int, dumpSize: Int64? = nil) -> StreamedRestorePlan {
        var plan = StreamedRestorePlan(jobs: jobs, dumpSize: dumpSize)
        _ = plan.handle(event("contents", contents: splittable()))
        _ = plan.handle(event("done schema"))
        return plan
    }

    /// One event, written short: "contents", "block 11 100" (id, MiB), "opened 13" (its block begun, still arriving), "staged", "done schema", "done tables 12,13",
    /// "done indexes 11", "done other 23" (the other tables' indexes, their entries), "done rest".
    static func event(_ text: String, contents: CustomDumpScanner.Contents = contents) -> StreamedRestorePlan.Event {
        let words = text.split(separator: " ").map(String.init)
        let numbers = { (index: Int) in words[index].split(separator: ",").map { Int($0)! } }
        switch (words[0], words.count > 1 ? words[1] : "") {
        case ("contents", _): return .contents(contents)
        case ("staged", _): return .staged
        case ("opened", _): return .opened(dumpId: numbers(1)[0], start: Int64(numbers(1)[0]) * 1000 * mib)
        case ("block", _):
            let start = Int64(numbers(1)[0]) * 1000 * mib
            return .block(dumpId: numbers(1)[0], range: start..<start + Int64(numbers(2)[0]) * mib)
        case ("done", "schema"): return .finished(.schema)
        case ("done", "tables"): return .finished(.tables(numbers(2)))
        case ("done", "other"): return .finished(.otherIndexes(numbers(2)))
        case ("done", "indexes"):
            let entries = [21, 22, 23].filter { [11: [21, 22], 12: [23]][numbers(2)[0]]!.contains($0) }
            return .finished(.indexes(table: numbers(2)[0], entries))
        default: return .finished(.rest)
        }
    }

    /// A launch, written short: "schema 1,2,3,4", "tables 11", "indexes 11: 21,22", "other indexes*2 23", "rest*2 5,14,24" (jobs after *),
    /// "tables 11 split" (through its own COPY), "tables 11 split follows" (reading its block as it arrives), "grow 11 +1"
    /// (connections added to the split load of 11).
    static func text(_ launch: StreamedRestorePlan.Launch) -> String {
        let entries = launch.entries.map { $0.map(String.init).joined(separator: ",") } ?? "all"
        let jobs = launch.jobs > 1 ? "*\(launch.jobs)" : ""
        if launch.grows, case .tables(let tables) = launch.step {
            return "grow \(tables.map(String.init).joined(separator: ",")) +\(launch.jobs)"
        }
        switch launch.step {
        case .schema: return "schema \(entries)"
        case .tables:
            let follows = launch.follows.map { $0 == Int64(launch.entries?.first ?? 0) * 1000 * mib ? " follows" : " follows?" } ?? ""
            return launch.copy != nil ? "tables\(jobs) \(entries) split\(follows)" : "tables\(jobs) \(entries)"
        case .indexes(let table, _): return "indexes \(table): \(entries)"
        case .otherIndexes: return "other indexes\(jobs) \(entries)"
        case .rest: return "rest\(jobs) \(entries)"
        }
    }

    struct Case: Sendable, CustomTestStringConvertible {
        let label: String
        let jobs: Int
        /// Each event and the launches it must give.
        let steps: [(String, [String])]
        var complete = false
        var testDescription: String { label }
    }

    static let cases: [Case] = [
        Case(
            label: "the schema first, without what is restored last; no table before it is done", jobs: 2,
            steps: [("contents", ["schema 1,2,3,4"]), ("block 11 100", []), ("block 12 1", []), ("done schema", ["tables 11", "tables 12"])]),
        Case(
            label: "the largest table first, small ones several to a step, never more than the jobs", jobs: 2,
            steps: [
                ("contents", ["schema 1,2,3,4"]), ("done schema", []), ("block 12 1", ["tables 12"]), ("block 13 2", ["tables 13"]),
                ("block 11 100", []), ("done tables 12", ["tables 11"]),
            ]),
        Case(
            label: "small tables that arrive together go in one step", jobs: 1,
            steps: [
                ("contents", ["schema 1,2,3,4"]), ("block 12 1", []), ("block 13 2", []), ("done schema", ["tables 12,13"]),
            ]),
        Case(
            label: "a large table's indexes and primary key once it is loaded, while another still loads", jobs: 2,
            steps: [
                ("contents", ["schema 1,2,3,4"]), ("done schema", []), ("block 11 100", ["tables 11"]),
                ("block 12 1", ["tables 12"]), ("done tables 11", ["indexes 11: 21,22"]), ("done tables 12", []),
            ]),
        Case(
            label: "a small table's index waits for the rest; the rest starts once staged and nothing runs", jobs: 3,
            steps: [
                ("contents", ["schema 1,2,3,4"]), ("done schema", []), ("block 12 1", ["tables 12"]), ("block 13 1", ["tables 13"]),
                ("block 11 1", ["tables 11"]), ("done tables 12", []), ("done tables 13", []), ("staged", []),
                ("done tables 11", ["rest*3 5,14,21,22,23,24"]), ("done rest", []),
            ],
            complete: true),
        Case(
            label: "every table loaded while a large table's indexes build: the small tables' beside them, the rest after both",
            jobs: 2,
            steps: [
                ("contents", ["schema 1,2,3,4"]), ("block 11 100", []), ("block 12 1", []), ("block 13 1", []), ("staged", []),
                ("done schema", ["tables 11", "tables 12,13"]), ("done tables 11", ["indexes 11: 21,22"]),
                ("done tables 12,13", ["other indexes 23"]), ("done indexes 11", []), ("done other 23", ["rest*2 5,14,24"]),
                ("done rest", []),
            ],
            complete: true),
        Case(
            label: "the small tables' indexes beside a large table's get every connection it leaves", jobs: 3,
            steps: [
                ("contents", ["schema 1,2,3,4"]), ("block 11 100", []), ("block 12 1", []), ("block 13 1", []), ("staged", []),
                ("done schema", ["tables 11", "tables 12,13"]), ("done tables 11", ["indexes 11: 21,22"]),
                ("done tables 12,13", ["other indexes*2 23"]),
            ]),
        Case(
            label: "no large table's indexes building once every table is loaded: the small tables' go with the rest", jobs: 1,
            steps: [
                ("contents", ["schema 1,2,3,4"]), ("done schema", []), ("block 11 100", ["tables 11"]), ("block 12 1", []),
                ("block 13 1", []), ("done tables 11", ["tables 12,13"]), ("staged", []),
                ("done tables 12,13", ["rest 5,14,21,22,23,24"]),
            ]),
        Case(
            label: "nothing followed (no table of contents): the whole dump once it is staged", jobs: 2,
            steps: [("staged", ["rest*2 all"]), ("done rest", [])], complete: true),
        Case(
            label: "followed only up to the schema: the rest, less the schema, once staged", jobs: 2,
            steps: [("contents", ["schema 1,2,3,4"]), ("staged", []), ("done schema", ["rest*2 5,11,12,13,14,21,22,23,24"])]),
    ]

    @Test(arguments: cases)
    func plans(_ example: Case) {
        var plan = StreamedRestorePlan(jobs: example.jobs)
        for (event, expected) in example.steps {
            #expect(plan.handle(Self.event(event)).map(Self.text) == expected, "after \(event)")
            #expect(plan.running.count <= example.jobs || event == "contents", "after \(event)")
        }
        #expect(plan.isComplete == example.complete)
    }

    /// Cases of a dump whose rows may be split (`splittable()`), tables of 64 MiB or more split.
    static let splitCases: [(label: String, contents: CustomDumpScanner.Contents, jobs: Int, steps: [(String, [String])])] = [
        ("a large table takes every free connection, one per 64 MiB, and the others wait", splittable(), 4,
         [("contents", ["schema 100,1,2,3,4"]), ("block 11 150", []), ("block 12 1", []), ("done schema", ["tables*3 11 split", "tables 12"]),
          ("block 13 1", []), ("done tables 12", ["tables 13"]), ("done tables 11", ["indexes 11: 21,22"])]),
        ("a small table's step does not keep a connection from a large table's split", splittable(), 3,
         [("contents", ["schema 100,1,2,3,4"]), ("done schema", []), ("block 12 1", ["tables 12"]),
          ("block 11 300", ["tables*3 11 split"]), ("block 13 1", []), ("done tables 12", []), ("done tables 11", ["tables 13", "indexes 11: 21,22"])]),
        ("with one connection spare the last large table loads through its own COPY, and takes the next free ones",
         splittable(), 3,
         [("contents", ["schema 100,1,2,3,4"]), ("done schema", []), ("block 12 100", ["tables*2 12 split"]),
          ("block 11 300", ["tables 11 split"]), ("block 13 1", []),
          // Not before the whole dump is staged: the tables still to come would want the connections.
          ("done tables 12", ["tables 13", "indexes 12: 23"]), ("done tables 13", []),
          ("staged", ["grow 11 +1"]), ("done indexes 12", ["grow 11 +1"]),
          // Nothing loads any more: the indexes go with the rest.
          ("done tables 11", ["rest*3 5,14,21,22,24"])]),
        ("a table under 64 MiB is not split", splittable(), 2,
         [("contents", ["schema 100,1,2,3,4"]), ("done schema", []), ("block 11 63", ["tables 11"])]),
        ("compressed data is not split", splittable(compressed: true), 2,
         [("contents", ["schema 100,1,2,3,4"]), ("done schema", []), ("block 11 300", ["tables 11"])]),
        ("a COPY statement that is not pg_dump's is not run outside pg_restore", splittable(badCopy: true), 2,
         [("contents", ["schema 100,1,2,3,4"]), ("done schema", []), ("block 11 300", ["tables 11"])]),
        ("without the archive's encoding the rows are not split", splittable(encoding: false), 2,
         [("contents", ["schema 1,2,3,4"]), ("done schema", []), ("block 11 300", ["tables 11"])]),
        ("two ENCODING entries: which one the data is in is not certain, it is not split", splittable(twoEncodings: true), 2,
         [("contents", ["schema 100,101,1,2,3,4"]), ("done schema", []), ("block 11 300", ["tables 11"])]),
        ("a table with a BRIN index (or clustered) keeps its rows' order: not split", splittable(brin: true), 3,
         [("contents", ["schema 100,1,2,3,4"]), ("done schema", []), ("block 11 300", ["tables 11"]), ("block 12 100", ["tables*2 12 split"])]),
        ("without a split statement (the default contents) nothing is split", contents, 2,
         [("contents", ["schema 1,2,3,4"]), ("done schema", []), ("block 11 300", ["tables 11"])]),
    ]

    @Test(arguments: splitCases.indices)
    func splits(_ index: Int) {
        let example = Self.splitCases[index]
        var plan = StreamedRestorePlan(jobs: example.jobs)
        for (event, expected) in example.steps {
            #expect(
                plan.handle(Self.event(event, contents: example.contents)).map(Self.text) == expected,
                "\(example.label), after \(event)")
        }
    }

    @Test("a large table with much of the dump after it is loaded by pg_restore; the last one is split")
    func onlyTheLast() {
        // Blocks are placed at their id × 1000 MiB: block 13 (300 MiB) ends the dump.
        var plan = Self.pastSchema(jobs: 2, dumpSize: 13_300 * Self.mib)
        #expect(plan.handle(Self.event("block 11 300")).map(Self.text) == ["tables 11"])
        #expect(plan.handle(Self.event("done tables 11")).map(Self.text) == ["indexes 11: 21,22"])
        _ = plan.handle(Self.event("done indexes 11"))
        #expect(plan.handle(Self.event("block 13 300")).map(Self.text) == ["tables*2 13 split"])
    }

    @Test("the last table, begun on the one spare connection, grows to one per 64 MiB as the other steps end, no more")
    func growsAsOthersEnd() {
        // Blocks are placed at their id × 1000 MiB: block 13 (100 MiB) ends the dump; 11 and 12 have more after them.
        var plan = Self.pastSchema(jobs: 3, dumpSize: 13_100 * Self.mib)
        #expect(plan.handle(Self.event("block 11 300")).map(Self.text) == ["tables 11"])
        #expect(plan.handle(Self.event("block 12 100")).map(Self.text) == ["tables 12"])
        #expect(plan.handle(Self.event("block 13 100")).map(Self.text) == ["tables 13 split"])
        #expect(plan.handle(Self.event("staged")).map(Self.text) == [])
        // A loaded table's indexes come first; the connection they leave goes to the split load.
        #expect(plan.handle(Self.event("done tables 12")).map(Self.text) == ["indexes 12: 23"])
        #expect(plan.handle(Self.event("done indexes 12")).map(Self.text) == ["grow 13 +1"])
        // 100 MiB asks for two connections: it has them, the next free one stays free.
        #expect(plan.handle(Self.event("done tables 11")).map(Self.text) == ["indexes 11: 21,22"])
        #expect(plan.handle(Self.event("done indexes 11")).map(Self.text) == [])
        #expect(plan.running == [.tables([13])])
    }

    @Test("connections a split load could not take (every row handed out) are free for the next steps")
    func declinedConnections() {
        var plan = Self.pastSchema(jobs: 2, dumpSize: 13_300 * Self.mib)
        #expect(plan.handle(Self.event("block 11 300")).map(Self.text) == ["tables 11"])
        #expect(plan.handle(Self.event("block 13 300")).map(Self.text) == ["tables 13 split"])
        _ = plan.handle(Self.event("staged"))
        #expect(plan.handle(Self.event("done tables 11")).map(Self.text) == ["indexes 11: 21,22"])
        #expect(plan.handle(Self.event("done indexes 11")).map(Self.text) == ["grow 13 +1"])
        // The load was done handing out rows: the connection is given back, and not offered again.
        #expect(plan.handle(.declined(.tables([13]), count: 1)).map(Self.text) == [])
        #expect(plan.handle(Self.event("done tables 13")).map(Self.text) == ["rest*2 5,12,14,23,24"])
    }

    @Test("a large table gets the connections no other large table waiting needs; small tables' steps do not count")
    func spareConnections() {
        var plan = StreamedRestorePlan(jobs: 4)
        _ = plan.handle(Self.event("contents", contents: Self.splittable()))
        _ = plan.handle(Self.event("block 11 300"))
        _ = plan.handle(Self.event("block 12 100"))
        _ = plan.handle(Self.event("block 13 1"))
        // small2 (1 MiB) waits beside big's split; small1 (100 MiB, large) keeps one connection for itself (through
        // its own COPY: with no dump size known, every table may be the last).
        #expect(plan.handle(Self.event("done schema")).map(Self.text) == ["tables*3 11 split", "tables 12 split"])
        #expect(plan.handle(Self.event("done tables 12")).map(Self.text) == ["tables 13"])

        var beside = Self.pastSchema(jobs: 2)
        #expect(beside.handle(Self.event("block 12 1")).map(Self.text) == ["tables 12"])
        // A small table's step still running: big is split across both connections all the same.
        #expect(beside.handle(Self.event("block 11 300")).map(Self.text) == ["tables*2 11 split"])
    }

    @Test("a split step carries the statement quoted again, the archive's encoding and integer size")
    func splitCopy() throws {
        var plan = Self.pastSchema(jobs: 2)
        let launch = try #require(plan.handle(Self.event("block 11 200")).first)
        #expect(launch.copy?.statement.sql == #"COPY "public"."big" ("id") FROM stdin"#)
        #expect(launch.copy?.encoding == "UTF8")
        #expect(launch.copy?.intSize == 4)
    }

    /// A plan past the schema of a dump whose table of contents places the blocks (at their id × 1000 MiB), so
    /// that each block's size is known before it arrives: 11 and 12 take 1000 MiB, 13 what the dump has left.
    static func placed(jobs: Int, dumpSize: Int64?) -> StreamedRestorePlan {
        var plan = StreamedRestorePlan(jobs: jobs, dumpSize: dumpSize)
        _ = plan.handle(event("contents", contents: splittable(offsets: true)))
        _ = plan.handle(event("done schema"))
        return plan
    }

    @Test("the last large table starts as its block begins, split, reading it as it arrives; its whole block starts nothing more")
    func followsTheLast() {
        var plan = Self.placed(jobs: 2, dumpSize: 13_300 * Self.mib)
        #expect(plan.expectedSizes == [11: 1000 * Self.mib, 12: 1000 * Self.mib, 13: 300 * Self.mib])
        // 11 has 1300 MiB of the dump after it: not the last, it waits for its block as before.
        #expect(plan.handle(Self.event("opened 11")).map(Self.text) == [])
        #expect(plan.handle(Self.event("block 11 300")).map(Self.text) == ["tables 11"])
        #expect(plan.handle(Self.event("block 12 1")).map(Self.text) == ["tables 12"])
        #expect(plan.handle(Self.event("done tables 12")).map(Self.text) == [])
        // 13 ends the dump: begun on the one connection left, and to grow once the dump is staged.
        #expect(plan.handle(Self.event("opened 13")).map(Self.text) == ["tables 13 split follows"])
        #expect(plan.handle(Self.event("block 13 300")).map(Self.text) == [])
        #expect(plan.handle(Self.event("staged")).map(Self.text) == [])
        #expect(plan.handle(Self.event("done tables 11")).map(Self.text) == ["indexes 11: 21,22"])
        #expect(plan.handle(Self.event("done indexes 11")).map(Self.text) == ["grow 13 +1"])
        #expect(plan.handle(Self.event("done tables 13")).map(Self.text) == ["rest*2 5,14,23,24"])
        #expect(plan.isComplete == false)
    }

    @Test("a begun block is not followed: before the schema is restored (whole by then), without the dump's size, when not split")
    func followsOnlyWhenItCan() {
        // Whole before the schema is done: it starts as any whole block does.
        var early = StreamedRestorePlan(jobs: 2, dumpSize: 13_300 * Self.mib)
        _ = early.handle(Self.event("contents", contents: Self.splittable(offsets: true)))
        #expect(early.handle(Self.event("opened 13")).map(Self.text) == [])
        #expect(early.handle(Self.event("block 13 300")).map(Self.text) == [])
        #expect(early.handle(Self.event("done schema")).map(Self.text) == ["tables*2 13 split"])
        // The dump's size unknown: which table is the last is not known before its block ends.
        var unsized = Self.placed(jobs: 2, dumpSize: nil)
        #expect(unsized.handle(Self.event("opened 12")).map(Self.text) == [])
        // 64 MiB, one connection's worth: not split, so not followed.
        var small = Self.placed(jobs: 2, dumpSize: 13_064 * Self.mib)
        #expect(small.handle(Self.event("opened 13")).map(Self.text) == [])
        var justOver = Self.placed(jobs: 2, dumpSize: 13_065 * Self.mib)
        #expect(justOver.handle(Self.event("opened 13")).map(Self.text) == ["tables*2 13 split follows"])
        // Compressed data is never split, so never followed.
        var compressed = StreamedRestorePlan(jobs: 2, dumpSize: 13_300 * Self.mib)
        let packed = Self.splittable(compressed: true, offsets: true)
        _ = compressed.handle(Self.event("contents", contents: packed))
        _ = compressed.handle(Self.event("done schema", contents: packed))
        #expect(compressed.handle(Self.event("opened 13", contents: packed)).map(Self.text) == [])
    }

    @Test("a followed table's whole block, announced after its load ended, starts nothing")
    func lateWholeBlock() {
        var plan = Self.placed(jobs: 2, dumpSize: 13_300 * Self.mib)
        #expect(plan.handle(Self.event("block 12 1")).map(Self.text) == ["tables 12"])
        #expect(plan.handle(Self.event("done tables 12")).map(Self.text) == [])
        #expect(plan.handle(Self.event("opened 13")).map(Self.text) == ["tables*2 13 split follows"])
        // The load's end and the arrival's event come from two tasks, in either order.
        #expect(plan.handle(Self.event("done tables 13")).map(Self.text) == [])
        #expect(plan.handle(Self.event("block 13 300")).map(Self.text) == [])
        #expect(plan.handle(Self.event("block 11 300")).map(Self.text) == ["tables 11"])
        #expect(plan.handle(Self.event("staged")).map(Self.text) == [])
        #expect(plan.handle(Self.event("done tables 11")).map(Self.text) == ["rest*2 5,14,21,22,23,24"])
    }

    @Test("offsets past the dump's end (a forged table of contents) give no size, and nothing is followed from them")
    func forgedOffsets() {
        let entries = Self.splittable().entries.map { entry in
            CustomDumpScanner.Entry(
                dumpId: entry.dumpId, desc: entry.desc, tag: entry.tag, section: entry.section, hasData: entry.hasData,
                dataOffset: [11: Int64.max - 1, 12: 12_000 * Self.mib, 13: 13_000 * Self.mib][entry.dumpId],
                dependencies: entry.dependencies, copyStatement: entry.copyStatement, definition: entry.definition)
        }
        let forged = CustomDumpScanner.Contents(version: (1, 14, 0), entries: entries, tableOfContentsSize: 1000, compressed: false)
        #expect(StreamedRestorePlan.blockSizes(forged, dumpSize: 13_300 * Self.mib) == [12: 1000 * Self.mib, 13: 300 * Self.mib])
        var plan = StreamedRestorePlan(jobs: 2, dumpSize: 13_300 * Self.mib)
        _ = plan.handle(Self.event("contents", contents: forged))
        _ = plan.handle(Self.event("done schema", contents: forged))
        // 11's offset is past the end: not followed, and no arithmetic on it traps.
        #expect(plan.handle(.opened(dumpId: 11, start: Int64.max - 1)).map(Self.text) == [])
        // A block that begins where the table of contents does not say: its size is still the planned one, which
        // must fit in the dump from where it really begins.
        #expect(plan.handle(.opened(dumpId: 12, start: 13_200 * Self.mib)).map(Self.text) == [])
    }

    @Test("a begun table starts only on a connection nothing else wants: whole tables and early index builds go first")
    func followedWaits() {
        var plan = Self.placed(jobs: 1, dumpSize: 13_300 * Self.mib)
        #expect(plan.handle(Self.event("block 11 300")).map(Self.text) == ["tables 11"])
        #expect(plan.handle(Self.event("opened 13")).map(Self.text) == [])
        #expect(plan.handle(Self.event("block 12 1")).map(Self.text) == [])
        #expect(plan.handle(Self.event("done tables 11")).map(Self.text) == ["tables 12"])
        #expect(plan.handle(Self.event("done tables 12")).map(Self.text) == ["indexes 11: 21,22"])
        #expect(plan.handle(Self.event("done indexes 11")).map(Self.text) == ["tables 13 split follows"])

        var two = Self.placed(jobs: 2, dumpSize: 13_300 * Self.mib)
        #expect(two.handle(Self.event("block 11 300")).map(Self.text) == ["tables 11"])
        #expect(two.handle(Self.event("block 12 100")).map(Self.text) == ["tables 12"])
        #expect(two.handle(Self.event("opened 13")).map(Self.text) == [])
        #expect(two.handle(Self.event("done tables 11")).map(Self.text) == ["indexes 11: 21,22"])
        #expect(two.handle(Self.event("done indexes 11")).map(Self.text) == ["tables 13 split follows"])
        // Whole before a connection freed: it starts as any whole block, split.
        var late = Self.placed(jobs: 1, dumpSize: 13_300 * Self.mib)
        #expect(late.handle(Self.event("block 11 300")).map(Self.text) == ["tables 11"])
        #expect(late.handle(Self.event("opened 13")).map(Self.text) == [])
        #expect(late.handle(Self.event("block 13 300")).map(Self.text) == [])
        #expect(late.handle(Self.event("done tables 11")).map(Self.text) == ["tables 13 split"])
    }

    @Test("a sealed step reads the table of contents and its blocks in archive order; a block not yet placed: all of it")
    func parts() {
        var plan = StreamedRestorePlan(jobs: 2)
        _ = plan.handle(Self.event("contents"))
        _ = plan.handle(Self.event("block 13 2"))
        _ = plan.handle(Self.event("block 12 1"))
        #expect(plan.parts([13, 12]) == [0..<1000, 12_000 * Self.mib..<12_001 * Self.mib, 13_000 * Self.mib..<13_002 * Self.mib])
        #expect(plan.parts([11]) == nil)
        #expect(plan.parts(nil) == nil)
    }
}

import BackupCore
import BackupInterop

/// When each step of a restore that follows a dump as it arrives may start (`StreamedDumpRestore` runs them):
/// the schema as soon as the table of contents is there, each table's data as soon as its block is (up to
/// `jobs` connections at a time, the largest table first, small tables several to a step, the last large one
/// split across several connections, and begun while its block still arrives when a connection is free for
/// it), a large table's indexes and primary key as soon as it is loaded while
/// other tables still load, and, once the whole dump is there and nothing else runs, everything else with
/// `jobs` jobs. Events in, steps out; no I/O, so its decisions are tested with tables of cases.
struct StreamedRestorePlan {
    enum Step: Sendable, Hashable {
        case schema
        /// The data of one large table, or of several small ones.
        case tables([Int])
        /// The indexes and primary key or unique constraints of a large table, once it is loaded.
        case indexes(table: Int, [Int])
        /// Those of the other tables, all loaded, beside a large table's that are still being built.
        case otherIndexes([Int])
        /// Everything not restored by the other steps; all of the dump when it could not be followed at all.
        case rest
    }

    /// A step to start: its entries in archive order (nil: the whole dump), and how many jobs it may use: for
    /// `.rest`, pg_restore's jobs; for `.tables` of one large table, the connections its rows are split across
    /// (`copy` then says how; without it, pg_restore loads the table). With `grows`, the step is the running split
    /// load of a table, and `jobs` the connections it gets besides those it has.
    struct Launch: Equatable {
        let step: Step
        let entries: [Int]?
        let jobs: Int
        var copy: SplitCopy? = nil
        var grows = false
        /// For a split load started as its block arrives: where the block starts; the load reads it as it is
        /// staged (`DumpArrival.bytes(after:)`).
        var follows: Int64? = nil
    }

    /// How a large table's rows are loaded through several connections: its checked COPY statement, the
    /// archive's encoding (the data's), and the archive's integer size (to read the block).
    struct SplitCopy: Equatable {
        let statement: CopyStatement
        let encoding: String
        let intSize: Int
    }

    enum Event {
        /// The table of contents is staged (and checked).
        case contents(CustomDumpScanner.Contents)
        /// An entry's data block has begun at `start` and is still arriving.
        case opened(dumpId: Int, start: Int64)
        /// An entry's data block is staged (and checked) whole, at `range`.
        case block(dumpId: Int, range: Range<Int64>)
        /// The whole dump is staged and matches.
        case staged
        /// A step started earlier ended well.
        case finished(Step)
        /// A split load could not take `count` of the connections it was given (every row was already handed
        /// out): they are free again.
        case declined(Step, count: Int)
    }

    /// Tables smaller than this are loaded several by one pg_restore, up to this much in all (a process and a
    /// connection per table would cost more than the table for a schema of many small ones); only larger tables
    /// have their indexes built early (the others' go with the rest).
    static let batch: Int64 = 64 << 20

    let jobs: Int
    /// The last large table, when its data is at least this large, is split across connections, one for each
    /// this much (as many as are spare); less than this much of the dump after a table makes it the last.
    let splitSize: Int64
    private(set) var contents: CustomDumpScanner.Contents?
    /// Where each staged data block is.
    private(set) var positions: [Int: Range<Int64>] = [:]
    /// Tables whose data may be loaded, with their size.
    private var ready: [(dumpId: Int, size: Int64)] = []
    /// The last large table, its block begun and still arriving: its size, where the block starts. It may start
    /// only split, following its block, and only on a connection nothing else wants (a whole table, an index).
    private var begun: (dumpId: Int, size: Int64, start: Int64)?
    /// The size of each data block, from where the table of contents says they start (and the dump's size).
    private(set) var expectedSizes: [Int: Int64] = [:]
    /// Tables whose load began as their block arrived: their whole block, announced later (maybe after the load
    /// ended), starts nothing.
    private var followed: Set<Int> = []
    private var early: [Int: Set<Int>] = [:]
    private var restored: Set<Int> = []
    private(set) var running: Set<Step> = []
    /// The connections each running step holds; never more than `jobs` in all, but for a split load started
    /// beside steps of small tables, which end soon.
    private var weights: [Step: Int] = [:]
    private var busy: Int { weights.values.reduce(0, +) }
    /// Running steps of small tables only (under `batch` in all).
    private var small: Set<Step> = []
    /// Split loads that started with fewer connections than their size asks for: how many more they may take
    /// as other steps end.
    private var growable: [Step: Int] = [:]
    /// The connections held by steps that last: all but those of small tables.
    private var busyLong: Int { weights.filter { !small.contains($0.key) }.values.reduce(0, +) }
    private var schemaDone = false
    private var staged = false
    private var restStarted = false
    /// The last step has ended: the dump is restored.
    private(set) var isComplete = false

    /// The dump's size, when known: a table is split only when less than `splitSize` of the dump comes after it.
    let dumpSize: Int64?

    init(jobs: Int, splitSize: Int64 = Self.batch, dumpSize: Int64? = nil) {
        self.jobs = max(1, jobs)
        self.splitSize = max(1, splitSize)
        self.dumpSize = dumpSize
    }

    /// Takes one event and returns the steps that may start now.
    mutating func handle(_ event: Event) -> [Launch] {
        var launches: [Launch] = []
        switch event {
        case .contents(let found):
            contents = found
            early = Self.earlyEntries(found)
            expectedSizes = Self.blockSizes(found, dumpSize: dumpSize)
            launches.append(launch(.schema, entries: Self.schemaEntries(found)))
        case .opened(let dumpId, let start):
            // Only a table that will be split when whole is followed: the last large one (nothing after it waits
            // for its connections), worth two connections at least.
            if let dumpSize, let size = expectedSizes[dumpId], start >= 0, size > splitSize, size <= dumpSize - start,
                isLast(start + size), splitCopy(dumpId) != nil
            {
                begun = (dumpId, size, start)
            }
        case .block(let dumpId, let range):
            positions[dumpId] = range
            if begun?.dumpId == dumpId { begun = nil }  // whole before it could start: as any other
            if !followed.contains(dumpId) { ready.append((dumpId, Int64(range.count))) }
        case .staged:
            staged = true
        case .declined(let step, let count):
            guard running.contains(step) else { break }
            weights[step, default: 0] -= min(count, weights[step, default: 0] - 1)
            growable[step] = nil
        case .finished(let step):
            running.remove(step)
            weights[step] = nil
            small.remove(step)
            growable[step] = nil
            switch step {
            case .schema: schemaDone = true
            case .tables(let dumpIds), .indexes(_, let dumpIds), .otherIndexes(let dumpIds): restored.formUnion(dumpIds)
            case .rest:
                isComplete = true
                return []
            }
        }
        if schemaDone {
            // Tables first, the largest first; then what their loaded tables allow, the largest first.
            ready.sort { $0.size > $1.size }
            while busy < jobs, !ready.isEmpty {
                var chosen = [ready.removeFirst()]
                // A table large enough, with less than `splitSize` of the dump after it, is split, one connection
                // per `splitSize`, across the connections no other large table waiting and no lasting step holds:
                // several large tables loading at once keep the server as busy, without the cost of cutting rows.
                // Small tables' steps, which end soon, do not count (they wait, or run beside it for a moment).
                // With one connection spare it still loads through its own COPY, and takes the connections
                // other steps leave (below): the last table would otherwise end the restore alone on one.
                let size = chosen[0].size
                let last = positions[chosen[0].dumpId].map { isLast($0.upperBound) } ?? true
                if size > splitSize, last, let copy = splitCopy(chosen[0].dumpId) {
                    let spare = jobs - busyLong - ready.filter { $0.size >= Self.batch }.count
                    launches.append(splitLoad(chosen[0].dumpId, size: size, spare: spare, copy: copy))
                    continue
                }
                while let next = ready.last, chosen.reduce(0, { $0 + $1.size }) + next.size <= Self.batch {
                    chosen.append(ready.removeLast())
                }
                let step = Step.tables(chosen.map(\.dumpId))
                launches.append(launch(step, entries: chosen.map(\.dumpId)))
                if chosen.reduce(0, { $0 + $1.size }) < Self.batch { small.insert(step) }
            }
            // While other tables still load: a loaded large table's indexes (once all are, they go with the rest,
            // which pg_restore --jobs spreads itself).
            let loading = !staged || !ready.isEmpty || running.contains { if case .tables = $0 { true } else { false } }
            if loading {
                let large = positions.filter { Int64($0.value.count) >= Self.batch && restored.contains($0.key) }
                for table in large.keys.sorted(by: { (large[$0]!.count, $1) > (large[$1]!.count, $0) })
                where busy < jobs {
                    let entries = early.filter { $0.value == [table] }.keys.sorted()
                    guard !entries.isEmpty else { continue }
                    for entry in entries { early[entry] = nil }
                    launches.append(launch(.indexes(table: table, entries), entries: entries))
                }
            }
            // Every table loaded while a large table's indexes are still being built: the small tables' indexes and
            // keys on the connections it leaves, beside it, instead of after it with the rest (whatever else the rest
            // holds may depend on those large indexes: a foreign key on a primary key). Large tables' go with the
            // rest, which pg_restore --jobs spreads.
            let building = running.contains { if case .indexes = $0 { true } else { false } }
            if !loading && building && busy < jobs && !running.contains(where: { if case .otherIndexes = $0 { true } else { false } }) {
                let (placed, loaded) = (positions, restored)
                let entries = early.filter { entry in
                    entry.value.isSubset(of: loaded) && entry.value.allSatisfy { (placed[$0]?.count ?? .max) < Self.batch }
                }.keys.sorted()
                if !entries.isEmpty {
                    for entry in entries { early[entry] = nil }
                    launches.append(launch(.otherIndexes(entries), entries: entries, jobs: jobs - busy))
                }
            }
            // A connection nothing else wants: to the last large table, begun, to load it as it arrives.
            if let table = begun, busy < jobs, ready.isEmpty, let copy = splitCopy(table.dumpId) {
                begun = nil
                followed.insert(table.dumpId)
                var started = splitLoad(table.dumpId, size: table.size, spare: jobs - busyLong, copy: copy)
                started.follows = table.start
                launches.append(started)
            }
            // Connections still free, the whole dump staged and no table waiting: to a split load that asked for
            // more than it got (before the dump is staged, the tables still to arrive will want them, and a
            // split load keeps what it takes to its end).
            for (step, more) in growable.sorted(by: { "\($0.key)" < "\($1.key)" })
            where staged && busy < jobs && ready.isEmpty {
                let added = min(more, jobs - busy)
                weights[step, default: 0] += added
                growable[step] = more > added ? more - added : nil
                launches.append(Launch(step: step, entries: nil, jobs: added, grows: true))
            }
        }
        if staged && !restStarted && running.isEmpty && ready.isEmpty && (schemaDone || contents == nil) {
            restStarted = true
            if let contents {
                let first = Set(Self.schemaEntries(contents)).union(restored)
                launches.append(launch(.rest, entries: contents.entries.map(\.dumpId).filter { !first.contains($0) }, jobs: jobs))
            } else {
                launches.append(launch(.rest, entries: nil, jobs: jobs))
            }
        }
        return launches
    }

    /// The parts of the dump a step with these entries reads: the table of contents, then their data blocks in
    /// archive order; nil for all of it (no entries given, or a block's place unknown).
    func parts(_ entries: [Int]?) -> [Range<Int64>]? {
        guard let contents, let entries else { return nil }
        let needed = contents.entries.filter { $0.hasData && entries.contains($0.dumpId) }.map(\.dumpId)
        let blocks = needed.compactMap { positions[$0] }
        guard blocks.count == needed.count else { return nil }
        return [0..<contents.tableOfContentsSize] + blocks.sorted { $0.lowerBound < $1.lowerBound }
    }

    /// A large table's split load, on the spare connections, at least one, at most one per `splitSize`; it may take
    /// more later (`growable`) when it asked for more than it got.
    private mutating func splitLoad(_ table: Int, size: Int64, spare: Int, copy: SplitCopy) -> Launch {
        let wanted = Int((size - 1) / splitSize + 1)
        let connections = max(1, min(spare, wanted))
        if connections < wanted { growable[.tables([table])] = wanted - connections }
        return launch(.tables([table]), entries: [table], jobs: connections, copy: copy)
    }

    private mutating func launch(_ step: Step, entries: [Int]?, jobs: Int = 1, copy: SplitCopy? = nil) -> Launch {
        running.insert(step)
        weights[step] = jobs
        // In archive order, which a stream must follow.
        let ordered = entries.map { wanted in contents?.entries.map(\.dumpId).filter(Set(wanted).contains) ?? wanted }
        return Launch(step: step, entries: ordered, jobs: jobs, copy: copy)
    }

    /// Whether less than `splitSize` of the dump comes after a table's data ending at `end` (always, when the
    /// dump's size is not known).
    private func isLast(_ end: Int64) -> Bool {
        guard let dumpSize else { return true }
        return dumpSize - end < splitSize
    }

    /// Each data block's size, where the table of contents says where it and the next start (the last one: where
    /// the dump ends, when its size is known). pg_dump writes the blocks one after the other in the order of
    /// their offsets, and the dump ends with the last. Only a plan: the blocks' own framing says where they end.
    /// Offsets past the dump's end (a forged table of contents) give no size.
    static func blockSizes(_ contents: CustomDumpScanner.Contents, dumpSize: Int64?) -> [Int: Int64] {
        let starts = contents.entries.compactMap { entry in entry.dataOffset.map { (entry.dumpId, $0) } }
            .filter { $0.1 >= 0 && $0.1 < (dumpSize ?? .max) }
            .sorted { $0.1 < $1.1 }
        var sizes: [Int: Int64] = [:]
        for (index, (dumpId, start)) in starts.enumerated() {
            let end = index + 1 < starts.count ? starts[index + 1].1 : dumpSize
            if let end, end > start { sizes[dumpId] = end - start }
        }
        return sizes
    }

    /// How a table's data may be split across connections: only plain COPY data (an uncompressed archive),
    /// in a known encoding, with a COPY statement of the one shape pg_dump writes, of a table with no index that
    /// needs its rows' order (BRIN, CLUSTER ON: split, the rows land in another order); nil otherwise (pg_restore
    /// then loads it, as any other).
    func splitCopy(_ dumpId: Int) -> SplitCopy? {
        guard let contents, !contents.compressed, let encoding = contents.encoding,
            let entry = contents.entries.first(where: { $0.dumpId == dumpId }), entry.desc == "TABLE DATA",
            let statement = entry.copyStatement.flatMap(CopyStatement.init(parsing:)),
            !contents.entries.contains(where: {
                $0.needsRowOrder && !Set($0.dependencies).isDisjoint(with: entry.dependencies)
            })
        else { return nil }
        return SplitCopy(statement: statement, encoding: encoding, intSize: contents.intSize)
    }

    /// Whether the table of contents records where every data block starts, so that pg_restore seeks to the blocks
    /// a step names and reads no other (without, it reads its way through the blocks before them): only then may
    /// a loaded table's block be freed from the staged dump (`StagedDump.release`).
    static func recordsEveryBlockStart(_ contents: CustomDumpScanner.Contents) -> Bool {
        contents.entries.allSatisfy { !$0.hasData || $0.dataOffsetKnown }
    }

    /// Entries restored after the data, in the privileges passes, by pg_restore's rules
    /// (pg_backup_archiver.c `_tocEntryRestorePass`).
    static func restoredLast(_ entry: CustomDumpScanner.Entry) -> Bool {
        ["ACL", "ACL LANGUAGE", "DEFAULT ACL", "EVENT TRIGGER", "MATERIALIZED VIEW DATA"].contains(entry.desc)
            || (entry.desc == "COMMENT" && entry.tag.hasPrefix("EVENT TRIGGER "))
    }

    /// The schema step's entries: the pre-data section, less what is restored last.
    static func schemaEntries(_ contents: CustomDumpScanner.Contents) -> [Int] {
        contents.entries.filter { $0.section == CustomDumpScanner.Entry.preData && !$0.hasData && !restoredLast($0) }
            .map(\.dumpId)
    }

    /// The post-data entries that may run as soon as some tables are loaded, with the data entries of those
    /// tables: indexes and primary key or unique constraints, depending only on the schema and on tables (an
    /// entry's dependency on a table means, for pg_restore too, on that table's data).
    static func earlyEntries(_ contents: CustomDumpScanner.Contents) -> [Int: Set<Int>] {
        let schema = Set(schemaEntries(contents))
        let tables = Set(contents.entries.filter { $0.desc == "TABLE" }.map(\.dumpId))
        var dataOf: [Int: Int] = [:]
        for entry in contents.entries where entry.desc == "TABLE DATA" {
            for dependency in entry.dependencies where tables.contains(dependency) { dataOf[dependency] = entry.dumpId }
        }
        var early: [Int: Set<Int>] = [:]
        for entry in contents.entries
        where entry.section == CustomDumpScanner.Entry.postData && ["INDEX", "CONSTRAINT"].contains(entry.desc) {
            var needs: Set<Int> = []
            guard
                entry.dependencies.allSatisfy({ dependency in
                    if let data = dataOf[dependency] {
                        needs.insert(data)
                        return true
                    }
                    return schema.contains(dependency)
                }), !needs.isEmpty
            else { continue }
            early[entry.dumpId] = needs
        }
        return early
    }
}

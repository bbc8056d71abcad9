import BackupCore
import BackupInterop
import Foundation
import Logging

/// Restores a staged dump into a new database while the dump is still being read out of the archive: the
/// schema as soon as the table of contents is on disk, each table's data as soon as its block is on disk (up
/// to `jobs` steps at a time, the largest table first), a large table's indexes and primary key as soon as it
/// is loaded, and, once the whole dump is there, everything else (sequences, foreign keys, privileges…) with
/// `pg_restore --jobs`. Each step is a pg_restore of the staged dump with `--use-list` naming its entries, so
/// pg_restore still does all the work and keeps its own order within each step; this only decides when each
/// step may start. The order between steps is pg_restore's own: pre-data, data, post-data, privileges last.
///
/// A plain dump is read by pg_restore from the file, where it finds each block itself. A sealed one is
/// decrypted into its standard input: the table of contents, then only the blocks a step needs, in archive
/// order (pg_restore reads a stream forward), or the whole dump where their place is unknown; the last step
/// then runs as one job (pg_restore --jobs cannot read a stream).
///
/// Only for a database nobody uses yet, dropped by the caller if anything fails: the data goes in before the
/// rest of the archive, the dump's own hash included, has been checked.
///
/// A dump whose layout cannot be followed (`DumpArrival.Event.unfollowable`) is not a failure: what remains
/// waits for the whole dump and is restored by pg_restore from it, as without any of this.
struct StreamedDumpRestore {
    let tools: PostgresTools
    let dump: StagedDump
    let arrival: DumpArrival
    let connection: ConnectionParameters
    let database: String
    let applicationName: String
    let ownership: Bool
    let settings: [String: String]
    let jobs: Int
    let logger: Logger

    private enum Step: Sendable, Hashable {
        case schema
        /// The data of one large table, or of several small ones.
        case tables([Int])
        /// The indexes and primary key or unique constraints of a large table, once it is loaded.
        case indexes(table: Int, [Int])
        /// Everything not restored by the other steps; all of the dump when it could not be followed at all.
        case rest
    }

    private enum Message: Sendable {
        case arrival(DumpArrival.Event)
        case arrivalsEnded
        case done(Step, PostgresTools.Outcome)
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

    /// Tables smaller than this are loaded several by one pg_restore, up to this much in all (a process and a
    /// connection per table would cost more than the table for a schema of many small ones); only larger tables
    /// have their indexes built early (the others' go with the rest).
    static let batch: Int64 = 64 << 20

    func run() async throws {
        let (messages, post) = AsyncStream.makeStream(of: Message.self)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await event in arrival.events { post.yield(.arrival(event)) }
                post.yield(.arrivalsEnded)
            }
            var contents: CustomDumpScanner.Contents?
            var ready: [(dumpId: Int, size: Int64)] = []
            var early: [Int: Set<Int>] = [:]
            var positions: [Int: Range<Int64>] = [:]
            var restored: Set<Int> = []
            var running: Set<Step> = []
            var schemaDone = false
            var staged = false
            var restStarted = false
            let started = Date()

            /// The parts of a sealed dump to decrypt for `entries`; nil for all of it.
            func parts(_ entries: [Int]?) -> [Range<Int64>]? {
                guard let contents, let entries else { return nil }
                let needed = contents.entries.filter { $0.hasData && entries.contains($0.dumpId) }.map(\.dumpId)
                let blocks = needed.compactMap { positions[$0] }
                guard blocks.count == needed.count else { return nil }
                return [0..<contents.tableOfContentsSize] + blocks.sorted { $0.lowerBound < $1.lowerBound }
            }

            func launch(_ step: Step, entries: [Int]?, jobs: Int = 1) throws {
                running.insert(step)
                // In archive order, which a stream must follow.
                let ordered = entries.map { wanted in
                    contents?.entries.map(\.dumpId).filter(Set(wanted).contains) ?? wanted
                }
                let list = try ordered.map { try writeList($0) }
                let parts = parts(ordered)
                group.addTask {
                    defer { list.map { _ = unlink($0) } }
                    let source: PostgresTools.DumpInput =
                        !dump.isSealed
                        ? .file(dump.file.path)
                        : .stream(try parts.map { try dump.source(ranges: $0) } ?? dump.source())
                    let outcome = try await tools.restore(
                        source, connection: connection, database: database, applicationName: applicationName,
                        ownership: ownership, mode: .parallel(jobs: jobs), settings: settings, list: list)
                    post.yield(.done(step, outcome))
                }
            }

            for await message in messages {
                switch message {
                case .arrival(.contents(let found)):
                    contents = found
                    let tables = found.entries.filter(\.hasData).count
                    logger.info(
                        "Restoring the dump as it is read: the schema now, each of its \(tables) tables once its data is staged and a large one's indexes once it is loaded (\(jobs) at a time), the rest once the whole dump is"
                    )
                    early = Self.earlyEntries(found)
                    try launch(.schema, entries: Self.schemaEntries(found))
                case .arrival(.block(let dumpId, let range)):
                    ready.append((dumpId, Int64(range.count)))
                    positions[dumpId] = range
                case .arrival(.unfollowable(let why)):
                    logger.info(
                        "The dump's layout is not followed further (\(why)): \(contents == nil ? "it is restored whole" : "the rest is restored") once it is staged"
                    )
                case .arrival(.staged):
                    staged = true
                case .arrival(.abandoned(let why)):
                    throw ContingencyError.failed("the restore into a new database stopped: \(why)")
                case .arrivalsEnded:
                    // The events end with `staged` or `abandoned`, unless this task is cancelled.
                    guard staged else { throw ContingencyError.cancelled() }
                case .done(let step, let outcome):
                    running.remove(step)
                    guard outcome.succeeded else {
                        throw ContingencyError.failed(
                            "pg_restore into a new database failed (\(describe(step, contents, positions)), \(outcome.status)): \(outcome.standardError)"
                        )
                    }
                    switch step {
                    case .schema:
                        schemaDone = true
                        logger.info(
                            "Restored the schema, \(DurationFormat.string(seconds: Date().timeIntervalSince(started))) in"
                        )
                    case .tables(let dumpIds), .indexes(_, let dumpIds):
                        restored.formUnion(dumpIds)
                        logger.info(
                            "Restored \(describe(step, contents, positions)), \(DurationFormat.string(seconds: Date().timeIntervalSince(started))) in"
                        )
                    case .rest:
                        return
                    }
                }
                if schemaDone {
                    // Tables first, the largest first; then what their loaded tables allow, the largest first.
                    ready.sort { $0.size > $1.size }
                    while running.count < jobs, !ready.isEmpty {
                        var chosen = [ready.removeFirst()]
                        while let next = ready.last, chosen.reduce(0, { $0 + $1.size }) + next.size <= Self.batch {
                            chosen.append(ready.removeLast())
                        }
                        try launch(.tables(chosen.map(\.dumpId)), entries: chosen.map(\.dumpId))
                    }
                    // While other tables still load: a loaded large table's indexes (once all are, they go with
                    // the rest, which pg_restore --jobs spreads itself).
                    let loading =
                        !staged || !ready.isEmpty || running.contains { if case .tables = $0 { true } else { false } }
                    if loading {
                        let large = positions.filter {
                            Int64($0.value.count) >= Self.batch && restored.contains($0.key)
                        }
                        for table in large.keys.sorted(by: { large[$0]!.count > large[$1]!.count })
                        where running.count < jobs {
                            let entries = early.filter { $0.value == [table] }.keys.sorted()
                            guard !entries.isEmpty else { continue }
                            for entry in entries { early[entry] = nil }
                            try launch(.indexes(table: table, entries), entries: entries)
                        }
                    }
                }
                if staged && !restStarted && running.isEmpty && ready.isEmpty && (schemaDone || contents == nil) {
                    restStarted = true
                    if let contents {
                        let first = Set(Self.schemaEntries(contents)).union(restored)
                        try launch(
                            .rest, entries: contents.entries.map(\.dumpId).filter { !first.contains($0) }, jobs: jobs)
                    } else {
                        try launch(.rest, entries: nil, jobs: jobs)
                    }
                }
            }
            throw ContingencyError.cancelled()
        }
    }

    private func writeList(_ entries: [Int]) throws -> String {
        let path = "\(dump.file.path).\(UUID().uuidString.prefix(8).lowercased()).list"
        let file = try LocalFile(writing: path)
        let text = entries.map { "\($0)\n" }.joined()
        try Array(text.utf8).withUnsafeBytes { try file.write($0) }
        file.close()
        return path
    }

    private func describe(_ step: Step, _ contents: CustomDumpScanner.Contents?, _ positions: [Int: Range<Int64>])
        -> String
    {
        switch step {
        case .schema: return "the schema"
        case .tables(let dumpIds):
            let names = dumpIds.prefix(3).map { tag($0, contents) }
            let size = ByteFormat.string(dumpIds.reduce(0) { $0 + Int64(positions[$1]?.count ?? 0) })
            let more = dumpIds.count > 3 ? " and \(dumpIds.count - 3) more tables" : ""
            return "the data of \(names.joined(separator: ", "))\(more) (\(size))"
        case .indexes(let table, _):
            return "the indexes of \(tag(table, contents))"
        case .rest: return contents == nil ? "the whole dump" : "indexes, constraints and the rest"
        }
    }

    /// An entry's name in the table of contents (a table's name for its data), or its number when unknown.
    private func tag(_ dumpId: Int, _ contents: CustomDumpScanner.Contents?) -> String {
        contents?.entries.first { $0.dumpId == dumpId }?.tag ?? "entry \(dumpId)"
    }
}

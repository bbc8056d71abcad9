import BackupCore
import BackupInterop
import Foundation
import Logging

/// Restores a staged dump into a new database while the dump is still being read out of the archive: the
/// schema as soon as the table of contents is on disk, each table's data as soon as its block is on disk (up
/// to `jobs` connections at a time, the largest table first), a large table's indexes and primary key as soon
/// as it is loaded, and, once the whole dump is there, everything else (sequences, foreign keys, privileges…)
/// with `pg_restore --jobs`. Each step is a pg_restore of the staged dump with `--use-list` naming its entries,
/// so pg_restore still does the work and keeps its own order within each step; this only decides when each
/// step may start. The one exception is the last large table's data, which pg_restore would load through one
/// connection: its rows are split across the spare connections (`SplitTableLoad`). The order between steps is
/// pg_restore's own: pre-data, data, post-data, privileges last.
///
/// A plain dump is read by pg_restore from the file, where it finds each block itself. A sealed one is
/// decrypted into its standard input: the table of contents, then only the blocks a step needs, in archive
/// order (pg_restore reads a stream forward), or the whole dump where their place is unknown; the last step
/// then runs as one job (pg_restore --jobs cannot read a stream).
///
/// Only for a database nobody uses yet, dropped by the caller if anything fails: the data goes in before the
/// rest of the archive, the dump's own hash included, has been checked.
///
/// A plain dump whose table of contents records where each block starts gives back each table's data block
/// once the table is loaded (`StagedDump.release`): no later step reads it, and its space and pages serve what
/// follows. A followed block goes a few MiB at a time behind its reader.
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
    /// A table's data at least this large is loaded through several connections (`StreamedRestorePlan`); nil:
    /// every table by pg_restore (RESTORE_SPLIT_TABLE_SIZE=0).
    var splitSize: Int64? = StreamedRestorePlan.batch
    let logger: Logger

    private typealias Step = StreamedRestorePlan.Step

    private enum Message: Sendable {
        case arrival(DumpArrival.Event)
        case arrivalsEnded
        case done(Step, PostgresTools.Outcome)
        case loaded(Step, SplitTableLoad.Loaded)
        case loadFailed(Step, String)
    }

    func run() async throws {
        let (messages, post) = AsyncStream.makeStream(of: Message.self)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await event in arrival.events { post.yield(.arrival(event)) }
                post.yield(.arrivalsEnded)
            }
            var plan = StreamedRestorePlan(jobs: jobs, splitSize: splitSize ?? .max, dumpSize: dump.checkedMember?.size)
            var staged = false
            /// Whether loaded tables' blocks are freed from the staged dump, decided once the table of contents is there.
            var releasing = false
            /// Tables loaded whose block has not been freed yet (its place not known when the load ended).
            var loadedUnplaced: Set<Int> = []
            let started = Date()
            /// The split loads running, to give them the connections other steps leave.
            var loads: [Step: SplitTableLoad] = [:]

            /// Starts a step; returns the steps that may start after it (when a split load could not take the
            /// connections it was given).
            func launch(_ launch: StreamedRestorePlan.Launch) throws -> [StreamedRestorePlan.Launch] {
                if launch.grows {
                    let load = loads[launch.step]
                    let (added, total) = load?.add(connections: launch.jobs) ?? (0, 0)
                    if added > 0, let load {
                        logger.info(
                            "Loading the data of \(load.copy.statement.qualifiedName) through \(total) connections now")
                    }
                    // Too late for some (every row handed out): free for the next steps.
                    return added < launch.jobs ? plan.handle(.declined(launch.step, count: launch.jobs - added)) : []
                }
                if let copy = launch.copy, case .tables(let dumpIds) = launch.step, let dumpId = dumpIds.first {
                    let source: SplitTableLoad.Source
                    let size: Int64
                    if let start = launch.follows {
                        // Its block is still arriving: read as it is staged and checked, and given back behind the
                        // reader up to where the table of contents says the next block starts.
                        size = plan.expectedSizes[dumpId] ?? 0
                        let releasingBefore = releasing && size > 0 ? start + size : nil
                        source = { stopped in
                            try dump.following(from: start, arrival: arrival, releasingBefore: releasingBefore, stopped: stopped)
                        }
                    } else if let range = plan.positions[dumpId] {
                        source = { _ in try dump.source(ranges: [range]) }
                        size = Int64(range.count)
                    } else {
                        throw ContingencyError.failed("the place of entry \(dumpId)'s data is not known")
                    }
                    let load = SplitTableLoad(
                        source: source, dumpId: dumpId, copy: copy, connection: connection,
                        database: database, applicationName: applicationName, settings: settings,
                        connections: launch.jobs)
                    loads[launch.step] = load
                    var how =
                        launch.jobs > 1
                        ? "through \(launch.jobs) connections at once" : "through one connection, and more as other steps end"
                    if launch.follows != nil { how += ", as it is staged" }
                    logger.info("Loading the data of \(copy.statement.qualifiedName) (\(ByteFormat.string(size))) \(how)")
                    group.addTask {
                        do {
                            let loaded = try await load.run()
                            post.yield(.loaded(launch.step, loaded))
                        } catch let error as ContingencyError where error.isCancellation {
                            throw error
                        } catch {
                            post.yield(.loadFailed(launch.step, (error as? ContingencyError)?.message ?? "\(error)"))
                        }
                    }
                    return []
                }
                let list = try launch.entries.map { try writeList($0) }
                let parts = plan.parts(launch.entries)
                group.addTask {
                    defer { list.map { _ = unlink($0) } }
                    let source: PostgresTools.DumpInput =
                        !dump.isSealed
                        ? .file(dump.file.path)
                        : .stream(try parts.map { try dump.source(ranges: $0) } ?? dump.source())
                    let outcome = try await tools.restore(
                        source, connection: connection, database: database, applicationName: applicationName,
                        ownership: ownership, mode: .parallel(jobs: launch.jobs), settings: settings, list: list)
                    post.yield(.done(launch.step, outcome))
                }
                return []
            }

            /// A tables step ended well: their blocks are read by no later step.
            func release(_ step: Step) {
                guard releasing, case .tables(let dumpIds) = step else { return }
                for dumpId in dumpIds {
                    if let range = plan.positions[dumpId] { dump.release(range) } else { loadedUnplaced.insert(dumpId) }
                }
            }

            for await message in messages {
                let event: StreamedRestorePlan.Event
                switch message {
                case .arrival(.contents(let found)):
                    let tables = found.entries.filter(\.hasData).count
                    logger.info(
                        "Restoring the dump as it is read: the schema now, each of its \(tables) tables once its data is staged and a large one's indexes once it is loaded (\(jobs) at a time), the rest once the whole dump is"
                    )
                    releasing = !dump.isSealed && StreamedRestorePlan.recordsEveryBlockStart(found)
                    event = .contents(found)
                case .arrival(.opened(let dumpId, let start)):
                    // A sealed dump's chunks are readable only whole: its blocks are loaded once whole.
                    guard !dump.isSealed else { continue }
                    event = .opened(dumpId: dumpId, start: start)
                case .arrival(.block(let dumpId, let range)):
                    if loadedUnplaced.remove(dumpId) != nil { dump.release(range) }
                    event = .block(dumpId: dumpId, range: range)
                case .arrival(.unfollowable(let why)):
                    logger.info(
                        "The dump's layout is not followed further (\(why)): \(plan.contents == nil ? "it is restored whole" : "the rest is restored") once it is staged"
                    )
                    continue
                case .arrival(.staged):
                    staged = true
                    event = .staged
                case .arrival(.abandoned(let why)):
                    throw ContingencyError.failed("the restore into a new database stopped: \(why)")
                case .arrivalsEnded:
                    // The events end with `staged` or `abandoned`, unless this task is cancelled.
                    guard staged else { throw ContingencyError.cancelled() }
                    continue
                case .done(let step, let outcome):
                    guard outcome.succeeded else {
                        throw ContingencyError.failed(
                            "pg_restore into a new database failed (\(describe(step, plan)), \(outcome.status)): \(outcome.standardError)"
                        )
                    }
                    if step != .rest {
                        logger.info(
                            "Restored \(describe(step, plan)), \(DurationFormat.string(seconds: Date().timeIntervalSince(started))) in")
                    }
                    release(step)
                    event = .finished(step)
                case .loaded(let step, let loaded):
                    logger.info(
                        """
                        Restored the data of \(tables(step, plan)) (\(ByteFormat.string(loaded.bytes))): \
                        \(loaded.rows) rows, \(DurationFormat.string(seconds: Date().timeIntervalSince(started))) in
                        """)
                    loads[step] = nil
                    release(step)
                    event = .finished(step)
                case .loadFailed(let step, let why):
                    throw ContingencyError.failed("loading the data of \(tables(step, plan)) into a new database failed: \(why)")
                }
                var launches = plan.handle(event)
                while !launches.isEmpty { launches += try launch(launches.removeFirst()) }
                if plan.isComplete { return }
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

    private func describe(_ step: Step, _ plan: StreamedRestorePlan) -> String {
        let contents = plan.contents
        let positions = plan.positions
        switch step {
        case .schema: return "the schema"
        case .tables(let dumpIds):
            let names = dumpIds.prefix(3).map { tag($0, contents) }
            let size = ByteFormat.string(dumpIds.reduce(0) { $0 + Int64(positions[$1]?.count ?? 0) })
            let more = dumpIds.count > 3 ? " and \(dumpIds.count - 3) more tables" : ""
            return "the data of \(names.joined(separator: ", "))\(more) (\(size))"
        case .indexes(let table, _):
            return "the indexes of \(tag(table, contents))"
        case .otherIndexes: return "the other tables' indexes"
        case .rest: return contents == nil ? "the whole dump" : "indexes, constraints and the rest"
        }
    }

    /// The names of a tables step's tables.
    private func tables(_ step: Step, _ plan: StreamedRestorePlan) -> String {
        guard case .tables(let dumpIds) = step else { return describe(step, plan) }
        return dumpIds.map { tag($0, plan.contents) }.joined(separator: ", ")
    }

    /// An entry's name in the table of contents (a table's name for its data), or its number when unknown.
    private func tag(_ dumpId: Int, _ contents: CustomDumpScanner.Contents?) -> String {
        contents?.entries.first { $0.dumpId == dumpId }?.tag ?? "entry \(dumpId)"
    }
}

import BackupCore
import BackupInterop
import Foundation
import Synchronization

/// Loads one large table's data through several connections at once, as pgcopydb splits large tables: the
/// table's data block is read from the staged dump (decrypted as it is read when sealed), cut into segments of
/// whole rows
/// (`CopyDataSplitter`), and each segment goes to the least behind of `connections` concurrent
/// `COPY … FROM STDIN`. pg_restore cannot do this: it loads a table through one connection whatever `--jobs`
/// says, so one table holding most of a database made its COPY the restore's critical path.
///
/// The rows end up the same as pg_restore's, in another physical order (so a table whose indexes need that
/// order is not split: `StreamedRestorePlan.splitCopy`). Each connection is set up as pg_restore sets up its
/// own (the archive's client encoding, an empty search_path, row security off, no timeouts, XML content, the
/// restore's own settings). Only for the new database a restore makes, which nobody uses and
/// which is dropped if anything fails: the connections' COPYs commit one by one, so a failure leaves part of
/// the rows, like a failed pg_restore job.
///
/// Memory: at most two segments per connection queued, plus the one being cut; a row too long for a segment
/// goes in pieces, one after the other to one connection (`CopyDataSplitter.Segment.continues`).
///
/// A load may start on fewer connections than it could use (other steps of the restore hold the rest) and take
/// more while it runs (`add`): each new connection gets the next segments, as the least behind.
final class SplitTableLoad: Sendable {
    /// Opens the table's data block, from its first byte; `stopped` says when the load has stopped (a source that
    /// waits for bytes still arriving asks it).
    typealias Source = @Sendable (_ stopped: @escaping @Sendable () -> Bool) throws -> any ByteSource

    let source: Source
    let dumpId: Int
    let copy: StreamedRestorePlan.SplitCopy
    let connection: ConnectionParameters
    let database: String
    let applicationName: String
    let settings: [String: String]
    let segmentSize: Int
    private let queues: SegmentQueues
    private let outcome = LoadOutcome()
    private let sessions = Sessions()
    private let group = DispatchGroup()
    /// The connections started, and whether more may be: not before `run` starts them, not once every row has
    /// been handed out or the load stopped.
    private let crew = Mutex((open: false, finished: false))

    struct Loaded: Sendable {
        let rows: Int64
        let bytes: Int64
    }

    init(
        source: @escaping Source, dumpId: Int, copy: StreamedRestorePlan.SplitCopy,
        connection: ConnectionParameters, database: String, applicationName: String, settings: [String: String],
        connections: Int, segmentSize: Int = 1 << 20
    ) {
        self.source = source
        self.dumpId = dumpId
        self.copy = copy
        self.connection = connection
        self.database = database
        self.applicationName = applicationName
        self.settings = settings
        self.segmentSize = segmentSize
        queues = SegmentQueues(count: max(1, connections), capacity: 2)
    }

    /// Adds up to `count` connections to the load, which get the next segments; returns how many were added
    /// (fewer, or none, once it is too late: every row handed out, or the load stopped) and how many connections
    /// it has then. Called before `run`, the connections start with it.
    @discardableResult
    func add(connections count: Int) -> (added: Int, total: Int) {
        crew.withLock { crew in
            var added = 0
            while added < count, !crew.finished, let index = queues.addQueue() {
                // Inside the lock: the reader, still running (not `finished`), keeps the group from ending first.
                if crew.open { startConnection(index) }
                added += 1
            }
            return (added, queues.count)
        }
    }

    func run() async throws -> Loaded {
        let (queues, outcome, sessions, group) = (queues, outcome, sessions, group)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Loaded, any Error>) in
                group.enter()
                crew.withLock { crew in
                    crew.open = true
                    for index in 0..<queues.count { startConnection(index) }
                }
                NamedThread.start("copy.reader") { [self] in
                    defer {
                        crew.withLock { $0.finished = true }
                        group.leave()
                    }
                    do {
                        outcome.loaded = try read(into: queues)
                        queues.close()
                    } catch {
                        outcome.fail(error)
                        queues.abort()
                        sessions.cancel()
                    }
                }
                group.notify(queue: .global()) {
                    if let error = outcome.error {
                        continuation.resume(throwing: error)
                    } else {
                        continuation.resume(returning: outcome.loaded ?? Loaded(rows: 0, bytes: 0))
                    }
                }
            }
        } onCancel: { [copy] in
            outcome.fail(ContingencyError.cancelled("the load of \(copy.statement.qualifiedName) was cancelled"))
            queues.abort()
            sessions.cancel()
        }
    }

    /// Connection `index`'s thread, in the load's group (call it with the group entered by a running reader).
    private func startConnection(_ index: Int) {
        group.enter()
        NamedThread.start("copy.\(index)") { [self] in
            defer { group.leave() }
            do {
                try load(from: queues, index, sessions: sessions)
            } catch {
                outcome.fail(error)
                queues.abort()
                sessions.cancel()
            }
        }
    }

    /// The reader's part: the block, cut into segments of whole rows, each to the connection with the least
    /// queued (the pieces of a long row to one connection).
    private func read(into queues: SegmentQueues) throws -> Loaded {
        var block = try CustomDumpDataBlock(
            source: try source { [queues] in queues.aborted }, intSize: copy.intSize, dumpId: dumpId)
        var splitter = CopyDataSplitter(segmentSize: segmentSize)
        var sticky: Int?
        func send(_ segment: CopyDataSplitter.Segment) throws {
            // The pieces of a long row to one connection; anything else to the least behind when there is room
            // (a connection added meanwhile included).
            let target: Int?
            if let sticky {
                target = queues.put(segment.bytes, to: sticky) ? sticky : nil
            } else {
                target = queues.putLeastQueued(segment.bytes)
            }
            guard let target else { throw Stopped() }
            sticky = segment.continues ? target : nil
        }
        do {
            try block.forEachRun { run in
                if let segment = try splitter.append(run) { try send(segment) }
            }
            if let last = try splitter.finish() { try send(last) }
        } catch let error as CopyDataSplitter.Malformed {
            throw ContingencyError.failed("the data of \(copy.statement.qualifiedName) in the dump: \(error)")
        } catch let error as CustomDumpDataBlock.Malformed {
            throw ContingencyError.failed("the data of \(copy.statement.qualifiedName) in the dump: \(error)")
        }
        return Loaded(rows: splitter.rows, bytes: splitter.bytes)
    }

    /// A connection's part: segments from its queue into one COPY, until the queues are closed (the COPY ends
    /// and commits) or aborted (the COPY is abandoned).
    private func load(from queues: SegmentQueues, _ index: Int, sessions: Sessions) throws {
        let session = try PostgresConnection(
            connection.with("dbname", database).with("application_name", applicationName))
        sessions.register(session)
        // Closed when this connection's part ends (the load lives on as long as its caller keeps it).
        defer { sessions.remove(session) }
        // pg_restore's own session set-up (pg_backup_archiver.c `_doSetFixedOutputState`), then the restore's.
        var sessionSettings = [
            ("client_encoding", copy.encoding), ("search_path", ""), ("row_security", "off"),
            ("statement_timeout", "0"), ("lock_timeout", "0"), ("idle_in_transaction_session_timeout", "0"),
            ("xmloption", "content"), ("check_function_bodies", "false"), ("client_min_messages", "warning"),
        ]
        sessionSettings += settings.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        for (name, value) in sessionSettings {
            try session.query("SELECT pg_catalog.set_config($1, $2, false)", [name, value])
        }
        // PostgreSQL 17's, which an older server does not know: one COPY lasts as long as its share of the table.
        try session.query(
            """
            SELECT pg_catalog.set_config(name, '0', false) FROM pg_catalog.pg_settings
            WHERE name = 'transaction_timeout'
            """)
        try session.startCopy(copy.statement.sql)
        while let segment = queues.take(index) {
            try segment.withUnsafeBytes { try session.sendCopyData($0) }
        }
        if queues.aborted {
            try? session.endCopy(failure: "the restore stopped")
            throw Stopped()
        }
        try session.endCopy()
    }

    /// The load stopped because another part of it failed (that part's error is the one reported).
    private struct Stopped: Error {}

    /// The load's sessions, so that a failure or a cancellation also reaches a connection waiting on the server
    /// (a COPY blocked on a stalled server, a result still awaited): each is asked to cancel what it runs, as
    /// pg_restore's jobs are stopped by a signal. libpq's cancel request is made for use from another thread.
    private final class Sessions: @unchecked Sendable {
        private let lock = NSLock()
        private var open: [PostgresConnection] = []
        private var cancelled = false

        func register(_ session: PostgresConnection) {
            let late = lock.withLock {
                open.append(session)
                return cancelled
            }
            if late { session.cancelRunningQuery() }
        }

        func remove(_ session: PostgresConnection) {
            lock.withLock { open.removeAll { $0 === session } }
        }

        func cancel() {
            let sessions = lock.withLock {
                cancelled = true
                return open
            }
            for session in sessions { session.cancelRunningQuery() }
        }
    }

    /// The first real error of any thread.
    private final class LoadOutcome: @unchecked Sendable {
        private let lock = NSLock()
        private var first: (any Error)?
        private var result: Loaded?

        func fail(_ error: any Error) {
            lock.withLock {
                if first == nil || (first is Stopped && !(error is Stopped)) { first = error }
            }
        }

        var error: (any Error)? { lock.withLock { first } }

        var loaded: Loaded? {
            get { lock.withLock { result } }
            set { lock.withLock { result = newValue } }
        }
    }
}

/// Segments of rows between the reader and the connections: a bounded queue per connection (the reader waits
/// when the one it chose is full), closed when the reader is done, all aborted when anything fails.
final class SegmentQueues: @unchecked Sendable {
    private let condition = NSCondition()
    private var queues: [[[UInt8]]]
    private var closed = false
    private var isAborted = false
    let capacity: Int

    init(count: Int, capacity: Int) {
        queues = Array(repeating: [], count: max(1, count))
        self.capacity = max(1, capacity)
    }

    var aborted: Bool { condition.withLock { isAborted } }

    /// How many queues (connections) there are.
    var count: Int { condition.withLock { queues.count } }

    /// A new, empty queue, for a connection added while the load runs: the next segments go to it first. Nil
    /// once the reader is done (nothing left to hand out) or the load stopped.
    func addQueue() -> Int? {
        condition.withLock {
            guard !closed, !isAborted else { return nil }
            queues.append([])
            return queues.count - 1
        }
    }

    /// Puts `segment` in the queue with the fewest segments waiting, its connection the least behind, once one
    /// has room (chosen then: a connection added meanwhile gets it); among equals, the next in turn (connections
    /// that keep up all get their share, so the server's work is spread over them all). Returns the queue, or
    /// nil when the queues were aborted.
    func putLeastQueued(_ segment: [UInt8]) -> Int? {
        condition.withLock {
            while !isAborted && queues.allSatisfy({ $0.count >= capacity }) { condition.wait() }
            guard !isAborted else { return nil }
            let order = queues.indices.map { (turn + $0) % queues.count }
            let chosen = order.min { queues[$0].count < queues[$1].count } ?? 0
            turn = (chosen + 1) % queues.count
            queues[chosen].append(segment)
            condition.broadcast()
            return chosen
        }
    }
    private var turn = 0

    /// Waits for room in queue `index`; false when the queues were aborted.
    func put(_ segment: [UInt8], to index: Int) -> Bool {
        condition.withLock {
            while queues[index].count >= capacity && !isAborted { condition.wait() }
            guard !isAborted else { return false }
            queues[index].append(segment)
            condition.broadcast()
            return true
        }
    }

    /// Queue `index`'s next segment; nil once the queues are closed and it is empty, or aborted.
    func take(_ index: Int) -> [UInt8]? {
        condition.withLock {
            while queues[index].isEmpty && !closed && !isAborted { condition.wait() }
            guard !isAborted, !queues[index].isEmpty else { return nil }
            let segment = queues[index].removeFirst()
            condition.broadcast()
            return segment
        }
    }

    func close() {
        condition.withLock {
            closed = true
            condition.broadcast()
        }
    }

    func abort() {
        condition.withLock {
            isAborted = true
            for index in queues.indices { queues[index].removeAll() }
            condition.broadcast()
        }
    }
}

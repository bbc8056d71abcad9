import BackupCore
import BackupInterop
import Foundation

/// Loads one large table's data through several connections at once, as pgcopydb splits large tables: the
/// table's data block is read from the staged dump (decrypted as it is read when sealed; as it arrives, never
/// past what has been checked, when plain and still arriving), cut into segments of
/// whole rows (`CopyDataSplitter`), and each segment goes to whichever of `connections` concurrent
/// `COPY … FROM STDIN` is free. pg_restore cannot do this: it loads a table through one connection whatever
/// `--jobs` says, so one table holding most of a database made its COPY the restore's critical path.
///
/// The rows end up the same as pg_restore's, in another physical order. Each connection is set up as
/// pg_restore sets up its own (the archive's client encoding, an empty search_path, row security off, no
/// timeouts, the restore's own settings). Only for the new database a restore makes, which nobody uses and
/// which is dropped if anything fails: the connections' COPYs commit one by one, so a failure leaves part of
/// the rows, like a failed pg_restore job.
///
/// Memory: at most two segments per connection queued, plus the one being cut.
struct SplitTableLoad {
    /// The table's data block, from its first byte: given a test of whether the load has stopped (for a source
    /// that waits for the block to arrive).
    let source: @Sendable (_ shouldStop: @escaping @Sendable () -> Bool) throws -> any ByteSource
    let dumpId: Int
    let copy: StreamedRestorePlan.SplitCopy
    let connection: ConnectionParameters
    let database: String
    let applicationName: String
    let settings: [String: String]
    let connections: Int
    var segmentSize = 1 << 20

    struct Loaded: Sendable {
        let rows: Int64
        let bytes: Int64
    }

    func run() async throws -> Loaded {
        let queue = SegmentQueue(capacity: 2 * connections)
        let outcome = LoadOutcome()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Loaded, any Error>) in
                let group = DispatchGroup()
                for index in 0..<connections {
                    group.enter()
                    let worker = Thread { [self] in
                        defer { group.leave() }
                        do {
                            try load(from: queue)
                        } catch {
                            outcome.fail(error)
                            queue.abort()
                        }
                    }
                    worker.name = "contingency-copy-\(index)"
                    worker.start()
                }
                group.enter()
                let reader = Thread { [self] in
                    defer { group.leave() }
                    do {
                        outcome.loaded = try read(into: queue)
                        queue.close()
                    } catch {
                        outcome.fail(error)
                        queue.abort()
                    }
                }
                reader.name = "contingency-copy-reader"
                reader.start()
                group.notify(queue: .global()) {
                    if let error = outcome.error {
                        continuation.resume(throwing: error)
                    } else {
                        continuation.resume(returning: outcome.loaded ?? Loaded(rows: 0, bytes: 0))
                    }
                }
            }
        } onCancel: {
            outcome.fail(ContingencyError.cancelled("the load of \(copy.statement.qualifiedName) was cancelled"))
            queue.abort()
        }
    }

    /// The reader's part: the block, cut into segments of whole rows, into the queue.
    private func read(into queue: SegmentQueue) throws -> Loaded {
        var block = try CustomDumpDataBlock(
            source: try source { queue.aborted }, intSize: copy.intSize, dumpId: dumpId)
        var splitter = CopyDataSplitter(segmentSize: segmentSize)
        do {
            try block.forEachRun { run in
                if let segment = try splitter.append(run) {
                    guard queue.put(segment) else { throw Stopped() }
                }
            }
            if let last = try splitter.finish() {
                guard queue.put(last) else { throw Stopped() }
            }
        } catch let error as CopyDataSplitter.Malformed {
            throw ContingencyError.failed("the data of \(copy.statement.qualifiedName) in the dump: \(error)")
        } catch let error as CustomDumpDataBlock.Malformed {
            throw ContingencyError.failed("the data of \(copy.statement.qualifiedName) in the dump: \(error)")
        }
        return Loaded(rows: splitter.rows, bytes: splitter.bytes)
    }

    /// A connection's part: segments from the queue into one COPY, until the queue is closed (the COPY ends and
    /// commits) or aborted (the COPY is abandoned).
    private func load(from queue: SegmentQueue) throws {
        let session = try PostgresConnection(
            connection.with("dbname", database).with("application_name", applicationName))
        var sessionSettings = [
            ("client_encoding", copy.encoding), ("search_path", ""), ("row_security", "off"),
            ("statement_timeout", "0"), ("lock_timeout", "0"), ("idle_in_transaction_session_timeout", "0"),
        ]
        sessionSettings += settings.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        for (name, value) in sessionSettings {
            try session.query("SELECT pg_catalog.set_config($1, $2, false)", [name, value])
        }
        try session.startCopy(copy.statement.sql)
        while let segment = queue.take() {
            try segment.withUnsafeBytes { try session.sendCopyData($0) }
        }
        if queue.aborted {
            try? session.endCopy(failure: "the restore stopped")
            throw Stopped()
        }
        try session.endCopy()
    }

    /// The load stopped because another part of it failed (that part's error is the one reported).
    private struct Stopped: Error {}

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

/// Segments of rows between the reader and the connections: bounded (the reader waits when it is full), taken
/// by whichever connection is free, closed when the reader is done, aborted when anything fails.
final class SegmentQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [[UInt8]] = []
    private var closed = false
    private var isAborted = false
    var aborted: Bool { condition.withLock { isAborted } }
    let capacity: Int

    init(capacity: Int) { self.capacity = max(1, capacity) }

    /// Waits for room; false when the queue was aborted.
    func put(_ segment: [UInt8]) -> Bool {
        condition.withLock {
            while items.count >= capacity && !isAborted { condition.wait() }
            guard !isAborted else { return false }
            items.append(segment)
            condition.broadcast()
            return true
        }
    }

    /// The next segment; nil once the queue is closed and empty, or aborted.
    func take() -> [UInt8]? {
        condition.withLock {
            while items.isEmpty && !closed && !isAborted { condition.wait() }
            guard !isAborted, !items.isEmpty else { return nil }
            let segment = items.removeFirst()
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
            items.removeAll()
            condition.broadcast()
        }
    }
}

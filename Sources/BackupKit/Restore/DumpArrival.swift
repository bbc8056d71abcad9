import BackupCore
import BackupInterop
import Foundation

/// The staged dump as it is being written: its table of contents once it is on disk, then each table's data
/// block once it is on disk whole, then its end. A restore into a new database follows these to start on each
/// table while the rest of the archive is still read (`StreamedDumpRestore`).
///
/// `observe` and `finish` run on the thread writing the dump, in order, each after its bytes are written;
/// `events` is read by one task.
final class DumpArrival: @unchecked Sendable {
    enum Event: Sendable {
        /// The header and table of contents are on disk.
        case contents(CustomDumpScanner.Contents)
        /// This entry's data block is on disk whole, at `range`.
        case block(dumpId: Int, range: Range<Int64>)
        /// This entry's data block, starting at `start`, is still arriving with `growing` bytes of it already on
        /// disk and checked: a large table, which may be read as it arrives (`frontier`, `waitForFrontier`).
        /// Announced once per block at most, before its `block`.
        case growing(dumpId: Int, start: Int64)
        /// The dump's layout can no longer be followed (or never could): what was announced stays valid; the
        /// rest has to wait for `staged`.
        case unfollowable(String)
        /// The whole dump is on disk. The last event, unless `abandoned`.
        case staged
        /// The dump is not to be used (it does not match the manifest). The last event.
        case abandoned(String)
    }

    let events: AsyncStream<Event>
    private let continuation: AsyncStream<Event>.Continuation
    /// A block still arriving is announced as `growing` once this much of it is on disk and checked.
    let growing: Int64
    private let scanner: CustomDumpScanner
    private var announcedContents = false
    private var announcedFailure = false
    private var closed = false
    private let lock = NSLock()

    /// How many of the bytes last written may still not be in the file.
    private let lag: Int64
    private var written: Int64 = 0
    private var held: [CustomDumpScanner.Block] = []
    /// With checked blocks, nothing past this has been checked against its recorded hash, so nothing past it
    /// is announced, however much is in the file.
    private var checkedFrontier: Int64

    /// `checkedBlocks`: announce only what `checked(through:)` has vouched for (a restore always does: see
    /// `BlockCheckingSink`); without, whatever is in the file.
    init(
        lag: Int64 = 0, checkedBlocks: Bool, tableOfContentsLimit: Int = CustomDumpScanner.tableOfContentsLimit,
        growing: Int64 = StreamedRestorePlan.batch
    ) {
        self.lag = lag
        self.growing = max(1, growing)
        checkedFrontier = checkedBlocks ? 0 : .max
        scanner = CustomDumpScanner(tableOfContentsLimit: tableOfContentsLimit)
        (events, continuation) = AsyncStream.makeStream(of: Event.self)
    }

    /// Every byte before `end` matches its recorded block hash.
    func checked(through end: Int64) {
        checkedFrontier = max(checkedFrontier, end)
        announce(upTo: written - lag)
    }

    /// The next bytes, just written (all but the last `lag` of them are in the file).
    func observe(_ bytes: UnsafeRawBufferPointer) {
        written += Int64(bytes.count)
        held += scanner.consume(bytes)
        announce(upTo: written - lag)
    }

    /// After the last byte is in the file.
    func finish() {
        held += scanner.finish()
        announce(upTo: written)
        frontierChanged.withLock {
            ended = .some(nil)
            frontierChanged.broadcast()
        }
        close(.staged)
    }

    /// The dump is not to be used after all.
    func abandon(_ why: String) {
        frontierChanged.withLock {
            ended = .some(why)
            frontierChanged.broadcast()
        }
        close(.abandoned(why))
    }

    /// What lies entirely before `frontier`, the part of the dump known to be in the file.
    private func announce(upTo written: Int64) {
        let frontier = min(written, checkedFrontier)
        advance(frontier)
        guard let contents = scanner.contents, contents.tableOfContentsSize <= frontier else {
            return announceFailure()
        }
        if !announcedContents {
            announcedContents = true
            send(.contents(contents))
        }
        let ready = held.prefix { $0.range.upperBound <= frontier }
        held.removeFirst(ready.count)
        for block in ready { send(.block(dumpId: block.dumpId, range: block.range)) }
        // A block still arriving, once enough of it is there (never one already whole: it is `held` then).
        if let current = scanner.blockInProgress, !announcedGrowing.contains(current.dumpId),
            !held.contains(where: { $0.dumpId == current.dumpId }), frontier - current.start >= growing
        {
            announcedGrowing.insert(current.dumpId)
            send(.growing(dumpId: current.dumpId, start: current.start))
        }
        announceFailure()
    }

    private var announcedGrowing: Set<Int> = []

    // MARK: - Reading what has arrived

    private let frontierChanged = NSCondition()
    private var readable: Int64 = 0
    private var ended: String?? = nil

    /// How much of the dump, from its start, is on disk and checked: safe to read.
    var frontier: Int64 { frontierChanged.withLock { readable } }

    private func advance(_ frontier: Int64) {
        frontierChanged.withLock {
            guard frontier > readable else { return }
            readable = frontier
            frontierChanged.broadcast()
        }
    }

    /// Waits until the frontier is past `position` and returns it; nil when the whole dump is staged and ends
    /// at or before `position`. Throws when the dump was abandoned (it does not match its manifest), or when
    /// `shouldStop` says so (checked at least every 100 ms).
    func waitForFrontier(beyond position: Int64, shouldStop: () -> Bool) throws -> Int64? {
        try frontierChanged.withLock {
            while readable <= position {
                if let ended {
                    if let why = ended { throw ContingencyError.failed(why) }
                    return nil
                }
                if shouldStop() { throw ContingencyError.cancelled() }
                _ = frontierChanged.wait(until: Date().addingTimeInterval(0.1))
            }
            return readable
        }
    }

    private func announceFailure() {
        if !announcedFailure, let failure = scanner.failure {
            announcedFailure = true
            send(.unfollowable(failure))
        }
    }

    private func send(_ event: Event) {
        lock.withLock { if !closed { continuation.yield(event) } }
    }

    private func close(_ last: Event) {
        lock.withLock {
            guard !closed else { return }
            closed = true
            continuation.yield(last)
            continuation.finish()
        }
    }
}

/// Tells a `DumpArrival` what has been written, after it is written.
final class ObservedSink: ByteSink {
    private let next: any ByteSink
    private let arrival: DumpArrival

    init(_ next: any ByteSink, arrival: DumpArrival) {
        self.next = next
        self.arrival = arrival
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try next.write(bytes)
        arrival.observe(bytes)
    }
}

/// Checks the dump block by block against the hashes its manifest records (`BlockHashes`) as it is staged, and
/// only then lets its arrival announce those bytes: a restore that starts on a dump as it arrives never gives
/// pg_restore a byte that has not been checked. A block that does not match, or a dump longer or shorter than
/// recorded, fails the staging at once.
final class BlockCheckingSink: ByteSink {
    private let next: any ByteSink
    private let expected: BackupMetadata.Member
    private let blocks: BlockHashes
    private let arrival: DumpArrival?
    private var hasher: BlockHasher!
    private var written: Int64 = 0

    init(_ next: any ByteSink, expected: BackupMetadata.Member, blocks: BlockHashes, arrival: DumpArrival?) {
        self.next = next
        self.expected = expected
        self.blocks = blocks
        self.arrival = arrival
        hasher = BlockHasher(blockSize: blocks.blockSize) { [unowned self] index, hash in try self.completed(index, hash) }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard written + Int64(bytes.count) <= expected.size else {
            throw mismatch("it is longer than the \(expected.size) bytes recorded")
        }
        try next.write(bytes)
        written += Int64(bytes.count)
        try hasher.update(bytes)
    }

    /// After the last byte: the last block is checked, and the dump's length.
    func finish() throws {
        try hasher.finish()
        guard written == expected.size else {
            throw mismatch("it has \(written) bytes, \(expected.size) recorded")
        }
    }

    private func completed(_ index: Int, _ hash: String) throws {
        guard index < blocks.sha256.count, blocks.sha256[index] == hash else {
            let start = Int64(index) * blocks.blockSize
            throw mismatch("its block \(index + 1) (bytes \(start) to \(min(start + blocks.blockSize, written))) does not match its recorded sha256")
        }
        arrival?.checked(through: min(Int64(index + 1) * blocks.blockSize, expected.size))
    }

    private func mismatch(_ what: String) -> ContingencyError {
        arrival?.abandon("database.dump does not match the manifest")
        return .failed("database.dump does not match the manifest: \(what)", hint: "restore an older backup (LATEST_BACKUP=…)")
    }
}

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
        /// This entry's data block has begun at `start`, and its first bytes are on disk (and checked); the rest
        /// follows (`bytes(after:)`). Only for a block still arriving when its start is announced.
        case opened(dumpId: Int, start: Int64)
        /// This entry's data block is on disk whole, at `range`.
        case block(dumpId: Int, range: Range<Int64>)
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
    /// The block begun and not yet announced, whole or begun.
    private var opening: (dumpId: Int, start: Int64)?
    /// Where the last block the scanner said was begun starts: each is announced once at most.
    private var lastOpened: Int64 = -1
    /// What a reader following the dump may read (`bytes(after:)`): the bytes in the file and checked, all of
    /// them once the dump is staged; nil once it is abandoned, and why.
    private let following = NSCondition()
    private var followable: (frontier: Int64, whole: Bool)? = (0, false)
    private var abandonedBecause = ""

    /// `checkedBlocks`: announce only what `checked(through:)` has vouched for (a restore always does: see
    /// `BlockCheckingSink`); without, whatever is in the file.
    init(lag: Int64 = 0, checkedBlocks: Bool, tableOfContentsLimit: Int = CustomDumpScanner.tableOfContentsLimit) {
        self.lag = lag
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
        if scanner.failure != nil {
            opening = nil  // unfollowable from here: nothing more is announced but whole blocks
        } else if let opened = scanner.opened, opened.start != lastOpened {
            lastOpened = opened.start
            opening = opened
        }
        announce(upTo: written - lag)
    }

    /// After the last byte is in the file.
    func finish() {
        held += scanner.finish()
        announce(upTo: written)
        follow(min(written, checkedFrontier), whole: true)
        close(.staged)
    }

    /// The dump is not to be used after all.
    func abandon(_ why: String) {
        following.withLock {
            if followable != nil { abandonedBecause = why }
            followable = nil
            following.broadcast()
        }
        close(.abandoned(why))
    }

    /// What lies entirely before `frontier`, the part of the dump known to be in the file.
    private func announce(upTo written: Int64) {
        let frontier = min(written, checkedFrontier)
        guard let contents = scanner.contents, contents.tableOfContentsSize <= frontier else {
            return announceFailure()
        }
        if !announcedContents {
            announcedContents = true
            send(.contents(contents))
        }
        let ready = held.prefix { $0.range.upperBound <= frontier }
        held.removeFirst(ready.count)
        for block in ready {
            if block.dumpId == opening?.dumpId && block.range.lowerBound == opening?.start { opening = nil }
            send(.block(dumpId: block.dumpId, range: block.range))
        }
        if let begun = opening, held.isEmpty, begun.start < frontier {
            opening = nil
            send(.opened(dumpId: begun.dumpId, start: begun.start))
        }
        follow(frontier, whole: false)
        announceFailure()
    }

    /// Waits until the file holds checked bytes past `offset`, and returns where they end (`whole`: the end of
    /// the dump). Throws when the dump is abandoned, or when `stopped` says so (asked every 100 ms): a reader
    /// that follows a block as it arrives stops with the restore.
    func bytes(after offset: Int64, stopped: () -> Bool) throws -> (end: Int64, whole: Bool) {
        following.lock()
        defer { following.unlock() }
        while true {
            guard let followable else { throw ContingencyError.failed(abandonedBecause) }
            if followable.frontier > offset || followable.whole { return (followable.frontier, followable.whole) }
            if stopped() { throw ContingencyError.cancelled("the restore stopped") }
            _ = following.wait(until: Date().addingTimeInterval(0.1))
        }
    }

    private func follow(_ frontier: Int64, whole: Bool) {
        following.withLock {
            guard let current = followable, !current.whole else { return }
            followable = (max(current.frontier, frontier), whole)
            following.broadcast()
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

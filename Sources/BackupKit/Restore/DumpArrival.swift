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

    init(lag: Int64 = 0, tableOfContentsLimit: Int = CustomDumpScanner.tableOfContentsLimit) {
        self.lag = lag
        scanner = CustomDumpScanner(tableOfContentsLimit: tableOfContentsLimit)
        (events, continuation) = AsyncStream.makeStream(of: Event.self)
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
        close(.staged)
    }

    /// The dump is not to be used after all.
    func abandon(_ why: String) {
        close(.abandoned(why))
    }

    /// What lies entirely before `frontier`, the part of the dump known to be in the file.
    private func announce(upTo frontier: Int64) {
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
        announceFailure()
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

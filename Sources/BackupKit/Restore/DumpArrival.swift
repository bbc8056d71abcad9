import BackupCore
import BackupInterop
import Foundation

/// The staged dump as it is being written: its table of contents once it is on disk, then each table's data
/// block once it is on disk whole, then its end. A restore into a new database follows these to start on each
/// table while the rest of the archive is still read (`StreamedDumpRestore`).
///
/// `observe` and `finish` run on the thread writing the dump, in order, each after its bytes are in the file;
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
    private let scanner = CustomDumpScanner()
    private var announcedContents = false
    private var announcedFailure = false
    private var closed = false
    private let lock = NSLock()

    init() {
        (events, continuation) = AsyncStream.makeStream(of: Event.self)
    }

    /// The next bytes, just written to the staged file.
    func observe(_ bytes: UnsafeRawBufferPointer) {
        announce(scanner.consume(bytes))
    }

    /// After the last byte is in the file.
    func finish() {
        announce(scanner.finish())
        close(.staged)
    }

    /// The dump is not to be used after all.
    func abandon(_ why: String) {
        close(.abandoned(why))
    }

    private func announce(_ blocks: [CustomDumpScanner.Block]) {
        if !announcedContents, let contents = scanner.contents {
            announcedContents = true
            send(.contents(contents))
        }
        for block in blocks { send(.block(dumpId: block.dumpId, range: block.range)) }
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

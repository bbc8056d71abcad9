import BackupCore
import Foundation
import Testing

@testable import BackupInterop

@Suite("Writing on a second thread")
struct ThreadedSinkTests {
    /// Keeps what reaches it; fails once it has taken `failAfter` bytes.
    final class RecordingSink: ByteSink, @unchecked Sendable {
        private let lock = NSLock()
        private var stored: [UInt8] = []
        private var writes = 0
        let failAfter: Int?

        init(failAfter: Int? = nil) { self.failAfter = failAfter }

        var bytes: [UInt8] { lock.withLock { stored } }
        var writeCount: Int { lock.withLock { writes } }

        func write(_ bytes: UnsafeRawBufferPointer) throws {
            try lock.withLock {
                writes += 1
                if let failAfter, stored.count >= failAfter { throw ContingencyError.failed("disk full (test)") }
                stored.append(contentsOf: bytes)
            }
        }
    }

    @Test("every byte reaches the sink, in order, whatever the sizes of the writes", arguments: [1, 3])
    func order(depth: Int) throws {
        var expected: [UInt8] = []
        let recording = RecordingSink()
        let sink = ThreadedSink(recording, depth: depth)
        for round in 0..<120 {
            let size = [0, 1, 7, 4096, 65_537, 300_000][round % 6]
            // Each chunk's bytes depend on its round: a chunk out of order or written twice shows.
            let chunk = [UInt8](repeating: UInt8(truncatingIfNeeded: round), count: size)
            try chunk.withUnsafeBytes { try sink.write($0) }
            expected += chunk
        }
        try sink.finish()
        #expect(recording.bytes == expected)
        try sink.finish()  // a second finish is harmless
    }

    @Test("the sink's error comes back from a later write or from finish, and nothing more reaches it")
    func failure() throws {
        let recording = RecordingSink(failAfter: 10_000)
        let sink = ThreadedSink(recording)
        let chunk = [UInt8](repeating: 7, count: 4096)
        var thrown: (any Error)?
        for _ in 0..<1000 where thrown == nil {
            do { try chunk.withUnsafeBytes { try sink.write($0) } } catch { thrown = error }
        }
        do { try sink.finish() } catch { thrown = thrown ?? error }
        let error = try #require(thrown as? ContingencyError)
        #expect(error.message.contains("disk full (test)"))
        #expect(recording.bytes.count == 12_288)  // three writes took, the fourth failed
        #expect(recording.writeCount == 4)
    }
}

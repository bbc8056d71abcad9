import BackupCore
import Dispatch
import Foundation

/// Hands what is written to another sink that runs on a thread of its own, so that the caller (reading and
/// inflating an archive) and the work behind `next` (hashing, encrypting, a file's write system calls) use two
/// processors instead of taking turns on one.
///
/// Memory is bounded: at most `depth` chunks in flight, each a copy of one `write`. The first error `next`
/// throws is thrown again by the following `write` or by `finish`; after it, nothing more reaches `next`.
/// `finish` must be called, on success and on failure alike (it ends the thread): callers do it in a `defer`
/// or right after the last `write`.
///
/// The slots are handed between the caller and the thread by the two semaphores, which also order the memory
/// accesses: that hand-over is what `@unchecked Sendable` stands for.
public final class ThreadedSink: ByteSink, @unchecked Sendable {
    private let next: any ByteSink
    private let free: DispatchSemaphore
    private let ready = DispatchSemaphore(value: 0)
    private let ended = DispatchSemaphore(value: 0)
    private var slots: [[UInt8]]
    /// Bytes in each slot; nil marks the end.
    private var counts: [Int?]
    private var writeIndex = 0
    private let lock = NSLock()
    private var failure: (any Error)?
    private var finished = false

    public init(_ next: any ByteSink, depth: Int = 3) {
        self.next = next
        free = DispatchSemaphore(value: depth)
        slots = Array(repeating: [], count: depth)
        counts = Array(repeating: 0, count: depth)
        NamedThread.start("sink.writer") { [self] in drain() }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        if let failure = currentFailure() { throw failure }
        guard bytes.count > 0 else { return }
        free.wait()
        let index = writeIndex
        if slots[index].count < bytes.count { slots[index] = [UInt8](repeating: 0, count: bytes.count) }
        slots[index].withUnsafeMutableBytes { $0.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        counts[index] = bytes.count
        writeIndex = (index + 1) % slots.count
        ready.signal()
    }

    /// Waits until everything written has reached `next`, and ends the thread. Throws `next`'s first error.
    public func finish() throws {
        if !finished {
            finished = true
            free.wait()
            counts[writeIndex] = nil
            ready.signal()
            ended.wait()
        }
        if let failure = currentFailure() { throw failure }
    }

    private func drain() {
        var index = 0
        while true {
            ready.wait()
            guard let count = counts[index] else {
                // The end marker's slot too: a semaphore must be back at its first value when freed.
                free.signal()
                break
            }
            if currentFailure() == nil {
                do {
                    try slots[index].withUnsafeBytes { try next.write(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
                } catch {
                    lock.withLock { failure = error }
                }
            }
            index = (index + 1) % slots.count
            free.signal()
        }
        ended.signal()
    }

    private func currentFailure() -> (any Error)? { lock.withLock { failure } }
}

import BackupCore
import BackupInterop
import BackupKit
import Foundation
import Testing
import TestSupport

/// A backup's own threads yield to the sidecar's server: its synchronous work runs on `BackgroundExecutor`'s thread,
/// off the cooperative pool, at `ThreadPriority.background`, still inside its task (cancellation reaches it), and
/// the compressors' workers run at that priority too. The latency this buys is the benchmark's business
/// (bench/sidecar.sh); these check the mechanism.
@Suite("Backup thread priority")
struct BackupPriorityTests {
    /// Threads of this process whose name starts with `prefix`: their nice values.
    static func niceValues(named prefix: String) -> [Int] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.compactMap { task in
            guard let stat = try? String(contentsOfFile: "/proc/self/task/\(task)/stat", encoding: .utf8),
                let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")")
            else { return nil }
            guard stat[stat.index(after: open)..<close].hasPrefix(prefix) else { return nil }
            // Fields after the name: state is the first, nice the 17th.
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            return fields.count > 16 ? Int(fields[16]) : nil
        }
    }

    /// The calling thread's id, as Linux knows it (glibc does not declare `gettid` for Swift).
    static func currentThreadID() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self")) ?? ""
    }

    static let input: [UInt8] = (0..<(6 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }

    @Test("the backup's synchronous work runs off the cooperative pool at the lower priority, and sees cancellation")
    func executorThread() async throws {
        let executor = BackgroundExecutor()
        defer { executor.stop() }
        let before = ThreadPriority.currentThread()
        let (nice, thread) = await withTaskExecutorPreference(executor) {
            (ThreadPriority.currentThread(), Self.currentThreadID())
        }
        let again = await withTaskExecutorPreference(executor) { Self.currentThreadID() }
        #expect(nice == ThreadPriority.background)
        // Always the executor's one thread, never the caller's.
        #expect(!thread.isEmpty && thread == again)
        #expect(Self.currentThreadID() != thread)
        // Back on the pool, whose threads keep their priority.
        #expect(ThreadPriority.currentThread() == before)

        let cancelled = Task {
            try? await Task.sleep(for: .seconds(60))
            return await withTaskExecutorPreference(executor) { Task.isCancelled }
        }
        cancelled.cancel()
        #expect(await cancelled.value)
    }

    @Test("a NamedThread has its name in the system and its priority before its body runs, started from any thread")
    func namedThreads() async throws {
        // Many at once, so that some new threads run before their creator returns from starting them: the case in
        // which Foundation's `Thread.name` drops the name.
        let seen = await withTaskGroup(of: (String, Int32).self) { group in
            for index in 0..<64 {
                group.addTask {
                    await withCheckedContinuation { continuation in
                        NamedThread.start("test.named.\(index)", lowered: index.isMultiple(of: 2)) {
                            let comm = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
                            continuation.resume(returning: (comm, ThreadPriority.currentThread()))
                        }
                    }
                }
            }
            return await group.reduce(into: [String: Int32]()) { $0[$1.0] = $1.1 }
        }
        #expect(seen.count == 64)
        for index in 0..<64 {
            // Linux keeps 15 bytes of a name.
            let name = String("test.named.\(index)".prefix(15)) + "\n"
            #expect(seen[name] != nil, "thread \(index) did not carry its name")
            if index.isMultiple(of: 2) { #expect(seen[name] == ThreadPriority.background) }
        }
    }

    @Test("gzip's workers are threads of the sink's own at the lower priority")
    func gzipWorkers() async throws {
        let output = MemorySink(limit: 1 << 24)
        let sink = try ParallelGzipSink(level: 1, threads: 2, blockSize: 1 << 20, next: output)
        try Self.input.withUnsafeBytes { try sink.write($0) }
        // Other suites of this process may compress at the same time: at least this sink's two. Each worker names
        // itself, then lowers its priority, as it starts: wait until both have (a busy machine starts them late).
        try await eventually(timeout: .seconds(30), "two named gzip workers at the lower priority") {
            let workers = Self.niceValues(named: "backup.gzip")
            return workers.count >= 2 && workers.allSatisfy { $0 == Int(ThreadPriority.background) }
        }
        try sink.finish()
        #expect(!output.bytes.isEmpty)
    }

    @Test("zstd's workers, made by libzstd, inherit the lower priority; the caller's thread keeps its own")
    func zstdWorkers() throws {
        let before = ThreadPriority.currentThread()
        let output = MemorySink(limit: 1 << 24)
        let sink = try ZstdSink(level: 1, threads: 2, next: output)
        try Self.input.withUnsafeBytes { try sink.write($0) }
        try sink.finish()
        // libzstd's workers take the name of the thread that made them (Linux copies it), and its priority.
        let workers = Self.niceValues(named: "backup.zstd")
        #expect(workers.count >= 2)
        #expect(workers.allSatisfy { $0 == Int(ThreadPriority.background) })
        #expect(ThreadPriority.currentThread() == before)
        #expect(!output.bytes.isEmpty)
    }
}

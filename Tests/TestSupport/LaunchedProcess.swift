import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A child process running in the background (started by `ProcessRunner.launch`), whose output is
/// collected while it runs. Tests use it to interrupt a job midway (`kill(SIGKILL)`), to pause it
/// (`kill(SIGSTOP)`, `isStopped`) or to wait for it with a time limit.
///
/// The child is the leader of its own process group (Foundation's `Process` does this), so
/// `kill(_:includingChildren: true)` reaches its helpers too. A child still running when this
/// object is deallocated is killed with its process group, so a failing test leaks nothing.
public final class LaunchedProcess: Sendable {
    /// The child's process id (also its process group id).
    public let pid: Int32
    /// The command line, shell-quoted, for messages.
    public let command: String

    private let process: Process
    private let stdoutReader: PipeReader
    private let stderrReader: PipeReader
    private let observedExit = Mutex<(code: Int32, signalled: Bool)?>(nil)

    /// After the child exits, how long to wait for its pipes to reach end-of-file (a grandchild
    /// that inherited them may keep them open) before returning what was read.
    private static let pipeDrainGrace: Duration = .seconds(2)

    init(executableURL: URL, arguments: [String], environment: [String: String],
         stdin: Data?, workingDirectory: URL?) throws {
        command = ([executableURL.path] + arguments).map(ProcessRunner.shellQuote).joined(separator: " ")
        let process = Process()
        process.executableURL = executableURL
        process.arguments = arguments
        process.environment = environment
        if let workingDirectory { process.currentDirectoryURL = workingDirectory }
        let outPipe = Pipe()
        let errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        let inPipe: Pipe? = stdin == nil ? nil : Pipe()
        process.standardInput = inPipe ?? FileHandle.nullDevice
        if let error = Self.spawnWithDefaultSignalMask(process) {
            throw ProcessError.launchFailed(command: command, reason: "\(error)")
        }
        self.process = process
        pid = process.processIdentifier
        stdoutReader = PipeReader(outPipe.fileHandleForReading)
        stderrReader = PipeReader(errPipe.fileHandleForReading)
        if let stdin, let inPipe {
            PipeWriter.start(writing: stdin, to: inPipe.fileHandleForWriting)
        }
    }

    deinit {
        if exitStatus() == nil {
            sendSignal(-pid, SIGKILL)
        }
    }

    /// Whether the child has not exited yet (it may be stopped).
    public var isRunning: Bool { exitStatus() == nil }

    /// Whether the child is stopped (state "T" in /proc/<pid>/stat, e.g. after SIGSTOP).
    public var isStopped: Bool {
        guard process.isRunning else { return false }
        return Self.procStat(pid)?.state == "T"
    }

    /// Standard output collected so far.
    public var stdoutSoFar: String { stdoutReader.text }
    /// Standard error collected so far.
    public var stderrSoFar: String { stderrReader.text }

    /// Sends `signal` to the child (default SIGKILL), or to its whole process group when
    /// `includingChildren` is true. Does nothing once the child has exited, except that a group
    /// is still signalled (the leader's helpers may outlive it).
    public func kill(_ signal: Int32 = SIGKILL, includingChildren: Bool = false) {
        if includingChildren {
            if process.isRunning { sendSignal(-pid, signal) }  // the pid stays reserved until reaped
        } else if exitStatus() == nil {
            sendSignal(pid, signal)
        }
    }

    /// Waits until the child exits and returns its result. If it is still running after
    /// `timeout`, it is killed with its process group and `ProcessError.timedOut` is thrown.
    /// If the waiting task is cancelled, the child is killed likewise and `CancellationError` thrown.
    public func waitForExit(timeout: Duration = .seconds(60)) async throws -> ProcessResult {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        var interval: Duration = .milliseconds(1)
        while exitStatus() == nil {
            if clock.now >= deadline {
                let partial = await killAndCollect()
                throw ProcessError.timedOut(command: command, timeout: timeout, partial: partial)
            }
            do {
                try await Task.sleep(for: interval)
            } catch {
                _ = await killAndCollect()
                throw error
            }
            interval = min(interval * 2, .milliseconds(20))
        }
        return await collect()
    }

    /// Blocking variant of `waitForExit(timeout:)` for synchronous code; same behaviour,
    /// but it blocks the calling thread and ignores task cancellation.
    public func waitForExitBlocking(timeout: Duration = .seconds(60)) throws -> ProcessResult {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while exitStatus() == nil {
            if clock.now >= deadline {
                if process.isRunning { sendSignal(-pid, SIGKILL) }
                while exitStatus() == nil { usleep(1000) }
                throw ProcessError.timedOut(command: command, timeout: timeout, partial: collectBlocking())
            }
            usleep(1000)
        }
        return collectBlocking()
    }

    /// Sends SIGTERM to the child, waits up to `gracePeriod` for it to exit, then kills its
    /// process group with SIGKILL; returns the result either way.
    @discardableResult
    public func terminateAndWait(gracePeriod: Duration = .seconds(5)) async -> ProcessResult {
        kill(SIGTERM)
        if let result = try? await waitForExit(timeout: gracePeriod) {
            return result
        }
        // waitForExit killed the group on timeout (or cancellation); the child is gone now.
        return await killAndCollect()
    }

    // MARK: - Internals

    /// The child's wait status decoded as (exit code or signal, killed by a signal), or nil while
    /// it runs.
    ///
    /// Foundation's `Process` notices an exit only when a socket it hands to the child reaches
    /// end-of-file; a child that starts a daemon (`pg_ctl start`) passes that socket on, so
    /// Foundation would report it running until the daemon stops. A child that has exited but
    /// is not reaped yet is a zombie, though, and Linux shows its wait status in /proc/<pid>/stat
    /// (the pid cannot be reused before Foundation reaps it, so this is safe).
    ///
    /// The first status seen is kept: once Foundation reaps the zombie, /proc no longer shows it, and
    /// `Process.isRunning` turns false only a moment later, on Foundation's own queue.
    private func exitStatus() -> (code: Int32, signalled: Bool)? {
        if let known = observedExit.withLock({ $0 }) { return known }
        let status: (code: Int32, signalled: Bool)?
        if !process.isRunning {
            status = (process.terminationStatus, process.terminationReason == .uncaughtSignal)
        } else if let stat = Self.procStat(pid), stat.state == "Z" || stat.state == "X", let waitStatus = stat.exitCode {
            let signal = waitStatus & 0x7F
            status = signal == 0 ? ((waitStatus >> 8) & 0xFF, false) : (signal, true)
        } else {
            status = nil
        }
        if let status { observedExit.withLock { $0 = status } }
        return status
    }

    private func killAndCollect() async -> ProcessResult {
        if process.isRunning { sendSignal(-pid, SIGKILL) }  // not reaped: the pid is still ours
        while exitStatus() == nil {
            // Not cancellable on purpose: a killed child is gone within milliseconds.
            usleep(1000)
            await Task.yield()
        }
        return await collect()
    }

    private func collect() async -> ProcessResult {
        let clock = ContinuousClock()
        let drainDeadline = clock.now.advanced(by: Self.pipeDrainGrace)
        while !(stdoutReader.isFinished && stderrReader.isFinished) && clock.now < drainDeadline {
            try? await Task.sleep(for: .milliseconds(1))
        }
        return makeResult()
    }

    private func collectBlocking() -> ProcessResult {
        let clock = ContinuousClock()
        let drainDeadline = clock.now.advanced(by: Self.pipeDrainGrace)
        while !(stdoutReader.isFinished && stderrReader.isFinished) && clock.now < drainDeadline {
            usleep(1000)
        }
        return makeResult()
    }

    private func makeResult() -> ProcessResult {
        let (code, signalled) = exitStatus() ?? (-1, false)
        return ProcessResult(
            status: signalled ? 128 + code : code,
            stdout: stdoutReader.text,
            stderr: stderrReader.text,
            terminationSignal: signalled ? code : nil
        )
    }

    /// Starts `process` from a short-lived thread whose signal mask is empty, and waits for that.
    ///
    /// A child inherits the signal mask of the thread that spawns it, and Foundation's `Process`
    /// does not reset it. Swift concurrency's worker threads block nearly every signal, so a
    /// child started from an async test would ignore SIGTERM, SIGINT, SIGHUP… forever.
    private static func spawnWithDefaultSignalMask(_ process: Process) -> (any Error)? {
        let failure = Mutex<(any Error)?>(nil)
        let launched = DispatchSemaphore(value: 0)
        let thread = Thread {
            var empty = sigset_t()
            sigemptyset(&empty)
            pthread_sigmask(SIG_SETMASK, &empty, nil)
            do {
                try process.run()
            } catch {
                failure.withLock { $0 = error }
            }
            launched.signal()
        }
        thread.start()
        launched.wait()
        return failure.withLock { $0 }
    }

    /// The state letter ("R", "S", "T", "Z", …) and, for an exited process, the wait status
    /// (field 52, exit_code) from /proc/<pid>/stat; nil if unreadable.
    static func procStat(_ pid: Int32) -> (state: String, exitCode: Int32?)? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        // Field 2, the command name, is in parentheses and may contain anything: skip past it.
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        guard let state = fields.first else { return nil }
        // fields[0] is field 3 (state), so field 52 is fields[49].
        let exitCode = fields.count > 49 ? Int32(fields[49].trimmingCharacters(in: .whitespacesAndNewlines)) : nil
        return (String(state), exitCode)
    }
}

/// `kill(2)`, callable from inside `LaunchedProcess` (whose `kill` method would shadow it).
private func sendSignal(_ pid: Int32, _ signal: Int32) {
    _ = kill(pid, signal)
}

import Foundation

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
        do {
            try process.run()
        } catch {
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
        if process.isRunning {
            sendSignal(-pid, SIGKILL)
        }
    }

    /// Whether the child has not been reaped yet (it may be stopped, but it has not exited).
    public var isRunning: Bool { process.isRunning }

    /// Whether the child is stopped (state "T" in /proc/<pid>/stat, e.g. after SIGSTOP).
    public var isStopped: Bool {
        guard process.isRunning else { return false }
        return Self.procState(pid) == "T"
    }

    /// Standard output collected so far.
    public var stdoutSoFar: String { stdoutReader.text }
    /// Standard error collected so far.
    public var stderrSoFar: String { stderrReader.text }

    /// Sends `signal` to the child (default SIGKILL), or to its whole process group when
    /// `includingChildren` is true. Does nothing once the child has been reaped.
    public func kill(_ signal: Int32 = SIGKILL, includingChildren: Bool = false) {
        guard process.isRunning else { return }
        sendSignal(includingChildren ? -pid : pid, signal)
    }

    /// Waits until the child exits and returns its result. If it is still running after
    /// `timeout`, it is killed with its process group and `ProcessError.timedOut` is thrown.
    /// If the waiting task is cancelled, the child is killed likewise and `CancellationError` thrown.
    public func waitForExit(timeout: Duration = .seconds(60)) async throws -> ProcessResult {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        var interval: Duration = .milliseconds(1)
        while process.isRunning {
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
        while process.isRunning {
            if clock.now >= deadline {
                sendSignal(-pid, SIGKILL)
                while process.isRunning { usleep(1000) }
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

    private func killAndCollect() async -> ProcessResult {
        if process.isRunning { sendSignal(-pid, SIGKILL) }
        while process.isRunning {
            // Not cancellable on purpose: a killed child is reaped within milliseconds.
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
        let signalled = process.terminationReason == .uncaughtSignal
        let code = process.terminationStatus
        return ProcessResult(
            status: signalled ? 128 + code : code,
            stdout: stdoutReader.text,
            stderr: stderrReader.text,
            terminationSignal: signalled ? code : nil
        )
    }

    /// The one-letter state from /proc/<pid>/stat ("R", "S", "T", "Z", …), or nil if unreadable.
    static func procState(_ pid: Int32) -> String? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")")
        else { return nil }
        let rest = stat[stat.index(after: close)...].drop(while: { $0 == " " })
        return rest.first.map(String.init)
    }
}

/// `kill(2)`, callable from inside `LaunchedProcess` (whose `kill` method would shadow it).
private func sendSignal(_ pid: Int32, _ signal: Int32) {
    _ = kill(pid, signal)
}

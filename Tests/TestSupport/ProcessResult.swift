/// How a child process ended and what it printed.
public struct ProcessResult: Sendable, Equatable, CustomStringConvertible {
    /// The exit status; for a child killed by a signal, 128 + the signal number (as a shell reports it).
    public let status: Int32
    /// Everything the child wrote to standard output (invalid UTF-8 repaired).
    public let stdout: String
    /// Everything the child wrote to standard error (invalid UTF-8 repaired).
    public let stderr: String
    /// The signal that killed the child, or nil when it exited by itself.
    public let terminationSignal: Int32?

    /// Creates a result; `status` should be 128 + signal when `terminationSignal` is set.
    public init(status: Int32, stdout: String, stderr: String, terminationSignal: Int32? = nil) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
        self.terminationSignal = terminationSignal
    }

    /// Whether the child exited by itself with status 0.
    public var succeeded: Bool { status == 0 && terminationSignal == nil }

    /// Status, signal and both outputs, for failure messages.
    public var description: String {
        var text = terminationSignal.map { "killed by signal \($0) (status \(status))" } ?? "exit status \(status)"
        if !stdout.isEmpty { text += "\n--- stdout ---\n" + stdout }
        if !stderr.isEmpty { text += "\n--- stderr ---\n" + stderr }
        return text
    }
}

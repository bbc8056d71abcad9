/// Why `ProcessRunner` or `LaunchedProcess` could not deliver a normal result.
public enum ProcessError: Error, CustomStringConvertible, Sendable {
    /// The executable could not be found or started.
    case launchFailed(command: String, reason: String)
    /// The child ran longer than allowed and was killed (with its process group); `partial`
    /// holds what it had printed and its final status.
    case timedOut(command: String, timeout: Duration, partial: ProcessResult)
    /// The child ended unsuccessfully and the caller asked for success (`requireSuccess: true`).
    case failed(command: String, result: ProcessResult)

    /// A readable account including the command line and the child's output.
    public var description: String {
        switch self {
        case let .launchFailed(command, reason):
            return "Could not launch `\(command)`: \(reason)"
        case let .timedOut(command, timeout, partial):
            return "`\(command)` did not finish within \(EventuallyTimeoutError.seconds(timeout)) and was killed; \(partial)"
        case let .failed(command, result):
            return "`\(command)` failed: \(result)"
        }
    }
}

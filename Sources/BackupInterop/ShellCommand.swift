import BackupCore
import Foundation
import Subprocess

/// An operator's shell command (a pre or post hook), run with `/bin/sh -c`, a time limit and extra
/// environment variables. The product's own secrets are not passed on. It runs under `ChildGuard`: when the
/// job dies, the command's whole process group is killed with it.
public struct ShellCommand: Sendable {
    public let command: String
    public let timeoutSeconds: Int

    public init(_ command: String, timeoutSeconds: Int) {
        self.command = command
        self.timeoutSeconds = timeoutSeconds
    }

    /// What the command printed (standard output and error, the last 64 KiB) and how it ended.
    public struct Outcome: Sendable {
        public let status: TerminationStatus
        public let output: String
        public let timedOut: Bool
        public var succeeded: Bool { status.isSuccess && !timedOut }
    }

    /// Runs the command to completion, or stops it once the time is up: SIGTERM to its whole process group
    /// (a shell's children too), SIGKILL 5 s later.
    public func run(environment: [String: String]) async throws -> Outcome {
        var options = PlatformOptions()
        // Its own group (led by the guard), so a timeout, or the job's death, reaches everything it started.
        options.processGroupID = 0
        // Unlike pg_dump, a hook has no use for the database password either.
        let updates = PostgresTools.environmentUpdates(
            environment, withholding: PostgresTools.withheld + ["PGPASSWORD", "PGPASSFILE"])
        let timeout = timeoutSeconds
        let fired = TimeoutFlag()
        let (executable, arguments) = try ChildGuard.wrap("/bin/sh", ["-c", command])
        let result = try await Subprocess.run(
            executable, arguments: arguments, environment: .inherit.updating(updates),
            platformOptions: options, input: .none, output: .sequence, error: .combinedWithOutput
        ) { execution -> [UInt8] in
            let group = execution.processIdentifier.value
            let timer = Task {
                try await Task.sleep(for: .seconds(timeout))
                fired.set()
                kill(-group, SIGTERM)
                try await Task.sleep(for: .seconds(5))
                kill(-group, SIGKILL)
            }
            defer { timer.cancel() }
            // The output ends when every process holding it has closed it (or was killed at the time limit).
            var output: [UInt8] = []
            for try await buffer in execution.standardOutput {
                buffer.withUnsafeBytes { output.append(contentsOf: $0) }
                if output.count > 128 * 1024 { output.removeFirst(output.count - 64 * 1024) }
            }
            return output
        }
        return Outcome(
            status: result.terminationStatus, output: String(decoding: result.closureResult.suffix(64 * 1024), as: UTF8.self),
            timedOut: fired.isSet)
    }
}

/// Set once by the timer when a command ran out of time.
private final class TimeoutFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs child processes for tests: to completion with captured output and a time limit
/// (`run`, `runBlocking`), or in the background (`launch`).
///
/// Both pipes are drained on their own threads while the child runs, so a child that prints a lot
/// never blocks. A child that exceeds its time limit is killed together with its process group
/// (it is its group's leader), so a hung child cannot hang the suite.
public enum ProcessRunner {
    /// Runs `executable` (a path, or a name looked up in PATH) with `arguments` to completion.
    ///
    /// - Parameters:
    ///   - environment: Variables for the child. Merged over the current environment when
    ///     `inheritEnvironment` is true (the default), used alone when false; nil means the
    ///     current environment unchanged (or an empty one when `inheritEnvironment` is false).
    ///   - stdin: Bytes fed to the child's standard input, which is then closed; nil connects
    ///     standard input to /dev/null.
    ///   - workingDirectory: The child's current directory; nil keeps ours.
    ///   - timeout: After this the child is killed and `ProcessError.timedOut` is thrown.
    ///   - requireSuccess: When true, an unsuccessful exit throws `ProcessError.failed` (with
    ///     the output) instead of returning the result.
    /// - Returns: The exit status and everything the child printed.
    public static func run(
        _ executable: String,
        _ arguments: [String] = [],
        environment: [String: String]? = nil,
        inheritEnvironment: Bool = true,
        stdin: Data? = nil,
        workingDirectory: URL? = nil,
        timeout: Duration = .seconds(120),
        requireSuccess: Bool = false
    ) async throws -> ProcessResult {
        let child = try launch(executable, arguments, environment: environment,
                               inheritEnvironment: inheritEnvironment, stdin: stdin,
                               workingDirectory: workingDirectory)
        let result = try await child.waitForExit(timeout: timeout)
        if requireSuccess && !result.succeeded {
            throw ProcessError.failed(command: child.command, result: result)
        }
        return result
    }

    /// Synchronous variant of `run` for code that cannot `await`; blocks the calling thread.
    public static func runBlocking(
        _ executable: String,
        _ arguments: [String] = [],
        environment: [String: String]? = nil,
        inheritEnvironment: Bool = true,
        stdin: Data? = nil,
        workingDirectory: URL? = nil,
        timeout: Duration = .seconds(120),
        requireSuccess: Bool = false
    ) throws -> ProcessResult {
        let child = try launch(executable, arguments, environment: environment,
                               inheritEnvironment: inheritEnvironment, stdin: stdin,
                               workingDirectory: workingDirectory)
        let result = try child.waitForExitBlocking(timeout: timeout)
        if requireSuccess && !result.succeeded {
            throw ProcessError.failed(command: child.command, result: result)
        }
        return result
    }

    /// Starts `executable` in the background and returns at once; parameters as for `run`.
    /// Wait for it with `waitForExit(timeout:)`, or interrupt it with `kill`.
    public static func launch(
        _ executable: String,
        _ arguments: [String] = [],
        environment: [String: String]? = nil,
        inheritEnvironment: Bool = true,
        stdin: Data? = nil,
        workingDirectory: URL? = nil
    ) throws -> LaunchedProcess {
        var childEnvironment = inheritEnvironment ? ProcessInfo.processInfo.environment : [:]
        childEnvironment.merge(environment ?? [:]) { _, new in new }
        let url = try resolveExecutable(executable, environment: childEnvironment)
        return try LaunchedProcess(executableURL: url, arguments: arguments, environment: childEnvironment,
                                   stdin: stdin, workingDirectory: workingDirectory)
    }

    /// Finds `name` in PATH (the child's, then ours) unless it contains a slash.
    static func resolveExecutable(_ name: String, environment: [String: String]) throws -> URL {
        if name.contains("/") { return URL(fileURLWithPath: name) }
        let searchPath = [environment["PATH"], ProcessInfo.processInfo.environment["PATH"], "/usr/bin:/bin"]
            .compactMap { $0 }
            .joined(separator: ":")
        for directory in searchPath.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/\(name)"
            if access(candidate, X_OK) == 0 { return URL(fileURLWithPath: candidate) }
        }
        throw ProcessError.launchFailed(command: name, reason: "not found in PATH \(searchPath)")
    }

    /// Quotes `word` for display as part of a shell command line.
    static func shellQuote(_ word: String) -> String {
        let safe = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%")
        if !word.isEmpty && word.unicodeScalars.allSatisfy({ safe.contains($0) }) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

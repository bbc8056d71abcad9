import BackupCore
import BackupInterop
import Dispatch
import Foundation
import Logging
import Synchronization

/// The shared shell of every executable: turns the environment and flags into configuration values, runs the
/// job in a task that SIGTERM and SIGINT cancel, prints the failure and maps it to the documented exit code.
public enum JobRunner {
    /// flag > environment > `<NAME>_FILE` > default, over this process's environment.
    public static func values(flags: [String: String?]) -> ConfigurationValues {
        ConfigurationValues(
            environment: ProcessInfo.processInfo.environment,
            flags: flags.compactMapValues { $0 },
            readFile: { path in
                let fileManager = FileManager.default
                guard fileManager.fileExists(atPath: path) else { throw ReadFailure("no such file") }
                guard fileManager.isReadableFile(atPath: path) else { throw ReadFailure("permission denied for uid \(geteuid())") }
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ReadFailure("not UTF-8 text") }
                return text
            })
    }

    /// The log format from `LOG_FORMAT`, text when unset or unknown (the unknown value is then reported by `run`).
    public static func logFormat(_ values: ConfigurationValues) -> LogFormat {
        (try? values.choice(Settings.logFormat, as: LogFormat.self)) ?? .text
    }

    /// Runs `body` with cancellation on SIGTERM/SIGINT and returns the exit status to end the process with.
    public static func run(
        label: String, values: ConfigurationValues, failure: String,
        _ body: @escaping @Sendable (Logger) async throws -> Void
    ) async -> ExitStatus {
        ProcessSetup.once()
        let logger = JobLogHandler.logger(label, format: logFormat(values))
        do {
            _ = try values.choice(Settings.logFormat, as: LogFormat.self)
        } catch {
            logger.error("\(failure): \(error)")
            return error.exitStatus
        }
        // The handlers are in place before the job starts: a signal in the moment between the job's start and
        // their installation would be ignored and never delivered to a source not yet resumed.
        let latch = CancellationLatch()
        let signals = [SIGTERM, SIGINT].map { signalNumber -> any DispatchSourceSignal in
            // Ignored first, as a dispatch signal source requires (it receives the signal all the same).
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                logger.warning("Received \(signalNumber == SIGTERM ? "SIGTERM" : "SIGINT"): stopping; nothing half-written is kept")
                latch.cancel()
            }
            source.resume()
            return source
        }
        defer { signals.forEach { $0.cancel() } }
        let task = Task { try await body(logger) }
        latch.attach(task)
        do {
            try await task.value
            return .ok
        } catch let error as ContingencyError {
            logger.error("\(failure): \(error)")
            return error.exitStatus
        } catch is CancellationError {
            logger.error("\(failure): cancelled; nothing half-written is kept")
            return .cancelled
        } catch {
            logger.error("\(failure): \(error)")
            return .failed
        }
    }

    /// Waits until `date`, returning false if cancelled first.
    public static func sleep(until date: Date) async -> Bool {
        let seconds = date.timeIntervalSinceNow
        guard seconds > 0 else { return !Task.isCancelled }
        do {
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            return true
        } catch {
            return false
        }
    }

    /// The help epilogue: the variables an executable reads and the exit codes.
    public static func discussion(_ intro: String, settings: [Setting]) -> String {
        var unique: [Setting] = []
        for setting in settings where !unique.contains(setting) { unique.append(setting) }
        let codes = ExitStatus.allCases.map { "  \($0.rawValue)\(String(repeating: " ", count: max(1, 5 - String($0.rawValue).count)))\($0.meaning)" }
        return """
            \(intro)

            Environment (flags override them; secrets also read from NAME_FILE, never logged):
            \(Setting.helpText(unique))

            Exit codes:
            \(codes.joined(separator: "\n"))
            """
    }
}

/// Why a `NAME_FILE` could not be read, in a few words (never its content).
struct ReadFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Cancels a job's task on a signal, whether the signal comes before or after the task exists.
final class CancellationLatch: Sendable {
    private let state = Mutex<(cancelled: Bool, task: Task<Void, any Error>?)>((false, nil))

    func cancel() {
        let task = state.withLock { state -> Task<Void, any Error>? in
            state.cancelled = true
            return state.task
        }
        task?.cancel()
    }

    func attach(_ task: Task<Void, any Error>) {
        let cancelled = state.withLock { state -> Bool in
            state.task = task
            return state.cancelled
        }
        if cancelled { task.cancel() }
    }
}

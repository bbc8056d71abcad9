import BackupCore
import BackupInterop
import Foundation
import Logging

extension Hooks {
    /// Runs `body` between the pre and post commands of `job` ("backup", "restore"). A pre command that fails
    /// or times out stops the run before anything else happens. The post command always runs, even after a
    /// failure or a SIGTERM, with `CONTINGENCY_OUTCOME` (success or failure) and `CONTINGENCY_ERROR` in its
    /// environment, plus what `describe` adds; if it fails after a successful run, the run is partial (exit 3).
    func around<T>(
        job: String, logger: Logger, describe: (T) -> [String: String] = { _ in [:] }, _ body: () async throws -> T
    ) async throws -> T {
        let prefix = job.uppercased()
        if let pre {
            let outcome = try await Self.unstoppable(ShellCommand(pre, timeoutSeconds: timeoutSeconds), ["CONTINGENCY_JOB": job])
            guard outcome.succeeded else {
                let error = ContingencyError.failed(
                    "\(prefix)_PRE_COMMAND \(Self.describe(outcome, timeout: timeoutSeconds)); the \(job) did not run",
                    hint: "fix the command or unset \(prefix)_PRE_COMMAND")
                await runPost(prefix, job: job, logger: logger, ["CONTINGENCY_OUTCOME": "failure", "CONTINGENCY_ERROR": error.message])
                throw error
            }
            logger.info("\(prefix)_PRE_COMMAND succeeded")
            // The pre command runs to its end whatever happens; a SIGTERM that came meanwhile stops the run here,
            // before the job starts.
            if Task.isCancelled {
                let error = ContingencyError.cancelled("cancelled by signal during \(prefix)_PRE_COMMAND; the \(job) did not start")
                await runPost(prefix, job: job, logger: logger, ["CONTINGENCY_OUTCOME": "failure", "CONTINGENCY_ERROR": error.message])
                throw error
            }
        }
        let value: T
        do {
            value = try await body()
        } catch {
            await runPost(prefix, job: job, logger: logger, ["CONTINGENCY_OUTCOME": "failure", "CONTINGENCY_ERROR": "\(error)"])
            throw error
        }
        if let failure = await runPost(prefix, job: job, logger: logger, ["CONTINGENCY_OUTCOME": "success"].merging(describe(value)) { $1 }) {
            throw ContingencyError.partial(
                "the \(job) succeeded but \(prefix)_POST_COMMAND \(failure)", hint: "fix the command or unset \(prefix)_POST_COMMAND")
        }
        return value
    }

    /// Runs the post command if there is one; returns why it failed, or nil.
    @discardableResult
    private func runPost(_ prefix: String, job: String, logger: Logger, _ environment: [String: String]) async -> String? {
        guard let post else { return nil }
        do {
            let outcome = try await Self.unstoppable(
                ShellCommand(post, timeoutSeconds: timeoutSeconds), environment.merging(["CONTINGENCY_JOB": job]) { $1 })
            guard outcome.succeeded else {
                let failure = Self.describe(outcome, timeout: timeoutSeconds)
                logger.error("\(prefix)_POST_COMMAND \(failure)")
                return failure
            }
            logger.info("\(prefix)_POST_COMMAND succeeded")
            return nil
        } catch {
            logger.error("\(prefix)_POST_COMMAND could not run: \(error)")
            return "could not run: \(error)"
        }
    }

    /// Hooks run to their end (or their time limit) even when the job is being cancelled by a signal.
    static func unstoppable(_ command: ShellCommand, _ environment: [String: String]) async throws -> ShellCommand.Outcome {
        try await Task.detached { try await command.run(environment: environment) }.value
    }

    static func describe(_ outcome: ShellCommand.Outcome, timeout: Int) -> String {
        let tail = outcome.output.split(separator: "\n").suffix(3).joined(separator: " | ")
        let how = outcome.timedOut ? "timed out after \(timeout)s (HOOK_TIMEOUT)" : "failed (\(outcome.status))"
        return tail.isEmpty ? how : "\(how): \(tail)"
    }
}

extension Hooks {
    /// Runs `body` with the application stopped (`pre`, APP_STOP_COMMAND) and always starts it again
    /// (`post`, APP_START_COMMAND) once a stop was attempted, whatever `body` did: a failed restore never
    /// leaves the application down.
    func whileApplicationStopped<T>(logger: Logger, _ body: () async throws -> T) async throws -> T {
        guard let stop = pre else { return try await body() }
        let stopped = try await Self.unstoppable(ShellCommand(stop, timeoutSeconds: timeoutSeconds), ["CONTINGENCY_JOB": "restore"])
        guard stopped.succeeded else {
            let error = ContingencyError.failed(
                "APP_STOP_COMMAND \(Self.describe(stopped, timeout: timeoutSeconds)); nothing was restored",
                hint: "fix the command or unset APP_STOP_COMMAND")
            _ = await startApplication(logger: logger)
            throw error
        }
        logger.info("Application stopped (APP_STOP_COMMAND)")
        let value: T
        do {
            value = try await body()
        } catch {
            if let failure = await startApplication(logger: logger) {
                logger.error("The application could not be started again after the failed restore: \(failure)")
            }
            throw error
        }
        if let failure = await startApplication(logger: logger) {
            throw ContingencyError.failed(
                "the restore succeeded but APP_START_COMMAND \(failure): the application is still stopped",
                hint: "start it by hand, then fix APP_START_COMMAND")
        }
        return value
    }

    /// Runs APP_START_COMMAND if there is one; returns why it failed, or nil.
    private func startApplication(logger: Logger) async -> String? {
        guard let start = post else { return nil }
        do {
            let outcome = try await Self.unstoppable(ShellCommand(start, timeoutSeconds: timeoutSeconds), ["CONTINGENCY_JOB": "restore"])
            guard outcome.succeeded else { return Self.describe(outcome, timeout: timeoutSeconds) }
            logger.info("Application started (APP_START_COMMAND)")
            return nil
        } catch {
            return "could not run: \(error)"
        }
    }
}

import BackupCore
import BackupInterop
import Foundation
import Logging

/// `APP_CONTROL=command`: the operator's shell commands stop (`APP_STOP_COMMAND`) and start (`APP_START_COMMAND`)
/// the application, run like the hooks (`/bin/sh -c`, `HOOK_TIMEOUT`, to their end even when the job is being
/// cancelled). A command that is not set does nothing. It cannot read or restore the application's version.
public struct CommandAppControl: AppControl {
    public let commands: Hooks
    let logger: Logger

    public init(commands: Hooks, logger: Logger) {
        self.commands = commands
        self.logger = logger
    }

    public var description: String { "command (APP_STOP_COMMAND / APP_START_COMMAND)" }

    public func deployment() async throws -> AppDeployment? { nil }

    public func cannotRestore(_ deployment: AppDeployment) async throws -> String? {
        "APP_CONTROL=command cannot restore an application version"
    }

    public func stop() async throws {
        try await run(commands.pre, setting: "APP_STOP_COMMAND", done: "Application stopped")
    }

    public func start(on deployment: AppDeployment?) async throws {
        try await run(commands.post, setting: "APP_START_COMMAND", done: "Application started")
    }

    private func run(_ command: String?, setting: String, done: String) async throws {
        guard let command else { return }
        let outcome = try await Hooks.unstoppable(
            ShellCommand(command, timeoutSeconds: commands.timeoutSeconds), ["CONTINGENCY_JOB": "rollback"])
        guard outcome.succeeded else {
            throw ContingencyError.failed(
                "\(setting) \(Hooks.describe(outcome, timeout: commands.timeoutSeconds))",
                hint: "fix the command or unset \(setting)")
        }
        logger.info("\(done) (\(setting))")
    }
}

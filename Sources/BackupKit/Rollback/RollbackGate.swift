import BackupCore
import Foundation
import Logging

/// The rollback's `ApplicationGate`: stops the app with its app control, lets the restore swap the data in,
/// and starts the app again, on the recorded version when the data went in. The app is started whatever
/// happened, even when the runner is being cancelled (SIGTERM): the start runs detached from cancellation.
final class RollbackGate: ApplicationGate, @unchecked Sendable {
    let appControl: any AppControl
    /// The version to put back with the data; nil: data only.
    let deployment: AppDeployment?
    let steps: RollbackSteps
    let logger: Logger
    /// Runs as the gate is entered: everything before (verification, the database restored beside the live
    /// one) is done.
    var onEnter: @Sendable () async -> Void = {}
    private let lock = NSLock()
    private var enteredFlag = false

    init(appControl: any AppControl, deployment: AppDeployment?, steps: RollbackSteps, logger: Logger) {
        self.appControl = appControl
        self.deployment = deployment
        self.steps = steps
        self.logger = logger
    }

    /// Whether the restore got as far as stopping the app: before that, a failure touched nothing (a backup that
    /// fails verification is passed over for the next one).
    var entered: Bool { lock.withLock { enteredFlag } }

    func whileStopped(_ body: () async throws -> Void) async throws {
        lock.withLock { enteredFlag = true }
        await onEnter()
        let appControl = appControl
        do {
            try await steps.run("stop the application", detail: appControl.description) {
                try await Task.detached { try await appControl.stop() }.value
            }
        } catch {
            await start(nil, after: error)
            throw error
        }
        Failpoint.hit("rollback-app-stopped")
        let restoreStep = await steps.begin("swap in the database, the uploads and the .env")
        do {
            try await body()
            await steps.end(restoreStep, "succeeded")
        } catch {
            await steps.end(restoreStep, "failed", detail: "\(error)")
            await start(nil, after: error)
            throw error
        }
        if let failure = await start(deployment, after: nil) {
            throw ContingencyError.failed(
                "the data was restored but the application could not be started: \(failure)",
                hint: "start it by hand (\(appControl)), then look at why it failed")
        }
    }

    /// Starts the app (on `version` when given; if that fails, as it is); returns why it could not, or nil.
    @discardableResult
    private func start(_ version: AppDeployment?, after failure: (any Error)?) async -> String? {
        let appControl = appControl
        let name = version.map { "start the application on \($0.summary)" } ?? "start the application"
        let index = await steps.begin(name)
        do {
            try await Task.detached { try await appControl.start(on: version) }.value
            await steps.end(index, "succeeded")
            return nil
        } catch {
            await steps.end(index, "failed", detail: "\(error)")
            guard version != nil else { return "\(error)" }
            logger.error("[Rollback] The recorded version could not be restored (\(error)); starting the application as it is")
            do {
                try await Task.detached { try await appControl.start(on: nil) }.value
                await steps.record("start the application as it is", "succeeded")
                return "its recorded version could not be restored: \(error)"
            } catch let second {
                await steps.record("start the application as it is", "failed", detail: "\(second)")
                return "\(second)"
            }
        }
    }
}

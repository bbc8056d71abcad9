import BackupCore
import Foundation
import Logging

/// Stops and starts the application around a restore or a rollback, and reads and restores its version (its
/// code) so that a rollback brings code and data back together. One implementation per `APP_CONTROL`:
/// `command` (APP_STOP_COMMAND / APP_START_COMMAND), `docker` (the containers labelled APP_CONTAINER_LABEL,
/// through the Docker Engine API on its unix socket) and `kubernetes` (the Deployment APP_DEPLOYMENT, through
/// the API server with the pod's service account).
///
/// The contract every implementation keeps:
/// - `stop` returns once the application no longer runs (containers stopped, no pod left). A failed stop
///   throws and leaves the app as running as it was able to; the caller then starts it again anyway.
/// - `start` is safe to call after a failed or partial stop, and after a runner that stopped the app was
///   killed: whatever `stop` needs to remember to start the app again (a Deployment's replica count) is kept
///   where a new process finds it, never only in memory.
/// - `start(on:)` with a deployment puts that version back first (recreates the containers on the recorded
///   image with their configuration, patches the Deployment's pod template back), then starts.
/// - Blocking calls (libcurl) never run on Swift's cooperative thread pool (see `Blocking`).
/// - Errors say what failed and what to do, and carry no token.
public protocol AppControl: Sendable, CustomStringConvertible {
    /// What the application runs now, for a backup's metadata; nil when this control cannot tell (commands).
    func deployment() async throws -> AppDeployment?
    /// Why `deployment` cannot be put back now (another control recorded it, its image is gone), or nil.
    func cannotRestore(_ deployment: AppDeployment) async throws -> String?
    /// Stops the application.
    func stop() async throws
    /// Starts the application, on `deployment` when given.
    func start(on deployment: AppDeployment?) async throws
}

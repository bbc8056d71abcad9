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

/// How the jobs reach the application, from the environment (APP_CONTROL and its variables).
public struct AppControlSettings: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case command, docker, kubernetes
    }

    public var kind: Kind
    /// `command`: the shell commands (and HOOK_TIMEOUT).
    public var commands: Hooks
    /// `docker`: the label (`key=value` or `key`) and the socket path.
    public var containerLabel: String?
    public var dockerSocket: String
    /// `kubernetes`: the Deployment and its namespace (nil: the service account's).
    public var deployment: String?
    public var namespace: String?

    public init(
        kind: Kind = .command, commands: Hooks = Hooks(), containerLabel: String? = nil,
        dockerSocket: String = "/var/run/docker.sock", deployment: String? = nil, namespace: String? = nil
    ) {
        self.kind = kind
        self.commands = commands
        self.containerLabel = containerLabel
        self.dockerSocket = dockerSocket
        self.deployment = deployment
        self.namespace = namespace
    }

    public static let settings: [Setting] = [
        Settings.appControl, Settings.appStopCommand, Settings.appStartCommand, Settings.appContainerLabel,
        Settings.dockerHost, Settings.appDeployment, Settings.appNamespace,
    ]

    public static func load(_ values: ConfigurationValues) throws(ContingencyError) -> AppControlSettings {
        let kind = try values.choice(Settings.appControl, as: Kind.self)
        var settings = AppControlSettings(
            kind: kind, commands: try Hooks.load(values, pre: Settings.appStopCommand, post: Settings.appStartCommand),
            containerLabel: try values.nonEmpty(Settings.appContainerLabel),
            deployment: try values.nonEmpty(Settings.appDeployment), namespace: try values.nonEmpty(Settings.appNamespace))
        let host = try values.required(Settings.dockerHost)
        guard host.hasPrefix("unix://") else {
            throw .configuration("DOCKER_HOST=\(host) is not a unix socket", hint: "use unix:///var/run/docker.sock")
        }
        settings.dockerSocket = String(host.dropFirst("unix://".count))
        switch kind {
        case .docker where settings.containerLabel == nil:
            throw .configuration("APP_CONTROL=docker needs APP_CONTAINER_LABEL", hint: "label the app's containers, e.g. contingency.app=visual")
        case .kubernetes where settings.deployment == nil:
            throw .configuration("APP_CONTROL=kubernetes needs APP_DEPLOYMENT (the application's Deployment)")
        default: break
        }
        return settings
    }
}

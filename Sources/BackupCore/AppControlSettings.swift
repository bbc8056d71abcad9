import Foundation

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

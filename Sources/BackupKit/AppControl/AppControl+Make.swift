import BackupCore
import Logging

extension AppControlSettings {
    /// The app control `APP_CONTROL` names, built from these settings.
    public func makeAppControl(logger: Logger) -> any AppControl {
        switch kind {
        case .command: CommandAppControl(commands: commands, logger: logger)
        case .docker: DockerAppControl(settings: self, logger: logger)
        case .kubernetes: KubernetesAppControl(settings: self, logger: logger)
        }
    }
}

/// The runner's entry point: `AppControlFactory.make(settings, logger:)`.
public enum AppControlFactory {
    public static func make(_ settings: AppControlSettings, logger: Logger) -> any AppControl {
        settings.makeAppControl(logger: logger)
    }
}

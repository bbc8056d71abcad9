import BackupCore
import Logging

/// Placeholder, replaced by the Kubernetes app control at merge.
public struct KubernetesAppControl: AppControl {
    public init(settings: AppControlSettings, logger: Logger) {}
    public var description: String { "kubernetes (not built yet)" }
    public func deployment() async throws -> AppDeployment? { throw ContingencyError.failed("not built yet") }
    public func cannotRestore(_ deployment: AppDeployment) async throws -> String? { throw ContingencyError.failed("not built yet") }
    public func stop() async throws { throw ContingencyError.failed("not built yet") }
    public func start(on deployment: AppDeployment?) async throws { throw ContingencyError.failed("not built yet") }
}

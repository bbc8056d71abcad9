import BackupCore
import BackupStorage
import Foundation

extension BackupJob {
    /// What a backup records about the application as it begins: its health (from the sidecars' heartbeats in
    /// the store) and its version (from the app control). A rollback's target must have begun while the app
    /// was healthy, and brings this version back with the data.
    public struct StartContext: Sendable {
        public var health: HealthAtStart?
        public var deployment: AppDeployment?
        public init(health: HealthAtStart? = nil, deployment: AppDeployment? = nil) {
            self.health = health
            self.deployment = deployment
        }
    }

    /// Neither is worth failing a backup for: what cannot be read is recorded as unknown and logged. A safety
    /// backup records the broken state's, read before the rollback changed them (`recordedContext`).
    func startContext() async -> StartContext {
        if let recordedContext { return recordedContext }
        var context = StartContext()
        let storage = stores.primary
        let heartbeats = await Blocking.run { HeartbeatStore(storage: storage).all() }
        if !heartbeats.isEmpty {
            let health = HealthAtStart.summarize(heartbeats, at: Date())
            context.health = health
            logger.info("Application health as this backup begins: \(health.state.rawValue) (\(health.sidecars) sidecar(s) reporting)")
        }
        if let appControl {
            do {
                context.deployment = try await appControl.deployment()
                if let deployment = context.deployment { logger.info("Application version: \(deployment.summary)") }
            } catch {
                logger.warning("Could not read the application's version (\(appControl)): \(error); a rollback to this backup restores data only with ROLLBACK_DATA_ONLY=true")
            }
        }
        return context
    }
}

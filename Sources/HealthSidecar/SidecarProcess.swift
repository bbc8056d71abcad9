import BackupCore
import BackupKit
import Foundation
import Hummingbird
import Logging

/// `health-sidecar --loop` as a process: set up, load the configuration, open the store, run the application's
/// ServiceGroup until SIGTERM/SIGINT (graceful shutdown: the server stops accepting, the loop ends, even
/// mid-probe), and map the outcome to the documented exit code. The ServiceGroup owns the signals here:
/// this path never goes through `JobRunner.run` and its signal handlers.
public enum SidecarProcess {
    public static func run(values: ConfigurationValues) async -> ExitStatus {
        ProcessSetup.once()
        let logger = JobLogHandler.logger("Health", format: JobRunner.logFormat(values))
        let configuration: SidecarConfiguration
        let stores: Stores
        let notifications: Notifications
        do {
            _ = try values.choice(Settings.logFormat, as: LogFormat.self)
            configuration = try SidecarConfiguration.load(values, hostName: ProcessInfo.processInfo.hostName)
            let storeConfiguration = configuration.store
            stores = try await Blocking.run { try Stores.open(storeConfiguration, logger: logger) }
            // The API's backups and cleanups read the database settings too: their secrets stay out of messages.
            notifications = try Notifications.configured(
                values, settings: SidecarConfiguration.settings + BackupConfiguration.settings + CleanupConfiguration.settings,
                logger: logger)
        } catch let error as ContingencyError {
            logger.error("Health sidecar failed: \(error)")
            return error.exitStatus
        } catch {
            logger.error("Health sidecar failed: \(error)")
            return .failed
        }
        do {
            // Incidents (and recoveries from one) go to ROLLBACK_WEBHOOK_URL as well as to the log.
            let events = notifications.rollbackEvents(
                logging: logger, healthURL: configuration.health.url, recoveredAfter: configuration.failureThreshold)
            let app = buildApplication(
                SidecarContext(
                    configuration: configuration, stores: stores, values: values, logger: logger, events: events,
                    notifications: notifications))
            if configuration.api.token == nil {
                logger.warning(
                    "The admin API is disabled: API_ADMIN_TOKEN is not set, so every /api route answers 503 (set API_ADMIN_TOKEN or API_ADMIN_TOKEN_FILE; openssl rand -hex 32 makes one)")
            } else {
                logger.info("The admin API is enabled on /api/backups (X-API-Token)")
            }
            try await notifications.flushing { try await app.runService() }
            logger.info("Stopped: the probe loop and the server have shut down")
            return .ok
        } catch let error as ContingencyError {
            logger.error("Health sidecar failed: \(error)")
            return error.exitStatus
        } catch {
            // What the server throws: it could not listen (the address is taken or not this host's).
            logger.error(
                "Health sidecar failed: serving HTTP on \(configuration.bind):\(configuration.port): \(error). Check SIDECAR_BIND and SIDECAR_PORT (another process may hold the port)"
            )
            return .failed
        }
    }
}

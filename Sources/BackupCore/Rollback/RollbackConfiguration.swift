import Foundation

/// Everything `restore-job --loop` (the rollback runner) and `restore-job --plan` need: the restore's own
/// configuration, the safety backup's, the health check, the app control and the loop guard.
public struct RollbackConfiguration: Sendable, Equatable {
    public var restore: RestoreConfiguration
    /// For the safety backup of the broken state (same store, database server, compression, key).
    public var backup: BackupConfiguration
    public var health: HealthConfiguration
    public var appControl: AppControlSettings
    /// Seconds between two readings of the store's requests.
    public var pollInterval: Int
    /// Seconds the app may take to answer HTTP 200 after a rollback.
    public var healthTimeout: Int
    public var loopGuard: LoopGuard
    /// Roll the app's version back with the data (ROLLBACK_CODE).
    public var code: Bool
    /// Restore the data when the version cannot be restored (ROLLBACK_DATA_ONLY).
    public var dataOnly: Bool
    /// This runner's name in the store (SIDECAR_ID's sibling: the host name by default).
    public var runnerID: String

    public init(
        restore: RestoreConfiguration, backup: BackupConfiguration, health: HealthConfiguration,
        appControl: AppControlSettings = AppControlSettings(), pollInterval: Int = 10, healthTimeout: Int = 300,
        loopGuard: LoopGuard = LoopGuard(max: 1, window: 3600), code: Bool = true, dataOnly: Bool = false,
        runnerID: String = ProcessInfo.processInfo.hostName
    ) {
        self.restore = restore
        self.backup = backup
        self.health = health
        self.appControl = appControl
        self.pollInterval = pollInterval
        self.healthTimeout = healthTimeout
        self.loopGuard = loopGuard
        self.code = code
        self.dataOnly = dataOnly
        self.runnerID = runnerID
    }

    public static let settings: [Setting] =
        RestoreConfiguration.settings + HealthConfiguration.settings + AppControlSettings.settings + [
            Settings.restorePollInterval, Settings.rollbackHealthTimeout, Settings.rollbackMax, Settings.rollbackWindow,
            Settings.rollbackCode, Settings.rollbackDataOnly, Settings.backupSigningKey, Settings.compression,
            Settings.sidecarID, Settings.livenessFile,
            // The safety backup's own (BackupConfiguration): it is encrypted for AGE_RECIPIENTS like any backup.
            Settings.ageRecipients, Settings.compressionLevel, Settings.backupRolePasswords, Settings.nodeVersion,
        ] + NotificationSettings.rollbackSettings

    public static func load(_ values: ConfigurationValues) throws(ContingencyError) -> RollbackConfiguration {
        let restore = try RestoreConfiguration.load(values)
        var backup = try BackupConfiguration.load(values)
        // The safety backup runs between the runner's own steps: no backup hooks; the health and version it
        // records are the broken state's, which the runner reads before the rollback changes them.
        backup.hooks = Hooks()
        backup.label = nil
        backup.kind = .safety
        let maximum = try values.integer(Settings.rollbackMax, in: 1...100) ?? 1
        let window = try values.duration(Settings.rollbackWindow)
        guard window >= 1 else { throw .configuration("ROLLBACK_WINDOW must be at least 1s") }
        let poll = try values.duration(Settings.restorePollInterval)
        guard poll >= 1 else { throw .configuration("RESTORE_POLL_INTERVAL must be at least 1s") }
        let runner = try values.nonEmpty(Settings.sidecarID) ?? ProcessInfo.processInfo.hostName
        guard StoreObjectName.isValid(runner) else {
            throw .configuration("SIDECAR_ID=\(runner) may hold only letters, digits, '.', '_' and '-'")
        }
        return RollbackConfiguration(
            restore: restore, backup: backup, health: try HealthConfiguration.load(values),
            appControl: try AppControlSettings.load(values), pollInterval: poll,
            healthTimeout: max(1, try values.duration(Settings.rollbackHealthTimeout)),
            loopGuard: LoopGuard(max: maximum, window: TimeInterval(window)), code: try values.bool(Settings.rollbackCode),
            dataOnly: try values.bool(Settings.rollbackDataOnly), runnerID: runner)
    }
}

/// The runner's own heartbeat (`.contingency/state/runners/<runner>.json`), written at every poll, so the API
/// and people can tell when no runner is running (and a request would wait forever).
public struct RunnerHeartbeat: Codable, Sendable, Equatable {
    public static let folder = ".contingency/state/runners"

    public var runner: String
    public var host: String
    public var pid: Int32
    public var started: Date
    public var lastPoll: Date
    /// Seconds between polls: a heartbeat older than a few of them means the runner is gone.
    public var pollInterval: Int
    /// The request it is running, if any.
    public var running: String?

    public init(runner: String, host: String, pid: Int32, started: Date, lastPoll: Date, pollInterval: Int, running: String? = nil) {
        self.runner = runner
        self.host = host
        self.pid = pid
        self.started = started
        self.lastPoll = lastPoll
        self.pollInterval = pollInterval
        self.running = running
    }

    public static func key(for runner: String) -> String { "\(folder)/\(runner).json" }

}

/// Everything `cleanup-job` needs: the store, the retention policy, its schedule, the grace period for what
/// interrupted runs leave, what checking a backup needs (keys, trust, pg_restore) when the newest one has no
/// verification result yet, and the database (optional) whose restores' leftovers it drops.
public struct CleanupConfiguration: Sendable, Equatable {
    /// The store, keys, trust and tools, read as restore-job reads them (`restore-job --verify` is what cleanup
    /// runs on an unverified newest backup).
    public var restore: RestoreConfiguration
    public var policy: RetentionPolicy
    public var schedule: Schedule
    /// An archive of this product without a manifest is collected once its name is older than this.
    public var graceSeconds: Int

    public init(
        restore: RestoreConfiguration, policy: RetentionPolicy = .init(), schedule: Schedule, graceSeconds: Int = 86_400
    ) {
        self.restore = restore
        self.policy = policy
        self.schedule = schedule
        self.graceSeconds = graceSeconds
    }

    public var store: StoreConfiguration { restore.store }

    public static let settings: [Setting] =
        StoreConfiguration.settings + RetentionPolicy.settings + DatabaseSettings.settings + [
            Settings.cleanupSchedule, Settings.cleanupGrace, Settings.ageIdentity, Settings.agePassphrase,
            Settings.pgBinDir,
            Settings.progressInterval, Settings.logFormat,
        ] + TrustSettings.settings

    public static func load(_ values: ConfigurationValues) throws(ContingencyError) -> CleanupConfiguration {
        CleanupConfiguration(
            restore: try RestoreConfiguration.load(values), policy: try RetentionPolicy.load(values),
            schedule: try Schedule.parse(try values.required(Settings.cleanupSchedule)),
            graceSeconds: try values.duration(Settings.cleanupGrace))
    }
}

/// One of the four executables, with the variables it reads: its `--help` lists exactly `settings`, and the
/// configuration reference (docs/configuration.md) says which executables read each variable from the same
/// lists, so neither can drift from the other.
public struct ExecutableSettings: Sendable {
    public let name: String
    /// One line: what it is for.
    public let summary: String
    /// What its `--help` lists, each setting once, in the order given.
    public let settings: [Setting]
    /// Settings it reads only for one feature (the sidecar's admin API takes backups and cleans up), not listed
    /// by its `--help`; the reference names the feature beside the executable.
    public let alsoReads: [Setting]
    public let alsoReadsFor: String?

    public init(
        _ name: String, summary: String, settings: [Setting], alsoReads: [Setting] = [], alsoReadsFor: String? = nil
    ) {
        self.name = name
        self.summary = summary
        self.settings = Self.unique(settings)
        let own = Set(self.settings)
        self.alsoReads = Self.unique(alsoReads).filter { !own.contains($0) }
        self.alsoReadsFor = alsoReadsFor
    }

    /// Each setting once, first place kept: the configuration lists are built by concatenation and overlap.
    static func unique(_ settings: [Setting]) -> [Setting] {
        var seen = Set<Setting>()
        return settings.filter { seen.insert($0).inserted }
    }
}

/// The executables and what each reads: the one list their `--help` texts and docs/configuration.md are made
/// from.
public enum Executables {
    public static let backupJob = ExecutableSettings(
        "backup-job",
        summary: "one backup, or backups on BACKUP_SCHEDULE with --loop; `keygen` makes the signing key pair",
        settings: BackupConfiguration.settings + [Settings.livenessFile])
    public static let restoreJob = ExecutableSettings(
        "restore-job",
        summary:
            "a restore, --verify, --check, --extract, --drill (once or --loop), --plan; --loop is the rollback runner",
        settings: RestoreConfiguration.settings + DrillConfiguration.settings + RollbackConfiguration.settings
            + [Settings.backupPingURL])
    public static let cleanupJob = ExecutableSettings(
        "cleanup-job", summary: "retention once, or on CLEANUP_SCHEDULE with --loop; --dry-run",
        settings: CleanupConfiguration.settings + NotificationSettings.backupSettings + [Settings.livenessFile])
    public static let healthSidecar = ExecutableSettings(
        "health-sidecar",
        summary:
            "one probe; --loop: the sidecar service (probes, rollback requests, /healthz, /metrics, the admin API); "
            + "--liveness",
        settings: SidecarConfiguration.settings,
        alsoReads: BackupConfiguration.settings + CleanupConfiguration.settings,
        alsoReadsFor: "admin API")

    public static let all = [backupJob, restoreJob, cleanupJob, healthSidecar]
}

import Foundation

/// What retention keeps: BACKUP_RETENTION_DAYS, the grandfather-father-son counts, BACKUP_KEEP_MIN and
/// SAFETY_RETENTION_DAYS. Pure values; `RetentionRules` applies them.
public struct RetentionPolicy: Sendable, Equatable {
    /// Complete backups older than this many days may go (when nothing below keeps them).
    public var retentionDays: Int
    /// Newest backup of each of this many most recent days (UTC), weeks (ISO) and months kept on top; 0: none.
    public var keepDaily: Int
    public var keepWeekly: Int
    public var keepMonthly: Int
    /// The newest this many verified backups are never deleted.
    public var keepMin: Int
    /// A safety backup (the broken state a rollback replaced) is kept this many days.
    public var safetyRetentionDays: Int
    /// A name dated further ahead of the store's clock than this is a claim, not a time: such a backup is kept
    /// and counts for nothing (CLOCK_SKEW_ALLOWANCE).
    public var futureAllowance: TimeInterval

    public init(
        retentionDays: Int = 30, keepDaily: Int = 0, keepWeekly: Int = 0, keepMonthly: Int = 0, keepMin: Int = 3,
        safetyRetentionDays: Int = 7, futureAllowance: TimeInterval = 300
    ) {
        self.retentionDays = retentionDays
        self.keepDaily = keepDaily
        self.keepWeekly = keepWeekly
        self.keepMonthly = keepMonthly
        self.keepMin = keepMin
        self.safetyRetentionDays = safetyRetentionDays
        self.futureAllowance = futureAllowance
    }

    /// The most days any count may say: a hundred years.
    public static let maximumDays = 36_500

    public static let settings: [Setting] = [
        Settings.backupRetentionDays, Settings.backupKeepDaily, Settings.backupKeepWeekly, Settings.backupKeepMonthly,
        Settings.backupKeepMin, Settings.safetyRetentionDays,
    ]

    public static func load(_ values: ConfigurationValues) throws(ContingencyError) -> RetentionPolicy {
        func count(_ setting: Setting, from lowest: Int = 0) throws(ContingencyError) -> Int {
            try values.integer(setting, in: lowest...maximumDays) ?? Int(setting.defaultValue ?? "0") ?? 0
        }
        return RetentionPolicy(
            retentionDays: try count(Settings.backupRetentionDays, from: 1),
            keepDaily: try count(Settings.backupKeepDaily), keepWeekly: try count(Settings.backupKeepWeekly),
            keepMonthly: try count(Settings.backupKeepMonthly), keepMin: try count(Settings.backupKeepMin, from: 1),
            safetyRetentionDays: try count(Settings.safetyRetentionDays),
            futureAllowance: TimeInterval(try values.duration(Settings.clockSkewAllowance)))
    }
}

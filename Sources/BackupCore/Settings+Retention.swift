/// cleanup-job's variables (see docs/retention.md).
extension Settings {
    public static let backupRetentionDays = Setting(
        "BACKUP_RETENTION_DAYS", default: "30",
        "cleanup-job deletes complete backups older than this many days (by the time in their names), keeping the ones below"
    )
    public static let backupKeepDaily = Setting(
        "BACKUP_KEEP_DAILY", default: "0",
        "Also keep the newest backup of each of this many most recent days, however old")
    public static let backupKeepWeekly = Setting(
        "BACKUP_KEEP_WEEKLY", default: "0", "Also keep the newest backup of each of this many most recent ISO weeks")
    public static let backupKeepMonthly = Setting(
        "BACKUP_KEEP_MONTHLY", default: "0", "Also keep the newest backup of each of this many most recent months")
    public static let backupKeepMin = Setting(
        "BACKUP_KEEP_MIN", default: "3",
        "The newest this many complete and verified backups (a drill or a check passed) are never deleted, whatever their age"
    )
    public static let cleanupSchedule = Setting(
        "CLEANUP_SCHEDULE", default: "7d",
        "cleanup-job --loop: when to apply retention (cron, @weekly-style macro, or interval)")
    public static let cleanupGrace = Setting(
        "CLEANUP_GRACE", default: "24h",
        "An archive of this product left without a manifest by an interrupted run is removed once its name is older than this"
    )
}

import Foundation

/// docs/configuration.md, made from the settings' own definitions (name, default, secrecy, help) and the
/// executables' lists: every variable once, in the group of its subject, with the executables that read it.
/// A test compares the file with `markdown()`, so the page cannot drift from the code.
public enum ConfigurationReference {
    /// A subject: its title, the docs page (and section) that explains it, and its variables in the order shown.
    public struct Group: Sendable {
        public let title: String
        public let page: String?
        public let settings: [Setting]

        public init(_ title: String, page: String?, _ settings: [Setting]) {
            self.title = title
            self.page = page
            self.settings = settings
        }
    }

    /// The one command that rewrites docs/configuration.md from the code.
    public static let regenerateCommand = "CONTINGENCY_WRITE_DOCS=1 swift test --filter ConfigurationReferenceTests"

    /// Every variable an executable reads belongs to exactly one group; one that belongs to none is shown under
    /// "Other" (and the reference's test fails, naming it).
    public static let groups: [Group] = [
        Group(
            "The store", page: "store.md",
            [Settings.backupDir, Settings.backupPrefix, Settings.stagingDir, Settings.lockTTL, Settings.lockTimeout]),
        Group("The bucket (S3)", page: "store.md", S3Configuration.settings),
        Group("The database", page: "backup.md", DatabaseSettings.settings + [Settings.pgPassword, Settings.pgBinDir]),
        Group(
            "The application's files", page: "backup.md#the-archive", ApplicationPaths.settings + [Settings.nodeVersion]
        ),
        Group(
            "Backups", page: "backup.md",
            [
                Settings.compression, Settings.compressionLevel, Settings.schedule, Settings.backupRolePasswords,
                Settings.backupLabel,
            ]),
        Group(
            "Restores", page: "restore.md",
            [
                Settings.latestBackup, Settings.restoreParts, Settings.terminateConnections,
                Settings.restoreLockTimeout,
                Settings.restoreToastCompression, Settings.restoreSplitTableSize, Settings.restoreKeepOld,
                Settings.restoreNoOwner,
                Settings.restoreOwners,
                Settings.restoreAllowOutsideSymlinks,
            ]),
        Group("Restore drills", page: "restore.md#restore-drills", DrillConfiguration.settings),
        Group(
            "Hooks", page: "backup.md#hooks",
            [
                Settings.backupPreCommand, Settings.backupPostCommand, Settings.restorePreCommand,
                Settings.restorePostCommand, Settings.hookTimeout,
            ]),
        Group(
            "Encryption and signing", page: "security.md#where-each-key-must-live",
            [Settings.ageRecipients, Settings.agePassphrase, Settings.ageIdentity, Settings.backupSigningKey]
                + TrustSettings.settings),
        Group(
            "The health sidecar", page: "rollback.md#the-health-sidecar",
            [
                Settings.healthCheckURL, Settings.healthCheckTimeout, Settings.healthCheckInterval,
                Settings.healthCheckFailures, Settings.healthCheckStartPeriod, Settings.sidecarID, Settings.sidecarBind,
                Settings.sidecarPort, Settings.backupStaleAfter, Settings.livenessFile,
            ]),
        Group(
            "Rollback", page: "rollback.md#health-and-rollback",
            [
                Settings.restorePollInterval, Settings.rollbackHealthTimeout, Settings.rollbackMax,
                Settings.rollbackWindow,
                Settings.rollbackCode, Settings.rollbackDataOnly,
            ]),
        Group("Application control", page: "rollback.md", AppControlSettings.settings),
        Group("The admin API", page: "api.md", APIConfiguration.settings),
        Group(
            "Notifications", page: "notifications.md",
            [
                Settings.backupWebhookURL, Settings.rollbackWebhookURL, Settings.backupPingURL, Settings.notifyTimeout,
                Settings.notifyRetries,
            ]),
        Group(
            "Retention", page: "retention.md",
            RetentionPolicy.settings + [Settings.cleanupSchedule, Settings.cleanupGrace]),
        Group("Logs and progress", page: "security.md#logs", [Settings.logFormat, Settings.progressInterval]),
        Group("Metrics", page: "store.md", [Settings.pushgatewayURL]),
    ]

    /// Every variable some executable reads, each once, in the executables' order.
    public static var allSettings: [Setting] {
        ExecutableSettings.unique(Executables.all.flatMap { $0.settings + $0.alsoReads })
    }

    /// The groups as shown: each grouped variable once (first group wins), variables no group holds under
    /// "Other", empty groups left out.
    public static var shownGroups: [Group] {
        var placed = Set<Setting>()
        var shown: [Group] = []
        for group in groups {
            let settings = group.settings.filter { placed.insert($0).inserted }
            if !settings.isEmpty { shown.append(Group(group.title, page: group.page, settings)) }
        }
        let other = allSettings.filter { !placed.contains($0) }
        if !other.isEmpty { shown.append(Group("Other", page: nil, other)) }
        return shown
    }

    /// The executables that read `setting`: their names, or `name (feature)` where it is read for one feature only.
    public static func readers(of setting: Setting) -> [String] {
        Executables.all.compactMap { executable in
            if executable.settings.contains(setting) { return executable.name }
            if executable.alsoReads.contains(setting) {
                return executable.alsoReadsFor.map { "\(executable.name) (\($0))" } ?? executable.name
            }
            return nil
        }
    }

    /// The whole page. A secret's default is never shown (secrets have none; if one had, it is not printed).
    public static func markdown() -> String {
        var lines = [
            "<!-- Generated from the settings' definitions (Sources/BackupCore: Setting.swift, Settings+*.swift",
            "     and the configurations' `settings` lists) by ConfigurationReference.markdown(). Do not edit: after",
            "     changing a setting run `\(regenerateCommand)`. -->",
            "",
            "# Configuration reference",
            "",
            "Every executable is configured by environment variables. The order is: a flag of the same meaning",
            "(`--backup-dir`, `--uploads-dir`, … see each executable's `--help`), then the variable, then",
            "`NAME_FILE` where the variable reads one, then the default. Secrets are never taken as flags (`ps`",
            "would show them); they can be given as `NAME_FILE` (a file, e.g. a mounted secret; its trailing new",
            "lines are dropped; an empty `NAME` beside a `NAME_FILE` does not hide the file), are passed to",
            "`pg_dump` and `pg_restore` through the environment, never on a command line, and are never logged",
            "nor printed. A value that cannot be used (`BACKUP_COMPRESSION=lz4`, a six-field schedule,",
            "`LOCK_TIMEOUT=soon`) is refused before any work with a message naming the variable and what it",
            "accepts. Durations are written `90`, `90s`, `5m`, `1h30m` or `2d`; sizes `16MiB`, `64M` or",
            "`1073741824`; booleans `true` or `false`. libpq's own variables (`PGHOST`, `PGPORT`, `PGUSER`,",
            "`PGPASSFILE`, `PGSSLMODE`, …) work underneath the database settings.",
            "",
            "Each executable's `--help` lists the variables it reads, from the same lists as this page.",
            "",
            "| executable | what it runs | variables |",
            "|---|---|---|",
        ]
        for executable in Executables.all {
            var count = "\(executable.settings.count)"
            if let feature = executable.alsoReadsFor, !executable.alsoReads.isEmpty {
                count += ", and \(executable.alsoReads.count) more for its \(feature)"
            }
            lines.append("| `\(executable.name)` | \(cell(executable.summary)) | \(count) |")
        }
        for group in shownGroups {
            lines += ["", "## \(group.title)", ""]
            if let page = group.page {
                let name = page.split(separator: "#").first.map(String.init) ?? page
                lines += ["Explained in [\(name)](\(page)).", ""]
            }
            lines += ["| variable | default | secret | read by | meaning |", "|---|---|---|---|---|"]
            for setting in group.settings {
                lines.append(
                    "| `\(setting.name)` | \(defaultCell(setting)) | \(secrecyCell(setting)) | "
                        + "\(readers(of: setting).joined(separator: ", ")) | \(cell(setting.help)) |")
            }
        }
        lines += ["", "## Exit codes", "", "| code | meaning |", "|---|---|"]
        // 64 is swift-argument-parser's usage error (EX_USAGE), not one of ours: it has no ExitStatus.
        let codes =
            ExitStatus.allCases.map { (Int($0.rawValue), $0.meaning) }
            + [(64, "a flag the command line parser rejected (swift-argument-parser's usage error)")]
        lines += codes.sorted { $0.0 < $1.0 }.map { "| \($0.0) | \(cell($0.1)) |" }
        return lines.joined(separator: "\n") + "\n"
    }

    static func defaultCell(_ setting: Setting) -> String {
        guard !setting.secret, let value = setting.defaultValue else { return "" }
        return value.isEmpty ? "empty" : "`\(value)`"
    }

    static func secrecyCell(_ setting: Setting) -> String {
        if setting.secret { return "secret; or `\(setting.name)_FILE`" }
        return setting.readsFile ? "or `\(setting.name)_FILE`" : ""
    }

    /// A table cell: `|` would end it, a new line would end the row, `<db>` would be taken for an HTML tag and
    /// hidden, and `*` for emphasis.
    static func cell(_ text: String) -> String {
        text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
            .replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: "*", with: "\\*")
    }
}

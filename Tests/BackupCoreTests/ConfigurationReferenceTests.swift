import Foundation
import Testing

@testable import BackupCore

/// docs/configuration.md is `ConfigurationReference.markdown()`, made from the settings' definitions and the
/// executables' lists; these tests fail when the page and the code part.
@Suite struct ConfigurationReferenceTests {
    static let page = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/configuration.md")

    /// With CONTINGENCY_WRITE_DOCS=1 the page is rewritten from the code (and the test then passes).
    @Test func pageIsWhatTheCodeGenerates() throws {
        let generated = ConfigurationReference.markdown()
        if ProcessInfo.processInfo.environment["CONTINGENCY_WRITE_DOCS"] == "1" {
            try Data(generated.utf8).write(to: Self.page, options: .atomic)
        }
        let written = (try? String(contentsOf: Self.page, encoding: .utf8)) ?? ""
        guard written != generated else { return }
        let writtenLines = written.split(separator: "\n", omittingEmptySubsequences: false)
        let generatedLines = generated.split(separator: "\n", omittingEmptySubsequences: false)
        let first =
            Array(zip(writtenLines, generatedLines)).firstIndex { $0 != $1 }
            ?? min(writtenLines.count, generatedLines.count)
        Issue.record(
            """
            docs/configuration.md differs from what the settings' definitions generate (first at line \(first + 1)):
              in the file: \(first < writtenLines.count ? String(writtenLines[first]) : "(end of file)")
              generated:   \(first < generatedLines.count ? String(generatedLines[first]) : "(end of file)")
            Regenerate it with: \(ConfigurationReference.regenerateCommand)
            """)
    }

    @Test func everyVariableAnExecutableReadsHasItsGroup() {
        let grouped = Set(ConfigurationReference.groups.flatMap(\.settings))
        let missing = ConfigurationReference.allSettings.filter { !grouped.contains($0) }.map(\.name)
        #expect(missing.isEmpty, "add these to a group of ConfigurationReference.groups: \(missing)")
        #expect(!ConfigurationReference.shownGroups.contains { $0.title == "Other" })
    }

    @Test func everyGroupedVariableIsReadBySomeExecutable() {
        let read = Set(ConfigurationReference.allSettings)
        let unread = ConfigurationReference.groups.flatMap(\.settings).filter { !read.contains($0) }.map(\.name)
        #expect(
            unread.isEmpty, "no executable's list holds \(unread): add them to its list in Executables, or drop them")
    }

    @Test func everyVariableIsOneRowWithItsReaders() {
        let rows = ConfigurationReference.markdown().split(separator: "\n").filter { $0.hasPrefix("| `") }
        for setting in ConfigurationReference.allSettings {
            let own = rows.filter { $0.hasPrefix("| `\(setting.name)` |") }
            #expect(own.count == 1, "\(setting.name): \(own.count) rows")
            guard let row = own.first else { continue }
            let readers = ConfigurationReference.readers(of: setting)
            #expect(!readers.isEmpty, "\(setting.name) is read by no executable")
            for reader in readers { #expect(row.contains(reader), "\(row) does not name \(reader)") }
            let columns = row.split(separator: "|", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            #expect(columns.count >= 6, "\(row)")
            guard columns.count >= 6 else { continue }
            #expect(columns[3].hasPrefix("secret") == setting.secret, "\(row)")
            #expect(columns[3].contains("`\(setting.name)_FILE`") == setting.readsFile, "\(row)")
        }
        // The sidecar's admin API reads backup-job's settings: the reference says so.
        #expect(ConfigurationReference.readers(of: Settings.databaseURL).contains("health-sidecar (admin API)"))
        #expect(ConfigurationReference.readers(of: Settings.healthCheckURL).contains("health-sidecar"))
    }

    /// A secret's value never appears in help or docs: secrets have no default, and one given a default is still
    /// not printed.
    @Test func noSecretDefaultIsPrinted() {
        let secrets = ConfigurationReference.allSettings.filter(\.secret)
        #expect(!secrets.isEmpty)
        for secret in secrets { #expect(secret.defaultValue == nil, "\(secret.name) has a default") }
        let planted = Setting("PLANTED_TOKEN", default: "s3cr3t-default-value", secret: true, "A secret with a default")
        #expect(!Setting.helpText([planted]).contains("s3cr3t-default-value"))
        #expect(ConfigurationReference.defaultCell(planted).isEmpty)
    }

    /// The names each load asks for, under an environment that sets every optional branch worth reaching.
    static func reads(_ environment: [String: String], _ load: (ConfigurationValues) throws -> Void) -> Set<String> {
        let names = Names()
        let values = ConfigurationValues(
            environment: environment, readFile: { _ in "" }, observe: { name in names.insert(name) })
        do { try load(values) } catch { Issue.record("the configuration did not load: \(error)") }
        return names.all
    }

    final class Names: @unchecked Sendable {
        private var names = Set<String>()
        private let lock = NSLock()
        func insert(_ name: String) { lock.withLock { _ = names.insert(name) } }
        var all: Set<String> { lock.withLock { names } }
    }

    static let environments: [[String: String]] = [
        ["DRILL_DATABASE_URL": "postgres://drill@localhost/drill"],
        [
            "DRILL_DATABASE_URL": "postgres://drill@localhost/drill", "BACKUP_S3_URL": "s3://bucket/prefix",
            "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret-key-example",
            "AGE_RECIPIENTS": "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
            "APP_CONTROL": "docker", "APP_CONTAINER_LABEL": "contingency.app=visual",
            "API_ADMIN_TOKEN": "0123456789abcdef0123", "BACKUP_WEBHOOK_URL": "https://hooks.example.com/x",
        ],
    ]

    /// What NotificationSettings.load reads for every executable, whatever it sends: each sends only to its own
    /// destinations (its list), so the others are read and never used.
    static let notificationNames = Set(
        (NotificationSettings.backupSettings + NotificationSettings.rollbackSettings).map(\.name))

    /// Variables an executable's configuration loads but never uses, each group with its reason: they are checked
    /// (a bad value still stops the executable) and deliberately not listed. Anything else read must be listed.
    static let readButUnused: [String: (names: Set<String>, reason: String)] = [
        // cleanup-job loads restore-job's configuration to verify the newest backup as restore-job --verify does;
        // it restores nothing, so the restore's own variables (parts, hooks, owners, …) do nothing there.
        "cleanup-job": (
            Set(RestoreConfiguration.settings.map(\.name)), "restore-job's configuration, loaded to verify"
        ),
        // The runner's safety backup runs once, between the runner's own steps: no backup hooks, no label, no
        // schedule (RollbackConfiguration.load clears them).
        "restore-job": (
            [Settings.backupPreCommand, Settings.backupPostCommand, Settings.backupLabel, Settings.schedule].reduce(
                into: Set<String>()
            ) { $0.insert($1.name) }, "backup-job's, cleared for the safety backup"
        ),
    ]

    /// Every variable an executable's configuration loads is in the list its `--help` prints (and the reference
    /// shows), so no variable is read that the operator cannot find.
    @Test(arguments: Executables.all.map(\.name))
    func everyVariableReadIsListed(_ name: String) throws {
        let executable = try #require(Executables.all.first { $0.name == name })
        var read = Set<String>()
        for environment in Self.environments {
            read.formUnion(
                Self.reads(environment) { values in
                    _ = try values.choice(Settings.logFormat, as: LogFormat.self)
                    _ = try NotificationSettings.load(values)
                    _ = try values.nonEmpty(Settings.livenessFile)
                    switch name {
                    case "backup-job": _ = try BackupConfiguration.load(values)
                    case "cleanup-job": _ = try CleanupConfiguration.load(values)
                    case "restore-job":
                        _ = try RestoreConfiguration.load(values)
                        _ = try DrillConfiguration.load(values)
                        _ = try RollbackConfiguration.load(values)
                    case "health-sidecar":
                        _ = try HealthConfiguration.load(values)
                        _ = try SidecarConfiguration.load(values, hostName: "sidecar-1")
                    default: Issue.record("no loads written for \(name)")
                    }
                })
        }
        let listed = Set(executable.settings.map(\.name))
        let unused = Self.readButUnused[name]?.names ?? []
        let unlisted = read.subtracting(listed).subtracting(Self.notificationNames).subtracting(unused).sorted()
        #expect(unlisted.isEmpty, "\(name) reads \(unlisted) but its list (Executables.\(name)) does not hold them")
        #expect(read.count > 10, "\(read)")
    }

    /// The sidecar's admin API takes backups and cleans up with backup-job's and cleanup-job's settings.
    @Test func theSidecarsAPIReadsWhatItsReferenceSays() {
        let sidecar = Executables.healthSidecar
        var read = Set<String>()
        for environment in Self.environments {
            read.formUnion(
                Self.reads(environment) { values in
                    _ = try BackupConfiguration.load(values)
                    _ = try CleanupConfiguration.load(values)
                    _ = try TrustSettings.load(values)
                })
        }
        // Cleaning up loads restore-job's configuration, as cleanup-job does (see readButUnused).
        let known = Set((sidecar.settings + sidecar.alsoReads + RestoreConfiguration.settings).map(\.name))
        #expect(read.subtracting(known).isEmpty, "\(read.subtracting(known).sorted())")
    }

    @Test func cellsKeepTheTable() {
        #expect(ConfigurationReference.cell("success|failure\nnext") == "success\\|failure next")
        #expect(
            ConfigurationReference.cell("<db>_before_restore_<time> in /usr/lib/postgresql/*/bin")
                == "&lt;db>_before_restore_&lt;time> in /usr/lib/postgresql/\\*/bin")
    }
}

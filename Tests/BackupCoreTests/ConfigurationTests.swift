import Foundation
import Testing

@testable import BackupCore

// MARK: - Helpers

private struct NoSuchFile: Error, CustomStringConvertible {
    let path: String
    var description: String { "no such file: \(path)" }
}

/// Values whose `_FILE` reads come from `files` (path → content); any other path fails to read.
private func values(
    _ environment: [String: String], flags: [String: String] = [:], files: [String: String] = [:]
) -> ConfigurationValues {
    ConfigurationValues(environment: environment, flags: flags) { path in
        guard let text = files[path] else { throw NoSuchFile(path: path) }
        return text
    }
}

/// The configuration error thrown by `body`, or nil (recorded as a failure) when none is.
private func configurationError<T>(
    _ body: () throws(ContingencyError) -> T, sourceLocation: SourceLocation = #_sourceLocation
) -> ContingencyError? {
    do {
        let value = try body()
        Issue.record("expected a configuration error, got \(value)", sourceLocation: sourceLocation)
        return nil
    } catch {
        #expect(error.isConfiguration, "\(error)", sourceLocation: sourceLocation)
        #expect(error.exitStatus == .failed, sourceLocation: sourceLocation)
        return error
    }
}

private let token = Setting("TEST_TOKEN", default: "fallback", secret: true, "A secret with a default")
private let plain = Setting("TEST_PLAIN", default: "fallback", "Not a secret")
private let noDefault = Setting("TEST_NO_DEFAULT", "No default")

private let secretFiles = ["/run/secrets/token": "from-file\n"]
private let midday = Date(timeIntervalSince1970: 1_736_951_400)  // 2025-01-15T14:30:00Z
private let passwordFiles = ["/run/secrets/pg": "pg-file-secret\n", "/run/secrets/db": "db-file-secret\n"]
private let leaked = "hunter2-very-secret"
private let redactionFiles = ["/run/secrets/pw": leaked + "\n", "/run/secrets/url": "postgres://app:\(leaked)@db/visual\n"]

struct ConfigurationTests {
    // MARK: - Precedence

    struct PrecedenceRow: Sendable, CustomTestStringConvertible {
        let label: String
        let flags: [String: String]
        let environment: [String: String]
        let expected: String?
        var testDescription: String { label }
    }


    @Test(arguments: [
        PrecedenceRow(
            label: "flag beats env and file",
            flags: ["TEST_TOKEN": "from-flag"],
            environment: ["TEST_TOKEN": "from-env", "TEST_TOKEN_FILE": "/run/secrets/token"], expected: "from-flag"),
        PrecedenceRow(
            label: "env beats file", flags: [:],
            environment: ["TEST_TOKEN": "from-env", "TEST_TOKEN_FILE": "/run/secrets/token"], expected: "from-env"),
        PrecedenceRow(
            label: "file beats default", flags: [:], environment: ["TEST_TOKEN_FILE": "/run/secrets/token"],
            expected: "from-file"),
        PrecedenceRow(label: "default last", flags: [:], environment: [:], expected: "fallback"),
        PrecedenceRow(
            label: "an empty env does not hide the file", flags: [:],
            environment: ["TEST_TOKEN": "", "TEST_TOKEN_FILE": "/run/secrets/token"], expected: "from-file"),
        PrecedenceRow(label: "empty env without a file counts as set", flags: [:], environment: ["TEST_TOKEN": ""], expected: ""),
        PrecedenceRow(
            label: "empty flag counts as set", flags: ["TEST_TOKEN": ""], environment: ["TEST_TOKEN": "from-env"],
            expected: ""),
        PrecedenceRow(label: "empty _FILE is ignored", flags: [:], environment: ["TEST_TOKEN_FILE": ""], expected: "fallback"),
        PrecedenceRow(
            label: "a flag named _FILE is not a file", flags: ["TEST_TOKEN_FILE": "/run/secrets/token"], environment: [:],
            expected: "fallback"),
        PrecedenceRow(
            label: "an unrelated variable is not used", flags: [:], environment: ["OTHER_TOKEN": "x"], expected: "fallback"),
    ])
    func precedenceIsFlagEnvFileDefault(_ row: PrecedenceRow) throws {
        let resolved = try values(row.environment, flags: row.flags, files: secretFiles).string(token)
        #expect(resolved == row.expected)
    }

    @Test func flagOrEnvironmentMeansTheSecretFileIsNeverRead() throws {
        // The file does not exist: reading it would throw.
        let missing = ["TEST_TOKEN_FILE": "/nonexistent"]
        #expect(try values(missing.merging(["TEST_TOKEN": "env"]) { $1 }).string(token) == "env")
        #expect(try values(missing, flags: ["TEST_TOKEN": "flag"]).string(token) == "flag")
    }

    @Test(arguments: [
        Settings.backupDir, Settings.backupPrefix, Settings.uploadsDir, Settings.compression, Settings.lockTTL, plain,
    ])
    func fileVariantIsOnlyForSecrets(_ setting: Setting) throws {
        let resolved = try values(
            [setting.name + "_FILE": "/run/secrets/x"], files: ["/run/secrets/x": "from-file"]
        ).string(setting)
        #expect(resolved == setting.defaultValue)
    }

    @Test func noDefaultAndNothingSetIsNil() throws {
        let config = values([:])
        #expect(try config.string(noDefault) == nil)
        #expect(try config.nonEmpty(noDefault) == nil)
        let error = configurationError { () throws(ContingencyError) in try config.required(noDefault) }
        #expect(error?.message.contains("TEST_NO_DEFAULT") == true)
    }

    @Test func secretSettingsAreTheOnesWithCredentials() {
        let all = BackupConfiguration.settings + RestoreConfiguration.settings + DrillConfiguration.settings + [Settings.pgPassword]
        let secrets = Set(all.filter(\.secret).map(\.name))
        #expect(
            secrets == [
                "DATABASE_URL", "DATABASE_PASSWORD", "PGPASSWORD", "DRILL_DATABASE_URL", "AGE_PASSPHRASE", "AGE_IDENTITY",
                "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "BACKUP_SIGNING_KEY",
                // A Slack webhook's path and a ping URL's key are credentials.
                "BACKUP_WEBHOOK_URL", "BACKUP_PING_URL",
                // A Pushgateway URL may carry basic-auth credentials.
                "PUSHGATEWAY_URL",
            ])
        // Public keys are not secret, but a list of them is easier to mount as a file.
        #expect(Settings.ageRecipients.readsFile && !Settings.ageRecipients.secret)
        #expect(Settings.backupVerifyKeys.readsFile && !Settings.backupVerifyKeys.secret)
    }

    @Test(arguments: [Settings.databaseURL, Settings.databasePassword, Settings.pgPassword])
    func realSecretsReadTheirFile(_ setting: Setting) throws {
        let resolved = try values(
            [setting.name + "_FILE": "/run/secrets/x"], files: ["/run/secrets/x": "s3cret\n"]
        ).string(setting)
        #expect(resolved == "s3cret")
    }

    // MARK: - Secret files

    @Test(arguments: [
        ("s3cret", "s3cret"),
        ("s3cret\n", "s3cret"),
        ("s3cret\n\n", "s3cret"),
        ("s3cret\r\n", "s3cret"),
        ("s3cret\r", "s3cret"),
        ("  s3 cret  \n", "  s3 cret  "),  // spaces may be part of a password
        ("line1\nline2\n", "line1\nline2"),  // only the end is trimmed
        ("\n", ""),
    ])
    func secretFileTrailingNewlinesAreTrimmed(_ row: (String, String)) throws {
        let resolved = try values(
            ["TEST_TOKEN_FILE": "/run/secrets/token"], files: ["/run/secrets/token": row.0]
        ).string(token)
        #expect(resolved == row.1)
    }

    @Test func aSecretFileHoldingOnlyANewlineIsUnset() throws {
        let config = values(["DATABASE_PASSWORD_FILE": "/run/secrets/pw"], files: ["/run/secrets/pw": "\n"])
        #expect(try config.nonEmpty(Settings.databasePassword) == nil)
    }

    @Test func unreadableSecretFileNamesTheVariableAndPath() {
        let config = values(["DATABASE_PASSWORD_FILE": "/run/secrets/db-password"])
        let error = configurationError { () throws(ContingencyError) in try config.string(Settings.databasePassword) }
        #expect(error?.message.contains("DATABASE_PASSWORD_FILE") == true)
        #expect(error?.message.contains("/run/secrets/db-password") == true)
        #expect(error?.hint?.contains("DATABASE_PASSWORD_FILE") == true)
    }

    @Test func aSecretFileThatIsNotUTF8FailsWithoutShowingItsContent() throws {
        // A real file read the way the jobs read it: bytes that are not UTF-8 around a recognizable secret.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("password").path
        let secret = "correct-horse-battery-staple"
        try (Data(secret.utf8) + Data([0xFF, 0xFE, 0x80]) + Data(secret.utf8)).write(to: URL(fileURLWithPath: path))

        let config = ConfigurationValues(environment: ["DATABASE_PASSWORD_FILE": path]) { path in
            try String(contentsOfFile: path, encoding: .utf8)
        }
        let error = try #require(
            configurationError { () throws(ContingencyError) in try config.string(Settings.databasePassword) })
        #expect(error.message.contains("DATABASE_PASSWORD_FILE"))
        #expect(!error.description.contains(secret))
        #expect(!error.description.contains("horse"))
    }

    // MARK: - Typed values

    @Test(arguments: [
        ("gzip", Compression.gzip), ("zstd", .zstd), ("ZSTD", .zstd), ("Gzip", .gzip),
    ])
    func compressionChoices(_ row: (String, Compression)) throws {
        #expect(try values(["BACKUP_COMPRESSION": row.0]).choice(Settings.compression, as: Compression.self) == row.1)
    }

    @Test func compressionDefaultsToGzip() throws {
        #expect(try values([:]).choice(Settings.compression, as: Compression.self) == .gzip)
    }

    @Test(arguments: ["lz4", "xz", "gz", "zstd ", "bzip2"])
    func compressionChoiceRefusesOtherWords(_ raw: String) {
        let config = values(["BACKUP_COMPRESSION": raw])
        let error = configurationError { () throws(ContingencyError) in
            try config.choice(Settings.compression, as: Compression.self)
        }
        #expect(error?.message.contains("BACKUP_COMPRESSION=\(raw)") == true)
        #expect(error?.message.contains("gzip") == true)
        #expect(error?.message.contains("zstd") == true)
    }

    @Test(arguments: [("text", LogFormat.text), ("json", .json), ("JSON", .json)])
    func logFormatChoices(_ row: (String, LogFormat)) throws {
        #expect(try values(["LOG_FORMAT": row.0]).choice(Settings.logFormat, as: LogFormat.self) == row.1)
    }

    @Test(arguments: [
        ("true", true), ("TRUE", true), ("1", true), ("yes", true), ("Yes", true), ("on", true),
        ("false", false), ("False", false), ("0", false), ("no", false), ("off", false), ("OFF", false), ("", false),
    ])
    func booleans(_ row: (String, Bool)) throws {
        #expect(try values([noDefault.name: row.0]).bool(noDefault) == row.1)
    }

    @Test func unsetBooleanIsFalse() throws {
        #expect(try values([:]).bool(noDefault) == false)
        #expect(try values([:]).bool(Settings.terminateConnections) == false)
    }

    @Test(arguments: ["maybe", "2", "y", "n", "enable", " true", "true\n", "-1"])
    func booleansRefuseOtherWords(_ raw: String) {
        let config = values([noDefault.name: raw])
        let error = configurationError { () throws(ContingencyError) in try config.bool(noDefault) }
        #expect(error?.message.contains("TEST_NO_DEFAULT=\(raw)") == true)
    }

    @Test(arguments: [
        ("0", 0), ("90", 90), ("90s", 90), ("5m", 300), ("1h30m", 5_400), ("2d", 172_800), ("0s", 0), ("1d12h", 129_600),
        ("3600", 3_600),
    ])
    func durations(_ row: (String, Int)) throws {
        #expect(try values([noDefault.name: row.0]).duration(noDefault) == row.1)
    }

    @Test(arguments: ["abc", "-5", "-5s", "5x", "1.5h", "30m1h", "5M", "h", "1h 30m", "99999999999999999999", ""])
    func durationsRefuseNonsense(_ raw: String) {
        let config = values([noDefault.name: raw])
        let error = configurationError { () throws(ContingencyError) in try config.duration(noDefault) }
        #expect(error?.message.contains("TEST_NO_DEFAULT") == true)
    }

    @Test(arguments: [("1", 1), ("9", 9), ("6", 6)])
    func integersInRange(_ row: (String, Int)) throws {
        #expect(try values([noDefault.name: row.0]).integer(noDefault, in: 1...9) == row.1)
    }

    @Test func unsetOrEmptyIntegerIsNil() throws {
        #expect(try values([:]).integer(noDefault, in: 1...9) == nil)
        #expect(try values([noDefault.name: ""]).integer(noDefault, in: 1...9) == nil)
    }

    @Test(arguments: ["0", "10", "-1", "abc", "5.0", "1e1", "9 "])
    func integersOutOfRangeOrNotWhole(_ raw: String) {
        let config = values([noDefault.name: raw])
        let error = configurationError { () throws(ContingencyError) in try config.integer(noDefault, in: 1...9) }
        #expect(error?.message.contains("TEST_NO_DEFAULT=\(raw)") == true)
        #expect(error?.message.contains("1 to 9") == true)
    }

    // MARK: - BackupConfiguration and RestoreConfiguration


    @Test func backupDefaults() throws {
        let configuration = try BackupConfiguration.load(values([:]))
        #expect(configuration.store.backupDirectory == "/backups")
        #expect(configuration.store.prefix == "visual_backup")
        #expect(configuration.store.lockTTLSeconds == 60)
        #expect(configuration.store.lockTimeoutSeconds == 0)
        #expect(configuration.paths.uploadsDirectory == "/app/uploads")
        #expect(configuration.paths.envFile == "/app/.env")
        #expect(configuration.paths.appDirectory == "/app")
        #expect(configuration.compression == .gzip)
        #expect(configuration.compressionLevel == nil)
        #expect(configuration.schedule == (try Schedule.parse("0 0 * * *")))
        #expect(configuration.schedule.description == "0 0 * * *")
        // Daily at midnight UTC.
        #expect(configuration.schedule.nextFire(after: midday) == Date(timeIntervalSince1970: 1_736_985_600))
        #expect(configuration.pgBinDirectory == nil)
        #expect(configuration.nodeVersion == nil)
        #expect(configuration.database == DatabaseSettings())
    }

    @Test func restoreDefaults() throws {
        let configuration = try RestoreConfiguration.load(values([:]))
        #expect(configuration.store == StoreConfiguration(backupDirectory: "/backups", prefix: "visual_backup"))
        #expect(configuration.paths == ApplicationPaths(uploadsDirectory: "/app/uploads", envFile: "/app/.env", appDirectory: "/app"))
        #expect(configuration.backup == nil)
        #expect(configuration.terminateConnections == false)
        #expect(configuration.pgBinDirectory == nil)
        #expect(configuration.database == DatabaseSettings())
        #expect(configuration.restoreOwners == false)
        #expect(configuration.allowOutsideSymlinks == false)
    }

    @Test func restoreReadsItsOwnSettings() throws {
        let configuration = try RestoreConfiguration.load(values([
            "LATEST_BACKUP": "/backups/visual_backup_2025-01-15_14-30-00.tar.gz",
            "RESTORE_TERMINATE_CONNECTIONS": "yes",
            "PG_BIN_DIR": "/usr/lib/postgresql/16/bin",
            "RESTORE_OWNERS": "true",
            "RESTORE_ALLOW_OUTSIDE_SYMLINKS": "1",
        ]))
        #expect(configuration.backup == "/backups/visual_backup_2025-01-15_14-30-00.tar.gz")
        #expect(configuration.terminateConnections)
        #expect(configuration.pgBinDirectory == "/usr/lib/postgresql/16/bin")
        #expect(configuration.restoreOwners)
        #expect(configuration.allowOutsideSymlinks)
    }

    @Test(arguments: ["RESTORE_OWNERS", "RESTORE_ALLOW_OUTSIDE_SYMLINKS"])
    func restoreRefusesABadUploadsSetting(_ name: String) {
        let error = configurationError { () throws(ContingencyError) in try RestoreConfiguration.load(values([name: "sometimes"])) }
        #expect(error?.message.contains(name) == true)
    }

    @Test func restoreRefusesABadBoolean() {
        let error = configurationError { () throws(ContingencyError) in
            try RestoreConfiguration.load(values(["RESTORE_TERMINATE_CONNECTIONS": "maybe"]))
        }
        #expect(error?.message.contains("RESTORE_TERMINATE_CONNECTIONS") == true)
    }

    @Test func flagsOverrideTheEnvironmentInLoad() throws {
        let configuration = try BackupConfiguration.load(values(
            ["BACKUP_DIR": "/from-env", "BACKUP_COMPRESSION": "gzip"],
            flags: ["BACKUP_DIR": "/from-flag", "BACKUP_COMPRESSION": "zstd"]))
        #expect(configuration.store.backupDirectory == "/from-flag")
        #expect(configuration.compression == .zstd)
    }

    @Test(arguments: [
        ("UPLOADS_DIR", "", nil),
        ("UPLOADS_DIR", "/data/uploads", "/data/uploads"),
        ("UPLOADS_DIR", "/data/uploads/", "/data/uploads"),
        ("UPLOADS_DIR", "/data/uploads//", "/data/uploads"),
        ("UPLOADS_DIR", "/", "/"),
        ("ENV_FILE", "", nil),
        ("ENV_FILE", "/srv/app/.env", "/srv/app/.env"),
        ("APP_DIR", "", nil),
    ] as [(String, String, String?)])
    func applicationPaths(_ row: (String, String, String?)) throws {
        let paths = try BackupConfiguration.load(values([row.0: row.1])).paths
        let actual: String? =
            switch row.0 {
            case "UPLOADS_DIR": paths.uploadsDirectory
            case "ENV_FILE": paths.envFile
            default: paths.appDirectory
            }
        #expect(actual == row.2)
    }

    struct RefusedRow: Sendable, CustomTestStringConvertible {
        let environment: [String: String]
        /// Text the message must contain.
        let fragment: String
        var testDescription: String { environment.sorted { $0.key < $1.key }.map { "\($0)=\($1)" }.joined(separator: " ") }
    }

    @Test(arguments: [
        RefusedRow(environment: ["BACKUP_SCHEDULE": "0 0 0 * * *"], fragment: "6 fields"),
        RefusedRow(environment: ["BACKUP_SCHEDULE": "0 0 * *"], fragment: "4 fields"),
        RefusedRow(environment: ["BACKUP_SCHEDULE": ""], fragment: "BACKUP_SCHEDULE"),
        RefusedRow(environment: ["BACKUP_PREFIX": "../x"], fragment: "BACKUP_PREFIX=../x"),
        RefusedRow(environment: ["BACKUP_PREFIX": "a/b"], fragment: "BACKUP_PREFIX=a/b"),
        RefusedRow(environment: ["BACKUP_PREFIX": ".hidden"], fragment: "BACKUP_PREFIX=.hidden"),
        RefusedRow(environment: ["BACKUP_PREFIX": "with space"], fragment: "BACKUP_PREFIX=with space"),
        RefusedRow(environment: ["BACKUP_PREFIX": "café"], fragment: "BACKUP_PREFIX=café"),
        RefusedRow(environment: ["BACKUP_PREFIX": ""], fragment: "BACKUP_PREFIX"),
        RefusedRow(environment: ["LOCK_TTL": "1s"], fragment: "LOCK_TTL"),
        RefusedRow(environment: ["LOCK_TTL": "2"], fragment: "LOCK_TTL"),
        RefusedRow(environment: ["LOCK_TTL": "0"], fragment: "LOCK_TTL"),
        RefusedRow(environment: ["LOCK_TTL": "soon"], fragment: "LOCK_TTL=soon"),
        RefusedRow(environment: ["LOCK_TIMEOUT": "-5"], fragment: "LOCK_TIMEOUT=-5"),
        RefusedRow(environment: ["BACKUP_COMPRESSION": "lz4"], fragment: "gzip, zstd"),
        RefusedRow(environment: ["BACKUP_COMPRESSION_LEVEL": "10"], fragment: "BACKUP_COMPRESSION_LEVEL=10"),
        RefusedRow(environment: ["BACKUP_COMPRESSION_LEVEL": "0"], fragment: "BACKUP_COMPRESSION_LEVEL=0"),
        RefusedRow(
            environment: ["BACKUP_COMPRESSION": "gzip", "BACKUP_COMPRESSION_LEVEL": "19"],
            fragment: "BACKUP_COMPRESSION_LEVEL=19"),
        RefusedRow(
            environment: ["BACKUP_COMPRESSION": "zstd", "BACKUP_COMPRESSION_LEVEL": "20"],
            fragment: "BACKUP_COMPRESSION_LEVEL=20"),
        RefusedRow(environment: ["BACKUP_COMPRESSION_LEVEL": "fast"], fragment: "BACKUP_COMPRESSION_LEVEL=fast"),
        RefusedRow(environment: ["BACKUP_DIR": ""], fragment: "BACKUP_DIR"),
    ])
    func backupConfigurationRefuses(_ row: RefusedRow) {
        let error = configurationError { () throws(ContingencyError) in try BackupConfiguration.load(values(row.environment)) }
        #expect(error?.message.contains(row.fragment) == true, "\(String(describing: error))")
    }

    @Test(arguments: [
        RefusedRow(environment: ["BACKUP_PREFIX": "../x"], fragment: "BACKUP_PREFIX"),
        RefusedRow(environment: ["LOCK_TTL": "1s"], fragment: "LOCK_TTL"),
    ])
    func restoreConfigurationRefusesTheSameStoreSettings(_ row: RefusedRow) {
        let error = configurationError { () throws(ContingencyError) in try RestoreConfiguration.load(values(row.environment)) }
        #expect(error?.message.contains(row.fragment) == true)
    }

    @Test(arguments: [
        (["LOCK_TTL": "3"], \BackupConfiguration.store.lockTTLSeconds, 3),
        (["LOCK_TTL": "3s"], \.store.lockTTLSeconds, 3),
        (["LOCK_TTL": "5m"], \.store.lockTTLSeconds, 300),
        (["LOCK_TIMEOUT": "90s"], \.store.lockTimeoutSeconds, 90),
        (["LOCK_TIMEOUT": "1h30m"], \.store.lockTimeoutSeconds, 5_400),
    ] as [([String: String], KeyPath<BackupConfiguration, Int> & Sendable, Int)])
    func lockDurations(_ row: ([String: String], KeyPath<BackupConfiguration, Int> & Sendable, Int)) throws {
        #expect(try BackupConfiguration.load(values(row.0))[keyPath: row.1] == row.2)
    }

    @Test(arguments: [
        (["BACKUP_COMPRESSION_LEVEL": "1"], Compression.gzip, 1),
        (["BACKUP_COMPRESSION_LEVEL": "9"], .gzip, 9),
        (["BACKUP_COMPRESSION": "zstd", "BACKUP_COMPRESSION_LEVEL": "10"], .zstd, 10),
        (["BACKUP_COMPRESSION": "zstd", "BACKUP_COMPRESSION_LEVEL": "19"], .zstd, 19),
        (["BACKUP_COMPRESSION": "ZSTD", "BACKUP_COMPRESSION_LEVEL": "1"], .zstd, 1),
    ] as [([String: String], Compression, Int)])
    func compressionLevelsInRange(_ row: ([String: String], Compression, Int)) throws {
        let configuration = try BackupConfiguration.load(values(row.0))
        #expect(configuration.compression == row.1)
        #expect(configuration.compressionLevel == row.2)
    }

    @Test(arguments: ["db-prod.v2", "visual_backup", "A-1", "x", "a..b"])
    func acceptedPrefixes(_ prefix: String) throws {
        #expect(try BackupConfiguration.load(values(["BACKUP_PREFIX": prefix])).store.prefix == prefix)
    }

    @Test(arguments: [
        ("@every 6h", Schedule.interval(seconds: 21_600)),
        ("6h", .interval(seconds: 21_600)),
    ])
    func schedulesAsIntervals(_ row: (String, Schedule)) throws {
        #expect(try BackupConfiguration.load(values(["BACKUP_SCHEDULE": row.0])).schedule == row.1)
    }

    @Test func cronScheduleFromTheEnvironment() throws {
        let schedule = try BackupConfiguration.load(values(["BACKUP_SCHEDULE": "*/15 * * * *"])).schedule
        #expect(schedule.nextFire(after: midday) == midday.addingTimeInterval(15 * 60))
    }

    // MARK: - Database settings

    @Test func databasePartsMapToLibpqKeywords() throws {
        let database = try BackupConfiguration.load(values([
            "DATABASE_NAME": "visual", "DATABASE_USER": "app", "DATABASE_PASSWORD": "pw",
            "DATABASE_URL": "postgres://db.internal:5432/other",
        ])).database
        #expect(database.overrides == ["dbname": "visual", "user": "app", "password": "pw"])
        #expect(database.url == "postgres://db.internal:5432/other")
    }

    @Test func emptyDatabasePartsAreLeftToLibpq() throws {
        let database = try DatabaseSettings.load(values(["DATABASE_NAME": "", "DATABASE_USER": "", "DATABASE_URL": ""]))
        #expect(database == DatabaseSettings())
    }

    struct PasswordRow: Sendable, CustomTestStringConvertible {
        let label: String
        let environment: [String: String]
        let expected: String?
        var testDescription: String { label }
    }


    @Test(arguments: [
        PasswordRow(label: "PGPASSWORD_FILE alone", environment: ["PGPASSWORD_FILE": "/run/secrets/pg"], expected: "pg-file-secret"),
        PasswordRow(
            label: "PGPASSWORD set: libpq reads it, the file is left alone",
            environment: ["PGPASSWORD": "direct", "PGPASSWORD_FILE": "/run/secrets/pg"], expected: nil),
        PasswordRow(
            label: "PGPASSWORD set, file missing: not read",
            environment: ["PGPASSWORD": "direct", "PGPASSWORD_FILE": "/nonexistent"], expected: nil),
        PasswordRow(label: "PGPASSWORD alone is not copied", environment: ["PGPASSWORD": "direct"], expected: nil),
        PasswordRow(
            label: "DATABASE_PASSWORD wins over PGPASSWORD_FILE",
            environment: ["DATABASE_PASSWORD": "dp", "PGPASSWORD_FILE": "/run/secrets/pg"], expected: "dp"),
        PasswordRow(
            label: "DATABASE_PASSWORD_FILE", environment: ["DATABASE_PASSWORD_FILE": "/run/secrets/db"],
            expected: "db-file-secret"),
        PasswordRow(
            label: "DATABASE_PASSWORD_FILE wins over PGPASSWORD_FILE",
            environment: ["DATABASE_PASSWORD_FILE": "/run/secrets/db", "PGPASSWORD_FILE": "/run/secrets/pg"],
            expected: "db-file-secret"),
        PasswordRow(label: "nothing", environment: [:], expected: nil),
    ])
    func passwordOverride(_ row: PasswordRow) throws {
        let database = try DatabaseSettings.load(values(row.environment, files: passwordFiles))
        #expect(database.overrides["password"] == row.expected)
    }

    @Test func unreadablePGPasswordFileIsAConfigurationError() {
        let error = configurationError { () throws(ContingencyError) in
            try DatabaseSettings.load(values(["PGPASSWORD_FILE": "/nonexistent"]))
        }
        #expect(error?.message.contains("PGPASSWORD_FILE") == true)
    }

    struct RedactionRow: Sendable, CustomTestStringConvertible {
        let label: String
        let environment: [String: String]
        let shown: [String]
        var testDescription: String { label }
    }


    @Test(arguments: [
        RedactionRow(
            label: "DATABASE_PASSWORD",
            environment: ["DATABASE_PASSWORD": leaked, "DATABASE_NAME": "visual", "DATABASE_USER": "app"],
            shown: ["dbname=visual", "user=app"]),
        RedactionRow(
            label: "URI with password", environment: ["DATABASE_URL": "postgres://app:\(leaked)@db.internal:5432/visual"],
            shown: ["redacted"]),
        RedactionRow(
            label: "conninfo with password", environment: ["DATABASE_URL": "host=db user=app password=\(leaked)"],
            shown: ["redacted"]),
        RedactionRow(
            label: "URI and parts", environment: ["DATABASE_URL": "postgresql://u:\(leaked)@h/d", "DATABASE_NAME": "visual"],
            shown: ["redacted", "dbname=visual"]),
        RedactionRow(label: "DATABASE_PASSWORD_FILE", environment: ["DATABASE_PASSWORD_FILE": "/run/secrets/pw"], shown: []),
        RedactionRow(label: "PGPASSWORD_FILE", environment: ["PGPASSWORD_FILE": "/run/secrets/pw"], shown: []),
        RedactionRow(label: "DATABASE_URL_FILE", environment: ["DATABASE_URL_FILE": "/run/secrets/url"], shown: ["redacted"]),
    ])
    func databaseDescriptionNeverShowsThePassword(_ row: RedactionRow) throws {
        let database = try DatabaseSettings.load(values(row.environment, files: redactionFiles))
        #expect(database.overrides["password"] == leaked || database.url?.contains(leaked) == true)
        #expect(!database.description.contains(leaked))
        #expect(!database.description.contains("hunter2"))
        for fragment in row.shown {
            #expect(database.description.contains(fragment))
        }
        // Logging a whole configuration interpolates the database settings through their description.
        let configuration = try BackupConfiguration.load(values(row.environment, files: redactionFiles))
        #expect(!"\(configuration)".contains(leaked))
        #expect(!String(reflecting: configuration).contains(leaked))
    }

    // MARK: - Help text

    /// Splits help text into one block per setting: its head line and its indented description lines.
    func blocks(_ text: String) -> [[String]] {
        var result: [[String]] = []
        for line in text.split(separator: "\n").map(String.init) {
            if line.hasPrefix("      ") { result[result.count - 1].append(line) } else { result.append([line]) }
        }
        return result
    }

    @Test func helpTextListsEverySetting() {
        let settings = BackupConfiguration.settings
        let entries = blocks(Setting.helpText(settings))
        #expect(entries.count == settings.count)
        for (entry, setting) in zip(entries, settings) {
            let head = entry[0]
            let description = entry.dropFirst().map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
            #expect(head.hasPrefix("  \(setting.name)"), "\(head)")
            #expect(description == setting.help)
            if let value = setting.defaultValue {
                #expect(head.contains("(default: \(value.isEmpty ? "empty" : value))"), "\(head)")
            } else {
                #expect(!head.contains("(default:"), "\(head)")
            }
            #expect(head.contains("\(setting.name)_FILE") == setting.readsFile, "\(head)")
            #expect(head.contains("secret") == setting.secret, "\(head)")
        }
    }

    @Test(arguments: [
        (Settings.backupDir, ["BACKUP_DIR", "(default: /backups)"]),
        (Settings.backupPrefix, ["BACKUP_PREFIX", "(default: visual_backup)"]),
        (Settings.schedule, ["BACKUP_SCHEDULE", "(default: 0 0 * * *)"]),
        (Settings.lockTTL, ["LOCK_TTL", "(default: 60s)"]),
        (Settings.databasePassword, ["DATABASE_PASSWORD", "DATABASE_PASSWORD_FILE", "secret"]),
        (Settings.databaseURL, ["DATABASE_URL", "DATABASE_URL_FILE"]),
        (Setting("EMPTY_DEFAULT", default: "", "Empty by default"), ["EMPTY_DEFAULT", "(default: empty)"]),
    ])
    func helpTextHead(_ row: (Setting, [String])) {
        let head = Setting.helpText([row.0]).split(separator: "\n")[0]
        for fragment in row.1 {
            #expect(head.contains(fragment), "\(head)")
        }
    }

    /// The argument parser re-wraps any line wider than the terminal (80 columns when not a tty).
    @Test func helpTextFitsEightyColumns() {
        let long = Setting("LONG_ONE", String(repeating: "word ", count: 60))
        for line in Setting.helpText(RestoreConfiguration.settings + BackupConfiguration.settings + [long]).split(separator: "\n") {
            #expect(line.count <= 80, "\(line)")
        }
    }
}

/// PUSHGATEWAY_URL: an http(s) URL, credentials allowed, never shown in an error.
@Suite struct PushgatewaySettingsTests {
    static func load(_ environment: [String: String]) throws(ContingencyError) -> String? {
        try PushgatewaySettings.load(ConfigurationValues(environment: environment, readFile: { _ in "" }))
    }

    @Test func acceptsGatewayURLs() throws {
        #expect(try Self.load([:]) == nil)
        #expect(try Self.load(["PUSHGATEWAY_URL": "http://pushgateway:9091"]) == "http://pushgateway:9091")
        #expect(try Self.load(["PUSHGATEWAY_URL": " https://u:p@push.example.com/gw/ \n"]) == "https://u:p@push.example.com/gw/")
    }

    @Test(arguments: ["pushgateway:9091", "ftp://u:hunter2@host", "http://u:hunter2@host/?job=x", "http://"])
    func refusesOthersWithoutShowingThem(_ value: String) {
        var caught: ContingencyError?
        do { _ = try Self.load(["PUSHGATEWAY_URL": value]) } catch { caught = error }
        #expect(caught?.message.contains("PUSHGATEWAY_URL") == true, "\(value)")
        #expect(caught.map { !"\($0)".contains("hunter2") } == true, "\(value)")
    }
}

/// Settings every job shares: the store, locking and logging.
public struct StoreConfiguration: Sendable, Equatable {
    /// The shared volume, or nil when the store is the bucket alone.
    public var backupDirectory: String?
    /// The bucket: the store itself without a volume, else the volume's copy.
    public var s3: S3Configuration?
    /// Where local temporary files go when there is no volume.
    public var stagingDirectory: String
    public var prefix: String
    public var lockTTLSeconds: Int
    public var lockTimeoutSeconds: Int
    /// PUSHGATEWAY_URL: where the jobs also push the metrics they publish in the store; nil: nowhere.
    public var pushgatewayURL: String?

    public init(
        backupDirectory: String?, s3: S3Configuration? = nil, stagingDirectory: String = "/tmp/contingency", prefix: String,
        lockTTLSeconds: Int = 60, lockTimeoutSeconds: Int = 0
    ) {
        self.backupDirectory = backupDirectory
        self.s3 = s3
        self.stagingDirectory = stagingDirectory
        self.prefix = prefix
        self.lockTTLSeconds = lockTTLSeconds
        self.lockTimeoutSeconds = lockTimeoutSeconds
    }

    public static let settings: [Setting] =
        [Settings.backupDir] + S3Configuration.settings + [Settings.stagingDir, Settings.backupPrefix, Settings.lockTTL, Settings.lockTimeout]
        + [Settings.pushgatewayURL]

    public static func load(_ values: ConfigurationValues) throws(ContingencyError) -> StoreConfiguration {
        let prefix = try values.required(Settings.backupPrefix)
        let allowed = prefix.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0)
        }
        guard allowed, !prefix.hasPrefix(".") else {
            throw .configuration(
                "BACKUP_PREFIX=\(prefix) may hold only letters, digits, '.', '_' and '-', and may not start with '.'")
        }
        let ttl = try values.duration(Settings.lockTTL)
        guard ttl >= 3 else {
            throw .configuration("LOCK_TTL=\(ttl)s is too short", hint: "use at least 3s; the lease is renewed every third of it")
        }
        let s3 = try S3Configuration.load(values)
        // With a bucket, the volume is used only when named: its default (/backups) must not turn a bucket-only
        // setup into one that also needs a volume.
        let directory = s3 == nil || values.isSet(Settings.backupDir) ? try values.required(Settings.backupDir) : nil
        var configuration = StoreConfiguration(
            backupDirectory: directory, s3: s3,
            stagingDirectory: try values.required(Settings.stagingDir),
            prefix: prefix,
            lockTTLSeconds: ttl,
            lockTimeoutSeconds: try values.duration(Settings.lockTimeout))
        configuration.pushgatewayURL = try PushgatewaySettings.load(values)
        return configuration
    }

    /// For messages: the volume, the bucket, or both.
    public var description: String {
        [backupDirectory, s3?.url].compactMap { $0 }.joined(separator: " and ")
    }
}

/// The log line format.
public enum LogFormat: String, Sendable, CaseIterable {
    case text
    case json
}

/// Where the application's files are.
public struct ApplicationPaths: Sendable, Equatable {
    /// nil: the application has no uploads folder to back up.
    public var uploadsDirectory: String?
    public var envFile: String?
    public var appDirectory: String?

    public init(uploadsDirectory: String?, envFile: String?, appDirectory: String?) {
        self.uploadsDirectory = uploadsDirectory
        self.envFile = envFile
        self.appDirectory = appDirectory
    }

    public static let settings: [Setting] = [Settings.uploadsDir, Settings.envFile, Settings.appDir]

    public static func load(_ values: ConfigurationValues) throws(ContingencyError) -> ApplicationPaths {
        ApplicationPaths(
            uploadsDirectory: try values.nonEmpty(Settings.uploadsDir).map(Self.trimmingSlash),
            envFile: try values.nonEmpty(Settings.envFile),
            appDirectory: try values.nonEmpty(Settings.appDir))
    }

    static func trimmingSlash(_ path: String) -> String {
        var path = path
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        return path
    }
}

/// Everything `backup-job` needs, resolved and checked before any work starts.
public struct BackupConfiguration: Sendable, Equatable {
    public var store: StoreConfiguration
    public var database: DatabaseSettings
    public var paths: ApplicationPaths
    public var compression: Compression
    public var compressionLevel: Int?
    public var schedule: Schedule
    public var pgBinDirectory: String?
    public var nodeVersion: String?
    /// Seconds between progress lines during long work.
    public var progressInterval: Int
    public var encryption: EncryptionSettings
    public var hooks: Hooks = Hooks()
    /// Dump the roles' password hashes into globals.sql too (needs a superuser).
    public var rolePasswords = false
    /// The Ed25519 private key (PEM) that signs each manifest; nil: backups are not signed.
    public var signingKey: String?
    /// The file it was read from (BACKUP_SIGNING_KEY_FILE), checked to lie outside the store.
    public var signingKeyFile: String?
    /// BACKUP_LABEL: a labelled backup is never a rollback target.
    public var label: String?
    /// `safety` for the archive of a broken state a rollback replaced.
    public var kind: BackupKind?
    /// How the application's version is read for the metadata (APP_CONTROL).
    public var appControl = AppControlSettings()

    public init(
        store: StoreConfiguration, database: DatabaseSettings, paths: ApplicationPaths,
        compression: Compression = .gzip, compressionLevel: Int? = nil, schedule: Schedule,
        pgBinDirectory: String? = nil, nodeVersion: String? = nil, progressInterval: Int = 10,
        encryption: EncryptionSettings = .none
    ) {
        self.store = store
        self.database = database
        self.paths = paths
        self.compression = compression
        self.compressionLevel = compressionLevel
        self.schedule = schedule
        self.pgBinDirectory = pgBinDirectory
        self.nodeVersion = nodeVersion
        self.progressInterval = progressInterval
        self.encryption = encryption
    }

    public static let settings: [Setting] =
        StoreConfiguration.settings + DatabaseSettings.settings + ApplicationPaths.settings + [
            Settings.compression, Settings.compressionLevel, Settings.schedule, Settings.pgBinDir,
            Settings.nodeVersion, Settings.ageRecipients, Settings.agePassphrase, Settings.backupPreCommand,
            Settings.backupPostCommand, Settings.hookTimeout, Settings.backupRolePasswords, Settings.backupSigningKey,
            Settings.progressInterval, Settings.backupLabel, Settings.logFormat,
        ] + AppControlSettings.settings + NotificationSettings.backupSettings

    public static func load(_ values: ConfigurationValues) throws(ContingencyError) -> BackupConfiguration {
        let compression = try values.choice(Settings.compression, as: Compression.self)
        let levels: ClosedRange<Int> = compression == .gzip ? 1...9 : 1...19
        var configuration = BackupConfiguration(
            store: try StoreConfiguration.load(values),
            database: try DatabaseSettings.load(values),
            paths: try ApplicationPaths.load(values),
            compression: compression,
            compressionLevel: try values.integer(Settings.compressionLevel, in: levels),
            schedule: try Schedule.parse(try values.required(Settings.schedule)),
            pgBinDirectory: try values.nonEmpty(Settings.pgBinDir),
            nodeVersion: try values.nonEmpty(Settings.nodeVersion),
            progressInterval: try values.duration(Settings.progressInterval),
            encryption: try EncryptionSettings.load(values))
        configuration.hooks = try Hooks.load(values, pre: Settings.backupPreCommand, post: Settings.backupPostCommand)
        configuration.rolePasswords = try values.bool(Settings.backupRolePasswords)
        configuration.signingKey = try keyFile(values, Settings.backupSigningKey)
        configuration.signingKeyFile = values.environment[Settings.backupSigningKey.name + "_FILE"]
        configuration.label = try values.nonEmpty(Settings.backupLabel)
        if let label = configuration.label, label.count > 200 || label.unicodeScalars.contains(where: { $0.value < 0x20 }) {
            throw .configuration("BACKUP_LABEL must be one line of at most 200 characters (it was \(label.count))")
        }
        configuration.appControl = try AppControlSettings.load(values)
        if configuration.signingKey != nil, let directory = configuration.store.backupDirectory,
            let file = values.environment[Settings.backupSigningKey.name + "_FILE"], Self.isInside(file, directory)
        {
            throw .configuration(
                "BACKUP_SIGNING_KEY_FILE=\(file) is inside the store (\(directory)): whoever can write the store could read it and sign forged backups",
                hint: "keep the private key outside BACKUP_DIR (a secret mounted only into backup-job); give restore-job the public key in BACKUP_VERIFY_KEYS")
        }
        return configuration
    }

    /// Whether `path` lies under `folder`, judged on the written paths (`.` and `..` resolved, no symlinks).
    static func isInside(_ path: String, _ folder: String) -> Bool {
        func parts(_ text: String) -> [Substring] {
            var result: [Substring] = []
            for part in text.split(separator: "/") where part != "." {
                if part == ".." { _ = result.popLast() } else { result.append(part) }
            }
            return result
        }
        let inner = parts(path)
        let outer = parts(folder)
        return inner.count > outer.count && Array(inner.prefix(outer.count)) == outer
    }
}

/// Everything `restore-job` needs.
public struct RestoreConfiguration: Sendable, Equatable {
    public var store: StoreConfiguration
    public var database: DatabaseSettings
    public var paths: ApplicationPaths
    /// A name or a path; nil restores the newest complete backup.
    public var backup: String?
    public var terminateConnections: Bool
    /// Seconds pg_restore waits for a lock before failing; 0 waits forever.
    public var lockTimeout: Int
    public var pgBinDirectory: String?
    /// Seconds between progress lines during long work.
    public var progressInterval: Int
    /// The text of an age identity file (AGE_IDENTITY / AGE_IDENTITY_FILE), for encrypted archives.
    public var ageIdentities: String?
    public var agePassphrase: String?
    public var hooks: Hooks = Hooks()
    /// Create no roles; restore without owners and grants.
    public var noOwner = false
    /// Keep the replaced database until the next successful backup.
    public var keepOld = true
    /// Give restored uploads the owners the archive records (root only; RESTORE_OWNERS).
    public var restoreOwners = false
    /// Restore uploads symlinks whose target leaves the uploads folder (RESTORE_ALLOW_OUTSIDE_SYMLINKS).
    public var allowOutsideSymlinks = false
    /// Stops the application around the changes (`pre`: APP_STOP_COMMAND, `post`: APP_START_COMMAND).
    public var app = Hooks()
    /// How the restored database compresses its out-of-line values.
    public var toastCompression = ToastCompression.lz4
    /// The last large table, when its data is at least this large, is loaded through several connections (nil:
    /// every table by pg_restore; RESTORE_SPLIT_TABLE_SIZE).
    public var splitTableSize: Int64? = 64 << 20
    /// Which backups are accepted as genuine, and how far ahead of the store's clock a name may be dated.
    public var trust = TrustSettings()
    /// What is put back (RESTORE_PARTS); the parts not chosen are left untouched.
    public var parts = RestoreParts.all

    public init(
        store: StoreConfiguration, database: DatabaseSettings, paths: ApplicationPaths, backup: String? = nil,
        terminateConnections: Bool = false, lockTimeout: Int = 60, pgBinDirectory: String? = nil,
        progressInterval: Int = 10, ageIdentities: String? = nil, agePassphrase: String? = nil
    ) {
        self.store = store
        self.database = database
        self.paths = paths
        self.backup = backup
        self.terminateConnections = terminateConnections
        self.lockTimeout = lockTimeout
        self.pgBinDirectory = pgBinDirectory
        self.progressInterval = progressInterval
        self.ageIdentities = ageIdentities
        self.agePassphrase = agePassphrase
    }

    public static let settings: [Setting] =
        StoreConfiguration.settings + DatabaseSettings.settings + ApplicationPaths.settings + [
            Settings.ageIdentity, Settings.agePassphrase, Settings.restorePreCommand, Settings.restorePostCommand,
            Settings.hookTimeout, Settings.appStopCommand, Settings.appStartCommand, Settings.restoreNoOwner,
            Settings.restoreKeepOld, Settings.restoreOwners, Settings.restoreAllowOutsideSymlinks, Settings.latestBackup, Settings.terminateConnections, Settings.restoreLockTimeout, Settings.pgBinDir,
            Settings.restoreToastCompression, Settings.restoreSplitTableSize, Settings.progressInterval,
            Settings.restoreParts, Settings.logFormat,
        ] + TrustSettings.settings

    public static func load(_ values: ConfigurationValues) throws(ContingencyError) -> RestoreConfiguration {
        var configuration = RestoreConfiguration(
            store: try StoreConfiguration.load(values),
            database: try DatabaseSettings.load(values),
            paths: try ApplicationPaths.load(values),
            backup: try values.nonEmpty(Settings.latestBackup),
            terminateConnections: try values.bool(Settings.terminateConnections),
            lockTimeout: try values.duration(Settings.restoreLockTimeout),
            pgBinDirectory: try values.nonEmpty(Settings.pgBinDir),
            progressInterval: try values.duration(Settings.progressInterval),
            ageIdentities: try keyFile(values, Settings.ageIdentity),
            agePassphrase: try keyFile(values, Settings.agePassphrase))
        configuration.hooks = try Hooks.load(values, pre: Settings.restorePreCommand, post: Settings.restorePostCommand)
        configuration.noOwner = try values.bool(Settings.restoreNoOwner)
        configuration.keepOld = try values.bool(Settings.restoreKeepOld)
        configuration.restoreOwners = try values.bool(Settings.restoreOwners)
        configuration.allowOutsideSymlinks = try values.bool(Settings.restoreAllowOutsideSymlinks)
        configuration.app = try Hooks.load(values, pre: Settings.appStopCommand, post: Settings.appStartCommand)
        configuration.toastCompression = try values.choice(Settings.restoreToastCompression, as: ToastCompression.self)
        let split = try values.byteSize(Settings.restoreSplitTableSize) ?? (64 << 20)
        configuration.splitTableSize = split > 0 ? split : nil
        configuration.trust = try TrustSettings.load(values)
        configuration.parts = try RestoreParts.parse(try values.string(Settings.restoreParts))
        return configuration
    }
}

/// How pg_restore's sessions compress the values PostgreSQL stores out of line (TOAST: long text, JSON, bytea).
/// The values read back the same either way; the choice changes only restore time and space on disk.
public enum ToastCompression: String, Sendable, CaseIterable {
    /// Several times faster to compress than pglz, at about its ratio (PostgreSQL 14+ built with lz4).
    case lz4
    /// PostgreSQL's default, and what such values were compressed with on most servers.
    case pglz
    /// Whatever the server's `default_toast_compression` says: nothing is set.
    case server
}

/// What `health-sidecar` probes.
public struct HealthConfiguration: Sendable, Equatable {
    public var url: String
    public var timeoutSeconds: Int

    public init(url: String, timeoutSeconds: Int = 10) {
        self.url = url
        self.timeoutSeconds = timeoutSeconds
    }

    public static let settings: [Setting] = [Settings.healthCheckURL, Settings.healthCheckTimeout, Settings.logFormat]

    public static func load(_ values: ConfigurationValues) throws(ContingencyError) -> HealthConfiguration {
        let url = try values.required(Settings.healthCheckURL)
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
            throw .configuration("HEALTH_CHECK_URL must start with http:// or https://")
        }
        let timeout = try values.duration(Settings.healthCheckTimeout)
        guard timeout > 0 else { throw .configuration("HEALTH_CHECK_TIMEOUT must be at least 1s") }
        return HealthConfiguration(url: url, timeoutSeconds: timeout)
    }
}

/// What `health-sidecar --loop` needs: the probe, its rhythm, the store it writes heartbeats and rollback
/// requests to, its own HTTP address and the liveness file.
public struct SidecarConfiguration: Sendable, Equatable {
    public var health: HealthConfiguration
    public var store: StoreConfiguration
    public var intervalSeconds: Int
    /// Consecutive counted failures that open an incident.
    public var failureThreshold: Int
    public var startPeriodSeconds: Int
    /// This sidecar's name in the store (`.contingency/state/health/<id>.json`, the request's `requestedBy`).
    public var sidecarID: String
    public var bind: String
    public var port: Int
    /// Empty: no liveness file.
    public var livenessFile: String
    /// `/healthz` calls the newest backup stale past this age.
    public var backupStaleAfterSeconds: Int
    /// How long an incident's rollback request stays valid.
    public var rollbackWindowSeconds: Int
    /// The admin API (`/api/backups…`).
    public var api = APIConfiguration(token: nil)

    public init(
        health: HealthConfiguration, store: StoreConfiguration, intervalSeconds: Int = 300, failureThreshold: Int = 3,
        startPeriodSeconds: Int = 0, sidecarID: String, bind: String = "0.0.0.0", port: Int = 8080,
        livenessFile: String = "", backupStaleAfterSeconds: Int = 26 * 3600, rollbackWindowSeconds: Int = 3600
    ) {
        self.health = health
        self.store = store
        self.intervalSeconds = intervalSeconds
        self.failureThreshold = failureThreshold
        self.startPeriodSeconds = startPeriodSeconds
        self.sidecarID = sidecarID
        self.bind = bind
        self.port = port
        self.livenessFile = livenessFile
        self.backupStaleAfterSeconds = backupStaleAfterSeconds
        self.rollbackWindowSeconds = rollbackWindowSeconds
    }

    public static let settings: [Setting] =
        HealthConfiguration.settings + [
            Settings.healthCheckInterval, Settings.healthCheckFailures, Settings.healthCheckStartPeriod, Settings.sidecarID,
            Settings.sidecarBind, Settings.sidecarPort, Settings.livenessFile, Settings.backupStaleAfter,
            Settings.rollbackWindow,
        ] + APIConfiguration.settings + StoreConfiguration.settings + NotificationSettings.rollbackSettings
            + NotificationSettings.backupSettings

    /// `hostName` names the sidecar when SIDECAR_ID is unset (a pod's name in Kubernetes, a container id in
    /// Docker).
    public static func load(_ values: ConfigurationValues, hostName: String) throws(ContingencyError) -> SidecarConfiguration {
        let health = try HealthConfiguration.load(values)
        let store = try StoreConfiguration.load(values)
        let interval = try values.duration(Settings.healthCheckInterval)
        guard interval >= 1 else { throw .configuration("HEALTH_CHECK_INTERVAL must be at least 1s") }
        let id = try values.nonEmpty(Settings.sidecarID) ?? hostName
        guard StoreObjectName.isValid(id) else {
            throw .configuration(
                "SIDECAR_ID=\(id) may hold only letters, digits, '.', '_' and '-' (at most 128, not starting with '.')",
                hint: "set SIDECAR_ID to a name like app-sidecar-1")
        }
        let bind = try values.required(Settings.sidecarBind)
        guard !bind.isEmpty else { throw .configuration("SIDECAR_BIND is empty", hint: "use 0.0.0.0, 127.0.0.1 or ::") }
        var configuration = SidecarConfiguration(
            health: health, store: store, intervalSeconds: interval,
            failureThreshold: try values.integer(Settings.healthCheckFailures, in: 1...1000) ?? 3,
            startPeriodSeconds: try values.duration(Settings.healthCheckStartPeriod),
            sidecarID: id, bind: bind,
            port: try values.integer(Settings.sidecarPort, in: 0...65535) ?? 8080,
            livenessFile: try values.string(Settings.livenessFile) ?? "",
            backupStaleAfterSeconds: try values.duration(Settings.backupStaleAfter),
            rollbackWindowSeconds: try values.duration(Settings.rollbackWindow))
        configuration.api = try APIConfiguration.load(values)
        return configuration
    }
}

/// A key that cannot be read is a key error (exit 12), like a wrong one.
private func keyFile(_ values: ConfigurationValues, _ setting: Setting) throws(ContingencyError) -> String? {
    do {
        return try values.nonEmpty(setting)
    } catch {
        throw .key(error.message, hint: error.hint)
    }
}

/// What `restore-job --drill` needs beyond a restore's configuration.
public struct DrillConfiguration: Sendable, Equatable {
    public var restore: RestoreConfiguration
    /// The scratch database: created, restored into, checked and dropped by each drill.
    public var scratch: DatabaseSettings
    public var schedule: Schedule

    public init(restore: RestoreConfiguration, scratch: DatabaseSettings, schedule: Schedule) {
        self.restore = restore
        self.scratch = scratch
        self.schedule = schedule
    }

    public static let settings: [Setting] = [Settings.drillDatabaseURL, Settings.drillSchedule]

    public static func load(_ values: ConfigurationValues) throws(ContingencyError) -> DrillConfiguration {
        guard let url = try values.nonEmpty(Settings.drillDatabaseURL) else {
            throw .configuration(
                "DRILL_DATABASE_URL is not set",
                hint: "name a scratch database for the drill, e.g. postgres://user@host:5432/contingency_drill (created and dropped by each drill)")
        }
        return DrillConfiguration(
            restore: try RestoreConfiguration.load(values), scratch: DatabaseSettings(url: url),
            schedule: try Schedule.parse(try values.required(Settings.drillSchedule)))
    }
}

/// How archives are encrypted: not at all, for age X25519 recipients, or with an age passphrase. Key strings
/// are parsed and checked by the age implementation before any work starts.
public enum EncryptionSettings: Sendable, Equatable, CustomStringConvertible {
    case none
    /// `age1…` public keys, as written (comma, space or line separated, `#` comments).
    case recipients(String)
    case passphrase(String)

    public static func load(_ values: ConfigurationValues) throws(ContingencyError) -> EncryptionSettings {
        let recipients = try values.nonEmpty(Settings.ageRecipients)
        let passphrase = try values.nonEmpty(Settings.agePassphrase)
        switch (recipients, passphrase) {
        case (nil, nil):
            // A key file that is set but empty is a mistake, not a wish for plaintext backups.
            for setting in [Settings.ageRecipients, Settings.agePassphrase] {
                if let path = values.environment[setting.name + "_FILE"], !path.isEmpty {
                    throw .configuration(
                        "\(setting.name)_FILE=\(path) is empty", hint: "put the key in it, or unset \(setting.name)_FILE for unencrypted backups")
                }
            }
            return .none
        case (let list?, nil): return .recipients(list)
        case (nil, let secret?): return .passphrase(secret)
        case (_?, _?):
            throw .configuration(
                "AGE_RECIPIENTS and AGE_PASSPHRASE are both set",
                hint: "age encrypts a file for recipients or for a passphrase, not both: keep one")
        }
    }

    /// Never shows the passphrase.
    public var description: String {
        switch self {
        case .none: "none"
        case .recipients(let keys): "age X25519 for \(keys)"
        case .passphrase: "age passphrase (scrypt)"
        }
    }
}

/// Shell commands run around a job: the pre command must succeed for the job to run; the post command
/// always runs, with the outcome in its environment.
public struct Hooks: Sendable, Equatable {
    public var pre: String?
    public var post: String?
    public var timeoutSeconds: Int

    public init(pre: String? = nil, post: String? = nil, timeoutSeconds: Int = 300) {
        self.pre = pre
        self.post = post
        self.timeoutSeconds = timeoutSeconds
    }

    public static func load(_ values: ConfigurationValues, pre: Setting, post: Setting) throws(ContingencyError) -> Hooks {
        Hooks(
            pre: try values.nonEmpty(pre), post: try values.nonEmpty(post),
            timeoutSeconds: max(1, try values.duration(Settings.hookTimeout)))
    }
}

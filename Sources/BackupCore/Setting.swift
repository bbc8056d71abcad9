/// One configuration variable: its environment name, default, meaning and whether it is a secret.
/// Every executable's `--help` is generated from the settings it reads, so the list cannot drift.
public struct Setting: Sendable, Hashable {
    public let name: String
    public let defaultValue: String?
    public let help: String
    /// Secrets are also read from `<NAME>_FILE` and are never logged or printed.
    public let secret: Bool
    /// Also read from `<NAME>_FILE` (always true for secrets; also for long public values like key lists).
    public let readsFile: Bool

    public init(
        _ name: String, default defaultValue: String? = nil, secret: Bool = false, readsFile: Bool = false, _ help: String
    ) {
        self.name = name
        self.defaultValue = defaultValue
        self.secret = secret
        self.readsFile = secret || readsFile
        self.help = help
    }

    /// One entry per setting for `--help`, kept under 80 columns so the help printer leaves it as it is:
    ///
    ///     BACKUP_DIR (default: /backups)
    ///         Folder of the backup store (a shared volume)
    public static func helpText(_ settings: [Setting]) -> String {
        settings.map { setting in
            var head = "  " + setting.name
            // A secret's default is never printed (secrets have none; this keeps it so if one ever does).
            if let value = setting.defaultValue, !setting.secret { head += " (default: \(value.isEmpty ? "empty" : value))" }
            if setting.secret {
                head += " [secret; also \(setting.name)_FILE]"
            } else if setting.readsFile {
                head += " [also \(setting.name)_FILE]"
            }
            return ([head] + wrap(setting.help, width: 72).map { "      " + $0 }).joined(separator: "\n")
        }.joined(separator: "\n")
    }

    static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty && line.count + 1 + word.count > width {
                lines.append(line)
                line = ""
            }
            line += (line.isEmpty ? "" : " ") + word
        }
        if !line.isEmpty { lines.append(line) }
        return lines
    }
}

/// The variables the jobs read. Names from the runbook are kept (`BACKUP_DIR`, `DATABASE_NAME`, …).
public enum Settings {
    public static let backupDir = Setting(
        "BACKUP_DIR", default: "/backups",
        "Folder of the backup store (a shared volume); with BACKUP_S3_URL, used only when set, and then every backup is also copied to the bucket")
    public static let s3URL = Setting(
        "BACKUP_S3_URL", "s3://bucket/prefix: keep backups in an S3-compatible bucket (alone, or as the copy of BACKUP_DIR)")
    public static let s3Endpoint = Setting(
        "S3_ENDPOINT", "The S3 server for MinIO, Ceph RGW, R2, GCS… (default: AWS, https://s3.<region>.amazonaws.com)")
    public static let awsRegion = Setting("AWS_REGION", "The bucket's region (default: AWS_DEFAULT_REGION, else us-east-1)")
    public static let awsAccessKeyID = Setting("AWS_ACCESS_KEY_ID", readsFile: true, "Access key id for the bucket")
    public static let awsSecretAccessKey = Setting("AWS_SECRET_ACCESS_KEY", secret: true, "Secret access key for the bucket")
    public static let awsSessionToken = Setting("AWS_SESSION_TOKEN", secret: true, "Session token, with temporary credentials")
    public static let s3PathStyle = Setting(
        "S3_FORCE_PATH_STYLE", default: "auto",
        "true: endpoint/bucket/key addressing; false: bucket.endpoint/key; auto: path style with S3_ENDPOINT, else virtual-hosted")
    public static let s3CABundle = Setting("S3_CA_BUNDLE", "PEM file of the CA that signed the S3 server's certificate")
    public static let s3StorageClass = Setting("S3_STORAGE_CLASS", "Storage class of uploaded archives (STANDARD_IA, …)")
    public static let s3PartSize = Setting(
        "S3_PART_SIZE", default: "16MiB",
        "Multipart upload part size (5MiB to 1GiB); memory holds two parts; an archive may have 10,000 parts")
    public static let s3Timeout = Setting(
        "S3_TIMEOUT", default: "60s", "A request to the bucket moving no data for this long is abandoned and retried")
    public static let s3Retries = Setting(
        "S3_RETRIES", default: "5",
        "Retries, with backoff, of each store operation that failed transiently (timeout, reset, 5xx), and of each "
            + "request within an upload, a download or a listing")
    public static let stagingDir = Setting(
        "STAGING_DIR", default: "/tmp/contingency",
        "Local folder for the database dump between pg_dump and the archive when there is no BACKUP_DIR")
    public static let backupPrefix = Setting(
        "BACKUP_PREFIX", default: "visual_backup", "Name prefix of archives; installs sharing a store use different prefixes")
    public static let databaseURL = Setting(
        "DATABASE_URL", secret: true, "postgres://user:password@host:port/dbname (libpq URI); parts below override it")
    public static let databaseName = Setting("DATABASE_NAME", "Database to back up or restore (libpq PGDATABASE also works)")
    public static let databaseUser = Setting("DATABASE_USER", "Database user (libpq PGUSER also works)")
    public static let databasePassword = Setting(
        "DATABASE_PASSWORD", secret: true, "Database password (libpq PGPASSWORD / PGPASSFILE also work)")
    public static let pgPassword = Setting("PGPASSWORD", secret: true, "libpq's password variable")
    public static let pgBinDir = Setting(
        "PG_BIN_DIR", "Folder holding pg_dump and pg_restore (default: the newest /usr/lib/postgresql/*/bin, then PATH)")
    public static let uploadsDir = Setting(
        "UPLOADS_DIR", default: "/app/uploads", "The application's uploads folder; empty for none")
    public static let envFile = Setting("ENV_FILE", default: "/app/.env", "The application's .env file; empty for none")
    public static let appDir = Setting("APP_DIR", default: "/app", "Folder holding package.json and package-lock.json")
    public static let nodeVersion = Setting("NODE_VERSION", "The application's Node.js version, recorded in metadata.json")
    public static let compression = Setting(
        "BACKUP_COMPRESSION", default: "gzip", "gzip (.tar.gz) or zstd (.tar.zst)")
    public static let compressionLevel = Setting(
        "BACKUP_COMPRESSION_LEVEL", "Compression level (gzip 1-9, default 6; zstd 1-19, default 3)")
    public static let schedule = Setting(
        "BACKUP_SCHEDULE", default: "0 0 * * *", "With --loop: 5-field cron (UTC), @daily-style macro, or interval (24h)")
    public static let lockTTL = Setting(
        "LOCK_TTL", default: "60s", "Lease time of the store lock; renewed every third of it while held")
    public static let lockTimeout = Setting(
        "LOCK_TIMEOUT", default: "0", "How long to wait for a lock held by another job (0: exit 11 at once)")
    public static let progressInterval = Setting(
        "PROGRESS_INTERVAL", default: "10s", "How often long work logs a progress line (0: at every step)")
    public static let drillDatabaseURL = Setting(
        "DRILL_DATABASE_URL", secret: true,
        "restore-job --drill: a scratch database (libpq URI) the drill creates, restores into and drops; never the application's")
    public static let drillSchedule = Setting(
        "DRILL_SCHEDULE", default: "@weekly", "restore-job --drill --loop: when to drill the newest backup")
    public static let ageRecipients = Setting(
        "AGE_RECIPIENTS", readsFile: true,
        "Encrypt archives (.age) for these age X25519 public keys (age1…, comma or line separated); the job then cannot read what it wrote")
    public static let agePassphrase = Setting(
        "AGE_PASSPHRASE", secret: true, "Encrypt archives (.age) with this passphrase (age scrypt); also decrypts them")
    public static let ageIdentity = Setting(
        "AGE_IDENTITY", secret: true,
        "restore-job: age identities (AGE-SECRET-KEY-1…) that decrypt .age archives; usually AGE_IDENTITY_FILE, as age-keygen writes it")
    public static let backupPreCommand = Setting(
        "BACKUP_PRE_COMMAND", "Shell command run before a backup; if it fails or times out, the backup does not run")
    public static let backupPostCommand = Setting(
        "BACKUP_POST_COMMAND", "Shell command run after every backup, failed or not (CONTINGENCY_OUTCOME=success|failure)")
    public static let restorePreCommand = Setting(
        "RESTORE_PRE_COMMAND", "Shell command run before a restore; if it fails or times out, the restore does not run")
    public static let restorePostCommand = Setting(
        "RESTORE_POST_COMMAND", "Shell command run after every restore, failed or not (CONTINGENCY_OUTCOME=success|failure)")
    public static let hookTimeout = Setting(
        "HOOK_TIMEOUT", default: "5m", "A pre or post command still running after this is stopped (SIGTERM, then SIGKILL) and fails")
    public static let backupRolePasswords = Setting(
        "BACKUP_ROLE_PASSWORDS", default: "false",
        "Include the roles' password hashes in globals.sql (needs a superuser); by default roles are dumped without them")
    public static let restoreNoOwner = Setting(
        "RESTORE_NO_OWNER", default: "false",
        "Restore with --no-owner --no-acl and create no roles: everything is owned by the restoring user")
    public static let restoreOwners = Setting(
        "RESTORE_OWNERS", default: "false",
        "true: restored uploads get the owners recorded in the archive (when run as root); otherwise they belong to the owner of the current UPLOADS_DIR (as root) or to the restoring user")
    public static let restoreAllowOutsideSymlinks = Setting(
        "RESTORE_ALLOW_OUTSIDE_SYMLINKS", default: "false",
        "true: restore symlinks in the uploads whose target leaves the uploads folder (absolute, or climbing above it); otherwise such a backup is refused")
    public static let restoreKeepOld = Setting(
        "RESTORE_KEEP_OLD", default: "true",
        "Keep the database as it was before a restore (<db>_before_restore_<time>) until the next successful backup")
    public static let appStopCommand = Setting(
        "APP_STOP_COMMAND", "restore-job: shell command that stops the application before its data is replaced")
    public static let appStartCommand = Setting(
        "APP_START_COMMAND", "restore-job: shell command that starts it again; always run once the stop command ran")
    public static let healthCheckURL = Setting(
        "HEALTH_CHECK_URL", default: "http://localhost:5000/healthz", "The application's health endpoint")
    public static let healthCheckTimeout = Setting(
        "HEALTH_CHECK_TIMEOUT", default: "10s", "A probe that has no HTTP 200 within this time counts as a failure")
    public static let logFormat = Setting("LOG_FORMAT", default: "text", "text or json (one JSON object per line)")
    public static let latestBackup = Setting(
        "LATEST_BACKUP", "Backup to restore: a name or a path (default: the newest complete backup)")
    public static let restoreLockTimeout = Setting(
        "RESTORE_LOCK_TIMEOUT", default: "60s",
        "How long pg_restore waits for a table another session holds before failing (0: forever)")
    public static let restoreToastCompression = Setting(
        "RESTORE_TOAST_COMPRESSION", default: "lz4",
        "How restored values too large for a row are compressed: lz4 (fast; PostgreSQL 14+ built with lz4, else as server), pglz (PostgreSQL's own default, several times slower to compress), or server (the server's default_toast_compression)")
    public static let restoreSplitTableSize = Setting(
        "RESTORE_SPLIT_TABLE_SIZE", default: "64MiB",
        "The last large table of the dump (less than this much of the dump after it), when its data is at least this large, is loaded through several connections at once, one per this much, on the connections no other large table needs, and those other steps leave as they end (pg_restore loads a table through one); 0: every table by pg_restore")
    public static let terminateConnections = Setting(
        "RESTORE_TERMINATE_CONNECTIONS", default: "false", "End other sessions on the database before restoring")
}

/// The health sidecar's and the rollback runner's variables (see docs/rollback.md).
extension Settings {
    public static let healthCheckInterval = Setting(
        "HEALTH_CHECK_INTERVAL", default: "5m", "health-sidecar --loop: time between two probes of HEALTH_CHECK_URL")
    public static let healthCheckFailures = Setting(
        "HEALTH_CHECK_FAILURES", default: "3", "Consecutive failed probes that open an incident (a rollback request)")
    public static let healthCheckStartPeriod = Setting(
        "HEALTH_CHECK_START_PERIOD", default: "0s",
        "After the sidecar starts, failed probes during this time are not counted: a starting app settles")
    public static let sidecarPort = Setting("SIDECAR_PORT", default: "8080", "health-sidecar --loop: the port it serves /healthz on")
    public static let sidecarBind = Setting("SIDECAR_BIND", default: "0.0.0.0", "health-sidecar --loop: the address it listens on")
    public static let sidecarID = Setting(
        "SIDECAR_ID", "This sidecar's name in the store's heartbeats (default: the host name; a pod's name in Kubernetes)")
    public static let livenessFile = Setting(
        "LIVENESS_FILE", default: "/tmp/contingency-alive",
        "Every --loop process touches this file while its loop runs; the image's HEALTHCHECK and a Kubernetes exec probe read its age")
    public static let backupStaleAfter = Setting(
        "BACKUP_STALE_AFTER", default: "26h", "/healthz reports the newest backup as stale when it is older than this")
    public static let restorePollInterval = Setting(
        "RESTORE_POLL_INTERVAL", default: "10s", "restore-job --loop: how often the store is read for restore and rollback requests")
    public static let rollbackHealthTimeout = Setting(
        "ROLLBACK_HEALTH_TIMEOUT", default: "5m", "After a rollback, how long the app may take to answer HTTP 200 before the rollback has failed")
    public static let rollbackMax = Setting("ROLLBACK_MAX", default: "1", "Loop guard: at most this many rollbacks per ROLLBACK_WINDOW")
    public static let rollbackWindow = Setting(
        "ROLLBACK_WINDOW", default: "1h",
        "Loop guard window; also how long a rollback request stays valid (an older one is expired, never run late)")
    public static let rollbackCode = Setting(
        "ROLLBACK_CODE", default: "true",
        "Roll the application's version (Docker image, Kubernetes pod template) back with the data; false leaves code to the deploy pipeline")
    public static let rollbackDataOnly = Setting(
        "ROLLBACK_DATA_ONLY", default: "false", "When the version recorded with the backup cannot be restored, restore the data anyway")
    public static let safetyRetentionDays = Setting(
        "SAFETY_RETENTION_DAYS", default: "7", "How long the safety backups of broken states (made by rollbacks) are kept")
    public static let backupLabel = Setting(
        "BACKUP_LABEL", "A label for this backup (an investigation copy, …); a labelled backup is never a rollback target")
    public static let appControl = Setting(
        "APP_CONTROL", default: "command",
        "How restore-job stops and starts the app: command (APP_STOP_COMMAND/APP_START_COMMAND), docker (containers labelled APP_CONTAINER_LABEL) or kubernetes (APP_DEPLOYMENT)")
    public static let appContainerLabel = Setting(
        "APP_CONTAINER_LABEL", "APP_CONTROL=docker: the label of the application's containers (contingency.app=visual)")
    public static let dockerHost = Setting(
        "DOCKER_HOST", default: "unix:///var/run/docker.sock", "APP_CONTROL=docker: the Docker Engine API's unix socket")
    public static let appDeployment = Setting("APP_DEPLOYMENT", "APP_CONTROL=kubernetes: the application's Deployment")
    public static let appNamespace = Setting(
        "APP_NAMESPACE", "APP_CONTROL=kubernetes: its namespace (default: the pod's own, from the service account)")
}

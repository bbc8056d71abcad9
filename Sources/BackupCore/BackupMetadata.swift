import Foundation

/// `metadata.json`, the last member of every archive: what was backed up, from where, with which tools,
/// and each member's size and sha256 so a restore can check every byte it extracts.
///
/// Keys are snake_case as in the runbook's `metadata.json` (`timestamp`, `database`, `version`, `node_version`).
public struct BackupMetadata: Codable, Sendable, Equatable {
    /// Identifies archives written by this product; archives of the runbook's shell script have none.
    public static let currentFormat = "contingency-backup/1"

    public var format: String
    /// `backup-job <version>`.
    public var producer: String
    /// The runbook's timestamp: `2025-01-15_14-30-00` (UTC).
    public var timestamp: String
    /// ISO 8601 UTC time at which the backup began.
    public var created: Date
    public var database: String
    /// The application's version, read from package.json; nil when there is none.
    public var version: String?
    /// The application's Node.js version when known (`NODE_VERSION`), as the runbook records it.
    public var nodeVersion: String?
    public var pgDumpVersion: String
    public var serverVersion: String
    public var hostname: String
    public var compression: Compression
    /// Top-level members in archive order: `database.dump`, `.env.backup`, `package.json`, …
    public var members: [Member]
    /// The uploads folder as one aggregate entry, so the metadata stays small whatever the file count.
    public var uploads: UploadsSummary?
    /// Optional files that did not exist when the backup ran (`package-lock.json`, …).
    public var missing: [String]
    /// Exact row count of every dumped table (`schema.table`), counted in the dump's own snapshot: what a
    /// restore drill compares. Nil when not recorded.
    public var tables: [String: Int64]?
    /// What a restore needs from the target server, checked before anything is touched: the roles its dump
    /// names (owners, and since issue 16 also the grantees and grantors of privileges and default privileges
    /// and the roles of policies and user mappings; older backups list the owners only), its extensions, and
    /// its size. A restore creates the missing ones from globals.sql (nil: every role of globals.sql).
    public var roles: [String]?
    public var extensions: [String]?
    public var databaseSize: Int64?
    /// `safety` for the archive of a broken state a rollback replaced (never a rollback target, kept
    /// SAFETY_RETENTION_DAYS); nil for an ordinary backup.
    public var kind: BackupKind?
    /// An operator's label (BACKUP_LABEL: an investigation copy, …); a labelled backup is never a rollback target.
    public var label: String?
    /// The application's health when the backup began, from the sidecars' heartbeats; nil when none was known.
    public var health: HealthAtStart?
    /// The application's version (its code) when the backup began, recorded by the app control.
    public var deployment: AppDeployment?

    public init(
        producer: String, timestamp: String, created: Date, database: String, version: String?,
        nodeVersion: String?, pgDumpVersion: String, serverVersion: String, hostname: String,
        compression: Compression, members: [Member], uploads: UploadsSummary?, missing: [String],
        tables: [String: Int64]? = nil
    ) {
        self.format = Self.currentFormat
        self.producer = producer
        self.timestamp = timestamp
        self.created = created
        self.database = database
        self.version = version
        self.nodeVersion = nodeVersion
        self.pgDumpVersion = pgDumpVersion
        self.serverVersion = serverVersion
        self.hostname = hostname
        self.compression = compression
        self.members = members
        self.uploads = uploads
        self.missing = missing
        self.tables = tables
    }

    /// One file member of the archive.
    public struct Member: Codable, Sendable, Equatable {
        public var name: String
        public var size: Int64
        public var sha256: String
        /// database.dump's blocks, each hashed: a restore checks each block before pg_restore may read it, so
        /// it can start on the dump while it is still arriving without acting on unchecked bytes.
        public var blocks: BlockHashes?
        public init(name: String, size: Int64, sha256: String, blocks: BlockHashes? = nil) {
            self.name = name
            self.size = size
            self.sha256 = sha256
            self.blocks = blocks
        }

        /// Whether `other` records the same bytes (the block hashes follow from them).
        public func hasSameContent(as other: Member?) -> Bool {
            guard let other else { return false }
            return name == other.name && size == other.size && sha256 == other.sha256
        }
    }

    /// The uploads tree: counts, bytes, and one sha256 over every entry's path, type, size and content hash
    /// in archive order (see `UploadsDigest`).
    public struct UploadsSummary: Codable, Sendable, Equatable {
        public var files: Int
        public var directories: Int
        public var bytes: Int64
        public var sha256: String
        /// Symbolic and hard links, which bound how many a restore writes (nil in backups made before).
        public var links: Int?
        public init(files: Int, directories: Int, bytes: Int64, sha256: String, links: Int? = nil) {
            self.files = files
            self.directories = directories
            self.bytes = bytes
            self.sha256 = sha256
            self.links = links
        }

        /// Whether `found` (what a restore read) is this summary, the link count compared only where this one
        /// records it; without `digest`, the counts and bytes only (a read that did not hash the files, whose
        /// bytes the archive's own hash covers).
        public func matches(_ found: UploadsSummary?, digest: Bool = true) -> Bool {
            guard var found else { return false }
            if links == nil { found.links = nil }
            if !digest { found.sha256 = sha256 }
            return found == self
        }
    }

    public func member(named name: String) -> Member? { members.first { $0.name == name } }

    enum CodingKeys: String, CodingKey {
        case format, producer, timestamp, created, database, version
        case nodeVersion = "node_version"
        case pgDumpVersion = "pg_dump_version"
        case serverVersion = "server_version"
        case hostname, compression, members, uploads, missing, tables, roles, extensions
        case databaseSize = "database_size"
        case kind, label, health, deployment
    }
}

/// Names of the archive's members, shared by the writer and the reader.
public enum ArchiveLayout {
    public static let databaseDump = "database.dump"
    public static let envBackup = ".env.backup"
    public static let packageJSON = "package.json"
    public static let packageLock = "package-lock.json"
    /// The cluster's roles and memberships (`pg_dumpall --roles-only`), mode 0600.
    public static let globals = "globals.sql"
    public static let metadata = "metadata.json"
    public static let uploadsDirectory = "uploads"
    /// The runbook's shell script nested the uploads as a second archive.
    public static let legacyUploadsArchive = "uploads.tar.gz"
}

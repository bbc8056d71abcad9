import Foundation

/// The manifest beside each archive (`<archive>.json`): the archive's metadata plus its own size and sha256.
/// It is written last, after the archive is durable, so its existence is what makes a backup exist.
public struct Manifest: Codable, Sendable, Equatable {
    public var metadata: BackupMetadata
    public var archive: ArchiveInfo
    /// Set by a restore drill; nil until one has verified the backup. Not covered by the signature.
    public var verified: Verification?
    /// backup-job's signature over the metadata and the archive (see `ManifestSignature`); nil when unsigned.
    public var signature: ManifestSignature?
    /// When the archive was complete and durable (the backup took `completed - metadata.created`); nil in
    /// manifests written before it was recorded, or when it does not decode. Not covered by the signature: it
    /// feeds the metrics and the status page, never a restore decision, and a reader bounds it (`duration`).
    public var completed: Date?

    public init(
        metadata: BackupMetadata, archive: ArchiveInfo, verified: Verification? = nil,
        signature: ManifestSignature? = nil, completed: Date? = nil
    ) {
        self.metadata = metadata
        self.archive = archive
        self.verified = verified
        self.signature = signature
        self.completed = completed
    }

    /// How long the backup took, when its completion was recorded, is not before its start and is within a
    /// day of it (longer is not a backup this product ran: a manifest edited in the store).
    public var duration: TimeInterval? {
        guard let completed else { return nil }
        let seconds = completed.timeIntervalSince(metadata.created)
        return (0...Self.longestBackup).contains(seconds) ? seconds : nil
    }

    /// The longest duration `duration` reports.
    public static let longestBackup: TimeInterval = 86_400

    /// The archive object itself.
    public struct ArchiveInfo: Codable, Sendable, Equatable {
        public var name: String
        public var size: Int64
        public var sha256: String
        public var encrypted: Bool
        /// Who can decrypt it: `age1…` public keys, or "passphrase (scrypt)". Never a secret.
        public var recipients: [String]?
        public init(name: String, size: Int64, sha256: String, encrypted: Bool, recipients: [String]? = nil) {
            self.name = name
            self.size = size
            self.sha256 = sha256
            self.encrypted = encrypted
            self.recipients = recipients
        }
    }

    /// The outcome of the last restore drill of this backup.
    public struct Verification: Codable, Sendable, Equatable {
        public var at: Date
        public var ok: Bool
        public var detail: String
        public init(at: Date, ok: Bool, detail: String) {
            self.at = at
            self.ok = ok
            self.detail = detail
        }
    }

    enum CodingKeys: String, CodingKey {
        case archive, verified, complete, signature, completed
        case backupSize = "backup_size"
    }

    // The metadata's keys sit at the top level beside `archive`, so `jq .database` works on both files.
    // A manifest is read from the store, which others may write: its sizes and counts are checked here, once,
    // so that every reader can add, double and compare them without overflow (see `maximumFigure`).
    public init(from decoder: any Decoder) throws {
        metadata = try BackupMetadata(from: decoder)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        archive = try container.decode(ArchiveInfo.self, forKey: .archive)
        verified = try container.decodeIfPresent(Verification.self, forKey: .verified)
        signature = try container.decodeIfPresent(ManifestSignature.self, forKey: .signature)
        // Informational and unsigned: a value that does not decode hides nothing, it is just not known.
        completed = (try? container.decodeIfPresent(Date.self, forKey: .completed)) ?? nil
        var figures: [(String, Int64)] = [("archive.size", archive.size)]
        figures += metadata.members.map { ("members[\($0.name)].size", $0.size) }
        if let uploads = metadata.uploads {
            figures += [
                ("uploads.files", Int64(uploads.files)), ("uploads.directories", Int64(uploads.directories)),
                ("uploads.bytes", uploads.bytes),
            ]
        }
        if let size = metadata.databaseSize { figures.append(("database_size", size)) }
        figures += (metadata.tables ?? [:]).map { ("tables[\($0.key)]", $0.value) }
        if let (field, value) = figures.first(where: { !(0...Self.maximumFigure).contains($0.1) }) {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription: "\(field) is \(value), outside 0...\(Self.maximumFigure): not a manifest this product wrote"))
        }
    }

    /// The largest size or count a manifest may declare: 1 PiB, a thousand times the largest database this
    /// product is built for, and small enough that a sum of eight thousand of them still fits in an `Int64`.
    public static let maximumFigure: Int64 = 1 << 50

    public func encode(to encoder: any Encoder) throws {
        try metadata.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(archive, forKey: .archive)
        try container.encode(verified, forKey: .verified)
        try container.encodeIfPresent(signature, forKey: .signature)
        try container.encodeIfPresent(completed, forKey: .completed)
        try container.encode(true, forKey: .complete)
        try container.encode(ByteFormat.string(archive.size), forKey: .backupSize)
    }
}

/// The JSON coding used for metadata.json and manifests: ISO 8601 dates, sorted keys, readable.
public enum ContingencyJSON {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

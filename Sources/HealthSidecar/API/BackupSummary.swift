import BackupCore
import BackupKit
import BackupStorage
import Foundation

/// One backup as the API lists it: the runbook's fields (`filename`, `size`, `sizeFormatted`, `created`, `age`)
/// and what an operator decides on beside them.
struct BackupSummary: Encodable, Sendable {
    let filename: String
    let size: Int64
    let sizeFormatted: String
    let created: Date
    let age: String
    let compression: String
    let encrypted: Bool
    let signed: Bool
    /// `backup` (scheduled or asked for), `safety` (taken by a rollback before it ran), …
    let kind: String
    let label: String?
    /// The newest drill or verification: nil when none ran.
    let verified: Verified?
    /// Where it is: `volume`, `bucket`, or both.
    let stores: [String]
    let database: String
    let version: String?
    /// Kept by retention and refused by DELETE until unpinned.
    let pinned: Bool
    /// How long the backup took (the manifest's `completed` minus its start); nil in manifests written before
    /// completion times were recorded.
    let durationSeconds: Double?
    /// Whether the signature was checked against BACKUP_VERIFY_KEYS, and found: `genuine`, `unsigned`,
    /// `notGenuine`, or `notChecked` (no verify keys). `signed` says only that a signature is there.
    let authenticity: String
    /// The same for people: the key that signed it, or why it is not genuine.
    let authenticityDetail: String

    struct Verified: Encodable, Sendable {
        let at: Date
        let ok: Bool
        let detail: String
    }

    init(_ entry: BackupEntry, stores: [String], pinned: Bool, now: Date) {
        filename = entry.fileName
        size = entry.size
        sizeFormatted = ByteFormat.string(entry.size)
        created = entry.name.date
        age = DurationFormat.age(seconds: now.timeIntervalSince(entry.name.date))
        compression = entry.name.compression.rawValue
        encrypted = entry.manifest.archive.encrypted
        signed = entry.manifest.signature != nil
        kind = entry.manifest.metadata.kind?.rawValue ?? "backup"
        label = entry.manifest.metadata.label
        verified = entry.manifest.verified.map { Verified(at: $0.at, ok: $0.ok, detail: $0.detail) }
        self.stores = stores
        database = entry.manifest.metadata.database
        version = entry.manifest.metadata.version
        self.pinned = pinned
        durationSeconds = entry.manifest.duration.map { ($0 * 1000).rounded() / 1000 }
        authenticity = Self.authenticityName(entry.authenticity)
        authenticityDetail = entry.authenticity.description
    }

    /// The API's name of a trust verdict.
    static func authenticityName(_ authenticity: Authenticity) -> String {
        switch authenticity {
        case .notChecked: "notChecked"
        case .genuine: "genuine"
        case .unsigned: "unsigned"
        case .notGenuine: "notGenuine"
        }
    }

    /// The name a store goes by in the API.
    static func storeName(_ storage: any Storage) -> String {
        storage.kind.rawValue
    }
}

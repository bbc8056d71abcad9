import Foundation

/// A pinned backup (the runbook's "list of critical backups"): `.contingency/pins/<archive file name>.json`
/// in the primary store. Retention and deletion never remove a pinned backup.
public struct BackupPin: Codable, Sendable, Equatable {
    /// The archive's file name (`visual_backup_2025-01-15_14-30-00.tar.gz`).
    public var fileName: String
    /// Who pinned it, as the caller says (an API client's address, an operator's name); never a secret.
    public var pinnedBy: String
    public var pinnedAt: Date
    public var reason: String?

    public init(fileName: String, pinnedBy: String, pinnedAt: Date, reason: String? = nil) {
        self.fileName = fileName
        self.pinnedBy = pinnedBy
        self.pinnedAt = pinnedAt
        self.reason = reason
    }

    public static let folder = ".contingency/pins"

    /// The pin's key for a backup name (a parsed `BackupName`, so never a path).
    public static func key(for name: BackupName) -> String { "\(folder)/\(name.fileName).json" }

    /// The backup file name a pin object's name stands for, or nil for anything else in the folder.
    public static func fileName(ofPinObject objectName: String, prefix: String) -> String? {
        guard objectName.hasSuffix(".json") else { return nil }
        let fileName = String(objectName.dropLast(5))
        return BackupName.parse(fileName: fileName, prefix: prefix)?.fileName == fileName ? fileName : nil
    }
}

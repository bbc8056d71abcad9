import BackupCore

/// Why a delete, pin or unpin of one backup was refused, in kinds a caller tells apart without reading the
/// message (the admin API maps them to 400, 404 and 409). The message names the backup and says why; it never
/// holds a secret.
public struct BackupActionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of refusal.
    public enum Kind: Sendable, Equatable {
        /// Not a backup name of this store (a path, another prefix, separators, NUL, …): nothing was touched.
        case invalidName
        /// No such backup in any store.
        case notFound
        /// The backup is pinned: unpin it first.
        case pinned
        /// The only remaining verified backup.
        case lastVerified
        /// Another job holds the store (a restore reading backups, a backup, a cleanup).
        case inUse
    }

    public let kind: Kind
    public let message: String
    public let hint: String?

    public init(_ kind: Kind, _ message: String, hint: String? = nil) {
        self.kind = kind
        self.message = message
        self.hint = hint
    }

    public var description: String { hint.map { "\(message). \($0)" } ?? message }

    /// For the command line: the exit code of the documented table (10 not found, 11 in use, 1 otherwise).
    public var contingencyError: ContingencyError {
        switch kind {
        case .notFound: .noBackupFound(message, hint: hint)
        case .inUse: .locked(message, hint: hint)
        case .invalidName, .pinned, .lastVerified: .failed(message, hint: hint)
        }
    }

    /// The backup name `fileName` stands for, or `.invalidName`: only a bare archive file name of this prefix,
    /// exactly as this product writes it, is accepted (never a path, never a manifest's name).
    static func parseName(_ fileName: String, prefix: String) throws(BackupActionError) -> BackupName {
        guard fileName.utf8.count <= 255, let name = BackupName.parse(fileName: fileName, prefix: prefix),
            name.fileName == fileName
        else {
            let shown = String(
                fileName.unicodeScalars.prefix(120).map { $0.value < 0x20 || $0 == "\u{7f}" ? "?" : Character($0) })
            throw BackupActionError(
                .invalidName, "\"\(shown)\" is not a backup name of this store",
                hint: "name an archive as listed, \(prefix)_YYYY-MM-DD_HH-MM-SS.tar.gz (or .tar.zst, +.age)")
        }
        return name
    }
}

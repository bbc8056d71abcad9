/// The one error type every job reports. It says what failed, why, and what to do, names the object
/// involved, and never carries a secret. Its kind decides the process exit code (see `ExitStatus`).
///
/// A struct around a private enum, so kinds can be added without breaking callers that switch on them.
public struct ContingencyError: Error, CustomStringConvertible, Sendable, Equatable {
    private enum Kind: Sendable, Equatable {
        case failed
        case configuration
        case partial
        case noBackupFound
        case locked
        case key
        case cancelled
    }

    private let kind: Kind
    /// The error is about the backup itself (it does not verify, is not genuine, cannot be read), not about the
    /// system restoring it: another backup may do. The exit code is the kind's, as without it.
    public private(set) var concernsBackup = false
    /// What failed and why, naming the object involved.
    public let message: String
    /// What the operator can do about it, when there is something to say.
    public let hint: String?

    private init(_ kind: Kind, _ message: String, hint: String?) {
        self.kind = kind
        self.message = message
        self.hint = hint
    }

    /// A run that failed (exit 1).
    public static func failed(_ message: String, hint: String? = nil) -> Self { .init(.failed, message, hint: hint) }
    /// A value in the configuration that cannot be used (exit 1, reported before any work starts).
    public static func configuration(_ message: String, hint: String? = nil) -> Self {
        .init(.configuration, message, hint: hint)
    }
    /// The run did its main work but a secondary step failed (exit 3).
    public static func partial(_ message: String, hint: String? = nil) -> Self { .init(.partial, message, hint: hint) }
    /// No backup matches what was asked for (exit 10).
    public static func noBackupFound(_ message: String, hint: String? = nil) -> Self {
        .init(.noBackupFound, message, hint: hint)
    }
    /// Another job holds the store's lease (exit 11).
    public static func locked(_ message: String, hint: String? = nil) -> Self { .init(.locked, message, hint: hint) }
    /// A key is missing or wrong, or an encrypted archive does not authenticate (exit 12).
    public static func key(_ message: String, hint: String? = nil) -> Self { .init(.key, message, hint: hint) }
    /// The run was cancelled by a signal (exit 130).
    public static func cancelled(_ message: String = "cancelled by signal") -> Self { .init(.cancelled, message, hint: nil) }

    /// The documented process exit status for this error.
    public var exitStatus: ExitStatus {
        switch kind {
        case .failed, .configuration: .failed
        case .partial: .partial
        case .noBackupFound: .noBackupFound
        case .locked: .locked
        case .key: .keyError
        case .cancelled: .cancelled
        }
    }

    public var isConfiguration: Bool { kind == .configuration }
    public var isCancellation: Bool { kind == .cancelled }

    public var description: String {
        guard let hint else { return message }
        return "\(message). \(hint)"
    }

    /// The same error with context prepended to its message ("restoring uploads: …").
    public func prefixed(_ context: String) -> Self {
        var error = Self(kind, "\(context): \(message)", hint: hint)
        error.concernsBackup = concernsBackup
        return error
    }

    /// The same error, marked as being about the backup (`concernsBackup`); a cancellation is never marked.
    public func concerningBackup() -> Self {
        var error = self
        error.concernsBackup = kind != .cancelled
        return error
    }
}

/// The exit codes of every executable: one table, documented in docs/configuration.md and in `--help`.
public enum ExitStatus: Int32, Sendable, CaseIterable {
    case ok = 0
    case failed = 1
    case partial = 3
    case noBackupFound = 10
    case locked = 11
    case keyError = 12
    case cancelled = 130

    /// One line per code, for `--help` and docs/configuration.md.
    public var meaning: String {
        switch self {
        case .ok: "success"
        case .failed: "failed (the message says why); also a configuration error"
        case .partial: "partial: the backup exists but a secondary step (the bucket copy, a post command) failed"
        case .noBackupFound: "no complete backup found to restore"
        case .locked: "another job holds the store's lock"
        case .keyError: "key missing or wrong, encrypted archive tampered with, or backup not genuine (signature)"
        case .cancelled: "cancelled by SIGTERM or SIGINT; nothing left that looks complete"
        }
    }
}

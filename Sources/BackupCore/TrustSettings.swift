import Foundation

/// Which backups a restore accepts as genuine (BACKUP_VERIFY_KEYS, RESTORE_ALLOW_UNSIGNED) and how far ahead of
/// the store's clock a backup's name may be dated before it stops counting as the newest (CLOCK_SKEW_ALLOWANCE).
public struct TrustSettings: Sendable, Equatable {
    /// Ed25519 public keys, each as PEM or as the one-line base64 body of one; empty: backups are not
    /// authenticated.
    public var verifyKeys: [String]
    /// Restore an unsigned backup when it is named (LATEST_BACKUP); a badly signed one stays refused.
    public var allowUnsigned: Bool
    /// Seconds a backup's name may be ahead of the store's clock and still be taken as the newest.
    public var clockSkewAllowance: Int

    public init(verifyKeys: [String] = [], allowUnsigned: Bool = false, clockSkewAllowance: Int = 300) {
        self.verifyKeys = verifyKeys
        self.allowUnsigned = allowUnsigned
        self.clockSkewAllowance = clockSkewAllowance
    }

    public static let settings: [Setting] = [Settings.backupVerifyKeys, Settings.restoreAllowUnsigned, Settings.clockSkewAllowance]

    public static func load(_ values: ConfigurationValues) throws(ContingencyError) -> TrustSettings {
        let verifyKeys = splitKeys(try values.nonEmpty(Settings.backupVerifyKeys) ?? "")
        // Set but empty (a secret file mounted empty, every key commented out): failing open would restore
        // whatever the store holds, so it is an error, not "not authenticated".
        if verifyKeys.isEmpty && values.isSet(Settings.backupVerifyKeys) {
            throw .configuration(
                "BACKUP_VERIFY_KEYS(_FILE) is set but holds no key",
                hint: "give the public key backup-job keygen wrote (*.pub.pem), or unset BACKUP_VERIFY_KEYS and BACKUP_VERIFY_KEYS_FILE to restore without checking signatures")
        }
        return TrustSettings(
            verifyKeys: verifyKeys,
            allowUnsigned: try values.bool(Settings.restoreAllowUnsigned),
            clockSkewAllowance: try values.duration(Settings.clockSkewAllowance))
    }

    /// A key list as written: PEM blocks one after the other, or one-line keys separated by commas, spaces or
    /// lines; `#` starts a comment.
    public static func splitKeys(_ text: String) -> [String] {
        let lines = text.split(whereSeparator: \.isNewline).map { line in
            String(line.prefix { $0 != "#" }).trimmingCharacters(in: .whitespaces)
        }
        var keys: [String] = []
        var block: [String]?
        for line in lines where !line.isEmpty {
            if line.hasPrefix("-----BEGIN") {
                block = [line]
            } else if line.hasPrefix("-----END"), let open = block {
                keys.append((open + [line]).joined(separator: "\n") + "\n")
                block = nil
            } else if block != nil {
                block?.append(line)
            } else {
                keys += line.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" }).map(String.init)
            }
        }
        // An unterminated block is kept as it is, so that the key loader names it as not a key.
        if let open = block { keys.append(open.joined(separator: "\n")) }
        return keys
    }
}

extension Settings {
    public static let backupSigningKey = Setting(
        "BACKUP_SIGNING_KEY", secret: true,
        "Ed25519 private key (PEM) that signs each backup's manifest; usually BACKUP_SIGNING_KEY_FILE, as backup-job keygen writes it. Keep it out of the store: whoever holds it can make backups a restore trusts")
    public static let backupVerifyKeys = Setting(
        "BACKUP_VERIFY_KEYS", readsFile: true,
        "Ed25519 public keys (PEM, or the one-line form backup-job keygen prints; several for rotation): a backup must be signed by one of them, or it is refused (exit 12) and never chosen as the newest. Unset: backups are not authenticated")
    public static let restoreAllowUnsigned = Setting(
        "RESTORE_ALLOW_UNSIGNED", default: "false",
        "With BACKUP_VERIFY_KEYS: restore an unsigned backup named in LATEST_BACKUP (one of the runbook's shell script, say); a badly signed one is always refused")
    public static let clockSkewAllowance = Setting(
        "CLOCK_SKEW_ALLOWANCE", default: "5m",
        "A backup whose name is dated more than this ahead of the store's clock is never taken as the newest (a warning names it); naming it in LATEST_BACKUP still restores it")
}

import BackupCore
import BackupInterop
import Foundation
import Logging

/// Turns the keys in the configuration into keys the jobs use, with errors that say which setting is wrong
/// (exit 12) and never show a key's bytes: the signing key, the verify keys and the age identities.
public enum KeyLoader {
    /// The key backup-job signs with (BACKUP_SIGNING_KEY(_FILE)), or nil.
    /// A key file that is in the store once symlinks are resolved is refused as the written path would be
    /// (`BackupConfiguration.load` checks the path as written, without I/O).
    public static func signingKey(_ configuration: BackupConfiguration) throws -> Ed25519Key? {
        guard let pem = configuration.signingKey else { return nil }
        if let keyFile = configuration.signingKeyFile, let directory = configuration.store.backupDirectory,
            let file = realpath(keyFile, nil), let store = realpath(directory, nil)
        {
            defer { free(file); free(store) }
            let (resolvedFile, resolvedStore) = (String(cString: file), String(cString: store))
            if resolvedFile.hasPrefix(resolvedStore.hasSuffix("/") ? resolvedStore : resolvedStore + "/") {
                throw ContingencyError.configuration(
                    "BACKUP_SIGNING_KEY_FILE=\(keyFile) is inside the store (\(directory), through a symlink): whoever can write the store could read it and sign forged backups",
                    hint: "keep the private key outside BACKUP_DIR (a secret mounted only into backup-job); give restore-job the public key in BACKUP_VERIFY_KEYS")
            }
        }
        return try Ed25519Key.privateKey(pem: pem, source: "BACKUP_SIGNING_KEY(_FILE)")
    }

    /// The authenticator for BACKUP_VERIFY_KEYS (empty when unset).
    public static func authenticator(_ trust: TrustSettings) throws -> ManifestAuthenticator {
        var keys: [Ed25519Key] = []
        for (index, text) in trust.verifyKeys.enumerated() {
            if text.contains("PRIVATE KEY") {
                throw ContingencyError.key(
                    "BACKUP_VERIFY_KEYS holds a private key (key \(index + 1)): restore-job needs only the public one",
                    hint: "give the public key backup-job keygen wrote (*.pub.pem) and keep the private key with backup-job alone")
            }
            keys.append(try Ed25519Key.publicKey(text, source: "BACKUP_VERIFY_KEYS (key \(index + 1))"))
        }
        return ManifestAuthenticator(keys: keys)
    }

    /// Says at start whether restored backups are authenticated.
    static func announce(_ authenticator: ManifestAuthenticator, logger: Logger) {
        if authenticator.isEnabled {
            logger.info("Backups must be signed by one of: \(authenticator.keys.map(\.keyID).joined(separator: ", "))")
        } else {
            logger.warning(
                "Backups are not authenticated (BACKUP_VERIFY_KEYS is not set): anyone who can write to the store can make a backup this job restores")
        }
    }

    /// The age identities that decrypt `target` (AGE_IDENTITY(_FILE), AGE_PASSPHRASE).
    static func decryptionIdentities(_ configuration: RestoreConfiguration, for target: BackupTarget) throws -> [AgeIdentity] {
        var identities: [AgeIdentity] = []
        if let text = configuration.ageIdentities {
            do {
                identities += try AgeIdentity.parseFile(text)
            } catch let error as ContingencyError {
                throw ContingencyError.key("AGE_IDENTITY(_FILE) is not an age identity file: \(error.message)", hint: error.hint)
            }
        }
        if let passphrase = configuration.agePassphrase { identities.append(.passphrase(passphrase)) }
        guard !identities.isEmpty else {
            let recipients = target.manifest?.archive.recipients.map { " (encrypted for \($0.joined(separator: ", ")))" } ?? ""
            throw ContingencyError.key(
                "\(target.fileName) is encrypted\(recipients) and no key was given; nothing was restored",
                hint: "set AGE_IDENTITY_FILE to the identity file (age-keygen's output) or AGE_PASSPHRASE")
        }
        return identities
    }
}

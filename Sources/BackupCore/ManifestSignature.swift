import Foundation

/// The signature of a manifest: Ed25519 over the exact bytes of a signed document that repeats the manifest's
/// metadata and archive (`SignedManifest`), carried inside the manifest as base64. A reader that checks it uses
/// what the signed bytes say, never the manifest's outer copy, so no JSON has to be rebuilt byte for byte to be
/// checked, and what a later step adds to the manifest (a drill's `verified`) stays outside what is signed: a
/// forged `verified` can at most make a genuine backup be skipped or kept longer, never a forged one restored.
public struct ManifestSignature: Codable, Sendable, Equatable {
    public static let ed25519 = "ed25519"
    /// Put before the signed document in the message that is signed, so that a signature made for anything
    /// else can never pass for a manifest's.
    public static let context = Array("contingency-manifest-signature/1\n".utf8)
    /// Longest signed document accepted (base64 of it, in characters): bounds what a forged manifest makes a
    /// reader decode.
    public static let maximumEncodedLength = 16 << 20

    public var algorithm: String
    /// Which key signed: the first 16 hex digits of the SHA-256 of its 32-byte public key.
    public var keyID: String
    /// The signed document, base64.
    public var signed: String
    /// The 64-byte signature of `context + signed document`, base64.
    public var value: String

    public init(algorithm: String = Self.ed25519, keyID: String, signed: String, value: String) {
        self.algorithm = algorithm
        self.keyID = keyID
        self.signed = signed
        self.value = value
    }

    enum CodingKeys: String, CodingKey {
        case algorithm, signed, value
        case keyID = "key_id"
    }

    /// The bytes a signer signs and a verifier checks: the context, then the signed document.
    public static func message(for document: [UInt8]) -> [UInt8] { context + document }
}

/// What a backup's signature covers: everything the backup wrote about itself, bound to the archive's name
/// (whose timestamp orders the backups) and, through the archive's size and SHA-256, to every byte of it.
public struct SignedManifest: Codable, Sendable, Equatable {
    public static let currentFormat = "contingency-signed-manifest/1"
    public var format: String
    public var metadata: BackupMetadata
    public var archive: Manifest.ArchiveInfo

    public init(metadata: BackupMetadata, archive: Manifest.ArchiveInfo) {
        self.format = Self.currentFormat
        self.metadata = metadata
        self.archive = archive
    }

    /// The document's bytes as signed.
    public func encoded() throws -> [UInt8] {
        let encoder = ContingencyJSON.encoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(self))
    }

    /// Reads a signed document back; nil when the bytes are not one (a reader then treats the backup as not
    /// genuine).
    public static func decode(_ bytes: [UInt8]) -> SignedManifest? {
        guard let document = try? ContingencyJSON.decoder().decode(SignedManifest.self, from: Data(bytes)),
            document.format == currentFormat
        else { return nil }
        return document
    }
}

/// Whether a backup is known to come from a holder of a signing key.
public enum Authenticity: Sendable, Equatable, CustomStringConvertible {
    /// No verify keys are configured: backups are taken as they are, as before signatures existed.
    case notChecked
    /// Signed by one of the verify keys (its key id).
    case genuine(keyID: String)
    /// Carries no signature (made without BACKUP_SIGNING_KEY_FILE, or by the runbook's shell script).
    case unsigned
    /// A signature that does not verify with any verify key, or a manifest that does not match what it signs.
    case notGenuine(String)

    public var description: String {
        switch self {
        case .notChecked: "not authenticated (no BACKUP_VERIFY_KEYS)"
        case .genuine(let keyID): "genuine (signed by key \(keyID))"
        case .unsigned: "unsigned"
        case .notGenuine(let reason): "not genuine: \(reason)"
        }
    }

    /// Whether the backup may be chosen without being named: genuine, or nothing to check against.
    public var isTrusted: Bool {
        switch self {
        case .notChecked, .genuine: true
        case .unsigned, .notGenuine: false
        }
    }
}

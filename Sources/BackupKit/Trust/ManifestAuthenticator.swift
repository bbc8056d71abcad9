import BackupCore
import BackupInterop
import Foundation

/// Signs manifests (backup-job, with the private key) and tells genuine ones from the rest (restore-job and
/// the drill, with public keys only). See `ManifestSignature` for what is signed and why.
public struct ManifestAuthenticator: Sendable {
    /// The verify keys; empty: nothing is checked and every backup is `.notChecked`.
    public let keys: [Ed25519Key]

    public init(keys: [Ed25519Key]) { self.keys = keys }

    /// Whether backups are checked at all.
    public var isEnabled: Bool { !keys.isEmpty }

    /// `manifest` with a signature by `key` over its metadata and archive.
    public static func sign(_ manifest: Manifest, with key: Ed25519Key) throws -> Manifest {
        let document = try SignedManifest(metadata: manifest.metadata, archive: manifest.archive).encoded()
        let signature = try key.sign(ManifestSignature.message(for: document))
        var signed = manifest
        signed.signature = ManifestSignature(
            keyID: key.keyID, signed: Data(document).base64EncodedString(), value: Data(signature).base64EncodedString())
        return signed
    }

    /// Whether the manifest found beside `fileName` is genuine, and the manifest to act on: for a genuine one,
    /// the metadata and archive its signature covers (whatever the outer copy says), with the outer `verified`
    /// and `signature`; otherwise the manifest as read.
    public func authenticate(_ manifest: Manifest, fileName: String) -> (Authenticity, Manifest) {
        guard isEnabled else { return (.notChecked, manifest) }
        guard let signature = manifest.signature else { return (.unsigned, manifest) }
        func refused(_ reason: String) -> (Authenticity, Manifest) { (.notGenuine(reason), manifest) }
        guard signature.algorithm == ManifestSignature.ed25519 else {
            return refused("its signature uses \(Self.shown(signature.algorithm)), not ed25519")
        }
        guard signature.signed.utf8.count <= ManifestSignature.maximumEncodedLength,
            let document = Data(base64Encoded: signature.signed), let value = Data(base64Encoded: signature.value)
        else { return refused("its signature is malformed") }
        guard let key = keys.first(where: { $0.keyID == signature.keyID }) else {
            let known = keys.map(\.keyID).joined(separator: ", ")
            return refused("it is signed by key \(Self.shown(signature.keyID)), which is not one of BACKUP_VERIFY_KEYS (\(known))")
        }
        guard key.verify(Array(value), of: ManifestSignature.message(for: Array(document))) else {
            return refused("its signature does not verify with key \(key.keyID): the manifest was changed after it was signed, or forged")
        }
        guard let signed = SignedManifest.decode(Array(document)) else {
            return refused("what its signature covers is not a manifest this version reads")
        }
        guard signed.archive.name == fileName else {
            return refused("its signature was made for \(Self.shown(signed.archive.name)), not for \(fileName)")
        }
        return (
            .genuine(keyID: key.keyID),
            Manifest(
                metadata: signed.metadata, archive: signed.archive, verified: manifest.verified, signature: signature,
                completed: manifest.completed)
        )
    }

    /// A value read from the store, shortened and with control characters escaped, for a message.
    static func shown(_ text: String) -> String {
        let escaped = text.unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : String($0) }.joined()
        return escaped.count > 80 ? String(escaped.prefix(80)) + "…" : escaped
    }
}
